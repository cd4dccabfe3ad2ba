"""The JSON manifest written beside every model: what it was trained on and how it scored.

Why: a model file alone cannot say which store, libraries, folds or code produced it; the
manifest makes a run reproducible and comparable. It never holds credentials: storage options
are dropped and any user:password in a URL is removed.
"""
from __future__ import annotations

import datetime as _dt
import json
import platform
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MANIFEST = "manifest.json"


def strip_credentials(url: str) -> str:
    """`s3://key:secret@bucket/x` -> `s3://bucket/x`; query strings (tokens, signatures) dropped."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def code_version() -> dict[str, str]:
    """Package version and, when run from a git checkout, the commit (+ '-dirty')."""
    from clipstore import __version__

    out = {"clipstore": __version__, "python": platform.python_version()}
    try:
        import keras
        import tensorflow as tf

        out["tensorflow"], out["keras"] = tf.__version__, keras.__version__
    except ImportError:  # pragma: no cover - trainer always has TF
        pass
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, timeout=10).stdout.strip()
        out["commit"] = sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        out["commit"] = "unknown"
    return out


def build_manifest(*, store: str, selection: dict[str, Any], config: dict[str, Any],
                   metrics: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    """Assemble the manifest dict (all values JSON-safe)."""
    cfg = {k: v for k, v in config.items() if k != "storage_options"}
    cfg["store"] = strip_credentials(str(cfg.get("store", store)))
    cfg["output"] = strip_credentials(str(cfg.get("output", "")))
    return {
        "kind": "clipstore.trainer.model",
        "store": strip_credentials(str(store)),
        "selection": selection,
        "config": cfg,
        "model": model,
        "code_version": code_version(),
        "metrics": metrics,
        "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    from .storage import atomic_write_text

    atomic_write_text(Path(path), json.dumps(manifest, indent=2, default=_jsonable) + "\n")


def read_manifest(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def _jsonable(x):
    import numpy as np

    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON-serialisable: {type(x).__name__}")
