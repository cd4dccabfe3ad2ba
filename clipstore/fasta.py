"""Reference FASTA access (pysam/htslib: plain or bgzipped, indexed with .fai/.gzi).

A record named like a region, `22:20000001-21000000` (what `samtools faidx` writes for a
slice), is read as that slice of contig `22`: its first base is position 20,000,001, and loci
must lie inside the slice (others are dropped as off the edge). So a slice FASTA works with
genome coordinates in the VCF, bigWigs and peaks without any option.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

import pysam

from .errors import InputError

_REGION = re.compile(r"^(?P<chrom>.+):(?P<start>\d+)-(?P<end>\d+)$")


@dataclass(frozen=True)
class Contig:
    """A FASTA record seen as [offset, offset + length) of chromosome `name`."""
    name: str
    record: str
    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length


def contigs_of(fa: pysam.FastaFile) -> dict[str, Contig]:
    out: dict[str, Contig] = {}
    for rec, n in zip(fa.references, fa.lengths):
        m = _REGION.match(rec)
        if m and int(m["end"]) - int(m["start"]) + 1 == n:
            c = Contig(m["chrom"], rec, int(m["start"]) - 1, n)
        else:
            c = Contig(rec, rec, 0, n)
        out[c.name] = c
    return out


def open_fasta(path: str) -> pysam.FastaFile:
    """Open (and, where the folder is writable, index) a FASTA; bad input → InputError."""
    if not os.path.exists(path):
        raise InputError("reference FASTA not found", file=path)
    folder = os.path.dirname(os.path.abspath(path))
    # a folder marked read-only (no w bits) counts as read-only even for root: never write
    # index files into shared data folders
    writable = os.access(folder, os.W_OK) and bool(os.stat(folder).st_mode & 0o222)
    if not os.path.exists(path + ".fai") and not writable:
        raise InputError("reference FASTA has no .fai index and its folder is read-only",
                         file=path, hint=f"run `samtools faidx {path}` where you can write, "
                                         "or copy the FASTA somewhere writable")
    try:
        return pysam.FastaFile(path)
    except (OSError, ValueError) as e:
        hint = ("if it is gzipped, recompress it with `bgzip` and index it with `samtools faidx`"
                if path.endswith(".gz") else f"index it with `samtools faidx {path}`")
        raise InputError(f"cannot open or index the reference FASTA ({e})", file=path, hint=hint)


def fetch(fa: pysam.FastaFile, contig: Contig, start: int, end: int) -> bytes:
    """Upper-case bases of chromosome positions [start, end) (0-based, genome coordinates)."""
    path = fa.filename.decode() if isinstance(fa.filename, bytes) else str(fa.filename)
    try:
        s = fa.fetch(reference=contig.record, start=start - contig.offset,
                     end=end - contig.offset)
    except (ValueError, OSError) as e:   # htslib: truncated or damaged file, stale .fai
        raise InputError(f"cannot read bases {contig.name}:{start + 1}-{end} ({e}): the file is "
                         "truncated or damaged, or its index is stale", file=path,
                         record=contig.record,
                         hint="copy the FASTA again, or delete its .fai/.gzi so they are remade")
    if len(s) != end - start:
        raise InputError(f"window {contig.name}:{start}-{end} runs past the FASTA record "
                         "(truncated file or stale .fai?)", file=path, record=contig.record)
    return s.upper().encode("ascii")
