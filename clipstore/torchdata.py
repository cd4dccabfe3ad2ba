"""PyTorch wrapper around the numpy batch iterator (torch imported only here; `clipstore[torch]`).

    loader = to_torch(ds.with_jitter(250).with_rc(True), 256, seed=0, num_workers=0)
    for epoch in range(3):                    # each pass is the next epoch: a fresh seeded order
        for x, y in loader:                   # x (B, L, 4) uint8; y["profile"], y["quantity"]
            ...

Why whole batches: like `to_tf`, the store is read a block of loci at a time and gathered into
ready batches by `StoreDataset.batches` (decode threads release the GIL); torch gets each batch
as tensors sharing the numpy memory (`torch.from_numpy`, no copy), so the default sampler's
per-example `__getitem__` + collate (one Python call per example) is never used.

Why `StoreLoader` (a ready iterable) as well as the `TorchStore` IterableDataset: an
IterableDataset has no epoch, and DataLoader workers get a *copy* of the dataset at every
`iter()`, so an epoch counter they advance is lost. The loader sets the epoch on the dataset
before each `iter()` (as `DistributedSampler.set_epoch` is used), so each pass reshuffles,
seeded. With `num_workers=0` (measured fastest on 2 cores: see bench/torch_loader.py) it skips
DataLoader, and pins (when asked) one batch ahead in a background thread, off the training loop.

Workers: worker w of W (times the caller's own `shard`, e.g. a DDP rank) serves every W-th block
of the epoch, so the union is the epoch exactly once; jitter and RC are seeded by block, so the
examples are the same ones the numpy path serves, only interleaved differently.
"""
from __future__ import annotations

import copy
import itertools
import warnings
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from . import native
from .sampling import DEFAULT_POOL_LOCI

native.no_triton_beside_tensorflow()   # before torch loads Triton (see native.py)

if TYPE_CHECKING:  # pragma: no cover
    from .reader import Batch, StoreDataset

try:
    import torch
    from torch.utils.data import IterableDataset, get_worker_info
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("clipstore's PyTorch reader needs torch: pip install 'clipstore[torch]'"
                      ) from e


class TorchBatch(NamedTuple):
    """`(x, y)`; a named tuple because DataLoader's convert and pin steps keep those intact
    (plain tuples come out as lists)."""

    x: torch.Tensor
    y: dict


