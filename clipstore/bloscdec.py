"""Blosc chunk decoding for the reader's hot path: c-blosc2 through ctypes, else numcodecs.

Why c-blosc2: it reads the Blosc1 frames our stores hold (the format is unchanged) and decodes
them faster than numcodecs' bundled c-blosc 1 (measured on the loader bench's simulated-cohort
store: signal chunks 34 % less CPU, sequence 8 %; 0.7-1.1 us of the loader's 8-9 us per example).
Why ctypes: python-blosc2's own `decompress` holds the GIL (two decode threads ran no faster
than one, measured), while a ctypes call releases it, so the reader's decode threads overlap.
Each thread keeps its own decompression context (`blosc2_decompress_ctx` is thread-safe per
context; the global-context API is not).
The library file inside the `blosc2` wheel is not a public API, so it is located without
importing `blosc2` (a heavy import), checked against numcodecs on a test frame at first use, and
any failure falls back to numcodecs: same bytes out, only slower. `CLIPSTORE_BLOSC=numcodecs`
forces the fallback.
"""
from __future__ import annotations

import ctypes
import glob
import importlib.util
import os
import threading
from functools import lru_cache
from typing import Callable

import numpy as np
from numcodecs import Blosc

Decode = Callable[[memoryview | bytes, np.ndarray], None]


class _DParams(ctypes.Structure):
    """blosc2_dparams (blosc2.h): nthreads, schunk, postfilter, postparams."""

    _fields_ = [("nthreads", ctypes.c_int16), ("schunk", ctypes.c_void_p),
                ("postfilter", ctypes.c_void_p), ("postparams", ctypes.c_void_p)]


class _Context:
    """One thread's decompression context, freed with the thread."""

    def __init__(self, lib):
        self.lib = lib
        self.ptr = lib.blosc2_create_dctx(_DParams(1, None, None, None))
        if not self.ptr:
            raise RuntimeError("blosc2_create_dctx failed")

    def __del__(self):
        if self.ptr:
            self.lib.blosc2_free_ctx(self.ptr)


def _load_blosc2():
    spec = importlib.util.find_spec("blosc2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("blosc2 is not installed")
    here = list(spec.submodule_search_locations)[0]
    found = sorted(glob.glob(os.path.join(here, "lib", "libblosc2.so*"))
                   + glob.glob(os.path.join(here, "lib", "libblosc2*.dylib")))
    if not found:
        raise ImportError(f"no libblosc2 shared library under {here}/lib")
    lib = ctypes.CDLL(found[0])
    lib.blosc2_init.restype = None
    lib.blosc2_init()
    lib.blosc2_create_dctx.restype = ctypes.c_void_p
    lib.blosc2_create_dctx.argtypes = [_DParams]
    lib.blosc2_free_ctx.restype = None
    lib.blosc2_free_ctx.argtypes = [ctypes.c_void_p]
    lib.blosc2_decompress_ctx.restype = ctypes.c_int
    lib.blosc2_decompress_ctx.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32,
                                          ctypes.c_void_p, ctypes.c_int32]
    return lib


def _blosc2_decoder() -> Decode:
    lib = _load_blosc2()
    local = threading.local()

    def decode(src, out: np.ndarray) -> None:
        ctx = getattr(local, "ctx", None)
        if ctx is None:
            ctx = local.ctx = _Context(lib)
        if not out.flags.c_contiguous:
            raise ValueError("decode target must be C-contiguous")
        buf = np.frombuffer(src, dtype=np.uint8)
        n = lib.blosc2_decompress_ctx(ctx.ptr, buf.ctypes.data, len(buf), out.ctypes.data,
                                      out.nbytes)
        if n != out.nbytes:
            raise ValueError(f"blosc chunk decoded to {n} bytes, expected {out.nbytes} "
                             "(a negative number is a c-blosc2 error code: corrupt chunk?)")

    _self_test(decode)
    return decode


def _self_test(decode: Decode) -> None:
    """The bytes must equal numcodecs' for the codecs our schema writes."""
    rng = np.random.default_rng(0)
    data = (rng.random((64, 300, 2)) < 0.1).astype(np.float32) * rng.integers(1, 9, (64, 300, 2))
    for shuffle in (Blosc.BITSHUFFLE, Blosc.SHUFFLE, Blosc.NOSHUFFLE):
        frame = Blosc("zstd", 3, shuffle, blocksize=2**20).encode(data)
        out = np.empty_like(data)
        decode(frame, out)
        if not np.array_equal(out, data):
            raise RuntimeError("c-blosc2 decoded a test frame differently from numcodecs")


_NUMCODECS = Blosc()   # decode reads the codec from each frame's header, not the instance's


def _numcodecs_decode(src, out: np.ndarray) -> None:
    _NUMCODECS.decode(src, out=out)


@lru_cache(maxsize=None)
def _choose(prefer: str) -> tuple[str, Decode]:
    if prefer != "numcodecs":
        try:
            return "c-blosc2 (ctypes)", _blosc2_decoder()
        except (ImportError, OSError, AttributeError, RuntimeError, ValueError) as e:
            if prefer == "blosc2":
                raise RuntimeError(f"c-blosc2 decoder unavailable: {e}") from e
    return "numcodecs", _numcodecs_decode


def decoder(prefer: str | None = None) -> tuple[str, Decode]:
    """(name, decode(src, out)): `prefer` "blosc2", "numcodecs" or None (= $CLIPSTORE_BLOSC,
    default the fastest that works). `decode` fills C-contiguous `out` from one Blosc frame."""
    prefer = prefer or os.environ.get("CLIPSTORE_BLOSC", "auto")
    if prefer not in ("auto", "blosc2", "numcodecs"):
        raise ValueError(f"CLIPSTORE_BLOSC must be auto, blosc2 or numcodecs, got {prefer!r}")
    return _choose(prefer)
