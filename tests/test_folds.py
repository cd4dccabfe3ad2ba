"""Fold schemes: CLIPNET's chromosome map, BED regions, seeded blocks — and no leakage."""
import gzip
import shutil
import subprocess
import sys

import numpy as np
import pyBigWig
import pysam
import yaml
import zarr
import pytest

from clipstore import schema
from clipstore.build import build
from clipstore.errors import IncompleteStoreError, InputError
from clipstore.folds import (UNASSIGNED, assign_folds, fold_of, load_fold_map, normalize_spec,
                             split_folds, split_problem, suggest_block_size, window_clusters)
from clipstore.info import format_summary, store_summary
from clipstore.refold import check_split, refold

from .conftest import real_data


def test_builtin_map_is_clipnets():
    m = load_fold_map()
    assert {c for c, f in m.items() if f == 0} == {"chr9", "chr13", "chr20", "chr21"}
    assert m["chr1"] == 4 and m["chr22"] == 5 and m["chr8"] == 9
    assert fold_of("22", m) == 5 and fold_of("chrX", m) == UNASSIGNED


def test_builtin_map_equals_shared_copy():
    path = real_data("clipnet", "data_fold_assignments.csv")
    assert load_fold_map(path) == load_fold_map()


def test_split_folds():
    train, val, test = split_folds(3)
    assert val == [3] and test == [0] and sorted(train) == [1, 2, 4, 5, 6, 7, 8, 9]
    with pytest.raises(ValueError):
        split_folds(0)


def test_bad_fold_csv(tmp_path):
    p = tmp_path / "f.csv"
    p.write_text("chrom,fold\nchr1,one\n")
    with pytest.raises(InputError, match="line 2"):
        load_fold_map(p)


# --- folds below the chromosome, on the real hg19 chr22 slice --------------------------------



def _chr22_inputs(folder):
    """The README's worked-example inputs: FASTA slice, phased VCF, bigWigs, and the cCREs of
    ENCFF948HPU.bigBed (all but Low-DNase) as a BED: 274 loci on one chromosome."""
    d = real_data("chr22_hg19")
    shutil.copy(d / "22_20-21M.fa", folder / "22_20-21M.fa")
    pysam.faidx(str(folder / "22_20-21M.fa"))
    plain = folder / "chr22.phased.vcf"
    plain.write_bytes(gzip.open(d / "beagle_test_chr22_PHASED_by_beagle5.4.vcf.gz").read())
    pysam.tabix_index(str(plain), preset="vcf", force=True)
    with pyBigWig.open(str(d / "ENCFF948HPU.bigBed")) as bb:
        rows = bb.entries("chr22", 20_000_000, 21_000_000)
    (folder / "ccres.bed").write_text("".join(
        f"chr22\t{s}\t{e}\tccre\t0\t.\n" for s, e, rest in rows if "Low-DNase" not in rest))
    cfg = {"reference": "22_20-21M.fa", "variants": "chr22.phased.vcf.gz", "peaks": "ccres.bed",
           "libraries": [{"id": "L1", "individual": "HG00096", "plus": str(d / "pl.chr22.bw"),
                          "minus": str(d / "mn.chr22.bw")}],
           "contig_aliases": {"chr22": "22"}, "shard_loci": 64}
    return cfg


@pytest.fixture(scope="module")
def chr22(tmp_path_factory):
    """A store on one chromosome slice, built with CLIPNET's map (every locus in fold 5)."""
    folder = tmp_path_factory.mktemp("chr22")
    cfg = _chr22_inputs(folder)
    (folder / "build.yaml").write_text(yaml.safe_dump(cfg))
    build(str(folder / "build.yaml"), str(folder / "chr22.zarr"), quiet=True)
    return folder


def _copy(chr22, tmp_path) -> str:
    out = tmp_path / "s.zarr"
    shutil.copytree(chr22 / "chr22.zarr", out)
    return str(out)


def _leaks(fold, chrom, start, end, held_out, train) -> int:
    """Pairs of (held-out, training) loci whose stored windows share at least one base."""
    n = 0
    for i in np.flatnonzero(np.isin(fold, held_out)):
        t = np.isin(fold, train) & (chrom == chrom[i])
        n += int((t & (start < end[i]) & (end > start[i])).sum())
    return n


def _coords(root):
    return {k: root[k][:] for k in ("chrom", "start", "end", "centre")}


def test_chromosome_store_cannot_split_and_the_error_names_the_blocks_command(chr22):
    url = str(chr22 / "chr22.zarr")
    root = schema.open_store(url)
    assert set(root["fold"][:].tolist()) == {5}
    with pytest.raises(InputError) as e:
        check_split(url, 1)
    msg = e.value.message()
    assert "validation fold" in msg and "chromosomes" in msg
    assert f"clipstore folds {url} --scheme blocks --block-size 20000 --seed 0" in msg
    assert "another replicate" not in msg


