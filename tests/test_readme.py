"""The README is code: its quick start, its worked example (run here exactly as written, every
file and bash block, on the real hg19 chr22 files it describes) and its CLI reference must stay
true."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyBigWig
import pytest
import yaml
import zarr

from clipstore import layout, schema
from clipstore.cli import cli, commands
from tests.conftest import REAL, real_data

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def fenced_block(text: str, marker: str) -> str:
    """Body of the first fenced code block after the HTML comment `<!-- marker -->`."""
    m = re.search(rf"<!--\s*{re.escape(marker)}\s*-->\s*```[^\n]*\n(.*?)\n```", text, re.S)
    assert m, f"README has no fenced block after <!-- {marker} -->"
    return m.group(1)


def section(text: str, heading: str) -> str:
    """Text under a markdown heading line, up to the next heading of the same or higher level
    (lines inside fenced code blocks, e.g. YAML or shell comments, are not headings)."""
    m = re.search(rf"^(#+) {re.escape(heading)}\s*$", text, re.M)
    assert m, f"README has no heading {heading!r}"
    level = len(m.group(1))
    pos, fenced = m.end() + 1, False
    for line in text[m.end() + 1:].splitlines(keepends=True):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(rf"#{{1,{level}}} ", line):
            return text[m.end():pos]
        pos += len(line)
    return text[m.end():]


def test_quick_start_is_the_first_thing_and_exactly_two_commands():
    text = README.read_text()
    first = re.search(r"```[^\n]*\n(.*?)\n```", text, re.S).group(1)
    cmds = [ln.split("#")[0].strip() for ln in first.splitlines() if ln.split("#")[0].strip()]
    assert cmds == ["make demo", "make test"]
    assert text.index("make demo") < text.index("## ", text.index("Quick start"))


# --- the worked example --------------------------------------------------------------------

WORKED_EXAMPLE = "Worked example: a pilot on one chromosome slice, from files to variant effects"


def example_files(text: str) -> dict[str, str]:
    """{file name: body} of every fenced block under `<!-- example: NAME -->`."""
    return {m.group(1): m.group(2) + "\n" for m in re.finditer(
        r"<!--\s*example:\s*(\S+)\s*-->\s*```[^\n]*\n(.*?)\n```", text, re.S)}


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", text, re.S)


def run_worked_example(folder: Path) -> list[tuple[str, float]]:
    """Write the example files into `folder`, then run the worked example's bash blocks there
    in order, as a user would (each must exit 0). Returns (block, seconds) per block."""
    text = section(README.read_text(), WORKED_EXAMPLE)
    for name, body in example_files(text).items():
        (folder / name).write_text(body)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(ROOT)}
    times = []
    for block in bash_blocks(text):
        t0 = time.perf_counter()
        r = subprocess.run(["bash", "-c", "set -euo pipefail\n" + block], cwd=folder, env=env,
                           capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, (f"README block failed (exit {r.returncode}):\n{block}\n"
                                   f"--- stdout\n{r.stdout[-3000:]}\n--- stderr\n{r.stderr[-3000:]}")
        times.append((block, time.perf_counter() - t0))
    return times


@pytest.fixture(scope="module")
def worked_example():
    """The worked example run once in a fresh folder beside shared/ (its `../shared` paths)."""
    real_data("chr22_hg19")
    folder = Path(tempfile.mkdtemp(prefix="readme-example-", dir=REAL.parents[2]))
    try:
        times = run_worked_example(folder)
        yield folder, times
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_worked_example_shows_every_file_it_uses():
    text = section(README.read_text(), WORKED_EXAMPLE)
    files = example_files(text)
    assert {"prepare.py", "make_peaks.py", "build.yaml", "train.yaml", "held_out.py"} <= set(files)
    cmds = "\n".join(bash_blocks(text))
    for step in ("clipstore build", "clipstore info", "clipstore validate", "clipstore folds",
                 "clipstore train", "clipstore predict", "clipstore evaluate crossloci",
                 "clipstore score"):
        assert step in cmds, f"the worked example does not show `{step}`"
    for name in files:                       # every file shown is used by a shown command
        if name.endswith(".py"):
            assert f"python {name}" in cmds
    cfg = yaml.safe_load(files["build.yaml"])
    assert cfg["reference"] == "22_20-21M.fa" and "chr22" in str(cfg.get("contig_aliases"))


def test_readme_worked_example_runs_to_the_end_on_the_real_chr22_files(worked_example):
    folder, times = worked_example
    cfg = yaml.safe_load((folder / "build.yaml").read_text())
    root = schema.open_store(str(folder / "chr22.zarr"))
    info = schema.store_info(root)
    n = root["locus_id"].shape[0]
    assert n == 274 and set(root["chrom"][:]) == {"22"}          # the cCREs kept, contig "22"
    assert list(root["individual_id"][:]) == [lib["individual"] for lib in cfg["libraries"]]
    # folds re-chosen below the chromosome: every fold has loci, recorded in the store
    fold = root["fold"][:]
    assert set(fold.tolist()) == set(range(10))
    assert root.attrs[schema.ATTRS_KEY]["folds"]["scheme"] == "blocks"
    sig = root["signal"][:]
    assert (sig >= 0).all() and sig[..., 1].sum() > 0        # negative minus strand made positive
    # a locus's signal window (output + 2 x jitter around the centre) really holds the
    # bigWig's counts at its position (contig chr22 there)
    k = int(np.argmax(sig[0].sum(axis=(1, 2))))
    half = info.output_length // 2 + info.max_jitter
    c = int(root["centre"][k])
    s, e = c - half, c - half + info.output_length + 2 * info.max_jitter
    assert sig.shape[2] == e - s
    with pyBigWig.open(str(real_data("chr22_hg19", "mn.chr22.bw"))) as bw:
        mn = -np.nan_to_num(bw.values("chr22", s, e, numpy=True))
    np.testing.assert_allclose(sig[0, k, :, 1], mn)
    # genotypes from the VCF (contig "22") made it into the personal sequences
    het = (layout.sequence(zarr.open_group(str(folder / "chr22.zarr"), mode="r"))[:] == 1).any(-1)
    assert info.skipped["snps"] > 0 and het.any()
    assert info.skipped["indels"] > 0                         # skipped and counted, not fatal
    # trained, predicted the held-out loci, evaluated, scored the phased SNPs
    assert (folder / "models" / "chr22_rep1" / "model.keras").is_file()
    held = (folder / "held_out.bed").read_text().splitlines()
    assert len(held) == int((fold == 0).sum()) > 0
    pred = np.load(folder / "held_out.npz")
    assert pred["profile"].shape == (len(held), 500) and np.isfinite(pred["profile"]).all()
    cl = pd.read_csv(folder / "evaluation" / "crossloci.csv")
    row = cl[cl["model"] == "replicate_1"].iloc[0]
    assert int(row["fold"]) == 1 and int(row["n"]) == 3 * int((fold == 1).sum())
    assert np.isfinite(row["profile_r_median"])
    snps = pd.read_csv(folder / "snps.tsv", sep="\t")
    assert len(snps) == 1308                                 # the VCF's biallelic SNPs
    scores = pd.read_csv(folder / "snp_scores.tsv", sep="\t")
    assert 0 < len(scores) <= len(snps) and scores["profile_l2"].notna().all()
    assert list(scores["rank"]) == list(range(1, len(scores) + 1))
    print("worked example seconds per block:", [round(t, 1) for _, t in times],
          "total", round(sum(t for _, t in times), 1))


# --- CLI reference -------------------------------------------------------------------------

def _options_documented(cmd, body: str, where: str) -> None:
    import click

    for p in cmd.params:
        if isinstance(p, click.Option) and not p.hidden:
            longest = max(p.opts, key=len)
            assert longest in body, f"`{where}` option {longest} undocumented in the README"


def test_cli_reference_documents_every_command_and_option():
    import click

    ref = section(README.read_text(), "CLI reference")
    for name in commands():
        heading = f"### `clipstore {name}`"
        assert heading in ref, f"README's CLI reference lacks {heading}"
        body = ref.split(heading, 1)[1].split("\n### ", 1)[0]
        cmd = cli.get_command(click.Context(cli), name)
        _options_documented(cmd, body.split("\n#### ", 1)[0], f"clipstore {name}")
        for sub, subcmd in getattr(cmd, "commands", {}).items():
            h = f"#### `clipstore {name} {sub}`"
            assert h in body, f"README's CLI reference lacks {h}"
            _options_documented(subcmd, body.split(h, 1)[1].split("\n#### ", 1)[0],
                                f"clipstore {name} {sub}")
    for name in re.findall(r"^### `clipstore (\S+)`", ref, re.M):
        assert name in commands(), f"README documents a command that does not exist: {name}"


def test_benchmarks_table_names_every_result_file():
    results = sorted((ROOT / "bench" / "results").glob("*.json"))
    if not results:
        pytest.skip("no bench/results/*.json yet")
    bench = section(README.read_text(), "Benchmarks")
    for r in results:
        assert f"`{r.stem}`" in bench, f"README's benchmarks table lacks {r.name}"