class TorchStore(IterableDataset):
    """One or more epochs of a StoreDataset as ready torch batches (use `batch_size=None` in a
    DataLoader). Yields `(x uint8 (B, L, 4), {"profile": f32 (B, 2*out), "quantity": f32 (B, 1)
    [, "library", "locus": int64 (B,)]})`, the same structure `to_tf` yields."""

    def __init__(self, ds: StoreDataset, batch_size: int = 256, *, seed: int = 0,
                 epochs: int | None = 1, epoch: int = 0, shuffle: bool = True,
                 shard: tuple[int, int] | None = None, drop_remainder: bool = False,
                 with_index: bool = False, **kw):
        super().__init__()
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if epochs is not None and epochs <= 0:
            raise ValueError(f"epochs must be positive or None (forever), got {epochs}")
        self.ds, self.batch_size, self.seed, self.epochs = ds, int(batch_size), int(seed), epochs
        self.epoch, self.shuffle, self.shard = int(epoch), bool(shuffle), shard
        self.drop_remainder, self.with_index, self.kw = bool(drop_remainder), bool(with_index), kw

    def set_epoch(self, epoch: int) -> None:
        """First epoch the next iteration serves (its order seed is (seed, epoch))."""
        self.epoch = int(epoch)

    def worker_shard(self) -> tuple[int, int] | None:
        """(num_parts, index) this process serves: the caller's shard split over DataLoader
        workers (the caller's shard r of R, worker w of W -> part r * W + w of R * W)."""
        info = get_worker_info()
        if info is None:
            return self.shard
        r, R = (0, 1) if self.shard is None else (self.shard[1], self.shard[0])
        return (R * info.num_workers, r * info.num_workers + info.id)

    def n_batches(self, num_workers: int = 0, epoch: int | None = None) -> int:
        """Batches one iteration serves over all DataLoader workers (from `epoch`, default the
        next one). Counted on the epochs' real blocks: shuffled shards regroup, so a worker's
        share (and its remainder batch) changes from epoch to epoch."""
        if self.epochs is None:
            raise TypeError("an endless dataset (epochs=None) has no length")
        from .sampling import epoch_blocks

        r, R = (0, 1) if self.shard is None else (self.shard[1], self.shard[0])
        W = max(num_workers, 1)
        first = self.epoch if epoch is None else int(epoch)
        pool = self.kw.get("pool_loci", DEFAULT_POOL_LOCI)
        n = 0
        for e in range(first, first + self.epochs):
            for w in range(W):
                blocks = epoch_blocks(self.ds.loci, len(self.ds.libraries),
                                      shard_loci=self.ds.info.shard_loci, pool_loci=pool,
                                      shuffle=self.shuffle, seed=self.seed, epoch=e,
                                      shard=(R * W, r * W + w))
                k = sum(b.n_examples for b in blocks)
                n += k // self.batch_size if self.drop_remainder else -(-k // self.batch_size)
        return n

    def numpy_batches(self) -> Iterator[Batch]:
        """The numpy batches this process serves (all epochs of one iteration)."""
        ds, shard = self.ds, self.worker_shard()
        if get_worker_info() is not None:
            if self.epochs is None:
                raise ValueError("epochs=None in DataLoader workers: a worker with no block in "
                                 "an epoch would spin forever while DataLoader waits on it; use "
                                 "finite epochs (to_torch's loader streams endlessly itself)")
            ds = _reopened(ds)
        epochs = itertools.count(self.epoch) if self.epochs is None else range(
            self.epoch, self.epoch + self.epochs)
        buffers: list[dict] = []          # pool memory reused across this iteration's epochs
        for epoch in epochs:
            served = False
            for b in ds.batches(self.batch_size, shuffle=self.shuffle, seed=self.seed,
                                epoch=epoch, shard=shard, drop_remainder=self.drop_remainder,
                                buffers=buffers, **self.kw):
                served = True
                yield b
            if not served and self.epochs is None:   # an endless loop of empty epochs
                raise ValueError(f"nothing to serve in epoch {epoch} (selection of "
                                 f"{ds.n_examples} examples, part {shard} of the locus "
                                 "blocks): an endless stream would never yield; select more "
                                 "examples, or use fewer shards or a smaller pool_loci")

    def __iter__(self):
        for b in self.numpy_batches():
            yield as_tensors(b, self.with_index)


def as_tensors(b: Batch, with_index: bool = False, pin: bool = False):
    """`(x, {"profile", "quantity"[, "library", "locus"]})` sharing the batch's numpy memory
    (each Batch array is freshly gathered, never a view of the reader's reused pools)."""
    x = torch.from_numpy(b.x)
    y = {"profile": torch.from_numpy(b.profile),
         "quantity": torch.from_numpy(b.quantity.reshape(-1, 1))}
    if with_index:
        y["library"] = torch.from_numpy(b.library.astype(np.int64, copy=False))
        y["locus"] = torch.from_numpy(b.locus.astype(np.int64, copy=False))
    if pin:
        x = x.pin_memory()
        y = {k: v.pin_memory() for k, v in y.items()}
    return TorchBatch(x, y)


