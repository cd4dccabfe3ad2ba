"""The grammar as a Predictor: the best any model could do on a simulated cohort (no noise).

It follows the trainer's Predictor contract — `(x (B, L, 4)) -> (profile (B, 2·out) plus then
minus, quantity (B,))` with `input_length` and `output_length` (per strand) — so evaluation code
can be checked against a known-perfect model, and a trained model can be compared with it.
Two-hot input (a diploid genome) is scored as the mean of its alleles: exact at homozygous
positions, an approximation at heterozygous ones.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import grammar


@dataclass(frozen=True)
class GrammarOracle:
    input_length: int = 1000
    output_length: int = 500
    scale: float = 1.0      # planted.json "scale" gives expected reads at library depth 1

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=np.float32)
        peak = x.sum(axis=-1).max() if x.size else 1.0
        hap = x / 2.0 if peak > 1.5 else x       # two-hot → per-allele mean
        ploidy = 2.0 if peak > 1.5 else 1.0
        r = grammar.initiation(hap) * (self.scale * ploidy)
        o = (x.shape[1] - self.output_length) // 2
        r = r[:, o:o + self.output_length]
        profile = np.concatenate([r[..., 0], r[..., 1]], axis=1).astype(np.float32)
        return profile, profile.sum(axis=1)
