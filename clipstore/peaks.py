"""Peak calls → loci: parse BED / narrowPeak / PINTS (plain or gzipped), pair divergent peaks,
centre, drop loci off a contig edge, assign folds, and give each locus a stable id.

Rules (also in `clipstore build --help`):
* A record with strand `+`/`-` (column 6) is one strand of a transcription initiation site.
  A `-` peak and a `+` peak to its right with a gap (plus.start - minus.end) of at most
  `divergent_distance` form a divergent pair (greedy, nearest partner first); the locus spans
  both. Stranded peaks left without a partner are dropped and counted (`peaks_unpaired`).
* A record without a strand (3-column BED, PINTS bidirectional calls, narrowPeak with `.`) is a
  locus by itself.
* Centre = midpoint of the locus span ((start + end) // 2), or start + summit for an unstranded
  narrowPeak with a summit (column 10 ≠ -1). Window = [centre - W // 2, centre - W // 2 + W).
* Locus id = `{chrom}:{start}-{end}` of the span as written in the input (0-based, end-exclusive,
  input contig name), so it maps back to the record(s); identical spans are kept once
  (`duplicate_peaks`).
"""
from __future__ import annotations

import bisect
import gzip
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from .contigs import resolve
from .errors import InputError
from .fasta import Contig
from .folds import UNASSIGNED, fold_of


# first field of a header row that peak formats write (UCSC/bedtools `chrom`, PINTS and
# R/GenomicRanges `chromosome`/`seqnames`); any other non-numeric line is an error, not a header
HEADER_FIRST_FIELDS = frozenset({"chrom", "#chrom", "chr", "chromosome", "seqnames", "seqname"})


@dataclass(frozen=True)
class Peak:
    chrom: str
    start: int
    end: int
    strand: str   # "+", "-" or "."
    summit: int   # offset from start, -1 when unknown
    line: int


def _open_text(path: str):
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rt") if magic == b"\x1f\x8b" else open(path, "rt")


def read_peaks(path: str) -> list[Peak]:
    """Parse every record; malformed coordinates raise InputError naming file and line."""
    try:
        fh = _open_text(path)
    except FileNotFoundError:
        raise InputError("peak file not found", file=path)
    peaks: list[Peak] = []
    with fh:
        for i, line in enumerate(fh, start=1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            f = line.rstrip("\n\r").split("\t")
            if len(f) < 3:
                f = line.split()
            if len(f) < 3:
                raise InputError(f"expected at least 3 columns (chrom, start, end), found {len(f)}",
                                 file=path, record=f"line {i}")
            try:
                start, end = int(f[1]), int(f[2])
            except ValueError:
                if not peaks and f[0].strip().lower() in HEADER_FIRST_FIELDS:
                    continue  # a header row a format defines (chrom/start/end ...)
                raise InputError(f"start/end must be integers, found {f[1]!r}, {f[2]!r}",
                                 file=path, record=f"line {i}",
                                 hint="peak files are BED: chrom, 0-based start, end")
            if start < 0 or start >= end:
                raise InputError(f"need 0 <= start < end, found start={start} end={end}",
                                 file=path, record=f"line {i}")
            strand = f[5].strip() if len(f) > 5 and f[5].strip() in "+-." and f[5].strip() else "."
            summit = -1
            if len(f) >= 10:
                try:
                    summit = int(f[9])
                except ValueError:
                    summit = -1
                if not 0 <= summit < end - start:
                    summit = -1
            peaks.append(Peak(f[0], start, end, strand, summit, i))
    if not peaks:
        raise InputError("peak file has no records", file=path,
                         hint="give BED/narrowPeak/PINTS peaks (chrom, start, end[, name, score, strand])")
    return peaks


def pair_divergent(peaks: list[Peak], max_gap: int) -> tuple[list[tuple[str, int, int, int]], int]:
    """(chrom, span start, span end, centre) per locus, and the count of unpaired stranded peaks."""
    loci: list[tuple[str, int, int, int]] = []
    by_chrom: dict[str, tuple[list[Peak], list[Peak]]] = {}
    n_stranded = 0
    for p in peaks:
        if p.strand == ".":
            c = p.start + p.summit if p.summit >= 0 else (p.start + p.end) // 2
            loci.append((p.chrom, p.start, p.end, c))
        else:
            n_stranded += 1
            by_chrom.setdefault(p.chrom, ([], []))[p.strand == "+"].append(p)
    n_pairs = 0
    for chrom, (minus, plus) in by_chrom.items():
        plus = sorted(plus, key=lambda p: (p.start, p.end))
        starts = [p.start for p in plus]
        used = [False] * len(plus)
        for m in sorted(minus, key=lambda p: (p.end, p.start)):
            lo = bisect.bisect_left(starts, m.start)
            hi = bisect.bisect_right(starts, m.end + max_gap)
            best = None
            for j in range(lo, hi):
                if not used[j] and plus[j].end > m.end:
                    best = j
                    break  # nearest partner: smallest plus start at or after the minus start
            if best is None:
                continue
            used[best] = True
            n_pairs += 1
            s, e = m.start, max(m.end, plus[best].end)
            loci.append((chrom, s, e, (s + e) // 2))
    return loci, n_stranded - 2 * n_pairs


def call_loci(path: str, contigs: Mapping[str, Contig], window: int, divergent_distance: int,
              fold_map: Mapping[str, int], aliases: Mapping[str, str] | None = None
              ) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Loci table (arrays named as schema.LOCUS_COORDS) and skipped counts, sorted by position."""
    peaks = read_peaks(path)
    raw, unpaired = pair_divergent(peaks, divergent_distance)
    order = {name: k for k, name in enumerate(contigs)}
    counts = {"peaks_read": len(peaks), "peaks_unpaired": unpaired, "loci_off_edge": 0,
              "loci_no_fold": 0, "duplicate_peaks": 0}
    names = {}
    rows, seen = [], set()
    for chrom, s, e, c in raw:
        if chrom not in names:
            names[chrom] = resolve(chrom, contigs, aliases)
            if names[chrom] is None:
                line = next(p.line for p in peaks if p.chrom == chrom)
                raise InputError(f"contig {chrom!r} is not in the reference FASTA "
                                 f"(it has {sorted(contigs)[:10]})", file=path,
                                 record=f"line {line}",
                                 hint="add contig_aliases to the config, or drop those peaks")
        ctg = contigs[names[chrom]]
        lid = f"{chrom}:{s}-{e}"
        if lid in seen:
            counts["duplicate_peaks"] += 1
            continue
        seen.add(lid)
        ws = c - window // 2
        if ws < ctg.offset or ws + window > ctg.end:
            counts["loci_off_edge"] += 1
            continue
        fold = fold_of(ctg.name, fold_map)
        counts["loci_no_fold"] += fold == UNASSIGNED
        rows.append((order[ctg.name], ws, lid, ctg.name, c, fold))
    if not rows:
        raise InputError("no loci left after pairing and dropping loci off contig edges",
                         file=path, hint=f"counts: {counts}")
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    start = np.array([r[1] for r in rows], dtype=np.int64)
    table = {
        "locus_id": np.array([r[2] for r in rows], dtype="<U64"),
        "chrom": np.array([r[3] for r in rows], dtype="<U32"),
        "start": start,
        "end": start + window,
        "centre": np.array([r[4] for r in rows], dtype=np.int64),
        "fold": np.array([r[5] for r in rows], dtype=np.int8),
    }
    return table, counts
