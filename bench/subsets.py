"""Subset benchmark (issue 19): does a selection of libraries cost what it reads?

    .venv/bin/python bench/subsets.py [--small-loci 2048] [--large-loci 640]

Two seeded synthetic stores in the current schema (tests/_synthetic: 2 x reference plus sparse
SNPs, ~8 % nonzero counts): "small" = the loader bench's cohort shape (58 individuals + 9
isogenic replicates = 67 libraries, 1000 bp input + 2 x 250 jitter, 500 bp output, uint16
signal) and "large" = 300 individuals x `--large-loci` loci. For each selection it times the
numpy reader (`batches(256, buffers=...)`, jitter + RC, whole epochs after one warm-up epoch)
and records CPU us per example (process CPU, all threads: it moves far less than
examples/s when others load the machine), examples/s and the start-up (first batch, pool fill included).
`subset5_over_full_cpu_{small,large}[_masked]` = CPU per example at `subsample(5)` / at all
libraries (masked: both masked); issue 19's target is <= 1.5.

It also measures, on one locus chunk of each store, what the candidate layouts would cost per
decoded row (one individual's sequence or one library's signal at one locus): bytes and decode
CPU of the whole-cohort chunk (today), of one row out of a chunk whose blosc blocks are rows
(`blosc2_getitem_ctx`), and of a sequence row rebuilt from 2 x reference plus its variant
sites — the figures the layout choice rests on (docs/store.md, "Subsets").
Writes bench/results/subsets.json.
"""
from __future__ import annotations

import argparse
import ctypes
import itertools
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import WORK, report  # noqa: E402
from clipstore import bloscdec, schema  # noqa: E402
from clipstore.reader import StoreDataset  # noqa: E402
from tests._synthetic import synthetic_store  # noqa: E402

BATCH, L_IN, JIT, L_OUT = 256, 1000, 250, 500
SELECTIONS = {            # name -> (masked, subsample n or None = all libraries)
    "all": (False, None), "subsample100": (False, 100), "subsample30": (False, 30),
    "subsample10": (False, 10), "subsample5": (False, 5), "masked_all": (True, None),
    "masked_subsample5": (True, 5),
}


def make(path: Path, n_loci: int, n_ind: int, reps: int, reuse: bool) -> str:
    if reuse and path.exists():
        try:
            ds = StoreDataset.open(str(path))
            if ds.info.schema_version == schema.SCHEMA_VERSION and len(ds.loci) == n_loci:
                return str(path)
        except Exception:
            pass
    shutil.rmtree(path, ignore_errors=True)
    return synthetic_store(str(path), n_loci=n_loci, n_individuals=n_ind, replicates=reps,
                           input_length=L_IN, max_jitter=JIT, output_length=L_OUT,
                           shard_loci=128, seed=0, distinct_shards=4, signal_dtype="uint16")


