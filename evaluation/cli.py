"""`clipstore evaluate ...` and `clipstore score`: the benchmarks from the command line.

    clipstore evaluate crossloci STORE --replicate 1=rep1.keras ... --ensemble rep1.keras ... -o out/
    clipstore evaluate qtl STORE QTLS.tsv --replicate 1=rep1.keras ... --ensemble ... -o out/
    clipstore evaluate mpra MPRA.tsv --model personal=a.keras,b.keras --model ref=c.keras -o out/
    clipstore evaluate mpra MPRA.tsv --effects effects.tsv -o out/     # any tool's predictions
    clipstore evaluate mpra emvars.tsv --fasta hg19.fa --model m=motif  # reporters from coordinates
    clipstore evaluate crossloci STORE --predictions preds.npz          # (layouts: docs/evaluation.md)
    clipstore evaluate qtl STORE QTLS.tsv --predictions pred_l2.tsv
    clipstore evaluate subsampling runs.csv --metric auprc --reference 0.3 -o out/
    clipstore evaluate report out/                                      # out/report.md + .html
    clipstore score SNPS.vcf.gz --fasta hg38.fa --model m.keras -o ranked.tsv

Models load through the installed model loader (`evaluation.predictor.load_model`; several paths = an ensemble, reverse-
complement averaging on unless --no-rc); a path may be a .keras file, a run folder or a
bucket URL; `motif[:INPUT[:OUTPUT]]` names the model-free motif baseline. Arguments, files
and model paths are checked before TensorFlow loads. Each command writes its numbers (JSON/CSV) and
figures (PNG + SVG + data) into the output folder, ready for `evaluate report`.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from clipstore.errors import InputError

from .layouts import FORMATS as _FORMATS


def _quiet() -> bool:
    from clipstore.cliutil import is_quiet

    return is_quiet()


def _load(paths: list[str], rc: bool, batch_size: int = 256):
    """Model paths -> one Predictor (several = ensemble). `motif[:INPUT[:OUTPUT]]` names the
    model-free motif baseline (evaluation/baseline.py) and needs no TensorFlow."""
    from .baseline import from_spec
    from .predictor import ensemble

    base = [from_spec(p) for p in paths]
    if all(b is not None for b in base):
        return base[0] if len(base) == 1 else ensemble(base)
    if any(b is not None for b in base):
        raise click.UsageError("an ensemble mixes model files and the motif baseline; give one kind")
    _check_model_paths(paths)
    from clipstore.tfquiet import import_tensorflow
    import_tensorflow()
    from .predictor import load_model

    return load_model(paths if len(paths) > 1 else paths[0], rc_average=rc, batch_size=batch_size)


def _fold_specs(replicates: tuple[str, ...], ensemble: tuple[str, ...]) -> dict[int, list[str]]:
    """--replicate K=PATH and --ensemble PATH... -> {fold: paths}, checked before anything loads."""
    specs: dict[int, list[str]] = {}
    for spec in replicates:
        k, _, path = spec.partition("=")
        if not k.isdigit() or not path or not 1 <= int(k) <= 9:
            raise click.BadParameter(f"{spec!r}: expected K=PATH with K in 1..9", param_hint="--replicate")
        specs[int(k)] = [path]
    if ensemble:
        specs[0] = list(ensemble)
    if not specs:
        raise click.UsageError("give --ensemble and/or --replicate K=PATH")
    for paths in specs.values():
        _check_model_paths(paths)
    return specs


def _check_model_paths(paths: list[str]) -> None:
    """Every local model path exists (or names a baseline), checked before TensorFlow loads."""
    from .baseline import from_spec

    for p in paths:
        if from_spec(p) is None and "://" not in p and not Path(p).exists():
            raise InputError("model not found", file=p,
                             hint="give a .keras file, a run folder, a bucket URL, or "
                                  "`motif[:INPUT[:OUTPUT]]` for the motif baseline")


def _fold_models(replicates: tuple[str, ...], ensemble: tuple[str, ...], rc: bool) -> dict:
    """--replicate K=PATH and --ensemble PATH... -> {fold: Predictor} (0 = ensemble)."""
    return {k: _load(paths, rc) for k, paths in _fold_specs(replicates, ensemble).items()}


_rc = click.option("--rc/--no-rc", default=True, show_default=True,
                   help="Average predictions over both strands (reverse complement).")
_out = click.option("-o", "--out", "out", type=click.Path(file_okay=False), default="evaluation_out",
                    show_default=True, help="Output folder.")
_fold_opts = [click.option("--replicate", multiple=True, metavar="K=PATH",
                           help="Replicate model k (validated on fold k); repeatable."),
              click.option("--ensemble", multiple=True, metavar="PATH",
                           help="Ensemble member (repeat for each); scores fold 0.")]


def _with(opts):
    def deco(f):
        for o in reversed(opts):
            f = o(f)
        return f
    return deco


@click.group()
def evaluate() -> None:
    """Benchmarks: cross-loci accuracy, initiation QTLs, MPRA, subsampling, reports."""


_predictions = lambda what: click.option(
    "--predictions", type=click.Path(exists=True, dir_okay=False),
    help=f"Predictions from a file instead of models ({what}; layouts in docs/evaluation.md).")


def _one_source(replicate, ensemble, predictions) -> None:
    if predictions and (replicate or ensemble):
        raise click.UsageError("give models (--ensemble/--replicate) or --predictions, not both")


def _check_store(store: str) -> None:
    """Open the store before any model loads: a wrong path fails in a second, not after
    TensorFlow has started."""
    from clipstore import schema

    if "://" not in store and not Path(store).exists():
        raise InputError("store not found", file=store, hint="build one with `clipstore build`")
    schema.open_store(store)


def _models_or_file(replicate, ensemble, rc, predictions):
    _one_source(replicate, ensemble, predictions)
    return predictions if predictions else _fold_models(replicate, ensemble, rc)


@evaluate.command()
@click.argument("store")
@_with(_fold_opts)
@_predictions(".npz keyed by locus_id and library_id: profile (N, 2*out) [, quantity, model]")
@_rc
@click.option("--masked", is_flag=True, help="Feed the reference genome instead of personal ones.")
@click.option("--rpm", is_flag=True, help="Compare to reads-per-million tracks.")
@_out
def crossloci(store, replicate, ensemble, predictions, rc, masked, rpm, out) -> None:
    """Cross-locus metric suite per model on its held-out fold.

    Models: MODEL paths (.keras, run folder, bucket URL) or `motif[:INPUT[:OUTPUT]]`, the
    model-free motif baseline. Or --predictions FILE from any tool."""
    _one_source(replicate, ensemble, predictions)
    if not predictions:
        _fold_specs(replicate, ensemble)
    _check_store(store)
    models = _models_or_file(replicate, ensemble, rc, predictions)
    from . import crossloci as cl

    kw = {"rpm": rpm} if predictions else {"masked": masked, "rpm": rpm}
    table = cl.run(store, models, out, **kw)
    click.echo(table.drop(columns="note").to_string(index=False))
    for model, note in zip(table["model"], table["note"]):
        if note:
            click.echo(f"{model}: {note}", err=True)


@evaluate.command()
@click.argument("store")
@click.argument("qtls", type=click.Path(exists=True, dir_okay=False))
@_with(_fold_opts)
@_predictions("TSV/.npz keyed by variant_id: pred_l2 [, pred_log_quantity_change, "
              "pred_directionality_change, kind]")
@_rc
@click.option("--vcf", type=click.Path(exists=True, dir_okay=False), help="Take genotypes from this VCF.")
@click.option("--no-effect-tol", default=1e-6, show_default=True,
              help="A QTL is predicted as 'no effect' when its predicted L2 score is at or below this.")
@_out
def qtl(store, qtls, replicate, ensemble, predictions, rc, vcf, no_effect_tol, out) -> None:
    """Initiation QTLs: predicted vs observed L2 genotype-group scores (leakage-free).

    QTLS: the simulator's qtls.tsv or a VCF-like hQTL table (Chr Pos ID Ref Alt Beta ...).
    Only SNPs inside each model's input window are scored; the rest are counted as left out."""
    _one_source(replicate, ensemble, predictions)
    if not predictions:
        _fold_specs(replicate, ensemble)
    _check_store(store)
    models = _models_or_file(replicate, ensemble, rc, predictions)
    from . import qtl as q

    _, summary = q.run(store, qtls, models, out, vcf=vcf, no_effect_tol=no_effect_tol)
    click.echo(json.dumps({k: v for k, v in summary.items() if not isinstance(v, dict)}))
    left = summary["left_out"]
    if any(v for v in left.values()):
        click.echo(f"left out: {json.dumps(left)}", err=True)
    if summary["n"] == 0:
        raise click.UsageError(q.why_nothing_scored(left, [] if predictions else sorted(models)))


