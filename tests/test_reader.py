"""Reader output checked example by example against direct slices of the store (the oracle)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import zarr

from clipstore import encoding, layout, schema
from clipstore.errors import IncompleteStoreError, InputError
from clipstore.folds import split_folds
from clipstore.reader import StoreDataset
from tests._synthetic import synthetic_store


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> str:
    return synthetic_store(str(tmp_path_factory.mktemp("r") / "s.zarr"), n_loci=150,
                           n_individuals=5, replicates=2, shard_loci=32, seed=3)


def oracle(url: str, b, ds: StoreDataset) -> None:
    """Recompute every example of batch `b` from plain zarr slices and compare.

    Geometry from the store's own numbers, independently of the reader: both windows are
    centred on the locus centre; the signal array's first column is the genomic base
    start + (input_length - output_length) // 2 (checked here against `start`, `centre` and
    the `signal_position` coordinate, bp from the centre)."""
    root = zarr.open_group(url, mode="r")
    a = root.attrs["clipstore"]
    Li, Lo, J = a["input_length"], a["output_length"], a["max_jitter"]
    W, SW = Li + 2 * J, Lo + 2 * J
    assert root[schema.SIGNAL].shape[2] == SW and layout.sequence(root).shape[2] == W
    start, centre = root["start"][:], root["centre"][:]
    sig0 = start + (Li - Lo) // 2                   # genomic start of the signal window
    np.testing.assert_array_equal(root["signal_position"][:],
                                  np.arange(SW) + sig0[0] - centre[0])
    L, O = ds.input_length, ds.output_length
    lib_ind = root["library_individual"][:]
    total = root["total_counts"][:]
    for i in range(len(b)):
        lib, loc, d = int(b.library[i]), int(b.locus[i]), int(b.shift[i])
        s = (W - L) // 2 + d                        # input start in the sequence window
        g = start[loc] + s + (L - O) // 2           # genomic start of the output window
        o = int(g - sig0[loc])                      # ... in the signal window
        assert 0 <= o and o + O <= SW
        if ds.is_masked:
            x = 2 * root[schema.REFERENCE][loc, s:s + L]
        else:
            x = layout.sequence(root)[lib_ind[lib], loc, s:s + L]
        y = root[schema.SIGNAL][lib, loc, o:o + O].astype(np.float32)
        if b.rc[i]:
            x, y = encoding.reverse_complement(x), encoding.reverse_complement_track(y)
        prof = np.concatenate([y[:, 0], y[:, 1]])
        if ds.rpm:
            prof = prof * np.float32(1e6 / total[lib])
        np.testing.assert_array_equal(b.x[i], x)
        np.testing.assert_allclose(b.profile[i], prof, rtol=1e-6)
        np.testing.assert_allclose(b.quantity[i], prof.sum(), rtol=1e-5)
        assert abs(d) <= ds.jitter


def collect(ds, **kw):
    return list(ds.batches(**kw))


def test_plain_epoch_matches_store_and_visits_every_pair_once(small):
    ds = StoreDataset.open(small)
    batches = collect(ds, batch_size=100, seed=0)
    pairs = [(l, c) for b in batches for l, c in zip(b.library.tolist(), b.locus.tolist())]
    assert len(pairs) == ds.n_examples == 7 * 150 and len(set(pairs)) == len(pairs)
    assert all(b.x.dtype == np.uint8 and b.profile.dtype == np.float32 for b in batches)
    assert batches[0].x.shape == (100, 100, 4) and batches[0].profile.shape == (100, 100)
    assert not any(b.rc.any() or b.shift.any() for b in batches)
    for b in batches[:3] + batches[-1:]:
        oracle(small, b, ds)


@pytest.mark.parametrize("masked", [False, True])
def test_jitter_rc_rpm_match_store(small, masked):
    ds = StoreDataset.open(small).with_jitter(10).with_rc(True).with_rpm(True).masked(masked)
    b = next(iter(ds.batches(batch_size=200, seed=5)))
    assert 0.3 < b.rc.mean() < 0.7 and len(np.unique(b.shift)) > 10
    oracle(small, b, ds)


def test_lengths_libraries_and_loci_selection(small):
    ds = (StoreDataset.open(small).with_libraries(["lib006_ind001", 0, 3])
          .with_loci(np.arange(10, 90, 3)).with_lengths(input_length=60, output_length=20)
          .with_jitter(5))
    assert ds.n_examples == 3 * len(range(10, 90, 3))
    bs = collect(ds, batch_size=32, seed=1, pool_loci=16)
    assert sum(len(b) for b in bs) == ds.n_examples
    assert set(np.concatenate([b.library for b in bs])) == {6, 0, 3}
    assert set(np.concatenate([b.locus for b in bs])) == set(range(10, 90, 3))
    for b in bs[:2]:
        oracle(small, b, ds)


def test_signal_window_edges_match_store(small):
    """Outputs reaching both ends of the stored signal window (largest shifts; an output that
    fills it) are cut at the right offsets."""
    ds = StoreDataset.open(small).with_jitter(10).with_rc(True)
    b = next(iter(ds.batches(batch_size=400, seed=1)))
    assert {-10, 10} <= set(b.shift.tolist())
    oracle(small, b, ds)
    full = StoreDataset.open(small).with_lengths(output_length=70)
    oracle(small, next(iter(full.batches(batch_size=50, seed=0))), full)


def test_reproducible_and_epochs_differ(small):
    ds = StoreDataset.open(small).with_jitter(10).with_rc(True)
    a = collect(ds, batch_size=64, seed=7, epoch=0)
    b = collect(ds, batch_size=64, seed=7, epoch=0)
    c = collect(ds, batch_size=64, seed=7, epoch=1)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.x, y.x)
        np.testing.assert_array_equal(x.profile, y.profile)
    assert not np.array_equal(a[0].locus, c[0].locus)


def test_shards_partition_the_epoch(small):
    ds = StoreDataset.open(small)
    whole = {(l, c) for b in collect(ds, batch_size=50, seed=2, pool_loci=32)
             for l, c in zip(b.library.tolist(), b.locus.tolist())}
    parts = []
    for i in range(3):
        sh = ds.shard(3, i)
        got = [(l, c) for b in sh.batches(50, seed=2, pool_loci=32)
               for l, c in zip(b.library.tolist(), b.locus.tolist())]
        assert sum(len(b) for b in sh.batches(50, seed=2, pool_loci=32)) == len(got)
        parts.append(got)
    flat = [p for part in parts for p in part]
    assert len(flat) == len(set(flat)) and set(flat) == whole
    assert all(len(p) for p in parts)


def test_subsample_never_two_replicates_of_one_individual(small):
    ds = StoreDataset.open(small)
    ind = ds.meta.library_individual
    for seed in range(20):
        sub = ds.subsample(5, seed=seed)
        assert len(set(ind[sub.libraries])) == 5
    assert not np.array_equal(ds.subsample(3, seed=0).libraries, ds.subsample(3, seed=1).libraries) or \
        not np.array_equal(ds.subsample(3, seed=2).libraries, ds.subsample(3, seed=0).libraries)
    with pytest.raises(ValueError, match="distinct individuals"):
        ds.subsample(6, seed=0)


def test_split_uses_clipnet_folds(small):
    ds = StoreDataset.open(small)
    fold = zarr.open_group(small, mode="r")["fold"][:]
    seen = set()
    for part, folds in zip(("train", "validation", "test"), split_folds(2)):
        sel = ds.with_split(replicate=2, part=part).loci
        assert set(fold[sel]) <= set(folds)
        assert set(sel) == set(np.flatnonzero(np.isin(fold, folds)))
        seen |= set(sel.tolist())
    assert seen == set(np.flatnonzero(fold >= 0))
    with pytest.raises(ValueError):
        ds.with_split(replicate=1, part="holdout")


def test_immutable_and_validated(small):
    ds = StoreDataset.open(small)
    j = ds.with_jitter(10)
    assert ds.jitter == 0 and j.jitter == 10
    with pytest.raises(ValueError, match="stored window"):
        ds.with_jitter(11)
    with pytest.raises(ValueError):
        ds.with_lengths(input_length=121)
    with pytest.raises(ValueError, match="signal"):      # output 80 + 2 x 10 > signal window 70
        ds.with_lengths(output_length=80)
    assert ds.with_lengths(output_length=70).output_length == 70   # fills it exactly, jitter 0
    with pytest.raises(ValueError, match="signal"):
        ds.with_lengths(output_length=70).with_jitter(1)
    with pytest.raises(InputError, match="no library"):
        ds.with_libraries(["nope"])
    assert list(ds.with_loci(["peak7", "peak3"]).loci) == [3, 7]
    with pytest.raises(InputError, match="locus id"):
        ds.with_loci(["peak999999"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.jitter = 3  # frozen


def test_refuses_incomplete_store(tmp_path):
    url = synthetic_store(str(tmp_path / "inc.zarr"), n_loci=40, complete=False)
    with pytest.raises(IncompleteStoreError):
        StoreDataset.open(url)


def test_reference_only_store_masked_equals_personal(tmp_path):
    """A reference-only store's individual is 2 x one-hot, so masked and personal agree."""
    url = synthetic_store(str(tmp_path / "ref.zarr"), n_loci=40, reference_only=True,
                          variant_rate=0.0)
    ds = StoreDataset.open(url)
    a = next(iter(ds.batches(80, shuffle=False)))
    b = next(iter(ds.masked(True).batches(80, shuffle=False)))
    np.testing.assert_array_equal(a.x, b.x)
    assert a.x.max() == 2


