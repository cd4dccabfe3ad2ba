"""Build from real public data (hg19 chr22:20–21 Mb): a region-named slice FASTA with contig
`22`, 1000 Genomes VCFs (`22`, indels, multi-allelic, phased and unphased), GRO-cap-like bigWigs
on `chr22` with a negative minus strand. Skips when ../shared/data/real is absent."""
from __future__ import annotations

import shutil

import cyvcf2
import numpy as np
import pysam
import pytest
import yaml
import zarr

from clipstore import layout, schema
from clipstore.build import build
from tests.conftest import real_data
from tests.test_build import check_against_inputs

SAMPLES = ["HG00096", "HG00097", "HG00099"]
OFFSET = 20_000_000
RECORD = "22:20000001-21000000"


def _inputs(tmp, vcf_name: str) -> dict:
    d = real_data("chr22_hg19")
    tmp.mkdir(parents=True, exist_ok=True)
    fa = tmp / "22_20-21M.fa"
    if not fa.exists():          # the shared folder is read-only: index a copy, as a user would
        shutil.copy(d / "22_20-21M.fa", fa)
    vcf = tmp / vcf_name
    if not vcf.exists():         # the unphased file is plain gzip, not BGZF: recompress + index
        import gzip
        plain = tmp / vcf_name.removesuffix(".gz")
        plain.write_bytes(gzip.open(d / vcf_name).read())
        pysam.tabix_index(str(plain), preset="vcf", force=True)
    centres = range(20_001_000, 20_099_000, 3_000)
    (tmp / "peaks.bed").write_text("".join(
        f"chr22\t{c - 50}\t{c - 10}\tm{c}\t0\t-\nchr22\t{c + 10}\t{c + 50}\tp{c}\t0\t+\n"
        for c in centres))
    (tmp / "libraries.tsv").write_text("library\tindividual\tplus\tminus\n" + "".join(
        f"{s}_pc\t{s}\t{d / 'pl.chr22.bw'}\t{d / 'mn.chr22.bw'}\n" for s in SAMPLES))
    cfg = tmp / f"{vcf_name}.yaml"
    cfg.write_text(yaml.safe_dump({"reference": fa.name, "variants": vcf.name,
                                   "peaks": "peaks.bed", "libraries": "libraries.tsv",
                                   "shard_loci": 8}))
    return {"config": cfg, "fasta": fa, "vcf": vcf, "dir": d, "n": len(centres)}


@pytest.fixture(scope="module")
def phased(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("real")
    inp = _inputs(tmp, "beagle_test_chr22_PHASED_by_beagle5.4.vcf.gz")
    out = str(tmp / "phased.zarr")
    build(str(inp["config"]), out)
    return inp, out


def test_real_chr22_matches_independent_oracles(phased):
    inp, out = phased
    d = inp["dir"]
    root = zarr.open_group(out, mode="r")
    assert len(root["start"][:]) == inp["n"] and set(root["chrom"][:]) == {"22"}
    check_against_inputs(out, inp["config"], str(inp["fasta"]), str(inp["vcf"]),
                         fasta_chrom=lambda c: RECORD, offset=OFFSET, bw_chrom=lambda c: "chr22",
                         libraries=[(str(d / "pl.chr22.bw"), str(d / "mn.chr22.bw"))] * 3)
    sig = root["signal"][:]
    assert (sig >= 0).all() and sig[..., 1].sum() > 0      # the minus strand came out positive
    # non-SNP records inside the windows, counted here with cyvcf2 directly
    starts = root["start"][:]
    W = int(root["end"][0] - starts[0])
    kinds = {"indels": 0, "multiallelic": 0, "snps": 0, "sv": 0}
    for rec in cyvcf2.VCF(str(inp["vcf"])):
        p = rec.POS - 1
        if not any(s <= p < s + W for s in starts):
            continue
        if rec.ALT[0].startswith("<"):
            kinds["sv"] += 1             # e.g. esv2658430 <DEL>
        elif len(rec.ALT) > 1:
            kinds["multiallelic"] += 1
        elif len(rec.REF) == 1 and len(rec.ALT[0]) == 1:
            kinds["snps"] += 1
        else:
            kinds["indels"] += 1
    skipped = schema.store_info(root).skipped
    assert {k: skipped[k] for k in kinds} == kinds and kinds["snps"] > 100 and kinds["sv"] == 1
    assert skipped["unphased"] == 0 and skipped["missing_calls"] == 0
    import csv                            # folds: CLIPNET's own published CSV
    with open(real_data("clipnet", "data_fold_assignments.csv")) as fh:
        clipnet = {r["chrom"]: int(r["fold"]) for r in csv.DictReader(fh)}
    assert set(root["fold"][:]) == {clipnet["chr22"]}


def test_unphased_vcf_gives_the_same_two_hot_and_is_reported(phased, tmp_path):
    inp, out = phased
    un = _inputs(tmp_path, "beagle_test_chr22_20.0-20.1Mb_GRCh37_191samples_unphased.vcf.gz")
    out2 = str(tmp_path / "unphased.zarr")
    build(str(un["config"]), out2)
    a, b = zarr.open_group(out, mode="r"), zarr.open_group(out2, mode="r")
    np.testing.assert_array_equal(layout.sequence(a)[:], layout.sequence(b)[:])
    info = schema.store_info(b)
    assert info.skipped["unphased"] == info.skipped["snps"] * len(SAMPLES)
    from clipstore.info import store_summary
    s = store_summary(out2)                # used, not "skipped unphased": every call was used
    assert s["used"]["unphased"] == info.skipped["unphased"] and "unphased" not in s["skipped"]


def test_encode_ccre_bigbed_builds_by_cli_on_the_chr22_slice(tmp_path):
    """The chr22 set's ENCODE cCREs (bigBed, chr14 + chr22) as peaks: the build reads them
    with pyBigWig (it crashed with a UnicodeDecodeError), keeps the slice's cCREs and counts
    the rest (other contig, off the slice's edge)."""
    import subprocess
    import sys
    from pathlib import Path
    inp = _inputs(tmp_path, "beagle_test_chr22_PHASED_by_beagle5.4.vcf.gz")
    cfg = yaml.safe_load(inp["config"].read_text())
    cfg["peaks"] = str(inp["dir"] / "ENCFF948HPU.bigBed")
    inp["config"].write_text(yaml.safe_dump(cfg))
    out = str(tmp_path / "ccre.zarr")
    r = subprocess.run([sys.executable, "-m", "clipstore", "-q", "build", str(inp["config"]),
                        "-o", out], cwd=Path(__file__).resolve().parents[1],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    root = zarr.open_group(out, mode="r")
    info = schema.store_info(root)
    assert info.complete and 500 < root["locus_id"].shape[0] <= 554
    assert info.skipped["loci_other_contig"] > 0 and info.skipped["loci_off_edge"] > 0
    assert all(str(c) == "22" for c in root["chrom"][:])
