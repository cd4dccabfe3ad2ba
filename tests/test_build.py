"""Build correctness against independent oracles (pyfaidx + cyvcf2 + pyBigWig), resume after
kill -9, parallel == serial, memory bound, and the store-level contracts."""
from __future__ import annotations

import csv
import gzip
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import pysam
import pytest
import xarray as xr
import yaml
import zarr

from clipstore import layout, schema
from clipstore.build import build
from clipstore.encoding import one_hot, two_hot
from clipstore.errors import InputError
from tests._build_inputs import (assert_same_store, bigwig_window, build_process, haplotypes,
                                 shards_done, wait_for, write_cohort)

ROOT = Path(__file__).resolve().parents[1]



def fold_oracle() -> dict[str, int]:
    text = resources.files("clipstore.data").joinpath("clipnet_folds.csv").read_text()
    return {r["chrom"]: int(r["fold"]) for r in csv.DictReader(text.splitlines())}


def check_against_inputs(url: str, cfg_path: Path, reference: str, vcf: str | None,
                         vcf_chrom=lambda c: c, fasta_chrom=lambda c: c, offset: int = 0,
                         bw_chrom=lambda c: c, libraries=None) -> None:
    """Every position of every individual, reference and library vs the independent oracles."""
    root = zarr.open_group(url, mode="r")
    seq, ref, sig = layout.sequence(root)[:], root["reference"][:], root["signal"][:]
    chrom, start, end = root["chrom"][:], root["start"][:], root["end"][:]
    centre = root["centre"][:]
    a = root.attrs["clipstore"]
    Li, Lo, J = a["input_length"], a["output_length"], a["max_jitter"]
    assert sig.shape[2] == Lo + 2 * J and seq.shape[2] == Li + 2 * J
    inds = list(root["individual_id"][:])
    for j in range(len(start)):
        c, s, e = str(chrom[j]), int(start[j]), int(end[j])
        assert s == centre[j] - (Li + 2 * J) // 2 and e == s + Li + 2 * J
        # signal: output + 2 x jitter around the same centre, as far into the window as the
        # output window sits in the input window
        ss = int(centre[j]) - (Li + 2 * J) // 2 + (Li - Lo) // 2
        se = ss + Lo + 2 * J
        for k, ind in enumerate(inds):
            if vcf is None:
                h1 = h2 = haplotypes_ref(reference, fasta_chrom(c), s, e, offset)
            else:
                h1, h2 = haplotypes(reference, vcf, ind, fasta_chrom(c), s, e,
                                    vcf_chrom=vcf_chrom(c), offset=offset)
            np.testing.assert_array_equal(seq[k, j], two_hot(h1, h2), err_msg=f"{ind} locus {j}")
        np.testing.assert_array_equal(ref[j], one_hot(haplotypes_ref(reference, fasta_chrom(c),
                                                                     s, e, offset)))
        for li, (plus, minus) in enumerate(libraries):
            np.testing.assert_array_equal(sig[li, j, :, 0], bigwig_window(plus, bw_chrom(c), ss, se))
            np.testing.assert_array_equal(sig[li, j, :, 1], bigwig_window(minus, bw_chrom(c), ss, se))


def haplotypes_ref(fasta: str, chrom: str, s: int, e: int, offset: int = 0) -> str:
    import pyfaidx
    with pyfaidx.Fasta(fasta, as_raw=True, sequence_always_upper=True) as fa:
        return fa[chrom][s - offset:e - offset]


