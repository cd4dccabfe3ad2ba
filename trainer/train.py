"""Train one CLIPNET model from a store (through the clipstore readers only), resumably.

    result = train(load_train_config("train.yaml"))       # one run
    results = train_all(cfg)                               # ensemble / subsampling grid

Why an epoch-at-a-time loop around `model.fit`: each epoch gets its own seeded data order
(seed, epoch), so a killed run resumed from its last checkpoint replays exactly what an
uninterrupted run would have seen, and early-stopping state, the fine-tuning warm-up and the
learning rate are plain variables saved in `checkpoint/state.json` beside `checkpoint/last.keras`
(model + optimizer). Rerunning the same command continues at the next epoch; a finished run is
returned as is.

Run folder: model.keras (best validation loss), manifest.json, log.csv, tensorboard/,
checkpoint/{last.keras,state.json}.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clipstore.errors import InputError

from . import checkpoint, progress
from .checkpoint import LAST, STATE
from .config import TrainConfig
from .distribute import (MODEL, epoch_seed, get_strategy, is_chief, multi_worker_workarounds,
                         pool_loci_for, scratch, steps_per_epoch, tf_data, worker_of)
from .manifest import MANIFEST, build_manifest, write_manifest
from .progress import sayer
from .storage import EXPERIMENT, RunDir, atomic_write_text, experiment_models, is_remote

__all__ = ["LAST", "MODEL", "STATE", "TrainResult", "epoch_seed", "expand", "experiment_models",
           "quantity_scale", "select", "subsample_seed", "train", "train_all"]

log = logging.getLogger(__name__)



@dataclass
class TrainResult:
    """Where a finished run's files are and how training went."""

    model_path: str
    manifest_path: str
    history: dict[str, list[float]]
    run_dir: str = ""
    best_epoch: int = -1
    epochs_run: int = 0
    stopped_early: bool = False
    resumed_from: int | None = None     # first epoch trained by this call (None: nothing to do)
    metrics: dict[str, Any] = field(default_factory=dict)


# ---- experiment expansion ---------------------------------------------------------------------
def expand(cfg: TrainConfig) -> list[tuple[str, TrainConfig]]:
    """One (relative run folder, single-run config) per model an experiment config asks for.

    subsample {n: [5, 10], draws: r} x ensemble [1..9] -> n5/draw0/rep1, ...; a plain config is
    one run in `output` itself.
    """
    subs: list[tuple[str, dict | None]] = [("", None)]
    if cfg.subsample is not None and "draw" not in cfg.subsample:
        ns = cfg.subsample["n"] if isinstance(cfg.subsample["n"], list) else [cfg.subsample["n"]]
        subs = [(f"n{n}/draw{r}", {"n": n, "draws": 1, "seed": cfg.subsample.get("seed", 0),
                                   "draw": r})
                for n in ns for r in range(cfg.subsample.get("draws", 1))]
    elif cfg.subsample is not None:
        subs = [("", cfg.subsample)]
    reps: list[tuple[str, int]] = ([(f"rep{k}", k) for k in cfg.ensemble] if cfg.ensemble
                                   else [("", cfg.replicate)])
    out = []
    for sname, sub in subs:
        for rname, k in reps:
            rel = "/".join(p for p in (sname, rname) if p)
            run = cfg.replace(subsample=sub if sub is not None else cfg.subsample, ensemble=None,
                              replicate=k, output=_join(cfg.output, rel) if rel else cfg.output)
            out.append((rel, run))
    return out


def _join(base: str, rel: str) -> str:
    return f"{base.rstrip('/')}/{rel}"


