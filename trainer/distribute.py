"""Where training runs: the distribution strategy, this process's place among the workers, and
the tf.data pipelines each worker feeds (sharded training data, whole validation fold).

Why a module of its own: everything here changes with the cluster (TF_CONFIG, GPUs), nothing
with the science; `train.py` asks it for a strategy, datasets and step counts.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from clipstore.errors import InputError

from .config import TrainConfig
from .storage import RunDir, is_remote

MODEL = "model.keras"
MANIFEST = "manifest.json"


def epoch_seed(seed: int, epoch: int) -> int:
    """Data-order seed of one epoch: a resumed run replays the epochs it has not trained."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0])


def is_chief() -> bool:
    return worker_of(get_strategy())[1] == 0 if os.environ.get("TF_CONFIG") else True


def choose_strategy():
    """MultiWorkerMirrored when TF_CONFIG names a cluster, Mirrored on >1 GPU, else default."""
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        cluster = json.loads(os.environ["TF_CONFIG"]).get("cluster", {})
        if len(cluster.get("chief", [])) + len(cluster.get("worker", [])) > 1:
            return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


_STRATEGY = None


def get_strategy():
    """One strategy per process (TF allows one MultiWorkerMirroredStrategy per program)."""
    global _STRATEGY
    if _STRATEGY is None:
        _STRATEGY = choose_strategy()
    return _STRATEGY


def worker_of(strategy) -> tuple[int, int]:
    """(number of workers, this worker's index)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "cluster_spec", None):
        return 1, 0
    spec = resolver.cluster_spec().as_dict()
    chiefs = len(spec.get("chief", []))
    n = chiefs + len(spec.get("worker", [])) or 1
    if resolver.task_type == "chief":
        return n, 0
    return n, int(resolver.task_id or 0) + chiefs     # with a chief, worker 0 is index 1


def tf_data(ds, cfg: TrainConfig, strategy, n_workers: int, *, train: bool, epoch: int,
            steps: int, pool_loci: int):
    """A dataset for `steps` steps (per worker), cast to float on the device side."""
    import tensorflow as tf

    @tf.autograph.experimental.do_not_convert
    def to_float(x, y):
        return tf.cast(x, tf.float32), y

    def make(shard_ds, batch):
        d = shard_ds.to_tf(batch, seed=epoch_seed(cfg.seed, epoch) if train else 0, epochs=None,
                           shuffle=train, drop_remainder=n_workers > 1, pool_loci=pool_loci)
        return d.map(to_float, num_parallel_calls=1).prefetch(2)

    if n_workers > 1:
        def fn(ctx):
            batch = ctx.get_per_replica_batch_size(cfg.batch_size)
            # training data is sharded across workers; every worker evaluates the whole
            # (small) validation fold, so no worker runs out of validation batches
            part = ds.shard(ctx.num_input_pipelines, ctx.input_pipeline_id) if train else ds
            d = make(part, batch)
            opts = tf.data.Options()
            opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
            return d.with_options(opts)
        return strategy.distribute_datasets_from_function(fn)
    return make(ds, cfg.batch_size)


def steps_per_epoch(ds, cfg: TrainConfig, strategy, n_workers: int, pool_loci: int,
                    wanted: int | None, *, sharded: bool = True) -> int:
    """Steps per epoch; with several workers, the fewest any worker's shard can supply."""
    if n_workers > 1:
        per_replica = cfg.batch_size // strategy.num_replicas_in_sync
        local = max(1, strategy.num_replicas_in_sync // n_workers)
        parts = [ds.shard(n_workers, i) for i in range(n_workers)] if sharded else [ds]
        full = min(p.n_batches(per_replica, drop_remainder=True, pool_loci=pool_loci)
                   for p in parts) // local
        if full == 0:
            raise InputError("too few examples for one global batch on every worker",
                             hint="lower batch_size or use more loci")
    else:
        full = ds.n_batches(cfg.batch_size, pool_loci=pool_loci)
    return full if wanted is None else int(wanted)


def scratch(cfg: TrainConfig, worker: int) -> str:
    """A non-chief worker's run folder, seeded with the chief's checkpoint so every worker
    resumes at the same epoch from the same weights."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix=f"clipstore-worker{worker}-"))
    if is_remote(cfg.output):
        src = RunDir(cfg.output, cfg.storage_options).local
    else:
        src = Path(cfg.output.removeprefix("file://"))
    for rel in ("checkpoint", MANIFEST, MODEL):
        if (src / rel).is_dir():
            shutil.copytree(src / rel, folder / rel)
        elif (src / rel).exists():
            shutil.copy2(src / rel, folder / rel)
    return str(folder)


def multi_worker_workarounds(model, strategy, callbacks: list) -> None:
    """Keras 3 `fit` under MultiWorkerMirroredStrategy (tensorflow/tensorflow#72388):

    * it reduces the first distributed batch to build the model symbolically and fails on dict
      targets; the model is built already, so unpin the strategy (fit runs inside
      `strategy.scope()`, which it then picks up);
    * it averages the per-replica step logs with reduce(MEAN, axis=0), which fails on scalars:
      return each log as a length-1 vector, so that reduction is the mean over replicas.
    """
    from keras import ops

    model._distribute_strategy = None
    for name in ("train_step", "test_step"):
        step = getattr(model, name)

        def vector_logs(data, step=step):
            return {k: ops.reshape(v, (1,)) for k, v in step(data).items()}

        setattr(model, name, vector_logs)


def pool_loci_for(ds, n_workers: int) -> int:
    """Reader pool size: the default, but small enough that every worker gets blocks."""
    from clipstore.reader import DEFAULT_POOL_LOCI

    if n_workers <= 1:
        return DEFAULT_POOL_LOCI
    return max(1, min(DEFAULT_POOL_LOCI, len(ds.loci) // (4 * n_workers)))