def _mpra_help() -> str:
    from .layouts import mpra_format_help

    return mpra_format_help()


@evaluate.command(epilog="Table layouts (--format, columns in any case): " + _mpra_help())
@click.argument("table", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(list(_FORMATS)),
              default="auto", show_default=True, help="Layout of TABLE (see below).")
@click.option("--model", "model_specs", multiple=True, metavar="NAME=PATH[,PATH...]",
              help="A model (several paths = ensemble; `motif[:IN[:OUT]]` = motif baseline) to "
                   "predict the reporters; repeatable.")
@click.option("--effects", "--predictions", "effects", type=click.Path(exists=True, dir_okay=False),
              help="Precomputed log2(ref/alt) effects of any tool (TSV/.npz): variant_id + one "
                   "column per model.")
@click.option("--fasta", type=click.Path(exists=True, dir_okay=False),
              help="Reference FASTA to build reporters from coordinates (the 200 bp around each "
                   "SNP, REF checked) when TABLE has no oligos.")
@click.option("--oligo-length", default=200, show_default=True, help="Oligo cut around each SNP.")
@click.option("--test-fold-only", is_flag=True, help="Only variants on test-fold chromosomes.")
@click.option("--n-boot", default=1000, show_default=True)
@click.option("--seed", default=0, show_default=True)
@_rc
@_out
def mpra(table, fmt, model_specs, effects, fasta, oligo_length, test_fold_only, n_boot, seed, rc,
         out) -> None:
    """MPRA: auPRC of emVars, bootstrap delta auPRC, agreement with observed log2FC."""
    if not model_specs and not effects:
        raise click.UsageError("give --model and/or --effects")
    specs = []
    for spec in model_specs:
        name, _, paths = spec.partition("=")
        if not name or not paths:
            raise click.BadParameter(f"{spec!r}: expected NAME=PATH[,PATH...]", param_hint="--model")
        specs.append((name, paths.split(",")))
        _check_model_paths(paths.split(","))
    import pandas as pd

    from . import mpra as m
    from . import mpra_tables as mt
    from .external import align, model_columns, read_table

    t = mt.load(table, fmt)
    if specs and not {"oligo_ref", "oligo_alt"} <= set(t.columns):
        if not fasta:
            raise click.UsageError(f"{table} has no oligo sequences: give --fasta to build each "
                                   "allele's reporter from its coordinates (needs ref and alt "
                                   "columns), or score another tool's --effects")
        t, skipped = mt.with_oligos(t, fasta, oligo_length=oligo_length)
        if any(skipped.values()):
            click.echo(f"left out building reporters: {skipped}", err=True)
        if not len(t):
            raise InputError("no variant of the table could be built into a reporter", file=table)
    eff: dict = {}
    if effects:
        e = align(read_table(effects), t["variant_id"], effects, what="variant of the MPRA table")
        eff.update(model_columns(e.reset_index(), effects))
    for name, paths in specs:
        eff[name] = _load(paths, rc)
    res = m.run(t, eff, out, test_fold_only=test_fold_only, n_boot=n_boot, seed=seed)
    rows = [{"model": k, **{kk: vv for kk, vv in v.items() if kk not in ("precision", "recall")}}
            for k, v in res["models"].items()]
    click.echo(f"{res['n_variants']} variants: {res['n_emvar']} emVars, "
               f"{res['n_active_non_emvar']} active non-emVars", err=True)
    click.echo(pd.DataFrame(rows).to_string(index=False))


