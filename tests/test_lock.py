"""One writer per store (clipstore.lock): a second build of the same output is refused naming the
holder, a stale lock of a dead process is recovered, and the same holds in buckets (real moto and
fake-gcs-server processes on loopback, with their conditional writes)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import fsspec
import pytest
import zarr

from clipstore import schema
from clipstore.errors import InputError
from clipstore.lock import StoreLock, lock_url
from clipstore.testing import gcs_server, moto_server
from tests._build_inputs import assert_same_store, build_process, shards_done, wait_for

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clipstore", "-q", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_second_build_of_the_same_output_is_refused_naming_the_holder(cohort, built, tmp_path):
    out = str(tmp_path / "s.zarr")
    first = subprocess.Popen(build_process(cohort["config"], out, delay=0.3), cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: shards_done(out) >= 1 or first.poll() is not None, 120, "a shard")
        assert first.poll() is None
        second = _cli("build", str(cohort["config"]), "-o", out, "--max-jitter", "5",
                      "--overwrite")      # even --overwrite must not write under a running build
        assert second.returncode == 2, second.stderr
        assert "another build is writing this store" in second.stderr
        assert f"pid {first.pid}" in second.stderr and socket.gethostname() in second.stderr
        assert out in second.stderr
        _, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err[-3000:]
    assert_same_store(built[0], out)          # the first build's store, untouched
    assert not Path(lock_url(out)).exists()   # released at the end


def test_stale_lock_of_a_killed_build_is_recovered(cohort, built, tmp_path):
    out = str(tmp_path / "s.zarr")
    r = subprocess.run(build_process(cohort["config"], out, kill_after=2), cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == -9, r.stderr
    held = json.loads(Path(lock_url(out)).read_text())
    assert held["host"] == socket.gethostname() and held["pid"] > 0    # left behind by kill -9
    r = _cli("build", str(cohort["config"]), "-o", out)
    assert r.returncode == 0, r.stderr
    assert_same_store(built[0], out)
    assert not Path(lock_url(out)).exists()


def test_lock_whose_pid_was_reused_by_another_process_is_stale(tmp_path):
    out = str(tmp_path / "s.zarr")
    Path(lock_url(out)).write_text(json.dumps(
        {"host": socket.gethostname(), "pid": 1, "proc_start": "-1", "started": "earlier"}))
    with StoreLock(out):                       # pid 1 lives, but started at another time
        assert json.loads(Path(lock_url(out)).read_text())["pid"] != 1


def test_lock_held_on_another_host_is_refused_with_the_file_to_delete(cohort, tmp_path, capsys):
    out = str(tmp_path / "s.zarr")
    Path(lock_url(out)).write_text(json.dumps(
        {"host": "node-7", "pid": 4242, "started": "2026-01-01T00:00:00Z"}))
    r = _cli("build", str(cohort["config"]), "-o", out)
    assert r.returncode == 2
    assert "host node-7, pid 4242" in r.stderr and lock_url(out) in r.stderr
    assert not (tmp_path / "s.zarr").exists()


@pytest.mark.parametrize("server, protocol", [(moto_server, "s3"), (gcs_server, "gs")])
def test_bucket_lock_uses_a_conditional_write(server, protocol):
    with server() as (endpoint, so):
        fsspec.filesystem(protocol, **so).mkdir("lock-test")
        url = f"{protocol}://lock-test/a/store.zarr"
        with StoreLock(url, so):
            other = StoreLock(url, so)
            other.me = {**other.me, "host": "node-9"}    # a holder this host cannot probe
            with pytest.raises(InputError, match="another build is writing this store") as e:
                other.acquire()
            assert url in str(e.value) and socket.gethostname() in str(e.value)
            # the conditional write itself refuses (no read-then-write race)
            with pytest.raises(FileExistsError):
                fsspec.filesystem(protocol, **so).pipe_file(lock_url(url)[len(protocol) + 3:],
                                                            b"x", mode="create")
        assert not fsspec.filesystem(protocol, **so).exists(lock_url(url))
        with StoreLock(url, so):                 # released: the next build takes it
            pass


def test_two_builds_into_one_s3_store_leave_one_complete_store(cohort, built):
    """Same race as the local test, through s3fs against moto."""
    with moto_server() as (endpoint, so):
        fsspec.filesystem("s3", **so).mkdir("lock-race")
        url = "s3://lock-race/s.zarr"
        env = {**os.environ, "AWS_ENDPOINT_URL": endpoint}
        first = subprocess.Popen(build_process(cohort["config"], url, delay=0.3), cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=env)
        try:
            fs = fsspec.filesystem("s3", **so)
            wait_for(lambda: fs.exists(lock_url(url)[5:]) or first.poll() is not None, 120,
                     "the lock")
            second = _cli("build", str(cohort["config"]), "-o", url, "--max-jitter", "5",
                          env={"AWS_ENDPOINT_URL": endpoint})
            assert second.returncode == 2 and "another build is writing" in second.stderr
            _, err = first.communicate(timeout=300)
        finally:
            if first.poll() is None:
                first.kill()
        assert first.returncode == 0, err[-3000:]
        assert schema.store_info(zarr.open_group(url, mode="r", storage_options=so)).complete
        assert_same_store(built[0], url, so_b=so)