def train_all(cfg: TrainConfig, *, quiet: bool = True, fresh: bool = False) -> list[TrainResult]:
    """Run every model of an experiment (ensemble folds, subsampling draws) in turn; each run
    resumes independently, so rerunning the command after a kill skips finished models.

    A multi-model experiment also gets `experiment.json` in its output folder: one entry per
    run (folder, replicate, subsample draw, model path), which `experiment_models` reads.
    `fresh` discards every run's checkpoint first (a damaged or unwanted earlier run).
    """
    runs = expand(cfg)
    say = sayer(quiet)
    results = []
    for k, (rel, run) in enumerate(runs, start=1):
        if len(runs) > 1:
            say(f"model {k}/{len(runs)}: {rel} (replicate {run.replicate})")
        results.append(train(run, quiet=quiet, fresh=fresh))
    if len(runs) > 1 and is_chief():
        index = {"kind": "clipstore.trainer.experiment", "config": cfg.to_dict(),
                 "runs": [{"name": rel, "replicate": run.replicate, "subsample": run.subsample,
                           "model": r.model_path, "manifest": r.manifest_path,
                           "best_val_loss": r.metrics.get("best_val_loss")}
                          for (rel, run), r in zip(runs, results)]}
        root = RunDir(cfg.output, cfg.storage_options)
        atomic_write_text(root.local / EXPERIMENT, json.dumps(index, indent=1) + "\n")
        root.sync()
    return results


# ---- one run ----------------------------------------------------------------------------------
def subsample_seed(sub: dict) -> int:
    """Seed for draw r of n libraries: distinct per (seed, n, draw), stable across versions."""
    return int(np.random.SeedSequence([int(sub.get("seed", 0)), int(sub["n"]),
                                       int(sub.get("draw", 0))]).generate_state(1)[0])


def select(cfg: TrainConfig):
    """(train dataset, validation dataset, selection record) for one run, from the reader."""
    from clipstore.reader import StoreDataset

    # one set of fsspec options serves the store and the output: give it only to URLs
    ds = StoreDataset.open(cfg.store,
                           storage_options=cfg.storage_options if is_remote(cfg.store) else None)
    if cfg.libraries:
        ds = ds.with_libraries(cfg.libraries)
    if cfg.subsample is not None:
        n = cfg.subsample["n"]
        if isinstance(n, list):
            raise InputError("a single run needs one subsample.n; use train_all for a grid")
        try:
            ds = ds.subsample(n, seed=subsample_seed(cfg.subsample))
        except ValueError as e:
            raise InputError(str(e), file=cfg.store, record="subsample") from None
    ds = ds.masked(cfg.masked)
    try:
        ds = ds.with_lengths(cfg.input_length, cfg.output_length)
        jitter = ds.info.max_jitter if cfg.jitter is None else cfg.jitter
        train_ds = ds.with_split(cfg.replicate, "train").with_jitter(jitter).with_rc(cfg.rc)
    except ValueError as e:
        raise InputError(str(e), file=cfg.store, hint="check input_length/output_length/jitter")
    train_ds = train_ds.with_rpm(cfg.rpm)
    val_ds = ds.with_split(cfg.replicate, "validation").with_rpm(cfg.rpm)
    for part, d in (("training", train_ds), ("validation", val_ds)):
        if d.n_examples == 0:
            from clipstore.refold import check_split   # names the fold scheme that would work
            check_split(cfg.store, cfg.replicate,
                        storage_options=cfg.storage_options if is_remote(cfg.store) else None)
            raise InputError(f"no {part} examples for replicate {cfg.replicate}", file=cfg.store,
                             hint="its folds hold loci, so the library selection (libraries, "
                                  "subsample) left none")
    lib_ids = [str(s) for s in ds.meta.library_id[ds.libraries].tolist()]
    selection = {"libraries": lib_ids, "n_libraries": len(lib_ids),
                 "replicate": cfg.replicate, "masked": cfg.masked,
                 "subsample": cfg.subsample, "train_loci": int(len(train_ds.loci)),
                 "validation_loci": int(len(val_ds.loci)),
                 "train_examples": int(train_ds.n_examples),
                 "validation_examples": int(val_ds.n_examples),
                 "input_length": ds.input_length, "output_length": ds.output_length,
                 "jitter": train_ds.jitter, "rc": cfg.rc, "rpm": cfg.rpm}
    selection["data_digest"] = checkpoint.data_digest(train_ds.loci, val_ds.loci, lib_ids)
    return train_ds, val_ds, selection


