"""What a training run is doing, one line per stage on stderr (silent when quiet).

Why our own lines instead of Keras' `verbose`: the trainer calls `fit` once per epoch (for exact
resumption), so Keras would number every epoch "Epoch k/k" and print no header for the first;
and the first batch (tracing and compiling the step, filling the reader's pool) can take tens of
seconds in which nothing would be printed.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable

Say = Callable[[str], None]


def sayer(quiet: bool) -> Say:
    """Print `train: ...` lines to stderr, unless quiet."""
    def say(msg: str) -> None:
        if not quiet:
            print(f"train: {msg}", file=sys.stderr, flush=True)
    return say


def callback(say: Say, max_epochs: int, steps: int):
    """A Keras callback announcing the first batch and summarising every epoch as
    `epoch e/max_epochs` (1-based, counted over the whole run, resumed or not)."""
    import keras

    class Progress(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.first = True
            self.t0 = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()
            if self.first:
                say(f"epoch {epoch + 1}/{max_epochs}: first batch (tracing and compiling the "
                    f"training step, filling the reader) ...")

        def on_train_batch_end(self, batch, logs=None):
            if self.first and batch == 0:
                self.first = False
                say(f"first batch done in {time.perf_counter() - self.t0:.1f} s; "
                    f"{steps} steps per epoch")

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            shown = ", ".join(f"{k} {float(v):.4g}" for k, v in logs.items()
                              if k in ("loss", "val_loss", "profile_loss", "quantity_loss"))
            say(f"epoch {epoch + 1}/{max_epochs}: {shown} "
                f"({time.perf_counter() - self.t0:.1f} s)")

    return Progress()
