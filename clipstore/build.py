"""Build one Zarr store from FASTA + VCF + bigWigs + peaks: parallel, resumable, atomic.

How the pieces fit:
* `plan()` reads and checks every input in the driver (fast: headers, indexes, peaks), so bad
  input fails before a single array is written, with a message naming file and record.
* The work unit is one shard of loci (`schema.shard_slice`). A task computes and writes WHOLE
  shards of sequence, reference and signal (dask partial-shard writes corrupted data when measured).
* Only the driver writes progress: after a task returns, the driver records the shard as done
  (with CRC32s of its three arrays) in the root attribute `clipstore_build`. A killed build rerun
  with the same config skips done shards and redoes the rest; every shard is a pure function of
  the inputs, so the result is bit-identical to an uninterrupted build. `schema.mark_complete` is
  the last write, so nothing incomplete ever looks complete. Progress lives in the store itself
  (no local lock files), so resume works on any fsspec URL.
* workers=1 runs in-process (zarr compresses on its own small thread pool: measured 1.0-1.05
  cores). workers >= 2 starts a dask LocalCluster of N single-threaded processes that encode
  with one zarr thread each, so N workers use about N cores; they fork from a fork server that
  has imported this module (`memory_limit=max_memory`, glibc's default malloc: see `_client`),
  and the driver builds shards itself until the workers are up. A script calling
  build(workers >= 2) needs the `if __name__ == "__main__":` guard (a clear error says so).
  `scheduler=ADDRESS` uses an existing cluster as it is configured.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr

from . import schema
from .config import BuildConfig, load_config
from .contigs import reverse_map
from .encoding import one_hot
from .errors import InputError
from .fasta import contigs_of, fetch, open_fasta
from .folds import assign_folds, load_fold_map, normalize_spec
from .peaks import call_loci
from .tracks import chrom_names, integer_counts, open_bigwig, total_counts, windows
from .variants import SKIP_KEYS, apply_snps, contigs_with_records, open_vcf

log = logging.getLogger(__name__)
PROGRESS_KEY = "clipstore_build"          # root attribute: shards done + their checksums
KILL_HOOK = "CLIPSTORE_TEST_KILL_AFTER_SHARDS"  # tests only: SIGKILL the driver after N shards
SLOW_HOOK = "CLIPSTORE_TEST_SHARD_DELAY"        # tests only: seconds to wait after each shard
                                                # write, so random kills land mid-build
BASELINE_BYTES = 150 * 2**20  # interpreter + libraries per process (measured ~110 MiB)
WORKER_BASELINE_BYTES = 300 * 2**20  # a dask worker also holds distributed (~250 MiB measured)
WRITE_BATCH_CHUNKS = 16  # inner chunks zarr encodes per batch (its default 1 awaits each in
                         # turn): 17 % less CPU per shard write (as much as a whole shard per
                         # batch); peak RSS of the bench's 1-worker build 244 -> 304 MB, still
                         # under `fit_shard_loci`'s per-locus model (378 MB there)
SPAWN_HINT = ("Python starts each worker process by re-running the main script: in a script, "
              "call build(workers=N) under `if __name__ == \"__main__\":`, or use workers=1")


@dataclass(frozen=True)
class Plan:
    """Everything a shard task needs, as plain picklable data."""
    config: BuildConfig
    loci: dict[str, np.ndarray]
    individuals: list[str]
    library_individual: np.ndarray
    vcf_chroms: dict[str, str]            # FASTA contig → VCF contig
    bw_chroms: list[tuple[dict[str, str], dict[str, str]]]  # per library: plus, minus maps
    totals: np.ndarray
    counts: dict[str, int]                # locus-level skipped counts from the peaks
    signal_dtype: str = "float32"         # resolved from config.signal_dtype ("auto")

    @property
    def n_loci(self) -> int:
        return len(self.loci["start"])


@dataclass
class BuildSummary:
    output: str
    n_loci: int
    n_individuals: int
    n_libraries: int
    n_shards: int
    shards_built: int
    shards_resumed: int
    shard_loci: int
    skipped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def examples_per_s(self) -> float:
        """(library, locus) examples written per second in this run."""
        done = self.n_libraries * self.n_loci * self.shards_built / max(self.n_shards, 1)
        return done / self.seconds if self.seconds else 0.0

    def text(self) -> str:
        lines = [f"store      {self.output}",
                 f"loci       {self.n_loci}  individuals {self.n_individuals}  "
                 f"libraries {self.n_libraries}",
                 f"shards     {self.n_shards} × {self.shard_loci} loci "
                 f"({self.shards_built} built, {self.shards_resumed} already done)",
                 f"time       {self.seconds:.1f} s"]
        lines += [f"skipped    {k}: {v}" for k, v in self.skipped.items()]
        return "\n".join(lines)


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("clipstore")
    except Exception:
        return "unknown"


def _jsonable(d: Any) -> Any:
    return json.loads(json.dumps(d))


def plan(config: BuildConfig) -> Plan:
    """Read and check every input; raises InputError before anything is written."""
    ids = [lib.id for lib in config.libraries]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise InputError(f"duplicated library id(s) {dup}", record="libraries",
                         hint="every library needs a unique id")
    if not config.libraries:
        raise InputError("no libraries in the config", record="libraries")
    fa = open_fasta(config.reference)
    contigs = contigs_of(fa)
    fa.close()
    fold_spec = normalize_spec(config.folds)          # folds: see clipstore.folds
    loci, counts = call_loci(config.peaks, contigs, config.window, config.divergent_distance,
                             load_fold_map(fold_spec.get("map")), config.contig_aliases)
    loci["fold"], fold_counts = assign_folds(loci, fold_spec, config.contig_aliases)
    counts.update({k: v for k, v in fold_counts.items() if v or k in counts})
    used = sorted(set(loci["chrom"].tolist()))
    individuals: list[str] = []
    for lib in config.libraries:
        if lib.individual not in individuals:
            individuals.append(lib.individual)
    vcf_chroms: dict[str, str] = {}
    if config.variants:
        vcf = open_vcf(config.variants, individuals)
        vcf_chroms = reverse_map(vcf.seqnames, used, config.contig_aliases)
        vcf.close()
        absent = [c for c in used if c not in vcf_chroms]
        if absent:
            log.warning("VCF %s has no contig for %s: those loci get the reference sequence",
                        config.variants, absent)
        indexed = contigs_with_records(config.variants)
        empty = sorted(c for c, v in vcf_chroms.items() if v not in indexed)
        if empty:
            log.info("VCF %s has no records on %s: those loci get the reference sequence",
                     config.variants, empty)
        vcf_chroms = {c: v for c, v in vcf_chroms.items() if v in indexed}
    else:
        individuals = ["reference"]
    bw_chroms, totals = [], []
    for lib in config.libraries:
        maps, tot = [], 0.0
        for path in (lib.plus, lib.minus):
            bw = open_bigwig(path)
            maps.append(chrom_names(bw, path, used, config.contig_aliases))
            tot += total_counts(bw)
            bw.close()
        bw_chroms.append((maps[0], maps[1]))
        totals.append(tot)
    lib_ind = np.array([individuals.index(lib.individual) if config.variants else 0
                        for lib in config.libraries], dtype=np.int32)
    return Plan(config, loci, individuals, lib_ind, vcf_chroms, bw_chroms,
                np.array(totals, dtype=np.float64), counts, _signal_dtype(config))


def _signal_dtype(config: BuildConfig) -> str:
    """The store's signal dtype: as configured, or for "auto" uint16 when every bigWig's
    header summary shows whole counts that fit (each value is checked again as it is written)."""
    if config.signal_dtype != "auto":
        return config.signal_dtype
    paths = [path for lib in config.libraries for path in (lib.plus, lib.minus)]
    return ("uint16" if all(integer_counts(path, schema.UINT16_MAX) for path in paths)
            else "float32")


def geometry(config: BuildConfig) -> schema.StoreInfo:
    """The store's windows for this config (lengths only): the one place they are derived."""
    return schema.StoreInfo(input_length=config.input_length, max_jitter=config.max_jitter,
                            output_length=config.output_length, shard_loci=config.shard_loci)


