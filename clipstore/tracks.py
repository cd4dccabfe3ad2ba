"""bigWig count tracks over windows (pyBigWig): both strands as non-negative float32.

Minus-strand bigWigs are often written negative; values are stored as |value| so both strands
read as counts. Missing data (NaN) is 0 counts.
"""
from __future__ import annotations

import os
import struct
from itertools import chain
from typing import Mapping

import numpy as np
import pyBigWig

from .contigs import reverse_map
from .errors import InputError
from .paths import is_url


def open_bigwig(path: str):
    if not os.path.exists(path) and "://" not in path:
        raise InputError("bigWig not found", file=path)
    try:
        bw = pyBigWig.open(path)
    except RuntimeError as e:
        raise InputError(f"cannot open bigWig ({e})", file=path)
    if bw is None or not bw.isBigWig():
        raise InputError("not a bigWig file", file=path)
    return bw


def chrom_names(bw, path: str, wanted: list[str], aliases: Mapping[str, str] | None) -> dict[str, str]:
    """{FASTA contig: bigWig chromosome} for every contig in `wanted`, or InputError."""
    m = reverse_map(bw.chroms().keys(), wanted, aliases)
    missing = [c for c in wanted if c not in m]
    if missing:
        raise InputError(f"bigWig has no chromosome for contig(s) {missing[:5]} "
                         f"(it has {sorted(bw.chroms())[:8]})", file=path,
                         record=f"chromosome {missing[0]}",
                         hint="use the bigWig made for this assembly, or add contig_aliases")
    return m


def window_values(bw, chrom: str, start: int, end: int) -> np.ndarray:
    """|values| over [start, end) as float32, NaN → 0, zero past the chromosome's end."""
    n = bw.chroms(chrom)
    out = np.zeros(end - start, dtype=np.float32)
    s, e = max(start, 0), min(end, n)
    if e > s:
        v = np.asarray(bw.values(chrom, s, e, numpy=True), dtype=np.float32)
        out[s - start:e - start] = np.abs(np.nan_to_num(v, nan=0.0))
    return out


def dense_intervals(bw, chrom: str, start: int, end: int) -> np.ndarray:
    """Same as `window_values`, built from `bw.intervals` (only the non-empty entries): 5-20×
    faster than `values` on sparse count tracks. `fromiter` over the flattened tuples converts
    them 1.6× faster than `np.asarray` of the nested tuples."""
    n = bw.chroms(chrom)
    out = np.zeros(end - start, dtype=np.float32)
    s, e = max(start, 0), min(end, n)
    if e <= s:
        return out
    found = bw.intervals(chrom, s, e) or ()
    iv = np.fromiter(chain.from_iterable(found), np.float64, 3 * len(found)).reshape(-1, 3)
    if len(iv):
        a = np.clip(iv[:, 0].astype(np.int64), s, e) - start
        b = np.clip(iv[:, 1].astype(np.int64), s, e) - start
        w = b - a
        idx = np.repeat(a - np.concatenate(([0], np.cumsum(w)[:-1])), w) + np.arange(w.sum())
        out[idx] = np.repeat(np.abs(np.nan_to_num(iv[:, 2], nan=0.0)), w)
    return out


def windows(bw, chrom: str, starts: np.ndarray, width: int, max_block: int = 1 << 20
            ) -> np.ndarray:
    """(len(starts), width) |values| for sorted window starts on one chromosome, reading nearby
    windows in one block of at most `max_block` bp."""
    out = np.zeros((len(starts), width), dtype=np.float32)
    i = 0
    while i < len(starts):
        j = i + 1
        while j < len(starts) and starts[j] + width - starts[i] <= max_block:
            j += 1
        lo = int(starts[i])
        block = dense_intervals(bw, chrom, lo, int(starts[j - 1]) + width)
        for k in range(i, j):
            out[k] = block[int(starts[k]) - lo:int(starts[k]) - lo + width]
        i = j
    return out


def total_counts(bw) -> float:
    """Sum of |counts| over the whole bigWig (header sumData: value × bases covered)."""
    return float(abs(bw.header()["sumData"]))


_BIGWIG_MAGIC = 0x888FFC26


def integer_counts(path: str, limit: int) -> bool:
    """True when the bigWig's header summary shows whole-number values with |value| <= limit.

    Read from the file's own totalSummary (min, max, sum, sum of squares as doubles; bbi format,
    Kent et al. 2010) because pyBigWig's `header()` truncates them to integers. A fractional
    track (CPM, fold change) makes the sums fractional; the build still checks every value it
    writes as uint16. Remote files (URLs) answer False: the store keeps float32.
    """
    if is_url(path):
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            magic, version = struct.unpack_from("<IH", head)
            offset = struct.unpack_from("<Q", head, 44)[0]
            if magic != _BIGWIG_MAGIC or version < 2 or offset == 0:
                return False
            f.seek(offset)
            _, lo, hi, total, squares = struct.unpack("<Qdddd", f.read(40))
    except (OSError, struct.error):
        return False
    # min/max bound the values; only the sums speak to whole numbers (libBigWig leaves max at
    # DBL_MIN, 2.2e-308, for an all-negative minus-strand track)
    return max(abs(lo), abs(hi)) <= limit and total.is_integer() and squares.is_integer()
