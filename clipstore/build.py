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
  the last write, so nothing incomplete ever looks complete. Progress lives in the store itself,
  so resume works on any fsspec URL.
* Integrity: `plan()` fingerprints every input (`fingerprint.py`; the VCF's BGZF blocks and
  index are verified, `bgzf.py`) and the store records them; a resume or rerun refuses inputs
  that changed. One build writes a store at a time (`lock.py`: `OUTPUT.lock`). An OSError while
  writing is an `OutputError` (exit 1); bad input found mid-build an `InputError` (exit 2).
* workers=1 runs in-process (zarr compresses on its own small thread pool: measured 1.0-1.05
  cores). workers >= 2 starts a dask LocalCluster of N single-threaded processes that encode
  with one zarr thread each, so N workers use about N cores; they fork from a fork server that
  has imported this module (`memory_limit=max_memory`, glibc's default malloc: see
  `build_cluster.client`),
  and the driver builds shards itself until the workers are up. A script calling
  build(workers >= 2) needs the `if __name__ == "__main__":` guard (a clear error says so).
  `scheduler=ADDRESS` uses an existing cluster as it is configured.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import zarr

from . import build_cluster, layout, schema
from .config import BuildConfig, check_raw, load_config
from .errors import InputError, OutputError
from .fasta import contigs_of, open_fasta
from .fingerprint import KEY as INPUTS_KEY, changes, fingerprints
from .folds import assign_folds, load_fold_map, normalize_spec
from .info import count_lines
from .lock import StoreLock
from .peaks import call_loci
from .shard import Plan, checksums, compute_shard, geometry
from .tracks import chrom_names, integer_counts, open_bigwig, total_counts
from .variants import SKIP_KEYS, vcf_contig_map

log = logging.getLogger(__name__)
PROGRESS_KEY = "clipstore_build"          # root attribute: shards done + their checksums
BASELINE_BYTES = 150 * 2**20  # interpreter + libraries per process (measured ~110 MiB)
WORKER_BASELINE_BYTES = 300 * 2**20  # a dask worker also holds distributed (~250 MiB measured)
WRITE_BATCH_CHUNKS = 16  # inner chunks zarr encodes per batch (its default 1 awaits each in
                         # turn): 17 % less CPU per shard write (as much as a whole shard per
                         # batch); peak RSS of the bench's 1-worker build 244 -> 304 MB, still
                         # under `fit_shard_loci`'s per-locus model (378 MB there)

@dataclass(frozen=True)
class BuildHooks:
    """Seams for tests (kill -9 mid-build, slow shards so kills land mid-build), passed to
    `build(hooks=...)`. A script run as a real process passes them too (tests/_build_inputs)."""
    after_write: Callable[[int], None] | None = None       # in the process that wrote shard i
    after_record: Callable[[int, int], None] | None = None  # driver: (shard, recorded this run)


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
        lines += count_lines(self.skipped)
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
    check_raw(config.to_dict(), "build config")   # a BuildConfig made in code, not from YAML
    if not config.libraries:
        raise InputError("no libraries in the config", record="libraries")
    fa = open_fasta(config.reference)
    contigs = contigs_of(fa)
    fa.close()
    fold_spec = normalize_spec(config.folds)          # folds: see clipstore.folds
    loci, counts = call_loci(config.peaks, contigs, geometry(config).window,
                             config.divergent_distance, load_fold_map(fold_spec.get("map")),
                             config.contig_aliases)
    loci["fold"], fold_counts = assign_folds(loci, fold_spec, config.contig_aliases)
    counts.update({k: v for k, v in fold_counts.items() if v or k in counts})
    used = sorted(set(loci["chrom"].tolist()))
    individuals: list[str] = []
    for lib in config.libraries:
        if lib.individual not in individuals:
            individuals.append(lib.individual)
    vcf_chroms: dict[str, str] = {}
    known: dict[str, dict] = {}
    if config.variants:
        vcf_chroms, known["variants"] = vcf_contig_map(config.variants, individuals, used, list(contigs),
                                    config.contig_aliases)
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
                np.array(totals, dtype=np.float64), counts, _signal_dtype(config),
                fingerprints(config, known))   # last: every file has opened


def _signal_dtype(config: BuildConfig) -> str:
    """The store's signal dtype: as configured, or for "auto" uint16 when every bigWig's
    header summary shows whole counts that fit (each value is checked again as it is written)."""
    if config.signal_dtype != "auto":
        return config.signal_dtype
    paths = [path for lib in config.libraries for path in (lib.plus, lib.minus)]
    return ("uint16" if all(integer_counts(path, schema.UINT16_MAX) for path in paths)
            else "float32")


@contextlib.contextmanager
def writing(url: str):
    """An OSError while writing the store is the output's fault (full or read-only disk, no
    permission): an OutputError naming the store. What was recorded as done stays done, so
    rerunning the same command resumes once there is room."""
    try:
        yield
    except OSError as e:
        raise OutputError(f"cannot write the store ({e.strerror or e})", file=url,
                          hint="free space or fix permissions there (or choose another "
                               "--output), then rerun the same command to resume") from None


