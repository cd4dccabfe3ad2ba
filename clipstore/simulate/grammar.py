"""The planted core-promoter grammar: sequence → expected PRO-cap initiation on both strands.

Why a grammar and not random tracks: the simulator must give a model something learnable whose
variant effects are known exactly. Initiation here is a deterministic function of sequence, so a
SNP inside a motif changes quantity (how much) and directionality (which strand) by an amount
the truth tables can state.

The rules, per strand (the minus strand is the plus rule applied to the reverse complement):

* core elements place transcription start sites (TSS) at fixed offsets in their orientation:
  Inr (YYANWYY) puts the TSS on its A; a TATA box (TATAWAWR) puts it ~31 bp downstream; a YY1
  site (AAGATGGCGGC) ~10 bp upstream of itself. TATA or YY1 with an Inr at the TSS act in synergy.
* activators (GC-box/SP1, ETS, NRF1) work in either orientation and multiply initiation on both
  strands within ~±200 bp (a Gaussian field, exp of the summed occupancy), which is what makes
  a promoter with a core on each side divergent.
* occupancy is soft: a logistic function of the PWM log-odds, so one mismatch at an informative
  position drops a site from ~0.95 to ~0.05, while mismatches at degenerate positions barely
  matter.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import convolve1d
from scipy.signal import fftconvolve

_IUPAC = {"A": "A", "C": "C", "G": "G", "T": "T", "W": "AT", "S": "CG", "R": "AG", "Y": "CT",
          "K": "GT", "M": "AC", "N": "ACGT"}
BASES = "ACGT"


@dataclass(frozen=True)
class Motif:
    name: str
    consensus: str        # IUPAC
    role: str             # "core" (places a TSS) or "activator" (boosts both strands nearby)
    tss_offset: int = 0   # core: TSS = motif start + tss_offset, in the motif's orientation
    weight: float = 1.0   # core: TSS strength; activator: log-activation at full occupancy
    margin: float = 1.6   # occupancy is 0.5 at (max log-odds − margin)

    @property
    def pwm(self) -> np.ndarray:
        """(k, 4) probabilities: 0.91 for a fixed base, 0.46 each for a two-base code, the rest
        shared by the disallowed bases (N: 0.25 each)."""
        rows = []
        for ch in self.consensus:
            ok = _IUPAC[ch]
            hi = 0.91 if len(ok) == 1 else 0.46 if len(ok) == 2 else 0.25
            lo = (1 - hi * len(ok)) / (4 - len(ok)) if len(ok) < 4 else 0.25
            rows.append([hi if b in ok else lo for b in BASES])
        return np.array(rows)

    @property
    def log_odds(self) -> np.ndarray:
        return np.log(self.pwm / 0.25)

    @property
    def threshold(self) -> float:
        return float(self.log_odds.max(axis=1).sum() - self.margin)

    def __len__(self) -> int:
        return len(self.consensus)


MOTIFS: dict[str, Motif] = {m.name: m for m in (
    Motif("Inr", "YYANWYY", "core", tss_offset=2, weight=0.2, margin=1.4),
    Motif("TATA", "TATAWAWR", "core", tss_offset=31, weight=2.0),
    Motif("YY1", "AAGATGGCGGC", "core", tss_offset=-10, weight=1.5),
    Motif("GCbox", "GGGGCGGGGC", "activator", weight=1.1),
    Motif("ETS", "CCGGAAGT", "activator", weight=1.0),
    Motif("NRF1", "GCGCATGCGC", "activator", weight=1.2),
)}
CORE = ("Inr", "TATA", "YY1")
ACTIVATORS = ("GCbox", "ETS", "NRF1")
BASELINE = 0.003         # TSS-independent initiation (a little signal everywhere)
SYNERGY = 8.0            # extra strength of Inr + (TATA or YY1) at one TSS
ACTIVATOR_SIGMA = 100.0  # bp, reach of an activator
MAX_LOG_ACTIVATION = 5.0
SLOPE = 2.0              # logistic slope of occupancy in nats⁻¹
_KMAX = max(len(m) for m in MOTIFS.values())


def _bank() -> tuple[np.ndarray, np.ndarray, list[tuple[str, bool]]]:
    """(4·KMAX, M) stacked log-odds of every motif in both orientations, thresholds, labels."""
    cols, thr, labels = [], [], []
    for m in MOTIFS.values():
        for rc in (False, True):
            lo = m.log_odds[::-1, ::-1] if rc else m.log_odds
            pad = np.zeros((_KMAX, 4))
            pad[:len(m)] = lo
            cols.append(pad.reshape(-1))
            thr.append(m.threshold)
            labels.append((m.name, rc))
    return np.stack(cols, axis=1), np.array(thr), labels


_W, _THR, _LABELS = _bank()


def _scores(x: np.ndarray) -> np.ndarray:
    """(B, L, 4) one-hot → (B, L, M) occupancy of every motif-orientation at every start,
    scoring past the end as N (callers zero the starts that run off the sequence)."""
    out = np.empty(x.shape[:2] + (len(_LABELS),), np.float32)
    w = _W.astype(np.float32).reshape(_KMAX, 4, -1)
    thr = _THR.astype(np.float32)
    for i in range(0, len(x), 64):           # bounded memory: 64 rows at a time
        flat = np.asarray(x[i:i + 64], dtype=np.float32)
        L = flat.shape[1]
        padded = np.concatenate([flat, np.zeros((len(flat), _KMAX, 4), np.float32)], axis=1)
        sc = padded[:, :L] @ w[0]
        for j in range(1, _KMAX):
            sc += padded[:, j:j + L] @ w[j]
        out[i:i + 64] = 1.0 / (1.0 + np.exp(-SLOPE * (sc - thr)))
    return out


def _as_dict(occ: np.ndarray) -> dict[tuple[str, bool], np.ndarray]:
    """Split (B, L, M) into per-motif views, zeroing (in place) starts where a site cannot fit."""
    L = occ.shape[1]
    out = {}
    for j, (name, rc) in enumerate(_LABELS):
        occ[:, L - len(MOTIFS[name]) + 1:, j] = 0.0
        out[(name, rc)] = occ[:, :, j]
    return out


def occupancy(x: np.ndarray) -> dict[tuple[str, bool], np.ndarray]:
    """Soft occupancy of every motif at every start position, forward and reverse-complement.

    x: (..., L, 4) one-hot (N rows all zero). Returns {(name, rc): (..., L)}, 0 where the motif
    would run off the end."""
    x = np.asarray(x)
    lead, L = x.shape[:-2], x.shape[-2]
    occ = _as_dict(_scores(x.reshape(-1, L, 4)))
    return {k: v.reshape(*lead, L) for k, v in occ.items()}


def _occupancy_variants(ref: np.ndarray, positions: np.ndarray, alleles: np.ndarray
                        ) -> dict[tuple[str, bool], np.ndarray]:
    """Occupancy of H haplotypes that differ from `ref` (L,) base codes only at `positions`:
    the reference is scored once and only the starts a variant can touch are rescored."""
    H, L = len(alleles), len(ref)
    eye = np.vstack([np.eye(4, dtype=np.float32), np.zeros((1, 4), np.float32)])
    base = _scores(eye[ref][None])[0]
    occ = np.repeat(base[None], H, axis=0)
    if len(positions):
        order = np.argsort(positions)
        pos, al = np.asarray(positions)[order], np.asarray(alleles)[:, order]
        spans: list[list[int]] = []
        for p in pos:                                  # merged ranges of starts to rescore
            a, b = max(0, p - _KMAX + 1), p
            if spans and a <= spans[-1][1] + 1:
                spans[-1][1] = max(spans[-1][1], b)
            else:
                spans.append([a, b])
        seqs = np.repeat(ref[None], H, axis=0)
        seqs[:, pos] = al
        # all spans scored in one call: each span's starts read only inside its own segment
        segs = [(a, min(L, b + _KMAX)) for a, b in spans]
        joined = np.concatenate([seqs[:, a:e] for a, e in segs], axis=1)
        sc = _scores(eye[joined])
        k = 0
        for (a, b), (_, e) in zip(spans, segs):
            occ[:, a:b + 1] = sc[:, k:k + b + 1 - a]
            k += e - a
    return _as_dict(occ)


def _shift(a: np.ndarray, d: int) -> np.ndarray:
    """out[..., x] = a[..., x − d], zero-filled."""
    out = np.zeros_like(a)
    L = a.shape[-1]
    if d >= 0:
        out[..., d:] = a[..., :L - d] if d < L else 0
    else:
        out[..., :L + d] = a[..., -d:] if -d < L else 0
    return out


def _tss_field(o: np.ndarray, motif: Motif, rc: bool, spread: int = 0) -> np.ndarray:
    """Occupancy moved from motif start to the TSS it defines (on the motif's strand)."""
    k, t = len(motif), motif.tss_offset
    d = (k - 1 - t) if rc else t
    if spread == 0:
        return _shift(o, d)
    w = np.exp(-0.5 * (np.arange(-spread, spread + 1) / (spread / 2)) ** 2)
    return convolve1d(_shift(o, d), (w / w.sum()).astype(o.dtype), axis=-1, mode="constant")


def activation(occ: dict) -> np.ndarray:
    """Multiplier of initiation at each position, from activators in both orientations."""
    field = None
    for name in ACTIVATORS:
        m = MOTIFS[name]
        f = m.weight * (occ[(name, False)] + occ[(name, True)])
        c = (len(m) - 1) / 2                 # centre of the site (half-way for even k)
        f = 0.5 * (_shift(f, int(np.floor(c))) + _shift(f, int(np.ceil(c))))
        field = f if field is None else field + f
    r = int(4 * ACTIVATOR_SIGMA)
    g = np.exp(-0.5 * (np.arange(-r, r + 1) / ACTIVATOR_SIGMA) ** 2).astype(np.float32)
    shape = (1,) * (field.ndim - 1) + (-1,)
    s = fftconvolve(field, g.reshape(shape), mode="same", axes=-1)
    return np.exp(np.clip(s, 0.0, MAX_LOG_ACTIVATION))


def core_strength(occ: dict, minus: bool) -> np.ndarray:
    """TSS strength of core elements on one strand (before activation)."""
    inr = _tss_field(occ[("Inr", minus)], MOTIFS["Inr"], minus)
    tata = _tss_field(occ[("TATA", minus)], MOTIFS["TATA"], minus, spread=2)
    yy1 = _tss_field(occ[("YY1", minus)], MOTIFS["YY1"], minus, spread=2)
    return (BASELINE + MOTIFS["Inr"].weight * inr + MOTIFS["TATA"].weight * tata
            + MOTIFS["YY1"].weight * yy1 + SYNERGY * inr * (tata + yy1))


def _rates(occ: dict) -> np.ndarray:
    act = activation(occ)
    plus = act * core_strength(occ, minus=False)
    minus = act * core_strength(occ, minus=True)
    return np.stack([plus, minus], axis=-1).astype(np.float32)


def initiation(onehot: np.ndarray) -> np.ndarray:
    """Expected initiation rate per position and strand: (..., L, 4) one-hot → (..., L, 2).

    Column 0 = plus strand, 1 = minus strand (positive), in the input's coordinates. A pure
    function of sequence; reverse-complementing the input reverses positions and swaps strands.
    """
    return _rates(occupancy(onehot))


def initiation_variants(ref: np.ndarray, positions: np.ndarray, alleles: np.ndarray
                        ) -> np.ndarray:
    """`initiation` of H haplotypes given as a reference plus substitutions, fast.

    ref: (L,) base codes 0-3 (4 = N); positions: (V,) offsets; alleles: (H, V) base codes of
    each haplotype at each position. Returns (H, L, 2), equal to `initiation` of the spelled-out
    haplotypes (tested), ~20x faster because only sites near a variant are rescored."""
    return _rates(_occupancy_variants(np.asarray(ref), np.asarray(positions, dtype=np.int64),
                                      np.asarray(alleles).reshape(len(alleles), -1)))


def sample_site(motif: Motif, rng: np.random.Generator) -> str:
    """A full-strength site: the consensus with degenerate positions drawn at random."""
    out = []
    for ch in motif.consensus:
        ok = _IUPAC[ch]
        out.append(ok[rng.integers(len(ok))])
    return "".join(out)


def breaking_snp(motif: Motif, site: str, rng: np.random.Generator) -> tuple[int, str]:
    """(offset in site, alt base): a substitution at a fixed (informative) position of the
    site, to a base the motif does not allow, so the site loses almost all occupancy."""
    fixed = [i for i, ch in enumerate(motif.consensus) if len(_IUPAC[ch]) == 1]
    i = int(rng.choice(fixed))
    alts = [b for b in BASES if b not in _IUPAC[motif.consensus[i]]]
    return i, str(rng.choice(alts))


def hidden_break(motif: Motif) -> tuple[int, str]:
    """(offset in site, alt base): the ONE substitution every hidden site of this type carries
    in the reference — the first fixed position of the consensus, to the first base it does not
    allow. Why one for all: if each site were broken at a position of its own, the broken sites
    together would spell out the intact consensus, and a reference-trained network learns the
    intact motif from them (measured: tiQTL r vs truth 0.726 for both the reference-trained and
    the personalized network). With one shared break, the intact base at that position occurs
    in no reference site: only personal genomes show it, with its activity."""
    i = next(i for i, ch in enumerate(motif.consensus) if len(_IUPAC[ch]) == 1)
    return i, next(b for b in BASES if b not in _IUPAC[motif.consensus[i]])
