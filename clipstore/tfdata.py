"""tf.data wrapper around the numpy batch iterator (TensorFlow imported only here).

Why whole batches through a `numpy_function` map: the per-example `from_generator` path runs at
~700 examples/s (docs/readers.md); one ready numpy batch per call costs one Python hop per 256
examples, while reading + decoding (decode threads) and gathering (one more thread) run ahead of
it. Of the two batch hops, `numpy_function` costs less TF-side CPU than `from_generator` (no
per-call nest walks or eager conversions; measured on the loader bench store: 0.8-1.2 vs
1.4-1.8 us per example, of ~10-12 us in all), so `from_generator` only hands each iteration
its own producer (see `_Sessions`). Sequences stay uint8 (cast on the device); tracks are
float32.

Why `native.retune_malloc`: TensorFlow's generator kernel pins glibc's mmap threshold at 128 KiB, after
which every decode buffer and batch array is fresh mmapped memory (~3,300 page faults per batch,
4x the CPU per example); see the function.
"""
from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from . import native
from .prefetch import prefetched

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
    import numpy as np
    import tensorflow as tf

    L, O = ds.input_length, ds.output_length

    def batches(buffers: list[dict]):
        for epoch in (itertools.count() if epochs is None else range(epochs)):
            yield from ds.batches(batch_size, shuffle=shuffle, seed=seed, epoch=epoch,
                                  shard=shard, drop_remainder=drop_remainder, buffers=buffers,
                                  **kw)

    def flat_batches(buffers: list[dict]):
        # gathered ahead in one long-lived clipstore thread, overlapping TF's own per-batch work
        for _, b in prefetched(batches(buffers), lambda b: b, 2):
            flat = (b.x, b.profile, b.quantity.reshape(-1, 1))
            if with_index:
                flat += (b.library.astype(np.int64, copy=False),
                         b.locus.astype(np.int64, copy=False))
            yield flat

    B = batch_size if drop_remainder else None
    spec = (tf.TensorSpec((B, L, 4), tf.uint8), tf.TensorSpec((B, 2 * O), tf.float32),
            tf.TensorSpec((B, 1), tf.float32))
    if with_index:
        spec += (tf.TensorSpec((B,), tf.int64), tf.TensorSpec((B,), tf.int64))
    names = ("profile", "quantity", "library", "locus")
    sessions = _Sessions(flat_batches)
    n = None
    if epochs is not None:
        n = ds.n_batches(batch_size, shard=shard, drop_remainder=drop_remainder,
                         **{k: v for k, v in kw.items() if k == "pool_loci"}) * epochs

    def batch(sid):
        out = tf.numpy_function(sessions.next, [sid], [s.dtype for s in spec], stateful=True)
        for t, s in zip(out, spec):
            t.set_shape(s.shape)
        return out[0], dict(zip(names, out[1:]))

    steps = tf.data.Dataset.range(n) if n is not None else tf.data.Dataset.range(2**62)
    out = tf.data.Dataset.from_generator(
        sessions.open, output_signature=tf.TensorSpec((), tf.int64)).flat_map(
        lambda sid: steps.map(lambda _: batch(sid)))
    if n is not None:
        out = out.apply(tf.data.experimental.assert_cardinality(n))
    return out.prefetch(prefetch)


class _Sessions:
    """One batch producer per iteration of the tf.data.Dataset, handed out by id.

    Why: the `numpy_function` map (cheaper than `from_generator`, see the module docstring)
    needs a Python iterator to pull from. Each iteration of the dataset (each Keras epoch over
    a finite dataset, each `iter()`) opens its own producer through a one-element generator, so
    iterations never share or restart one another's order, and the producer (and its threads)
    is closed when the iteration ends or is dropped.
    Pool memory (`buffers` of `StoreDataset.batches`) is reused by later iterations but never
    shared by two live ones: a producer decodes into its ring while the other serves from it.
    Idle rings wait in a process-wide spare list (`native.spare_ring`), not in the object:
    TensorFlow's py-function registry keeps this object alive after the dataset is gone, so a
    ring kept here leaked ~1.3 GB per `to_tf` call (measured, loader bench store).
    """

    def __init__(self, make):
        self._make = make              # make(buffers) -> iterator of flat batches
        self._live: dict[int, object] = {}
        self._ids = itertools.count()

    def open(self):
        native.retune_malloc()  # the GeneratorDataset kernel that calls us has just pinned it
        sid = next(self._ids)
        ring = native.spare_ring()
        self._live[sid] = self._make(ring)
        try:
            yield sid
        finally:
            self._live.pop(sid).close()   # joins its reader thread: the ring is idle after
            native.return_ring(ring)

    def next(self, sid) -> tuple:
        return next(self._live[int(sid)])
