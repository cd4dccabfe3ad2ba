"""Loader benchmark, PyTorch side: clipstore's `to_torch` against GenVarLoader's own torch route
(`Dataset.to_dataloader`, the settings its docs recommend) on the files `bench/loader.py` uses.

    .venv/bin/python bench/torch_loader.py [--loci 20480] [--batches 2000] [--reuse]

`torch_figures(ds, files, inputs, n_batches)` is what bench/loader.py calls to put these keys into
loader.json; run alone it writes bench/results/torch_loader.json.

* torch_examples_per_s: `to_torch(ds, 256, epochs=None)` (jitter 250, RC; uint8 two-hot x, f32
  profile of both strands) drained by a Python `for` loop, the way a torch training loop takes
  batches; the best over the worker counts tried (`torch_workers_best` says which), each timed
  after the first pools are read (as the tf.data figure is).
* genvarloader_torch_examples_per_s: GenVarLoader's `to_dataloader(batch_size=256,
  shuffle=True)` with `num_workers` 0 and 1 (its docs: "generally best to set this to 0 or 1")
  and its prefetching `mode="buffered"` / `"double_buffered"`; the best of them. Its batches are
  haplotype bytes (|S1), which torch cannot hold: the transform a user must write (two-hot by
  a byte lookup table; the buffered modes ignore `transform`, so it is applied to their
  batches as they arrive) is part of the route, as RC and the crop are for clipstore
  (`genvarloader_torch_transform_cpu_us_per_example` is its share).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.common import WORK, open_genvarloader, report  # noqa: E402

BATCH, JIT, L_IN = 256, 250, 1000
WORKERS = (0, 1, 2)


def _drain(it, n: int) -> None:
    for _ in range(n):
        next(it)


def time_loader(make_iter, warmup: int, n_batches: int) -> tuple[float, float]:
    """(examples/s, process CPU us per example) over n_batches after `warmup` batches.
    CPU covers this process only (DataLoader workers are other processes: for worker runs
    the figure is the consumer's share)."""
    it = make_iter()
    _drain(it, warmup)
    t, c = time.perf_counter(), time.process_time()
    _drain(it, n_batches)
    dt, cpu = time.perf_counter() - t, time.process_time() - c
    del it
    return n_batches * BATCH / dt, cpu / (n_batches * BATCH) * 1e6


def time_torch(ds, n_batches: int, workers: int) -> tuple[float, float]:
    """clipstore's torch path with `workers` DataLoader workers (0 = in process)."""
    from clipstore.reader import DEFAULT_POOL_LOCI
    from clipstore.torchdata import to_torch

    loader = to_torch(ds, BATCH, seed=0, epochs=None, drop_remainder=True, num_workers=workers)
    warm = -(-3 * DEFAULT_POOL_LOCI * len(ds.libraries) // BATCH)
    return time_loader(lambda: iter(loader), warm, n_batches)


_LUT = np.zeros((256, 4), np.uint8)
for _i, _c in enumerate(b"ACGT"):
    _LUT[_c, _i] = _LUT[_c + 32, _i] = 1       # upper and lower case; N and padding stay 0


def two_hot_transform(haps, tracks):
    """GenVarLoader batch -> torch: haplotype bytes (B, 2, L) |S1 to two-hot uint8 (B, L, 4)
    and tracks as float32. A byte lookup table (measured ~6x less CPU than seqpro's `ohe`, the
    encoder GenVarLoader depends on), so the route is not judged by a slow user transform."""
    import torch

    h = _LUT[np.ascontiguousarray(haps).view(np.uint8)]          # (B, 2, L, 4)
    x = np.add(h[:, 0], h[:, 1])
    return torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(tracks, np.float32))


def time_genvarloader_torch(gds, n_batches: int) -> dict:
    """Each documented setting of GenVarLoader's torch route: key -> (examples/s, CPU us)."""
    # workers1: forkserver, because a forked worker of this (multithreaded) process deadlocked
    # (measured: the worker sat in a futex wait with no CPU); the buffered modes need
    # `deterministic=True` for haplotypes (GenVarLoader's own error message says so)
    settings = {"workers0": (dict(num_workers=0), False),
                # (forkserver cannot pickle its dataset: "ctypes objects containing pointers")
                "workers1": (dict(num_workers=1, multiprocessing_context="forkserver"), False),
                "buffered": (dict(mode="buffered"), True),
                "double_buffered": (dict(mode="double_buffered"), True)}
    out: dict = {}
    haps, tracks = gds[np.arange(BATCH) % gds.n_regions, np.arange(BATCH) % gds.n_samples]
    t = time.process_time()
    for _ in range(20):
        two_hot_transform(haps, tracks)
    out["transform_cpu_us_per_example"] = (time.process_time() - t) / (20 * BATCH) * 1e6
    for name, (kw, deterministic) in settings.items():
        try:
            d = gds.with_settings(deterministic=True) if deterministic else gds
            dl = d.to_dataloader(batch_size=BATCH, shuffle=True, drop_last=True,
                                 transform=two_hot_transform, **kw)
            x, y = next(iter(dl))
            out[f"{name}_returns"] = f"{tuple(x.shape)} {x.dtype}; {tuple(y.shape)} {y.dtype}"

            def forever(dl=dl):
                while True:       # the buffered modes skip `transform`: applied here instead
                    for b in dl:
                        yield b if not isinstance(b[0], np.ndarray) else two_hot_transform(*b)

            out[name] = time_loader(forever, 20, n_batches)
        except Exception as e:   # a setting this version lacks: say so, keep the others
            out[f"{name}_error"] = f"{type(e).__name__}: {e}"[:300]
    return out


def torch_figures(ds, files: dict | None, inputs: Path | None, n_batches: int,
                  reuse: bool = True) -> dict:
    """The torch figures for loader.json: clipstore's torch path and GenVarLoader's torch route."""
    fig: dict = {}
    best = (0.0, None, None)
    for w in WORKERS:
        rate, cpu = time_torch(ds, n_batches, w)
        fig[f"torch_workers{w}_examples_per_s"] = rate
        fig[f"torch_workers{w}_cpu_us_per_example"] = cpu
        best = max(best, (rate, w, cpu), key=lambda r: r[0])
    fig.update(torch_examples_per_s=best[0], torch_workers_best=best[1],
               torch_cpu_us_per_example=best[2])
    if files is None:
        return fig
    try:
        got = time_genvarloader_torch(open_genvarloader(files, inputs, JIT, L_IN, reuse), n_batches)
    except Exception as e:
        fig["genvarloader_torch_examples_per_s"] = None
        fig["genvarloader_torch_error"] = f"{type(e).__name__}: {e}"[:300]
        return fig
    rates = {k: v for k, v in got.items() if isinstance(v, tuple)}
    fig.update({f"genvarloader_torch_{k}": v for k, v in got.items() if not isinstance(v, tuple)})
    for k, (rate, cpu) in rates.items():
        fig[f"genvarloader_torch_{k}_examples_per_s"] = rate
        fig[f"genvarloader_torch_{k}_cpu_us_per_example"] = cpu
    if rates:
        k = max(rates, key=lambda k: rates[k][0])
        fig.update(genvarloader_torch_examples_per_s=rates[k][0], genvarloader_torch_best=k)
        fig["ratio_torch_vs_genvarloader_torch"] = best[0] / rates[k][0]
    else:
        fig["genvarloader_torch_examples_per_s"] = None
    return fig


def main() -> None:
    from bench.loader import build_store, cohort_files
    from clipstore.reader import StoreDataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loci", type=int, default=20_480)
    ap.add_argument("--batches", type=int, default=2000)
    ap.add_argument("--file-loci", type=int, default=2000)
    ap.add_argument("--reuse", action="store_true", help="reuse bench/work stores if present")
    a = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    fig: dict = {"batch_size": BATCH, "steady_batches": a.batches,
                 "load_average_1m_start": os.getloadavg()[0]}
    store, inputs = build_store(WORK, a.loci, reuse=a.reuse)
    ds = StoreDataset.open(store).with_jitter(JIT).with_rc(True)
    fig.update(n_loci=len(ds.loci), n_libraries=len(ds.libraries))
    files = cohort_files(store, inputs, a.file_loci)
    fig.update(torch_figures(ds, files, inputs, a.batches, reuse=a.reuse))
    fig["load_average_1m_end"] = os.getloadavg()[0]
    report("torch_loader", fig)


if __name__ == "__main__":
    main()
