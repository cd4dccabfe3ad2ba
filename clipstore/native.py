"""Native and private-API tuning of the reader, fenced in one module, each with a fallback.

Why one module: each trick here is measured and worth keeping, but leans on something no
library promises (a shared-library file inside a wheel, a private function of zarr or of the
standard library, glibc's `mallopt`). Gathered here, each has a version-pinned test
(tests/test_native.py) and a fallback that gives the same bytes, only slower, which the tests
also run. `CLIPSTORE_NATIVE=off` forces every fallback.

* `crc32c()`: the chunk and shard-index checksums, through ctypes on the libcrc32c that the
  `google-crc32c` wheel bundles (a ctypes call releases the GIL, so decode threads verify in
  parallel; `google_crc32c.value` holds it below 1 MiB and takes no memoryview, so it copies).
* `decoder()`: Blosc chunk decoding through c-blosc2 by ctypes (`clipstore.bloscdec`).
* `sync()`: zarr's private event-loop bridge (`zarr.core.sync.sync`), else `asyncio.run` in a
  fresh thread.
* `pool_workers()`: a `ThreadPoolExecutor`'s size (private `_max_workers`), else the CPU count.
* `bootstrapping()`: whether this process is a multiprocessing child still re-running its
  parent's main script (private `_inheriting`, the flag multiprocessing's own check reads).
* `retune_malloc()`: glibc `mallopt`, undoing TensorFlow's mmap-threshold pin (tfdata).
* `spare_ring()` / `return_ring()`: the process-wide list of idle pool buffers (tfdata).
* `no_triton_beside_tensorflow()`: keeps torch from loading Triton into a process that holds
  TensorFlow (both carry LLVM; the second one's C library segfaults on load).
"""
from __future__ import annotations

import asyncio
import ctypes
import glob
import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

import numpy as np

from . import bloscdec

Crc = Callable[[bytes, int, int], int]    # crc(buf, start, stop) = crc32c of buf[start:stop]


def enabled() -> bool:
    """False when `CLIPSTORE_NATIVE=off`: every function here takes its fallback."""
    return os.environ.get("CLIPSTORE_NATIVE", "on").lower() not in ("off", "0", "no")


# ---- crc32c -------------------------------------------------------------------------------
def _load_libcrc32c() -> ctypes.CDLL:
    spec = importlib.util.find_spec("google_crc32c")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("google-crc32c is not installed")
    here = os.path.dirname(next(iter(spec.submodule_search_locations)))
    found = sorted(glob.glob(os.path.join(here, "google_crc32c.libs", "libcrc32c*.so*"))
                   + glob.glob(os.path.join(here, "google_crc32c", ".dylibs", "libcrc32c*.dylib")))
    if not found:
        raise ImportError(f"no libcrc32c shared library beside {here}/google_crc32c")
    lib = ctypes.CDLL(found[0])
    lib.crc32c_value.restype = ctypes.c_uint32
    lib.crc32c_value.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    return lib


def _ctypes_crc() -> Crc:
    lib = _load_libcrc32c()
    value = lib.crc32c_value
    c_char_p, c_void_p, cast = ctypes.c_char_p, ctypes.c_void_p, ctypes.cast

    def crc(buf: bytes, start: int, stop: int) -> int:
        if not (0 <= start <= stop <= len(buf)):
            raise ValueError(f"crc range {start}:{stop} outside a buffer of {len(buf)} bytes")
        return value(cast(c_char_p(buf), c_void_p).value + start, stop - start)

    return crc


def _python_crc(buf: bytes, start: int, stop: int) -> int:
    import google_crc32c

    if not (0 <= start <= stop <= len(buf)):
        raise ValueError(f"crc range {start}:{stop} outside a buffer of {len(buf)} bytes")
    return int(google_crc32c.value(bytes(buf[start:stop])))


@cache
def _choose_crc(native: bool) -> tuple[str, Crc]:
    if native:
        try:
            crc = _ctypes_crc()
            probe = os.urandom(4096)
            if all(crc(probe, a, b) == _python_crc(probe, a, b) for a, b in
                   ((0, 4096), (3, 1001), (7, 7))):
                return "libcrc32c (ctypes)", crc
        except (ImportError, OSError, AttributeError, TypeError):
            pass
    return "google_crc32c", _python_crc


def crc32c() -> tuple[str, Crc]:
    """(name, crc(buf, start, stop)): crc32c (Castagnoli) of `buf[start:stop]`, no copy."""
    return _choose_crc(enabled())


