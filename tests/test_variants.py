"""VCF records → two-hot: SNPs applied, everything else skipped and counted."""
import numpy as np
import pysam
import pytest

from clipstore.encoding import one_hot
from clipstore.errors import InputError
from clipstore.variants import SKIP_KEYS, apply_snps, classify, open_vcf

REF = "ACGTACGTAC"


def test_classify():
    assert classify("A", ["G"], False) == "snps"
    assert classify("A", ["AT"], False) == "indels"
    assert classify("AT", ["A"], False) == "indels"
    assert classify("A", ["G", "T"], False) == "multiallelic"
    assert classify("A", ["<DEL>"], False) == "sv"
    assert classify("A", ["G"], True) == "sv"
    assert classify("A", ["*"], False) == "indels"


@pytest.fixture
def vcf(tmp_path):
    rows = [("2", "C", "T", ["0|1", "1|1", "./.", "0/1"]),
            ("3", "G", "GA", ["0|1"] * 4),
            ("5", "A", "C,G", ["1|2"] * 4),
            ("7", "G", "A", [".|1", "1|0", "0|0", "1"]),
            ("8", "T", "C", ["1|0", "0|0", "1|1", "0|0"]),     # split multi-allelic site:
            ("8", "T", "G", ["0|1", "0|0", "0|0", "0|0"]),     # haplotypes combine per record
            ("9", "A", "<DEL>", ["0|1"] * 4)]
    head = ["##fileformat=VCFv4.2", "##contig=<ID=1,length=10>",
            '##FORMAT=<ID=GT,Number=1,Type=String,Description="GT">',
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts0\ts1\ts2\ts3"]
    p = tmp_path / "v.vcf"
    p.write_text("\n".join(head + [f"1\t{pos}\t.\t{r}\t{a}\t.\tPASS\t.\tGT\t" + "\t".join(g)
                                   for pos, r, a, g in rows]) + "\n")
    return pysam.tabix_index(str(p), preset="vcf", force=True)


def test_two_hot_and_counts(vcf):
    v = open_vcf(vcf, ["s0", "s1", "s2", "s3"])
    counts = dict.fromkeys(SKIP_KEYS, 0)
    ref = one_hot(REF)
    out = apply_snps(v, vcf, "1", 0, REF.encode(), ref, np.arange(4), -1, counts)
    C, T, G, A = ref[1], one_hot("T")[0], ref[2], one_hot("A")[0]
    np.testing.assert_array_equal(out[:, 1], [C + T, 2 * T, 2 * C, C + T])   # missing → ref
    np.testing.assert_array_equal(out[:, 6], [G + A, A + G, 2 * G, 2 * A])    # haploid → hom
    C8, G8, T8 = one_hot("C")[0], one_hot("G")[0], ref[7]
    np.testing.assert_array_equal(out[:, 7], [C8 + G8, 2 * T8, 2 * C8, 2 * T8])
    untouched = [0, 2, 3, 4, 5, 8, 9]
    np.testing.assert_array_equal(out[:, untouched], np.repeat(2 * ref[None, untouched], 4, 0))
    assert counts == {"snps": 4, "indels": 1, "multiallelic": 1, "sv": 1, "missing_calls": 2,
                      "unphased": 1}
    counts = dict.fromkeys(SKIP_KEYS, 0)          # records before count_from were counted already
    apply_snps(v, vcf, "1", 0, REF.encode(), ref, np.arange(4), 4, counts)
    assert counts["snps"] == 3 and counts["indels"] == 0 and counts["sv"] == 1


def test_ref_mismatch_and_missing_sample_and_index(vcf, tmp_path):
    v = open_vcf(vcf)
    bad = "ATGTACGTAC"
    with pytest.raises(InputError, match="REF allele C does not match the FASTA base T") as e:
        apply_snps(v, vcf, "1", 0, bad.encode(), one_hot(bad), np.arange(4), -1,
                   dict.fromkeys(SKIP_KEYS, 0))
    assert e.value.file == vcf and e.value.record.startswith("1:2")
    with pytest.raises(InputError, match="NA1"):
        open_vcf(vcf, ["s0", "NA1"])
    import shutil
    shutil.copy(vcf, tmp_path / "noidx.vcf.gz")
    with pytest.raises(InputError, match="not indexed"):
        open_vcf(str(tmp_path / "noidx.vcf.gz"))
