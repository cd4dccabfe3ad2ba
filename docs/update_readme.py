"""Regenerate the README's generated sections from the code and the results, so they never drift:

* `cli`   — `clipstore --help` and every command's `--help` (from clipstore/cli.py commands());
* `bench` — one row per bench/results/*.json (its figures, machine, date, commit);

The demo block is written by `python -m experiment.record` from finished demo runs.

Run: `.venv/bin/python docs/update_readme.py`.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def replace_section(text: str, name: str, body: str) -> str:
    """Swap what lies between `<!-- BEGIN name -->` and `<!-- END name -->`."""
    pat = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.S)
    if not pat.search(text):
        raise SystemExit(f"README.md has no <!-- BEGIN {name} --> ... <!-- END {name} --> markers")
    return pat.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(2), text)


def _capture_help(args: list[str]) -> str:
    from click.testing import CliRunner

    from clipstore.cli import cli
    res = CliRunner().invoke(cli, args + ["--help"], prog_name="clipstore", terminal_width=100)
    if res.exit_code != 0:
        raise SystemExit(f"`clipstore {' '.join(args)} --help` failed: {res.output}")
    return res.output.rstrip()


def cli_section() -> str:
    """`clipstore --help`, then one `### clipstore NAME` block per command (and one
    `#### clipstore NAME SUB` block per subcommand of a command group)."""
    from clipstore.cli import cli, commands
    parts = ["```text", "$ clipstore --help", _capture_help([]), "```", ""]
    for name in sorted(commands()):
        parts += [f"### `clipstore {name}`", "", "```text", f"$ clipstore {name} --help",
                  _capture_help([name]), "```", ""]
        cmd = cli.get_command(click.Context(cli), name)
        if isinstance(cmd, click.Group):
            for sub in sorted(cmd.commands):
                parts += [f"#### `clipstore {name} {sub}`", "", "```text",
                          f"$ clipstore {name} {sub} --help", _capture_help([name, sub]),
                          "```", ""]
    return "\n".join(parts)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


SOURCES = {"demo": "python -m experiment.record"}   # results not written by bench/NAME.py


def bench_section() -> str:
    """One small table per bench/results/NAME.json: every numeric or text figure it holds."""
    parts = []
    for p in sorted((ROOT / "bench" / "results").glob("*.json")):
        d = json.loads(p.read_text())
        meta = {k: d.pop(k, "") for k in ("machine", "date", "commit")}
        source = SOURCES.get(p.stem, f"bench/{p.stem}.py")
        parts += [f"**`{p.stem}`** (`{source}`; {meta['machine']}, "
                  f"{str(meta['date'])[:10]}, commit {str(meta['commit'])[:8]})", "",
                  "| figure | value |", "|---|---|"]
        parts += [f"| {k} | {_fmt(v)} |" for k, v in d.items()
                  if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
        parts.append("")
    return "\n".join(parts) or "(no results yet: run `make bench`)"


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    text = README.read_text()
    text = replace_section(text, "cli", cli_section())
    text = replace_section(text, "bench", bench_section())
    README.write_text(text)
    print(f"updated {README}")


if __name__ == "__main__":
    main()