def build_shard(p: Plan, i: int, url: str, storage_options: dict | None,
                after_write: Callable[[int], None] | None = None
                ) -> tuple[int, dict[str, int], list[int]]:
    """Compute shard i and write it whole into the three arrays (the task dask runs)."""
    seq, ref, sig, counts = compute_shard(p, i)
    root = zarr.open_group(url, mode="r+", zarr_format=3, storage_options=storage_options)
    sl = schema.shard_slice(i, p.n_loci, p.config.shard_loci)
    with writing(url), zarr.config.set({"codec_pipeline.batch_size": WRITE_BATCH_CHUNKS}):
        layout.write_shard(root, sl, seq, ref, sig)
    if after_write is not None:
        after_write(i)
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
            recorded = root.attrs.get(INPUTS_KEY)
            if recorded is None and not (root.attrs.get(PROGRESS_KEY) or {}).get("done"):
                recorded = root.attrs[INPUTS_KEY] = p.inputs   # killed right after creating
            changed = changes(recorded or {}, p.inputs)
            if changed:
                raise InputError(
                    "input file(s) changed since this store was built, so resuming would mix "
                    "old and new data: " + "; ".join(changed), file=url,
                    hint="pass --overwrite to rebuild from the current inputs, or restore them")
            return root
    cfg = p.config
    info = dataclasses.replace(geometry(cfg), reference_only=not cfg.variants,
                               skipped=dict(p.counts), build_config=cfg_dict,
                               clipstore_version=_version(), signal_dtype=p.signal_dtype)
    libs = [lib.id for lib in cfg.libraries]
    root = schema.create_store(url, n_loci=p.n_loci, individuals=p.individuals, libraries=libs,
                               library_individual=p.library_individual, info=info,
                               storage_options=storage_options, overwrite=exists)
    root.attrs[INPUTS_KEY] = p.inputs
    return root


def _write_coords(root: zarr.Group, p: Plan) -> None:
    """Coordinates are small: written once per fresh store, before any shard."""
    for name, values in p.loci.items():
        root[name][:] = values
    root["total_counts"][:] = p.totals


def build(config: BuildConfig | str | os.PathLike, output: str, *, workers: int = 1,
          scheduler: str | None = None, max_memory: int | str | None = None,
          overwrite: bool = False, quiet: bool = True, storage_options: dict | None = None,
          hooks: BuildHooks | None = None, **overrides: Any) -> BuildSummary:
    """Build (or resume) the store at `output` (local path or fsspec URL); see module doc.
    One build writes a store at a time (`clipstore.lock`)."""
    t0 = time.perf_counter()
    if workers > 1 and not scheduler:
        build_cluster.check_not_spawning()
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
    lock = StoreLock(output, storage_options)
    with writing(output):
        lock.acquire()
    try:
        with writing(output):
            root = _open_or_create(output, p, _jsonable(p.config.to_dict()), overwrite,
                                   storage_options)
        summary = _fill(root, p, output, storage_options, workers, scheduler, max_memory,
                        quiet, hooks or BuildHooks())
    finally:
        lock.release()
    summary.seconds = time.perf_counter() - t0
    if not quiet:
        print(summary.text())
    return summary


def _fill(root: zarr.Group, p: Plan, output: str, storage_options: dict | None, workers: int,
          scheduler: str | None, max_memory: int | None, quiet: bool, hooks: BuildHooks
          ) -> BuildSummary:
    """Write the coordinates once, then every shard not yet recorded done, then mark the store
    complete (the last write)."""
    progress = dict(root.attrs.get(PROGRESS_KEY) or {})
    if not progress.get("coords"):
        with writing(output):
            _write_coords(root, p)
            progress = {"coords": True, "done": {}}
            root.attrs[PROGRESS_KEY] = progress
    done: dict[str, Any] = dict(progress.get("done", {}))
    shard_loci = p.config.shard_loci
    total = schema.n_shards(p.n_loci, shard_loci)
    pending = [i for i in range(total) if str(i) not in done]
    resumed = total - len(pending)

    from tqdm.auto import tqdm
    bar = tqdm(total=total, initial=resumed, unit="shard", desc="build", disable=quiet)
    n_new = 0

    def record(i: int, counts: dict[str, int], crc: list[int]) -> None:
        nonlocal n_new
        done[str(i)] = {"crc32": crc, "counts": counts}
        with writing(output):
            root.attrs[PROGRESS_KEY] = {"coords": True, "done": done}
        n_new += 1
        bar.update(1)
        if hooks.after_record is not None:
            hooks.after_record(i, n_new)

    task = functools.partial(build_shard, after_write=hooks.after_write)
    try:
        if pending and (workers <= 1 and not scheduler):
            for i in pending:
                record(*task(p, i, output, storage_options))
        elif pending:
            from concurrent.futures import ThreadPoolExecutor
            queue = list(pending)
            quieted = build_cluster.quiet_dask_logging()
            with ThreadPoolExecutor(1) as ex:
                starting = ex.submit(build_cluster.client, workers, scheduler, max_memory)
                try:
                    # LocalCluster workers take ~1-2 s to spawn and import; the driver builds
                    # shards meanwhile instead of idling (at most one shard late to hand over).
                    while not scheduler and queue and not starting.done():
                        record(*task(p, queue.pop(0), output, storage_options))
                    if queue:
                        build_cluster.run_on_cluster(starting.result(), task, p, queue,
                                                     output, storage_options, record)
                finally:
                    build_cluster.close(starting, own_cluster=not scheduler)
                    build_cluster.restore_logging(quieted)
    finally:
        bar.close()
    skipped = dict(p.counts)
    for k in SKIP_KEYS:
        skipped[k] = sum(int(d["counts"].get(k, 0)) for d in done.values())
    if not schema.store_info(root).complete:
        with writing(output):
            schema.mark_complete(root, skipped=skipped)
    return BuildSummary(output, p.n_loci, len(p.individuals), len(p.config.libraries), total,
                        len(pending), resumed, shard_loci, skipped)