@evaluate.command()
@click.argument("runs", type=click.Path(exists=True, dir_okay=False))
@click.option("--metric", required=True, help="Column of RUNS to plot (e.g. auprc).")
@click.option("--x", "x", default="n_libraries", show_default=True, help="Column with the library count.")
@click.option("--reference", type=float, help="The reference-trained model's value (dashed line).")
@click.option("--personalized", type=float, help="The full personalized model's value (dashed line).")
@_out
def subsampling(runs, metric, x, reference, personalized, out) -> None:
    """Metric vs number of training libraries from a CSV/TSV of runs (mean, 95% CI)."""
    import pandas as pd

    from . import subsampling as sub

    sep = "\t" if runs.endswith((".tsv", ".txt")) else ","
    table = pd.read_csv(runs, sep=sep)
    for col in (x, metric):
        if col not in table:
            raise InputError(f"no column {col!r}", file=runs, hint=f"columns: {', '.join(table.columns)}")
    curve = sub.run(table, out, metric=metric, x=x, y=metric, reference=reference,
                    personalized=personalized)
    click.echo(curve.to_string(index=False))


@evaluate.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--out", "stem", default=None, help="Report path without suffix (default FOLDER/report).")
@click.option("--title", default="clipstore evaluation", show_default=True)
def report(folder, stem, title) -> None:
    """Gather the figures and tables in FOLDER into report.md and report.html."""
    from .report import collect, write_report

    paths = write_report(stem or Path(folder) / "report", collect(folder), title=title)
    click.echo("\n".join(str(p) for p in paths))


