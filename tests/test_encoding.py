import numpy as np

from clipstore.encoding import (decode, one_hot, reverse_complement, reverse_complement_track,
                                two_hot, two_hot_iupac)


def test_two_hot_iupac_matches_design_example():
    assert two_hot_iupac("AYCR").tolist() == [[2, 0, 0, 0], [0, 1, 0, 1], [0, 2, 0, 0], [1, 0, 1, 0]]


def test_n_and_lowercase():
    assert one_hot("NnacgT").tolist() == [[0] * 4, [0] * 4, [1, 0, 0, 0], [0, 1, 0, 0],
                                          [0, 0, 1, 0], [0, 0, 0, 1]]


def test_two_hot_is_sum_of_haplotypes_and_iupac_agrees():
    rng = np.random.default_rng(0)
    h1 = "".join(rng.choice(list("ACGT"), 500))
    h2 = "".join(rng.choice(list("ACGT"), 500))
    code = {frozenset("AG"): "R", frozenset("CT"): "Y", frozenset("CG"): "S", frozenset("AT"): "W",
            frozenset("GT"): "K", frozenset("AC"): "M"}
    iupac = "".join(a if a == b else code[frozenset(a + b)] for a, b in zip(h1, h2))
    np.testing.assert_array_equal(two_hot(h1, h2), two_hot_iupac(iupac))
    assert (two_hot(h1, h2).sum(-1) == 2).all()


def test_reverse_complement_sequence_and_track():
    x = one_hot("AACGT")
    assert decode(reverse_complement(x)) == "ACGTT"
    assert decode(reverse_complement(reverse_complement(x))) == "AACGT"
    y = np.array([[1, 10], [2, 20], [3, 30]], dtype=np.float32)  # (L, strand: plus, minus)
    # reverse complement reverses positions and swaps plus and minus strands
    assert reverse_complement_track(y).tolist() == [[30, 3], [20, 2], [10, 1]]
    batch = np.stack([x, x])
    np.testing.assert_array_equal(reverse_complement(batch)[1], reverse_complement(x))