@pytest.mark.parametrize("assign", ["shuffled", "hashed"])
def test_blocks_split_one_chromosome_without_shared_sequence(chr22, tmp_path, assign):
    url = _copy(chr22, tmp_path)
    s = refold(url, {"scheme": "blocks", "block_size": 20_000, "seed": 0, "assign": assign})
    root = schema.open_store(url)                       # complete again: readers accept it
    c = _coords(root)
    fold = root["fold"][:]
    assert len(fold) == 274 and (fold >= 0).all() and s["counts"]["loci_no_fold"] == 0
    if assign == "shuffled":                            # >= 10 blocks: every fold gets loci
        assert set(fold.tolist()) == set(range(10))
    for k in range(1, 10):
        if not (fold == k).any():
            continue
        train = [f for f in range(10) if f not in (0, k)]
        assert _leaks(fold, c["chrom"], c["start"], c["end"], [0, k], train) == 0
        if assign == "shuffled":
            check_split(url, k)                         # every replicate trains
    # the leakage check can fail: folds from each locus's own block (no clustering) leak
    naive = (c["centre"] // 20_000) % 10
    assert _leaks(naive, c["chrom"], c["start"], c["end"], [0, 1], list(range(2, 10))) > 0
    # windows that share a base (the clusters) always share a fold, and clusters exist
    cid = window_clusters(c["chrom"], c["start"], c["end"])
    assert cid.max() + 1 < len(fold)
    for k in np.unique(cid):
        assert len(set(fold[cid == k].tolist())) == 1


def test_blocks_are_seeded_and_recorded_and_shown(chr22, tmp_path):
    url = _copy(chr22, tmp_path)
    a = refold(url, {"scheme": "blocks", "block_size": 20_000, "seed": 0})["folds"]
    b = refold(url, {"scheme": "blocks", "block_size": 20_000, "seed": 0})["folds"]
    c = refold(url, {"scheme": "blocks", "block_size": 20_000, "seed": 1})["folds"]
    assert a == b and a != c
    root = zarr.open_group(url, mode="r")
    rec = root.attrs[schema.ATTRS_KEY]["folds"]
    assert rec["scheme"] == "blocks" and rec["seed"] == 1 and rec["block_size"] == 20_000
    text = format_summary(store_summary(url))
    assert "blocks of 20,000 bp, seed 1, shuffled" in text
    # back to the chromosome map: one fold again, and info says so
    refold(url, None)
    assert set(zarr.open_group(url, mode="r")["fold"][:].tolist()) == {5}
    assert "chromosomes (CLIPNET's map" in format_summary(store_summary(url))


def test_build_time_blocks_equal_refold(chr22, tmp_path):
    cfg = yaml.safe_load((chr22 / "build.yaml").read_text())
    for k in ("reference", "variants", "peaks"):
        cfg[k] = str(chr22 / cfg[k])
    cfg["folds"] = {"scheme": "blocks", "block_size": 20_000, "seed": 3}
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(cfg))
    build(str(tmp_path / "b.yaml"), str(tmp_path / "b.zarr"), quiet=True)
    built = zarr.open_group(str(tmp_path / "b.zarr"), mode="r")["fold"][:]
    url = _copy(chr22, tmp_path)
    refold(url, {"scheme": "blocks", "block_size": 20_000, "seed": 3})
    np.testing.assert_array_equal(built, zarr.open_group(url, mode="r")["fold"][:])
    assert "blocks of 20,000 bp, seed 3" in format_summary(store_summary(str(tmp_path / "b.zarr")))
    again = build(str(tmp_path / "b.yaml"), str(tmp_path / "b.zarr"), quiet=True)
    assert again.shards_built == 0 and again.shards_resumed == again.n_shards   # same config


def test_config_folds_key_resolves_paths_and_checks_the_scheme(tmp_path):
    from clipstore.config import load_config

    base = {"reference": "r.fa", "peaks": "p.bed",
            "libraries": [{"id": "a", "individual": "x", "plus": "p.bw", "minus": "m.bw"}]}
    for folds, want in (("regions.bed", {"scheme": "bed", "path": str(tmp_path / "regions.bed")}),
                        ({"scheme": "bed", "path": "sub/r.bed"},
                         {"scheme": "bed", "path": str(tmp_path / "sub" / "r.bed")}),
                        ({"scheme": "blocks", "block_size": 50_000},
                         {"scheme": "blocks", "block_size": 50_000, "seed": 0,
                          "assign": "shuffled"})):
        (tmp_path / "c.yaml").write_text(yaml.safe_dump({**base, "folds": folds}))
        cfg = load_config(tmp_path / "c.yaml")
        assert normalize_spec(cfg.folds) == want
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({**base, "folds": {"scheme": "blocks",
                                                                       "block_size": -5}}))
    with pytest.raises(InputError, match="block_size > 0") as e:
        load_config(tmp_path / "c.yaml")
    assert "c.yaml" in e.value.message()


