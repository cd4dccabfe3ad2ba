"""CLIPNET's released `rnn_v10` architecture in Keras 3 (docs/training.md), with size knobs for CPU runs.

Why the knobs: the released model (8,036,893 parameters at input 1000 / output 1000) trains at a
few dozen examples/s on a laptop CPU; demos and tests need the same wiring at a fraction of the
size. Defaults are CLIPNET's, so `build_model()` is the released network.

    input (L, 4) -> BN -> Conv1D(64, 8, valid) -> BN -> ELU -> MaxPool(2)
      -> Conv1D(128, 4, valid) -> BN -> ReLU -> MaxPool(2) -> Conv1D(64, 1)
      -> n_dilated x [Conv1D(64, 3, same, dilation 2^i) -> BN -> ReLU -> add skip -> BN -> ReLU]
      -> MaxPool(2) -> profile: Flatten -> Dense(output_length) -> BN -> ReLU -> Dropout(0.3)
                    -> quantity: GlobalAvgPool -> Dense(1) -> BN -> ReLU -> Dropout(0.3)

`output_length` counts BOTH strands (plus then minus), i.e. 2 x the store's output_length.
Outputs are float32 even under mixed precision (a final linear cast layer, no parameters).
"""
from __future__ import annotations

from typing import Any

CLIPNET_PARAMS = 8_036_893   # released model at input 1000 / output 1000 (docs/training.md)

# Named sizes for configs; "clipnet" is the released architecture.
SIZES: dict[str, dict[str, Any]] = {
    "clipnet": {},
    # ~150k params at 500/500: learns simulated motifs in about a minute on 2 cores
    "small": {"conv_filters": (32, 64), "filters": 32, "n_dilated": 6},
    # a few thousand params at 100/100: for unit tests
    "tiny": {"conv_filters": (8, 16), "filters": 8, "n_dilated": 2},
}


def size_kwargs(size: str | dict | None) -> dict[str, Any]:
    """Model keyword arguments from a preset name or an explicit dict (None = CLIPNET)."""
    if size is None:
        return {}
    if isinstance(size, str):
        if size not in SIZES:
            raise ValueError(f"unknown model size {size!r}; known: {', '.join(SIZES)}")
        return dict(SIZES[size])
    return dict(size)


def build_model(input_length: int = 1000, output_length: int = 1000, *,
                conv_filters: tuple[int, int] = (64, 128), conv_kernels: tuple[int, int] = (8, 4),
                filters: int = 64, n_dilated: int = 9, dilated_kernel: int = 3,
                dropout: float = 0.3, quantity_scale: float = 1.0, name: str = "clipnet"):
    """The CLIPNET network; `output_length` is both strands (2 x per-strand length).

    `quantity_scale` multiplies the quantity head's output (a weightless Rescaling layer, added
    only when != 1, so the released network is unchanged). Why: the head ends in BN -> ReLU, whose
    output grows by about one learning rate per step; targets in the hundreds take thousands of
    steps to reach, so short runs learn no quantity at all. Scaling by the typical target puts
    the head's job at O(1)."""
    import keras
    from keras import layers as kl

    if output_length % 2:
        raise ValueError(f"output_length counts both strands and must be even, got {output_length}")
    x_in = keras.Input(shape=(input_length, 4), name="sequence")
    y = kl.BatchNormalization(name="input_bn")(x_in)
    acts = ("elu", "relu")
    for i, (f, k) in enumerate(zip(conv_filters, conv_kernels)):
        y = kl.Conv1D(f, k, padding="valid", name=f"conv{i + 1}")(y)
        y = kl.BatchNormalization(name=f"conv{i + 1}_bn")(y)
        y = kl.Activation(acts[i % 2], name=f"conv{i + 1}_{acts[i % 2]}")(y)
        y = kl.MaxPooling1D(2, name=f"conv{i + 1}_pool")(y)
    y = kl.Conv1D(filters, 1, padding="same", name="bottleneck")(y)
    for i in range(n_dilated):
        skip = y
        y = kl.Conv1D(filters, dilated_kernel, padding="same", dilation_rate=2 ** i,
                      name=f"dil{i}_conv")(y)
        y = kl.BatchNormalization(name=f"dil{i}_bn1")(y)
        y = kl.Activation("relu", name=f"dil{i}_relu1")(y)
        y = kl.Add(name=f"dil{i}_add")([skip, y])
        y = kl.BatchNormalization(name=f"dil{i}_bn2")(y)
        y = kl.Activation("relu", name=f"dil{i}_relu2")(y)
    y = kl.MaxPooling1D(2, name="body_pool")(y)

    p = kl.Flatten(name="profile_flatten")(y)
    p = kl.Dense(output_length, name="profile_dense")(p)
    p = kl.BatchNormalization(name="profile_bn")(p)
    p = kl.Activation("relu", name="profile_relu")(p)
    p = kl.Dropout(dropout, name="profile_dropout")(p)
    p = kl.Activation("linear", dtype="float32", name="profile")(p)

    q = kl.GlobalAveragePooling1D(name="quantity_pool")(y)
    q = kl.Dense(1, name="quantity_dense")(q)
    q = kl.BatchNormalization(name="quantity_bn")(q)
    q = kl.Activation("relu", name="quantity_relu")(q)
    if quantity_scale != 1:
        q = kl.Rescaling(float(quantity_scale), name="quantity_scale")(q)
    q = kl.Dropout(dropout, name="quantity_dropout")(q)
    q = kl.Activation("linear", dtype="float32", name="quantity")(q)
    return keras.Model(x_in, {"profile": p, "quantity": q}, name=name)
