"""Chromosome → fold assignment (CLIPNET's 10-fold scheme by default)."""
from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

from .errors import InputError

TEST_FOLD = 0
N_FOLDS = 10
UNASSIGNED = -1  # contigs absent from the map (chrX, chrY, unplaced) get no fold


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
        except (KeyError, TypeError, ValueError):
            raise InputError("expected columns chrom,fold with an integer fold", file=source,
                             record=f"line {i}")
    return out


def fold_of(chrom: str, fold_map: dict[str, int]) -> int:
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
