"""Bad arguments and missing files to `clipstore evaluate ...` and `clipstore score` fail in
under 3 s, before TensorFlow is imported (checked in a real process: exit code, CPU time
and whether `tensorflow` ever entered sys.modules)."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests._synthetic import synthetic_store

PROBE = ("import sys\n"
         "from clipstore.cli import main\n"
         "try:\n"
         "    main(sys.argv[1:])\n"
         "finally:\n"
         "    print('TF_IMPORTED' if 'tensorflow' in sys.modules else 'TF_NOT_IMPORTED', file=sys.stderr)\n")


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    d = tmp_path_factory.mktemp("fast")
    store = synthetic_store(str(d / "s.zarr"), n_loci=8, n_individuals=2, replicates=1,
                            input_length=100, max_jitter=10, output_length=50, shard_loci=8)
    (d / "fake.keras").write_text("not a model")
    (d / "q.tsv").write_text("variant_id\tchrom\tpos\tref\talt\nv\tchr1\t5\tA\tC\n")
    (d / "fa.fa").write_text(">1\nACGT\n")
    return {"store": store, "dir": d, "model": str(d / "fake.keras"), "q": str(d / "q.tsv"),
            "fa": str(d / "fa.fa")}


CASES = {
    "crossloci missing store": lambda p: ["evaluate", "crossloci", p["dir"] / "none.zarr", "--ensemble", p["model"]],
    "crossloci bad replicate": lambda p: ["evaluate", "crossloci", p["store"], "--replicate", f"x={p['model']}"],
    "crossloci missing model": lambda p: ["evaluate", "crossloci", p["store"], "--ensemble", p["dir"] / "no.keras"],
    "crossloci missing predictions": lambda p: ["evaluate", "crossloci", p["store"], "--predictions",
                                                p["dir"] / "no.npz"],
    "qtl missing table": lambda p: ["evaluate", "qtl", p["store"], p["dir"] / "no.tsv", "--ensemble", p["model"]],
    "qtl missing store": lambda p: ["evaluate", "qtl", p["dir"] / "none.zarr", p["q"], "--ensemble", p["model"]],
    "qtl models and predictions": lambda p: ["evaluate", "qtl", p["store"], p["q"], "--ensemble", p["model"],
                                             "--predictions", p["q"]],
    "mpra missing table": lambda p: ["evaluate", "mpra", p["dir"] / "no.tsv", "--model", f"a={p['model']}"],
    "mpra bad model spec": lambda p: ["evaluate", "mpra", p["q"], "--model", p["model"]],
    "mpra nothing to score": lambda p: ["evaluate", "mpra", p["q"]],
    "mpra bad format": lambda p: ["evaluate", "mpra", p["q"], "--format", "xlsx", "--model", f"a={p['model']}"],
    "subsampling missing runs": lambda p: ["evaluate", "subsampling", p["dir"] / "no.csv", "--metric", "r"],
    "report missing folder": lambda p: ["evaluate", "report", p["dir"] / "nowhere"],
    "score missing snps": lambda p: ["score", p["dir"] / "no.vcf", "--fasta", p["fa"], "--model", p["model"]],
    "score missing fasta": lambda p: ["score", p["q"], "--fasta", p["dir"] / "no.fa", "--model", p["model"]],
    "score missing model": lambda p: ["score", p["q"], "--fasta", p["fa"], "--model", p["dir"] / "no.keras"],
    "score bad rank-by": lambda p: ["score", p["q"], "--fasta", p["fa"], "--model", p["model"], "--rank-by", "x"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_arguments_fail_fast_without_tensorflow(paths, case):
    """CPU seconds of the child are asserted (< 3 s): on a loaded shared machine wall time
    measures the neighbours; the wall time is only bounded loosely."""
    import resource

    args = [str(a) for a in CASES[case](paths)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert r.returncode == 2, (case, r.stdout, r.stderr)
    assert "TF_NOT_IMPORTED" in r.stderr, (case, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    assert elapsed < 3.0, f"{case}: {elapsed:.1f} s of CPU"
    assert wall < 30, f"{case}: {wall:.1f} s wall"
