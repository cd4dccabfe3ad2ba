"""CLIPNET architecture: the released parameter count, output contract and size knobs."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")


def test_released_architecture_has_clipnet_parameter_count():
    from trainer.model import CLIPNET_PARAMS, build_model

    m = build_model(1000, 1000)
    assert m.count_params() == CLIPNET_PARAMS == 8_036_893
    assert m.input_shape == (None, 1000, 4)
    names = [layer.name for layer in m.layers]
    assert sum(n.startswith("dil") and n.endswith("_conv") for n in names) == 9
    dil = [m.get_layer(f"dil{i}_conv").dilation_rate[0] for i in range(9)]
    assert dil == [2 ** i for i in range(9)]


def test_outputs_are_a_dict_of_non_negative_float32():
    from trainer.model import SIZES, build_model

    m = build_model(100, 60, **SIZES["tiny"])
    x = np.random.default_rng(0).integers(0, 3, (5, 100, 4)).astype("float32")
    out = m(x, training=False)
    assert set(out) == {"profile", "quantity"}
    assert tuple(out["profile"].shape) == (5, 60) and tuple(out["quantity"].shape) == (5, 1)
    for v in out.values():
        assert v.dtype == "float32" and float(np.min(v)) >= 0


def test_size_knobs_shrink_the_model_and_validate():
    from trainer.model import build_model, size_kwargs

    small = build_model(500, 500, **size_kwargs("small")).count_params()
    assert 10_000 < small < 1_500_000
    assert size_kwargs(None) == {} and size_kwargs({"filters": 4}) == {"filters": 4}
    with pytest.raises(ValueError, match="unknown model size"):
        size_kwargs("huge")
    with pytest.raises(ValueError, match="even"):
        build_model(100, 51)


def test_mixed_precision_keeps_float32_outputs():
    import keras

    from trainer.model import SIZES, build_model

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        m = build_model(100, 20, **SIZES["tiny"])
        out = m(np.zeros((2, 100, 4), "float32"))
        assert m.get_layer("conv1").compute_dtype == "float16"
        assert out["profile"].dtype == "float32" and out["quantity"].dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_quantity_scale_is_a_weightless_layer_only_when_asked():
    from trainer.model import CLIPNET_PARAMS, build_model

    assert "quantity_scale" not in [l.name for l in build_model().layers]
    m = build_model(quantity_scale=250.0)
    assert m.count_params() == CLIPNET_PARAMS
    assert m.get_layer("quantity_scale").scale == 250.0