def _compile(model, cfg: TrainConfig, lr: float) -> None:
    import keras

    from .losses import make_losses

    losses, weights = make_losses(cfg.loss, lam=cfg.loss_lambda, epsilon=cfg.loss_epsilon,
                                  profile=cfg.profile_loss)
    model.compile(optimizer=keras.optimizers.Adam(lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7),
                  loss=losses, loss_weights=weights)


def _lr(cfg: TrainConfig, epoch: int) -> float:
    if cfg.fine_tune_from and epoch < cfg.warmup_epochs:
        return cfg.warmup_lr
    return cfg.learning_rate


def _use_mixed_precision(cfg: TrainConfig) -> bool:
    import tensorflow as tf

    if cfg.mixed_precision == "on":
        return True
    if cfg.mixed_precision == "off":
        return False
    return bool(tf.config.list_physical_devices("GPU"))


def quantity_scale(cfg: TrainConfig, train_ds) -> float:
    """The quantity head's output scale: the config's number, or for "auto" the mean training
    quantity over a few seeded batches (>= 1), so a short run can reach the targets' scale."""
    if cfg.quantity_scale != "auto":
        return float(cfg.quantity_scale)
    qs = [b.quantity for _, b in zip(range(8), train_ds.batches(256, seed=cfg.seed))]
    return max(1.0, float(np.mean(np.concatenate(qs))))


def _build_or_load(cfg: TrainConfig, in_len: int, out_len: int, state: dict | None, run: RunDir,
                   scale: float = 1.0):
    from . import losses  # noqa: F401  (registers the saved loss classes)
    from .model import build_model, size_kwargs

    if state is not None:
        return checkpoint.load_model(run, state)
    if cfg.fine_tune_from:
        from .predict import load_model

        model = load_model(cfg.fine_tune_from, cfg.storage_options)   # .keras, or CLIPNET's .h5
        want = (in_len, 4)
        if tuple(model.input_shape[1:]) != want or model.output["profile"].shape[-1] != 2 * out_len:
            raise InputError(f"model to fine-tune takes {model.input_shape[1:]} -> "
                             f"{model.output['profile'].shape[-1]}, this run needs {want} -> "
                             f"{2 * out_len}", file=cfg.fine_tune_from,
                             hint="set input_length/output_length to the model's")
        for layer in model.layers:
            layer.trainable = True
    else:
        model = build_model(in_len, 2 * out_len, **{"quantity_scale": scale,
                                                     **size_kwargs(cfg.model)})
    _compile(model, cfg, _lr(cfg, 0))
    return model


