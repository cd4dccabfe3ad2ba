"""Plans of the demo: how big the simulated cohort is and how every model is trained."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Plan:
    """Scale of the simulation and schedule of the training runs."""

    name: str
    sim: dict[str, Any]
    model: str | dict
    subsample_n: tuple[int, ...]
    draws: int
    ensemble: tuple[int, ...] | None      # None: replicate 1 only (validates on fold 1)
    max_epochs: int
    steps_per_epoch: int
    patience: int
    batch_size: int
    learning_rate: float = 1e-3
    rpm: bool = True                      # train and score on reads per million
    quantity_scale: float | str = "auto"  # quantity head output scale (trainer.model): short
                                          # schedules cannot otherwise reach targets ~100s
    loss_lambda: float = 1 / 500          # weight of the quantity loss (CLIPNET: 1/500)
    build_workers: int = 2
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PLANS: dict[str, Plan] = {
    # plumbing only: tiny cohort and model, a few steps (tests; ~2 min on 2 cores)
    "quick": Plan(
        name="quick",
        sim=dict(n_individuals=6, replicates=1, n_loci=120, input_length=200, max_jitter=20,
                 output_length=100, shard_loci=32, mpra_max=120),
        model="tiny", subsample_n=(2, 5), draws=1, ensemble=None, max_epochs=2,
        steps_per_epoch=4, patience=2, batch_size=32,
        notes="smoke run: numbers are not meaningful"),
    # the default: sized to finish in ~10 min on a 2-core laptop without a GPU. Depth 600
    # reads per promoter keeps observed tracks (and so observed QTL scores) clean. Measured on
    # this simulation (personalized model, folds 0-1 held out; see the plan's notes):
    # - CLIPNET's head dropout (0.3 on the quantity output itself) and lambda 1/500 learned no
    #   variant effect in 2,560 steps (QTL r -0.25, predicted genotype effects ~0.5 % where the
    #   truth is ~30 %); dropout 0 and lambda 0.03 gave QTL r 0.17-0.36, tiQTL r vs truth ~0.5,
    #   with profile r 0.73-0.80 (lambda 0.1 traded profile r down to 0.35).
    # - batch 128 learned more per second than batch 32 (per-step overhead dominates on CPU).
    # - 2,000 loci rather than 1,000 doubles the QTLs scored (109 -> 237) for ~20 s more.
    "default": Plan(
        name="default",
        sim=dict(n_individuals=20, replicates=4, n_loci=2000, input_length=500, max_jitter=100,
                 output_length=250, shard_loci=64, mpra_max=1500, depth=600.0),
        model={"conv_filters": (32, 64), "filters": 32, "n_dilated": 6, "dropout": 0.0},
        subsample_n=(2, 5, 10), draws=1, ensemble=None, max_epochs=20,
        steps_per_epoch=64, patience=20, batch_size=128, learning_rate=5e-3, loss_lambda=0.03,
        notes="one replicate per model (validation fold 1, test fold 0), shortened schedule: "
              "20 epochs x 64 steps of 128 examples for every model, the epoch with the lowest "
              "validation loss kept (no early stop: at lr 5e-3 the validation loss is jumpy); "
              "the 'small' network without head dropout and with quantity-loss weight 0.03, "
              "which learn quantity and variant effects within this budget"),
    # the paper's schedule: 9-fold ensembles, 5 draws per n, CLIPNET-sized model (GPU)
    "full": Plan(
        name="full",
        sim=dict(n_individuals=58, replicates=9, n_loci=5000, input_length=1000, max_jitter=250,
                 output_length=500, shard_loci=128, mpra_max=5000),
        model="clipnet", subsample_n=(5, 10, 15, 20, 30), draws=5,
        ensemble=tuple(range(1, 10)), max_epochs=200, steps_per_epoch=0, patience=10,
        batch_size=256, quantity_scale=1.0, notes="paper-sized: 9-fold ensembles, 5 draws per n; needs a GPU"),
}



@dataclass(frozen=True)
class Run:
    """One trained model (or ensemble) of the demo."""

    name: str
    kind: str               # personalized | reference | subsampled
    n_libraries: int
    masked: bool = False
    subsample: dict | None = None
    draw: int = 0


def plan_runs(plan: Plan, n_libraries: int, n_individuals: int) -> list[Run]:
    runs = [Run("personalized", "personalized", n_libraries),
            Run("reference", "reference", n_libraries, masked=True)]
    for n in plan.subsample_n:
        if n > n_individuals:      # a draw never holds two isogenic replicates
            continue
        for r in range(plan.draws):
            runs.append(Run(f"n{n}_draw{r}", "subsampled", n,
                            subsample={"n": n, "draws": 1, "seed": 0, "draw": r}, draw=r))
    return runs



def train_config(plan: Plan, run: Run, store: str, out: Path, seed: int):
    from trainer.config import TrainConfig

    return TrainConfig(
        store=store, output=str(out / "models" / run.name), replicate=1,
        ensemble=list(plan.ensemble) if plan.ensemble else None, subsample=run.subsample,
        masked=run.masked, model=plan.model, quantity_scale=plan.quantity_scale, rpm=plan.rpm,
        loss_lambda=plan.loss_lambda,
        max_epochs=plan.max_epochs,
        steps_per_epoch=plan.steps_per_epoch or None, patience=plan.patience,
        batch_size=plan.batch_size, learning_rate=plan.learning_rate, seed=seed,
        tensorboard=False, extra={"demo_run": run.name, "demo_plan": plan.name})


