"""Epoch order: every pair exactly once, and the randomness contract on batches of 256."""
from __future__ import annotations

import numpy as np
import pytest

from clipstore.reader import DEFAULT_POOL_LOCI
from clipstore.sampling import block_order, epoch_blocks, make_blocks


@pytest.mark.parametrize("n_loci,n_lib", [(1, 1), (7, 3), (100, 67), (300, 5), (40, 100)])
def test_block_order_visits_each_pair_once(n_loci, n_lib):
    lib, loc = block_order(n_loci, n_lib, np.random.default_rng(0))
    pairs = set(zip(lib.tolist(), loc.tolist()))
    assert len(lib) == len(pairs) == n_loci * n_lib


def test_make_blocks_whole_shards_no_thin_blocks():
    loci = np.arange(10_000)
    blocks = make_blocks(loci, 128, 1024, np.random.default_rng(1))
    assert np.array_equal(np.sort(np.concatenate(blocks)), loci)
    assert all(len(b) >= 1024 for b in blocks)
    for b in blocks:  # whole shards only
        shards, counts = np.unique(b // 128, return_counts=True)
        assert all(c == min(128, 10_000 - s * 128) for s, c in zip(shards, counts))


@pytest.mark.parametrize("n_lib,pool", [(67, DEFAULT_POOL_LOCI), (32, DEFAULT_POOL_LOCI),
                                        (20, DEFAULT_POOL_LOCI), (5, DEFAULT_POOL_LOCI),
                                        (67, 1024), (300, DEFAULT_POOL_LOCI)])
def test_randomness_contract(n_lib, pool):
    """Batch of 256 from >= 10,000 loci: >= 200 distinct loci, >= min(libs, 32) libraries."""
    loci = np.arange(10_000)
    blocks = epoch_blocks(loci, n_lib, shard_loci=128, pool_loci=pool, shuffle=True, seed=0,
                          epoch=0)
    lib = np.concatenate([b.lib_pos for b in blocks])
    loc = np.concatenate([b.loci[b.locus_pos] for b in blocks])
    assert len(set(zip(lib.tolist(), loc.tolist()))) == len(lib) == 10_000 * n_lib
    nb = len(lib) // 256
    L = loc[: nb * 256].reshape(nb, 256)
    B = lib[: nb * 256].reshape(nb, 256)
    distinct_loci = np.array([len(np.unique(r)) for r in L])
    distinct_libs = np.array([len(np.unique(r)) for r in B])
    assert distinct_loci.min() >= 200, distinct_loci.min()
    assert distinct_libs.min() >= min(n_lib, 32), distinct_libs.min()


def test_order_changes_with_seed_and_epoch():
    loci = np.arange(2000)
    a = epoch_blocks(loci, 4, shard_loci=128, pool_loci=512, shuffle=True, seed=0, epoch=0)
    b = epoch_blocks(loci, 4, shard_loci=128, pool_loci=512, shuffle=True, seed=0, epoch=1)
    c = epoch_blocks(loci, 4, shard_loci=128, pool_loci=512, shuffle=True, seed=0, epoch=0)
    assert not np.array_equal(a[0].loci, b[0].loci) or not np.array_equal(a[0].lib_pos, b[0].lib_pos)
    assert all(np.array_equal(x.lib_pos, y.lib_pos) and np.array_equal(x.loci, y.loci)
               for x, y in zip(a, c))


def test_unshuffled_order_is_store_order():
    blocks = epoch_blocks(np.arange(300), 2, shard_loci=128, pool_loci=128, shuffle=False,
                          seed=0, epoch=0)
    loc = np.concatenate([b.loci[b.locus_pos] for b in blocks])
    assert np.array_equal(loc, np.repeat(np.arange(300), 2))


def test_block_order_is_computed_lazily_and_reproducibly():
    """Blocks know their size without sorting; the order is computed when first served."""
    loci = np.arange(3000)
    a = epoch_blocks(loci, 67, shard_loci=128, pool_loci=512, shuffle=True, seed=3, epoch=1)
    assert all("_order" not in vars(b) for b in a)
    assert sum(b.n_examples for b in a) == 3000 * 67
    assert "_order" not in vars(a[0])
    b = epoch_blocks(loci, 67, shard_loci=128, pool_loci=512, shuffle=True, seed=3, epoch=1)
    assert np.array_equal(a[2].lib_pos, b[2].lib_pos)
    assert np.array_equal(a[2].locus_pos, b[2].locus_pos)
    assert len(a[2].lib_pos) == a[2].n_examples
