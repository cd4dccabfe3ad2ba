"""The README is code: its quick start, its worked example (a build config shown in full, built
here on the real hg19 chr22 files it describes) and its CLI reference must stay true."""
from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path

import numpy as np
import pyBigWig
import pysam
import pytest
import yaml
import zarr

from clipstore import schema
from clipstore.build import build
from clipstore.cli import COMMANDS, cli
from tests.conftest import real_data

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def fenced_block(text: str, marker: str) -> str:
    """Body of the first fenced code block after the HTML comment `<!-- marker -->`."""
    m = re.search(rf"<!--\s*{re.escape(marker)}\s*-->\s*```[^\n]*\n(.*?)\n```", text, re.S)
    assert m, f"README has no fenced block after <!-- {marker} -->"
    return m.group(1)


def section(text: str, heading: str) -> str:
    """Text under a markdown heading line, up to the next heading of the same or higher level."""
    m = re.search(rf"^(#+) {re.escape(heading)}\s*$", text, re.M)
    assert m, f"README has no heading {heading!r}"
    level = len(m.group(1))
    nxt = re.compile(rf"^#{{1,{level}}} ", re.M).search(text, m.end())
    return text[m.end(): nxt.start() if nxt else len(text)]


def test_quick_start_is_the_first_thing_and_exactly_two_commands():
    text = README.read_text()
    first = re.search(r"```[^\n]*\n(.*?)\n```", text, re.S).group(1)
    cmds = [ln.split("#")[0].strip() for ln in first.splitlines() if ln.split("#")[0].strip()]
    assert cmds == ["make demo", "make test"]
    assert text.index("make demo") < text.index("## ", text.index("Quick start"))


# --- the worked example --------------------------------------------------------------------

def stranded_peaks(bigwig: str, chrom: str, start: int, end: int, strand: str, *,
                   bin_size: int = 50, min_count: float = 20) -> list[tuple[str, int, int, str]]:
    """Runs of 50 bp bins holding >= min_count |counts|: a crude stand-in for PINTS'
    unidirectional calls (the chr22 set ships bigWigs but no peak file)."""
    with pyBigWig.open(bigwig) as bw:
        v = np.abs(np.nan_to_num(bw.values(chrom, start, end, numpy=True)))
    hot = v[: (end - start) // bin_size * bin_size].reshape(-1, bin_size).sum(1) >= min_count
    edges = np.flatnonzero(np.diff(np.r_[0, hot.astype(np.int8), 0]))
    return [(chrom, start + a * bin_size, start + b * bin_size, strand)
            for a, b in zip(edges[::2], edges[1::2])]


def prepare_example(folder: Path) -> dict:
    """Lay out the files the README's config names, from ../shared/data/real/chr22_hg19,
    doing what the README's preparation steps do (copy + index the FASTA, bgzip + tabix the
    VCF) and writing the stranded peak BED the README describes."""
    d = real_data("chr22_hg19")
    shutil.copy(d / "22_20-21M.fa", folder / "22_20-21M.fa")
    pysam.faidx(str(folder / "22_20-21M.fa"))
    plain = folder / "chr22.phased.vcf"
    plain.write_bytes(gzip.open(d / "beagle_test_chr22_PHASED_by_beagle5.4.vcf.gz").read())
    pysam.tabix_index(str(plain), preset="vcf", force=True)       # -> chr22.phased.vcf.gz(.tbi)
    for bw in ("pl.chr22.bw", "mn.chr22.bw"):
        (folder / bw).symlink_to(d / bw)
    rows = (stranded_peaks(str(d / "pl.chr22.bw"), "chr22", 20_000_000, 21_000_000, "+")
            + stranded_peaks(str(d / "mn.chr22.bw"), "chr22", 20_000_000, 21_000_000, "-"))
    rows.sort(key=lambda r: (r[1], r[2]))
    (folder / "chr22_peaks.bed").write_text("".join(
        f"{c}\t{s}\t{e}\t{c}:{s}-{e}{st}\t0\t{st}\n" for c, s, e, st in rows))
    return {"peaks": rows}


def test_readme_worked_example_builds_on_the_real_chr22_files(tmp_path):
    text = README.read_text()
    cfg_text = fenced_block(text, "example: build.yaml")
    cfg = yaml.safe_load(cfg_text)
    # the quirks the README promises to show are really in the config it shows
    assert cfg["reference"] == "22_20-21M.fa" and "chr22" in str(cfg.get("contig_aliases"))
    prep = prepare_example(tmp_path)
    (tmp_path / "build.yaml").write_text(cfg_text)
    summary = build(str(tmp_path / "build.yaml"), str(tmp_path / "chr22.zarr"), quiet=True)
    assert summary is not None
    root = schema.open_store(str(tmp_path / "chr22.zarr"))
    info = schema.store_info(root)
    n = root["locus_id"].shape[0]
    # divergent pairing left fewer loci than stranded peaks, all on FASTA contig "22"
    assert 0 < n < len(prep["peaks"]) and set(root["chrom"][:]) == {"22"}
    assert info.skipped["peaks_unpaired"] > 0
    assert list(root["individual_id"][:]) == [lib["individual"] for lib in cfg["libraries"]]
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
    seq = zarr.open_group(str(tmp_path / "chr22.zarr"), mode="r")["sequence"]
    het = (seq[:] == 1).any(axis=-1)
    assert info.skipped["snps"] > 0 and het.any()
    assert info.skipped["indels"] > 0                         # skipped and counted, not fatal


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
    for name in COMMANDS:
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
        assert name in COMMANDS, f"README documents a command that does not exist: {name}"


def test_benchmarks_table_names_every_result_file():
    results = sorted((ROOT / "bench" / "results").glob("*.json"))
    if not results:
        pytest.skip("no bench/results/*.json yet")
    bench = section(README.read_text(), "Benchmarks")
    for r in results:
        assert f"`{r.stem}`" in bench, f"README's benchmarks table lacks {r.name}"