def test_every_value_matches_independent_oracles(cohort, built):
    url, summary = built
    d = cohort["dir"]
    libs = [(str(d / f"{lib}.pl.bw"), str(d / f"{lib}.mn.bw")) for lib, _ in cohort["libraries"]]
    check_against_inputs(url, cohort["config"], str(cohort["plain_reference"]), str(d / "cohort.vcf.gz"),
                         vcf_chrom=lambda c: c[3:], libraries=libs)
    root = zarr.open_group(url, mode="r")
    # folds = CLIPNET's map, read here with csv rather than clipstore.folds
    fmap = fold_oracle()
    assert [fmap.get(c, -1) for c in root["chrom"][:]] == list(root["fold"][:])
    # totals = sum of |values| over both strands of the whole bigWig
    for li, (plus, minus) in enumerate(libs):
        import pyBigWig
        tot = 0.0
        for path in (plus, minus):
            with pyBigWig.open(path) as bw:
                tot += sum(np.nansum(np.abs(bw.values(c, 0, n, numpy=True)))
                           for c, n in bw.chroms().items())
        assert root["total_counts"][li] == pytest.approx(tot)
    assert list(root["library_id"][:]) == [lib for lib, _ in cohort["libraries"]]
    inds = list(root["individual_id"][:])
    assert [inds[i] for i in root["library_individual"][:]] == [i for _, i in cohort["libraries"]]


def test_skipped_counts_match_what_was_planted(cohort, built):
    url, summary = built
    info = schema.store_info(zarr.open_group(url, mode="r"))
    assert info.complete and not info.reference_only
    for k, v in cohort["planted"].items():
        assert info.skipped[k] == v, k
        assert summary.skipped[k] == v
    assert info.build_config["shard_loci"] == 8 and info.clipstore_version


def test_locus_ids_map_back_to_peak_records_and_windows_are_centred(cohort, built):
    import gzip
    url, _ = built
    recs = [ln.split("\t") for ln in gzip.open(cohort["peaks"], "rt").read().splitlines()]
    root = zarr.open_group(url, mode="r")
    W = root["end"][0] - root["start"][0]
    for lid, s, c in zip(root["locus_id"][:], root["start"][:], root["centre"][:]):
        chrom, span = lid.split(":")
        a, b = map(int, span.split("-"))
        assert [chrom, str(a)] in [[r[0], r[1]] for r in recs if r[5] == "-"]
        assert [chrom, str(b)] in [[r[0], r[2]] for r in recs if r[5] == "+"]
        assert c == (a + b) // 2 and s == c - W // 2
    assert len(set(root["locus_id"][:])) == len(root["locus_id"][:])


def test_opens_with_xarray_and_readers_accept_it(built):
    url, _ = built
    ds = xr.open_zarr(url)          # plain xarray shows what is stored: the delta (schema 5)
    assert ds["sequence_delta"].dims == schema.DIMS[schema.SEQUENCE]
    assert ds.sizes["locus"] == 80 and ds.sizes["library"] == 5
    import clipstore
    assert clipstore.open(url)["sequence"].dims == schema.DIMS[schema.SEQUENCE]
    schema.open_store(url)  # complete


def test_reference_only_store_is_twice_the_one_hot(tmp_path):
    c = write_cohort(tmp_path / "in", variants=False, loci_per_contig=6)
    out = str(tmp_path / "s.zarr")
    build(str(c["config"]), out)
    root = zarr.open_group(out, mode="r")
    assert list(root["individual_id"][:]) == ["reference"]
    assert set(root["library_individual"][:]) == {0}
    np.testing.assert_array_equal(layout.sequence(root)[0], 2 * root["reference"][:])
    assert not root["sequence_delta"][:].any()      # schema 5: the reference is stored once
    assert schema.store_info(root).reference_only


def test_whole_counts_are_stored_as_uint16_and_read_like_float32(cohort, built, tmp_path):
    from clipstore.reader import StoreDataset

    url, _ = built
    f32 = str(tmp_path / "f32.zarr")
    build(str(cohort["config"]), f32, signal_dtype="float32")
    a, b = (zarr.open_group(u, mode="r")["signal"] for u in (url, f32))
    assert a.dtype == np.uint16 and b.dtype == np.float32     # the cohort's bigWigs hold counts
    np.testing.assert_array_equal(a[:], b[:])
    pairs = zip(*(StoreDataset.open(u).with_rpm(True).with_rc(True).with_jitter(5)
                  .batches(64, seed=1) for u in (url, f32)))
    for p, q in pairs:
        assert p.profile.dtype == np.float32
        np.testing.assert_array_equal(p.profile, q.profile)


