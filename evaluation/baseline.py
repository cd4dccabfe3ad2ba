"""A model-free Predictor: motif scanning in numpy.

Why it exists: benchmarks need a deterministic sequence -> (profile, quantity) function that
responds to single-base changes, for tests and as a floor any trained model should beat. It
scans each strand with position weight matrices; initiation on the plus strand is placed a
fixed distance downstream of each motif hit (and mirrored on the minus strand), so a SNP that
breaks a motif lowers quantity and moves the profile, as a core promoter element would.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# TATA box, GC box (SP1) and CCAAT box consensus sequences: enough to give SNPs
# in or near them an effect.
DEFAULT_MOTIFS = ("TATAAA", "GGGCGG", "CCAAT")


def pwm_from_consensus(consensus: str, strength: float = 2.0) -> np.ndarray:
    """(k, 4) log-odds matrix favouring the consensus base by `strength` at each position."""
    m = np.full((len(consensus), 4), -strength / 3, np.float32)
    for i, b in enumerate(consensus.upper()):
        m[i, "ACGT".index(b)] = strength
    return m


@dataclass
class MotifPredictor:
    """Motif-scanning Predictor (see module doc). `input_length`, `output_length` per strand."""

    input_length: int = 1000
    output_length: int = 500
    motifs: tuple[str, ...] = DEFAULT_MOTIFS
    offset: int = 30            # bp from motif start to the initiation site
    threshold: float = 0.5      # fraction of the best score a hit needs
    scale: float = 10.0
    _pwms: list = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.output_length > self.input_length:
            raise ValueError("output_length must be <= input_length")
        self._pwms = [pwm_from_consensus(m) for m in self.motifs]

    def _activation(self, x: np.ndarray) -> np.ndarray:
        """(B, L) plus-strand initiation rate from motif hits on the given orientation."""
        B, L, _ = x.shape
        act = np.zeros((B, L), np.float32)
        for w in self._pwms:
            k = len(w)
            if k > L:
                continue
            win = np.lib.stride_tricks.sliding_window_view(x, (k, 4), axis=(1, 2))[:, :, 0]
            s = np.einsum("bpkc,kc->bp", win, w) / 2.0        # x is two-hot scale
            best = w.max(1).sum()
            hit = np.clip(s / best - self.threshold, 0, None) / (1 - self.threshold)
            pos = np.arange(L - k + 1) + self.offset
            ok = pos < L
            np.add.at(act, (slice(None), pos[ok]), hit[:, ok] ** 2 * self.scale)
        return act

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, np.float32)
        if x.ndim != 3 or x.shape[1] != self.input_length or x.shape[2] != 4:
            raise ValueError(f"expected x of shape (B, {self.input_length}, 4), got {x.shape}")
        plus = self._activation(x)
        minus = self._activation(x[:, ::-1, ::-1])[:, ::-1]   # plus strand of the RC, mapped back
        lo = (self.input_length - self.output_length) // 2
        sl = slice(lo, lo + self.output_length)
        profile = np.concatenate([plus[:, sl], minus[:, sl]], axis=1) + np.float32(1e-3)
        return profile.astype(np.float32), profile.sum(1).astype(np.float32)


BASELINES = ("motif",)


def from_spec(spec: str) -> MotifPredictor | None:
    """A baseline named on the command line, or None when `spec` names none (then it is a
    model path). `motif` is MotifPredictor(1000, 500); `motif:INPUT[:OUTPUT]` sets the input
    and output lengths (output defaults to half the input), e.g. `motif:500:250`."""
    name, _, rest = str(spec).partition(":")
    if name not in BASELINES or (rest and not all(p.isdigit() for p in rest.split(":"))):
        return None
    parts = [int(p) for p in rest.split(":")] if rest else []
    if len(parts) > 2:
        return None
    L = parts[0] if parts else 1000
    O = parts[1] if len(parts) > 1 else L // 2
    return MotifPredictor(input_length=L, output_length=O)
