"""What differs between the locus-major (schema 2-4) and row-major (schema 5) layouts, for
everything that writes a shard or reads the sequence cube by zarr indexing.

Why: schema 5 stores the two-hot sequence as `sequence_delta` = sequence - 2 x reference (int8,
almost all zeros: 5-10 B per individual and locus on disk instead of re-encoding the reference
in every row), so `root["sequence"]` no longer exists. Code that wants the cube asks
`sequence(root)`, which serves the same uint8 values from either layout.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import zarr

from . import schema


def delta(seq: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """int8 sequence - 2 x reference ((n_ind, P, W, 4) two-hot, (P, W, 4) one-hot)."""
    return (seq.view(np.int8) - 2 * ref.view(np.int8)[None]).astype(np.int8, copy=False)


def write_shard(root: zarr.Group, sl: slice, seq: np.ndarray, ref: np.ndarray,
                sig: np.ndarray) -> None:
    """Write one whole shard of loci `sl` in the store's own layout (build, migrate, tests)."""
    info = schema.store_info(root)
    if info.rows:
        root[schema.SEQUENCE_DELTA][:, sl] = delta(seq, ref)
    else:
        root[schema.SEQUENCE][:, sl] = seq
    root[schema.REFERENCE][sl] = ref
    root[schema.SIGNAL][:, sl] = sig


class SequenceView:
    """The (individual, locus, position, base) uint8 two-hot cube of a store, read by
    orthogonal indexing (`view[i, loci, a:b]`, ints, slices and 1-D integer arrays)."""

    def __init__(self, root: zarr.Group):
        self.root = root
        self.info = schema.store_info(root)
        self._arr = root[schema.SEQUENCE_DELTA if self.info.rows else schema.SEQUENCE]
        self.shape: tuple[int, ...] = tuple(self._arr.shape)
        self.dtype = np.dtype(np.uint8)
        self.ndim = 4

    def __getitem__(self, key: Any) -> np.ndarray:
        key = self._key(key)
        if not self.info.rows:
            return np.asarray(self._arr.oindex[key])
        d = np.asarray(self._arr.oindex[key]).view(np.uint8)
        r = np.asarray(self.root[schema.REFERENCE].oindex[key[1:]])
        return d + 2 * r          # uint8 arithmetic wraps: -2 (254) + 2 = 0

    def __setitem__(self, key: Any, value: np.ndarray) -> None:
        """Write two-hot values (tests, tools that plant genotypes); schema 5 stores them as
        their delta from 2 x the reference already stored at those loci. Writes that cover
        part of a shard go through zarr's read-modify-write: one writer at a time."""
        key = self._key(key)
        if not self.info.rows:
            self._arr.oindex[key] = value
            return
        r = np.asarray(self.root[schema.REFERENCE].oindex[key[1:]])
        v = np.broadcast_to(np.asarray(value, np.uint8), np.broadcast_shapes(
            np.shape(value), np.shape(self[key])))
        self._arr.oindex[key] = (v - 2 * r).view(np.int8)     # uint8 wraps: 0 - 2 -> 254 = -2

    def _key(self, key: Any) -> tuple:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            raise IndexError("SequenceView takes no Ellipsis: index each axis")
        return key + (slice(None),) * (4 - len(key))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        a = self[:]
        return a if dtype is None else a.astype(dtype)


def read_shard(root: zarr.Group, sl: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sequence two-hot, reference, signal) of loci `sl`, whole cohort, in either layout."""
    return read_loci(root, np.arange(sl.start, sl.stop), signal=True)


def read_loci(root: zarr.Group, loci: np.ndarray, *, signal: bool = False) -> tuple:
    """(sequence two-hot, reference[, signal]) of ascending `loci`, whole cohort, either layout.

    Schema 5 goes through the reader's whole-object path (`blockio.read_rows`): one request
    per (row, shard) object instead of zarr's index + chunk range requests for each, which a
    store on a bucket answers far faster (and the fake-gcs emulator at all), and one decode per
    row and 64 loci where zarr indexing locus by locus decodes the same chunk again for each
    (measured: the demo's QTL evaluation spent 90 s of 105 there)."""
    from concurrent.futures import ThreadPoolExecutor

    from . import blockio
    loci = np.asarray(loci, np.int64)
    info = schema.store_info(root)
    arrays = [root[n] for n in (schema.REFERENCE, schema.SEQUENCE_DELTA if info.rows
                                else schema.SEQUENCE, schema.SIGNAL)]
    if not info.rows or not all(blockio.rows_layout(a) for a in arrays):
        out = (sequence(root)[:, loci], np.asarray(arrays[0].oindex[loci]))
        return out + ((np.asarray(arrays[2].oindex[:, loci]),) if signal else ())
    ref_a, d_a, sig_a = arrays
    ref = np.empty((len(loci),) + tuple(ref_a.shape[1:]), np.uint8)
    seq = np.empty((d_a.shape[0], len(loci)) + tuple(d_a.shape[2:]), np.uint8)
    with ThreadPoolExecutor(2) as pool:
        blockio.read_rows(ref_a, None, loci, ref, pool=pool)
        blockio.read_rows(d_a, np.arange(d_a.shape[0]), loci, seq, pool=pool, add=2 * ref)
        if not signal:
            return seq, ref
        sig = np.empty((sig_a.shape[0], len(loci)) + tuple(sig_a.shape[2:]), sig_a.dtype)
        blockio.read_rows(sig_a, np.arange(sig_a.shape[0]), loci, sig, pool=pool)
    return seq, ref, sig


def iter_loci(root: zarr.Group, loci, block: int = 64):
    """(locus, (individual, position, base) two-hot) for each of the distinct `loci`, in
    ascending order, read `block` loci at a time (bounded memory on large cohorts)."""
    loci = np.unique(np.asarray(loci, np.int64))
    for i in range(0, len(loci), block):
        part = loci[i:i + block]
        seq = read_loci(root, part)[0]
        for j, locus in enumerate(part):
            yield int(locus), seq[:, j]


def sequence(root: zarr.Group) -> SequenceView:
    """The two-hot sequence cube of any readable store version."""
    return SequenceView(root)


def n_individuals(root: zarr.Group) -> int:
    return int(root["individual_id"].shape[0])
