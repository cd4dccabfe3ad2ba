"""Predictions made by any tool, read from a file: the layouts the benchmarks accept.

So that a lab can benchmark a PyTorch model, ProCapNet or Enformer outputs without writing
Python, each benchmark takes predictions keyed by what it scores (documented in
docs/evaluation.md, "Predictions from a file"):

crossloci: an .npz keyed by locus and library (one row per example)
    locus_id    (N,) str     the store's locus_id
    library_id  (N,) str     the store's library_id (the genome the prediction was made for)
    profile     (N, 2*out)   predicted counts on the centred output window, plus strand
                             then minus strand (minus as positive values), out <= the store's
    quantity    (N,)         optional; default: the profile's sum
    model       (N,) str     optional; one row of metrics per model (default "external")

qtl: a TSV (or .npz of 1-D arrays) keyed by variant
    variant_id, pred_l2 [, pred_log_quantity_change, pred_directionality_change] [, kind]
    (pred_l2 as `qtl.group_effects` defines it: L2 norm of the hom-ref minus hom-alt mean
    predicted tracks; NaN = not scored, e.g. outside the tool's input)

mpra: a TSV (or .npz of 1-D arrays) keyed by variant
    variant_id, then one column per model: predicted log2(ref / alt) of reporter activity

.npz files are read with allow_pickle=False: strings must be numpy unicode arrays.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clipstore.errors import InputError

QTL_PRED_COLUMNS = ("pred_l2", "pred_log_quantity_change", "pred_directionality_change")


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz, never unpickling (object arrays are refused)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError) as e:
        raise InputError(f"cannot read the .npz ({e})", file=str(path),
                         hint="save strings as numpy unicode arrays (no object arrays)")


def read_table(path: str | Path, *, key: str = "variant_id") -> pd.DataFrame:
    """A TSV or an .npz of equal-length 1-D arrays -> DataFrame with `key` as str."""
    path = Path(path)
    if not path.exists():
        raise InputError("predictions file not found", file=str(path))
    if path.suffix == ".npz":
        cols = _load_npz(path)
        lens = {k: len(v) for k, v in cols.items() if np.ndim(v) == 1}
        if len(set(lens.values())) > 1 or len(lens) != len(cols):
            raise InputError("an .npz of predictions keyed by variant holds 1-D arrays of one "
                             f"length; got {({k: np.shape(v) for k, v in cols.items()})}", file=str(path))
        t = pd.DataFrame(cols)
    else:
        try:
            t = pd.read_csv(path, sep="\t", dtype={key: str})
        except (pd.errors.ParserError, UnicodeDecodeError, EOFError) as e:
            raise InputError(f"cannot parse as a tab-separated table ({e})", file=str(path))
    if key not in t:
        raise InputError(f"predictions have no {key} column", file=str(path),
                         hint=f"columns: {', '.join(map(str, t.columns))}")
    t[key] = t[key].astype(str)
    return t


def align(table: pd.DataFrame, ids, path: str | Path, *, key: str = "variant_id",
          what: str = "row") -> pd.DataFrame:
    """Rows of `table` in the order of `ids`; every id must have exactly one row."""
    ids = pd.Index(pd.Series(ids).astype(str))
    dup = table[key][table[key].duplicated()]
    if len(dup):
        raise InputError(f"{key} {dup.iloc[0]!r} appears twice in the predictions", file=str(path))
    missing = ids.difference(pd.Index(table[key]))
    if len(missing):
        raise InputError(f"{len(missing)} {what}(s) have no prediction", file=str(path),
                         record=str(sorted(missing)[0]),
                         hint="predict every variant of the table, or leave the value NaN")
    return table.set_index(key).loc[ids]


def model_columns(table: pd.DataFrame, path: str | Path, *, key: str = "variant_id") -> dict:
    """MPRA effects: every numeric column but the key is one model's log2(ref/alt)."""
    cols = [c for c in table.columns if c != key]
    bad = [c for c in cols if not pd.api.types.is_numeric_dtype(table[c])]
    if not cols or bad:
        raise InputError("MPRA predictions need numeric model columns besides variant_id",
                         file=str(path), record=f"column {bad[0]!r}" if bad else None,
                         hint="variant_id, then one column of log2(ref/alt) per model")
    return {c: table[c].to_numpy(np.float64) for c in cols}


def read_tracks(path: str | Path) -> dict[str, np.ndarray]:
    """The crossloci .npz (see module doc), checked: same N everywhere, profile (N, even)."""
    path = Path(path)
    if not path.exists():
        raise InputError("predictions file not found", file=str(path))
    if path.suffix != ".npz":
        raise InputError("cross-locus predictions are an .npz (profiles are arrays)", file=str(path),
                         hint="np.savez(path, locus_id=..., library_id=..., profile=..., quantity=...)")
    d = _load_npz(path)
    missing = [k for k in ("locus_id", "library_id", "profile") if k not in d]
    if missing:
        raise InputError(f"predictions lack array(s) {', '.join(missing)}", file=str(path),
                         hint="locus_id (N,), library_id (N,), profile (N, 2*out) [, quantity (N,), model (N,)]")
    n = len(d["locus_id"])
    prof = np.asarray(d["profile"], np.float64)
    if prof.ndim != 2 or len(prof) != n or prof.shape[1] % 2:
        raise InputError(f"profile must be (N, 2*out) with N = {n}; got {prof.shape}", file=str(path))
    out = {"locus_id": d["locus_id"].astype(str), "library_id": d["library_id"].astype(str),
           "profile": prof,
           "quantity": np.asarray(d.get("quantity", prof.sum(1)), np.float64).reshape(-1),
           "model": d["model"].astype(str) if "model" in d else np.full(n, "external")}
    for k in ("library_id", "quantity", "model"):
        if len(out[k]) != n:
            raise InputError(f"{k} has {len(out[k])} rows, locus_id {n}", file=str(path))
    return out
