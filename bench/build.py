"""Build throughput (1 vs 2 workers), peak memory and bytes on disk per example.

    python bench/build.py [--loci 8000] [--individuals 58] [--replicates 9]

A seeded cohort of realistic shape (58 individuals + 9 isogenic replicates = 67 libraries,
W = 1500 bp, signal over 1000 bp, ~92 % zero tracks, a few SNPs per window) is written once under
bench/work/build
(clipstore.simulate when present, else the test writer), then built in fresh subprocesses with
1 and 2 workers, alternately, `--repeats` times each; the fastest run of each counts. examples =
(library, locus) pairs. Other engineers share this 2-core machine, so the 2-worker speedup is a
lower bound; CPU-seconds per example during the build (driver + fork server + worker processes)
depends little on the load and shows whether the parallel path does extra work (it did, 2.2x,
before the build's LocalCluster stopped inheriting dask's MALLOC_TRIM_THRESHOLD_; see
clipstore.build_cluster.client); cores used = CPU-seconds / wall seconds. On 2 free cores the speedup
is at most 2 / (cores_used_1_worker x cpu_us_per_example_2_workers / cpu_us_per_example_1_worker):
the in-process build encodes on zarr's own thread pool (~1.1 cores), a worker on one thread.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import WORK, report, simulated_cohort  # noqa: E402

CHILD = """
import json, os, re, sys, time
import psutil
from clipstore.build import build


def cpu_seconds():
    # this process, its reaped children (spawned workers) and any live child with ITS reaped
    # children: LocalCluster workers fork from a fork server that outlives the build
    me = psutil.Process()
    t = sum(me.cpu_times()[:4])
    for c in me.children():
        try:
            t += sum(c.cpu_times()[:4])
        except psutil.NoSuchProcess:
            pass
    return t


if __name__ == "__main__":
    load = os.getloadavg()[0]
    c0, t = cpu_seconds(), time.perf_counter()
    s = build(sys.argv[1], sys.argv[2], workers=int(sys.argv[3]), quiet=True)
    seconds, cpu = time.perf_counter() - t, cpu_seconds() - c0
    hwm = int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1]) * 1024
    print(json.dumps({"seconds": seconds, "examples": s.n_libraries * s.n_loci,
                      "n_individuals": s.n_individuals, "n_loci": s.n_loci,
                      "n_libraries": s.n_libraries, "rss": hwm, "cpu": cpu, "load": load}))