def test_bed_scheme_regions_conflicts_and_gaps(chr22, tmp_path):
    url = _copy(chr22, tmp_path)
    c = _coords(schema.open_store(url))
    mid = int(c["centre"][100])
    # first half fold 2, second half fold 7, split at a locus centre inside a cluster if any
    bed = tmp_path / "regions.bed"
    bed.write_text(f"track name=folds\nchr22\t20000000\t{mid}\t2\nchr22\t{mid}\t20600000\t7\n")
    s = refold(url, str(bed))
    fold = zarr.open_group(url, mode="r")["fold"][:]
    centre = c["centre"]
    want = np.where(centre < mid, 2, np.where(centre < 20_600_000, 7, -1))
    ok = fold != -1
    assert (fold[ok] == want[ok]).all()
    assert s["counts"]["loci_no_fold"] == int((want == -1).sum()) > 0
    # a cluster straddling a region boundary keeps one fold; the others lose theirs, counted
    cid = window_clusters(c["chrom"], c["start"], c["end"])
    for k in np.unique(cid):
        assert len(set(fold[(cid == k) & ok].tolist())) <= 1
    assert s["counts"]["loci_fold_conflict"] == int(((fold == -1) & (want != -1)).sum())
    assert _leaks(fold, c["chrom"], c["start"], c["end"], [2], [7]) == 0
    # info shows the scheme; skipped records the unassigned loci
    summary = store_summary(url)
    assert "bed (" in summary["fold_scheme"]
    assert summary["skipped"]["loci_no_fold"] == s["counts"]["loci_no_fold"]


def test_bad_fold_bed_and_spec(tmp_path, chr22):
    bed = tmp_path / "bad.bed"
    bed.write_text("chr22\t10\t20\t3\nchr22\t5\t30\tx\n")
    url = _copy(chr22, tmp_path)
    with pytest.raises(InputError, match="line 2"):
        refold(url, str(bed))
    bed.write_text("chr22\t10\t50\t3\nchr22\t40\t60\t4\n")
    with pytest.raises(InputError, match="lines 1 and 2 overlap"):
        refold(url, str(bed))
    assert schema.store_info(schema.open_store(url)).complete   # nothing was written
    with pytest.raises(InputError, match="folds.scheme"):
        normalize_spec({"scheme": "stripes"})
    with pytest.raises(InputError, match="unknown folds option"):
        normalize_spec({"scheme": "blocks", "size": 3})
    r = subprocess.run([sys.executable, "-m", "clipstore", "folds", url, "--scheme", "bed",
                        "--bed", str(bed)], capture_output=True, text=True)
    assert r.returncode == 2 and "overlap" in r.stderr


def test_killed_refold_is_refused_until_rerun(chr22, tmp_path):
    url = _copy(chr22, tmp_path)
    cmd = [sys.executable, "-m", "clipstore", "folds", url, "--scheme", "blocks",
           "--block-size", "20000"]
    kill = ("import os, signal, sys; from clipstore.refold import refold; "
            "refold(sys.argv[1], {'scheme': 'blocks', 'block_size': 20000}, "
            "after_fold_write=lambda: os.kill(os.getpid(), signal.SIGKILL))")
    r = subprocess.run([sys.executable, "-c", kill, url], capture_output=True)
    assert r.returncode == -9
    with pytest.raises(IncompleteStoreError, match="rerun the same `clipstore folds`"):
        schema.open_store(url)
    assert "REWRITE INTERRUPTED" in format_summary(store_summary(url))
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "blocks of 20,000 bp" in r.stdout
    root = schema.open_store(url)
    assert len(set(root["fold"][:].tolist())) == 10


def test_too_few_loci_for_any_scheme_says_so():
    chrom = np.array(["22"] * 3)
    start = np.array([0, 100_000, 200_000])
    msg = split_problem(np.array([5, 5, 5]), 1, chrom, start, start + 1500)
    assert "no fold scheme can split" in msg and "3 group" in msg
    assert suggest_block_size(chrom, start, start + 1500) is None


def test_assign_folds_chromosome_map_matches_fold_of():
    loci = {"chrom": np.array(["1", "chr9", "X"]), "start": np.array([0, 0, 0]),
            "end": np.array([10, 10, 10]), "centre": np.array([5, 5, 5])}
    fold, counts = assign_folds(loci, normalize_spec(None))
    assert fold.tolist() == [4, 0, -1] and counts["loci_no_fold"] == 1


def test_refold_refuses_a_store_whose_build_did_not_finish(chr22, tmp_path):
    url = _copy(chr22, tmp_path)
    root = zarr.open_group(url, mode="r+")
    attrs = dict(root.attrs[schema.ATTRS_KEY])
    root.attrs[schema.ATTRS_KEY] = {**attrs, "complete": False}
    with pytest.raises(InputError, match="build did not finish"):
        refold(url, {"scheme": "blocks", "block_size": 20_000})
    assert set(zarr.open_group(url, mode="r")["fold"][:].tolist()) == {5}   # untouched
