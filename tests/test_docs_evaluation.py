"""docs/evaluation.md is code: its `## Worked example` runs as written on the real files.

Like the README's test: in a fresh folder beside a `shared/` (a link to the real one), each
file shown under `<!-- example: NAME -->` is written, then every bash block of the section
runs in order with `set -euo pipefail`, through the `clipstore` of this checkout."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import real_data

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "evaluation.md"


def worked_example(text: str) -> str:
    m = re.search(r"^## Worked example\s*$", text, re.M)
    assert m, "docs/evaluation.md has no '## Worked example' section"
    nxt = re.compile(r"^## ", re.M).search(text, m.end())
    return text[m.end(): nxt.start() if nxt else len(text)]


def test_worked_example_opens_the_doc():
    first = re.search(r"^## .*$", DOC.read_text(), re.M).group(0)
    assert first == "## Worked example"


def test_worked_example_runs_as_written(tmp_path):
    shared = real_data("qtl").parents[2]               # .../shared/data/real/qtl -> .../shared
    (tmp_path / "shared").symlink_to(shared)
    work = tmp_path / "fresh"
    work.mkdir()
    sec = worked_example(DOC.read_text())
    files = re.findall(r"<!--\s*example:\s*(\S+)\s*-->\s*```[^\n]*\n(.*?)\n```", sec, re.S)
    assert files, "the worked example shows no files"
    for name, body in files:
        (work / name).write_text(body + "\n")
    blocks = re.findall(r"```bash\n(.*?)\n```", sec, re.S)
    assert len(blocks) >= 2
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    for i, block in enumerate(blocks):
        r = subprocess.run(["bash", "-c", "set -euo pipefail\n" + block], cwd=work, env=env,
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"bash block {i + 1} failed:\n{block}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"
    ranked = (work / "chr20_qtls.tsv").read_text().splitlines()
    assert len(ranked) == 60 and ranked[0].startswith("variant_id\tchrom\tpos")
    assert "tool_a" in (work / "mpra_out" / "mpra_models.json").read_text()
    assert (work / "mpra_out" / "mpra_delta_tool_a_vs_tool_b.png").exists()
