"""The demo's first stages: simulate a cohort, build its store, train every run."""
from __future__ import annotations

import time
from pathlib import Path

from .jsonio import Log, read_json, write_json
from .plans import Plan, Run, train_config


def stage_simulate(out: Path, plan: Plan, seed: int, log: Log) -> dict:
    marker = out / "sim" / "simulated.json"
    if marker.exists():
        log("simulate: done already")
        return read_json(marker)
    from clipstore.simulate import simulate
    log(f"simulate: {plan.sim['n_individuals']} individuals, {plan.sim['n_loci']} loci")
    s = simulate(out / "sim", seed=seed, **plan.sim)
    info = {"config": str(s.config), "truth_dir": str(s.truth_dir),
            "n_individuals": len(s.samples), "n_libraries": len(s.libraries),
            "planted": {k: v for k, v in s.planted.items() if not isinstance(v, dict)}}
    write_json(marker, info)
    return info


def stage_build(out: Path, sim: dict, plan: Plan, log: Log) -> tuple[str, bool]:
    """Build (or resume) the store: (url, whether an unreadable old store was replaced)."""
    from clipstore import schema
    from clipstore.build import build

    from clipstore.errors import IncompleteStoreError, InputError

    url = str(out / "store.zarr")
    overwrite = False
    try:
        schema.open_store(url)
        log("build: store complete already")
        return url, False
    except IncompleteStoreError:
        pass                                # a killed build: the same call resumes it
    except InputError:
        if Path(url).exists():              # e.g. written by an older schema: rebuild it, and
            overwrite = True                # drop what was derived from it
            import shutil
            for d in ("models", "eval", "report"):
                shutil.rmtree(out / d, ignore_errors=True)
            log("build: the store here is unreadable by this clipstore; rebuilding it")
    log(f"build: {url} with {plan.build_workers} workers")
    import logging

    class _NoClusterChatter(logging.Filter):   # a LocalCluster's INFO lines are not demo output
        def filter(self, r: logging.LogRecord) -> bool:
            return r.levelno >= logging.WARNING or not r.name.startswith(
                ("distributed", "bokeh", "tornado"))

    handlers = logging.getLogger().handlers
    flt = _NoClusterChatter()
    for h in handlers:
        h.addFilter(flt)
    import warnings
    try:
        with warnings.catch_warnings():      # e.g. "Port 8787 is already in use" (dashboard)
            warnings.simplefilter("ignore", UserWarning)
            s = build(sim["config"], url, workers=plan.build_workers, quiet=True,
                      overwrite=overwrite)
    finally:
        for h in handlers:
            h.removeFilter(flt)
    log(f"build: {s.n_loci} loci x {s.n_libraries} libraries in {s.seconds:.0f}s")
    return url, overwrite



def stage_train(out: Path, plan: Plan, runs: list[Run], store: str, seed: int, log: Log
                ) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Train every run (each resumes or returns finished): (run name -> model folders,
    run name -> seconds for the runs that trained in this call)."""
    from trainer.train import train_all

    models: dict[str, list[str]] = {}
    worked: dict[str, float] = {}
    for run in runs:
        t0 = time.perf_counter()
        results = train_all(train_config(plan, run, store, out, seed), quiet=True)
        models[run.name] = [r.run_dir or str(Path(r.model_path).parent) for r in results]
        m = results[0].metrics
        dt = time.perf_counter() - t0
        if any(r.resumed_from is not None for r in results):
            worked[run.name] = dt
        log(f"train {run.name}: {len(results)} model(s), {results[0].epochs_run} epochs, "
            f"best val loss {m.get('best_val_loss', float('nan')):.4f} ({dt:.0f}s)")
    return models, worked