def compute_shard(p: Plan, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """(sequence, reference, signal, counts) of shard i: a pure function of the inputs."""
    cfg = p.config
    sl = schema.shard_slice(i, p.n_loci, cfg.shard_loci)
    geom = geometry(cfg)
    W, n = geom.window, sl.stop - sl.start
    SW, s_off = geom.signal_window, geom.signal_offset
    fa = open_fasta(cfg.reference)
    contigs = contigs_of(fa)
    ref = np.zeros((n, W, 4), np.uint8)
    seq = np.zeros((len(p.individuals), n, W, 4), np.uint8)
    sig = np.zeros((len(cfg.libraries), n, SW, 2), p.signal_dtype)
    counts = dict.fromkeys(SKIP_KEYS, 0)
    vcf = None
    if cfg.variants:
        vcf = open_vcf(cfg.variants)
        order = {s: k for k, s in enumerate(vcf.samples)}
        sample_idx = np.array([order[s] for s in p.individuals])
    chrom, start = p.loci["chrom"], p.loci["start"]
    for k, j in enumerate(range(sl.start, sl.stop)):
        c, s = str(chrom[j]), int(start[j])
        bases = fetch(fa, contigs[c], s, s + W)
        ref[k] = one_hot(bases)
        if vcf is not None and c in p.vcf_chroms:
            count_from = int(p.loci["end"][j - 1]) if j > 0 and chrom[j - 1] == c else -1
            seq[:, k] = apply_snps(vcf, cfg.variants, p.vcf_chroms[c], s, bases, ref[k],
                                   sample_idx, count_from, counts)
        else:
            seq[:, k] = ref[k][None] * 2
    fa.close()
    if vcf is not None:
        vcf.close()
    for li, lib in enumerate(cfg.libraries):
        for strand, path in enumerate((lib.plus, lib.minus)):
            bw = open_bigwig(path)
            names = p.bw_chroms[li][strand]
            for c in dict.fromkeys(chrom[sl].tolist()):      # loci are sorted by contig
                ks = np.flatnonzero(chrom[sl] == c)
                w = windows(bw, names[c], start[sl][ks] + s_off, SW)
                sig[li, ks, :, strand] = _exact(w, sig.dtype, path, lib.id, c,
                                                start[sl][ks] + s_off)
            bw.close()
    return seq, ref, sig, counts


def _exact(w: np.ndarray, dtype: np.dtype, path: str, library: str, chrom: str,
           starts: np.ndarray) -> np.ndarray:
    """Windows `w` (float32, one row per start) in the store's signal dtype, or an InputError
    naming the first value uint16 would not hold exactly (checked while `w` is in cache)."""
    if dtype == np.float32:
        return w
    out = w.astype(dtype)                 # truncates fractions, wraps overflow: caught here
    if np.array_equal(out, w):
        return out
    k, pos = (int(v[0]) for v in np.nonzero(out != w))
    raise InputError(
        f"value {float(w[k, pos])} at {chrom}:{int(starts[k]) + pos + 1} is not a whole count "
        f"in 0..{schema.UINT16_MAX}, so signal cannot be stored as uint16", file=path,
        record=f"library {library}",
        hint="set signal_dtype: float32 in the build config (or --signal-dtype float32) "
             "and rebuild with --overwrite")


def checksums(seq: np.ndarray, ref: np.ndarray, sig: np.ndarray) -> list[int]:
    """CRC32 of each array's C-order bytes: what `clipstore validate` recomputes from the store."""
    return [zlib.crc32(np.ascontiguousarray(a).data) for a in (seq, ref, sig)]  # no copy


def build_shard(p: Plan, i: int, url: str, storage_options: dict | None
                ) -> tuple[int, dict[str, int], list[int]]:
    """Compute shard i and write it whole into the three arrays (the task dask runs)."""
    seq, ref, sig, counts = compute_shard(p, i)
    root = zarr.open_group(url, mode="r+", zarr_format=3, storage_options=storage_options)
    sl = schema.shard_slice(i, p.n_loci, p.config.shard_loci)
    with zarr.config.set({"codec_pipeline.batch_size": WRITE_BATCH_CHUNKS}):
        root[schema.SEQUENCE][:, sl] = seq
        root[schema.REFERENCE][sl] = ref
        root[schema.SIGNAL][:, sl] = sig
    if os.environ.get(SLOW_HOOK):
        time.sleep(float(os.environ[SLOW_HOOK]))
    return i, counts, checksums(seq, ref, sig)


def fit_shard_loci(config: BuildConfig, n_ind: int, n_lib: int, max_memory: int | None,
                   baseline: int = BASELINE_BYTES) -> int:
    """Largest shard size ≤ config.shard_loci whose work fits in `max_memory` per worker.

    Per locus a task holds its arrays once and about one encoded copy while zarr writes them
    (measured slope: 0.26 MB per locus for 58 individuals and 67 libraries at W = 1500, when
    signal still covered W; it now covers the shorter signal window)."""
    if not max_memory:
        return config.shard_loci
    geom = geometry(config)
    per_locus = (geom.window * (4 * n_ind * 2 + 4 * 2)
                 + geom.signal_window * 8 * n_lib * 2)  # arrays + encode copies
    fit = (max_memory - baseline - (4 << 20)) // per_locus   # 4 MiB: one bigWig read block
    if fit < 1:
        raise InputError(f"--max-memory {max_memory / 2**20:.0f} MiB is too small: one locus "
                         f"needs ~{per_locus / 2**20:.1f} MiB on top of "
                         f"~{baseline / 2**20:.0f} MiB for the libraries",
                         hint="give more memory per worker")
    return int(min(config.shard_loci, fit))


def _existing(url: str, storage_options: dict | None) -> tuple[bool, zarr.Group | None]:
    """(something is at url, the group if it is a zarr group)."""
    import fsspec
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    if not fs.exists(path):
        return False, None
    try:
        return True, zarr.open_group(url, mode="r+", zarr_format=3,
                                     storage_options=storage_options)
    except Exception:
        return bool(fs.isfile(path) or fs.ls(path)), None


def _interrupted_create(root: zarr.Group) -> bool:
    """A group holding only (some of) the schema's arrays and no attributes can only be a
    `create_store` that was killed before its last write: safe to recreate."""
    names = set(root.array_keys())
    return (not dict(root.attrs) and not list(root.group_keys())
            and names <= {*schema.DIMS, *schema.ALL_COORDS})


def _open_or_create(url: str, p: Plan, cfg_dict: dict, overwrite: bool,
                    storage_options: dict | None) -> zarr.Group:
    exists, root = _existing(url, storage_options)
    if exists and not overwrite:
        attrs = root.attrs.get(schema.ATTRS_KEY) if root is not None else None
        if attrs is None and root is not None and _interrupted_create(root):
            log.info("%s: a build was killed while creating the store; starting it afresh", url)
        elif attrs is None:
            raise InputError("output path already holds something that is not a clipstore store",
                             file=url, hint="choose another --output, or pass --overwrite")
        elif attrs.get("schema_version") != schema.SCHEMA_VERSION:
            raise InputError(f"output holds a store of clipstore schema version "
                             f"{attrs.get('schema_version')} (this clipstore writes "
                             f"{schema.SCHEMA_VERSION}); it cannot be resumed", file=url,
                             hint="pass --overwrite to rebuild it, or choose another --output")
        elif attrs.get("build_config") != cfg_dict:
            raise InputError("output already holds a store built from a different config",
                             file=url, hint="choose another --output, or pass --overwrite to "
                                            "replace it (same config resumes)")
        else:
            return root
    cfg = p.config
    info = schema.StoreInfo(input_length=cfg.input_length, max_jitter=cfg.max_jitter,
                            output_length=cfg.output_length, shard_loci=cfg.shard_loci,
                            reference_only=not cfg.variants, skipped=dict(p.counts),
                            build_config=cfg_dict, clipstore_version=_version(),
                            signal_dtype=p.signal_dtype)
    libs = [lib.id for lib in cfg.libraries]
    root = schema.create_store(url, n_loci=p.n_loci, individuals=p.individuals, libraries=libs,
                               library_individual=p.library_individual, info=info,
                               storage_options=storage_options, overwrite=exists)
    return root


def _write_coords(root: zarr.Group, p: Plan) -> None:
    """Coordinates are small: written once per fresh store, before any shard."""
    for name, values in p.loci.items():
        root[name][:] = values
    root["total_counts"][:] = p.totals


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
    AND this module (zarr, numcodecs, cyvcf2, pyBigWig, ...): a spawned worker imports all of it
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
    multiprocessing.get_context("forkserver").set_forkserver_preload(["distributed", __name__])
    return "forkserver"


def _client(workers: int, scheduler: str | None, max_memory: int | None):
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
                                   silence_logs=logging.ERROR)
        except RuntimeError as e:     # dask: "Nanny failed to start."
            raise InputError(f"dask could not start {workers} local worker processes ({e})",
                             hint=SPAWN_HINT) from e
    client = Client(cluster)
    client.register_plugin(_one_encode_thread_plugin(), name="clipstore-one-encode-thread")
    return client


