"""bigWig windows: |values|, NaN → 0, past-the-end → 0, totals, missing chromosome."""
import numpy as np
import pyBigWig
import pytest

from clipstore.errors import InputError
from clipstore.tracks import (chrom_names, integer_counts, open_bigwig, total_counts,
                             window_values)


@pytest.fixture
def bw_path(tmp_path):
    p = tmp_path / "mn.bw"
    bw = pyBigWig.open(str(p), "w")
    bw.addHeader([("chr1", 1000), ("chr2", 500)])
    bw.addEntries("chr1", [10, 11, 500], values=[-3.0, -1.0, -2.0], span=1)
    bw.addEntries(["chr1"], [600], ends=[610], values=[-0.5])    # bedGraph-style span
    bw.close()
    return str(p)


def test_negative_values_become_counts_and_gaps_zero(bw_path):
    bw = open_bigwig(bw_path)
    v = window_values(bw, "chr1", 5, 15)
    np.testing.assert_array_equal(v, [0, 0, 0, 0, 0, 3, 1, 0, 0, 0])
    assert v.dtype == np.float32
    tail = window_values(bw, "chr1", 995, 1005)                   # runs past the end
    assert tail.shape == (10,) and not tail.any()
    assert total_counts(bw) == pytest.approx(3 + 1 + 2 + 10 * 0.5)


def test_chromosome_resolution_and_missing_chromosome(bw_path):
    bw = open_bigwig(bw_path)
    assert chrom_names(bw, bw_path, ["1", "chr2"], {}) == {"1": "chr1", "chr2": "chr2"}
    with pytest.raises(InputError, match="no chromosome") as e:
        chrom_names(bw, bw_path, ["chr3"], {})
    assert e.value.file == bw_path


def test_not_a_bigwig(tmp_path):
    p = tmp_path / "x.bw"
    p.write_text("hello")
    with pytest.raises(InputError):
        open_bigwig(str(p))
    with pytest.raises(InputError, match="not found"):
        open_bigwig(str(tmp_path / "missing.bw"))


def test_real_minus_strand_is_negative_and_comes_out_positive():
    from tests.conftest import real_data
    path = str(real_data("chr22_hg19", "mn.chr22.bw"))
    bw = open_bigwig(path)
    raw = np.nan_to_num(np.array(bw.values("chr22", 20_000_000, 20_100_000)))
    assert raw.min() < 0
    np.testing.assert_array_equal(window_values(bw, "chr22", 20_000_000, 20_100_000),
                                  np.abs(raw).astype(np.float32))


def test_block_reads_equal_per_window_values(bw_path):
    from clipstore.tracks import dense_intervals, windows
    bw = open_bigwig(bw_path)
    for s, e in [(0, 1000), (5, 12), (590, 620), (950, 1200), (600, 601)]:
        np.testing.assert_array_equal(dense_intervals(bw, "chr1", s, e),
                                      window_values(bw, "chr1", s, e))
    starts = np.array([0, 5, 400, 590, 900, 990])
    got = windows(bw, "chr1", starts, 30, max_block=100)
    for k, s in enumerate(starts):
        np.testing.assert_array_equal(got[k], window_values(bw, "chr1", s, s + 30))


def test_integer_counts_reads_the_exact_header_summary(bw_path, tmp_path):
    """pyBigWig's header() truncates min/max/sums to integers; integer_counts must not."""
    assert not integer_counts(bw_path, 65_535)                     # holds -0.5
    p = str(tmp_path / "counts.bw")
    bw = pyBigWig.open(p, "w")
    bw.addHeader([("chr1", 1000)])
    bw.addEntries("chr1", [10, 11, 500], values=[-3.0, -1.0, 7.0], span=1)
    bw.close()
    assert integer_counts(p, 65_535)
    assert not integer_counts(p, 5)                                # 7 > limit
    assert not integer_counts("s3://bucket/counts.bw", 65_535)     # remote: keep float32
