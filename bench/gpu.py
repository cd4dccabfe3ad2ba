"""Training fed at the accelerator's pace: the CLIPNET-sized model (trainer.model) trained from a
store by the tf.data reader, against the same model trained from batches already in device
memory (the upper bound), in one run.

    python bench/gpu.py            # on a machine with a GPU: writes bench/results/gpu.json
    python bench/gpu.py --smoke    # tiny sizes on any device (the test suite runs this on CPU)

* store_examples_per_s: steps fed by `StoreDataset.to_tf` (jitter 250, RC, personal genomes),
  uint8 sequences cast on the device; with several GPUs through `MirroredStrategy`.
* in_memory_examples_per_s: the same step over `--resident` batches already on the device(s).
* store_over_in_memory: the goal is >= 0.95.
* input_wait_fraction: share of the store-fed wall time spent waiting in `next()` for input.
* host_cores_used: process CPU seconds per wall second during the store-fed run (reader threads,
  TensorFlow's own host work and the driver together).

Mixed precision (float16 compute, dynamic loss scaling) and XLA (`jit_compile`) are used on a GPU,
where they help; on CPU neither (`--no-mixed`, `--no-xla` turn them off anywhere).
Results are written ONLY when an accelerator ran the figures and the sizes are the real ones:
a figure is never recorded under a device that did not measure it.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.common import WORK, report  # noqa: E402

FULL = dict(n_loci=2048, n_individuals=10, replicates=2, input_length=1000, max_jitter=250,
            output_length=500, shard_loci=64, batch=256, model=None)
SMOKE = dict(n_loci=128, n_individuals=4, replicates=1, input_length=100, max_jitter=10,
             output_length=50, shard_loci=32, batch=32, model="tiny")


def make_store(sizes: dict, work: Path) -> str:
    """A seeded synthetic store of these sizes, cached under `work` by shape and schema."""
    from clipstore.schema import SCHEMA_VERSION
    from tests._synthetic import synthetic_store

    name = (f"gpu_store_{sizes['n_loci']}x{sizes['n_individuals']}_{sizes['input_length']}"
            f"_v{SCHEMA_VERSION}.zarr")
    url = work / name
    if not (url / "zarr.json").exists():
        synthetic_store(str(url), n_loci=sizes["n_loci"], n_individuals=sizes["n_individuals"],
                        replicates=sizes["replicates"], input_length=sizes["input_length"],
                        max_jitter=sizes["max_jitter"], output_length=sizes["output_length"],
                        shard_loci=sizes["shard_loci"], seed=0, distinct_shards=4)
    return str(url)


def accelerators() -> tuple[list, str]:
    """(TensorFlow GPU devices, a name for the device the figures come from)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return [], "CPU"
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    return gpus, f"{len(gpus)} x {name}" if len(gpus) > 1 else name


def strategy_for(gpus: list):
    """MirroredStrategy over several GPUs, else the one device (GPU or CPU)."""
    import tensorflow as tf

    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")


