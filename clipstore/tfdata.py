"""tf.data wrapper around the numpy batch iterator (TensorFlow imported only here).

Why a generator of whole batches: the per-example `from_generator` path runs at ~700 examples/s
(DESIGN §3); yielding one ready numpy batch per call costs one Python hop per 256 examples, and
reading + decoding (decode threads) and gathering (one more thread) run ahead of it. A
`numpy_function` map over batch indices measured no faster (0.8 vs 1.3 us of TF overhead per
example, against ~12 us of reading) and would need a shared iterator anyway. Sequences stay
uint8 (cast on the device); tracks are float32.

Why `_retune_malloc`: TensorFlow's generator kernel pins glibc's mmap threshold at 128 KiB, after
which every decode buffer and batch array is fresh mmapped memory (~3,300 page faults per batch,
4x the CPU per example); see the function.
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .reader import StoreDataset


def to_tf(ds: "StoreDataset", batch_size: int = 256, *, seed: int = 0, epochs: int | None = 1,
          shuffle: bool = True, shard: tuple[int, int] | None = None,
          drop_remainder: bool = False, prefetch: int = 2, with_index: bool = False, **kw):
    """tf.data.Dataset of `(x (B, L, 4) uint8, {"profile": (B, 2*out) f32, "quantity": (B, 1) f32})`.

    Epoch e (0, 1, ...) uses order seed (seed, e); `epochs=None` repeats forever with a fresh
    order each epoch. `with_index=True` adds "library" and "locus" (int64) to the targets dict,
    for evaluation.
    """
    import itertools

    import numpy as np
    import tensorflow as tf

    from .reader import _prefetched

    L, O = ds.input_length, ds.output_length

    buffers: list[dict] = []   # pool memory reused across epochs

    def batches():
        for epoch in (itertools.count() if epochs is None else range(epochs)):
            yield from ds.batches(batch_size, shuffle=shuffle, seed=seed, epoch=epoch,
                                  shard=shard, drop_remainder=drop_remainder, buffers=buffers,
                                  **kw)

    def gen():
        _retune_malloc()  # the GeneratorDataset kernel that calls us has just pinned it
        # gathered ahead in one long-lived clipstore thread, overlapping TF's own per-batch work
        for _, b in _prefetched(batches(), lambda b: b, 2):
            y = {"profile": b.profile, "quantity": b.quantity.reshape(-1, 1)}
            if with_index:
                y["library"], y["locus"] = b.library.astype(np.int64), b.locus.astype(np.int64)
            yield b.x, y

    B = batch_size if drop_remainder else None
    y_sig = {"profile": tf.TensorSpec((B, 2 * O), tf.float32),
             "quantity": tf.TensorSpec((B, 1), tf.float32)}
    if with_index:
        y_sig["library"] = tf.TensorSpec((B,), tf.int64)
        y_sig["locus"] = tf.TensorSpec((B,), tf.int64)
    out = tf.data.Dataset.from_generator(
        gen, output_signature=(tf.TensorSpec((B, L, 4), tf.uint8), y_sig))
    if epochs is not None:
        n = ds.n_batches(batch_size, shard=shard, drop_remainder=drop_remainder,
                         **{k: v for k, v in kw.items() if k == "pool_loci"}) * epochs
        out = out.apply(tf.data.experimental.assert_cardinality(n))
    return out.prefetch(prefetch)


# glibc mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def _retune_malloc(mmap_threshold: int = 16 << 20, trim_threshold: int = 64 << 20) -> bool:
    """Undo the cost of TensorFlow's `ApplyPython311MemoryPatch` (glibc only; no-op elsewhere).

    TF's GeneratorDataset kernel calls `mallopt(M_MMAP_THRESHOLD, 128 KiB)`, which pins glibc's
    threshold: from then on every allocation >= 128 KiB in the process — blosc's ~1 MiB decode
    buffers, each batch array — is a fresh mmap that page-faults in and is unmapped on free.
    Measured here: ~3,300 page faults per batch of 256 and 4x the CPU per example of the same
    reader outside TF. A 16 MiB threshold (above those buffers, far below the pools) with a
    64 MiB trim threshold lets them be reused; memory growth stays bounded by the thresholds.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
                    and libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold))
    except (OSError, AttributeError):
        return False
