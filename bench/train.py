"""Training throughput on this machine, and the loader's share of it.

* model_examples_per_s: the released CLIPNET model (8.0M parameters, 1000 bp in, 2 x 500 out),
  Adam + CLIPNET losses, batch 256, data already in memory (the model alone).
* loader_examples_per_s: the same reader pipeline `trainer.train` uses (split, jitter 250, RC,
  to_tf, cast to float32), drained with no model.
* loader_over_model: the loader must never be the bottleneck (goal >= 10).
* fit_examples_per_s: `model.fit` fed by that pipeline (end to end).
* small_*: the demo-sized model (`model: small`, 500 bp in, 2 x 250 out) the same way.
When a GPU is visible, the model figures are measured there (mixed precision) and labelled.

    python bench/train.py [--quick]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import WORK, report  # noqa: E402


def make_store(n_loci: int, n_individuals: int) -> str:
    from clipstore.schema import SCHEMA_VERSION
    from tests._synthetic import synthetic_store

    # cached between runs; the schema version in the name keeps an old layout from being reused
    url = WORK / f"train_store_{n_loci}x{n_individuals}_v{SCHEMA_VERSION}.zarr"
    if not (url / "zarr.json").exists():
        synthetic_store(str(url), n_loci=n_loci, n_individuals=n_individuals, replicates=2,
                        input_length=1000, max_jitter=250, output_length=500, shard_loci=64,
                        seed=0, distinct_shards=4)
    return str(url)


def loader_rate(url: str, batches: int, input_length: int, output_length: int) -> float:
    import tensorflow as tf

    from clipstore.reader import StoreDataset

    ds = (StoreDataset.open(url).with_lengths(input_length, output_length)
          .with_split(1, "train").with_jitter(250).with_rc(True))
    d = ds.to_tf(256, seed=0, epochs=None).map(lambda x, y: (tf.cast(x, tf.float32), y))
    it = iter(d)
    next(it)
    t0 = time.perf_counter()
    n = 0
    for _ in range(batches):
        x, _ = next(it)
        n += int(x.shape[0])
    return n / (time.perf_counter() - t0)


def model_rate(model_kw: dict, input_length: int, out2: int, steps: int, mixed: bool) -> float:
    import keras
    import numpy as np

    from trainer.losses import make_losses
    from trainer.model import build_model

    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    rng = np.random.default_rng(0)
    m = build_model(input_length, out2, **model_kw)
    losses, weights = make_losses("clipnet")
    m.compile(keras.optimizers.Adam(1e-3), loss=losses, loss_weights=weights)
    x = (rng.integers(0, 2, (256, input_length, 4)) * 2).astype("float32")
    y = {"profile": rng.poisson(0.5, (256, out2)).astype("float32"),
         "quantity": rng.poisson(100, (256, 1)).astype("float32")}
    m.train_on_batch(x, y)        # trace + warm up
    m.train_on_batch(x, y)
    t0 = time.perf_counter()
    for _ in range(steps):
        m.train_on_batch(x, y)
    keras.mixed_precision.set_global_policy("float32")
    return 256 * steps / (time.perf_counter() - t0), m.count_params()


def fit_rate(url: str, model_kw: dict, input_length: int, output_length: int, steps: int,
             mixed: bool) -> float:
    import keras
    import tensorflow as tf

    from clipstore.reader import StoreDataset
    from trainer.losses import make_losses
    from trainer.model import build_model

    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    ds = (StoreDataset.open(url).with_lengths(input_length, output_length)
          .with_split(1, "train").with_jitter(250).with_rc(True))
    d = ds.to_tf(256, seed=0, epochs=None).map(lambda x, y: (tf.cast(x, tf.float32), y))
    m = build_model(input_length, 2 * output_length, **model_kw)
    losses, weights = make_losses("clipnet")
    m.compile(keras.optimizers.Adam(1e-3), loss=losses, loss_weights=weights)
    m.fit(d, steps_per_epoch=2, epochs=1, verbose=0)
    t0 = time.perf_counter()
    m.fit(d, steps_per_epoch=steps, epochs=1, verbose=0)
    keras.mixed_precision.set_global_policy("float32")
    return 256 * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer steps (smoke run)")
    args = ap.parse_args()
    import tensorflow as tf

    from trainer.model import SIZES

    gpu = bool(tf.config.list_physical_devices("GPU"))
    steps = 2 if args.quick else 6
    url = make_store(640, 10)
    figures: dict = {"device": "GPU " + tf.config.experimental.get_device_details(
        tf.config.list_physical_devices("GPU")[0]).get("device_name", "") if gpu else "CPU",
        "mixed_precision": gpu}
    big = steps * (20 if gpu else 1)
    model, params = model_rate({}, 1000, 1000, big, gpu)
    loader = loader_rate(url, 20 if args.quick else 60, 1000, 500)
    figures.update(model_parameters=params, model_examples_per_s=round(model, 1),
                   loader_examples_per_s=round(loader, 1),
                   loader_over_model=round(loader / model, 2))
    figures["fit_examples_per_s"] = round(fit_rate(url, {}, 1000, 500, big, gpu), 1)
    small, sparams = model_rate(SIZES["small"], 500, 500, steps * 5, gpu)
    sloader = loader_rate(url, 20 if args.quick else 60, 500, 250)
    figures.update(small_model_parameters=sparams, small_model_examples_per_s=round(small, 1),
                   small_loader_examples_per_s=round(sloader, 1),
                   small_loader_over_model=round(sloader / small, 2),
                   small_fit_examples_per_s=round(fit_rate(url, SIZES["small"], 500, 250,
                                                           steps * 5, gpu), 1))
    report("train", figures)


if __name__ == "__main__":
    main()