def test_a_fraction_in_a_bigwig_keeps_float32_or_fails_a_uint16_build_by_name(cohort, tmp_path):
    import pyBigWig

    from clipstore.errors import IncompleteStoreError

    d = Path(cohort["dir"])
    rows = [r.split("\t") for r in (d / "libraries.tsv").read_text().splitlines()[1:]]
    frac = tmp_path / "frac.pl.bw"                  # library 0's plus strand x 1.5
    bw_in, bw_out = pyBigWig.open(str(d / rows[0][2])), pyBigWig.open(str(frac), "w")
    bw_out.addHeader(list(bw_in.chroms().items()))
    for c in bw_in.chroms():
        iv = bw_in.intervals(c) or []
        bw_out.addEntries([c] * len(iv), [s for s, _, _ in iv], ends=[e for _, e, _ in iv],
                          values=[v * 1.5 for _, _, v in iv])
    bw_out.close()
    table = tmp_path / "libraries.tsv"
    table.write_text("library\tindividual\tplus\tminus\n" + "".join(
        f"{lib}\t{ind}\t{frac if k == 0 else d / pl}\t{d / mn}\n"
        for k, (lib, ind, pl, mn) in enumerate(rows)))
    out = str(tmp_path / "auto.zarr")
    build(str(cohort["config"]), out, libraries=str(table))
    assert zarr.open_group(out, mode="r")["signal"].dtype == np.float32
    u16 = str(tmp_path / "u16.zarr")
    with pytest.raises(InputError, match="whole count") as e:
        build(str(cohort["config"]), u16, libraries=str(table), signal_dtype="uint16")
    assert str(frac) in str(e.value) and "signal_dtype: float32" in str(e.value)
    with pytest.raises((IncompleteStoreError, InputError)):
        schema.open_store(u16)                      # nothing that looks complete is left


def test_same_config_resumes_different_config_is_refused(cohort, built, tmp_path):
    url, _ = built
    again = build(str(cohort["config"]), url)            # complete already: nothing rebuilt
    assert again.shards_built == 0 and again.shards_resumed == again.n_shards
    with pytest.raises(InputError, match="different config"):
        build(str(cohort["config"]), url, max_jitter=5)
    copy = tmp_path / "copy.zarr"
    import shutil
    shutil.copytree(url, copy)
    s = build(str(cohort["config"]), str(copy), max_jitter=5, overwrite=True)
    assert schema.store_info(zarr.open_group(str(copy), mode="r")).max_jitter == 5
    assert s.shards_built == s.n_shards


def test_store_of_an_older_schema_is_not_resumed_or_read(cohort, built, tmp_path):
    """A schema-1 store (signal over the whole sequence window) must be rebuilt, not resumed
    into or read with schema-2 offsets."""
    import shutil
    url, _ = built
    old = tmp_path / "old.zarr"
    shutil.copytree(url, old)
    root = zarr.open_group(str(old), mode="r+")
    root.attrs[schema.ATTRS_KEY] = {**root.attrs[schema.ATTRS_KEY], "schema_version": 1}
    with pytest.raises(InputError, match="schema version 1"):
        build(str(cohort["config"]), str(old))
    from clipstore.reader import StoreDataset
    with pytest.raises(InputError, match="older clipstore"):
        StoreDataset.open(str(old))
    s = build(str(cohort["config"]), str(old), overwrite=True)
    assert s.shards_built == s.n_shards
    assert_same_store(url, str(old))


def test_fsspec_memory_url_builds_the_same_store(cohort, built):
    url, _ = built
    build(str(cohort["config"]), "memory://clipstore-test/store.zarr")
    assert_same_store(url, "memory://clipstore-test/store.zarr")


