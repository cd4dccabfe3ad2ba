"""Variant scoring on the real chr22 slice (FASTA + 1000 Genomes VCF): windows, skips and
scores checked against windows cut independently from the FASTA text."""
from __future__ import annotations

import gzip
import shutil

import numpy as np
import pandas as pd
import pytest

from clipstore.encoding import one_hot
from clipstore.errors import InputError
from evaluation.baseline import MotifPredictor
from evaluation.score import Reference, read_snps, score_snps
from tests.conftest import real_data

OFFSET = 20_000_000      # the FASTA record 22:20000001-21000000 starts at chr22:20,000,001


@pytest.fixture(scope="module")
def fasta(tmp_path_factory):
    src = real_data("chr22_hg19", "22_20-21M.fa")
    dst = tmp_path_factory.mktemp("fa") / "ref.fa"
    shutil.copy(src, dst)               # pyfaidx writes its .fai beside the file
    return str(dst)


@pytest.fixture(scope="module")
def genome(fasta):
    return "".join(l.strip() for l in open(fasta) if not l.startswith(">")).upper()


def _vcf_records(n):
    path = real_data("chr22_hg19", "beagle_test_chr22_PHASED_by_beagle5.4.vcf.gz")
    rows = []
    with gzip.open(path, "rt") as f:
        for line in f:
            if line.startswith("#"):
                continue
            rows.append(line.split("\t")[:5])
            if len(rows) == n:
                break
    return path, rows


def test_read_vcf_splits_multiallelic():
    path, _ = _vcf_records(1)
    snps = read_snps(path)
    raw = [r[4] for r in _vcf_records(10**6)[1]]
    assert len(snps) == sum(len(a.split(",")) for a in raw)
    assert snps["chrom"].iloc[0] == "22"


def test_scores_match_independent_windows(fasta, genome, tmp_path):
    path, rows = _vcf_records(150)
    vcf = tmp_path / "first.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\n" +
                   "".join("\t".join(r) + "\n" for r in rows))
    pred = MotifPredictor(input_length=200, output_length=60, threshold=0.3)
    ranked = score_snps(vcf, fasta, pred, batch_size=16)
    n_alleles = sum(len(r[4].split(",")) for r in rows)
    snp = [r for r in rows for a in r[4].split(",") if len(r[3]) == 1 and len(a) == 1]
    near_edge = sum(int(r[1]) - 1 - 100 < OFFSET for r in snp)     # window runs off the slice
    assert near_edge >= 1
    assert len(ranked) == len(snp) - near_edge
    assert ranked.attrs["skipped"] == {"not_snp": n_alleles - len(snp), "no_contig": 0, "off_fasta": near_edge,
                                       "ref_mismatch": 0}           # the README: all REF match
    assert (np.diff(np.abs(ranked["log2_quantity_ratio"])) <= 0).all()
    assert ranked["rank"].tolist() == list(range(1, len(ranked) + 1))
    assert (ranked["profile_l2"] > 0).any()
    for _, r in ranked.head(5).iterrows():
        p0 = int(r.pos) - 1 - OFFSET
        ref_seq = genome[p0 - 100:p0 + 100]
        assert ref_seq[100] == r.ref
        alt_seq = ref_seq[:100] + r.alt + ref_seq[101:]
        p, q = pred(np.stack([one_hot(ref_seq), one_hot(alt_seq)]) * 2)
        assert r.q_ref == pytest.approx(q[0], rel=1e-5) and r.q_alt == pytest.approx(q[1], rel=1e-5)
        assert r.log2_quantity_ratio == pytest.approx(np.log2((q[1] + 1e-6) / (q[0] + 1e-6)), rel=1e-4)
        assert r.profile_l2 == pytest.approx(np.linalg.norm(p[1].astype(float) - p[0]), rel=1e-4)
        d = np.log1p(p[:, :60].sum(1).astype(float)) - np.log1p(p[:, 60:].sum(1).astype(float))
        assert r.strand_balance_change == pytest.approx(d[1] - d[0], rel=1e-4, abs=1e-7)


