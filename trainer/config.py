"""Training configuration: one YAML file (safe-loaded) per experiment, so experiments are configs,
not code edits. Every key can be overridden (`clipstore train cfg.yaml --set max_epochs=3`).

    store: store.zarr            # local path or s3:// / gs:// / memory:// URL
    output: models/rep1          # model dir (local or bucket URL)
    replicate: 1                 # fold k validates, fold 0 is held out (ignored by `ensemble`)
    ensemble: null               # e.g. [1, 2, ..., 9] or "all": one model per replicate fold
    subsample: null              # {n: 10 or [5, 10], draws: 5, seed: 0}: n libraries x draws
    libraries: null              # explicit library ids (else all)
    masked: false                # train on the reference genome (variant masking)
    fine_tune_from: null         # saved .keras model: warm-up epoch at warmup_lr, then as usual
    model: clipnet               # size preset (clipnet, small, tiny) or a dict of build_model knobs
    quantity_scale: 1            # multiply the quantity head's output; "auto" = mean training
                                 # quantity (short runs: see trainer.model.build_model)
    input_length: null           # null = the store's
    output_length: null          # per strand; null = the store's
    max_epochs: 200
    steps_per_epoch: null        # null = one pass over the training selection
    patience: 10
    batch_size: 256
    learning_rate: 0.001
    seed: 0

Relative paths resolve against the YAML file's folder.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from clipstore.configcheck import Rule, problems_of, raise_problems
from clipstore.errors import InputError
from clipstore.paths import resolve

ALL_REPLICATES = list(range(1, 10))


@dataclass(frozen=True)
class TrainConfig:
    """One training experiment (a single run, an ensemble, or a subsampling grid)."""

    store: str
    output: str
    storage_options: dict | None = None     # fsspec options for the store (never saved)
    replicate: int = 1
    ensemble: list[int] | None = None
    subsample: dict | None = None
    libraries: list[str] | None = None
    masked: bool = False
    fine_tune_from: str | None = None
    warmup_epochs: int = 1
    warmup_lr: float = 1e-4
    model: str | dict = "clipnet"
    quantity_scale: float | str = 1.0       # number, or "auto" (mean training quantity)
    input_length: int | None = None
    output_length: int | None = None
    jitter: int | None = None               # null = the store's max_jitter
    rc: bool = True
    rpm: bool = False
    loss: str = "clipnet"                   # clipnet | multiscale
    loss_lambda: float = 1 / 500
    loss_epsilon: float = 1.0
    profile_loss: str = "cosine"            # multiscale only: cosine | multinomial
    max_epochs: int = 200
    steps_per_epoch: int | None = None
    validation_steps: int | None = None
    patience: int = 10
    batch_size: int = 256
    learning_rate: float = 1e-3
    seed: int = 0
    deterministic: bool = False             # also force deterministic TF kernels (slower)
    mixed_precision: str = "auto"           # auto (on when a GPU is present) | on | off
    tensorboard: bool = True
    extra: dict = field(default_factory=dict)  # free-form notes copied to the manifest

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for manifests (storage options dropped: they may hold credentials)."""
        d = dataclasses.asdict(self)
        d.pop("storage_options", None)
        return d


_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def parse_override(text: str) -> tuple[str, Any]:
    """`key=value` from the command line; the value is parsed as YAML (`3`, `[1, 2]`, `null`)."""
    if "=" not in text:
        raise InputError(f"override {text!r} is not key=value", hint="e.g. --set max_epochs=3")
    key, value = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise InputError(f"override {text!r}: value is not valid YAML ({e})")


def _set_dotted(raw: dict, key: str, value: Any) -> None:
    """`subsample.n=5` sets raw["subsample"]["n"]."""
    head, _, rest = key.partition(".")
    if not rest:
        raw[head] = value
        return
    sub = raw.get(head)
    if sub is None:
        sub = raw[head] = {}
    if not isinstance(sub, dict):
        raise InputError(f"cannot set {key!r}: {head!r} is not a mapping")
    _set_dotted(sub, rest, value)


