"""Locus → fold assignment: CLIPNET's chromosome map by default, or folds below the chromosome.

Schemes (the build config's `folds` key, or `clipstore folds STORE` on a built store):

* `chromosomes` — a `chrom,fold` CSV (default: CLIPNET's `data_fold_assignments.csv`, fold 0 =
  chr9, 13, 20, 21). Right for genome-wide stores; a store on one chromosome gets one fold.
* `bed` — a BED of regions whose 4th column is the fold (0..9): a locus takes the fold of the
  region holding its centre; loci in no region get no fold (-1) and are counted.
* `blocks` — contiguous blocks of `block_size` bp, each given to one fold, seeded: `shuffled`
  (blocks holding loci, shuffled, dealt round-robin: every fold gets a block once there are
  >= 10) or `hashed` (a block's fold depends only on seed, contig and block index).

No leakage through shared sequence: loci whose stored windows (input + 2 x max_jitter: every
base a model can see) overlap form one *cluster*, and a cluster always goes to one fold. Under
`blocks` a cluster goes with the block holding its first base, so a cluster straddling a block
boundary goes with one block. Under `bed` a cluster's loci whose region names another fold
than the cluster's (its commonest fold) get no fold and are counted as `loci_fold_conflict`.
Hence no held-out window ever shares a base with a training window.

Fold 0 is the test fold; replicate model k (1..9) validates on fold k and trains on the rest.
"""
from __future__ import annotations

import csv
import hashlib
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .contigs import resolve
from . import paths
from .errors import InputError

TEST_FOLD = 0
N_FOLDS = 10
UNASSIGNED = -1  # contigs absent from the map (chrX, chrY, unplaced) get no fold
SCHEMES = ("chromosomes", "bed", "blocks")
BLOCK_ASSIGN = ("shuffled", "hashed")
DEFAULT_BLOCK_SIZE = 1_000_000
FOLD_COUNT_KEYS = ("loci_no_fold", "loci_fold_conflict")


def load_fold_map(path: str | Path | None = None) -> dict[str, int]:
    """Read a `chrom,fold` CSV; None loads CLIPNET's `data_fold_assignments.csv` shipped with us."""
    if path is None:
        text = resources.files("clipstore.data").joinpath("clipnet_folds.csv").read_text()
        source = "clipnet_folds.csv (built in)"
    else:
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            raise InputError("fold map not found", file=str(path),
                             hint="give a CSV with columns chrom,fold or omit it for CLIPNET's map")
        source = str(path)
    rows = list(csv.DictReader(text.splitlines()))
    out: dict[str, int] = {}
    for i, row in enumerate(rows, start=2):
        try:
            out[row["chrom"].strip()] = int(row["fold"])
        except (KeyError, TypeError, ValueError, AttributeError):
            raise InputError("expected columns chrom,fold with an integer fold", file=source,
                             record=f"line {i}")
    return out


def fold_of(chrom: str, fold_map: Mapping[str, int]) -> int:
    """Fold of a contig, tolerant of `chr` prefixes (`22` and `chr22` are the same chromosome)."""
    if chrom in fold_map:
        return fold_map[chrom]
    alt = chrom[3:] if chrom.startswith("chr") else f"chr{chrom}"
    return fold_map.get(alt, UNASSIGNED)


def split_folds(replicate: int, n_folds: int = N_FOLDS, test_fold: int = TEST_FOLD
                ) -> tuple[list[int], list[int], list[int]]:
    """(train, validation, test) folds for replicate model k: validate on k, train on the rest."""
    if not 1 <= replicate < n_folds or replicate == test_fold:
        raise ValueError(f"replicate must be 1..{n_folds - 1}, got {replicate}")
    train = [f for f in range(n_folds) if f not in (test_fold, replicate)]
    return train, [replicate], [test_fold]


# --- scheme specs --------------------------------------------------------------------------

def _is_bed(path: str) -> bool:
    name = str(path).lower()
    return name.endswith((".bed", ".bed.gz", ".bed.bgz"))


