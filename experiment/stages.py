"""The demo's first stages: simulate a cohort, build its store, train every run (printing
each epoch as it finishes, so a long training stage is never silent)."""
from __future__ import annotations

import csv
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from .jsonio import Log, read_json, write_json
from .plans import Plan, Regime, Run, model_dir, train_config


def suffix(regime: Regime | str) -> str:
    """Folder suffix of a regime: sim/ and store.zarr for the main cohort, sim_null/ ..."""
    name = regime if isinstance(regime, str) else regime.name
    return "" if name == "main" else f"_{name}"


def stage_simulate(out: Path, plan: Plan, regime: Regime, seed: int, log: Log) -> dict:
    """Simulate one regime's cohort (same seed for every regime: all else equal)."""
    folder = out / f"sim{suffix(regime)}"
    marker = folder / "simulated.json"
    if marker.exists():
        log(f"simulate {regime.name}: done already")
        return read_json(marker)
    from clipstore.simulate import simulate
    params = regime.sim_params(plan)
    log(f"simulate {regime.name}: {params['n_individuals']} individuals, {params['n_loci']} loci"
        + ("" if regime.name == "main" else
           f" ({', '.join(f'{k}={v}' for k, v in params.items() if k not in plan.sim)})"))
    s = simulate(folder, seed=seed, **params)
    info = {"regime": regime.name, "config": str(s.config), "truth_dir": str(s.truth_dir),
            "n_individuals": len(s.samples), "n_libraries": len(s.libraries),
            "planted": {k: v for k, v in s.planted.items() if not isinstance(v, dict)}}
    write_json(marker, info)
    return info


@contextmanager
def processes(n: int, initializer=None, initargs: tuple = ()):
    """A pool of `n` fresh (spawned) processes: TensorFlow's threads do not survive a fork.
    A worker that dies (a script without a main guard, memory) is named as such."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from clipstore.errors import InputError
    try:
        with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=initializer, initargs=initargs) as pool:
            yield pool
    except BrokenProcessPool as e:
        raise InputError(f"a worker process of the demo died ({e})",
                         hint="each worker re-runs the main script: from a script, call "
                              "run_demo under `if __name__ == \"__main__\":`; if memory ran "
                              "out, use a plan with train_workers=1") from e


def _timed_simulate(out: Path, plan: Plan, regime: Regime, seed: int, log: Log
                    ) -> tuple[dict, float]:
    t0 = time.perf_counter()
    return stage_simulate(out, plan, regime, seed, log), time.perf_counter() - t0


def simulate_all(out: Path, plan: Plan, regimes, seed: int, log: Log
                 ) -> tuple[dict[str, dict], dict[str, float]]:
    """Every regime's cohort, the missing ones simulated in processes, at most
    plan.train_workers at a time, the slowest (mechanism: its scrub scans every chromosome)
    first: (regime -> simulated.json's content, regime -> its share of this call's wall
    seconds). Measured on the default plan, in REGIMES order: 93 s for the three, where one
    after another took 95-102 s — numpy already keeps more than one core busy part of the
    time."""
    done = {g.name: read_json(out / f"sim{suffix(g)}" / "simulated.json") for g in regimes
            if (out / f"sim{suffix(g)}" / "simulated.json").exists()}
    for name in done:
        log(f"simulate {name}: done already")
    todo = sorted((g for g in regimes if g.name not in done), key=lambda g: g.name != "mechanism")
    if not todo:
        return done, {}
    t0 = time.perf_counter()
    with processes(max(1, min(plan.train_workers, len(todo)))) as pool:
        futures = {g.name: pool.submit(_timed_simulate, out, plan, g, seed, log) for g in todo}
        results = {name: f.result() for name, f in futures.items()}
    sims = done | {name: r[0] for name, r in results.items()}
    return sims, share_wall(time.perf_counter() - t0, {n: r[1] for n, r in results.items()})


def share_wall(wall: float, parts: dict[str, float]) -> dict[str, float]:
    """`wall` seconds shared out in proportion to each part's own seconds: work done side by
    side still adds up to the stage's wall time."""
    total = sum(parts.values())
    return {k: wall * v / total for k, v in parts.items()} if total else {}


