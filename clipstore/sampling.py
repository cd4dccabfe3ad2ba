"""Epoch order: which (library, locus) pair comes when, in plain numpy (no I/O, no framework).

Why this shape: a store is read fastest a whole locus (all individuals/libraries) at a time, so an
epoch is cut into *blocks* of at least `pool_loci` selected loci (whole shards, shards in a seeded
random order). Within a block every locus is paired with every library exactly once, spread over
`n_lib` *rounds*: in a round each locus appears once, with libraries assigned by a rotating Latin
square and interleaved round-robin. So any 256 consecutive examples hold ~256 distinct loci and
(when there are at most ~128 libraries) every library — the randomness contract — while the block
keeps memory bounded (pool_loci loci in RAM, plus the one being prefetched).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


DEFAULT_POOL_LOCI = 512   # loci whose examples are shuffled together (one pool)


@dataclass(frozen=True)
class Block:
    """One pool: the store loci to read, and the order its examples are served in.

    The order is computed on first use (by the prefetch thread, when the block is read), not
    for the whole epoch up front: an epoch of 20k loci x 67 libraries costs ~0.3 s of
    argsorts that would otherwise stall the first batch and `n_batches`.
    """

    index: int            # position of this block in the epoch (seeds its jitter/RC)
    loci: np.ndarray      # (P,) sorted store locus indices to read
    n_lib: int
    seed: tuple[int, int] | None = None   # (seed, epoch) when shuffled, None = plain order

    @property
    def n_examples(self) -> int:
        return len(self.loci) * self.n_lib

    @cached_property
    def _order(self) -> tuple[np.ndarray, np.ndarray]:
        rng = (None if self.seed is None
               else np.random.default_rng([self.seed[0], self.seed[1], self.index, 1]))
        return block_order(len(self.loci), self.n_lib, rng)

    @property
    def lib_pos(self) -> np.ndarray:
        """(P * n_lib,) position into the dataset's library selection."""
        return self._order[0]

    @property
    def locus_pos(self) -> np.ndarray:
        """(P * n_lib,) position into `loci`."""
        return self._order[1]


def make_blocks(loci: np.ndarray, shard_loci: int, pool_loci: int,
                rng: np.random.Generator | None) -> list[np.ndarray]:
    """Group selected loci (sorted) into blocks of whole shards with >= pool_loci loci each.

    Shards are taken in random order (or store order when rng is None); a small remainder is
    merged into the previous block so that no block is thin (thin blocks would repeat loci
    within a batch).
    """
    loci = np.asarray(loci, dtype=np.int64)
    if len(loci) == 0:
        return []
    shard_of = loci // shard_loci
    bounds = np.flatnonzero(np.diff(shard_of)) + 1
    groups = np.split(loci, bounds)
    order = rng.permutation(len(groups)) if rng is not None else np.arange(len(groups))
    blocks: list[list[np.ndarray]] = []
    cur: list[np.ndarray] = []
    n = 0
    for g in order:
        cur.append(groups[g])
        n += len(groups[g])
        if n >= pool_loci:
            blocks.append(cur)
            cur, n = [], 0
    if cur:
        if blocks and n < pool_loci:
            blocks[-1].extend(cur)
        else:
            blocks.append(cur)
    return [np.sort(np.concatenate(b)) for b in blocks]


def block_order(n_loci: int, n_lib: int, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
    """(lib_pos, locus_pos) visiting every (library, locus) of a block exactly once.

    With rng None the order is plain (locus-major, libraries in order) — for evaluation.
    """
    if rng is None:
        lib = np.tile(np.arange(n_lib), n_loci)
        loc = np.repeat(np.arange(n_loci), n_lib)
        return lib, loc
    # offset class of each locus: balanced (sizes differ by at most one), randomly assigned
    offset = np.empty(n_loci, dtype=np.int64)
    offset[rng.permutation(n_loci)] = np.arange(n_loci) % n_lib
    lib_map = rng.permutation(n_lib)
    libs_out, loci_out = [], []
    arange = np.arange(n_loci)
    for r in rng.permutation(n_lib):
        lib = (offset + r) % n_lib                  # Latin square: locus j sees every lib once
        # rank each locus within its library group at random, then interleave the groups
        u = rng.random(n_loci)
        by = np.lexsort((u, lib))
        rank = np.empty(n_loci, dtype=np.int64)
        starts = np.searchsorted(lib[by], lib[by])
        rank[by] = arange - starts
        slot_order = rng.permutation(n_lib)
        key = rank * n_lib + slot_order[lib]
        o = np.argsort(key, kind="stable")
        libs_out.append(lib_map[lib[o]])
        loci_out.append(o)
    return np.concatenate(libs_out), np.concatenate(loci_out)


def epoch_blocks(loci: np.ndarray, n_lib: int, *, shard_loci: int, pool_loci: int,
                 shuffle: bool, seed: int, epoch: int,
                 shard: tuple[int, int] | None = None) -> list[Block]:
    """The epoch as a list of blocks; with `shard=(num_workers, index)` this worker's blocks.

    Workers split at block granularity (each reads only its own loci); all workers derive the
    same block list from (seed, epoch), so the union over workers is the whole epoch, once.
    """
    rng = np.random.default_rng([seed, epoch]) if shuffle else None
    groups = make_blocks(loci, shard_loci, pool_loci, rng)
    if shard is not None:
        num_workers, index = shard
        if not 0 <= index < num_workers:
            raise ValueError(f"shard index {index} not in 0..{num_workers - 1}")
        picked = list(range(index, len(groups), num_workers))
    else:
        picked = list(range(len(groups)))
    key = (int(seed), int(epoch)) if shuffle else None
    return [Block(i, groups[i], int(n_lib), key) for i in picked]