def _check_not_spawning() -> None:
    """Refuse a LocalCluster build while this process is itself a worker re-running the main
    script (a script that calls build(workers>=2) without the `__main__` guard): otherwise every
    worker would read all inputs and try to start a cluster of its own. `_inheriting` is the
    flag multiprocessing's own "bootstrapping phase" check reads."""
    import multiprocessing
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise InputError("build(workers>=2) was called while a dask worker process started",
                         hint=SPAWN_HINT)


def _run_on_cluster(client, p: Plan, queue: list[int], output: str,
                    storage_options: dict | None, record) -> None:
    """One task per shard; the driver records each as it completes (only it writes progress)."""
    from distributed import as_completed
    pf = client.scatter(p, broadcast=True)
    futs = [client.submit(build_shard, pf, i, output, storage_options,
                          key=f"clipstore-shard-{i}-{time.time_ns()}", pure=False)
            for i in queue]
    for fut in as_completed(futs):
        record(*fut.result())


def _close(starting, own_cluster: bool) -> None:
    """Close the client (and the LocalCluster we started), if it came up at all."""
    if starting.exception() is not None:
        return
    client = starting.result()
    client.close()
    if own_cluster and client.cluster is not None:
        client.cluster.close()


def build(config: BuildConfig | str | os.PathLike, output: str, *, workers: int = 1,
          scheduler: str | None = None, max_memory: int | str | None = None,
          overwrite: bool = False, quiet: bool = True, storage_options: dict | None = None,
          **overrides: Any) -> BuildSummary:
    """Build (or resume) the store at `output` (local path or fsspec URL); see module doc."""
    t0 = time.perf_counter()
    if workers > 1 and not scheduler:
        _check_not_spawning()
    if isinstance(config, (str, os.PathLike)):
        config = load_config(config, **overrides)
    elif overrides:
        config = config.replace(**overrides)
    if isinstance(max_memory, str):
        from dask.utils import parse_bytes
        max_memory = parse_bytes(max_memory)
    output = str(output)
    p = plan(config)
    in_process = workers <= 1 and not scheduler
    if not in_process and output.startswith("memory://"):
        raise InputError("a memory:// store lives in one process; dask workers cannot write it",
                         file=output, hint="use workers=1, or a path or bucket URL")
    shard_loci = fit_shard_loci(config, len(p.individuals), len(config.libraries), max_memory,
                                BASELINE_BYTES if in_process else WORKER_BASELINE_BYTES)
    if shard_loci != config.shard_loci:
        log.info("shard_loci %d → %d to fit --max-memory", config.shard_loci, shard_loci)
        p = Plan(**{**p.__dict__, "config": config.replace(shard_loci=shard_loci)})
    cfg_dict = _jsonable(p.config.to_dict())
    root = _open_or_create(output, p, cfg_dict, overwrite, storage_options)
    progress = dict(root.attrs.get(PROGRESS_KEY) or {})
    if not progress.get("coords"):
        _write_coords(root, p)
        progress = {"coords": True, "done": {}}
        root.attrs[PROGRESS_KEY] = progress
    done: dict[str, Any] = dict(progress.get("done", {}))
    total = schema.n_shards(p.n_loci, shard_loci)
    pending = [i for i in range(total) if str(i) not in done]
    resumed = total - len(pending)
    kill_after = int(os.environ.get(KILL_HOOK, "0") or 0)

    from tqdm.auto import tqdm
    bar = tqdm(total=total, initial=resumed, unit="shard", desc="build", disable=quiet)
    n_new = 0

    def record(i: int, counts: dict[str, int], crc: list[int]) -> None:
        nonlocal n_new
        done[str(i)] = {"crc32": crc, "counts": counts}
        root.attrs[PROGRESS_KEY] = {"coords": True, "done": done}
        n_new += 1
        bar.update(1)
        if kill_after and n_new >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    try:
        if pending and in_process:
            for i in pending:
                record(*build_shard(p, i, output, storage_options))
        elif pending:
            from concurrent.futures import ThreadPoolExecutor
            queue = list(pending)
            with ThreadPoolExecutor(1) as ex:
                starting = ex.submit(_client, workers, scheduler, max_memory)
                try:
                    # LocalCluster workers take ~1-2 s to spawn and import; the driver builds
                    # shards meanwhile instead of idling (at most one shard late to hand over).
                    while not scheduler and queue and not starting.done():
                        record(*build_shard(p, queue.pop(0), output, storage_options))
                    if queue:
                        _run_on_cluster(starting.result(), p, queue, output, storage_options,
                                        record)
                finally:
                    _close(starting, own_cluster=not scheduler)
    finally:
        bar.close()
    skipped = dict(p.counts)
    for k in SKIP_KEYS:
        skipped[k] = sum(int(d["counts"].get(k, 0)) for d in done.values())
    if not schema.store_info(root).complete:
        schema.mark_complete(root, skipped=skipped)
    summary = BuildSummary(output, p.n_loci, len(p.individuals), len(config.libraries), total,
                           len(pending), resumed, shard_loci, skipped,
                           time.perf_counter() - t0)
    if not quiet:
        print(summary.text())
    return summary
