"""One writer per store: a lock object beside the store (`OUTPUT.lock`) naming its holder.

Why: two builds of one output at once ended "complete" with `sequence` over 2,988 loci and
every other array over 3,000 (different configs), or in a store only `--overwrite` recovered.

* Taken with an exclusive create where the storage offers one: O_CREAT|O_EXCL locally, S3's
  conditional PUT (`If-None-Match: *`) and GCS's `ifGenerationMatch=0` (fsspec's
  `pipe_file(mode="create")`); both emulators the tests start honour them. memory:// lives in
  one process and is checked, then written.
* It holds host, pid, the process's start time and a random token. A second build is refused
  with the holder named. A lock whose holder ran on THIS host and is gone (no such pid, or the
  pid now belongs to a younger process) is stale: it is removed and taken. A holder on another
  host cannot be probed; the message says which file to delete once that build is known dead.
* Released (only by its owner's token) when the build ends, also on errors; a kill -9 leaves
  it behind, and the rerun on the same host recovers it.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import time
from typing import Any

from .errors import InputError

log = logging.getLogger(__name__)


def lock_url(output: str) -> str:
    return output.rstrip("/") + ".lock"


def _proc_start(pid: int) -> str | None:
    """Start time of `pid` in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(holder: dict[str, Any]) -> bool:
    pid = int(holder.get("pid", -1))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0 and not isinstance(pid, bool)   # exists, owned by someone else
    want = holder.get("proc_start")
    return want is None or _proc_start(pid) in (None, want)


def describe(holder: dict[str, Any]) -> str:
    return (f"host {holder.get('host')}, pid {holder.get('pid')}, started "
            f"{holder.get('started')}")


class StoreLock:
    """Context manager: `with StoreLock(url, storage_options): ...` (see module doc)."""

    def __init__(self, output: str, storage_options: dict | None = None):
        import fsspec
        self.output, self.url = output, lock_url(output)
        self.fs, self.path = fsspec.core.url_to_fs(self.url, **(storage_options or {}))
        self.me = {"host": socket.gethostname(), "pid": os.getpid(),
                   "proc_start": _proc_start(os.getpid()),
                   "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "token": secrets.token_hex(8)}

    def _create(self) -> None:
        data = json.dumps(self.me).encode()
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        if protocol in ("file", "local"):
            self.fs.makedirs(self.fs._parent(self.path), exist_ok=True)
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        elif protocol == "memory":
            if self.fs.exists(self.path):
                raise FileExistsError(self.path)
            self.fs.pipe_file(self.path, data)
        else:                                       # s3, gs, ...: a conditional write
            self.fs.pipe_file(self.path, data, mode="create")

    def _holder(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.fs.cat_file(self.path))
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeDecodeError):
            return {"host": "?", "pid": "?", "started": "? (unreadable lock)"}

    def acquire(self) -> None:
        for _ in range(3):
            try:
                self._create()
                return
            except FileExistsError:
                pass
            holder = self._holder()
            if holder is None:
                continue                                  # released meanwhile: try again
            if holder.get("host") == self.me["host"] and not _alive(holder):
                log.warning("%s: removing the stale lock of a build that is gone (%s)",
                            self.url, describe(holder))
                if self._holder() == holder:               # not retaken meanwhile
                    self.fs.rm_file(self.path)
                continue
            raise InputError(
                f"another build is writing this store ({describe(holder)})", file=self.output,
                hint=f"wait for it to finish; if that build is dead (it ran on another "
                     f"machine, so this one cannot check), delete {self.url} and rerun")
        raise InputError("could not take the store's lock (it keeps changing hands)",
                         file=self.output, hint=f"check who writes {self.url}")

    def release(self) -> None:
        holder = self._holder()
        if holder and holder.get("token") == self.me["token"]:
            self.fs.rm_file(self.path)

    def __enter__(self) -> "StoreLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