def _cli(args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "clipstore", "-q", *args], cwd=ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, **kw)


def test_kill_9_then_rerun_is_bit_identical(cohort, built, tmp_path):
    url, _ = built
    out = str(tmp_path / "killed.zarr")
    r = subprocess.run(build_process(cohort["config"], out, kill_after=3), cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == -signal.SIGKILL, r.stderr
    root = zarr.open_group(out, mode="r")
    assert not schema.store_info(root).complete
    assert len(root.attrs["clipstore_build"]["done"]) == 3
    from clipstore.errors import IncompleteStoreError
    with pytest.raises(IncompleteStoreError):
        schema.open_store(out)
    r = _cli(["build", str(cohort["config"]), "-o", out])
    assert r.returncode == 0, r.stderr
    assert_same_store(url, out)


def test_kill_9_at_random_times_then_rerun_is_bit_identical(cohort, built, tmp_path):
    url, _ = built
    out = str(tmp_path / "random.zarr")
    rng = random.Random(1)
    seen_partial = 0
    for _ in range(3):             # 10 shards × 0.2 s: kills land mid-build, some mid-shard
        before = shards_done(out)
        p = subprocess.Popen(build_process(cohort["config"], out, delay=0.2), cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # start-up time depends on the machine's load: kill once this run has written a shard
        wait_for(lambda b=before, p=p: shards_done(out) > b or p.poll() is not None, 120,
                 "a shard")
        time.sleep(rng.uniform(0.0, 0.3))
        p.send_signal(signal.SIGKILL)
        p.wait()
        if Path(out, "zarr.json").exists():
            info = schema.store_info(zarr.open_group(out, mode="r"))
            done = zarr.open_group(out, mode="r").attrs.get("clipstore_build", {}).get("done", {})
            seen_partial += not info.complete and 0 < len(done) < 10
    assert seen_partial >= 1          # the test really interrupted a build
    r = _cli(["build", str(cohort["config"]), "-o", out])
    assert r.returncode == 0, r.stderr
    assert_same_store(url, out)


def test_two_workers_on_a_local_cluster_equal_one_worker(cohort, built, tmp_path):
    url, _ = built
    out = str(tmp_path / "two.zarr")
    s = build(str(cohort["config"]), out, workers=2, max_memory="1GB")
    assert s.shards_built == s.n_shards
    assert_same_store(url, out)


def test_script_without_main_guard_gets_a_clear_error(cohort, tmp_path):
    script = tmp_path / "no_guard.py"
    script.write_text("import sys, time\nfrom clipstore.build import BuildHooks, build\n"
                      "build(sys.argv[1], sys.argv[2], workers=2,\n"      # outlast the start:
                      "      hooks=BuildHooks(after_write=lambda i: time.sleep(1)))\n")
    r = subprocess.run([sys.executable, str(script), str(cohort["config"]),
                        str(tmp_path / "s.zarr")], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("clipstore.errors.InputError: dask could not start"), last
    assert 'if __name__ == "__main__":' in last


def test_vcf_contig_in_header_without_records_gets_the_reference_quietly(tmp_path):
    c = write_cohort(tmp_path / "in", loci_per_contig=6)
    vcf = c["dir"] / yaml.safe_load(c["config"].read_text())["variants"]
    with gzip.open(vcf, "rt") as f:      # keep the header's ##contig=<ID=2>, drop its records
        kept = [line for line in f if not line.startswith("2\t")]
    plain = vcf.with_suffix("")
    plain.write_text("".join(kept))
    pysam.tabix_index(str(plain), preset="vcf", force=True)
    out = str(tmp_path / "s.zarr")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build(str(c["config"]), out)
    assert not [w for w in caught if "no intervals" in str(w.message)]
    root = zarr.open_group(out, mode="r")
    on2 = root["chrom"][:] == "chr2"
    seq = layout.sequence(root)[:]
    twice_ref = np.broadcast_to(2 * root["reference"][:], seq.shape)
    assert on2.any() and (~on2).any()
    np.testing.assert_array_equal(seq[:, on2], twice_ref[:, on2])
    assert (seq[:, ~on2] != twice_ref[:, ~on2]).any()


def test_peak_memory_stays_under_max_memory(tmp_path):
    c = write_cohort(tmp_path / "in", input_length=1000, max_jitter=250, loci_per_contig=40,
                     n_individuals=6, shard_loci=128)
    out = str(tmp_path / "m.zarr")
    # the child reports its own high-water mark, VmHWM (ru_maxrss would include the memory of
    # this big pytest process, inherited through fork before exec)
    code = ("import re, sys\nfrom clipstore.cli import main\ntry: main(sys.argv[1:])\n"
            "finally: print('RSS', 1024 * int(re.search(r'VmHWM:\\s+(\\d+)', "
            "open('/proc/self/status').read())[1]))")
    r = subprocess.run([sys.executable, "-c", code, "-q", "build", str(c["config"]), "-o", out,
                        "--max-memory", "170MB"], cwd=ROOT, capture_output=True, text=True)
    assert "RSS" in r.stdout, r.stderr
    peak = int(r.stdout.split()[-1])
    assert 50e6 < peak < 170e6, peak
    info = schema.store_info(zarr.open_group(out, mode="r"))
    assert info.complete and info.shard_loci < 64   # the shard was shrunk to fit
    with pytest.raises(InputError, match="too small"):
        build(str(c["config"]), str(tmp_path / "n.zarr"), max_memory="120MB")


# Builds on an existing cluster (`--scheduler`, real `dask scheduler` + `dask worker` processes,
# worker and driver killed mid-build): tests/test_cluster.py.


# ------------------------------------------------ the shared simulated cohort (conftest `store`)
def _sim_store(request):
    pytest.importorskip("clipstore.simulate", reason="simulator not written yet")
    return request.getfixturevalue("sim"), request.getfixturevalue("store")


def _match(name: str, names) -> str:
    names = list(names)
    for cand in (name, name.removeprefix("chr"), f"chr{name}"):
        if cand in names:
            return cand
    raise AssertionError(f"{name} not in {names[:5]}")


def test_simulated_cohort_store_matches_independent_oracles(request, tmp_path):
    import gzip
    import json

    import cyvcf2
    import pyBigWig
    sim, url = _sim_store(request)
    plain = tmp_path / "ref.fa"                      # pyfaidx reads plain FASTA without BioPython
    with open(sim.reference, "rb") as fh:
        data = fh.read()
    plain.write_bytes(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    tsv = Path(sim.libraries_tsv)
    rows = [ln.split("\t") for ln in tsv.read_text().splitlines()[1:] if ln.strip()]
    libs = [(str((tsv.parent / r[2]).resolve()), str((tsv.parent / r[3]).resolve())) for r in rows]
    root = zarr.open_group(url, mode="r")
    assert list(root["library_id"][:]) == [r[0] for r in rows]
    vcf_names = cyvcf2.VCF(str(sim.vcf)).seqnames
    with pyBigWig.open(libs[0][0]) as bw:
        bw_names = list(bw.chroms())
    check_against_inputs(url, sim.config, str(plain), str(sim.vcf),
                         vcf_chrom=lambda c: _match(c, vcf_names),
                         bw_chrom=lambda c: _match(c, bw_names), libraries=libs)
    fmap = fold_oracle()
    bare = [str(c).removeprefix("chr") for c in root["chrom"][:]]
    assert list(root["fold"][:]) == [fmap.get(f"chr{b}", fmap.get(b, -1)) for b in bare]
    info = schema.store_info(root)
    planted = Path(sim.truth_dir) / "planted.json"
    if planted.exists():
        for k, v in json.loads(planted.read_text()).items():
            if k in info.skipped:
                assert info.skipped[k] == v, k
