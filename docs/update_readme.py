"""Regenerate the README's generated sections from the code and the results, so they never drift:

* `cli`   — `clipstore --help` and every command's `--help` (from clipstore/cli.py commands());
* `bench` — one row per bench/results/*.json (its figures, machine, date, commit);
* `demo`  — the table and verdict of the last demo run (demo_out/results.json), if present.

Run: `.venv/bin/python docs/update_readme.py [--demo-dir demo_out]`.
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


def bench_section() -> str:
    """One small table per bench/results/NAME.json: every numeric or text figure it holds."""
    parts = []
    for p in sorted((ROOT / "bench" / "results").glob("*.json")):
        d = json.loads(p.read_text())
        meta = {k: d.pop(k, "") for k in ("machine", "date", "commit")}
        parts += [f"**`{p.stem}`** (`bench/{p.stem}.py`; {meta['machine']}, "
                  f"{str(meta['date'])[:10]}, commit {str(meta['commit'])[:8]})", "",
                  "| figure | value |", "|---|---|"]
        parts += [f"| {k} | {_fmt(v)} |" for k, v in d.items()
                  if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
        parts.append("")
    return "\n".join(parts) or "(no results yet: run `make bench`)"


def demo_section(demo_dir: Path) -> str | None:
    res = demo_dir / "results.json"
    if not res.exists():
        return None
    from clipstore.demo import summary_markdown
    return summary_markdown(json.loads(res.read_text()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo-dir", default=str(ROOT / "demo_out"))
    a = ap.parse_args()
    text = README.read_text()
    text = replace_section(text, "cli", cli_section())
    text = replace_section(text, "bench", bench_section())
    demo = demo_section(Path(a.demo_dir))
    if demo is not None:
        text = replace_section(text, "demo", demo)
    README.write_text(text)
    print(f"updated {README}")


if __name__ == "__main__":
    main()
