"""Issue 19: the row-major layout (schema 5) serves exactly the examples of the locus-major one
(schema 4) — every selection, same seed, same bytes — from a migrated store and from one
written directly; `clipstore.open` and `layout.sequence` show the same two-hot cube; and a
subset decodes only its own rows."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

import clipstore
from clipstore import blockio, layout, schema
from clipstore.errors import InputError
from clipstore.migrate import migrate
from clipstore.reader import StoreDataset
from tests._synthetic import synthetic_store

# 300 loci in 128-locus shards: block_loci 64, so shards hold two row chunks and the last
# shard (44 loci) one partial chunk; a 10-locus jitter around a 100 bp input
KW = dict(n_loci=300, n_individuals=7, replicates=3, shard_loci=128, seed=11,
          variant_rate=2e-2, signal_dtype="uint16")


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("layout")
    v4 = synthetic_store(str(d / "v4.zarr"), schema_version=4, **KW)
    return {"v4": v4, "migrated": migrate(v4, str(d / "migrated.zarr")),
            "written": synthetic_store(str(d / "v5.zarr"), **KW)}


SELECTIONS = {
    "all": lambda d: d,
    "subsample": lambda d: d.subsample(3, seed=4),
    "masked": lambda d: d.masked(True),
    "masked_subsample": lambda d: d.masked(True).subsample(2, seed=1),
    "fold_train": lambda d: d.with_split(1, "train"),
    "fold_validation_subsample": lambda d: d.with_split(2, "validation").subsample(4, seed=2),
    "scattered_loci": lambda d: d.with_loci(np.random.default_rng(0).choice(300, 90, False)),
    "libraries_rpm_lengths": lambda d: d.with_libraries([9, 0, 4]).with_rpm(True)
    .with_lengths(80, 40),
}


def _batches(url: str, sel: str, **kw) -> list:
    ds = SELECTIONS[sel](StoreDataset.open(url).with_jitter(10).with_rc(True))
    return list(ds.batches(64, seed=7, epoch=1, pool_loci=128, **kw))


@pytest.mark.parametrize("sel", list(SELECTIONS))
@pytest.mark.parametrize("which", ["migrated", "written"])
def test_every_selection_serves_the_same_examples(stores, sel, which):
    want, got = _batches(stores["v4"], sel), _batches(stores[which], sel)
    assert len(want) == len(got) > 0
    for a, b in zip(want, got):
        for f in ("x", "profile", "quantity", "library", "locus", "rc", "shift"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f"{sel} {f}")


def test_worker_shards_serve_the_same_examples(stores):
    for part in range(2):
        want = _batches(stores["v4"], "subsample", shard=(2, part))
        got = _batches(stores["migrated"], "subsample", shard=(2, part))
        assert [b.locus.tolist() for b in want] == [b.locus.tolist() for b in got]
        for a, b in zip(want, got):
            np.testing.assert_array_equal(a.x, b.x)


def test_torch_serves_the_same_examples(stores):
    pytest.importorskip("torch", reason="torch not installed")
    from clipstore.torchdata import to_torch
    got = {}
    for name in ("v4", "migrated"):
        ds = StoreDataset.open(stores[name]).subsample(3, seed=4).with_jitter(10).with_rc(True)
        got[name] = list(to_torch(ds, 64, seed=2, with_index=True, pool_loci=128))
    for (xa, ya), (xb, yb) in zip(got["v4"], got["migrated"], strict=True):
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
        np.testing.assert_array_equal(ya["profile"].numpy(), yb["profile"].numpy())
        np.testing.assert_array_equal(ya["locus"].numpy(), yb["locus"].numpy())


def test_xarray_view_and_sequence_view_equal_the_old_cube(stores):
    old, new = clipstore.open(stores["v4"]), clipstore.open(stores["migrated"])
    assert "sequence_delta" not in new and new["sequence"].dims == schema.DIMS[schema.SEQUENCE]
    assert new["sequence"].dtype == np.uint8 and new["sequence"].chunks is not None
    for name in ("sequence", "reference", "signal"):
        np.testing.assert_array_equal(old[name].values, new[name].values, err_msg=name)
    np.testing.assert_array_equal(old["sequence"].isel(individual=2, locus=slice(120, 140)),
                                  new["sequence"].isel(individual=2, locus=slice(120, 140)))
    r4, r5 = (zarr.open_group(stores[k], mode="r") for k in ("v4", "migrated"))
    s4, s5 = layout.sequence(r4), layout.sequence(r5)
    assert s4.shape == s5.shape == (7, 300, 120, 4)
    for key in ((3, 7), (slice(None), 130, slice(5, 20)), (np.array([0, 6]), np.array([1, 299])),
                (slice(1, 3), slice(250, 300))):
        np.testing.assert_array_equal(s4[key], s5[key], err_msg=str(key))
    seq = s5[:]
    assert seq.max() == 2 and (seq == 1).any()     # het SNPs survive the int8 delta


def test_schema5_layout_is_row_major(stores):
    root = zarr.open_group(stores["written"], mode="r")
    info = schema.store_info(root)
    assert info.schema_version == 5 and info.rows and info.block_loci == 64
    assert "sequence" not in root
    d, sig, ref = root["sequence_delta"], root["signal"], root["reference"]
    assert d.dtype == np.int8 and d.shards == (1, 128, 120, 4) and d.chunks == (1, 64, 120, 4)
    assert sig.shards == (1, 128, 70, 2) and sig.chunks == (1, 64, 70, 2)
    assert ref.shards == (128, 120, 4) and ref.chunks == (64, 120, 4)
    assert all(blockio.rows_layout(a) for a in (d, sig, ref))
    assert not blockio.rows_layout(zarr.open_group(stores["v4"], mode="r")["signal"])
    # one shard object per row and locus shard: 7 individuals / 10 libraries x 3 shards
    assert len([p for p in (Path(stores["written"]) / "sequence_delta" / "c").rglob("*")
                if p.is_file()]) == 7 * 3
    assert len([p for p in (Path(stores["written"]) / "signal" / "c").rglob("*")
                if p.is_file()]) == 10 * 3


def test_read_rows_refuses_loci_out_of_order(stores):
    """read_rows cuts the loci into runs per shard and chunk, so an unsorted request would
    fill the wrong rows quietly: it is refused; the same loci sorted read as zarr reads them."""
    from concurrent.futures import ThreadPoolExecutor

    arr = zarr.open_group(stores["written"], mode="r")["signal"]
    loci = np.array([3, 200, 130, 7])
    out = np.empty((2, len(loci)) + arr.shape[2:], arr.dtype)
    with ThreadPoolExecutor(2) as pool:
        with pytest.raises(ValueError, match="ascending"):
            blockio.read_rows(arr, np.array([0, 4]), loci, out, pool=pool)
        blockio.read_rows(arr, np.array([0, 4]), np.sort(loci), out, pool=pool)
    np.testing.assert_array_equal(out, arr.oindex[[0, 4], np.sort(loci)])


def test_a_subset_reads_only_its_rows(stores, tmp_path):
    """Deleting the shard objects of every library and individual a subset does not use
    leaves it readable (it never opens them); the full cohort is then refused as damaged."""
    import shutil
    url = str(tmp_path / "s.zarr")
    shutil.copytree(stores["written"], url)
    ds = StoreDataset.open(url).with_libraries([1, 5])       # individuals 1 and 5
    want = list(ds.batches(32, seed=0))
    for arr, keep in (("sequence_delta", {"1", "5"}), ("signal", {"1", "5"})):
        for row in (Path(url) / arr / "c").iterdir():
            if row.name not in keep:
                shutil.rmtree(row)
    got = list(StoreDataset.open(url).with_libraries([1, 5]).batches(32, seed=0))
    for a, b in zip(want, got, strict=True):
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.profile, b.profile)
    with pytest.raises(InputError, match="is missing"):
        list(StoreDataset.open(url).batches(32))


def test_sequence_view_writes_two_hot_values_in_either_layout(stores, tmp_path):
    """Planting a genotype through `layout.sequence` (as tests and tools do) reads back the
    same from both layouts; schema 5 stores it as a delta from the reference."""
    import shutil
    got = {}
    for name in ("v4", "migrated"):
        url = str(tmp_path / f"{name}.zarr")
        shutil.copytree(stores[name], url)
        view = layout.sequence(zarr.open_group(url, mode="r+"))
        planted = view[:, 10:20]
        planted[:, 3, 50] = [0, 2, 0, 0]            # homozygous C at one site, everyone
        planted[1, 4, 51] = [1, 0, 0, 1]
        view[:, 10:20] = planted
        got[name] = layout.sequence(zarr.open_group(url, mode="r"))[:]
        np.testing.assert_array_equal(got[name][:, 10:20], planted)
    np.testing.assert_array_equal(got["v4"], got["migrated"])
    d = zarr.open_group(str(tmp_path / "migrated.zarr"), mode="r")["sequence_delta"][:]
    assert d.min() >= -2 and d.max() <= 2 and (d != 0).mean() < 0.05
