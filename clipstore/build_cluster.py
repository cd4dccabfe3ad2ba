"""The dask side of a build (workers >= 2 or a scheduler): a LocalCluster of single-threaded
worker processes tuned for whole-shard tasks, and the loop that hands shards out. Only imported
when a build uses dask, so an in-process build never imports distributed."""
from __future__ import annotations

import logging
import os
import time
from typing import Callable

import zarr

from . import native
from .errors import InputError

SPAWN_HINT = ("Python starts each worker process by re-running the main script: in a script, "
              "call build(workers=N) under `if __name__ == \"__main__\":`, or use workers=1")
QUIET_LOGGERS = ("distributed", "dask", "tornado", "bokeh")


def _one_encode_thread_plugin():
    """Worker plugin: zarr encodes with one thread in each worker (its default is a pool per
    process), so `--workers N` uses about N cores. Set before the worker's first zarr call,
    which is when zarr creates its pool; re-applied to any worker the nanny restarts. (Defined
    here so that in-process builds never import distributed.)"""
    from distributed import WorkerPlugin

    class OneEncodeThread(WorkerPlugin):
        def setup(self, worker) -> None:
            zarr.config.set({"threading.max_workers": 1})

    return OneEncodeThread()


def _start_method() -> str:
    """'forkserver' where the platform has it, with a fork server that has imported distributed
    AND clipstore.build (zarr, numcodecs, cyvcf2, pyBigWig, ...): a spawned worker imports all of it
    itself, ~0.6 CPU-s each, while the driver builds shards on the other core. Measured: workers
    ready for their first shard 1.0 s after start instead of 2.7 s. The preload only takes
    effect if this process has not started its fork server yet (else: slower, still correct)."""
    import multiprocessing

    import dask
    from distributed.utils import get_mp_context
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return "spawn"
    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        get_mp_context()  # dask sets its preload list on first use only: let it, then replace
    # it by ours (dask's also preloads pandas: 0.16 CPU-s that a build's workers never use)
    multiprocessing.get_context("forkserver").set_forkserver_preload(["distributed", "clipstore.build"])
    return "forkserver"


def quiet_dask_logging() -> dict[str, int]:
    """dask's and distributed's loggers at WARNING for the build (their INFO lines, 33 per
    2-worker build, reach the CLI's root handler and break up the progress bar), unless the
    user asked for them through dask's own config (DASK_LOGGING__... variables). Returns the
    levels to restore."""
    if any(k.startswith("DASK_LOGGING") for k in os.environ):
        return {}
    import distributed  # noqa: F401  (its import sets its loggers' levels: set ours after)
    old = {}
    for name in QUIET_LOGGERS:
        lg = logging.getLogger(name)
        if lg.getEffectiveLevel() < logging.WARNING:
            old[name] = lg.level
            lg.setLevel(logging.WARNING)
    return old


def restore_logging(old: dict[str, int]) -> None:
    for name, level in old.items():
        logging.getLogger(name).setLevel(level)


def client(workers: int, scheduler: str | None, max_memory: int | None):
    """Client of an existing cluster, or of a LocalCluster of single-threaded worker processes.

    The LocalCluster's workers start WITHOUT dask's default MALLOC_TRIM_THRESHOLD_=65536: that
    setting pins glibc's mmap threshold at 128 KiB, so every ~0.3-0.8 MB buffer zarr and blosc
    allocate per locus chunk is a fresh mmap, page-faulted and unmapped; measured 2.2× the CPU
    per shard (1.13 vs 0.50 CPU-s for 128 loci × 67 libraries), which made 2 workers no faster
    than 1. The build's memory is bounded by shard size (`fit_shard_loci`), not by trimming.
    Workers fork from a preloaded fork server and encode with one zarr thread each (the two
    helpers above). Dask's statistical profiler is off (it walks the task thread's stack every
    10 ms) and its periodic housekeeping is slowed to what ~0.5 s tasks need: at the defaults
    an idle 2-worker cluster used 7 % of a core (driver 3.5 %, each worker 1.7 %), now 1.3 %."""
    import dask
    from distributed import Client, LocalCluster
    if scheduler:
        return Client(scheduler)
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                          "distributed.worker.multiprocessing-method": _start_method(),
                          # the statistical profiler samples the task thread 100×/s
                          "distributed.worker.profile.enabled": False,
                          "distributed.admin.tick.interval": "1s",          # was 20 ms
                          "distributed.admin.system-monitor.interval": "5s",  # was 500 ms
                          "distributed.scheduler.work-stealing": False}):   # equal-size tasks
        try:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   memory_limit=max_memory or "auto", dashboard_address=None,
                                   silence_logs=logging.ERROR,
                                   # no dashboard, and its HTTP server on a free port (not a
                                   # "port 8787 is already in use" warning)
                                   scheduler_kwargs={"dashboard": False,
                                                     "dashboard_address": "127.0.0.1:0"})
        except RuntimeError as e:     # dask: "Nanny failed to start."
            raise InputError(f"dask could not start {workers} local worker processes ({e})",
                             hint=SPAWN_HINT) from e
    client = Client(cluster)
    client.register_plugin(_one_encode_thread_plugin(), name="clipstore-one-encode-thread")
    return client


def check_not_spawning() -> None:
    """Refuse a LocalCluster build while this process is itself a worker re-running the main
    script (a script that calls build(workers>=2) without the `__main__` guard): otherwise every
    worker would read all inputs and try to start a cluster of its own (the private flag it
    reads is fenced in clipstore.native)."""
    if native.bootstrapping():
        raise InputError("build(workers>=2) was called while a dask worker process started",
                         hint=SPAWN_HINT)


def run_on_cluster(client, task: Callable, p, queue: list[int], output: str,
                   storage_options: dict | None, record: Callable) -> None:
    """One task per shard; the driver records each as it completes (only it writes progress)."""
    from distributed import as_completed
    pf = client.scatter(p, broadcast=True)
    futs = [client.submit(task, pf, i, output, storage_options,
                          key=f"clipstore-shard-{i}-{time.time_ns()}", pure=False)
            for i in queue]
    for fut in as_completed(futs):
        record(*fut.result())


def close(starting, own_cluster: bool) -> None:
    """Close the client (and the LocalCluster we started), if it came up at all."""
    if starting.exception() is not None:
        return
    client = starting.result()
    client.close()
    if own_cluster and client.cluster is not None:
        client.cluster.close()
