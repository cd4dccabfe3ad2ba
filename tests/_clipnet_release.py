"""Released-format CLIPNET models for tests, written the way the release wrote them.

The network comes from the clipnet 0.2.3 package's own `rnn_v10.construct_nn` (MIT; installed as
a test dependency, never copied into clipstore), built and saved by Keras 2 (the `tf_keras`
package) with `model.save("fold_<k>.h5")` after a compiled training step (so the files carry
optimizer weights and trained batch-norm statistics, like real checkpoints). The same process
records each model's predictions on seeded sequences, the reference our loader must match.

Keras 2 and Keras 3 cannot both be `tf.keras` in one process, so the files are written by a
subprocess with TF_USE_LEGACY_KERAS=1.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

WRITER = r'''
import os
import sys
import numpy as np
import tensorflow as tf
from clipnet import rnn_v10

assert tf.keras.layers.Dense.__module__.startswith("tf_keras")   # Keras 2, as released
rng = np.random.default_rng(7)
for spec in sys.argv[1:]:   # folder:input_length:output_length:n_folds
    folder, in_len, out_len, n_folds = spec.rsplit(":", 3)
    in_len, out_len, n_folds = int(in_len), int(out_len), int(n_folds)
    os.makedirs(folder, exist_ok=True)
    x = 2 * np.eye(4, dtype=np.float32)[rng.integers(0, 4, (6, in_len))]   # two-hot
    preds = {"x": x}
    for k in range(1, n_folds + 1):
        tf.keras.utils.set_random_seed(k)
        model = rnn_v10.construct_nn(in_len, out_len)
        model.compile(optimizer=rnn_v10.optimizer(**rnn_v10.opt_hyperparameters),
                      loss=rnn_v10.loss, metrics=rnn_v10.metrics)
        xt = 2 * np.eye(4, dtype=np.float32)[rng.integers(0, 4, (16, in_len))]
        y = [rng.gamma(1.0, 1.0, (16, out_len)).astype(np.float32),
             rng.gamma(5.0, 10.0, (16, 1)).astype(np.float32)]
        model.fit(xt, y, epochs=1, batch_size=8, verbose=0)
        for layer in model.layers:   # a trained quantity head is alive: shift its BN above 0
            if isinstance(layer, tf.keras.layers.BatchNormalization) and \
                    tuple(layer.weights[0].shape) == (1,):
                g, b, m, v = layer.get_weights()
                layer.set_weights([g, b + 2.0 + k, m, v])
        model.save(f"{folder}/fold_{k}.h5")
        p, q = model.predict(x, verbose=0)
        preds[f"profile_{k}"], preds[f"quantity_{k}"] = p, q.reshape(-1)
        preds[f"params_{k}"] = np.int64(model.count_params())
    np.savez(f"{folder}/source_predictions.npz", **preds)
'''


def have_release_tools() -> str | None:
    """Why released-format fixtures cannot be written here (None: they can)."""
    for mod in ("tf_keras", "clipnet", "h5py"):
        if importlib.util.find_spec(mod) is None:
            return (f"{mod} is not installed (test dependency: pip install tf_keras==<TF version> "
                    f"clipnet==0.2.3 --no-deps)")
    return None


def write_release(*specs: tuple[Path, int, int, int]) -> None:
    """For each (folder, input_length, output_length, n_folds): fold_1.h5 ... fold_<n>.h5 and
    source_predictions.npz (the source model's outputs on its seeded `x`) in `folder`."""
    why = have_release_tools()
    if why:
        pytest.skip(why)
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    args = [f"{folder}:{i}:{o}:{n}" for folder, i, o, n in specs]
    out = subprocess.run([sys.executable, "-c", WRITER, *args], env=env, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
