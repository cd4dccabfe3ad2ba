"""Streaming reader: a selection of (library, locus) examples as numpy batches (framework-free).

    ds = (StoreDataset.open("store.zarr").subsample(20, seed=0)
          .with_split(replicate=1, part="train").with_jitter(250).with_rc(True).with_rpm(True))
    for b in ds.batches(batch_size=256, seed=0, epoch=0):
        b.x (B, L, 4) uint8, b.profile (B, 2*out) float32 [plus then minus], b.quantity (B,)

Why it is fast: per-example reads are ~100x too slow (docs/readers.md), so the reader pulls whole
blocks of loci (all individuals and libraries of each locus, one zarr call per shard) in a
background thread, keeps them in RAM as a pool, and gathers batches with numpy fancy indexing on
sliding-window views (one contiguous memcpy per example). The order comes from
`clipstore.sampling` (seeded; every pair exactly once per epoch).

Scale: personal inputs are two-hot (a homozygous base is 2). `masked(True)` serves the
reference as 2 x one-hot — the same scale the build writes for a reference-only individual — so
masked and personal inputs are interchangeable for one model.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Iterator, Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import blockio, schema
from .prefetch import prefetched
from .errors import InputError
from .folds import split_folds
from .sampling import DEFAULT_POOL_LOCI, Block, epoch_blocks


@dataclass(frozen=True)
class Batch:
    """One batch of examples, all numpy; `library`/`locus` are store indices."""

    x: np.ndarray          # (B, L, 4) uint8 two-hot
    profile: np.ndarray    # (B, 2*out) float32, plus strand then minus strand
    quantity: np.ndarray   # (B,) float32, sum of profile
    library: np.ndarray    # (B,) int64
    locus: np.ndarray      # (B,) int64
    rc: np.ndarray         # (B,) bool, reverse-complemented
    shift: np.ndarray      # (B,) int64 jitter applied (bp, before RC)

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class _Meta:
    """Store-wide metadata, read once at open and shared by every derived dataset."""

    url: str
    storage_options: dict | None
    root: object
    info: schema.StoreInfo
    library_id: np.ndarray
    library_individual: np.ndarray
    total_counts: np.ndarray
    locus_id: np.ndarray
    fold: np.ndarray
    n_individuals: int
    opened: dict = field(default_factory=dict, repr=False)   # name -> (zarr array, fast path?)

    def array(self, name: str, rows: bool = False):
        """(array, whether its fast path applies), opened once: opening a zarr array reads
        and parses its metadata (~0.6 ms, measured), once per array per pool otherwise."""
        got = self.opened.get(name)
        if got is None:
            arr = self.root[name]
            got = self.opened[name] = (arr, blockio.rows_layout(arr) if rows
                                       else blockio.fast_layout(arr))
        return got


@dataclass(frozen=True, eq=False)
class StoreDataset:
    """An immutable selection of a store; every `with_*` returns a new dataset."""

    meta: _Meta = field(repr=False)
    libraries: np.ndarray = field(repr=False)   # store library indices, in selection order
    loci: np.ndarray = field(repr=False)        # sorted store locus indices
    is_masked: bool = False
    jitter: int = 0
    rc: bool = False
    rpm: bool = False
    input_length: int = 0
    output_length: int = 0

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def open(cls, url: str, storage_options: dict | None = None) -> "StoreDataset":
        """Open a complete store (refuses one whose build did not finish)."""
        root = schema.open_store(str(url), storage_options=storage_options)
        info = schema.store_info(root)
        meta = _Meta(
            url=str(url), storage_options=storage_options, root=root, info=info,
            library_id=root["library_id"][:], library_individual=root["library_individual"][:].astype(np.int64),
            total_counts=root["total_counts"][:].astype(np.float64), locus_id=root["locus_id"][:],
            fold=root["fold"][:].astype(np.int64), n_individuals=root["individual_id"].shape[0])
        return cls(meta, np.arange(len(meta.library_id)), np.arange(len(meta.locus_id)),
                   input_length=info.input_length, output_length=info.output_length)

    def __repr__(self) -> str:
        return (f"StoreDataset({self.meta.url!r}, libraries={len(self.libraries)}, "
                f"loci={len(self.loci)}, masked={self.is_masked}, jitter={self.jitter}, "
                f"rc={self.rc}, rpm={self.rpm}, input_length={self.input_length}, "
                f"output_length={self.output_length})")

    @property
    def info(self) -> schema.StoreInfo:
        return self.meta.info

    @property
    def n_examples(self) -> int:
        return len(self.libraries) * len(self.loci)

    def __len__(self) -> int:
        return self.n_examples

    # ---- selection ----------------------------------------------------------------------
    def with_libraries(self, libraries: Sequence[str | int]) -> "StoreDataset":
        """Select libraries by id or store index (order kept)."""
        ids = {s: i for i, s in enumerate(self.meta.library_id.tolist())}
        out = []
        for lib in libraries:
            if isinstance(lib, (int, np.integer)):
                if not 0 <= lib < len(ids):
                    raise InputError(f"library index {lib} out of range 0..{len(ids) - 1}",
                                     file=self.meta.url)
                out.append(int(lib))
            elif lib in ids:
                out.append(ids[lib])
            else:
                raise InputError(f"no library {lib!r} in this store", file=self.meta.url,
                                 hint=f"known: {', '.join(list(ids)[:10])}...")
        if len(set(out)) != len(out):
            raise ValueError("a library was selected twice")
        return replace(self, libraries=np.asarray(out, dtype=np.int64))

    def subsample(self, n: int, seed: int = 0) -> "StoreDataset":
        """n libraries from n distinct individuals (never two isogenic replicates), seeded."""
        rng = np.random.default_rng(seed)
        ind = self.meta.library_individual[self.libraries]
        individuals = np.unique(ind)
        if n > len(individuals):
            raise ValueError(f"cannot draw {n} libraries from {len(individuals)} distinct "
                             "individuals without repeating one")
        chosen = rng.choice(individuals, size=n, replace=False)
        picks = [int(rng.choice(self.libraries[ind == i])) for i in chosen]
        return replace(self, libraries=np.asarray(picks, dtype=np.int64))

    def with_loci(self, loci: Sequence[int] | np.ndarray) -> "StoreDataset":
        """Restrict to these store locus indices, locus ids, or a boolean mask over all loci."""
        loci = np.asarray(loci)
        if loci.dtype.kind in "USO":
            ids = {s: i for i, s in enumerate(self.meta.locus_id.tolist())}
            missing = [str(x) for x in loci.tolist() if x not in ids]
            if missing:
                raise InputError(f"{len(missing)} locus id(s) not in this store, e.g. "
                                 f"{missing[0]!r}", file=self.meta.url)
            loci = np.array([ids[x] for x in loci.tolist()], dtype=np.int64)
        if loci.dtype == bool:
            loci = np.flatnonzero(loci)
        loci = np.unique(loci.astype(np.int64))
        if len(loci) and (loci[0] < 0 or loci[-1] >= len(self.meta.locus_id)):
            raise InputError("locus index out of range", file=self.meta.url)
        return replace(self, loci=np.intersect1d(self.loci, loci))

    def with_split(self, replicate: int, part: str = "train") -> "StoreDataset":
        """CLIPNET folds: validation = fold `replicate`, test = fold 0, train = the rest."""
        train, val, test = split_folds(replicate)
        folds = {"train": train, "validation": val, "test": test}.get(part)
        if folds is None:
            raise ValueError(f"part must be train, validation or test, got {part!r}")
        keep = np.flatnonzero(np.isin(self.meta.fold, folds))
        return replace(self, loci=np.intersect1d(self.loci, keep))

    # ---- transforms ---------------------------------------------------------------------
    def masked(self, on: bool = True) -> "StoreDataset":
        """Serve 2 x the reference one-hot instead of each individual's two-hot."""
        return replace(self, is_masked=bool(on))

    def with_jitter(self, jitter: int) -> "StoreDataset":
        """Uniform integer shift in [-jitter, jitter] per example (0 = off, for evaluation)."""
        self._check_window(self.input_length, self.output_length, jitter)
        return replace(self, jitter=int(jitter))

    def with_rc(self, on: bool = True) -> "StoreDataset":
        """Reverse-complement half of the examples (sequence reversed+complemented, track
        reversed with strands swapped)."""
        return replace(self, rc=bool(on))

    def with_rpm(self, on: bool = True) -> "StoreDataset":
        """Scale tracks to reads per million of the library's total counts."""
        return replace(self, rpm=bool(on))

    def with_lengths(self, input_length: int | None = None, output_length: int | None = None
                     ) -> "StoreDataset":
        """Input and output windows (centred); must fit in the stored window with the jitter."""
        li = self.input_length if input_length is None else int(input_length)
        lo = self.output_length if output_length is None else int(output_length)
        self._check_window(li, lo, self.jitter)
        return replace(self, input_length=li, output_length=lo)

    def _check_window(self, li: int, lo: int, jitter: int) -> None:
        W = self.info.window
        if jitter < 0 or li <= 0 or lo <= 0 or lo > li or li + 2 * jitter > W:
            raise ValueError(f"input {li} + 2 x jitter {jitter} must fit the stored window {W} "
                             f"(output {lo} <= input)")
        first = schema.window_starts(self.info, li, lo, -jitter)[1]   # in signal-window coords
        if first < 0 or schema.window_starts(self.info, li, lo, jitter)[1] + lo > self.info.signal_window:
            raise ValueError(f"output {lo} + 2 x jitter {jitter} (centred in input {li}) must fit "
                             f"the stored window of signal, {self.info.signal_window} bp")

    # ---- reading ------------------------------------------------------------------------
    def _read_block(self, loci: np.ndarray, individuals: np.ndarray,
                    buffers: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Locus-major pools over the whole stored windows: seq (P, n_ind, W, 4) uint8 and
        sig (P, n_lib, SW, 2) in the store's signal dtype, decoded in place (no crop copy;
        `buffers` reused)."""
        if self.info.rows:
            return self._read_rows(loci, individuals, buffers)
        W, SW, P = self.info.window, self.info.signal_window, len(loci)
        n_ind = 1 if self.is_masked else len(individuals)
        seq = _buffer(buffers, "seq", (P, n_ind, W, 4), np.uint8)
        sig = _buffer(buffers, "sig", (P, len(self.libraries), SW, 2),
                      self.meta.array(schema.SIGNAL)[0].dtype)
        all_ind = len(individuals) == self.meta.n_individuals and np.array_equal(
            individuals, np.arange(n_ind))
        all_lib = len(self.libraries) == len(self.meta.library_id) and np.array_equal(
            self.libraries, np.arange(len(self.libraries)))
        pool = _decode_pool()
        if self.is_masked:
            _read(self.meta.array(schema.REFERENCE), loci, seq[:, 0], None, pool)
            seq *= 2
        else:
            _read(self.meta.array(schema.SEQUENCE), loci, seq, None if all_ind else individuals,
                  pool)
        _read(self.meta.array(schema.SIGNAL), loci, sig, None if all_lib else self.libraries, pool,
              missing_ok=True)   # pre-schema-4 stores skipped all-zero signal shards
        return seq, sig

    def _read_rows(self, loci: np.ndarray, individuals: np.ndarray, buffers: dict | None
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Schema 5: the same pools as `_read_block`, as (locus, row) views of row-major
        buffers, decoding only the selected individuals' and libraries' rows (each row's
        `sequence_delta` plus 2 x the reference, which is read once per locus)."""
        W, SW, P = self.info.window, self.info.signal_window, len(loci)
        pool = _decode_pool()
        ref = _buffer(buffers, "ref", (P, W, 4), np.uint8)
        _read_rows(self.meta.array(schema.REFERENCE, True), None, loci, ref, pool)
        ref *= 2
        if self.is_masked:
            seq = ref[:, None]
        else:
            rows = _buffer(buffers, "seq", (len(individuals), P, W, 4), np.uint8)
            _read_rows(self.meta.array(schema.SEQUENCE_DELTA, True), individuals, loci, rows,
                       pool, add=ref)
            seq = rows.transpose(1, 0, 2, 3)
        arr = self.meta.array(schema.SIGNAL, True)
        sig = _buffer(buffers, "sig", (len(self.libraries), P, SW, 2), arr[0].dtype)
        _read_rows(arr, self.libraries, loci, sig, pool)
        return seq, sig.transpose(1, 0, 2, 3)

    def _blocks(self, *, shuffle: bool, seed: int, epoch: int, shard, pool_loci: int) -> list[Block]:
        return epoch_blocks(self.loci, len(self.libraries), shard_loci=self.info.shard_loci,
                            pool_loci=pool_loci, shuffle=shuffle, seed=seed, epoch=epoch,
                            shard=shard)

    def n_batches(self, batch_size: int, *, shard=None, drop_remainder: bool = False,
                  pool_loci: int = DEFAULT_POOL_LOCI) -> int:
        """Batches per epoch (for this worker when `shard` is given)."""
        n = sum(b.n_examples for b in self._blocks(shuffle=False, seed=0, epoch=0, shard=shard,
                                                    pool_loci=pool_loci))
        return n // batch_size if drop_remainder else -(-n // batch_size)

    def batches(self, batch_size: int = 256, *, shuffle: bool = True, seed: int = 0,
                epoch: int = 0, shard: tuple[int, int] | None = None,
                drop_remainder: bool = False, pool_loci: int = DEFAULT_POOL_LOCI,
                prefetch: int = 1, buffers: list[dict] | None = None) -> Iterator[Batch]:
        """Numpy batches for one epoch; the next block is read in a background thread.

        shuffle=False serves loci in store order, libraries in selection order, with no
        jitter or RC randomness beyond what was asked for (jitter/RC still drawn if enabled).
        `buffers` (a list, kept by the caller across epochs) lets pool memory be reused instead
        of freshly page-faulted every epoch.
        """
        if len(self.libraries) == 0 or len(self.loci) == 0:
            return iter(())
        blocks = self._blocks(shuffle=shuffle, seed=seed, epoch=epoch, shard=shard,
                              pool_loci=pool_loci)
        return self._iter(blocks, batch_size, seed, epoch, drop_remainder, prefetch, buffers)

    def _iter(self, blocks, batch_size, seed, epoch, drop_remainder, prefetch, buffers
              ) -> Iterator[Batch]:
        lib_ind = self.meta.library_individual[self.libraries]
        individuals, ind_pos = np.unique(lib_ind, return_inverse=True)
        if self.is_masked:
            ind_pos = np.zeros_like(ind_pos)
        scale = (1e6 / np.where(self.meta.total_counts[self.libraries] > 0,
                                self.meta.total_counts[self.libraries], np.inf)).astype(np.float32)
        pending: list[Batch] = []
        n_pending = 0
        ring = buffers if buffers is not None else []
        ring.extend(dict() for _ in range(max(prefetch, 0) + 2 - len(ring)))  # producer never
        # overwrites a pool still being served: depth + 2 buffers
        count = iter(range(len(blocks)))

        def load(b: Block):
            b.lib_pos  # noqa: B018 - compute the block's order here, off the serving thread
            return self._read_block(b.loci, individuals, ring[next(count) % len(ring)])

        for block, (seq, sig) in prefetched(blocks, load, prefetch):
            rng = np.random.default_rng([seed, epoch, block.index, 2])
            n = block.n_examples
            shift = (rng.integers(-self.jitter, self.jitter + 1, n) if self.jitter
                     else np.zeros(n, np.int64))
            rc = rng.random(n) < 0.5 if self.rc else np.zeros(n, bool)
            start = 0
            while start < n:
                take = min(batch_size - n_pending, n - start)
                sl = slice(start, start + take)
                part = self._gather(block, seq, sig, sl, shift[sl], rc[sl], ind_pos, scale)
                start += take
                if take == batch_size:
                    yield part
                    continue
                pending.append(part)
                n_pending += take
                if n_pending == batch_size:
                    yield _concat(pending)
                    pending, n_pending = [], 0
            del seq, sig
        if pending and not drop_remainder:
            yield _concat(pending)

    def _gather(self, block: Block, seq, sig, sl, shift, rc, ind_pos, scale) -> Batch:
        """Cut examples out of the pool: one contiguous copy per example via window views.

        (Measured: this is bound by cache misses on the pool, ~2.2 us per example; a numba-fused
        single-pass gather measured the same.) Reverse complement works on whole rows: a two-hot
        position is 4 bytes ACGT, so reversing positions as uint32 and byte-swapping complements
        (0.6 -> 0.3 us per example vs reversing both uint8 axes); and plus-then-minus reversed
        end to end is minus reversed then plus reversed, the stranded RC of the profile.
        """
        L, O = self.input_length, self.output_length
        lib = block.lib_pos[sl]
        loc = block.locus_pos[sl]
        start_x, start_y = schema.window_starts(self.info, L, O, shift)
        x = _windows(seq, loc, ind_pos[lib], start_x, L)                  # (B, L, 4)
        y = _windows(sig, loc, lib, start_y, O)                           # (B, O, 2)
        profile = np.ascontiguousarray(y.transpose(0, 2, 1), dtype=np.float32).reshape(
            len(y), 2 * O)                                                # uint16 -> float32
        if rc.any():
            rows = x.view(np.uint32).reshape(len(x), L)
            rows[rc] = rows[rc, ::-1].byteswap()
            profile[rc] = profile[rc, ::-1]
        if self.rpm:
            profile *= scale[lib][:, None]
        return Batch(x=x, profile=profile, quantity=profile.sum(1, dtype=np.float32),
                     library=self.libraries[lib], locus=block.loci[loc], rc=rc, shift=shift)

    # ---- framework wrappers -------------------------------------------------------------
    def to_torch(self, batch_size: int = 256, *, seed: int = 0, epochs: int | None = 1, **kw):
        """A torch StoreLoader of (x uint8, {"profile", "quantity"}); see clipstore.torchdata."""
        from .torchdata import to_torch

        return to_torch(self, batch_size=batch_size, seed=seed, epochs=epochs, **kw)

    def to_tf(self, batch_size: int = 256, *, seed: int = 0, epochs: int | None = 1, **kw):
        """A tf.data.Dataset of (x uint8, {"profile", "quantity"}); see clipstore.tfdata."""
        from .tfdata import to_tf

        return to_tf(self, batch_size=batch_size, seed=seed, epochs=epochs, **kw)

    def shard(self, num_workers: int, index: int) -> "ShardedDataset":
        """This worker's part of every epoch (blocks split round-robin across workers)."""
        return ShardedDataset(self, (int(num_workers), int(index)))


