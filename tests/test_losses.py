"""Losses against plain numpy formulas, λ/ε knobs, and safe_mode round trips."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")


def _np(loss, t, p) -> float:
    return float(np.asarray(loss(t.astype("float32"), p.astype("float32"))))


def test_cosine_profile_loss():
    from trainer.losses import ProfileCosine

    rng = np.random.default_rng(0)
    t = rng.poisson(1.0, (4, 20)).astype(float) + 0.1
    p = rng.random((4, 20))
    want = np.mean(1 - (t * p).sum(1) / np.linalg.norm(t, axis=1) / np.linalg.norm(p, axis=1))
    assert _np(ProfileCosine(), t, p) == pytest.approx(want, rel=1e-5)
    assert _np(ProfileCosine(), t, 3 * t) == pytest.approx(0, abs=1e-6)     # scale-free
    a = np.array([[1.0, 0, 0, 0]])
    b = np.array([[0, 1.0, 0, 0]])
    assert _np(ProfileCosine(), a, b) == pytest.approx(1.0)


def test_quantity_loss_is_keras_msle_at_epsilon_one_and_uses_epsilon():
    import keras

    from trainer.losses import LogQuantityError

    t = np.array([[0.0], [10.0], [300.0]])

    p = np.array([[2.0], [5.0], [100.0]])
    msle = float(keras.losses.MeanSquaredLogarithmicError()(t, p))
    assert _np(LogQuantityError(1.0), t, p) == pytest.approx(msle, rel=1e-5)
    want = np.mean((np.log(p + 0.1) - np.log(t + 0.1)) ** 2)
    assert _np(LogQuantityError(0.1), t, p) == pytest.approx(want, rel=1e-5)
    with pytest.raises(ValueError, match="epsilon"):
        LogQuantityError(0.0)


def test_multinomial_profile_loss():
    from trainer.losses import ProfileMultinomial

    t = np.array([[3.0, 0, 1, 0]])

    p = np.array([[2.0, 1, 1, 0]])
    q = (p + 1e-6) / (p + 1e-6).sum()
    assert _np(ProfileMultinomial(), t, p) == pytest.approx(-(t * np.log(q)).sum() / 4, rel=1e-5)


def test_make_losses_weights_and_errors():
    from trainer.losses import (DEFAULT_LAMBDA, LogQuantityError, ProfileCosine,
                                ProfileMultinomial, make_losses)

    losses, w = make_losses()
    assert isinstance(losses["profile"], ProfileCosine) and losses["quantity"].epsilon == 1.0
    assert w == {"profile": 1.0, "quantity": DEFAULT_LAMBDA} and DEFAULT_LAMBDA == 1 / 500
    losses, w = make_losses("multiscale", lam=0.2, epsilon=0.5, profile="multinomial")
    assert isinstance(losses["profile"], ProfileMultinomial)
    assert isinstance(losses["quantity"], LogQuantityError) and losses["quantity"].epsilon == 0.5
    assert w["quantity"] == 0.2
    for bad in (dict(kind="mse"), dict(kind="multiscale", profile="poisson"), dict(lam=-1)):
        with pytest.raises(ValueError):
            make_losses(**bad)


def test_compiled_model_round_trips_under_safe_mode(tmp_path):
    import keras

    from trainer.losses import make_losses
    from trainer.model import SIZES, build_model

    m = build_model(100, 20, **SIZES["tiny"])
    losses, w = make_losses("multiscale", lam=0.3, epsilon=0.25)
    m.compile(keras.optimizers.Adam(1e-3), loss=losses, loss_weights=w)
    x = np.ones((4, 100, 4), "float32")
    y = {"profile": np.ones((4, 20), "float32"), "quantity": np.full((4, 1), 5, "float32")}
    m.train_on_batch(x, y)
    m.save(tmp_path / "m.keras")
    back = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True, compile=True)
    assert back.loss["quantity"].epsilon == 0.25
    np.testing.assert_allclose(back.predict_on_batch(x)["profile"],
                               m.predict_on_batch(x)["profile"], rtol=1e-6)
