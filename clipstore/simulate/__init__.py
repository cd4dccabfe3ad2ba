"""Seeded synthetic cohorts in real file formats, with ground truth from a planted
core-promoter grammar (`clipstore simulate OUT_DIR`)."""
from .grammar import initiation
from .oracle import GrammarOracle
from .simulate import SimOutputs, SimParams, simulate

__all__ = ["simulate", "SimOutputs", "SimParams", "initiation", "GrammarOracle"]
