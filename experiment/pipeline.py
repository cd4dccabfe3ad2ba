"""`run_demo`: the paper's central comparison, end to end, on a simulated cohort.

    simulate (planted promoter grammar, known SNP effects) -> build a store (2 workers)
      -> train: personalized (all libraries, personal genomes), reference-trained (the same
         libraries, masked to the reference), and subsampled personalized runs (n libraries)
      -> evaluate on held-out folds: cross-locus accuracy, initiation-QTL effects (predicted vs
         observed L2 scores, and vs the simulator's true effects), MPRA-like emVar auPRC
      -> report (Markdown + HTML + figures) and a verdict on the claim, with its numbers.

Why the design is fair: every model has the same architecture, the same schedule (steps per
epoch, epochs, early stopping on its own validation fold) and is scored on the same held-out
loci and QTLs; only the training data differ. The verdict's thresholds are fixed here, before
any result (`SIMILAR_CROSSLOCI`, a bootstrap CI for the QTL gain), never tuned to the outcome.

Every stage is resumable: rerunning the same command skips finished stages (the simulation,
a complete store, finished training runs, evaluated models) and redoes only the report.
Output folder layout (default demo_out/):

    plan.json          the plan (scale, schedule); a rerun with another plan is refused
    sim/               the simulated cohort (FASTA, VCF, bigWigs, peaks, build.yaml, truth/)
    store.zarr         the store
    models/<run>/      trained models (model.keras, manifest.json, log.csv)
    eval/<run>.json    per-model metrics; eval/qtl_<run>.csv per-QTL scores
    report/            report.md, report.html, figures (PNG + SVG + their numbers)
    results.json       every number of the summary table, the verdict, stage timings
"""
from __future__ import annotations
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable

from .evaluate import evaluate_run, mpra_gain, qtl_gain
from .jsonio import Log, _clean, read_json, write_json
from .plans import PLANS, Plan, plan_runs
from .report import stage_report, summary_rows
from .stages import stage_build, stage_simulate, stage_train
from .verdict import verdict


def run_demo(out: str | Path = "demo_out", *, plan: str | Plan = "default", seed: int = 0,
             train_seed: int | None = None, quiet: bool = False) -> dict:
    """Run (or resume) the whole demo into `out`; returns results.json's content.

    `train_seed` (default: `seed`) retrains on the same simulated cohort with another seed —
    how the README measures the run-to-run spread of the comparison."""
    train_seed = seed if train_seed is None else train_seed
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    plan = PLANS[plan] if isinstance(plan, str) else plan
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    log = Log(quiet)
    saved = out / "plan.json"
    want = {"plan": plan.to_dict(), "seed": seed, "train_seed": train_seed}
    if saved.exists() and _clean(read_json(saved)) != _clean(json.loads(json.dumps(want))):
        from clipstore.errors import InputError
        raise InputError("this folder holds a demo run with another plan or seed",
                         file=str(out), hint="use another --out, or delete the folder")
    write_json(saved, want)
    t_start = time.perf_counter()
    # seconds of real work per stage, kept across resumed calls (a skipped stage keeps the
    # time it took when it ran), so results.json always reports the pipeline's cost
    tfile = out / "timings.json"
    work: dict[str, float] = read_json(tfile) if tfile.exists() else {}

    def timed(key: str, fresh: bool, fn: Callable, *a, **k):
        t0 = time.perf_counter()
        v = fn(*a, **k)
        if fresh:
            work[key] = time.perf_counter() - t0
            write_json(tfile, work)
        return v

    sim = timed("simulate", not (out / "sim" / "simulated.json").exists(), stage_simulate,
                out, plan, seed, log)
    store, rebuilt = timed("build", not _complete(out / "store.zarr"), stage_build, out, sim,
                           plan, log)
    if rebuilt:                         # models and evaluations of the old store were dropped
        work = {k: v for k, v in work.items() if k in ("simulate", "build")}
        write_json(tfile, work)
    runs = plan_runs(plan, sim["n_libraries"], sim["n_individuals"])
    from clipstore.tfquiet import import_tensorflow
    import_tensorflow()
    models, trained = stage_train(out, plan, runs, store, train_seed, log)
    for name, dt in trained.items():
        work[f"train/{name}"] = dt
    write_json(tfile, work)
    results = {}
    for run in runs:
        results[run.name] = timed(f"evaluate/{run.name}",
                                  not (out / "eval" / f"{run.name}.json").exists(), evaluate_run,
                                  out, run, models[run.name], store, sim, plan, log)
    gain = qtl_gain(out, "personalized", "reference", seed)
    mgain = timed("evaluate/comparisons", True, mpra_gain, out, "personalized", "reference",
                  sim, plan)
    res = {"plan": plan.to_dict(), "seed": seed, "train_seed": train_seed, "out": str(out),
           "machine": _machine(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "table": summary_rows(results), "verdict": verdict(results, gain),
           "mpra_gain": mgain}
    timed("report", True, stage_report, out, res | {"timings": _stages(work),
                                                    "wall_seconds": sum(work.values())},
          results, plan, log)
    res["timings"] = _stages(work)
    res["wall_seconds"] = sum(work.values())          # the pipeline's cost, all stages
    res["this_call_seconds"] = time.perf_counter() - t_start
    mg = dict(mgain)
    mg.pop("deltas", None)
    res["mpra_gain"] = mg
    write_json(out / "results.json", res)
    return res


def _complete(url: Path) -> bool:
    from clipstore import schema
    try:
        schema.open_store(str(url))
        return True
    except Exception:
        return False


def _stages(work: dict[str, float]) -> dict[str, float]:
    """Per-stage totals (train = all training runs, evaluate = all models + comparisons)."""
    out: dict[str, float] = {}
    for k, v in work.items():
        stage = k.split("/")[0]
        out[stage] = out.get(stage, 0.0) + v
    return out


def _machine() -> str:
    import platform
    return f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"


