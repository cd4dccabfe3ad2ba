"""Peak parsing and divergent pairing."""
from __future__ import annotations

import gzip

import pytest

from clipstore.errors import InputError
from clipstore.fasta import Contig
from clipstore.peaks import call_loci, pair_divergent, read_peaks

CONTIGS = {"chr1": Contig("chr1", "chr1", 0, 10_000), "chr2": Contig("chr2", "chr2", 0, 5_000)}
FOLDS = {"chr1": 3}


def write(tmp_path, text, gz=False, name="p.bed"):
    p = tmp_path / (name + (".gz" if gz else ""))
    if gz:
        with gzip.open(p, "wt") as f:
            f.write(text)
    else:
        p.write_text(text)
    return str(p)


@pytest.mark.parametrize("gz", [False, True])
def test_bed6_plain_and_gzipped_pair_divergent_peaks(tmp_path, gz):
    text = ("track name=x\n# comment\n"
            "chr1\t1000\t1040\ta\t0\t-\n"      # pairs with b (gap 20)
            "chr1\t1060\t1100\tb\t0\t+\n"
            "chr1\t3000\t3040\tc\t0\t+\n"      # plus with no minus on its left: unpaired
            "chr1\t5000\t5040\td\t0\t-\n"      # minus whose plus is 300 bp away: unpaired
            "chr1\t5340\t5380\te\t0\t+\n"
            "chr2\t100\t400\tf\t0\t.\n")       # unstranded: a locus itself, but off the edge
    loci, counts = call_loci(write(tmp_path, text, gz), CONTIGS, 600, 200, FOLDS)
    assert list(loci["locus_id"]) == ["chr1:1000-1100"]
    assert loci["centre"][0] == 1050 and loci["start"][0] == 750 and loci["end"][0] == 1350
    assert loci["fold"][0] == 3
    assert counts["peaks_unpaired"] == 3 and counts["loci_off_edge"] == 1
    assert counts["peaks_read"] == 6


def test_distance_is_configurable_and_nearest_partner_wins():
    from clipstore.peaks import Peak
    peaks = [Peak("c", 0, 10, "-", -1, 1), Peak("c", 15, 25, "+", -1, 2),
             Peak("c", 300, 310, "+", -1, 3)]
    loci, unpaired = pair_divergent(peaks, 5)
    assert loci == [("c", 0, 25, 12)] and unpaired == 1
    loci, unpaired = pair_divergent(peaks, 2)
    assert loci == [] and unpaired == 3


def test_narrowpeak_summit_and_three_column_pints(tmp_path):
    np_text = "chr1\t2000\t2400\tn\t0\t.\t5.0\t-1\t-1\t50\n"
    loci, _ = call_loci(write(tmp_path, np_text), CONTIGS, 100, 200, FOLDS)
    assert loci["centre"][0] == 2050
    loci, counts = call_loci(write(tmp_path, "chr2\t2000\t2100\n", name="q.bed"), CONTIGS, 100,
                             200, FOLDS)
    assert loci["centre"][0] == 2050 and loci["fold"][0] == -1 and counts["loci_no_fold"] == 1


def test_loci_sort_by_fasta_order_and_duplicates_are_kept_once(tmp_path):
    text = "chr2\t900\t1000\n chr1\t900\t1000\nchr1\t100\t200\nchr1\t100\t200\n".replace(" ", "")
    loci, counts = call_loci(write(tmp_path, text), CONTIGS, 100, 200, FOLDS)
    assert list(loci["locus_id"]) == ["chr1:100-200", "chr1:900-1000", "chr2:900-1000"]
    assert counts["duplicate_peaks"] == 1


def test_aliases_and_chr_prefix_resolve(tmp_path):
    loci, _ = call_loci(write(tmp_path, "1\t900\t1000\n"), CONTIGS, 100, 200, FOLDS)
    assert loci["chrom"][0] == "chr1" and loci["locus_id"][0] == "1:900-1000"
    loci, _ = call_loci(write(tmp_path, "one\t900\t1000\n"), CONTIGS, 100, 200, FOLDS,
                        {"one": "chr1"})
    assert loci["chrom"][0] == "chr1"


@pytest.mark.parametrize("text,msg", [
    ("chr1\t10\t10\n", "start < end"), ("chr1\t-5\t10\n", "start < end"),
    ("chr1\tten\t20\n", "integers"), ("chr1\t10\n", "at least 3 columns"),
    ("# only a comment\n", "no records"), ("chrZ\t10\t20\n", "not in the reference")])
def test_bad_records_name_file_and_line(tmp_path, text, msg):
    path = write(tmp_path, "chr1\t5\t50\n" + text if "records" not in msg else text)
    with pytest.raises(InputError, match=msg) as e:
        call_loci(path, CONTIGS, 10, 200, FOLDS)
    assert e.value.file == path
    if "records" not in msg:
        assert e.value.record == "line 2"


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_peaks(str(tmp_path / "nope.bed"))


def test_real_pints_and_narrowpeak_files_parse():
    from tests.conftest import real_data
    pints = read_peaks(str(real_data("peaks_hg38", "k562_procap_pints_autosomes.bed.gz")))
    assert len(pints) == 42_142 and all(p.strand == "." for p in pints[:100])
    narrow = read_peaks(str(real_data("peaks_hg38", "ENCSR000AKO.bed.gz")))
    assert len(narrow) == 51_759 and sum(p.summit >= 0 for p in narrow) > 50_000


def test_slice_fasta_loci_must_lie_inside_the_slice(tmp_path):
    contigs = {"22": Contig("22", "22:20000001-21000000", 20_000_000, 1_000_000)}
    text = "chr22\t20000100\t20000200\nchr22\t20500000\t20500100\n"
    loci, counts = call_loci(write(tmp_path, text), contigs, 1000, 200, {})
    assert list(loci["start"]) == [20_500_050 - 500] and counts["loci_off_edge"] == 1