def make_step(strategy, sizes: dict, mixed: bool, xla: bool):
    """(model, step(x, y) -> loss): one CLIPNET training step per call, replicas in sync."""
    import keras
    import tensorflow as tf

    from trainer.losses import make_losses
    from trainer.model import build_model, size_kwargs

    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    with strategy.scope():
        model = build_model(sizes["input_length"], 2 * sizes["output_length"],
                            **size_kwargs(sizes["model"]))
        opt = keras.optimizers.Adam(1e-3)
        if mixed:
            opt = keras.optimizers.LossScaleOptimizer(opt)
        opt.build(model.trainable_variables)
    losses, weights = make_losses("clipnet")
    n_rep = strategy.num_replicas_in_sync

    def replica_step(x, y):
        with tf.GradientTape() as tape:
            pred = model(tf.cast(x, tf.float32), training=True)
            loss = tf.add_n([weights[k] * tf.cast(losses[k](y[k], pred[k]), tf.float32)
                             for k in losses]) / n_rep
            scaled = opt.scale_loss(loss) if mixed else loss
        grads = tape.gradient(scaled, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    replica = tf.function(replica_step, jit_compile=xla)

    @tf.function
    def step(x, y):
        return strategy.reduce("SUM", strategy.run(replica, args=(x, y)), axis=None)

    return model, step


def store_dataset(url: str, sizes: dict, global_batch: int):
    from clipstore.reader import StoreDataset

    ds = (StoreDataset.open(url).with_split(1, "train").with_jitter(sizes["max_jitter"])
          .with_rc(True))
    return ds.to_tf(global_batch, seed=0, epochs=None, drop_remainder=True)


def run(sizes: dict, steps: int, warmup: int, resident: int, mixed: bool | None = None,
        xla: bool | None = None, work: Path = WORK) -> dict:
    """Both training runs; returns the figures (never writes them)."""

    work.mkdir(parents=True, exist_ok=True)
    gpus, device = accelerators()
    mixed = bool(gpus) if mixed is None else mixed
    xla = bool(gpus) if xla is None else xla
    strategy = strategy_for(gpus)
    global_batch = sizes["batch"] * strategy.num_replicas_in_sync
    url = make_store(sizes, work)
    model, step = make_step(strategy, sizes, mixed, xla)
    data = strategy.experimental_distribute_dataset(store_dataset(url, sizes, global_batch))

    # ---- store-fed -------------------------------------------------------------------------
    it = iter(data)
    loss = None
    for _ in range(warmup):                       # trace, compile, fill the reader's pools
        loss = step(*next(it))
    float(loss)
    wait, c0, t0 = 0.0, time.process_time(), time.perf_counter()
    for _ in range(steps):
        w = time.perf_counter()
        x, y = next(it)
        wait += time.perf_counter() - w
        loss = step(x, y)
    float(loss)                                   # the device has finished every step
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    store_rate = steps * global_batch / wall

    # ---- in device memory: `resident` batches placed on the replicas once, then cycled --------
    host = [next(it) for _ in range(resident)]
    del it
    on_device = [_to_device(strategy, b) for b in host]
    for i in range(warmup):
        loss = step(*on_device[i % resident])
    float(loss)
    t0 = time.perf_counter()
    for i in range(steps):
        loss = step(*on_device[i % resident])
    float(loss)
    mem_rate = steps * global_batch / (time.perf_counter() - t0)
    import keras

    keras.mixed_precision.set_global_policy("float32")   # leave the process as it was
    return {"device": device, "replicas": strategy.num_replicas_in_sync,
            "mixed_precision": mixed, "xla": xla, "model_parameters": model.count_params(),
            "batch_size": global_batch, "steps": steps,
            "input_length": sizes["input_length"], "output_length": sizes["output_length"],
            "store_examples_per_s": store_rate, "in_memory_examples_per_s": mem_rate,
            "store_over_in_memory": store_rate / mem_rate, "input_wait_fraction": wait / wall,
            "host_cores_used": cpu / wall, "host_cores_available": os.cpu_count(),
            "final_loss": float(loss)}


def _to_device(strategy, batch):
    """A distributed batch copied into the replicas' own memory (no host copy left in the loop)."""
    import tensorflow as tf

    def place(v):
        return tf.identity(v)

    return strategy.run(lambda x, y: (place(x), {k: place(t) for k, t in y.items()}),
                        args=batch)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes; never writes results")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--resident", type=int, default=8, help="batches kept in device memory")
    ap.add_argument("--no-mixed", action="store_true")
    ap.add_argument("--no-xla", action="store_true")
    ap.add_argument("--work", type=Path, default=WORK)
    a = ap.parse_args(argv)
    sizes = SMOKE if a.smoke else FULL
    if not a.smoke and not accelerators()[0]:
        # `make bench` runs every bench/*.py: the full CLIPNET run on CPU would take long and
        # measure nothing this benchmark is about
        print("gpu bench: no accelerator present: nothing measured, bench/results/gpu.json NOT "
              "written (run with --smoke for the CPU smoke test)")
        return {}
    steps = a.steps or (4 if a.smoke else 300)
    warmup = a.warmup or (2 if a.smoke else 20)
    fig = run(sizes, steps, warmup, a.resident, mixed=False if a.no_mixed else None,
              xla=False if a.no_xla else None, work=a.work)
    if fig["device"] == "CPU" or a.smoke:
        why = "smoke sizes" if a.smoke else "no accelerator present"
        print(f"gpu bench: {why}: figures printed, bench/results/gpu.json NOT written")
        for k, v in fig.items():
            print(f"  {k:<26} {v:,.3f}" if isinstance(v, float) else f"  {k:<26} {v}")
        return fig
    report("gpu", fig)
    return fig


if __name__ == "__main__":
    main()