def test_tsv_input_chr_alias_edges_and_rank_by(fasta, genome, tmp_path):
    p0 = 5000
    snps = pd.DataFrame({"Chrom": ["chr22", "22", "22", "22"],
                         "Pos": [OFFSET + p0 + 1, OFFSET + p0 + 11, OFFSET + 3, OFFSET + p0 + 21],
                         "Ref": [genome[p0], genome[p0 + 10], genome[2], genome[p0 + 20]],
                         "Alt": ["A" if genome[p0] != "A" else "C", "G" if genome[p0 + 10] != "G" else "T",
                                 "A" if genome[2] != "A" else "C", "AT"]})
    snps.to_csv(tmp_path / "s.tsv", sep="\t", index=False)
    pred = MotifPredictor(input_length=100, output_length=40)
    ranked = score_snps(tmp_path / "s.tsv", fasta, pred, rank_by="profile_l2")
    assert len(ranked) == 2
    assert ranked.attrs["skipped"] == {"not_snp": 1, "no_contig": 0, "off_fasta": 1, "ref_mismatch": 0}
    assert (np.diff(ranked["profile_l2"].abs()) <= 0).all()


def test_wrong_build_is_an_input_error(fasta, genome, tmp_path):
    snps = pd.DataFrame({"chrom": ["22"] * 4, "pos": [OFFSET + 1001 + 7 * i for i in range(4)],
                         "ref": ["A" if genome[1000 + 7 * i] != "A" else "C" for i in range(4)],
                         "alt": ["G" if genome[1000 + 7 * i] != "G" else "T" for i in range(4)]})
    with pytest.raises(InputError, match="genome build"):
        score_snps(snps, fasta, MotifPredictor(100, 40))
    with pytest.raises(InputError, match="no chrom"):
        bad = tmp_path / "bad.tsv"
        bad.write_text("position\tref\talt\n1\tA\tC\n")
        read_snps(bad)


def test_reference_reads_region_records(fasta, genome):
    ref = Reference(fasta)
    assert ref.fetch("chr22", OFFSET + 100, OFFSET + 110) == genome[100:110]
    assert ref.fetch("22", OFFSET - 5, OFFSET + 5) is None
    assert ref.fetch("chr1", 0, 10) is None


def test_cli_score_with_a_saved_keras_model(fasta, tmp_path):
    """`clipstore score` end to end: a tiny real Keras model saved and loaded safely, output
    identical to calling score_snps with the same loaded predictor."""
    pytest.importorskip("tensorflow")
    from click.testing import CliRunner

    from clipstore.cli import cli
    from trainer.model import build_model
    from trainer.predict import load_predictor

    model = build_model(200, 80, conv_filters=(8, 8), filters=8, n_dilated=2)
    model.save(tmp_path / "m.keras")
    _, rows = _vcf_records(40)
    vcf = tmp_path / "few.vcf"
    vcf.write_text("#CHROM\tPOS\tID\tREF\tALT\n" + "".join("\t".join(r) + "\n" for r in rows))
    out = tmp_path / "ranked.tsv"
    res = CliRunner().invoke(cli, ["-q", "score", str(vcf), "--fasta", fasta, "--model",
                                   str(tmp_path / "m.keras"), "--batch-size", "8", "-o", str(out)])
    assert res.exit_code == 0, res.output
    got = pd.read_csv(out, sep="\t")
    want = score_snps(vcf, fasta, load_predictor(str(tmp_path / "m.keras")), batch_size=8)
    assert got["variant_id"].tolist() == want["variant_id"].tolist()
    np.testing.assert_allclose(got["log2_quantity_ratio"], want["log2_quantity_ratio"], rtol=1e-4, atol=1e-6)
    res = CliRunner().invoke(cli, ["score", str(vcf), "--fasta", fasta, "--model", str(tmp_path / "no.keras")])
    assert res.exit_code != 0


def test_motif_predictor_strand_symmetry_and_ensemble():
    """The baseline is strand-symmetric (RC input -> reversed, strand-swapped profile), and an
    ensemble is the member mean."""
    from evaluation.predictor import encode_haploid, ensemble

    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), 120)) for _ in range(6)]
    x = encode_haploid(seqs)
    a, b = MotifPredictor(120, 50), MotifPredictor(120, 50, scale=3.0, threshold=0.3)
    p, q = a(x)
    prc, qrc = a(x[:, ::-1, ::-1])
    flipped = p.reshape(6, 2, 50)[:, ::-1, ::-1].reshape(6, 100)
    np.testing.assert_allclose(prc, flipped, rtol=1e-5)
    np.testing.assert_allclose(qrc, q, rtol=1e-5)
    pe, qe = ensemble([a, b])(x)
    np.testing.assert_allclose(pe, (a(x)[0] + b(x)[0]) / 2, rtol=1e-6)
    np.testing.assert_allclose(qe, (a(x)[1] + b(x)[1]) / 2, rtol=1e-6)
    with pytest.raises(ValueError):
        ensemble([a, MotifPredictor(100, 50)])