def train(cfg: TrainConfig, *, quiet: bool = True, fresh: bool = False) -> TrainResult:
    """Train (or resume, or return the finished) single run described by `cfg`; `fresh`
    discards an earlier checkpoint in the run folder and starts again from epoch 0."""
    if cfg.ensemble or (cfg.subsample is not None and "draw" not in cfg.subsample
                        and (isinstance(cfg.subsample["n"], list)
                             or cfg.subsample.get("draws", 1) > 1)):
        raise InputError("this config describes several models (ensemble or subsampling grid)",
                         hint="use trainer.train.train_all(cfg) or `clipstore train`")
    import keras

    strategy = get_strategy()
    n_workers, worker = worker_of(strategy)
    chief = worker == 0
    # non-chief workers write their (identical) files to a scratch folder, seeded with the
    # chief's checkpoint so every worker resumes at the same epoch from the same weights
    run = RunDir(cfg.output if chief else scratch(cfg, worker), cfg.storage_options)
    if fresh:
        checkpoint.discard(run)
    say = sayer(quiet)
    state = checkpoint.load_state(run, cfg, say=say)
    say(f"opening the store {cfg.store}")
    train_ds, val_ds, selection = select(cfg)
    if state is not None:   # folds re-chosen or the store rebuilt since: the checkpoint is stale
        checkpoint.check_same_data(state, selection["data_digest"], run.public(STATE))
    if state is not None and state.get("finished") and (
            state.get("stopped_early") or state["epoch"] + 1 >= cfg.max_epochs):
        say(f"{run.public('')}: finished at epoch {state['epoch'] + 1}; nothing to train")
        return _result(run, state, resumed_from=None)
    say(f"replicate {cfg.replicate}: {selection['train_examples']:,} training and "
        f"{selection['validation_examples']:,} validation examples "
        f"({selection['n_libraries']} libraries, {selection['input_length']} bp in, "
        f"{selection['output_length']} bp out)")
    previous = keras.mixed_precision.global_policy()
    mixed = _use_mixed_precision(cfg)
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    try:
        keras.utils.set_random_seed(cfg.seed)   # Python, numpy and TF generators
        if cfg.deterministic:
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()
        scale = 1.0   # a resumed or fine-tuned model carries its own scale layer
        if state is None and not cfg.fine_tune_from:
            scale = selection["quantity_scale"] = quantity_scale(cfg, train_ds)
        with strategy.scope():
            say(f"loading the checkpoint of epoch {state['epoch'] + 1} ({run.public(LAST)})"
                if state is not None else
                f"loading {cfg.fine_tune_from} to fine-tune" if cfg.fine_tune_from else
                f"building the model ({cfg.model if isinstance(cfg.model, str) else 'custom'})")
            model = _build_or_load(cfg, train_ds.input_length, train_ds.output_length, state, run,
                                   scale)
            say(f"model: {model.count_params():,} parameters")
        result = _fit(cfg, model, run, state, train_ds, val_ds, selection, strategy, n_workers,
                      chief, mixed, say)
        if not chief:   # point at the chief's files, not this worker's scratch copy
            result.model_path, result.manifest_path = (_join(cfg.output, MODEL),
                                                       _join(cfg.output, MANIFEST))
            result.run_dir = cfg.output
        return result
    finally:
        keras.mixed_precision.set_global_policy(previous)
        if not chief:
            shutil.rmtree(run.local, ignore_errors=True)


def _fit(cfg, model, run: RunDir, state, train_ds, val_ds, selection, strategy, n_workers,
         chief, mixed, say) -> TrainResult:
    import keras

    start = 0 if state is None else state["epoch"] + 1
    best = np.inf if state is None else state["best"]
    best_epoch = -1 if state is None else state["best_epoch"]
    wait = 0 if state is None else state["wait"]
    history: dict[str, list] = {} if state is None else state["history"]
    if state is None:   # a fresh run: no stale logs from an earlier, deleted checkpoint
        (run.local / "log.csv").unlink(missing_ok=True)
    else:               # a kill between the CSV row and the checkpoint: drop the orphan rows
        checkpoint.trim_csv(run.local / "log.csv", state["epoch"])
    pool_loci = pool_loci_for(train_ds, n_workers)
    steps = steps_per_epoch(train_ds, cfg, strategy, n_workers, pool_loci, cfg.steps_per_epoch)
    vsteps = steps_per_epoch(val_ds, cfg, strategy, n_workers, pool_loci, cfg.validation_steps,
                             sharded=False)
    val = tf_data(val_ds, cfg, strategy, n_workers, train=False, epoch=0, steps=vsteps,
                   pool_loci=pool_loci)
    selection = {**selection, "steps_per_epoch": steps, "validation_steps": vsteps}
    if n_workers > 1:
        per_replica = cfg.batch_size // strategy.num_replicas_in_sync
        selection["shards"] = [
            {"index": i, "train_batches": train_ds.shard(n_workers, i).n_batches(
                per_replica, drop_remainder=True, pool_loci=pool_loci)}
            for i in range(n_workers)]
    (run.local / "checkpoint").mkdir(parents=True, exist_ok=True)
    callbacks = [keras.callbacks.CSVLogger(str(run.local / "log.csv"), append=True),
                 progress.callback(say, cfg.max_epochs, steps)]
    if cfg.tensorboard and _have_tensorboard():
        callbacks.append(keras.callbacks.TensorBoard(str(run.local / "tensorboard"),
                                                     write_graph=False, profile_batch=0))
    if n_workers > 1:
        multi_worker_workarounds(model, strategy, callbacks)
    stopped_early = False
    seconds = 0.0 if state is None else state.get("train_seconds", 0.0)
    for epoch in range(start, cfg.max_epochs):
        model.optimizer.learning_rate.assign(_lr(cfg, epoch))
        data = tf_data(train_ds, cfg, strategy, n_workers, train=True, epoch=epoch, steps=steps,
                       pool_loci=pool_loci)
        t0 = time.perf_counter()
        with strategy.scope():
            h = model.fit(data, epochs=epoch + 1, initial_epoch=epoch, steps_per_epoch=steps,
                          validation_data=val, validation_steps=vsteps, callbacks=callbacks,
                          shuffle=False, verbose=0)
        seconds += time.perf_counter() - t0
        logs = {k: float(v[-1]) for k, v in h.history.items()}
        logs["learning_rate"] = float(_lr(cfg, epoch))
        for k, v in logs.items():
            history.setdefault(k, []).append(v)
        in_warmup = bool(cfg.fine_tune_from) and epoch < cfg.warmup_epochs
        vloss = logs["val_loss"]
        if not np.isfinite(vloss):
            raise FloatingPointError(f"validation loss is {vloss} at epoch {epoch}")
        if vloss < best:
            best, best_epoch, wait = vloss, epoch, 0
            _save(model, run.local / MODEL)
        elif not in_warmup:
            wait += 1
        stopped_early = wait > 0 and wait >= cfg.patience and not in_warmup
        finished = stopped_early or epoch + 1 >= cfg.max_epochs
        state = {"epoch": epoch, "best": best, "best_epoch": best_epoch, "wait": wait,
                 "history": history, "finished": finished, "stopped_early": stopped_early,
                 "train_seconds": seconds, "config": cfg.to_dict(),
                 "data_digest": selection["data_digest"]}
        metrics = _metrics(state, steps, cfg, selection)
        _write_manifest(run, cfg, selection, metrics, model, mixed, n_workers)
        checkpoint.save(run, model, state)
        if chief:
            run.sync()
        if stopped_early:
            say(f"stopped early: no better validation loss for {wait} epochs "
                f"(best {best:.4g} at epoch {best_epoch + 1})")
            break
    if state is None:
        raise InputError(f"nothing to train: max_epochs={cfg.max_epochs}")
    return _result(run, state, resumed_from=start)


