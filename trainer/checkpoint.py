"""A run's resumable checkpoint: `checkpoint/last.keras` (model + optimizer) and
`checkpoint/state.json` (epoch, early-stopping state, history, random-generator states).

Why this protocol: resuming must replay the uninterrupted run bit for bit, so the pair must
always describe the same epoch and carry every piece of state the next epoch reads.

* The two files are replaced one after the other, which a kill can separate. So the new state is
  written completely (`state.json.tmp`, with the SHA-256 of the new model file) *before* either
  rename; a resume that finds a `.tmp` state whose hash matches `last.keras` rolls it forward.
* A state whose hash does not match `last.keras` means damage (a truncated or rewritten file):
  that is an error naming the file, never a silent restart or a run that diverges later.
* Dropout draws its masks from Keras seed generators whose state is not part of the saved
  weights; without restoring them a resumed run drops other units than the uninterrupted one.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from clipstore.errors import InputError

from .config import TrainConfig
from .storage import RunDir, atomic_write_text

log = logging.getLogger(__name__)

LAST = "checkpoint/last.keras"
STATE = "checkpoint/state.json"
FRESH_HINT = ("rerun with --fresh to discard this run's checkpoint and train again from epoch 0 "
              "(trainer.train.train(cfg, fresh=True) from Python)")
# config keys that may change between a run and its resumption
RESUMABLE = {"max_epochs", "patience", "tensorboard", "extra", "storage_options", "output",
             "validation_steps"}
_REQUIRED = ("epoch", "best", "best_epoch", "wait", "history", "finished")


def sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def discard(run: RunDir) -> None:
    """Forget a run's checkpoint and logs (`--fresh`): the next epoch trained is epoch 0."""
    shutil.rmtree(run.local / "checkpoint", ignore_errors=True)
    (run.local / "log.csv").unlink(missing_ok=True)


def check_same_run(saved: dict, cfg: TrainConfig, where: str) -> None:
    """Refuse to resume a folder trained with another configuration (RESUMABLE keys aside)."""
    now = json.loads(json.dumps(cfg.to_dict()))    # as saved: tuples read back as lists
    # keys added to TrainConfig after the run started count as their defaults
    saved = {**{f.name: f.default for f in dataclasses.fields(TrainConfig)
                if f.default is not dataclasses.MISSING}, **saved}
    diff = sorted(k for k in set(saved) | set(now)
                  if k not in RESUMABLE and saved.get(k) != now.get(k))
    if diff:
        raise InputError(f"this folder holds a run with a different configuration ({diff})",
                         file=where, hint="use a new output folder, or rerun with --fresh to "
                                          "discard it and start again")


def data_digest(train_loci, validation_loci, libraries: list[str]) -> str:
    """What a run trains and validates on (locus indices and library ids), as one hash."""
    h = hashlib.sha256()
    for part in (train_loci, validation_loci):
        h.update(np.asarray(part, np.int64).tobytes() + b"|")
    h.update("\t".join(libraries).encode())
    return h.hexdigest()


def check_same_data(state: dict, digest: str, where: str) -> None:
    """Refuse to resume (or call finished) a run whose training or validation loci changed
    since its checkpoint: `clipstore folds` re-chose the folds, or the store was rebuilt."""
    saved = state.get("data_digest")
    if saved is not None and saved != digest:
        raise InputError("the store's training/validation selection changed since this "
                         "checkpoint (folds re-chosen, or the store rebuilt)", file=where,
                         hint="rerun with --fresh to train on the current folds, or use a new "
                              "output folder")


def _read_state(path: Path, public: str) -> dict:
    try:
        state = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"checkpoint state is damaged (not complete JSON: {e})", file=public,
                         hint=FRESH_HINT) from None
    missing = [k for k in _REQUIRED if not isinstance(state, dict) or k not in state]
    if missing:
        raise InputError(f"checkpoint state is damaged (missing {missing})", file=public,
                         hint=FRESH_HINT)
    return state


def _roll_forward(run: RunDir) -> None:
    """Finish a save that a kill interrupted between the two renames (see the module text)."""
    tmp = run.local / (STATE + ".tmp")
    last = run.local / LAST
    if not tmp.exists():
        return
    try:
        pending = json.loads(tmp.read_text())
        ok = last.exists() and pending["checkpoint"]["sha256"] == sha256(last)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        ok = False
    if ok:
        os.replace(tmp, run.local / STATE)
    else:                       # the kill came before the model's rename: the old pair holds
        tmp.unlink()


