"""What evaluation/ needs from a model: a *Predictor*, and batched calls to it.

A Predictor is any callable ``f(x) -> (profile, quantity)`` with

    x         (B, L, 4) uint8 or float, two-hot scale (a homozygous base is 2)
    profile   (B, 2 * output_length) float32 >= 0, plus strand then minus strand
    quantity  (B,) float32 >= 0

and attributes ``input_length`` (L) and ``output_length`` (per strand). Model files become
Predictors through a loader that an installed package registers (entry point group
``clipstore.predictors``; the trainer registers ``keras`` = ``trainer.predict.load_predictor``);
anything else (another tool's model, a baseline) works if it has this shape, which is why
evaluation never imports a model class nor the trainer.
"""
from __future__ import annotations

from importlib.metadata import entry_points
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from clipstore.encoding import one_hot
from clipstore.errors import InputError

LOADERS = "clipstore.predictors"


@runtime_checkable
class Predictor(Protocol):
    input_length: int
    output_length: int

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def check_predictor(p: object) -> Predictor:
    """Fail early with a clear message rather than deep inside a batch loop."""
    if not callable(p) or not hasattr(p, "input_length") or not hasattr(p, "output_length"):
        raise TypeError("a Predictor is a callable x (B, L, 4) -> (profile (B, 2*out), "
                        "quantity (B,)) with attributes input_length and output_length")
    return p  # type: ignore[return-value]


def load_model(paths: str | list[str], loader: str = "keras", **options) -> Predictor:
    """Model file(s) -> one Predictor, through the loader registered under `loader` in the
    LOADERS entry-point group (the seam between evaluation and whoever trains models)."""
    found = {ep.name: ep for ep in entry_points(group=LOADERS)}
    if loader not in found:
        raise InputError(f"no model loader {loader!r} is installed (found: {sorted(found) or 'none'})",
                         hint="install clipstore with its trainer (pip install -e .), or evaluate "
                              "predictions from a file with --predictions")
    return check_predictor(found[loader].load()(paths, **options))


def predict(predictor: Predictor, x: np.ndarray, batch_size: int = 256
            ) -> tuple[np.ndarray, np.ndarray]:
    """Predict in batches; returns (profile (N, 2*out) float32, quantity (N,) float32)."""
    check_predictor(predictor)
    n = len(x)
    out = 2 * int(predictor.output_length)
    prof = np.empty((n, out), np.float32)
    quant = np.empty(n, np.float32)
    for i in range(0, n, batch_size):
        p, q = predictor(x[i:i + batch_size])
        prof[i:i + batch_size] = np.asarray(p, np.float32).reshape(-1, out)
        quant[i:i + batch_size] = np.asarray(q, np.float32).reshape(-1)
    return prof, quant


def encode_haploid(seqs: list[str] | list[bytes]) -> np.ndarray:
    """(B, L, 4) uint8 two-hot of homozygous sequences (2 x one-hot), the scale models train on."""
    return np.stack([one_hot(s) for s in seqs]) * np.uint8(2)


def ensemble(predictors: list[Predictor]) -> Callable:
    """Mean of several predictors (the paper's ensemble of fold replicates)."""
    preds = [check_predictor(p) for p in predictors]
    if not preds:
        raise ValueError("an ensemble needs at least one predictor")
    L, O = preds[0].input_length, preds[0].output_length
    if any(p.input_length != L or p.output_length != O for p in preds):
        raise ValueError("ensemble members must share input_length and output_length")

    class _Mean:
        input_length, output_length = L, O

        def __call__(self, x):
            outs = [p(x) for p in preds]
            return (np.mean([np.asarray(o[0], np.float32) for o in outs], axis=0),
                    np.mean([np.asarray(o[1], np.float32).reshape(-1) for o in outs], axis=0))

    return _Mean()


def tracks(profile: np.ndarray, quantity: np.ndarray) -> np.ndarray:
    """Predicted tracks in counts: profile shape (normalised to sum 1) x predicted quantity.

    Why: under the cosine profile loss the profile head's scale is arbitrary, so comparing raw
    profiles across genotypes mixes a meaningless scale into QTL scores; CLIPNET's tracks are
    shape x quantity."""
    profile = np.asarray(profile, np.float64)
    total = profile.sum(-1, keepdims=True)
    shape = np.divide(profile, total, out=np.zeros_like(profile), where=total > 0)
    return shape * np.asarray(quantity, np.float64)[..., None]