def time_selection(ds: StoreDataset, min_examples: int) -> dict:
    """Start-up (first batch), then whole epochs: one to warm up, then at least
    `min_examples` (and at least two epochs) timed."""
    bufs: list[dict] = []
    per_epoch = ds.n_batches(BATCH, drop_remainder=True)

    def epochs():
        for ep in itertools.count():
            yield from ds.batches(BATCH, seed=0, epoch=ep, drop_remainder=True, buffers=bufs)

    it = epochs()
    t = time.perf_counter()
    next(it)
    startup = time.perf_counter() - t
    for _ in range(per_epoch - 1):
        next(it)
    n = max(2 * per_epoch, -(-min_examples // BATCH))
    n = -(-n // per_epoch) * per_epoch           # whole epochs: every block read equally often
    t, c = time.perf_counter(), time.process_time()
    for _ in range(n):
        next(it)
    dt, cpu = time.perf_counter() - t, time.process_time() - c
    it.close()
    return {"cpu_us_per_example": cpu / (n * BATCH) * 1e6, "examples_per_s": n * BATCH / dt,
            "startup_s": startup}


def cohort(name: str, url: str, fig: dict, min_examples: int) -> None:
    base = StoreDataset.open(url).with_jitter(JIT).with_rc(True)
    n_ind = len(np.unique(base.meta.library_individual))
    fig[f"{name}_libraries"], fig[f"{name}_individuals"] = len(base.libraries), n_ind
    fig[f"{name}_loci"] = len(base.loci)
    for sel, (masked, n) in SELECTIONS.items():
        if n is not None and n >= n_ind:
            continue
        ds = base.masked(masked)
        if n is not None:
            ds = ds.subsample(n, seed=0)
        got = time_selection(ds, min_examples)
        for k, v in got.items():
            fig[f"{name}_{sel}_{k}"] = v
        print(f"  {name} {sel}: {got['cpu_us_per_example']:.1f} us/ex, "
              f"{got['examples_per_s'] / 1e3:.0f} k ex/s, start-up {got['startup_s']:.2f} s",
              flush=True)
    for suffix, (a, b) in {"": ("subsample5", "all"),
                           "_masked": ("masked_subsample5", "masked_all")}.items():
        fig[f"subset5_over_full_cpu_{name}{suffix}"] = (
            fig[f"{name}_{a}_cpu_us_per_example"] / fig[f"{name}_{b}_cpu_us_per_example"])


def layout_options(name: str, url: str, fig: dict, picks: int = 5, rounds: int = 200) -> None:
    """Bytes and decode CPU per row (one individual's sequence / library's signal at a locus)
    for the whole-cohort chunk of today's layout and for row-addressable alternatives."""
    import zarr
    from numcodecs import Blosc

    lib = bloscdec._load_blosc2()
    ctx = bloscdec._Context(lib)
    dec, get = lib.blosc2_decompress_ctx, lib.blosc2_getitem_ctx
    get.restype = ctypes.c_int
    get.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32, ctypes.c_int,
                    ctypes.c_int, ctypes.c_void_p, ctypes.c_int32]
    root = zarr.open_group(url, mode="r")
    rows = {"sequence": np.ascontiguousarray(root[schema.SEQUENCE][:, 0]),
            "signal": np.ascontiguousarray(root[schema.SIGNAL][:, 0])}
    for arr_name, a in rows.items():
        out = np.empty_like(a)
        rowbytes = a[0].nbytes
        pick = np.linspace(0, len(a) - 1, picks).astype(int)
        for label, bs in (("cohort_chunk", 2**20), ("row_blocks", rowbytes)):
            frame = Blosc("zstd", 3, Blosc.BITSHUFFLE, blocksize=bs).encode(a)
            base = ctypes.cast(ctypes.c_char_p(frame), ctypes.c_void_p).value
            c = time.process_time()
            for _ in range(rounds):
                dec(ctx.ptr, base, len(frame), out.ctypes.data, out.nbytes)
            full = (time.process_time() - c) / rounds / len(a) * 1e6
            items = rowbytes // a.itemsize
            c = time.process_time()
            for _ in range(rounds):
                for r in pick:
                    get(ctx.ptr, base, len(frame), int(r) * items, items,
                        out.ctypes.data + int(r) * rowbytes, rowbytes)
            one = (time.process_time() - c) / rounds / picks * 1e6
            key = f"layout_{name}_{arr_name}_{label}"
            fig[f"{key}_bytes_per_row"] = len(frame) / len(a)
            fig[f"{key}_decode_all_us_per_row"] = full
            fig[f"{key}_decode_one_us_per_row"] = one
    # sequence as 2 x reference + the rows' values at variant sites (sites: any row differs)
    seq = rows["sequence"]
    ref2 = 2 * np.ascontiguousarray(root[schema.REFERENCE][0])
    sites = np.flatnonzero((seq != ref2[None]).any(axis=(0, 2)))
    values = np.ascontiguousarray(seq[:, sites])
    frame = Blosc("zstd", 3, Blosc.BITSHUFFLE, blocksize=2**20).encode(values)
    buf = np.empty_like(values)
    out = np.empty((picks,) + seq.shape[1:], seq.dtype)
    pick = np.linspace(0, len(seq) - 1, picks).astype(int)
    c = time.process_time()
    for _ in range(rounds):
        bloscdec.decoder()[1](frame, buf)
        out[:] = ref2
        out[:, sites] = buf[pick]
    fig[f"layout_{name}_sequence_sites_n"] = len(sites)
    fig[f"layout_{name}_sequence_sites_bytes_per_row"] = (len(frame) + 2 * len(sites)) / len(seq)
    fig[f"layout_{name}_sequence_sites_decode_one_us_per_row"] = (
        (time.process_time() - c) / rounds / picks * 1e6)
    assert np.array_equal(out, seq[pick])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small-loci", type=int, default=2048)
    ap.add_argument("--large-loci", type=int, default=640)
    ap.add_argument("--min-examples", type=int, default=40_000,
                    help="timed examples per selection (at least two epochs)")
    ap.add_argument("--reuse", action="store_true")
    a = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    fig: dict = {"batch_size": BATCH, "min_examples": a.min_examples, "schema_version": schema.SCHEMA_VERSION,
                 "decoder": bloscdec.decoder()[0], "load_average_1m_start": os.getloadavg()[0]}
    stores = {"small": make(WORK / "subsets_small.zarr", a.small_loci, 58, 9, a.reuse),
              "large": make(WORK / "subsets_large.zarr", a.large_loci, 300, 0, a.reuse)}
    for name, url in stores.items():
        cohort(name, url, fig, a.min_examples)
        layout_options(name, url, fig)
    fig["load_average_1m_end"] = os.getloadavg()[0]
    keys = [k for k in fig if k.startswith("subset5_over_full_cpu_")]
    fig["target_met"] = all(fig[k] <= 1.5 for k in keys)
    report("subsets", fig)


if __name__ == "__main__":
    main()