# ---- blosc ------------------------------------------------------------------------------------
def decoder(prefer: str | None = None) -> tuple[str, bloscdec.Decode]:
    """(name, decode(src, out)): c-blosc2 by ctypes, else numcodecs (`clipstore.bloscdec`;
    `CLIPSTORE_BLOSC` or `prefer` choose; `CLIPSTORE_NATIVE=off` forces numcodecs)."""
    return bloscdec.decoder(prefer or (None if enabled() else "numcodecs"))


# ---- private APIs of zarr and the standard library -------------------------------------------
def sync(coro: Coroutine) -> Any:
    """Run `coro` on zarr's own event loop (shared with zarr's store I/O), else in a thread."""
    if enabled():
        try:
            from zarr.core.sync import sync as zsync
        except ImportError:
            pass
        else:
            return zsync(coro)
    box: dict = {}

    def run() -> None:
        try:
            box["v"] = asyncio.run(coro)
        except BaseException as e:  # re-raised in the caller
            box["e"] = e

    t = threading.Thread(target=run, name="clipstore-sync")
    t.start()
    t.join()
    if "e" in box:
        raise box["e"]
    return box["v"]


def pool_workers(pool: ThreadPoolExecutor) -> int:
    """How many threads `pool` runs (to cut work into enough parts)."""
    n = getattr(pool, "_max_workers", None) if enabled() else None
    return int(n) if isinstance(n, int) and n > 0 else max(2, os.cpu_count() or 2)


def bootstrapping() -> bool:
    """True in a spawned/forkserver child while it re-imports the parent's `__main__` (the
    build refuses to start a cluster from there); the fallback says False (no guard)."""
    import multiprocessing

    return bool(enabled() and getattr(multiprocessing.current_process(), "_inheriting", False))


# ---- glibc malloc ---------------------------------------------------------------------------
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3   # glibc mallopt parameters


def retune_malloc(mmap_threshold: int = 16 << 20, trim_threshold: int = 64 << 20) -> bool:
    """Undo the cost of TensorFlow's `ApplyPython311MemoryPatch` (glibc only; no-op elsewhere).

    TF's GeneratorDataset kernel calls `mallopt(M_MMAP_THRESHOLD, 128 KiB)`, which pins glibc's
    threshold: from then on every allocation >= 128 KiB in the process — blosc's ~1 MiB decode
    buffers, each batch array — is a fresh mmap that page-faults in and is unmapped on free.
    Measured here: ~3,300 page faults per batch of 256 and 4x the CPU per example of the same
    reader outside TF. A 16 MiB threshold (above those buffers, far below the pools) with a
    64 MiB trim threshold lets them be reused; memory growth stays bounded by the thresholds.
    Returns whether it was applied (False = the fallback: nothing changed).
    """
    if not enabled() or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
                    and libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold))
    except (OSError, AttributeError):
        return False


# ---- idle pool rings ------------------------------------------------------------------------
# Idle pool rings (`StoreDataset.batches(buffers=...)`) kept for the next tf.data iteration (a
# training and a validation dataset alternate). Process-wide, not per object: TensorFlow's
# py-function registry keeps a dataset's objects alive after the dataset is gone, so a ring
# kept there leaked ~1.3 GB per `to_tf` call (measured, loader bench store).
SPARE_RINGS = 2
_SPARE: list[list[dict[str, np.ndarray]]] = []
_SPARE_LOCK = threading.Lock()


def spare_ring() -> list[dict[str, np.ndarray]]:
    """An idle ring of pool buffers (or a new empty one)."""
    with _SPARE_LOCK:
        return _SPARE.pop() if _SPARE else []


def return_ring(ring: list[dict[str, np.ndarray]]) -> None:
    """Give a ring back once nothing decodes into it; at most `SPARE_RINGS` are kept."""
    with _SPARE_LOCK:
        if len(_SPARE) < SPARE_RINGS:
            _SPARE.append(ring)


def no_triton_beside_tensorflow() -> bool:
    """Mark Triton as absent when TensorFlow is already loaded (True when it did).

    Why: Triton's C library and TensorFlow's both carry LLVM, and loading Triton after
    TensorFlow segfaults the process (torch 2.14 CUDA build + tensorflow-cpu 2.21, measured: torch
    imports Triton when `torch._dynamo` loads, e.g. with an optimizer). torch treats a missing
    Triton as "no GPU kernel compiler" and carries on; the reader needs none. A process without
    TensorFlow (the usual PyTorch job) is left alone."""
    if "tensorflow" in sys.modules and "triton" not in sys.modules:
        sys.modules["triton"] = None   # `import triton` now raises ImportError, as if absent
        return True
    return False