def test_lazy_top_level_exports():
    import clipstore

    assert clipstore.StoreDataset is StoreDataset
    assert callable(clipstore.open)


def test_randomness_contract_on_a_10k_locus_store(tmp_path):
    """Through the real reader: every batch of 256 has >= 200 loci and >= 32 libraries."""
    url = synthetic_store(str(tmp_path / "big.zarr"), n_loci=10_240, n_individuals=36,
                          replicates=4, input_length=8, max_jitter=1, output_length=4,
                          shard_loci=128, seed=4)
    ds = StoreDataset.open(url).with_rc(True).with_jitter(1)
    n = 0
    for i, b in enumerate(ds.batches(256, seed=0, drop_remainder=True)):
        assert len(np.unique(b.locus)) >= 200
        assert len(np.unique(b.library)) >= 32
        n += 1
        if i == 300:
            break
    assert n == 301


def test_on_the_built_store(request):
    """The session store built from the simulated cohort reads back example by example."""
    pytest.importorskip("clipstore.simulate")
    pytest.importorskip("clipstore.build")
    url = request.getfixturevalue("store")
    ds = StoreDataset.open(url).with_jitter(min(10, StoreDataset.open(url).info.max_jitter))
    ds = ds.with_rc(True).with_rpm(True)
    b = next(iter(ds.batches(64, seed=0)))
    oracle(url, b, ds)
    m = ds.masked(True)
    oracle(url, next(iter(m.batches(16, seed=1))), m)
    assert sum(len(x) for x in ds.batches(256, seed=0)) == ds.n_examples