def normalize_spec(value: Any, source: str = "config") -> dict[str, Any]:
    """The canonical dict of a `folds` value: None, a path (CSV map or BED), or a mapping
    {scheme: chromosomes|bed|blocks, ...}. Raises InputError naming what is wrong."""
    if value is None:
        return {"scheme": "chromosomes", "map": None}
    if isinstance(value, (str, Path)):
        return ({"scheme": "bed", "path": str(value)} if _is_bed(str(value))
                else {"scheme": "chromosomes", "map": str(value)})
    if not isinstance(value, Mapping):
        raise InputError(f"folds must be null, a path or a mapping, got {value!r}", file=source,
                         record="folds", hint=SPEC_HINT)
    scheme = value.get("scheme")
    allowed = {"chromosomes": {"map"}, "bed": {"path"},
               "blocks": {"block_size", "seed", "assign"}}
    if scheme not in allowed:
        raise InputError(f"folds.scheme must be one of {list(SCHEMES)}, got {scheme!r}",
                         file=source, record="folds", hint=SPEC_HINT)
    extra = set(value) - allowed[scheme] - {"scheme"}
    if extra:
        raise InputError(f"unknown folds option(s) {sorted(extra)} for scheme {scheme}",
                         file=source, record="folds",
                         hint=f"scheme {scheme} takes {sorted(allowed[scheme])}")
    if scheme == "chromosomes":
        m = value.get("map")
        return {"scheme": "chromosomes", "map": None if m is None else str(m)}
    if scheme == "bed":
        if not value.get("path"):
            raise InputError("folds scheme bed needs a path (BED: chrom, start, end, fold)",
                             file=source, record="folds")
        return {"scheme": "bed", "path": str(value["path"])}
    try:
        size = int(value.get("block_size", DEFAULT_BLOCK_SIZE))
        seed = int(value.get("seed", 0))
    except (TypeError, ValueError):
        raise InputError("folds block_size and seed must be integers", file=source,
                         record="folds") from None
    assign = value.get("assign", "shuffled")
    if size <= 0 or assign not in BLOCK_ASSIGN:
        raise InputError(f"folds scheme blocks needs block_size > 0 and assign in "
                         f"{list(BLOCK_ASSIGN)}, got block_size={size}, assign={assign!r}",
                         file=source, record="folds")
    return {"scheme": "blocks", "block_size": size, "seed": seed, "assign": assign}


SPEC_HINT = ("e.g. folds: null (CLIPNET's chromosome map), folds: my_map.csv, folds: regions.bed "
             "(4th column = fold), or folds: {scheme: blocks, block_size: 100000, seed: 0}")


def resolve_paths(value: Any, base: Path) -> Any:
    """The config's `folds` value with its file path made absolute against `base` (config dir)."""
    def fix(p: str | None) -> str | None:
        return paths.resolve(None if p is None else str(p), base)
    if isinstance(value, (str, Path)):
        return fix(str(value))
    if isinstance(value, Mapping):
        out = dict(value)
        for key in ("map", "path"):
            if out.get(key) is not None:
                out[key] = fix(str(out[key]))
        return out
    return value


def describe(spec: Mapping[str, Any]) -> str:
    """One line for `clipstore info`."""
    s = spec["scheme"]
    if s == "chromosomes":
        return "chromosomes (" + (spec.get("map") or "CLIPNET's map, built in") + ")"
    if s == "bed":
        return f"bed ({spec['path']})"
    return (f"blocks of {spec['block_size']:,} bp, seed {spec['seed']}, {spec['assign']}")


# --- assignment ----------------------------------------------------------------------------

