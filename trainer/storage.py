"""Model directories on local disk or in buckets (s3://, gs://, memory://) through fsspec.

Why a local staging copy: Keras writes `.keras` files to local paths only; a run on a cloud
machine trains into a local folder and mirrors it to the bucket after every epoch, so a
preempted job resumes from the bucket with the same command.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def is_url(path: str) -> bool:
    return "://" in str(path) and not str(path).startswith("file://")


class RunDir:
    """A run folder: `local` is where files are written; `sync()` mirrors it to `url`."""

    def __init__(self, url: str, storage_options: dict | None = None):
        self.url = str(url)
        self.storage_options = storage_options or {}
        if is_url(self.url):
            self.local = Path(tempfile.mkdtemp(prefix="clipstore-run-"))
            self._pull()
        else:
            self.local = Path(self.url.removeprefix("file://"))
            self.local.mkdir(parents=True, exist_ok=True)

    def _fs(self):
        import fsspec

        fs, path = fsspec.core.url_to_fs(self.url, **self.storage_options)
        return fs, path

    def _pull(self) -> None:
        fs, path = self._fs()
        if not fs.exists(path):
            return
        for remote in fs.find(path):
            rel = os.path.relpath(remote, path)
            dest = self.local / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(remote, str(dest))

    def sync(self) -> None:
        """Upload every local file to the bucket (no-op for local runs)."""
        if not is_url(self.url):
            return
        fs, path = self._fs()
        for f in sorted(self.local.rglob("*")):
            if f.is_file():
                target = f"{path.rstrip('/')}/{f.relative_to(self.local).as_posix()}"
                fs.put_file(str(f), target)

    def public(self, rel: str) -> str:
        """The user-facing location of a file in this run (URL for buckets)."""
        if is_url(self.url):
            return f"{self.url.rstrip('/')}/{rel}"
        return str(self.local / rel)


def atomic_write_text(path: Path, text: str) -> None:
    """Write-then-rename, so a kill mid-write never leaves a truncated state file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