def stage_build(out: Path, sim: dict, plan: Plan, regime: Regime, log: Log) -> tuple[str, bool]:
    """Build (or resume) a regime's store: (url, whether an unreadable old store was
    replaced)."""
    from clipstore import schema
    from clipstore.build import build

    from clipstore.errors import IncompleteStoreError, InputError

    url = str(out / f"store{suffix(regime)}.zarr")
    overwrite = False
    try:
        schema.open_store(url)
        log(f"build {regime.name}: store complete already")
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
    log(f"build {regime.name}: {url} with {plan.build_workers} workers")
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
    log(f"build {regime.name}: {s.n_loci} loci x {s.n_libraries} libraries in {s.seconds:.0f}s")
    return url, overwrite



class EpochWatcher:
    """Prints each epoch of a training run as Keras' CSV log gains a row (the trainer's own
    progress is off: its per-step lines are not demo output)."""

    def __init__(self, folder: Path, label: str, max_epochs: int, log: Log, every: float = 2.0):
        self.folder, self.label, self.max_epochs, self.log = folder, label, max_epochs, log
        self.every = every
        self.seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rows(self) -> list[dict]:
        rows = []
        for f in sorted(self.folder.rglob("log.csv")):
            try:
                with open(f) as fh:
                    rows += list(csv.DictReader(fh))
            except OSError:
                pass
        return rows

    def poll(self) -> None:
        rows = self._rows()
        for r in rows[self.seen:]:
            try:
                vl = f"{float(r.get('val_loss', 'nan')):.4f}"
            except ValueError:
                vl = "?"
            self.log(f"train {self.label}: epoch {int(r.get('epoch', 0)) + 1}/{self.max_epochs}, "
                     f"val loss {vl}")
        self.seen = max(self.seen, len(rows))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.poll()

    def __enter__(self) -> "EpochWatcher":
        self.seen = len(self._rows())       # a resumed run: report only new epochs
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.poll()


def _init_worker(threads: int) -> None:
    """A training process: TensorFlow on `threads` CPU threads (set before it starts)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from clipstore.tfquiet import import_tensorflow

    tf = import_tensorflow()
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def _train_one(cfg) -> tuple[list, float]:
    from trainer.train import train_all

    t0 = time.perf_counter()
    return train_all(cfg, quiet=True), time.perf_counter() - t0


def stage_train(out: Path, plan: Plan, runs: list[Run], stores: dict[str, str], log: Log
                ) -> tuple[dict[str, list[list[str]]], dict[str, float]]:
    """Train every member (seed) of every run, each resuming or returning finished:
    (run name -> per seed, its model folders; run name -> seconds of this call's training).

    Why `plan.train_workers` processes of one thread each: the networks are small, so two
    trainings side by side on two cores finish sooner than the same two one after the other
    with two threads each (measured: 1.28x, README "The demo"). A run's seconds are its share
    of the stage's wall time, so the stages still add up to the pipeline's."""
    import os

    jobs = [(run, seed) for run in runs for seed in run.seeds]
    workers = max(1, min(plan.train_workers, len(jobs)))
    threads = max(1, (os.cpu_count() or 1) // workers)
    models: dict[str, list[list[str]]] = {run.name: [] for run in runs}
    spent: dict[str, float] = {}
    t_stage = time.perf_counter()
    with processes(workers, _init_worker, (threads,)) as pool:
        watchers, futures = [], []
        for k, (run, seed) in enumerate(jobs, 1):
            label = f"{run.name} seed {seed} [{k}/{len(jobs)}]"
            w = EpochWatcher(model_dir(out, run, seed), label, plan.max_epochs, log)
            watchers.append(w.__enter__())
            futures.append(pool.submit(_train_one,
                                       train_config(plan, run, stores[run.regime], out, seed)))
        try:
            for (run, _seed), w, fut in zip(jobs, watchers, futures):
                results, dt = fut.result()
                w.__exit__(None, None, None)
                models[run.name].append([r.run_dir or str(Path(r.model_path).parent)
                                         for r in results])
                if any(r.resumed_from is not None for r in results):
                    spent[run.name] = spent.get(run.name, 0.0) + dt
                m = results[0].metrics
                log(f"train {w.label}: {len(results)} model(s), {results[0].epochs_run} epochs, "
                    f"best val loss {m.get('best_val_loss', float('nan')):.4f} ({dt:.0f}s)")
        except BaseException:
            for f in futures:               # a failed run stops the queue: report it now
                f.cancel()
            raise
        finally:
            for w in watchers:
                w.__exit__(None, None, None)
    return models, share_wall(time.perf_counter() - t_stage, spent)
