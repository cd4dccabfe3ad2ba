"""Plans of the demo: how big the simulated cohorts are, how every model is trained, and the
three regimes the same pipeline is run on — each with its expected outcome, fixed here before
any run (a calibration of the instrument, not a tuning of the answer)."""
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
    validation_steps: int | None = None   # batches of the validation fold scored per epoch
                                          # (None: all of it)
    learning_rate: float = 1e-3
    jitter: int | None = None             # training shifts (None: the store's max_jitter)
    rc: bool = True                       # reverse-complement augmentation
    rpm: bool = True                      # train and score on reads per million
    quantity_scale: float | str = "auto"  # quantity head output scale (trainer.model): short
                                          # schedules cannot otherwise reach targets ~100s
    loss_lambda: float = 1 / 500          # weight of the quantity loss (CLIPNET: 1/500)
    build_workers: int = 2
    train_workers: int = 2                # trainings side by side, one process each
    seeds: int = 3                        # training replicates (seeds) per compared condition:
                                          # each condition is their ensemble
    hidden_motifs: tuple[str, ...] = ("NRF1",)   # the mechanism regime's simulator knob
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Regime:
    """One simulated cohort the comparison runs on, and what the rule should say there."""

    name: str                  # "main" | "null" | "mechanism"
    expect_holds: bool         # fixed before any run
    why: str

    def sim_params(self, plan: Plan) -> dict[str, Any]:
        """The plan's simulation with this regime's knob (same seed: all else equal)."""
        extra = {"null": {"variant_effects": False},
                 "mechanism": {"hidden_motifs": tuple(plan.hidden_motifs)}}.get(self.name, {})
        return {**plan.sim, **extra}

    @property
    def prefix(self) -> str:
        """Prefix of this regime's folders and condition names ('' for the main cohort)."""
        return "" if self.name == "main" else f"{self.name}_"


REGIMES: tuple[Regime, ...] = (
    Regime("main", False,
           "every motif type sits intact in the reference sequences, so the grammar can be "
           "learned from variation between loci and personal genomes should add little "
           "(what single-seed runs of earlier versions suggested)"),
    Regime("null", False,
           "negative control: the simulator with every variant effect set to 0, all else "
           "equal; the rule must not hold and the QTL-r gain's CI must cover 0, or the rule "
           "or the pipeline is wrong"),
    Regime("mechanism", True,
           "positive control, the paper's mechanism: every site of the hidden activator type "
           "(SimParams.hidden_motifs) is carried broken in the reference, by the same base "
           "at the same position, and restored by common alleles, so only "
           "personal genomes show sequences with its activity"),
)


PLANS: dict[str, Plan] = {
    # plumbing only: tiny cohorts and model, a few steps (tests; ~2-3 min on 2 cores)
    "quick": Plan(
        name="quick",
        sim=dict(n_individuals=6, replicates=1, n_loci=120, input_length=200, max_jitter=20,
                 output_length=100, shard_loci=32, mpra_max=120),
        model="tiny", subsample_n=(2,), draws=1, ensemble=None, max_epochs=1,
        steps_per_epoch=3, patience=2, batch_size=32, seeds=2,
        notes="smoke run: numbers are not meaningful"),
    # the default: 3 cohorts x 2 conditions x 3 training seeds + 2 single subsampled runs,
    # sized for <= 20 min on 2 quiet cores, two trainings side by side (train_workers).
    # Measured on earlier versions of this simulation (personalized model, folds 0-1 held out):
    # - CLIPNET's head dropout (0.3 on the quantity output itself) and lambda 1/500 learned no
    #   variant effect in 2,560 steps (QTL r -0.25, predicted genotype effects ~0.5 % where the
    #   truth is ~30 %); dropout 0 and lambda 0.03 gave QTL r 0.17-0.36, tiQTL r vs truth ~0.5.
    # - 2,000 loci rather than 1,000 doubles the QTLs scored (109 -> 237) for ~20 s more.
    # - smaller batches learn more per example: 64 x 960 steps reached val loss 0.55 where
    #   128 x 480 reached 0.87 at about the same cost; per-step overhead dominates on CPU.
    # Measured this version, on the mechanism cohort, one seed per condition (README "The demo"):
    # - the dilated stack costs most of a step on CPU (2 threads: 80 ms with 6 dilated blocks,
    #   50 with 2, 38 with none) and buys nothing visible at these lengths: with none, 960
    #   steps reached profile r 0.65 (6 blocks, 960 steps: 0.61). The network here keeps
    #   CLIPNET's two convolutions and heads and drops the dilated stack (`n_dilated` 0).
    # - the quantity-loss weight decides whether variant effects are learned at all: at
    #   lambda 0.03 the personalized network's QTL-r gain over the reference-trained one in the
    #   mechanism cohort was -0.06 and +0.04 in two runs, at lambda 0.1 +0.22 and +0.03.
    # - no jitter or RC augmentation overfits within two passes (train loss 0.35, validation
    #   1.03, profile r 0.07): augmentation stays on.
    # - each run is 8 epochs x 80 steps of 64 (two processes of one thread: ~40 s a model);
    #   validation loss is still falling at the end (0.77 at 640 steps, 0.61 at 960): what
    #   the 20-minute budget cannot buy.
    "default": Plan(
        name="default",
        sim=dict(n_individuals=20, replicates=4, n_loci=2000, input_length=500, max_jitter=100,
                 output_length=250, shard_loci=64, mpra_max=1500, depth=600.0),
        model={"conv_filters": (32, 64), "filters": 32, "n_dilated": 0, "dropout": 0.0},
        subsample_n=(2, 10), draws=1, ensemble=None, max_epochs=8,
        steps_per_epoch=80, patience=8, batch_size=64, validation_steps=12,
        learning_rate=5e-3, loss_lambda=0.1, seeds=3,
        notes="each compared condition is an ensemble of 3 training seeds (replicate 1 of the "
              "fold scheme: validation fold 1, test fold 0); shortened schedule: 8 epochs x "
              "80 steps of 64 examples for every model, 12 validation batches per epoch, the "
              "epoch with the lowest validation loss kept; CLIPNET's network without its dilated "
              "stack or head dropout, quantity-loss weight 0.1; subsampled runs are single runs "
              "(one seed, one draw)"),
    # the paper's schedule: 9-fold ensembles, 5 draws per n, CLIPNET-sized model (GPU)
    "full": Plan(
        name="full",
        sim=dict(n_individuals=58, replicates=9, n_loci=5000, input_length=1000, max_jitter=250,
                 output_length=500, shard_loci=128, mpra_max=5000),
        model="clipnet", subsample_n=(5, 10, 15, 20, 30), draws=5,
        ensemble=tuple(range(1, 10)), max_epochs=200, steps_per_epoch=0, patience=10,
        batch_size=256, quantity_scale=1.0, seeds=3,
        notes="paper-sized: 9-fold ensembles (x 3 training seeds for the compared conditions), "
              "5 draws per n; needs a GPU"),
}


