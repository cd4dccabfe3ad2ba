"""Reference genome of the simulated cohort: short chromosomes chr1..chr22 (so CLIPNET's fold
map applies), N runs, and promoter slots with planted core-promoter grammar.

Why slots: every locus gets its own stretch of sequence, windows never overlap, and every
chromosome (hence every fold) gets at least one locus, so each fold can be a split.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pysam

from . import grammar

CHROMS = [f"chr{i}" for i in range(1, 23)]
# hg38 autosome lengths in Mb: loci are spread in proportion, like real promoters roughly are
_MB = [248, 242, 198, 190, 181, 171, 159, 145, 138, 134, 135, 133, 114, 107, 102, 90, 83, 80,
       59, 64, 47, 51]
CODE = {b: i for i, b in enumerate("ACGT")}
LETTERS = np.frombuffer(b"ACGTN", dtype=np.uint8)


@dataclass
class Site:
    """A planted motif instance: `start` is 0-based on the forward strand of the genome."""
    name: str
    strand: str
    start: int
    seq: str          # as written on the forward strand (intact)
    # hidden sites (SimParams.hidden_motifs): (forward position, intact base) of the one base
    # the reference carries broken; a common SNP in the cohort restores it
    restore: tuple[int, str] | None = None

    @property
    def end(self) -> int:
        return self.start + len(self.seq)


@dataclass
class Slot:
    """One promoter: planned TSSs and planted sites. `kind`: 'locus' (divergent pair of peaks),
    'lone' (one strand only: an unpaired peak) or 'edge' (a pair whose window runs off the end)."""
    chrom: str
    kind: str
    centre: int
    tss_plus: int = -1
    tss_minus: int = -1
    sites: list[Site] = field(default_factory=list)


@dataclass
class Genome:
    seqs: dict[str, np.ndarray]     # base codes 0-3, 4 = N
    slots: list[Slot]
    n_runs: list[tuple[str, int, int]]

    def codes(self, chrom: str, start: int, end: int) -> np.ndarray:
        """Codes over [start, end), N-padded past either end of the chromosome."""
        s = self.seqs[chrom]
        out = np.full(end - start, 4, np.uint8)
        a, b = max(start, 0), min(end, len(s))
        if b > a:
            out[a - start:b - start] = s[a:b]
        return out

    def text(self, chrom: str, start: int, end: int) -> str:
        return LETTERS[self.codes(chrom, start, end)].tobytes().decode()


def revcomp(s: str) -> str:
    return s[::-1].translate(str.maketrans("ACGTN", "TGCAN"))


def _core_starts(tss: int, strand: str) -> dict[str, int]:
    """Forward-strand start of each core motif that puts a TSS at `tss` on `strand`."""
    out = {}
    for name in grammar.CORE:
        m = grammar.MOTIFS[name]
        out[name] = tss - m.tss_offset if strand == "+" else tss - (len(m) - 1 - m.tss_offset)
    return out


def _plant(seq: np.ndarray, used: np.ndarray, site: Site) -> None:
    seq[site.start:site.end] = [CODE[b] for b in site.seq]
    used[site.start:site.end] = True


def _make_site(name: str, strand: str, start: int, rng) -> Site:
    s = grammar.sample_site(grammar.MOTIFS[name], rng)
    return Site(name, strand, start, s if strand == "+" else revcomp(s))


def _plant_core(seq, used, slot: Slot, tss: int, strand: str, rng, strong: bool) -> None:
    """A core promoter on one strand: Inr, TATA and/or YY1 at their spacings from the TSS."""
    starts = _core_starts(tss, strand)
    has_tata = rng.random() < (0.6 if strong else 0.3)
    has_yy1 = rng.random() < (0.5 if strong and not has_tata else 0.2)
    has_inr = rng.random() < 0.8 or not (has_tata or has_yy1)
    for name, on in (("Inr", has_inr), ("TATA", has_tata), ("YY1", has_yy1)):
        if on:
            site = _make_site(name, strand, starts[name], rng)
            _plant(seq, used, site)
            slot.sites.append(site)


def _hide(seq: np.ndarray, site: Site) -> None:
    """Write the type's breaking base (grammar.hidden_break: the same for every site of the
    type) into a planted site and record the intact base, which a SNP of the cohort restores."""
    m = grammar.MOTIFS[site.name]
    i, alt = grammar.hidden_break(m)
    pos = site.start + i if site.strand == "+" else site.start + len(m) - 1 - i
    broken = alt if site.strand == "+" else revcomp(alt)
    site.restore = (pos, site.seq[pos - site.start])
    seq[pos] = CODE[broken]


def _scrub(seq: np.ndarray, used: np.ndarray, hidden: tuple[str, ...]) -> int:
    """Break every intact site of a hidden type that the background drew by chance (the
    type's shared break, at a base no planted site uses), so that the reference carries the
    type intact nowhere — not even once in a million bases. Returns how many it broke."""
    eye = np.vstack([np.eye(4, dtype=np.float32), np.zeros((1, 4), np.float32)])
    occ = grammar.occupancy(eye[seq][None])
    n = 0
    for name in hidden:
        m = grammar.MOTIFS[name]
        i, alt = grammar.hidden_break(m)
        for rc in (False, True):
            for start in np.flatnonzero(occ[(name, rc)][0] > 0.5):
                pos = int(start) + (len(m) - 1 - i if rc else i)
                if not used[pos]:
                    seq[pos] = CODE[revcomp(alt) if rc else alt]
                    n += 1
    return n


def _plant_activators(seq, used, slot: Slot, lo: int, hi: int, n: int, rng,
                      hidden: tuple[str, ...] = ()) -> None:
    for _ in range(n):
        name = str(rng.choice(grammar.ACTIVATORS))
        k = len(grammar.MOTIFS[name])
        for _try in range(30):
            s = int(rng.integers(lo, hi - k))
            if not used[s - 2:s + k + 2].any():
                site = _make_site(name, "+" if rng.random() < 0.5 else "-", s, rng)
                _plant(seq, used, site)
                if name in hidden:
                    _hide(seq, site)
                slot.sites.append(site)
                break


def _design_promoter(seq, used, slot: Slot, rng, gap_range=(60, 180), reach: int = 150,
                     hidden: tuple[str, ...] = ()) -> None:
    """Plant a divergent (or, for 'lone', one-sided) promoter around slot.centre: TSSs
    `gap_range` apart, activators up to `reach` bp outside them."""
    g = int(rng.integers(*gap_range))
    slot.tss_minus = slot.centre - g // 2
    slot.tss_plus = slot.tss_minus + g
    strong_plus = rng.random() < 0.5
    if slot.kind == "lone":
        strand = "+" if rng.random() < 0.5 else "-"
        tss = slot.tss_plus if strand == "+" else slot.tss_minus
        slot.tss_plus, slot.tss_minus = (tss, -1) if strand == "+" else (-1, tss)
        _plant_core(seq, used, slot, tss, strand, rng, strong=True)
    else:
        _plant_core(seq, used, slot, slot.tss_plus, "+", rng, strong=strong_plus)
        _plant_core(seq, used, slot, slot.tss_minus, "-", rng, strong=not strong_plus)
    n_act = min(5, int(rng.poisson(1.6)) + (rng.random() < 0.8))
    _plant_activators(seq, used, slot, slot.centre - g // 2 - reach, slot.centre + g // 2 + reach,
                      n_act, rng, hidden)


def make_genome(rng: np.random.Generator, n_loci: int, *, window: int, n_lone: int,
                n_edge: int, output_length: int = 500, input_length: int = 1000,
                gc: float = 0.45, hidden: tuple[str, ...] = ()) -> Genome:
    """Lay out chromosomes, draw background sequence, plant promoters and N runs.

    Promoter geometry follows the model's geometry, so short test geometries still see both
    TSSs in the output window and the activators in the input: TSS gap 60..min(180, 0.7·output),
    activators within min(150, input/4) bp of the TSSs. `hidden`: activator types planted
    broken (see `Site.restore`)."""
    gap_range = (60, max(61, min(180, int(0.7 * output_length))))
    reach = min(150, max(30, input_length // 4))
    if n_loci < len(CHROMS):
        raise ValueError(f"need at least {len(CHROMS)} loci (one per chromosome, so every fold "
                         f"has loci), got {n_loci}")
    w = np.array(_MB, float) / sum(_MB)
    per_chrom = 1 + rng.multinomial(n_loci - len(CHROMS), w)
    lone = rng.multinomial(n_lone, w)
    p = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
    margin = 400                                    # sequence kept between a window and the next
    slot_len = window + 2 * margin
    seqs, slots, n_runs = {}, [], []
    for ci, chrom in enumerate(CHROMS):
        kinds = ["locus"] * int(per_chrom[ci]) + ["lone"] * int(lone[ci]) + ["nrun"]
        kinds = [kinds[i] for i in rng.permutation(len(kinds))]
        lead = int(rng.integers(500, 2000))
        spacers = rng.integers(0, 1500, len(kinds))
        cut = min(300, window // 2 - 30)                 # chromosome ends this far past the pair
        edge = ci < n_edge and cut >= 75                  # room for the compact pair's peaks
        length = lead + len(kinds) * slot_len + int(spacers.sum()) + (slot_len if edge else 0)
        seq = rng.choice(4, size=length, p=p).astype(np.uint8)
        used = np.zeros(length, bool)
        seq[:lead] = 4
        n_runs.append((chrom, 0, lead))
        pos = lead
        for kind, sp in zip(kinds, spacers):
            if kind == "nrun":
                a = pos + margin + int(rng.integers(0, 200))
                b = a + int(rng.integers(min(200, window // 2), window))
                seq[a:b] = 4
                n_runs.append((chrom, a, b))
            else:
                slot = Slot(chrom, kind, pos + slot_len // 2)
                _design_promoter(seq, used, slot, rng, gap_range, reach, hidden)
                slots.append(slot)
            pos += slot_len + int(sp)
        if edge:   # a compact divergent pair just before the end: its window cannot fit
            slot = Slot(chrom, "edge", pos + margin)
            _design_promoter(seq, used, slot, rng, (60, 61), 30, hidden)
            seq = seq[:slot.centre + cut]
            slots.append(slot)
        if hidden:
            _scrub(seq, used, hidden)
        seqs[chrom] = seq
    return Genome(seqs, slots, n_runs)


def write_fasta(genome: Genome, out: Path) -> Path:
    """bgzipped FASTA + .fai + .gzi (pysam), 60 bp lines."""
    plain = out.with_suffix("")
    with open(plain, "w") as fh:
        for chrom, s in genome.seqs.items():
            text = LETTERS[s].tobytes().decode()
            fh.write(f">{chrom}\n")
            fh.write("\n".join(text[i:i + 60] for i in range(0, len(text), 60)) + "\n")
    pysam.tabix_compress(str(plain), str(out), force=True)
    plain.unlink()
    pysam.faidx(str(out))
    return out