def _have_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        log.warning("tensorboard is not installed: no TensorBoard logs (pip install tensorboard)")
        return False
    return True


def _save(model, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.keras")
    model.save(str(tmp))
    os.replace(tmp, path)


def _metrics(state: dict, steps: int, cfg: TrainConfig, selection: dict) -> dict:
    h = state["history"]
    n_epochs = state["epoch"] + 1
    b = state["best_epoch"]
    out = {"best_epoch": b, "best_val_loss": state["best"], "epochs": n_epochs,
           "stopped_early": state["stopped_early"], "finished": state["finished"],
           "train_seconds": round(state["train_seconds"], 3),
           "examples_per_s": round(n_epochs * steps * cfg.batch_size
                                   / max(state["train_seconds"], 1e-9), 2)}
    for k, v in h.items():
        if b >= 0 and b < len(v):
            out[f"best_{k}"] = v[b]
        out[f"final_{k}"] = v[-1]
    return out


def _write_manifest(run: RunDir, cfg, selection, metrics, model, mixed, n_workers) -> None:
    info = {"file": MODEL, "parameters": int(model.count_params()),
            "input_length": int(model.input_shape[1]),
            "output_length": int(model.output["profile"].shape[-1]) // 2,
            "size": cfg.model, "mixed_precision": mixed, "workers": n_workers}
    write_manifest(run.local / MANIFEST, build_manifest(
        store=cfg.store, selection=selection, config=cfg.to_dict(), metrics=metrics, model=info))


def _result(run: RunDir, state: dict, resumed_from: int | None) -> TrainResult:
    import json as _json

    manifest = _json.loads((run.local / MANIFEST).read_text())
    return TrainResult(model_path=run.public(MODEL), manifest_path=run.public(MANIFEST),
                       history=state["history"], run_dir=run.public(""),
                       best_epoch=state["best_epoch"], epochs_run=state["epoch"] + 1,
                       stopped_early=state["stopped_early"], resumed_from=resumed_from,
                       metrics=manifest.get("metrics", {}))
