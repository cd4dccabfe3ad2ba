"""Checks that run before TensorFlow is imported: arguments and input files of `train` and
`predict`.

Why: importing TensorFlow takes 12-16 s on a laptop; a typo in a path must fail at once, not
after that wait. Only local paths are checked here (bucket URLs are checked when opened).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from clipstore.errors import InputError

from .config import TrainConfig
from .storage import is_remote


def _local(path: str) -> Path | None:
    return None if is_remote(path) else Path(str(path).removeprefix("file://"))


def check_store(path: str, what: str = "store") -> None:
    """A local store must be a folder holding Zarr metadata."""
    p = _local(path)
    if p is None:
        return
    if not p.exists():
        raise InputError(f"{what} not found", file=str(p),
                         hint="build one with `clipstore build`, or fix the path")
    if not p.is_dir() or not ((p / "zarr.json").exists() or (p / ".zgroup").exists()):
        raise InputError(f"{what} is not a Zarr store (no zarr.json in it)", file=str(p),
                         hint="give the folder that `clipstore build` wrote")


def check_model_path(path: str, what: str = "model") -> None:
    """A local model is a .keras/.h5 file, a run folder (model.keras), an experiment folder
    (experiment.json) or a folder of CLIPNET fold_*.h5 files."""
    p = _local(path)
    if p is None:
        return
    if not p.exists():
        raise InputError(f"{what} not found", file=str(p),
                         hint="give a .keras or .h5 file, a run folder holding model.keras, an "
                              "experiment folder, or a folder of CLIPNET fold_*.h5 files")
    if p.is_dir() and not any((p / n).exists() for n in ("model.keras", "experiment.json")) \
            and not any(p.glob("fold_*.h5")):
        raise InputError(f"{what} folder holds no model.keras, experiment.json or fold_*.h5",
                         file=str(p), hint="give the run folder that `clipstore train` wrote")
    if p.is_file() and p.suffix not in (".keras", ".h5", ".hdf5"):
        raise InputError(f"{what} file must end in .keras or .h5", file=str(p))


def check_file(path: str, what: str) -> None:
    p = _local(path)
    if p is not None and not p.is_file():
        raise InputError(f"{what} not found", file=str(p))


def check_train(cfg: TrainConfig) -> None:
    check_store(cfg.store)
    if cfg.fine_tune_from:
        check_model_path(cfg.fine_tune_from, "model to fine-tune (fine_tune_from)")


def check_predict(models: Sequence[str], store: str | None, bed: str | None,
                  fasta: str | None, output: str | None = None) -> None:
    sources = sum(bool(s) for s in (store, bed, fasta and not bed))
    if sources != 1:
        raise InputError("give exactly one input: --store, --bed with --fasta, or --fasta")
    if bed and not fasta:
        raise InputError("--bed needs --fasta (the reference genome)")
    for m in models:
        check_model_path(m)
    if store:
        check_store(store)
    if bed:
        check_file(bed, "BED file")
    if fasta:
        check_file(fasta, "FASTA")
    out = _local(output) if output else None
    if out is not None and not out.absolute().parent.is_dir():
        raise InputError("the output's folder does not exist", file=str(out),
                         hint="create it first, or write somewhere else")
