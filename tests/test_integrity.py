"""Issue 13.5: damaged stores are refused, never served. Each damage is made to a real store on
disk (a deleted, emptied or truncated shard object, one flipped bit in a chunk) and read by
both readers: `StoreDataset` raises an InputError naming the shard object and the locus and
saying to rebuild; `clipstore.open` (zarr's own checks) raises rather than serve zeros."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

import clipstore
from clipstore import schema
from clipstore.errors import InputError
from clipstore.reader import StoreDataset
from tests._synthetic import synthetic_store


@pytest.fixture(scope="module", params=[4, 5], ids=["schema4", "schema5"])
def base(tmp_path_factory, request) -> str:
    """The same data in the locus-major (4) and row-major (5) layouts: every check holds on
    both (schema 5: one shard object per row and locus shard, one 32-locus chunk in each)."""
    return synthetic_store(str(tmp_path_factory.mktemp("integ") / "base.zarr"), n_loci=64,
                           shard_loci=32, seed=3, signal_dtype="uint16",
                           schema_version=request.param)


def _version(url: str) -> int:
    return schema.store_info(zarr.open_group(url, mode="r")).schema_version


def _stored(url: str, array: str) -> str:
    """The stored array holding `array`'s bytes (schema 5 stores sequence as its delta)."""
    return schema.SEQUENCE_DELTA if array == "sequence" and _version(url) >= 5 else array


def _delete(p: Path) -> None:
    p.unlink()


def _empty(p: Path) -> None:
    p.write_bytes(b"")


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[:-16])


def _chunk_offset(blob: bytes, locus_in_shard: int, S: int = 32) -> int:
    index = np.frombuffer(blob, "<u8", count=2 * S, offset=len(blob) - 16 * S - 4)
    return int(index.reshape(S, 2)[locus_in_shard, 0])


def _flip(p: Path) -> None:
    """One bit inside the blosc payload of locus 37's chunk (5th of shard 1; schema-5 rows:
    the one 32-locus chunk of the row's shard 1)."""
    blob = bytearray(p.read_bytes())
    store = next(q for q in p.parents if q.suffix == ".zarr")
    rows = _version(str(store)) >= 5
    off = _chunk_offset(bytes(blob), 0, 1) if rows else _chunk_offset(bytes(blob), 5)
    blob[off + 40] ^= 0x04
    p.write_bytes(bytes(blob))


DAMAGE = {"deleted": (_delete, "is missing"), "empty": (_empty, "shorter than its own index"),
          "truncated": (_truncate, "crc32c does not match"),
          "bit flip": (_flip, "crc32c does not match its bytes")}


def _damaged(base: str, tmp_path: Path, array: str, how: str) -> str:
    url = str(tmp_path / "d.zarr")
    shutil.copytree(base, url)
    shard = {"sequence": "0/1/0/0", "signal": "0/1/0/0", "reference": "1/0/0"}[array]
    DAMAGE[how][0](Path(url) / _stored(url, array) / "c" / shard)
    return url


@pytest.mark.parametrize("array", ["sequence", "signal", "reference"])
@pytest.mark.parametrize("how", list(DAMAGE))
def test_fast_reader_names_the_damage(base, tmp_path, array, how):
    url = _damaged(base, tmp_path, array, how)
    ds = StoreDataset.open(url).with_loci(np.arange(32, 64)).masked(array == "reference")
    with pytest.raises(InputError, match=DAMAGE[how][1]) as e:
        list(ds.batches(64, shuffle=False))
    msg = str(e.value)
    rows = _version(url) >= 5
    locus = 37 if how == "bit flip" and not rows else 32   # schema 5: a chunk of loci 32-63
    assert f"{_stored(url, array)}/c/" in msg and f"locus {locus}" in msg and "rebuild" in msg
    # the undamaged shard still reads
    assert len(list(StoreDataset.open(url).with_loci(np.arange(32)).batches(64))) == 4


@pytest.mark.parametrize("how", list(DAMAGE))
def test_xarray_path_refuses_damage(base, tmp_path, how):
    url = _damaged(base, tmp_path, "sequence", how)
    ds = clipstore.open(url)
    with pytest.raises((zarr.errors.ChunkNotFoundError, ValueError)):
        _ = ds["sequence"].isel(locus=slice(32, 64)).values
    assert ds["sequence"].isel(locus=slice(0, 32)).values.max() == 2


