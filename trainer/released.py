"""CLIPNET's released models (`fold_1.h5` ... `fold_9.h5`: Keras 2 HDF5 files of the `rnn_v10`
network), loaded safely into the architecture of `trainer.model`.

    model = load_h5("clipnet_models/fold_1.h5")        # a Keras 3 model, outputs profile/quantity
    paths = fold_files("clipnet_models/")               # the folder as a fold ensemble

Why not `keras.models.load_model`: an HDF5 model file carries a serialised configuration that
Keras would deserialise (layer classes, possibly Lambda code), and Keras 3 reads Keras 2 HDF5
files only partly. Instead we read the file with h5py: the configuration only as JSON text (to
learn the input length, the layer sizes and the dropout rate — nothing is executed), then build
our own `build_model` network of those sizes and copy the weight arrays layer by layer,
checking every shape. A file that is not an `rnn_v10`-shaped network is refused.

Layers are matched in graph order within each (layer kind, weight shapes) group: the body is one
chain, and the two heads differ in shape, so the pairing does not depend on how either Keras
version orders the parallel heads.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from clipstore.errors import InputError

H5_SUFFIXES = (".h5", ".hdf5")
_KINDS = ("Conv1D", "BatchNormalization", "Dense")
_HINT = ("expected a CLIPNET rnn_v10 model saved by Keras 2 (`model.save('fold_1.h5')`), e.g. "
         "the released fold_1.h5 ... fold_9.h5")


def is_h5(path: str | Path) -> bool:
    return str(path).lower().endswith(H5_SUFFIXES)


def fold_files(folder: str | Path) -> list[str]:
    """The `fold_<k>.h5` files of a folder, in fold order (empty when there are none)."""
    def fold(p: Path) -> int:
        m = re.fullmatch(r"fold_(\d+)\.h5", p.name)
        return int(m.group(1)) if m else -1
    found = [p for p in Path(folder).glob("fold_*.h5") if fold(p) >= 0]
    return [str(p) for p in sorted(found, key=fold)]


def _read(path: str) -> tuple[dict, list[tuple[str, list[np.ndarray]]]]:
    """(model config as JSON, [(layer name, weight arrays)] in the file's layer order)."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise InputError(f"not a readable HDF5 file ({e})", file=path, hint=_HINT) from None
    with f:
        raw = f.attrs.get("model_config")
        if raw is None:
            raise InputError("HDF5 file has no model configuration (a weights-only file?)",
                             file=path, hint=_HINT)
        try:
            config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InputError(f"model configuration is not JSON ({e})", file=path,
                             hint=_HINT) from None
        root = f["model_weights"] if "model_weights" in f else f
        layers = []
        for name in root.attrs.get("layer_names", []):
            name = name.decode() if isinstance(name, bytes) else str(name)
            g = root[name]
            wnames = [w.decode() if isinstance(w, bytes) else str(w)
                      for w in g.attrs.get("weight_names", [])]
            if wnames:
                layers.append((name, [np.asarray(g[w][()]) for w in wnames]))
    return config, layers


def _layer_configs(config: dict) -> list[dict]:
    inner = config.get("config", {})
    layers = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(layers, list):
        return []
    return [lc for lc in layers if isinstance(lc, dict)]


def architecture(path: str) -> tuple[dict[str, Any], list[tuple[str, str, list[np.ndarray]]]]:
    """(build_model keyword arguments, [(kind, layer name, weights)]) of a Keras 2 h5 model."""
    config, layers = _read(path)
    by_name = {lc.get("config", {}).get("name", lc.get("name")): lc
               for lc in _layer_configs(config)}
    shape = None
    for lc in by_name.values():
        if lc.get("class_name") == "InputLayer":
            c = lc.get("config", {})
            shape = c.get("batch_input_shape") or c.get("batch_shape")
    if not shape or len(shape) != 3 or shape[2] != 4 or not isinstance(shape[1], int):
        raise InputError(f"input shape {shape} is not (length, 4) one-hot sequence", file=path,
                         hint=_HINT)
    typed = []
    for name, ws in layers:
        kind = (by_name.get(name) or {}).get("class_name")
        if kind not in _KINDS:
            raise InputError(f"layer {name!r} ({kind}) is not part of rnn_v10", file=path,
                             hint=_HINT)
        typed.append((kind, name, ws))
    convs = [ws[0].shape for k, _, ws in typed if k == "Conv1D"]
    dense = [ws[0].shape for k, _, ws in typed if k == "Dense"]
    if len(convs) < 3 or len(dense) != 2:
        raise InputError(f"{len(convs)} convolutions and {len(dense)} dense layers; rnn_v10 has "
                         f">= 3 and 2", file=path, hint=_HINT)
    rates = [lc.get("config", {}).get("rate") for lc in by_name.values()
             if lc.get("class_name") == "Dropout"]
    kw = {"input_length": int(shape[1]), "output_length": int(dense[0][1]),
          "conv_filters": (int(convs[0][2]), int(convs[1][2])),
          "conv_kernels": (int(convs[0][0]), int(convs[1][0])),
          "filters": int(convs[2][2]), "n_dilated": len(convs) - 3,
          "dilated_kernel": int(convs[3][0]) if len(convs) > 3 else 3,
          "dropout": float(rates[0]) if rates and isinstance(rates[0], (int, float)) else 0.3}
    return kw, typed


def load_h5(path: str):
    """A Keras 3 model of our architecture holding the weights of a Keras 2 `rnn_v10` h5 file."""
    from .model import build_model

    kw, theirs = architecture(path)
    try:
        model = build_model(**kw)
    except ValueError as e:
        raise InputError(f"cannot build rnn_v10 with {kw} ({e})", file=path, hint=_HINT) from None
    ours = [(type(layer).__name__, layer) for layer in model.layers if layer.weights]

    def groups(items, shapes):
        out: dict[tuple, list] = {}
        for kind, *rest in items:
            out.setdefault((kind, shapes(rest)), []).append(rest)
        return out

    theirs_g = groups(theirs, lambda r: tuple(w.shape for w in r[1]))
    ours_g = groups(ours, lambda r: tuple(tuple(w.shape) for w in r[0].weights))
    if sorted(theirs_g) != sorted(ours_g) or any(len(theirs_g[k]) != len(ours_g[k])
                                                 for k in ours_g):
        raise InputError("layer shapes do not match rnn_v10 built with the file's sizes "
                         f"({kw})", file=path, hint=_HINT)
    for key, mine in ours_g.items():
        for (layer,), (name, ws) in zip(mine, theirs_g[key]):
            if not all(np.isfinite(w).all() for w in ws):
                raise InputError(f"layer {name!r} holds non-finite weights", file=path)
            layer.set_weights(ws)
    return model
