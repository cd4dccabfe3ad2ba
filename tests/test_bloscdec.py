"""The reader's Blosc decoder: c-blosc2 gives numcodecs' bytes, and the fallback is real."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from numcodecs import Blosc

from clipstore import bloscdec
from clipstore.reader import StoreDataset

FRAMES = [(cname, shuffle, dtype) for cname in ("zstd", "lz4", "blosclz")
          for shuffle in (Blosc.BITSHUFFLE, Blosc.SHUFFLE, Blosc.NOSHUFFLE)
          for dtype in (np.uint8, np.float32, np.uint16)]


def _data(dtype, seed=0):
    rng = np.random.default_rng(seed)
    a = (rng.random((58, 1500, 4)) < 0.05) * rng.integers(1, 300, (58, 1500, 4))
    return a.astype(dtype)


def test_blosc2_is_the_default_here():
    name, _ = bloscdec.decoder()
    assert name.startswith("c-blosc2")


@pytest.mark.parametrize("cname,shuffle,dtype", FRAMES)
def test_blosc2_decodes_what_numcodecs_encodes(cname, shuffle, dtype):
    data = _data(dtype)
    frame = Blosc(cname, 3, shuffle, blocksize=2**20).encode(data)
    _, decode = bloscdec.decoder("blosc2")
    out = np.empty_like(data)
    decode(memoryview(frame)[0:len(frame)], out)
    assert np.array_equal(out, data)


def test_corrupt_or_wrong_sized_frames_raise():
    data = _data(np.uint8)
    frame = bytearray(Blosc("zstd", 3, Blosc.BITSHUFFLE).encode(data))
    _, decode = bloscdec.decoder("blosc2")
    with pytest.raises(ValueError, match="expected"):
        decode(bytes(frame), np.empty(data.size // 2, np.uint8))
    frame[20:60] = bytes(40)
    with pytest.raises(ValueError):
        decode(bytes(frame), np.empty_like(data))


def test_contexts_are_per_thread():
    """Four threads decoding different frames at once each get their own bytes back."""
    frames = [(_data(np.float32, s), ) for s in range(4)]
    enc = [Blosc("zstd", 3, Blosc.BITSHUFFLE).encode(f[0]) for f in frames]
    _, decode = bloscdec.decoder("blosc2")
    bad = []

    def work(k):
        out = np.empty_like(frames[k][0])
        for _ in range(20):
            decode(enc[k], out)
            if not np.array_equal(out, frames[k][0]):
                bad.append(k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad


def test_reader_gives_the_same_batches_with_either_decoder(store, monkeypatch):
    ds = StoreDataset.open(store).with_jitter(5).with_rc(True).with_rpm(True)
    got = {}
    for name in ("blosc2", "numcodecs"):
        monkeypatch.setenv("CLIPSTORE_BLOSC", name)
        got[name] = list(ds.batches(64, seed=3))
    assert bloscdec.decoder()[0] == "numcodecs"
    assert len(got["blosc2"]) == len(got["numcodecs"]) > 1
    for a, b in zip(got["blosc2"], got["numcodecs"]):
        for f in ("x", "profile", "quantity", "library", "locus"):
            assert np.array_equal(getattr(a, f), getattr(b, f))


def test_bad_setting_is_named(monkeypatch):
    monkeypatch.setenv("CLIPSTORE_BLOSC", "fast")
    with pytest.raises(ValueError, match="CLIPSTORE_BLOSC"):
        bloscdec.decoder()