@dataclass(frozen=True)
class ShardedDataset:
    """A dataset bound to one worker's shard: same API for batches/to_tf."""

    dataset: StoreDataset
    shard_spec: tuple[int, int]

    def batches(self, batch_size: int = 256, **kw) -> Iterator[Batch]:
        return self.dataset.batches(batch_size, shard=self.shard_spec, **kw)

    def to_tf(self, batch_size: int = 256, **kw):
        return self.dataset.to_tf(batch_size, shard=self.shard_spec, **kw)

    def to_torch(self, batch_size: int = 256, **kw):
        return self.dataset.to_torch(batch_size, shard=self.shard_spec, **kw)

    def n_batches(self, batch_size: int, **kw) -> int:
        return self.dataset.n_batches(batch_size, shard=self.shard_spec, **kw)


def _windows(pool: np.ndarray, loc: np.ndarray, second: np.ndarray, off: np.ndarray, length: int
              ) -> np.ndarray:
    """pool[loc[i], second[i], off[i]:off[i]+length] for each i, as one (B, length, C) array.

    A strided view whose leading axes are indexed and trailing (length, C) block is contiguous,
    so numpy does one memcpy per example.
    """
    I, P, Lp, C = pool.shape
    s0, s1, s2, s3 = pool.strides
    view = as_strided(pool, shape=(I, P, Lp - length + 1, length, C),
                      strides=(s0, s1, s2, s2, s3), writeable=False)
    return view[loc, second, off]