def window_clusters(chrom: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Cluster id per locus: loci whose windows [start, end) share a base (directly or through
    a chain of others) on the same contig share an id. Ids follow (contig, start) order."""
    order = np.lexsort((start, chrom))
    cid = np.empty(len(start), np.int64)
    k, cur_chrom, reach = -1, None, None
    for i in order:
        if chrom[i] != cur_chrom or start[i] >= reach:
            k += 1
            cur_chrom, reach = chrom[i], end[i]
        reach = max(reach, end[i])
        cid[i] = k
    return cid


def read_fold_bed(path: str) -> list[tuple[str, int, int, int, int]]:
    """(chrom, start, end, fold, line) of a BED whose 4th column is a fold 0..9."""
    try:
        fh = paths.open_text(path)
    except FileNotFoundError:
        raise InputError("fold BED not found", file=path,
                         hint="give a BED with columns chrom, start, end, fold") from None
    out = []
    with fh:
        try:
            for n, line in enumerate(fh, start=1):
                if not line.strip() or line.startswith(("#", "track", "browser")):
                    continue
                f = line.rstrip("\n").split("\t")
                try:
                    c, s, e, fold = f[0], int(f[1]), int(f[2]), int(f[3])
                except (IndexError, ValueError):
                    raise InputError("expected tab-separated chrom, start, end, fold (integer)",
                                     file=path, record=f"line {n}") from None
                if not (0 <= fold < N_FOLDS and 0 <= s < e):
                    raise InputError(f"need 0 <= start < end and fold in 0..{N_FOLDS - 1}, got "
                                     f"{s}, {e}, {fold}", file=path, record=f"line {n}")
                out.append((c, s, e, fold, n))
        except UnicodeDecodeError:
            raise InputError("not a text BED file", file=path,
                             hint="give a BED with columns chrom, start, end, fold") from None
    if not out:
        raise InputError("fold BED has no regions", file=path)
    return out


def _bed_folds(loci: Mapping[str, np.ndarray], path: str,
               aliases: Mapping[str, str]) -> np.ndarray:
    chroms = set(np.unique(loci["chrom"]).tolist())
    regions: dict[str, list[tuple[int, int, int, int]]] = {}
    for c, s, e, fold, n in read_fold_bed(path):
        name = resolve(c, chroms, aliases)
        if name is not None:
            regions.setdefault(name, []).append((s, e, fold, n))
    out = np.full(len(loci["centre"]), UNASSIGNED, np.int8)
    for name, rs in regions.items():
        rs.sort()
        for (_, e0, f0, n0), (s1, _, f1, n1) in zip(rs, rs[1:]):
            if s1 < e0 and f0 != f1:
                raise InputError(f"regions on lines {n0} and {n1} overlap but name folds {f0} "
                                 f"and {f1}", file=path, hint="make the regions disjoint")
        starts = np.array([r[0] for r in rs])
        ends = np.array([r[1] for r in rs])
        folds = np.array([r[2] for r in rs], np.int8)
        idx = np.flatnonzero(loci["chrom"] == name)
        c = loci["centre"][idx]
        j = np.searchsorted(starts, c, side="right") - 1
        inside = (j >= 0) & (c < ends[np.maximum(j, 0)])
        out[idx[inside]] = folds[j[inside]]
    return out


def _block_folds(chrom: np.ndarray, start: np.ndarray, cid: np.ndarray,
                 spec: Mapping[str, Any]) -> np.ndarray:
    """Fold per locus: its cluster's first base picks the block, the block picks the fold."""
    first = np.full(cid.max() + 1, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first, cid, start)
    block = first[cid] // spec["block_size"]
    bare = np.array([c[3:] if c.lower().startswith("chr") else c for c in chrom.tolist()])
    keys = sorted(set(zip(bare.tolist(), block.tolist())), key=lambda k: (k[0], k[1]))
    if spec["assign"] == "hashed":
        fold_of_key = {k: int(hashlib.sha256(f"{spec['seed']}:{k[0]}:{k[1]}".encode())
                              .hexdigest()[:8], 16) % N_FOLDS for k in keys}
    else:
        perm = np.random.default_rng(spec["seed"]).permutation(len(keys))
        fold_of_key = {keys[p]: i % N_FOLDS for i, p in enumerate(perm)}
    return np.array([fold_of_key[k] for k in zip(bare.tolist(), block.tolist())], np.int8)


def assign_folds(loci: Mapping[str, np.ndarray], spec: Mapping[str, Any],
                 aliases: Mapping[str, str] | None = None) -> tuple[np.ndarray, dict[str, int]]:
    """(fold per locus as int8, counts of loci left without a fold) for a normalized spec.
    `loci` holds the store's locus coordinates: chrom, start, end, centre."""
    chrom = np.asarray(loci["chrom"]).astype(str)
    start, end = np.asarray(loci["start"]), np.asarray(loci["end"])
    counts = dict.fromkeys(FOLD_COUNT_KEYS, 0)
    if len(start) == 0:
        return np.zeros(0, np.int8), counts
    cid = window_clusters(chrom, start, end)
    if spec["scheme"] == "chromosomes":
        fmap = load_fold_map(spec.get("map"))
        fold = np.array([fold_of(c, fmap) for c in chrom.tolist()], np.int8)
    elif spec["scheme"] == "blocks":
        fold = _block_folds(chrom, start, cid, spec)
    else:
        fold = _bed_folds({**loci, "chrom": chrom}, spec["path"], aliases or {})
        for k in np.unique(cid):
            members = np.flatnonzero(cid == k)
            f = fold[members]
            named = f[f != UNASSIGNED]
            if len(np.unique(named)) > 1:
                vals, n = np.unique(named, return_counts=True)
                keep = vals[np.argmax(n)]
                clash = members[(f != UNASSIGNED) & (f != keep)]
                fold[clash] = UNASSIGNED
                counts["loci_fold_conflict"] += len(clash)
    counts["loci_no_fold"] = int((fold == UNASSIGNED).sum()) - counts["loci_fold_conflict"]
    return fold, counts


# --- impossible splits ---------------------------------------------------------------------

BLOCK_SIZES = (1_000_000, 500_000, 200_000, 100_000, 50_000, 20_000, 10_000)


def suggest_block_size(chrom: np.ndarray, start: np.ndarray, end: np.ndarray) -> int | None:
    """Largest round block size that gives every fold at least one block (>= 2 per fold when
    possible): None when the loci form fewer than N_FOLDS separate clusters."""
    chrom = np.asarray(chrom).astype(str)
    if len(start) == 0:
        return None
    cid = window_clusters(chrom, np.asarray(start), np.asarray(end))
    first = np.full(cid.max() + 1, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first, cid, np.asarray(start))
    cchrom = np.empty(len(first), dtype=chrom.dtype)
    cchrom[cid] = chrom
    for need in (2 * N_FOLDS, N_FOLDS):
        for size in BLOCK_SIZES:
            if len(set(zip(cchrom.tolist(), (first // size).tolist()))) >= need:
                return size
    return None


def split_problem(fold: np.ndarray, replicate: int, chrom: np.ndarray, start: np.ndarray,
                  end: np.ndarray, spec: Mapping[str, Any] | None = None,
                  store: str = "STORE") -> str | None:
    """Why replicate `replicate` cannot train on these folds, and which scheme would work
    (with the command that re-chooses it), or None when training and validation have loci."""
    train, val, _ = split_folds(replicate)
    n_train = int(np.isin(fold, train).sum())
    n_val = int(np.isin(fold, val).sum())
    if n_train and n_val:
        return None
    spec = spec or {"scheme": "chromosomes", "map": None}
    empty = "validation fold" if not n_val else "training folds"
    used = sorted({int(f) for f in np.unique(fold) if f != UNASSIGNED})
    what = (f"replicate {replicate} has no loci in its {empty} (folds {train} train, "
            f"{val} validate, 0 test) under the store's fold scheme {describe(spec)}, "
            f"whose loci fall in folds {used}")
    size = suggest_block_size(chrom, start, end)
    if size is None:
        n = int(window_clusters(np.asarray(chrom).astype(str), np.asarray(start),
                                np.asarray(end)).max() + 1) if len(start) else 0
        return (f"{what}; no fold scheme can split these loci: they form only {n} group(s) of "
                f"loci that share no sequence, and a 10-fold split needs at least {N_FOLDS}. "
                "Add loci (more peaks or more of the genome) and rebuild")
    cmd = f"clipstore folds {store} --scheme blocks --block-size {size} --seed 0"
    if spec["scheme"] == "blocks" and size < spec["block_size"]:
        why = "smaller blocks give every fold loci"
    elif spec["scheme"] == "chromosomes":
        why = (f"chromosome folds cannot split loci on {len(set(np.asarray(chrom).tolist()))} "
               f"contig(s) across 10 folds; blocks of {size:,} bp can, without shared sequence")
    else:
        why = f"blocks of {size:,} bp give every fold loci, without shared sequence"
    return f"{what} — {why}: re-choose folds with `{cmd}` (no rebuild needed)"
