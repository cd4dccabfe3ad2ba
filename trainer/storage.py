"""Model directories on local disk or in buckets (s3://, gs://, memory://) through fsspec:
run folders (`RunDir`), model files (`fetch_model`), small text files (`fetch_text`) and the
index of a multi-model experiment (`experiment_models`).

Why a local staging copy: Keras writes `.keras` files to local paths only; a run on a cloud
machine trains into a local folder and mirrors it to the bucket after every epoch, so a
preempted job resumes from the bucket with the same command.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from clipstore.errors import InputError
from clipstore.paths import is_remote

EXPERIMENT = "experiment.json"
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


class RunDir:
    """A run folder: `local` is where files are written; `sync()` mirrors it to `url`."""

    def __init__(self, url: str, storage_options: dict | None = None):
        self.url = str(url)
        self.storage_options = storage_options or {}
        if is_remote(self.url):
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
        if not is_remote(self.url):
            return
        fs, path = self._fs()
        for f in sorted(self.local.rglob("*")):
            if f.is_file():
                target = f"{path.rstrip('/')}/{f.relative_to(self.local).as_posix()}"
                fs.put_file(str(f), target)

    def public(self, rel: str) -> str:
        """The user-facing location of a file in this run (URL for buckets)."""
        if is_remote(self.url):
            return f"{self.url.rstrip('/')}/{rel}"
        return str(self.local / rel)


def atomic_write_text(path: Path, text: str) -> None:
    """Write-then-rename, so a kill mid-write never leaves a truncated state file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def fetch_model(path: str, storage_options: dict | None = None) -> str:
    """A local path for a model file or run folder (bucket URLs are downloaded once).

    A run folder means its `model.keras`; a file ending .keras or .h5 is taken as is."""
    path = str(path)
    if is_remote(path):
        import fsspec

        fs, p = fsspec.core.url_to_fs(path, **(storage_options or {}))
        if not p.endswith(MODEL_SUFFIXES):
            p = f"{p.rstrip('/')}/model.keras"
        local = os.path.join(tempfile.mkdtemp(prefix="clipstore-model-"), os.path.basename(p))
        if not fs.exists(p):
            raise InputError("model not found", file=path)
        fs.get_file(p, local)
        return local
    p = Path(path.removeprefix("file://"))
    if p.is_dir():
        p = p / "model.keras"
    if not p.exists():
        raise InputError("model not found", file=str(p),
                         hint="give a .keras or .h5 file, a run folder holding model.keras, or a "
                              "folder of CLIPNET fold_*.h5 files")
    return str(p)


def fetch_text(path: str, storage_options: dict | None = None) -> str:
    """Text of a local file or bucket object (manifests, experiment indexes)."""
    if is_remote(path):
        import fsspec

        with fsspec.open(path, "rt", **(storage_options or {})) as fh:
            return fh.read()
    try:
        return Path(path.removeprefix("file://")).read_text()
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None


def experiment_models(output: str, *, subsample: dict | None = None,
                      storage_options: dict | None = None) -> list[str]:
    """Model paths of a finished multi-model experiment (e.g. the 9 ensemble members), optionally
    only those of one subsample draw ({"n": 10, "draw": 2})."""
    where = f"{output.rstrip('/')}/{EXPERIMENT}"
    try:
        index = json.loads(fetch_text(where, storage_options))
        runs = index["runs"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise InputError(f"experiment index is damaged ({e})", file=where,
                         hint="rerun the `clipstore train` command that wrote it") from None
    out = []
    for run in runs:
        sub = run.get("subsample") or {}
        if subsample and any(sub.get(k) != v for k, v in subsample.items()):
            continue
        out.append(run["model"])
    return out
