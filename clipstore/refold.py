"""Re-choose a built store's folds without rebuilding: folds are metadata (the `fold` coordinate
plus the scheme in the root attribute), so only they are rewritten.

Crash safety uses the store's own `complete` flag, which every reader checks: the first write
clears it (and records the rewrite as under way), the fold array is written, and the last write
sets it again together with the new scheme, in one attribute. A crash in between leaves a store
that readers refuse and `clipstore info` flags; rerunning the same `clipstore folds` finishes it.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import zarr

from . import schema
from .errors import InputError
from .folds import FOLD_COUNT_KEYS, assign_folds, describe, normalize_spec, split_problem

log = logging.getLogger(__name__)
FOLDS_ATTR, REWRITING = schema.FOLDS_ATTR, schema.FOLDS_REWRITING


def store_spec(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The fold scheme a store's `clipstore` attribute records: set by `clipstore folds`, or
    else the build config's `folds` value (the build assigned folds from it)."""
    rec = attrs.get(FOLDS_ATTR)
    if rec:
        return {k: v for k, v in rec.items() if k not in ("state", "counts")}
    return normalize_spec((attrs.get("build_config") or {}).get("folds"))


rewrite_interrupted = schema.folds_rewrite_interrupted


def locus_table(root: zarr.Group) -> dict[str, np.ndarray]:
    return {k: root[k][:] for k in ("chrom", "start", "end", "centre")}


def refold(url: str, folds: Any, *, storage_options: dict | None = None,
           source: str = "--scheme", after_fold_write: Callable[[], None] | None = None
           ) -> dict[str, Any]:
    """Assign folds to every locus of the store at `url` by scheme `folds` (a `folds` config
    value: None, a path, or a mapping) and record it. Returns a summary (scheme, loci per fold,
    counts). `after_fold_write` runs between the fold array and the closing attribute write
    (tests kill the process there)."""
    spec = normalize_spec(folds, source)
    try:
        root = zarr.open_group(url, mode="r+", zarr_format=3, storage_options=storage_options)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        raise InputError("no clipstore store here", file=url,
                         hint="check the path, or build one with `clipstore build CONFIG.yaml`")
    info = schema.store_info(root)
    schema.check_schema_version(info, url)
    attrs = dict(root.attrs[schema.ATTRS_KEY])
    if not info.complete and not rewrite_interrupted(attrs):
        raise InputError("this store's build did not finish", file=url,
                         hint="rerun the same `clipstore build` command first")
    aliases = (attrs.get("build_config") or {}).get("contig_aliases") or {}
    fold, counts = assign_folds(locus_table(root), spec, aliases)   # checks inputs: no writes yet
    attrs.update(complete=False, **{FOLDS_ATTR: {**spec, "state": REWRITING}})
    root.attrs[schema.ATTRS_KEY] = attrs
    root["fold"][:] = fold
    if after_fold_write is not None:
        after_fold_write()
    skipped = dict(attrs.get("skipped") or {})
    skipped.update(counts)
    attrs.update(complete=True, skipped=skipped,
                 **{FOLDS_ATTR: {**spec, "state": "done", "counts": counts}})
    root.attrs[schema.ATTRS_KEY] = attrs            # the last write: one attribute, both flags
    vals, n = np.unique(fold, return_counts=True)
    return {"store": url, "scheme": describe(spec), "spec": spec,
            "folds": {int(v): int(c) for v, c in zip(vals, n)}, "counts": counts}


def check_split(url: str, replicate: int, storage_options: dict | None = None) -> None:
    """Raise an InputError saying which fold scheme would work when replicate `replicate`
    has no training or no validation loci in the store at `url`."""
    root = schema.open_store(url, storage_options=storage_options)
    spec = store_spec(root.attrs[schema.ATTRS_KEY])
    t = locus_table(root)
    why = split_problem(root["fold"][:], replicate, t["chrom"], t["start"], t["end"], spec,
                        store=url)
    if why:
        raise InputError(why, file=url)


__all__ = ["refold", "store_spec", "check_split", "rewrite_interrupted", "FOLD_COUNT_KEYS"]
