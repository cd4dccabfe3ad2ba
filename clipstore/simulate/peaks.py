"""Unidirectional peak calls per strand, as a PINTS-like caller would report them.

Each planted TSS becomes one stranded peak around the strongest expected initiation within
±10 bp of it (on the reference sequence). Divergent promoters give a minus peak left of a plus
peak (gap < 200 bp), which `clipstore build` pairs into a locus; one-sided promoters give
unpaired peaks, and a pair at a chromosome end gives a locus whose window runs off the edge —
so the build's filters have work to do, and the counts are known (planted.json).
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import grammar
from .genome import Genome, Slot

PAD = 300   # sequence scored beyond a region so activators outside it still count


@dataclass(frozen=True)
class StrandPeak:
    chrom: str
    start: int
    end: int
    strand: str
    summit: int     # absolute position of the strongest expected initiation


def reference_rates(genome: Genome, chrom: str, start: int, end: int) -> np.ndarray:
    """(end − start, 2) expected initiation on the reference over [start, end)."""
    codes = genome.codes(chrom, start - PAD, end + PAD)
    r = grammar.initiation_variants(codes, np.zeros(0, np.int64), np.zeros((1, 0), np.uint8))
    return r[0, PAD:PAD + end - start]


def call_slot(genome: Genome, slot: Slot, rng: np.random.Generator) -> list[StrandPeak]:
    """Peaks of one promoter: plus peak right of minus peak, widths 20–60 bp."""
    lo = slot.centre - 400
    rates = reference_rates(genome, slot.chrom, lo, slot.centre + 400)
    out = []
    for tss, col, strand in ((slot.tss_minus, 1, "-"), (slot.tss_plus, 0, "+")):
        if tss < 0:
            continue
        seg = rates[tss - 10 - lo:tss + 11 - lo, col]
        summit = tss - 10 + int(np.argmax(seg))
        a, b = int(rng.integers(10, 31)), int(rng.integers(10, 31))
        out.append(StrandPeak(slot.chrom, summit - a, summit + b, strand, summit))
    return out


def write_peaks(peaks: list[StrandPeak], path: Path) -> Path:
    """BED6 (+ score from nothing: 0), gzipped, sorted by chrom order then start."""
    order = {c: i for i, c in enumerate(dict.fromkeys(p.chrom for p in peaks))}
    rows = sorted(peaks, key=lambda p: (order[p.chrom], p.start, p.end))
    with gzip.open(path, "wt") as fh:
        for i, p in enumerate(rows):
            fh.write(f"{p.chrom}\t{p.start}\t{p.end}\tpeak{i}\t0\t{p.strand}\n")
    return path