GRUBERT = ("qtl", "H3K27ac_hQTL_Grubert2015_hg19.vcf")
CHR20 = ("chr20_hg19", "20.fa.gz")


def _cli(args):
    """`python -m clipstore ARGS` in a real process: exit codes as a user sees them."""
    import subprocess
    import sys
    from types import SimpleNamespace

    p = subprocess.run([sys.executable, "-m", "clipstore", *map(str, args)], capture_output=True,
                       text=True, timeout=120)
    return SimpleNamespace(exit_code=p.returncode, output=p.stdout + p.stderr)


def test_cli_scores_the_59_chr20_grubert_qtls(tmp_path):
    """`clipstore score` reads the VCF-like Grubert hQTL table (Chr Pos ID Ref Alt Beta ...)
    and scores its 59 chr20 QTLs from the whole bgzipped GRCh37 chr20, end to end; the other
    chromosomes are counted as left out, never scored."""
    table, fa = str(real_data(*GRUBERT)), str(real_data(*CHR20))
    want = pd.read_csv(table, sep="\t")
    want = want[want.Chr == "chr20"]
    assert len(want) == 59
    out = tmp_path / "ranked.tsv"
    res = _cli(["-q", "score", table, "--fasta", fa, "--model", "motif:1000:500", "-o", str(out)])
    assert res.exit_code == 0, res.output
    got = pd.read_csv(out, sep="\t")
    assert sorted(got.variant_id) == sorted(want.ID) and len(got) == 59
    assert f"left out: {{'not_snp': 0, 'no_contig': {2452 - 59}" in res.output
    ref = Reference(fa)
    for r in got.head(3).itertuples():                  # each REF checked against the FASTA
        assert ref.fetch("20", r.pos - 1, r.pos) == r.ref
        x = ref.fetch("20", r.pos - 1 - 500, r.pos - 1 + 500)
        alt = x[:500] + r.alt + x[501:]
        _, q = MotifPredictor(1000, 500)(np.stack([one_hot(x), one_hot(alt)]) * 2)
        assert r.log2_quantity_ratio == pytest.approx(np.log2((q[1] + 1e-6) / (q[0] + 1e-6)), rel=1e-4, abs=1e-6)


def test_vcf_and_tsv_headers_in_any_case(fasta, genome, tmp_path):
    p0 = 7000
    r, a = genome[p0], "A" if genome[p0] != "A" else "C"
    vcf = tmp_path / "v.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n##contig=<ID=22>\n"
                   "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   f"22\t{OFFSET + p0 + 1}\t.\t{r}\t{a},T\t.\t.\t.\n")
    v = read_snps(vcf)                                   # cyvcf2: split alleles, ids made
    assert v.alt.tolist() == [a, "T"] and v.variant_id[0] == f"22:{OFFSET + p0 + 1}:{r}:{a}"
    tsv = tmp_path / "t.tsv"
    tsv.write_text(f"CHROMOSOME\tPOSITION\tRSID\tREF\tALT\nchr22\t{OFFSET + p0 + 1}\trs1\t{r}\t{a}\n")
    t = read_snps(tsv)
    assert t.iloc[0].tolist() == ["rs1", "chr22", OFFSET + p0 + 1, r, a]
    bad = tmp_path / "b.tsv"
    bad.write_text("foo\tbar\n1\t2\n")
    with pytest.raises(InputError, match="no chrom column") as e:
        read_snps(bad)
    assert "chromosome" in str(e.value)                  # the column mapping is shown


def test_cli_score_with_no_snp_on_the_fasta_exits_non_zero(fasta, tmp_path):
    """Zero SNPs on the FASTA's contigs: exit 2 saying why, never a header-only file."""
    snps = tmp_path / "chr1.tsv"
    snps.write_text("chrom\tpos\tref\talt\nchr1\t1000\tA\tC\nchr1\t2000\tG\tT\n")
    out = tmp_path / "ranked.tsv"
    res = _cli(["-q", "score", str(snps), "--fasta", fasta, "--model", "motif:200:80", "-o", str(out)])
    assert res.exit_code == 2 and not out.exists()
    assert "no SNP is on a contig of the FASTA" in res.output and "chr1" in res.output
    far = tmp_path / "far.tsv"                           # right contig, outside the slice
    far.write_text("chrom\tpos\tref\talt\n22\t30000000\tA\tC\n")
    res = _cli(["-q", "score", str(far), "--fasta", fasta, "--model", "motif:200:80", "-o", str(out)])
    assert res.exit_code == 2 and "another assembly" in res.output and "20000001-21000000" in res.output
