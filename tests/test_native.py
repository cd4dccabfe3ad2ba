"""clipstore.native: each private API or native library it leans on is pinned to the versions
it was checked against (a new version fails here first, not silently in a reader), and every
fallback (`CLIPSTORE_NATIVE=off`) gives the same answers."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version

import numpy as np
import pytest

from clipstore import native


def _major_minor(pkg: str) -> tuple[int, int]:
    return tuple(int(p) for p in version(pkg).split(".")[:2])  # type: ignore[return-value]


def test_pinned_zarr_private_sync():
    """blockio fetches shards on zarr's loop through `zarr.core.sync.sync` (checked: 3.0-3.4)."""
    assert (3, 0) <= _major_minor("zarr") <= (3, 4), "recheck zarr.core.sync, then widen"
    from zarr.core.sync import sync

    async def two():
        await asyncio.sleep(0)
        return 2

    assert sync(two()) == 2 and native.sync(two()) == 2


def test_pinned_threadpool_private_max_workers():
    """`ThreadPoolExecutor._max_workers` (checked: CPython 3.10-3.13)."""
    assert (3, 10) <= sys.version_info[:2] <= (3, 13), "recheck _max_workers, then widen"
    with ThreadPoolExecutor(3) as pool:
        assert pool._max_workers == 3 and native.pool_workers(pool) == 3


def test_pinned_multiprocessing_private_inheriting(tmp_path):
    """`multiprocessing.current_process()._inheriting` is True while a spawned child re-runs
    the parent's main script (checked: CPython 3.10-3.13), False in the parent."""
    assert (3, 10) <= sys.version_info[:2] <= (3, 13), "recheck _inheriting, then widen"
    assert native.bootstrapping() is False
    script = tmp_path / "main.py"
    script.write_text(
        "import multiprocessing as mp\n"
        "from clipstore import native\n"
        "print(__name__, native.bootstrapping(), flush=True)\n"
        "def f():\n    pass\n"
        "if __name__ == '__main__':\n"
        "    p = mp.get_context('spawn').Process(target=f); p.start(); p.join()\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=False,
                       timeout=120, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split("\n")[:2] == ["__main__ False", "__mp_main__ True"]


def test_pinned_libcrc32c_inside_the_google_crc32c_wheel():
    """ctypes loads `google_crc32c.libs/libcrc32c*.so` (checked: google-crc32c 1.5-1.9)."""
    assert (1, 5) <= _major_minor("google-crc32c") <= (1, 9), "recheck the wheel layout"
    name, crc = native.crc32c()
    assert name == "libcrc32c (ctypes)"
    import google_crc32c

    data = np.random.default_rng(0).bytes(10_000)
    assert crc(data, 17, 9_000) == google_crc32c.value(data[17:9_000])
    assert crc(b"123456789", 0, 9) == 0xE3069283          # the crc32c check value
    with pytest.raises(ValueError, match="outside"):
        crc(data, 0, 10_001)


def test_pinned_blosc2_library():
    """c-blosc2 by ctypes from the `blosc2` wheel's lib/ (checked: blosc2 3.x-4.x)."""
    assert 3 <= _major_minor("blosc2")[0] <= 4, "recheck blosc2_decompress_ctx, then widen"
    assert native.decoder()[0] == "c-blosc2 (ctypes)"


def test_pinned_glibc_mallopt():
    if not sys.platform.startswith("linux"):
        pytest.skip("mallopt is glibc's")
    assert native.retune_malloc() is True


def test_spare_rings_are_bounded():
    rings = [native.spare_ring() for _ in range(native.SPARE_RINGS + 2)]
    for r in rings:
        native.return_ring(r)
    got = [native.spare_ring() for _ in range(native.SPARE_RINGS + 1)]
    assert sum(r in rings for r in got[:native.SPARE_RINGS]) == native.SPARE_RINGS
    assert got[-1] == [] and not any(got[-1] is r for r in rings)


def test_fallbacks_give_the_same_answers(tmp_path):
    """With CLIPSTORE_NATIVE=off (a fresh process: the choice is made once), every function
    takes its fallback, and a store reads to the same batches."""
    from tests._synthetic import synthetic_store

    url = synthetic_store(str(tmp_path / "n.zarr"), n_loci=64, shard_loci=32, seed=4)
    code = f"""
import asyncio, hashlib
from concurrent.futures import ThreadPoolExecutor
from clipstore import native
from clipstore.reader import StoreDataset
name, crc = native.crc32c()
h = hashlib.sha256()
for b in StoreDataset.open({url!r}).with_jitter(5).with_rc(True).batches(40, seed=1):
    h.update(b.x.tobytes()); h.update(b.profile.tobytes())
async def one():
    return 1
print(name, native.decoder()[0], crc(b"123456789", 0, 9), native.sync(one()),
      native.pool_workers(ThreadPoolExecutor(3)) > 0, native.retune_malloc(), h.hexdigest())
"""
    out = {}
    for mode in ("on", "off"):
        env = {**os.environ, "CLIPSTORE_NATIVE": mode}
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=300, check=False)
        assert r.returncode == 0, r.stderr[-2000:]
        out[mode] = r.stdout.split()
    assert out["off"][:3] == ["google_crc32c", "numcodecs", str(0xE3069283)]
    assert out["on"][0] == "libcrc32c" and out["on"][2] == "c-blosc2"
    assert out["off"][-4:] == ["1", "True", "False", out["on"][-1]]
    assert out["on"][-2] == "True"


def test_torch_trains_in_a_process_that_loaded_tensorflow_first():
    """TensorFlow, then clipstore.torchdata, then a torch optimizer step (which loads
    torch._dynamo and with it Triton): a segfault without the guard."""
    pytest.importorskip("torch")
    pytest.importorskip("tensorflow")
    code = ("import tensorflow, clipstore.torchdata, torch, torch._dynamo\n"
            "m = torch.nn.Linear(4, 1); opt = torch.optim.Adam(m.parameters())\n"
            "loss = m(torch.randn(8, 4)).pow(2).mean(); loss.backward(); opt.step()\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-2000:]