def load_state(run: RunDir, cfg: TrainConfig, say: Callable[[str], None] = log.info
               ) -> dict | None:
    """The saved state of the run in `run` (None: no checkpoint, train from epoch 0).

    Raises InputError for a checkpoint that is damaged or belongs to another configuration."""
    _roll_forward(run)
    state_p, last_p = run.local / STATE, run.local / LAST
    if not state_p.exists() and not last_p.exists():
        say(f"no checkpoint in {run.public('checkpoint')}: starting from epoch 0")
        return None
    if not last_p.exists():
        raise InputError("checkpoint model is missing (its state.json is there)",
                         file=run.public(LAST), hint=FRESH_HINT)
    if not state_p.exists():
        raise InputError("checkpoint state is missing (the model file is there)",
                         file=run.public(STATE), hint=FRESH_HINT)
    state = _read_state(state_p, run.public(STATE))
    check_same_run(state.get("config", {}), cfg, run.public(STATE))
    want = (state.get("checkpoint") or {}).get("sha256")
    if want is not None and sha256(last_p) != want:
        raise InputError(f"checkpoint model does not match its state (epoch {state['epoch']}): "
                         f"the file was truncated, damaged or replaced", file=run.public(LAST),
                         hint=FRESH_HINT)
    return state


def load_model(run: RunDir, state: dict):
    """The checkpoint's model (compiled, with its optimizer state and dropout generators)."""
    import keras
    import numpy as np

    from . import losses  # noqa: F401  (registers the saved loss classes)

    try:
        # full model + optimizer state; registered losses load under safe_mode
        model = keras.saving.load_model(str(run.local / LAST), safe_mode=True, compile=True)
    except Exception as e:     # keras raises ValueError, OSError, zipfile and h5py errors alike
        raise InputError(f"checkpoint model cannot be read ({type(e).__name__}: {e})",
                         file=run.public(LAST), hint=FRESH_HINT) from None
    if not all(np.isfinite(np.asarray(w)).all() for w in model.get_weights()):
        raise InputError("checkpoint model holds non-finite weights", file=run.public(LAST),
                         hint=FRESH_HINT)
    rng = state.get("rng")
    if rng is None:
        log.warning("%s predates saved random-generator states: dropout masks after the resume "
                    "differ from an uninterrupted run", run.public(STATE))
    else:
        set_rng_states(model, rng)
    return model


def rng_states(model) -> dict[str, list[list[int]]]:
    """Seed-generator states (dropout masks) by layer name: variables that are not weights."""
    out = {}
    for layer in model.layers:
        weights = {id(w) for w in layer.weights}
        extra = [v for v in layer.variables if id(v) not in weights]
        if extra:
            out[layer.name] = [[int(x) for x in v.numpy().ravel()] for v in extra]
    return out


def set_rng_states(model, states: dict[str, list[list[int]]]) -> None:
    import numpy as np

    for layer in model.layers:
        if layer.name not in states:
            continue
        weights = {id(w) for w in layer.weights}
        extra = [v for v in layer.variables if id(v) not in weights]
        for v, s in zip(extra, states[layer.name]):
            v.assign(np.asarray(s, dtype=v.dtype).reshape(v.shape))


def save(run: RunDir, model, state: dict[str, Any]) -> None:
    """Write the pair for `state["epoch"]` so that a kill at any moment leaves a loadable pair
    (the previous or this one)."""
    ck = run.local / "checkpoint"
    ck.mkdir(parents=True, exist_ok=True)
    last = run.local / LAST
    tmp_model = last.with_name("last.tmp.keras")
    model.save(str(tmp_model))
    state = {**state, "rng": rng_states(model),
             "checkpoint": {"file": "last.keras", "sha256": sha256(tmp_model)}}
    tmp_state = run.local / (STATE + ".tmp")
    _write_synced(tmp_state, json.dumps(state, indent=1) + "\n")
    os.replace(tmp_model, last)
    os.replace(tmp_state, run.local / STATE)


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def trim_csv(path: Path, last_epoch: int) -> None:
    """Drop log rows of epochs after the checkpoint (a kill between the row and the save)."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    keep = lines[:1] + [ln for ln in lines[1:] if int(ln.split(",", 1)[0]) <= last_epoch]
    if len(keep) != len(lines):
        atomic_write_text(path, "".join(keep))
