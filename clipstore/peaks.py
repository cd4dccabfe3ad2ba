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
import logging
import zlib
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pyBigWig

from .contigs import resolve
from .errors import InputError
from .fasta import Contig
from .folds import UNASSIGNED, fold_of
from .paths import open_text

log = logging.getLogger(__name__)


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


FORMATS = ("BED3/BED6, narrowPeak, broadPeak, PINTS (unidirectional, bidirectional, divergent), "
           "dREG, plain or gzipped; or bigBed")
_BIGBED_MAGIC = b"\xeb\xf2\x89\x87"
_BIGWIG_MAGIC = b"\x26\xfc\x8f\x88"


def _not_peaks(path: str, why: str) -> InputError:
    return InputError(f"not a peak file: {why}", file=path, hint=f"accepted formats: {FORMATS}")


def read_peaks(path: str) -> list[Peak]:
    """Parse every record of a text or bigBed peak file; malformed coordinates raise an
    InputError naming file and line, anything that is not a peak file one naming the formats."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except FileNotFoundError:
        raise InputError("peak file not found", file=path) from None
    if magic == _BIGBED_MAGIC:
        peaks = _read_bigbed(path)
    elif magic == _BIGWIG_MAGIC:
        raise _not_peaks(path, "it is a bigWig (a signal track)")
    else:
        fh = open_text(path)
        try:
            with fh:
                peaks = _read_text(fh, path)
        except UnicodeDecodeError:
            raise _not_peaks(path, "it holds binary data, not text lines") from None
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:
            raise InputError(f"the gzip stream is damaged or cut short ({e})", file=path,
                             hint="copy or download the peak file again") from None
    if not peaks:
        raise InputError("peak file has no records", file=path,
                         hint=f"accepted formats: {FORMATS}")
    return peaks


def _read_bigbed(path: str) -> list[Peak]:
    """bigBed through pyBigWig: BED6 strand and bigNarrowPeak summit where the fields have them."""
    bb = pyBigWig.open(path)
    if bb is None or not bb.isBigBed():
        raise _not_peaks(path, "it starts like a bigBed but pyBigWig cannot read it")
    peaks: list[Peak] = []
    try:
        for chrom, size in bb.chroms().items():
            for s, e, rest in bb.entries(chrom, 0, size) or ():
                f = rest.split("\t")
                strand = f[2] if len(f) > 2 and f[2] in ("+", "-", ".") else "."
                summit = _int(f[6]) if len(f) == 7 else -1     # bigNarrowPeak's `peak`
                summit = summit if 0 <= summit < e - s else -1
                peaks.append(Peak(chrom, s, e, strand, summit, len(peaks) + 1))
    except RuntimeError as e:
        raise InputError(f"cannot read the bigBed's records ({e}): the file is damaged",
                         file=path, hint="copy or download it again") from None
    finally:
        bb.close()
    return peaks


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _read_text(fh, path: str) -> list[Peak]:
    peaks: list[Peak] = []
    for i, line in enumerate(fh, start=1):
        if not line.strip() or line.startswith(("#", "track", "browser")):
            continue
        if "\x00" in line:
            raise _not_peaks(path, f"line {i} holds binary data")
        f = line.rstrip("\n\r").split("\t")
        if len(f) < 3:
            f = line.split()
        if len(f) < 3:
            raise InputError(f"expected at least 3 columns (chrom, start, end), found {len(f)}",
                             file=path, record=f"line {i}", hint=f"accepted formats: {FORMATS}")
        try:
            start, end = int(f[1]), int(f[2])
        except ValueError:
            if not peaks and f[0].strip().lower() in HEADER_FIRST_FIELDS:
                continue  # a header row a format defines (chrom/start/end ...)
            raise InputError(f"start/end must be integers, found {f[1]!r}, {f[2]!r}",
                             file=path, record=f"line {i}",
                             hint="peak files are BED: chrom, 0-based start, end") from None
        if start < 0 or start >= end:
            raise InputError(f"need 0 <= start < end, found start={start} end={end}",
                             file=path, record=f"line {i}")
        col6 = f[5].strip() if len(f) > 5 else ""
        strand = col6 if col6 in ("+", "-", ".") else "."
        summit = -1
        if len(f) >= 10:                       # narrowPeak: column 10 = summit offset
            summit = _int(f[9])
        elif len(f) == 6 and _is_float(f[3]) and _is_float(f[4]) and _int(col6) >= 0:
            summit = _int(col6) - start        # dREG: score, p-value, absolute centre
        if not 0 <= summit < end - start:
            summit = -1
        peaks.append(Peak(f[0], start, end, strand, summit, i))
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
              "loci_no_fold": 0, "duplicate_peaks": 0, "loci_other_contig": 0}
    names: dict[str, str | None] = {}
    missing: dict[str, int] = {}       # peak contig not in the FASTA → its first line
    rows, seen = [], set()
    for chrom, s, e, c in raw:
        if chrom not in names:
            names[chrom] = resolve(chrom, contigs, aliases)
            if names[chrom] is None:
                missing[chrom] = next(p.line for p in peaks if p.chrom == chrom)
        if names[chrom] is None:       # e.g. a genome-wide peak set and a one-chromosome FASTA
            counts["loci_other_contig"] += 1
            continue
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
    if missing and not rows:
        chrom = next(iter(missing))
        raise InputError(f"no peak lies on a contig of the reference FASTA: contig {chrom!r} "
                         f"and {len(missing) - 1} other(s) are not in it (it has "
                         f"{sorted(contigs)[:10]})", file=path, record=f"line {missing[chrom]}",
                         hint="add contig_aliases to the config (or --alias), or use the "
                              "FASTA of this assembly")
    if missing:
        log.warning("%s: %d loci on contigs not in the reference FASTA are skipped: %s "
                    "(first at line %d; add contig_aliases if they name FASTA contigs)", path,
                    counts["loci_other_contig"], sorted(missing)[:10], min(missing.values()))
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