class StoreLoader:
    """A ready iterable of torch batches: each `iter()` serves the next `epochs` epochs.

    `num_workers=0` reads in this process (the reader's own decode and gather threads);
    `num_workers>0` uses a torch DataLoader whose workers split the blocks, one DataLoader pass
    (fresh workers) per epoch. `pin_memory=True`
    hands out page-locked tensors (for `.to("cuda", non_blocking=True)`); without an
    accelerator torch cannot pin, and the loader warns once and serves ordinary tensors, as
    DataLoader does.
    """

    def __init__(self, dataset: TorchStore, *, num_workers: int = 0, pin_memory: bool = False,
                 prefetch_factor: int = 2, multiprocessing_context=None):
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        self.dataset, self.num_workers = dataset, int(num_workers)
        self.pin_memory = bool(pin_memory) and _can_pin()
        self._first_epoch, self._passes = dataset.epoch, 0
        self._dl = None
        if self.num_workers:
            from torch.utils.data import DataLoader

            self._per_epoch = copy.copy(dataset)
            self._per_epoch.epochs = 1
            self._dl = DataLoader(self._per_epoch, batch_size=None, num_workers=self.num_workers,
                                  pin_memory=self.pin_memory, prefetch_factor=prefetch_factor,
                                  multiprocessing_context=multiprocessing_context)

    @property
    def epoch(self) -> int:
        """The first epoch the next `iter()` serves."""
        return self._first_epoch + self._passes * (self.dataset.epochs or 0)

    def __len__(self) -> int:
        """Batches the next pass serves."""
        if self.dataset.epochs is None:
            raise TypeError("an endless loader (epochs=None) has no length")
        return self.dataset.n_batches(self.num_workers, epoch=self.epoch)

    def __iter__(self):
        first = self.epoch
        self._passes += 1
        if self._dl is None:
            self.dataset.set_epoch(first)
            return self._in_process()
        return self._from_workers(first)

    def _from_workers(self, first: int):
        """One DataLoader pass per epoch: a worker whose share of an epoch is empty (fewer
        blocks than workers) ends that pass instead of spinning through endless empty epochs
        while DataLoader waits on it."""
        n = self.dataset.epochs
        for e in itertools.count(first) if n is None else range(first, first + n):
            self._per_epoch.set_epoch(e)
            yield from self._dl

    def _in_process(self):
        ds, pin = self.dataset, self.pin_memory
        if not pin:       # measured: a hand-off thread here costs ~1 us/example more CPU
            yield from ds
            return
        from .prefetch import prefetched

        # pinning is a copy of every batch: done one batch ahead in a clipstore thread
        for _, t in prefetched(ds.numpy_batches(), lambda b: as_tensors(b, ds.with_index, pin),
                                2):
            yield t


def to_torch(ds: StoreDataset, batch_size: int = 256, *, seed: int = 0,
             epochs: int | None = 1, epoch: int = 0, shuffle: bool = True,
             shard: tuple[int, int] | None = None, drop_remainder: bool = False,
             with_index: bool = False, num_workers: int = 0, pin_memory: bool = False,
             prefetch_factor: int = 2, multiprocessing_context=None, **kw) -> StoreLoader:
    """A StoreLoader over `ds` (see the module docstring); `.dataset` is the TorchStore, for
    callers who build their own DataLoader (`batch_size=None`, and call `set_epoch`)."""
    tds = TorchStore(ds, batch_size, seed=seed, epochs=epochs, epoch=epoch, shuffle=shuffle,
                     shard=shard, drop_remainder=drop_remainder, with_index=with_index, **kw)
    return StoreLoader(tds, num_workers=num_workers, pin_memory=pin_memory,
                       prefetch_factor=prefetch_factor,
                       multiprocessing_context=multiprocessing_context)


_WARNED: set[str] = set()


def _can_pin() -> bool:
    """Whether torch can page-lock memory here (it needs an accelerator's driver)."""
    ok = torch.cuda.is_available() or (hasattr(torch, "accelerator")
                                       and torch.accelerator.is_available())
    if not ok and "pin" not in _WARNED:
        _WARNED.add("pin")
        warnings.warn("pin_memory=True but no accelerator is available to torch: serving "
                      "ordinary (pageable) tensors", stacklevel=3)
    return ok


def _reopened(ds: StoreDataset) -> StoreDataset:
    """The same selection on a store opened in this worker process.

    Why: a forked DataLoader worker inherits the parent's open store, whose bucket client
    (fsspec's event-loop thread) and the reader's decode-thread pool did not survive the fork;
    reopening gives the worker its own. (Selection fields are kept, only the opened store is new.)
    """
    # (the reader forgets its decode-thread pool in a forked child by itself: os.register_at_fork)
    fresh = type(ds).open(ds.meta.url, storage_options=ds.meta.storage_options)
    return replace(ds, meta=fresh.meta)