def _snp_help() -> str:
    from .layouts import snp_columns_help

    return snp_columns_help()


@click.command(epilog="SNPS: a VCF/BCF (with its ##fileformat line; plain, gzipped or bgzipped) or "
                      "a tab-separated table with a header, column names in any case - " + _snp_help())
@click.argument("snps", type=click.Path(exists=True, dir_okay=False))
@click.option("--fasta", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Reference FASTA (plain or bgzipped, indexed).")
@click.option("--model", "models", multiple=True, required=True, metavar="PATH",
              help="Model file; repeat for an ensemble; `motif[:IN[:OUT]]` = motif baseline.")
@_rc
@click.option("--batch-size", default=128, show_default=True, help="SNPs per batch.")
@click.option("--rank-by", type=click.Choice(["log2_quantity_ratio", "profile_l2", "strand_balance_change"]),
              default="log2_quantity_ratio", show_default=True)
@click.option("-o", "--out", default="-", show_default=True, help="Ranked TSV ('-' = stdout).")
def score(snps, fasta, models, rc, batch_size, rank_by, out) -> None:
    """Score and rank SNPs (VCF or TSV) by predicted effect on initiation."""
    from .score import score_snps

    pred = _load(list(models), rc, batch_size=2 * batch_size)
    ranked = score_snps(snps, fasta, pred, batch_size=batch_size, rank_by=rank_by,
                        progress=not _quiet() and out != "-")
    text = ranked.to_csv(sep="\t", index=False, float_format="%.6g")
    if out == "-":
        click.echo(text, nl=False)
    else:
        Path(out).write_text(text)
        skipped = ranked.attrs.get("skipped", {})
        click.echo(f"{len(ranked)} SNPs scored -> {out}" +
                   (f" (left out: {skipped})" if any(skipped.values()) else ""), err=True)
