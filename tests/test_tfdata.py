"""tf.data wrapper: same examples as the numpy iterator, uint8 in, stable shapes, epochs."""
from __future__ import annotations

import numpy as np
import pytest

from clipstore.reader import StoreDataset
from tests._synthetic import synthetic_store

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def url(tmp_path_factory) -> str:
    return synthetic_store(str(tmp_path_factory.mktemp("tf") / "s.zarr"), n_loci=96,
                           n_individuals=4, replicates=1, shard_loci=32, seed=1)


def test_tf_matches_numpy_batches(url):
    ds = StoreDataset.open(url).with_jitter(10).with_rc(True).with_rpm(True)
    tfds = ds.to_tf(batch_size=64, seed=3, with_index=True)
    ref = list(ds.batches(64, seed=3, epoch=0))
    got = list(tfds.as_numpy_iterator())
    assert len(got) == len(ref) == tfds.cardinality().numpy()
    for (x, y), b in zip(got, ref):
        assert x.dtype == np.uint8 and y["profile"].dtype == np.float32
        np.testing.assert_array_equal(x, b.x)
        np.testing.assert_array_equal(y["profile"], b.profile)
        np.testing.assert_array_equal(y["quantity"][:, 0], b.quantity)
        np.testing.assert_array_equal(y["locus"], b.locus)
    assert tfds.element_spec[0].shape.as_list() == [None, 100, 4]


def test_tf_epochs_drop_remainder_and_shard(url):
    ds = StoreDataset.open(url)
    tfds = ds.to_tf(batch_size=50, epochs=2, drop_remainder=True, with_index=True)
    assert tfds.element_spec[0].shape.as_list() == [50, 100, 4]
    batches = list(tfds.as_numpy_iterator())
    per_epoch = ds.n_examples // 50
    assert len(batches) == 2 * per_epoch
    e0 = np.concatenate([b[1]["locus"] for b in batches[:per_epoch]])
    e1 = np.concatenate([b[1]["locus"] for b in batches[per_epoch:]])
    assert not np.array_equal(e0, e1)
    n = sum(len(b[0]) for i in range(2)
            for b in ds.shard(2, i).to_tf(batch_size=32).as_numpy_iterator())
    assert n == ds.n_examples


def test_tf_iterations_are_independent(tmp_path):
    """Each iteration of one dataset (a Keras epoch, an `iter()`) gets its own producer and pool
    memory: two iterators at different blocks, interleaved, and a re-iteration all see the
    whole epoch 0, in the same order."""
    url = synthetic_store(str(tmp_path / "i.zarr"), n_loci=256, n_individuals=4, replicates=1,
                          shard_loci=16, seed=3)
    ds = StoreDataset.open(url).with_jitter(10).with_rc(True)
    tfds = ds.to_tf(batch_size=40, seed=5, pool_loci=16)
    ref = [b.x for b in ds.batches(40, seed=5, epoch=0, pool_loci=16)]
    assert len(ref) >= 30   # 16 blocks: pool buffers are recycled many times
    a = iter(tfds)
    got_a = [next(a)[0].numpy() for _ in range(len(ref) // 2)]   # a is a block ahead of b
    b = iter(tfds)
    got_b = []
    for _ in ref:
        if len(got_a) < len(ref):
            got_a.append(next(a)[0].numpy())
        got_b.append(next(b)[0].numpy())
    again = [x for x, _ in tfds.as_numpy_iterator()]
    for got in (got_a, got_b, again):
        assert len(got) == len(ref)
        for g, r in zip(got, ref):
            np.testing.assert_array_equal(g, r)
    with pytest.raises(StopIteration):
        next(a)


def test_tf_feeds_keras_fit(url):
    """A tiny Keras model trains from the dataset (cast uint8 on the model side)."""
    ds = StoreDataset.open(url).with_rc(True)
    inp = tf.keras.Input((100, 4), dtype="uint8")
    h = tf.keras.layers.Flatten()(tf.keras.ops.cast(inp, "float32"))
    model = tf.keras.Model(inp, {"profile": tf.keras.layers.Dense(100, name="profile")(h),
                                 "quantity": tf.keras.layers.Dense(1, name="quantity")(h)})
    model.compile("adam", loss={"profile": "mse", "quantity": "mse"})
    hist = model.fit(ds.to_tf(batch_size=64, epochs=None), steps_per_epoch=3, epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][-1])


def test_tf_batches_do_not_page_fault_once_warm(tmp_path):
    """TF's generator kernel pins glibc's mmap threshold at 128 KiB, which made every large
    buffer (blosc's, each batch's) fresh mmapped memory: ~1 page fault per 4 KiB read. The
    reader re-tunes malloc; a warm pipeline then faults far less than once per batch page."""
    import resource

    url = synthetic_store(str(tmp_path / "f.zarr"), n_loci=96, n_individuals=4, replicates=1,
                          input_length=1000, max_jitter=20, output_length=500, shard_loci=32,
                          seed=2)
    ds = StoreDataset.open(url).with_jitter(20).with_rc(True)
    it = iter(ds.to_tf(batch_size=128, epochs=None, drop_remainder=True))
    for _ in range(8):
        next(it)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    n = 30
    for _ in range(n):
        next(it)
    per_batch = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / n
    pages = (128 * 1000 * 4 + 128 * 1000 * 4) // 4096   # x + profile of one batch
    assert per_batch < pages / 4, (per_batch, pages)


def test_finished_datasets_do_not_keep_pool_memory(url):
    """TF's py-function registry outlives each `to_tf` dataset; pool rings must not live in it
    (they did: ~1.3 GB per call on the loader bench store)."""
    import gc

    from clipstore import native

    ds = StoreDataset.open(url).with_jitter(5)
    for seed in range(5):
        for _ in ds.to_tf(batch_size=64, seed=seed):
            pass
    gc.collect()
    rings = [o for o in gc.get_objects() if isinstance(o, list) and o
             and all(isinstance(d, dict) for d in o)
             and any(isinstance(d.get("seq"), np.ndarray) for d in o)]
    assert 0 < len(rings) <= native.SPARE_RINGS