_POOL: ThreadPoolExecutor | None = None


def _forget_pool() -> None:
    global _POOL
    _POOL = None


# a forked child (a DataLoader worker) inherits the pool object but not its threads
os.register_at_fork(after_in_child=_forget_pool)


def _decode_pool() -> ThreadPoolExecutor:
    """Shared decode threads (blosc releases the GIL); one per core, at least two."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max(2, os.cpu_count() or 2), thread_name_prefix="clipstore-decode")
    return _POOL


def _buffer(buffers: dict | None, key: str, shape: tuple, dtype) -> np.ndarray:
    """A reusable pool array (fresh allocations page-fault ~1 GB per block, measured 3x slower)."""
    if buffers is None:
        return np.empty(shape, dtype)
    size = int(np.prod(shape))
    have = buffers.get(key)
    if have is None or have.size < size or have.dtype != dtype:
        have = buffers[key] = np.empty(size, dtype)
    return have[:size].reshape(shape)


def _read(opened, loci, out, take, pool, missing_ok: bool = False) -> None:
    """Fill locus-major `out` from `arr` at `loci`: fast whole-shard path, else plain zarr."""
    arr, fast = opened
    if fast:
        blockio.read_loci(arr, loci, out, take=take, pool=pool, missing_ok=missing_ok)
        return
    ldim = arr.metadata.dimension_names.index("locus")
    idx: list = [slice(None)] * arr.ndim
    idx[ldim] = loci
    a = np.moveaxis(arr.oindex[tuple(idx)], ldim, 0)
    out[:] = a if take is None else a[:, take]


def _read_rows(opened, rows, loci, out, pool, add=None) -> None:
    """Fill row-major `out` from a schema-5 row array: fast path, else plain zarr."""
    arr, fast = opened
    if fast:
        blockio.read_rows(arr, rows, loci, out, pool=pool, add=add)
        return
    out[:] = (arr.oindex[np.asarray(loci)] if rows is None
              else arr.oindex[np.asarray(rows), np.asarray(loci)])
    if add is not None:
        out += add[None]


def _concat(parts: list[Batch]) -> Batch:
    return Batch(*(np.concatenate([getattr(p, f) for p in parts])
                   for f in Batch.__dataclass_fields__))