@dataclass(frozen=True)
class Run:
    """One compared condition: an ensemble of `len(seeds)` trained models (one per seed)."""

    name: str
    kind: str               # personalized | reference | subsampled
    n_libraries: int
    masked: bool = False
    subsample: dict | None = None
    draw: int = 0
    regime: str = "main"
    seeds: tuple[int, ...] = (0,)

    @property
    def single(self) -> bool:
        """One trained model (no replicate): marked as such in tables and figures."""
        return len(self.seeds) == 1


def train_seeds(plan: Plan, train_seed: int) -> tuple[int, ...]:
    """The training seeds of a condition: disjoint sets for --train-seed 0, 1, 2, ..."""
    return tuple(train_seed * plan.seeds + k for k in range(plan.seeds))


def plan_runs(plan: Plan, n_libraries: int, n_individuals: int, train_seed: int = 0,
              regimes: tuple[Regime, ...] = REGIMES) -> list[Run]:
    """Personalized and reference-trained ensembles in every regime, then the main cohort's
    subsampled single runs."""
    seeds = train_seeds(plan, train_seed)
    runs = []
    for g in regimes:
        runs += [Run(f"{g.prefix}personalized", "personalized", n_libraries, regime=g.name,
                     seeds=seeds),
                 Run(f"{g.prefix}reference", "reference", n_libraries, masked=True,
                     regime=g.name, seeds=seeds)]
    for n in plan.subsample_n:
        if n > n_individuals:      # a draw never holds two isogenic replicates
            continue
        for r in range(plan.draws):
            runs.append(Run(f"n{n}_draw{r}", "subsampled", n,
                            subsample={"n": n, "draws": 1, "seed": 0, "draw": r}, draw=r,
                            seeds=seeds[:1]))
    return runs


def model_dir(out: Path, run: Run, seed: int) -> Path:
    return out / "models" / run.name / f"seed{seed}"


def train_config(plan: Plan, run: Run, store: str, out: Path, seed: int):
    from trainer.config import TrainConfig

    return TrainConfig(
        store=store, output=str(model_dir(out, run, seed)), replicate=1,
        ensemble=list(plan.ensemble) if plan.ensemble else None, subsample=run.subsample,
        masked=run.masked, model=plan.model, quantity_scale=plan.quantity_scale, rpm=plan.rpm,
        loss_lambda=plan.loss_lambda,
        max_epochs=plan.max_epochs,
        steps_per_epoch=plan.steps_per_epoch or None, patience=plan.patience,
        batch_size=plan.batch_size, validation_steps=plan.validation_steps,
        learning_rate=plan.learning_rate, jitter=plan.jitter, rc=plan.rc, seed=seed,
        tensorboard=False, extra={"demo_run": run.name, "demo_plan": plan.name,
                                  "demo_regime": run.regime})
