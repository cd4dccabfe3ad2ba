"""Training losses: CLIPNET's released pair (profile cosine + λ·quantity MSLE) and a multiscale
variant with a configurable pseudocount ε.

Why classes registered with Keras: a saved model carries its compiled losses, and
`keras.saving.load_model(..., safe_mode=True)` refuses lambdas — registered classes round-trip
safely, so a killed run can resume with its optimizer and loss state.

* profile "cosine": 1 - cos(pred, obs) over the 2 x out vector (Keras' CosineSimilarity loss is
  -cos; the +1 shift changes nothing in training and keeps the loss >= 0).
* profile "multinomial": multinomial negative log-likelihood of the observed counts under the
  predicted shape (BPNet/ProCapNet), divided by the profile length.
* quantity: mean squared error of log(ε + ·); ε = 1 is Keras' MSLE (the released default).
The quantity term is weighted by λ in `compile` (loss_weights), 1/500 by default.
"""
from __future__ import annotations

import keras
from keras import ops

DEFAULT_LAMBDA = 1 / 500


@keras.saving.register_keras_serializable(package="clipstore")
class ProfileCosine(keras.losses.Loss):
    """1 - cosine similarity between predicted and observed stranded profiles, per example."""

    def __init__(self, name: str = "profile_cosine", reduction: str = "sum_over_batch_size",
                 **kw):
        super().__init__(name=name, reduction=reduction, **kw)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        eps = 1e-7
        t = y_true / ops.maximum(ops.sqrt(ops.sum(ops.square(y_true), axis=-1, keepdims=True)), eps)
        p = y_pred / ops.maximum(ops.sqrt(ops.sum(ops.square(y_pred), axis=-1, keepdims=True)), eps)
        return 1.0 - ops.sum(t * p, axis=-1)


@keras.saving.register_keras_serializable(package="clipstore")
class ProfileMultinomial(keras.losses.Loss):
    """Multinomial NLL of observed counts under the predicted shape, per position (scale-free)."""

    def __init__(self, name: str = "profile_multinomial",
                 reduction: str = "sum_over_batch_size", **kw):
        super().__init__(name=name, reduction=reduction, **kw)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        p = y_pred + 1e-6
        logp = ops.log(p / ops.sum(p, axis=-1, keepdims=True))
        n = ops.cast(ops.shape(y_true)[-1], y_pred.dtype)
        return -ops.sum(y_true * logp, axis=-1) / n


@keras.saving.register_keras_serializable(package="clipstore")
class LogQuantityError(keras.losses.Loss):
    """Mean squared error of log(ε + quantity); ε = 1 equals Keras' MSLE."""

    def __init__(self, epsilon: float = 1.0, name: str = "log_quantity_mse",
                 reduction: str = "sum_over_batch_size", **kw):
        if not epsilon > 0:
            raise ValueError(f"pseudocount epsilon must be > 0, got {epsilon}")
        super().__init__(name=name, reduction=reduction, **kw)
        self.epsilon = float(epsilon)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        d = ops.log(ops.maximum(y_pred, 0.0) + self.epsilon) - ops.log(
            ops.maximum(y_true, 0.0) + self.epsilon)
        return ops.mean(ops.square(d), axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "epsilon": self.epsilon}


def make_losses(kind: str = "clipnet", *, lam: float = DEFAULT_LAMBDA, epsilon: float = 1.0,
                profile: str = "cosine") -> tuple[dict, dict]:
    """(losses, loss_weights) dicts keyed "profile"/"quantity" for `model.compile`.

    kind "clipnet": cosine profile + λ·MSLE (ε fixed at 1, as released).
    kind "multiscale": `profile` term ("cosine" or "multinomial") + λ·MSE of log(ε + quantity).
    """
    if not lam >= 0:
        raise ValueError(f"lambda must be >= 0, got {lam}")
    if kind == "clipnet":
        prof, eps = ProfileCosine(), 1.0
    elif kind == "multiscale":
        profiles = {"cosine": ProfileCosine, "multinomial": ProfileMultinomial}
        if profile not in profiles:
            raise ValueError(f"profile loss must be one of {sorted(profiles)}, got {profile!r}")
        prof, eps = profiles[profile](), epsilon
    else:
        raise ValueError(f"loss kind must be 'clipnet' or 'multiscale', got {kind!r}")
    return ({"profile": prof, "quantity": LogQuantityError(eps)},
            {"profile": 1.0, "quantity": float(lam)})