def config_from_dict(raw: dict[str, Any], *, source: str = "<config>",
                     base: Path | None = None) -> TrainConfig:
    """Check and convert a mapping into a TrainConfig; every problem is reported at once
    (`clipstore.configcheck`, the layer the build config uses too)."""
    problems, ok = problems_of(raw, RULES)
    raw = dict(raw)
    for key in ("store", "output", "fine_tune_from"):
        if key in ok and raw.get(key) is not None:
            raw[key] = resolve(str(raw[key]), base)
    ens = raw.get("ensemble")
    if "ensemble" in ok and ens is not None:
        if ens == "all" or ens is True:
            ens = list(ALL_REPLICATES)
        if not isinstance(ens, list) or not ens or any(
                not isinstance(k, int) or k not in ALL_REPLICATES for k in ens):
            problems.append(f"ensemble must be 'all' or a list of replicate folds 1..9, got "
                            f"{raw['ensemble']!r}")
        raw["ensemble"] = ens
    qs = raw.get("quantity_scale", 1.0)
    if "quantity_scale" in ok and ((isinstance(qs, str) and qs != "auto")
                                   or (not isinstance(qs, str) and qs <= 0)):
        problems.append(f"quantity_scale must be a positive number or 'auto', got {qs!r}")
    if "subsample" in ok and raw.get("subsample") is not None:
        try:
            raw["subsample"] = _check_subsample(raw["subsample"], source)
        except InputError as e:
            problems.append(e.what)
    model = raw.get("model", "clipnet")
    from .model import SIZES

    if "model" in ok and isinstance(model, str) and model not in SIZES:
        problems.append(f"unknown model size {model!r} (known: {sorted(SIZES)} or a mapping of "
                        "build_model knobs)")
    if {"input_length", "output_length"} <= ok and raw.get("input_length") is not None \
            and raw.get("output_length") is not None \
            and raw["output_length"] > raw["input_length"]:
        problems.append(f"output_length {raw['output_length']} must be <= input_length "
                        f"{raw['input_length']}")
    raise_problems(problems, source)
    return TrainConfig(**raw)


_N = type(None)
RULES: dict[str, Rule] = {
    "store": Rule((str,), required=True), "output": Rule((str,), required=True),
    "storage_options": Rule((dict, _N)), "replicate": Rule((int,), low=1, high=9),
    "ensemble": Rule((list, str, bool, _N)), "subsample": Rule((dict, _N)),
    "libraries": Rule((list, _N)), "masked": Rule((bool,)),
    "fine_tune_from": Rule((str, _N)), "warmup_epochs": Rule((int,), low=0),
    "warmup_lr": Rule((float,), positive=True), "model": Rule((str, dict)),
    "quantity_scale": Rule((float, str)), "input_length": Rule((int, _N), low=1),
    "output_length": Rule((int, _N), low=1), "jitter": Rule((int, _N), low=0),
    "rc": Rule((bool,)), "rpm": Rule((bool,)),
    "loss": Rule((str,), choices=("clipnet", "multiscale")),
    "loss_lambda": Rule((float,), low=0), "loss_epsilon": Rule((float,), positive=True),
    "profile_loss": Rule((str,), choices=("cosine", "multinomial")),
    "max_epochs": Rule((int,), low=1), "steps_per_epoch": Rule((int, _N), low=1),
    "validation_steps": Rule((int, _N), low=1), "patience": Rule((int,), low=0),
    "batch_size": Rule((int,), low=1), "learning_rate": Rule((float,), positive=True),
    "seed": Rule((int,)), "deterministic": Rule((bool,)),
    "mixed_precision": Rule((str,), choices=("auto", "on", "off")),
    "tensorboard": Rule((bool,)), "extra": Rule((dict,)),
}
assert set(RULES) == set(_FIELDS), "every TrainConfig field needs a rule"


def _check_subsample(sub: Any, source: str) -> dict:
    if not isinstance(sub, dict) or "n" not in sub:
        raise InputError("subsample needs at least n (libraries per draw)", file=source,
                         record="subsample", hint="e.g. subsample: {n: [5, 10], draws: 5, seed: 0}")
    extra = sorted(set(sub) - {"n", "draws", "seed", "draw"})
    if extra:
        raise InputError(f"unknown subsample option(s) {extra}", file=source, record="subsample",
                         hint="known: n, draws, seed, draw")
    n = sub["n"] if isinstance(sub["n"], list) else [sub["n"]]
    if not n or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in n):
        raise InputError(f"subsample.n must be positive integers, got {sub['n']!r}", file=source,
                         record="subsample")
    draws = sub.get("draws", 1)
    if not isinstance(draws, int) or draws < 1:
        raise InputError(f"subsample.draws must be >= 1, got {draws!r}", file=source,
                         record="subsample")
    return {"n": n if isinstance(sub["n"], list) else n[0], "draws": draws,
            "seed": int(sub.get("seed", 0)), **({"draw": int(sub["draw"])} if "draw" in sub else {})}


def load_train_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Read a training YAML (safe loader); `overrides` (dotted keys allowed, given as
    `subsample__n` or via a {"subsample.n": v} dict) win over the file. path=None builds from
    overrides alone."""
    raw: dict[str, Any] = {}
    source, base = "<overrides>", None
    if path is not None:
        path = Path(path)
        source, base = str(path), path.parent.resolve()
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise InputError("training config not found", file=source)
        except yaml.YAMLError as e:
            raise InputError(f"not valid YAML ({e})", file=source)
        if not isinstance(raw, dict):
            raise InputError("expected a mapping of options at the top level", file=source)
    for key, value in overrides.items():
        _set_dotted(raw, key.replace("__", "."), value)
    return config_from_dict(raw, source=source, base=base)
