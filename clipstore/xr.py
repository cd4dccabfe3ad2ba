"""`clipstore.open(url)`: the store as a lazy, dask-backed xarray.Dataset for notebooks.

Chunks are shard-sized along `locus` (xarray/dask default to the inner one-locus chunk on a
sharded array, which makes thousands of tiny tasks — docs/store.md).

Integrity: zarr checks each chunk's and shard index's crc32c on every read, and for a schema
>= 4 store (which stores every chunk) the arrays are opened with zarr's
`array.read_missing_chunks = False`, so a deleted shard raises `zarr.errors.ChunkNotFoundError`
naming it instead of reading as zeros. These errors are zarr's own (raised when dask computes),
so unlike `StoreDataset`'s they do not name the locus.

Schema 5 stores the sequence as `sequence_delta`; `open` shows the two-hot `sequence` cube
computed from it and the reference (same values, same dims), not the stored delta.
"""
from __future__ import annotations

import warnings

import xarray as xr
import zarr

from . import schema


def open(url: str, *, storage_options: dict | None = None, require_complete: bool = True,
         shards_per_chunk: int = 1) -> xr.Dataset:
    """Open a store lazily; refuses an incomplete build unless `require_complete=False`."""
    root = schema.open_store(str(url), storage_options=storage_options,
                             require_complete=require_complete)
    info = schema.store_info(root)
    chunks = {"locus": info.shard_loci * shards_per_chunk, "individual": -1, "library": -1,
              "position": -1, "signal_position": -1, "base": -1, "strand": -1}
    strict = {"array.read_missing_chunks": info.schema_version < schema.CHECKSUM_VERSION}
    with warnings.catch_warnings(), zarr.config.set(strict):  # arrays keep the config they
        # were opened with; xarray compares with the inner chunk, but shards are the unit
        warnings.filterwarnings("ignore", message="The specified chunks separate")
        ds = xr.open_zarr(str(url), storage_options=storage_options, consolidated=False,
                          chunks=chunks, zarr_format=3)
    coords = [c for c in schema.ALL_COORDS if c in ds.data_vars]
    ds = ds.set_coords(coords)
    if info.rows:
        ds = _two_hot(ds)
    return ds


def _two_hot(ds: xr.Dataset) -> xr.Dataset:
    """Schema 5 stores `sequence_delta` (two-hot - 2 x reference, int8): show the same
    (individual, locus, position, base) uint8 cube as before, computed lazily by dask
    (uint8 arithmetic wraps: -2 read as 254, plus 2, is 0)."""
    d = ds[schema.SEQUENCE_DELTA]
    seq = (d.astype("uint8") + 2 * ds[schema.REFERENCE]).transpose(*schema.DIMS[schema.SEQUENCE])
    seq.attrs = {**d.attrs, "encoding": "two-hot ACGT"}
    return ds.drop_vars(schema.SEQUENCE_DELTA).assign({schema.SEQUENCE: seq})
