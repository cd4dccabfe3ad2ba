"""Peak parsing and divergent pairing."""
from __future__ import annotations

import gzip

import numpy as np
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
    ("# only a comment\n", "no records")])
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


def test_peaks_only_on_contigs_absent_from_the_fasta_are_an_error(tmp_path):
    path = write(tmp_path, "chrZ\t10\t20\nchrY\t10\t20\n")
    with pytest.raises(InputError, match="no peak lies on a contig of the reference") as e:
        call_loci(path, CONTIGS, 10, 200, FOLDS)
    assert e.value.file == path and e.value.record == "line 1" and "chrZ" in str(e.value)


def test_peaks_on_other_contigs_are_counted_when_some_lie_on_the_fasta(tmp_path):
    loci, counts = call_loci(write(tmp_path, "chr1\t900\t1000\nchrZ\t10\t20\n"), CONTIGS,
                             100, 200, FOLDS)
    assert list(loci["locus_id"]) == ["chr1:900-1000"] and counts["loci_other_contig"] == 1


# ---------------------------------------------------------------- every peak format a lab has
BIG = {f"chr{c}": Contig(f"chr{c}", f"chr{c}", 0, 260_000_000) for c in [*range(1, 23), "X"]}


def test_real_bigbed_reads_and_its_chr22_slice_gives_loci():
    from tests.conftest import real_data
    path = str(real_data("chr22_hg19", "ENCFF948HPU.bigBed"))
    peaks = read_peaks(path)
    assert {p.chrom for p in peaks} == {"chr14", "chr22"} and len(peaks) == 21_490
    inside = [p for p in peaks if p.chrom == "chr22" and p.start >= 20_000_000
              and p.end <= 21_000_000]
    assert len(inside) == 554                            # as the data README counts them
    import pyBigWig
    with pyBigWig.open(path) as bb:                      # same records, straight from pyBigWig
        first = bb.entries("chr22", 0, bb.chroms("chr22"))[0]
    assert (first[0], first[1]) == next((p.start, p.end) for p in peaks if p.chrom == "chr22")
    contigs = {"22": Contig("22", "22:20000001-21000000", 20_000_000, 1_000_000)}
    loci, counts = call_loci(path, contigs, 1000, 200, {})
    assert counts["loci_other_contig"] > 0 and counts["peaks_read"] == 21_490
    assert 500 < len(loci["start"]) <= 554 and set(loci["chrom"]) == {"22"}


def test_real_pints_bed3_and_encode_narrowpeak_give_loci():
    from tests.conftest import real_data
    loci, counts = call_loci(str(real_data("peaks_hg38", "k562_procap_pints_autosomes.bed.gz")),
                             BIG, 1000, 200, {})
    assert counts["peaks_read"] == 42_142 and len(loci["start"]) > 40_000
    narrow = str(real_data("peaks_hg38", "ENCSR000AKO.bed.gz"))
    loci, _ = call_loci(narrow, BIG, 1000, 200, {})
    first = read_peaks(narrow)[0]                        # chr22 20564140-20564886, summit 347
    k = list(loci["locus_id"]).index(f"chr22:{first.start}-{first.end}")
    assert loci["centre"][k] == first.start + 347


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("name, text, centre, strand", [
    ("bed3", "chr1\t1000\t1100\n", 1050, "."),
    ("bed6", "chr1\t1000\t1100\tp\t5\t+\n", 1050, "+"),
    ("narrowPeak", "chr1\t1000\t1100\t.\t0\t.\t3.2\t-1\t2.1\t30\n", 1030, "."),
    ("broadPeak", "chr1\t1000\t1100\t.\t0\t.\t3.2\t-1\t2.1\n", 1050, "."),
    ("pints_unidirectional", "chr1\t1000\t1100\tuni1\t7.5\t-\t12\t0.001\t0.01\n",
     1050, "-"),
    ("pints_bidirectional", "chr1\t1000\t1100\tStringent(qval)\t1040\t1060\n", 1050, "."),
    ("dreg", "chr1\t1000\t1100\t0.93\t0.0001\t1020\n", 1020, "."),
])
def test_each_text_format_plain_or_gzipped(tmp_path, gz, name, text, centre, strand):
    path = write(tmp_path, text, gz, name=f"{name}.bed")
    (peak,) = read_peaks(path)
    assert (peak.chrom, peak.start, peak.end, peak.strand) == ("chr1", 1000, 1100, strand)
    if strand == ".":
        loci, _ = call_loci(path, CONTIGS, 100, 200, FOLDS)
        assert loci["centre"][0] == centre


def _not_a_peak_file(path: str, why: str) -> None:
    with pytest.raises(InputError) as e:
        read_peaks(path)
    msg = str(e.value)
    assert e.value.file == path and why in msg
    for fmt in ("BED3/BED6", "narrowPeak", "broadPeak", "PINTS", "dREG", "bigBed", "gzipped"):
        assert fmt in msg, fmt
    assert len(msg.splitlines()) == 1                   # one clear line


@pytest.mark.parametrize("gz", [False, True])
def test_binary_garbage_is_one_clear_line_naming_the_formats(tmp_path, gz):
    p = tmp_path / ("garbage.bed.gz" if gz else "garbage.bed")
    data = bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8))
    p.write_bytes(gzip.compress(data) if gz else data)
    _not_a_peak_file(str(p), "binary data")


def test_a_bigwig_given_as_peaks_says_so(tmp_path):
    from tests._build_inputs import write_bigwig
    write_bigwig(tmp_path / "x.bw", np.random.default_rng(0), 1.0)
    _not_a_peak_file(str(tmp_path / "x.bw"), "bigWig")


def test_truncated_gzip_peaks_fail_by_name(tmp_path):
    p = tmp_path / "cut.bed.gz"
    text = "".join(f"chr1\t{s}\t{s + 80}\n" for s in range(1000, 900_000, 97)).encode()
    whole = gzip.compress(text)
    p.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(InputError, match="damaged or cut short") as e:
        read_peaks(str(p))
    assert e.value.file == str(p)