def test_on_a_store_from_the_real_build(tmp_path):
    """`clipstore.build` output (real FASTA/VCF/bigWig inputs) reads back example by example."""
    build = pytest.importorskip("clipstore.build")
    from tests._build_inputs import write_cohort

    c = write_cohort(tmp_path / "in", seed=5, n_individuals=3, loci_per_contig=12, replicates=1)
    url = str(tmp_path / "built.zarr")
    build.build(c["config"], url, workers=1, quiet=True)
    ds = StoreDataset.open(url)
    assert ds.n_examples == len(ds.libraries) * len(ds.loci) > 0
    ds = ds.with_jitter(ds.info.max_jitter).with_rc(True).with_rpm(True)
    got = list(ds.batches(32, seed=2))
    assert sum(len(b) for b in got) == ds.n_examples
    oracle(url, got[0], ds)
    m = ds.masked(True)
    oracle(url, next(iter(m.batches(16, seed=1))), m)


def test_abandoned_iterator_does_not_hang_interpreter_exit(small):
    """A half-read epoch left to interpreter shutdown exits (the prefetch thread is a daemon
    frozen at shutdown; waiting for it there used to spin forever)."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("from clipstore.reader import StoreDataset\n"
            f"it = StoreDataset.open({small!r}).batches(16, seed=0, pool_loci=32)\n"
            "next(it)\nprint('ok')\n")
    root = str(Path(__file__).resolve().parents[1])
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300, cwd=root)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


@pytest.mark.parametrize("version", [4, 5])
def test_a_damaged_chunk_is_named_not_decoded_into_garbage(tmp_path, version):
    """Zeroing one locus chunk's Blosc header inside a shard: the read fails with the shard's
    path, the array and the locus (schema 5: and the library of the row)."""
    url = synthetic_store(str(tmp_path / "s.zarr"), n_loci=64, shard_loci=32, seed=3,
                          schema_version=version)
    shard = tmp_path / "s.zarr" / "signal" / "c" / "0" / "1" / "0" / "0"   # loci 32-63
    blob = bytearray(shard.read_bytes())
    n = 32 if version == 4 else 1              # index entries: per locus / per 32-locus block
    index = np.frombuffer(bytes(blob), "<u8", count=2 * n, offset=len(blob) - 16 * n - 4)
    off = int(index.reshape(n, 2)[5 if version == 4 else 0, 0])           # holds locus 37
    blob[off:off + 16] = bytes(16)
    shard.write_bytes(bytes(blob))
    ds = StoreDataset.open(url).with_loci([37])
    what = "signal chunk of locus 37" if version == 4 else "signal chunk of library 0 at locus 37"
    with pytest.raises(InputError, match=what) as e:
        list(ds.batches(8))
    assert "signal/c/0/1/0/0" in str(e.value) and "rebuild" in str(e.value)