def test_every_chunk_is_stored_even_all_zero(tmp_path):
    """Schema 4-5 fill values are ones no data holds, so an all-zero signal shard is stored (a
    missing one can only be damage) and reads back as zeros through both readers."""
    url = synthetic_store(str(tmp_path / "z.zarr"), n_loci=64, shard_loci=32)
    root = zarr.open_group(url, mode="r+")
    root[schema.SIGNAL][:, 32:64] = 0
    assert (Path(url) / "signal" / "c" / "0" / "1" / "0" / "0").stat().st_size > 0
    b = next(iter(StoreDataset.open(url).with_loci(np.arange(32, 64)).batches(64)))
    assert not b.profile.any()
    assert not clipstore.open(url)["signal"].isel(locus=slice(32, 64)).values.any()


def test_schema3_store_still_reads_with_its_old_semantics(tmp_path, monkeypatch):
    """Read support for the older layout (no chunk crc, zero chunks not stored): the same
    examples as a schema-5 store of the same data; its missing signal shard reads as zeros,
    a missing sequence shard is still damage."""
    new = synthetic_store(str(tmp_path / "v4.zarr"), n_loci=64, shard_loci=32, seed=5)
    old = str(tmp_path / "v3.zarr")
    _write_schema3(old, 5, monkeypatch)
    assert not _has_crc(old) and _has_crc(new)
    for sel in (lambda d: d, lambda d: d.subsample(3, seed=1), lambda d: d.masked(True)):
        a = list(sel(StoreDataset.open(old).with_jitter(5).with_rc(True)).batches(50, seed=2))
        b = list(sel(StoreDataset.open(new).with_jitter(5).with_rc(True)).batches(50, seed=2))
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x.x, y.x)
            np.testing.assert_array_equal(x.profile, y.profile)
    zarr.open_group(old, mode="r+")[schema.SIGNAL][:, 32:64] = 0
    assert not (Path(old) / "signal" / "c" / "0" / "1" / "0" / "0").exists()
    b = next(iter(StoreDataset.open(old).with_loci(np.arange(32, 64)).batches(64)))
    assert not b.profile.any()
    os.remove(Path(old) / "sequence" / "c" / "0" / "1" / "0" / "0")
    with pytest.raises(InputError, match="is missing"):
        list(StoreDataset.open(old).with_loci(np.arange(32, 64)).batches(64))


def test_version_gate(tmp_path):
    url = synthetic_store(str(tmp_path / "g.zarr"), n_loci=32, shard_loci=32)
    root = zarr.open_group(url, mode="r+")
    attrs = dict(root.attrs[schema.ATTRS_KEY])
    for v, msg in ((1, "older clipstore"), (schema.SCHEMA_VERSION + 1, "newer clipstore")):
        root.attrs[schema.ATTRS_KEY] = {**attrs, "schema_version": v}
        with pytest.raises(InputError, match=msg):
            StoreDataset.open(url)
        with pytest.raises(InputError, match=msg):
            clipstore.open(url)
    for v in range(schema.MIN_SCHEMA_VERSION, schema.SCHEMA_VERSION + 1):
        root.attrs[schema.ATTRS_KEY] = {**attrs, "schema_version": v}
        assert StoreDataset.open(url).info.schema_version == v


def _write_schema3(url: str, seed: int, monkeypatch) -> None:
    """The same synthetic data, laid out by schema 3 (`create_store` writes the layout of
    `info.schema_version`)."""
    real = schema.StoreInfo

    class V3(real):
        def __init__(self, *a, **kw):
            super().__init__(*a, **{**kw, "schema_version": 3})

    with monkeypatch.context() as m:
        m.setattr(schema, "StoreInfo", V3)
        synthetic_store(url, n_loci=64, shard_loci=32, seed=seed)


def _has_crc(url: str) -> bool:
    codecs = zarr.open_group(url, mode="r")[_stored(url, "sequence")].metadata.codecs[0].codecs
    return any(type(c).__name__ == "Crc32cCodec" for c in codecs)
