"""Two-hot / one-hot DNA encoding and strand-aware reverse complement, in plain numpy.

Channels are A, C, G, T. Two-hot is the sum of the one-hots of the two alleles, so a
heterozygous site has two channels at 1 and a homozygous one a single channel at 2; N is zeros.
"""
from __future__ import annotations

import numpy as np

BASES = "ACGT"
# IUPAC code → two-hot (diploid) vector; a single base counts twice (homozygous).
_IUPAC_TWO_HOT = {
    "A": (2, 0, 0, 0), "C": (0, 2, 0, 0), "G": (0, 0, 2, 0), "T": (0, 0, 0, 2),
    "R": (1, 0, 1, 0), "Y": (0, 1, 0, 1), "S": (0, 1, 1, 0), "W": (1, 0, 0, 1),
    "K": (0, 0, 1, 1), "M": (1, 1, 0, 0),
}

_ONE_HOT_LUT = np.zeros((256, 4), dtype=np.uint8)
for _i, _b in enumerate(BASES):
    _ONE_HOT_LUT[ord(_b), _i] = 1
    _ONE_HOT_LUT[ord(_b.lower()), _i] = 1

_TWO_HOT_LUT = np.zeros((256, 4), dtype=np.uint8)
for _c, _v in _IUPAC_TWO_HOT.items():
    _TWO_HOT_LUT[ord(_c)] = _v
    _TWO_HOT_LUT[ord(_c.lower())] = _v


def _as_bytes(seq: str | bytes | np.ndarray) -> np.ndarray:
    if isinstance(seq, np.ndarray):
        return seq.view(np.uint8) if seq.dtype != np.uint8 else seq
    if isinstance(seq, str):
        seq = seq.encode("ascii")
    return np.frombuffer(seq, dtype=np.uint8)


def one_hot(seq: str | bytes | np.ndarray) -> np.ndarray:
    """(L, 4) uint8 one-hot of a haploid sequence; anything but ACGT (any case) is all zeros."""
    return _ONE_HOT_LUT[_as_bytes(seq)]


def two_hot(hap1: str | bytes | np.ndarray, hap2: str | bytes | np.ndarray) -> np.ndarray:
    """(L, 4) uint8 two-hot of a diploid sequence given as its two haplotypes."""
    return one_hot(hap1) + one_hot(hap2)


def two_hot_iupac(seq: str | bytes) -> np.ndarray:
    """(L, 4) uint8 two-hot from an IUPAC string (`AYCR` → [[2,0,0,0],[0,1,0,1],...])."""
    return _TWO_HOT_LUT[_as_bytes(seq)]


def reverse_complement(x: np.ndarray) -> np.ndarray:
    """Reverse complement of one-/two-hot arrays (..., L, 4): reverse positions and A↔T, C↔G."""
    return x[..., ::-1, ::-1]


def reverse_complement_track(y: np.ndarray) -> np.ndarray:
    """Reverse complement of a stranded track (..., L, 2): reverse positions and swap strands."""
    return y[..., ::-1, ::-1]


def decode(x: np.ndarray) -> str:
    """Haploid one-hot (L, 4) back to a string; all-zero rows become N (for debugging and tests)."""
    idx = np.where(x.sum(-1) == 0, 4, x.argmax(-1))
    return "".join(np.array(list(BASES + "N"))[idx])
