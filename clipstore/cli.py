"""`clipstore` command line. Subcommands live next to the code they drive and load lazily,
so `clipstore --help` stays fast (TensorFlow is imported only by the commands that train).

Exit codes: 0 ok, 1 unexpected failure, 2 bad input (a one-paragraph message on stderr).
"""
from __future__ import annotations

import importlib
import logging
import os
import sys
from importlib.metadata import entry_points

import click

from .errors import InputError

# The library's own commands: name -> ("module:attribute" of a click.Command, one-line help shown
# without importing it). Packages above the library (trainer, evaluation, experiment) add theirs as
# entry points in the group PLUGINS (see pyproject.toml), the way pytest and dask find plug-ins, so
# the library never names the applications built on it.
CORE = {
    "simulate": ("clipstore.simulate.cli:simulate", "Write a seeded synthetic cohort in real file formats."),
    "build": ("clipstore.build_cli:build", "Turn FASTA + VCF + bigWigs + peaks into one Zarr store."),
    "info": ("clipstore.build_cli:info", "Summarise a store: dims, folds, skipped counts, size."),
    "validate": ("clipstore.build_cli:validate", "Re-check a store against its input files."),
    "folds": ("clipstore.folds_cli:folds", "Re-choose a store's folds (chromosomes, BED, blocks)."),
    "migrate": ("clipstore.migrate:command", "Rewrite an older store in the current layout (schema 5)."),
}
PLUGINS = "clipstore.commands"


def commands() -> dict[str, str]:
    """name -> "module:attribute" of every subcommand: the library's and the installed plug-ins'."""
    out = {name: target for name, (target, _) in CORE.items()}
    for ep in entry_points(group=PLUGINS):
        out.setdefault(ep.name, ep.value)
    return out


def _load(target: str) -> click.Command:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def _short_help(name: str, target: str) -> str:
    if name in CORE:
        return CORE[name][1]
    try:   # a plug-in's help comes from its command (its module imports no framework at top)
        return _load(target).get_short_help_str(limit=75)
    except Exception as e:   # a broken plug-in must not take `clipstore --help` down with it
        return f"(could not load {target}: {type(e).__name__})"


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(commands())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = commands().get(name)
        return _load(target) if target else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(n, _short_help(n, t)) for n, t in sorted(commands().items())])


OWN_LOGGERS = ("clipstore", "trainer", "evaluation")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="clipstore")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or info messages.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging (clipstore, trainer, evaluation).")
@click.pass_context
def cli(ctx: click.Context, quiet: bool, verbose: bool) -> None:
    """clipstore: personal-genome Zarr stores for sequence-to-function models.

    \b
    Typical flow:
      clipstore simulate sim/                 # or bring FASTA + VCF + bigWigs + peaks
      clipstore build sim/build.yaml -o store.zarr
      clipstore info store.zarr
      clipstore train train.yaml
      clipstore evaluate ...
    """
    ctx.ensure_object(dict)
    ctx.obj["quiet"] = quiet
    if not verbose:   # TensorFlow's C++ start-up chatter (oneDNN notes) is not for users
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    level = logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # numexpr (a blosc2 dependency, imported by pandas) announces its thread count at INFO
    logging.getLogger("numexpr").setLevel(logging.WARNING)
    if verbose:   # our packages only: botocore/gcsfs debug logs carry signed auth headers
        for name in OWN_LOGGERS:
            logging.getLogger(name).setLevel(logging.DEBUG)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, standalone_mode=False)
    except InputError as e:
        click.echo(f"error: {e.message()}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
