"""`clipstore train` and `clipstore predict`."""
from __future__ import annotations

import json

import click

from clipstore.cliutil import is_quiet
from clipstore.paths import is_url


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a config key (YAML value), e.g. --set max_epochs=3 "
                   "--set subsample.n=10 (repeatable).")
@click.option("--store", default=None, help="Override the config's store path/URL.")
@click.option("-o", "--output", default=None, help="Override the config's output folder/URL.")
@click.option("--fresh", is_flag=True,
              help="Discard the output folder's checkpoint (e.g. a damaged one) and train again "
                   "from epoch 0.")
def train(config, sets, store, output, fresh):
    """Train the model(s) a CONFIG (YAML) describes: one replicate, a 9-fold ensemble
    (ensemble: all), a subsampling grid (subsample: {n: [5, 10], draws: 5}), masked or
    fine-tuning runs. Rerun the same command to resume a killed run from its last epoch.
    """
    from .config import load_train_config, parse_override
    from .preflight import check_train

    overrides = dict(parse_override(s) for s in sets)
    if store:
        overrides["store"] = _cwd_path(store)
    if output:
        overrides["output"] = _cwd_path(output)
    for key in ("store", "output", "fine_tune_from"):   # --set paths are relative to the cwd
        if isinstance(overrides.get(key), str):
            overrides[key] = _cwd_path(overrides[key])
    cfg = load_train_config(config, **overrides)
    check_train(cfg)            # bad paths fail now, not after TensorFlow's import
    _import_tensorflow()
    from .train import train_all

    results = train_all(cfg, quiet=is_quiet(), fresh=fresh)
    for r in results:
        click.echo(json.dumps({"model": r.model_path, "manifest": r.manifest_path,
                               "epochs": r.epochs_run, "best_epoch": r.best_epoch,
                               "best_val_loss": r.metrics.get("best_val_loss")}))


def _import_tensorflow() -> None:
    from clipstore.tfquiet import import_tensorflow

    if not is_quiet():
        click.echo("loading TensorFlow ...", err=True)
    import_tensorflow()


def _cwd_path(p: str) -> str:
    import os

    return p if is_url(p) else os.path.abspath(p)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("models", nargs=-1, required=True)
@click.option("--store", default=None, help="Predict every (individual, locus) of this store.")
@click.option("--bed", default=None,
              help="BED of intervals (windows centred on each); needs --fasta.")
@click.option("--fasta", default=None,
              help="Reference FASTA (with --bed), or a FASTA of sequences to predict.")
@click.option("--encoding", type=click.Choice(["iupac", "haplotypes"]), default="iupac",
              show_default=True, help="FASTA of sequences: IUPAC two-hot, or record pairs "
                                      "(two haplotypes per sequence).")
@click.option("--crop", is_flag=True,
              help="FASTA of sequences: predict the centre of records longer than the model's "
                   "input (without it, longer records are an error).")
@click.option("--masked", is_flag=True, help="Store: predict the reference sequence.")
@click.option("--individual", "individuals", multiple=True, help="Store: only these individuals.")
@click.option("--no-rc", is_flag=True, help="Do not average with the reverse complement.")
@click.option("--batch-size", type=int, default=256, show_default=True)
@click.option("-o", "--output", required=True, help="Output .npz, or a Zarr path/URL.")
def predict(models, store, bed, fasta, encoding, crop, masked, individuals, no_rc, batch_size,
            output):
    """Predict profiles and quantities with MODELS (one .keras file / run folder, or several:
    ensemble mean) for a store, a BED + FASTA, or a FASTA of sequences."""
    from .preflight import check_predict

    check_predict(models, store, bed, fasta, output)   # before TensorFlow's import
    _import_tensorflow()
    from .predict import (encode_sequences, load_predictor, predict_arrays, predict_store,
                          read_fasta, save_predictions, sequences_from_bed)

    say = (lambda msg: None) if is_quiet() else (lambda msg: click.echo(msg, err=True))
    say(f"loading {', '.join(models)} ...")
    pred = load_predictor(list(models), rc_average=not no_rc, batch_size=batch_size)
    say(f"{pred!r}; predicting ...")
    if store:
        ds = predict_store(pred, store, masked=masked,
                           individuals=list(individuals) or None, batch_size=batch_size)
    elif bed:
        names, x = sequences_from_bed(bed, fasta, pred.input_length)
        ds = predict_arrays(pred, names, x)
    else:
        names, x = encode_sequences(read_fasta(fasta), pred.input_length, encoding=encoding,
                                    source=fasta, crop=crop)
        ds = predict_arrays(pred, names, x)
    path = save_predictions(ds, output)
    if not is_quiet():
        click.echo(f"wrote {path}: " + ", ".join(f"{k} {tuple(v.shape)}"
                                                  for k, v in ds.data_vars.items()))
