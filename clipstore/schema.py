"""The store schema, written down once: names, dims, dtypes, chunking and attributes.

A clipstore store is a Zarr v3 group that `xarray.open_zarr` opens with no help. Everything
that knows a chunk shape or an attribute key imports it from here.

Layout (W = input_length + 2 * max_jitter, the sequence window; S = output_length +
2 * max_jitter, the signal window, centred on the same locus centre — readers never look at
counts outside it, and decoding them was most of the loader's CPU):

    sequence   (individual, locus, position, base)         uint8   two-hot of each genome
    reference  (locus, position, base)                     uint8   one-hot of the reference
    signal     (library, locus, signal_position, strand)   uint16 or float32 counts (>= 0)

Signal is uint16 when every bigWig holds integer counts up to 65,535 (`StoreInfo.signal_dtype`;
the build decides from the bigWig headers and checks every value it writes): exact, and half
the bytes a reader decodes and gathers per example (-8 to -16 % loader CPU per example,
measured), else float32.

`signal_position` p is `position` p + `StoreInfo.signal_offset`; the coordinates `position` and
`signal_position` hold both as bp offsets from the locus centre (so they line up in xarray).

Chunks (schema 5) are row-major: one chunk holds `block_loci` loci of ONE individual
(`sequence_delta`) or library (`signal`), one shard object that row's `shard_loci` loci, so a
selection decodes only its own rows (issue 19); `reference` has `block_loci` loci per chunk. Schema
2-4 stores are locus-major (one chunk = one locus of the whole cohort) and still read. The
build writes whole shards only (dask partial-shard writes were measured to corrupt data).

Integrity (schema 4): every inner chunk ends in a crc32c (zarr's `crc32c` codec) and every
shard index in the crc32c zarr's sharding codec writes; fill values are ones no data holds
(`FILL`), so zarr stores every chunk and a complete store has every shard object and every
index entry. A missing one is therefore damage, never "zeros", and readers say so
(docs/store.md, "Integrity guarantees").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import zarr
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec

from .errors import IncompleteStoreError, InputError

SCHEMA_VERSION = 5  # 2: signal over the signal window only (was the sequence window)
#                    3: signal may be uint16 (StoreInfo.signal_dtype); v2 stores read as float32
#                    4: per-chunk crc32c, fill values no data holds (every chunk stored);
#                       v2/v3 stores still read, without those checks
#                    5: row-major (issue 19): sequence stored as `sequence_delta` (two-hot
#                       minus 2 x reference, int8), it and signal chunked one individual /
#                       library x `block_loci` loci, one shard object per row and locus shard
#                       (clipstore/layout.py); v2-v4 stores still read with their old layout
CHECKSUM_VERSION = 4  # first schema version whose chunks carry a crc32c and are all stored
ROWS_VERSION = 5      # first schema version with the row-major layout
DEFAULT_BLOCK_LOCI = 64   # loci per inner chunk of a row (set-up of one decode shared by them)
MIN_SCHEMA_VERSION = 2
ATTRS_KEY = "clipstore"  # root attribute holding the StoreInfo dict below

BASES = ("A", "C", "G", "T")
STRANDS = ("+", "-")

# data variables
SEQUENCE, REFERENCE, SIGNAL = "sequence", "reference", "signal"
SEQUENCE_DELTA = "sequence_delta"   # schema >= 5: what is stored instead of `sequence`
DIMS: dict[str, tuple[str, ...]] = {
    SEQUENCE: ("individual", "locus", "position", "base"),
    SEQUENCE_DELTA: ("individual", "locus", "position", "base"),
    REFERENCE: ("locus", "position", "base"),
    SIGNAL: ("library", "locus", "signal_position", "strand"),
}
DTYPES = {SEQUENCE: np.uint8, REFERENCE: np.uint8}
SIGNAL_DTYPES = ("uint16", "float32")          # per store: StoreInfo.signal_dtype
UINT16_MAX = 65_535

# coordinate variables: name -> (dim, dtype). Strings are fixed-width unicode (no object dtype).
LOCUS_COORDS: dict[str, tuple[str, str]] = {
    "locus_id": ("locus", "<U64"),      # stable id mapping back to the input peak record(s)
    "chrom": ("locus", "<U32"),         # contig name as in the reference FASTA
    "start": ("locus", "int64"),        # 0-based start of the stored window
    "end": ("locus", "int64"),          # exclusive end of the stored window
    "centre": ("locus", "int64"),       # 0-based centre (start + W // 2)
    "fold": ("locus", "int8"),          # chromosome fold, -1 where the fold map has none
}
LIBRARY_COORDS: dict[str, tuple[str, str]] = {
    "library_id": ("library", "<U64"),
    "library_individual": ("library", "int32"),    # index into the individual dim
    "total_counts": ("library", "float64"),        # sum of |counts| over both strands, for RPM
}
INDIVIDUAL_COORDS: dict[str, tuple[str, str]] = {"individual_id": ("individual", "<U64")}
LABEL_COORDS: dict[str, tuple[str, str]] = {"base": ("base", "<U1"), "strand": ("strand", "<U1")}
POSITION_COORDS: dict[str, tuple[str, str]] = {   # bp offset from the locus centre
    "position": ("position", "int32"),
    "signal_position": ("signal_position", "int32"),
}
ALL_COORDS = {**LOCUS_COORDS, **LIBRARY_COORDS, **INDIVIDUAL_COORDS, **LABEL_COORDS,
              **POSITION_COORDS}

DEFAULT_SHARD_LOCI = 128

# Fill values (schema >= 4) that no stored value takes: two-hot/one-hot bytes are 0-2 and
# counts are finite, so zarr never skips a chunk as "all fill" and a missing chunk or shard
# can only mean damage. (65,535 is a legal uint16 count: a chunk of nothing else would be
# skipped and read back exactly, but flagged as missing by the readers — never seen in data.)
FILL = {"uint8": 255, "int8": -128, "uint16": 65_535, "float32": float("nan")}


def compressor(shuffle: str = "bitshuffle") -> BloscCodec:
    """blosc-zstd, bitshuffle by default: two-hot sequence costs ~15 B per (individual, locus)
    on disk in the locus-major layout.

    One blosc block per chunk (blocksize 1 MiB ≥ a chunk): zstd then sees all individuals
    of a locus together and stores the shared reference once. With blosc's automatic (smaller)
    blocks, each block re-encodes it: 33 vs 15 B per example on real 1000 Genomes chr22.
    Schema 5 rows (bench/subsets.py, one 32-locus row chunk): `sequence_delta` without shuffle
    (bitshuffle of 1-byte items costs 2.9 us per row to undo, noshuffle 0.33 us, and the
    mostly-zero delta is smaller unshuffled: 401 vs 692 B), `signal` with byte shuffle (1.6 vs
    2.6 us per row, 9.6 vs 12.3 kB: the high bytes of small uint16 counts are zero).
    """
    return BloscCodec(cname="zstd", clevel=3, shuffle=shuffle, blocksize=2**20)


ROW_SHUFFLE = {SEQUENCE_DELTA: "noshuffle", SIGNAL: "shuffle"}   # reference: the default


@dataclass(frozen=True)
class StoreInfo:
    """What the root attribute `clipstore` holds; readers trust these numbers."""

    input_length: int
    max_jitter: int
    output_length: int
    shard_loci: int = DEFAULT_SHARD_LOCI
    complete: bool = False
    reference_only: bool = False
    schema_version: int = SCHEMA_VERSION
    skipped: Mapping[str, int] | None = None     # e.g. {"indels": 12, "multiallelic": 3, ...}
    build_config: Mapping[str, Any] | None = None
    clipstore_version: str | None = None
    signal_dtype: str = "float32"
    block_loci: int = 0        # schema >= 5: loci per inner chunk of a row (0 before)

    @property
    def rows(self) -> bool:
        """Row-major layout (schema >= 5): a selection decodes only its own rows."""
        return self.schema_version >= ROWS_VERSION

    @property
    def window(self) -> int:
        """Length of the sequence window (`position`): input plus jitter either side."""
        return self.input_length + 2 * self.max_jitter

    @property
    def signal_window(self) -> int:
        """Length of the signal window (`signal_position`): output plus jitter either side."""
        return self.output_length + 2 * self.max_jitter

    @property
    def signal_offset(self) -> int:
        """Where the signal window starts inside the sequence window: sequence-window offset
        o is signal-window offset o - signal_offset (the unjittered output window sits at
        max_jitter in the signal window, as the input window does in the sequence window)."""
        return (self.input_length - self.output_length) // 2

    def position_offsets(self) -> np.ndarray:
        """`position` coordinate: bp from the locus centre (centre = start + window // 2)."""
        return np.arange(self.window, dtype=np.int32) - self.window // 2

    def signal_position_offsets(self) -> np.ndarray:
        """`signal_position` coordinate: bp from the locus centre, aligned with `position`."""
        return self.position_offsets()[self.signal_offset:self.signal_offset + self.signal_window]

    def to_attrs(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["window"] = self.window
        d["signal_window"] = self.signal_window
        d["signal_offset"] = self.signal_offset
        d["skipped"] = dict(self.skipped or {})
        d["build_config"] = dict(self.build_config or {})
        return d

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> "StoreInfo":
        return cls(**{k: attrs[k] for k in cls.__dataclass_fields__ if k in attrs})


def window_starts(info: StoreInfo, input_length: int, output_length: int, shift=0):
    """(input start in `position`, output start in `signal_position`) of a model window:
    the input centred in the stored sequence window and moved by `shift` bp (jitter), the
    output centred in the input. `shift` may be an int or an integer array (one per example).
    The one place that knows these offsets; `window_slices` is its per-window form."""
    start_in = (info.window - input_length) // 2 + shift
    return start_in, start_in + (input_length - output_length) // 2 - info.signal_offset


def window_slices(info: StoreInfo, input_length: int | None = None,
                  output_length: int | None = None, shift: int = 0) -> tuple[slice, slice]:
    """(slice of `position`, slice of `signal_position`) holding the model input and output
    inside a stored locus window (defaults: the store's own lengths, no jitter), e.g.
    `root["signal"][lib, locus, out_slice]` is the unjittered output track. Raises ValueError
    when the windows do not fit the stored ones."""
    li = info.input_length if input_length is None else int(input_length)
    lo = info.output_length if output_length is None else int(output_length)
    a, b = window_starts(info, li, lo, int(shift))
    if not (0 < lo <= li and a >= 0 and a + li <= info.window and b >= 0
            and b + lo <= info.signal_window):
        raise ValueError(f"input {li} / output {lo} shifted {shift} bp do not fit the stored "
                         f"windows ({info.window} bp sequence, {info.signal_window} bp signal)")
    return slice(a, a + li), slice(b, b + lo)


def _create(group: zarr.Group, name: str, shape, dtype, dims, chunks=None, shards=None,
            attributes=None, checked: bool = False, shuffle: str = "bitshuffle") -> zarr.Array:
    """`checked` (data arrays of a schema >= 4 store): crc32c after blosc in every inner chunk
    and a fill value no data holds. zarr verifies the crc on every read through it, the fast
    reader (`clipstore.blockio`) too."""
    kw: dict[str, Any] = {"fill_value": 0}
    if checked:
        kw = {"fill_value": FILL[np.dtype(dtype).name],
              "compressors": [compressor(shuffle), Crc32cCodec()], "serializer": BytesCodec()}
    else:
        kw["compressors"] = [compressor(shuffle)]
    return group.create_array(
        name, shape=shape, dtype=dtype, chunks=chunks if chunks is not None else shape,
        shards=shards, dimension_names=list(dims), attributes=attributes or {}, **kw)


def create_store(url: str, *, n_loci: int, individuals: list[str], libraries: list[str],
                 library_individual: np.ndarray, info: StoreInfo,
                 storage_options: dict | None = None, overwrite: bool = False) -> zarr.Group:
    """Create an empty store with every array laid out; the build fills it shard by shard.

    Coordinate values are written by the caller (`write_coords`); `complete` stays False until
    `mark_complete` so that a killed build never looks finished.
    """
    if info.output_length > info.input_length:
        raise InputError(f"output_length {info.output_length} is longer than input_length "
                         f"{info.input_length}", hint="the output window lies inside the input")
    if not MIN_SCHEMA_VERSION + 1 <= info.schema_version <= SCHEMA_VERSION:
        raise ValueError(f"cannot write schema version {info.schema_version}")
    checked = info.schema_version >= CHECKSUM_VERSION   # older layouts: tests and benches only
    if info.rows:
        from dataclasses import replace
        info = replace(info, block_loci=block_loci(info.shard_loci, info.block_loci or None))
    root = zarr.open_group(url, mode="w" if overwrite else "w-", zarr_format=3,
                           storage_options=storage_options)
    W, SW, S = info.window, info.signal_window, info.shard_loci
    n_ind, n_lib = len(individuals), len(libraries)
    coords = " ".join(LOCUS_COORDS)
    B = info.block_loci
    if info.rows:
        _create(root, SEQUENCE_DELTA, (n_ind, n_loci, W, 4), np.int8, DIMS[SEQUENCE_DELTA],
                chunks=(1, B, W, 4), shards=(1, S, W, 4), checked=checked,
                shuffle=ROW_SHUFFLE[SEQUENCE_DELTA], attributes={"coordinates": coords + " individual_id",
                            "encoding": "two-hot ACGT minus 2 x reference (int8)"})
    else:
        _create(root, SEQUENCE, (n_ind, n_loci, W, 4), DTYPES[SEQUENCE], DIMS[SEQUENCE],
                chunks=(n_ind, 1, W, 4), shards=(n_ind, S, W, 4), checked=checked,
                attributes={"coordinates": coords + " individual_id", "encoding": "two-hot ACGT"})
    _create(root, REFERENCE, (n_loci, W, 4), DTYPES[REFERENCE], DIMS[REFERENCE],
            chunks=(B if info.rows else 1, W, 4), shards=(S, W, 4), checked=checked,
            attributes={"coordinates": coords, "encoding": "one-hot ACGT"})
    if info.signal_dtype not in SIGNAL_DTYPES:
        raise InputError(f"signal_dtype must be one of {SIGNAL_DTYPES}, got {info.signal_dtype!r}")
    _create(root, SIGNAL, (n_lib, n_loci, SW, 2), np.dtype(info.signal_dtype), DIMS[SIGNAL],
            chunks=(1, B, SW, 2) if info.rows else (n_lib, 1, SW, 2),
            shards=(1, S, SW, 2) if info.rows else (n_lib, S, SW, 2), checked=checked,
            shuffle=ROW_SHUFFLE[SIGNAL] if info.rows else "bitshuffle",
            attributes={"coordinates": coords + " " + " ".join(LIBRARY_COORDS),
                        "units": "counts"})
    sizes = {"locus": n_loci, "individual": n_ind, "library": n_lib, "base": 4, "strand": 2,
             "position": W, "signal_position": SW}
    for name, (dim, dtype) in ALL_COORDS.items():
        _create(root, name, (sizes[dim],), dtype, (dim,),
                attributes={"units": "bp from locus centre"} if name in POSITION_COORDS else None)
    root["position"][:] = info.position_offsets()
    root["signal_position"][:] = info.signal_position_offsets()
    root["base"][:] = np.array(BASES)
    root["strand"][:] = np.array(STRANDS)
    root["individual_id"][:] = np.asarray(individuals, dtype="<U64")
    root["library_id"][:] = np.asarray(libraries, dtype="<U64")
    root["library_individual"][:] = np.asarray(library_individual, dtype=np.int32)
    root.attrs[ATTRS_KEY] = info.to_attrs()
    return root


def block_loci(shard_loci: int, want: int | None = None) -> int:
    """Loci per inner chunk of a row: the largest divisor of `shard_loci` up to `want`
    (default `DEFAULT_BLOCK_LOCI`; zarr needs shards to be whole chunks)."""
    want = min(want or DEFAULT_BLOCK_LOCI, shard_loci)
    return max(d for d in range(1, want + 1) if shard_loci % d == 0)


def n_shards(n_loci: int, shard_loci: int) -> int:
    return -(-n_loci // shard_loci)


def shard_slice(i: int, n_loci: int, shard_loci: int) -> slice:
    """Loci of shard i: the unit a build task writes and a resumed build skips."""
    return slice(i * shard_loci, min((i + 1) * shard_loci, n_loci))


def store_info(root: zarr.Group) -> StoreInfo:
    try:
        return StoreInfo.from_attrs(root.attrs[ATTRS_KEY])
    except KeyError:
        raise InputError("not a clipstore store (no 'clipstore' attribute on the root group)",
                         file=str(root.store), hint="build one with `clipstore build CONFIG.yaml`")


def check_schema_version(info: StoreInfo, url: str) -> None:
    """Refuse a store laid out by another schema version (e.g. v1 kept signal over the whole
    sequence window): reading it with this layout's offsets would silently shift tracks."""
    if info.schema_version < MIN_SCHEMA_VERSION:
        raise InputError(
            f"this store was built by an older clipstore (schema version {info.schema_version}, "
            f"this clipstore reads {MIN_SCHEMA_VERSION}-{SCHEMA_VERSION}); rebuild with "
            "`clipstore build CONFIG.yaml --output STORE --overwrite`", file=url,
            hint="schema 2 stores signal over output_length + 2 x max_jitter only")
    if info.schema_version > SCHEMA_VERSION:
        raise InputError(
            f"this store was built by a newer clipstore (schema version {info.schema_version}, "
            f"this clipstore reads {MIN_SCHEMA_VERSION}-{SCHEMA_VERSION})", file=url,
            hint="upgrade clipstore")


def mark_complete(root: zarr.Group, **updates: Any) -> None:
    """The last write of a build: flips `complete` (and records final counts) in one attribute."""
    attrs = dict(root.attrs[ATTRS_KEY])
    attrs.update(updates, complete=True)
    root.attrs[ATTRS_KEY] = attrs


FOLDS_ATTR = "folds"            # key inside the root `clipstore` attribute (clipstore/refold.py)
FOLDS_REWRITING = "rewriting"   # its state while `clipstore folds` rewrites the fold array


def folds_rewrite_interrupted(attrs: Mapping[str, Any]) -> bool:
    return (attrs.get(FOLDS_ATTR) or {}).get("state") == FOLDS_REWRITING


def open_store(url: str, *, storage_options: dict | None = None, mode: str = "r",
               require_complete: bool = True) -> zarr.Group:
    """Open a store; by default refuse one whose build never finished."""
    try:
        root = zarr.open_group(url, mode=mode, zarr_format=3, storage_options=storage_options)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        raise InputError("no clipstore store here", file=url,
                         hint="check the path, or build one with `clipstore build CONFIG.yaml`")
    info = store_info(root)
    check_schema_version(info, url)
    if require_complete and not info.complete and folds_rewrite_interrupted(root.attrs[ATTRS_KEY]):
        raise IncompleteStoreError(
            "re-choosing this store's folds did not finish, so its fold array may be partial",
            file=url, hint="rerun the same `clipstore folds` command to finish it")
    if require_complete and not info.complete:
        raise IncompleteStoreError(
            "this store's build did not finish, so it may hold partial data", file=url,
            hint="rerun the same `clipstore build` command to resume it")
    return root