"""


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def real_chr22(work: Path) -> dict:
    """Bytes per example on real data: 1000 Genomes genotypes (58 individuals) and a real
    TSS-capture track over hg19 chr22:20.0–20.1 Mb, loci every 500 bp. Empty when absent."""
    import cyvcf2
    import pysam
    import yaml
    from clipstore.build import build
    real = ROOT.parent / "shared" / "data" / "real" / "chr22_hg19"
    if not real.exists():
        return {}
    d = work / "real"
    d.mkdir(parents=True, exist_ok=True)
    if not (d / "phased.vcf.gz.tbi").exists():
        shutil.copy(real / "22_20-21M.fa", d / "ref.fa")
        shutil.copy(real / "beagle_test_chr22_PHASED_by_beagle5.4.vcf.gz", d / "phased.vcf.gz")
        pysam.tabix_index(str(d / "phased.vcf.gz"), preset="vcf", force=True)
    samples = cyvcf2.VCF(str(d / "phased.vcf.gz")).samples[:58]
    (d / "peaks.bed").write_text("".join(f"chr22\t{c - 40}\t{c + 40}\n"
                                         for c in range(20_001_000, 20_099_000, 500)))
    out = {}
    for name, libs in (("sequence", samples), ("signal", samples[:1])):
        (d / f"{name}.tsv").write_text("library\tindividual\tplus\tminus\n" + "".join(
            f"{s}\t{s}\t{real / 'pl.chr22.bw'}\t{real / 'mn.chr22.bw'}\n" for s in libs))
        (d / f"{name}.yaml").write_text(yaml.safe_dump({
            "reference": "ref.fa", "variants": "phased.vcf.gz", "peaks": "peaks.bed",
            "libraries": f"{name}.tsv"}))
        store = d / f"{name}.zarr"
        shutil.rmtree(store, ignore_errors=True)
        s = build(str(d / f"{name}.yaml"), str(store))
        n = (s.n_individuals if name == "sequence" else s.n_libraries) * s.n_loci
        out[f"bytes_per_{name}_example_real_chr22"] = du(store / name) / n
    return out


def integrity_costs(config: Path) -> dict:
    """Seconds the build's input checks take (best of 3, warm cache): fingerprinting every
    input of the bench cohort (each bigWig hashed, the VCF's BGZF blocks inflated and checked
    against its index), and of the real chr20 FASTA (18 MB, bgzipped) alone."""
    import time

    from clipstore.config import load_config
    from clipstore.fingerprint import fingerprint, fingerprints

    def best(f) -> float:
        times = []
        for _ in range(3):
            t = time.perf_counter()
            f()
            times.append(time.perf_counter() - t)
        return min(times)

    cfg = load_config(config)
    out = {"input_fingerprint_seconds": best(lambda: fingerprints(cfg)),
           "input_bytes": sum(Path(p).stat().st_size for p in
                              [cfg.reference, cfg.peaks, cfg.variants or cfg.reference,
                               *(x for lib in cfg.libraries for x in (lib.plus, lib.minus))])}
    if cfg.variants:
        out["vcf_bgzf_check_seconds"] = best(lambda: fingerprint(cfg.variants, is_vcf=True))
    fa = ROOT.parent / "shared" / "data" / "real" / "chr20_hg19" / "20.fa.gz"
    if fa.exists():
        out["fingerprint_seconds_chr20_fa_gz"] = best(lambda: fingerprint(str(fa)))
        from clipstore.bgzf import scan
        out["bgzf_check_seconds_chr20_fa_gz"] = best(lambda: scan(str(fa)))   # inflate + CRC
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loci", type=int, default=8000)
    ap.add_argument("--individuals", type=int, default=58)
    ap.add_argument("--replicates", type=int, default=9)
    ap.add_argument("--repeats", type=int, default=2, help="runs per worker count (best counts)")
    a = ap.parse_args()
    work = WORK / "build"
    inputs = simulated_cohort(work / f"inputs_{a.loci}_{a.individuals}_{a.replicates}", a.loci,
                              individuals=a.individuals, replicates=a.replicates)
    runs: dict[int, dict] = {}
    for _ in range(a.repeats):
        for workers in (1, 2):
            out = work / f"store_{workers}.zarr"
            shutil.rmtree(out, ignore_errors=True)
            r = subprocess.run([sys.executable, "-c", CHILD, str(inputs / "build.yaml"), str(out),
                                str(workers)], cwd=ROOT, capture_output=True, text=True)
            if r.returncode:
                sys.exit(r.stderr)
            run = json.loads(r.stdout.strip().splitlines()[-1])
            print(f"  {workers} worker(s): {run['seconds']:.1f} s, {run['cpu']:.1f} CPU-s, "
                  f"load {run['load']:.2f}", flush=True)
            if workers not in runs or run["seconds"] < runs[workers]["seconds"]:
                runs[workers] = run
    one, two = runs[1], runs[2]
    store = work / "store_1.zarr"
    n_seq = one["n_individuals"] * one["n_loci"]
    n_sig = one["n_libraries"] * one["n_loci"]
    report("build", {
        "n_loci": one["n_loci"], "n_individuals": one["n_individuals"],
        "n_libraries": one["n_libraries"], "window": 1500,
        "signal_window": 1000,   # schema 2: signal over output 500 + 2 x jitter 250 only
        "examples_per_s_1_worker": one["examples"] / one["seconds"],
        "examples_per_s_2_workers": two["examples"] / two["seconds"],
        "speedup_2_workers": one["seconds"] / two["seconds"],
        "seconds_1_worker": one["seconds"], "seconds_2_workers": two["seconds"],
        "cpu_seconds_1_worker": one["cpu"], "cpu_seconds_2_workers": two["cpu"],
        "cpu_us_per_example_1_worker": one["cpu"] / one["examples"] * 1e6,
        "cpu_us_per_example_2_workers": two["cpu"] / two["examples"] * 1e6,
        "cores_used_1_worker": one["cpu"] / one["seconds"],
        "cores_used_2_workers": two["cpu"] / two["seconds"],
        "repeats": a.repeats,
        "load_average_before_1_worker": one["load"], "load_average_before_2_workers": two["load"],
        "peak_rss_mb": one["rss"] / 1e6,
        "bytes_per_sequence_example": (du(store / "sequence") + du(store / "sequence_delta")) / n_seq,
        "bytes_per_signal_example": du(store / "signal") / n_sig,
        "bytes_per_reference_locus": du(store / "reference") / one["n_loci"],
        **real_chr22(work),
        **integrity_costs(inputs / "build.yaml"),
    })


if __name__ == "__main__":
    main()
