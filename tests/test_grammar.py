"""The planted grammar: a pure, strand-symmetric function of sequence whose motifs do what the
simulator's truth tables claim."""
from __future__ import annotations

import numpy as np
import pytest

from clipstore.encoding import one_hot, reverse_complement
from clipstore.simulate import grammar
from clipstore.simulate.genome import revcomp

RNG = np.random.default_rng(11)
BACKGROUND = "".join(RNG.choice(list("ACGT"), 1200))
TATA, INR, GC = "TATAAAAG", "TCAGTCC", "GGGGCGGGGC"


def put(seq: str, pos: int, site: str) -> str:
    return seq[:pos] + site + seq[pos + len(site):]


def promoter(tata: str = TATA, with_gc: bool = True) -> str:
    """A plus-strand core (TATA 31 bp upstream of an Inr at TSS 700) and a GC-box nearby."""
    s = put(BACKGROUND, 700 - 31, tata)
    s = put(s, 700 - 2, INR)
    return put(s, 600, GC) if with_gc else s


def test_shape_and_purity():
    x = one_hot(promoter())
    r = grammar.initiation(x)
    assert r.shape == (1200, 2) and r.dtype == np.float32 and (r > 0).all()
    np.testing.assert_array_equal(r, grammar.initiation(x))
    batch = grammar.initiation(np.stack([x, x]))
    np.testing.assert_allclose(batch[0], r, rtol=1e-5)


def test_reverse_complement_reverses_positions_and_swaps_strands():
    s = promoter()
    r = grammar.initiation(one_hot(s))
    rc = grammar.initiation(one_hot(revcomp(s)))
    np.testing.assert_allclose(rc[::-1, ::-1], r, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(one_hot(revcomp(s)), reverse_complement(one_hot(s)))


def test_core_promoter_places_a_tss_on_its_strand():
    r = grammar.initiation(one_hot(promoter()))
    assert abs(int(np.argmax(r[:, 0])) - 700) <= 2
    assert r[690:711, 0].sum() > 5 * r[690:711, 1].sum()


def test_breaking_tata_lowers_its_strand():
    good = grammar.initiation(one_hot(promoter()))
    broken = grammar.initiation(one_hot(promoter(tata="TAGAAAAG")))   # core T→G
    near = slice(690, 711)
    assert broken[near, 0].sum() < 0.5 * good[near, 0].sum()


def test_activator_boosts_both_strands_nearby():
    with_gc = grammar.initiation(one_hot(promoter()))
    without = grammar.initiation(one_hot(promoter(with_gc=False)))
    near = slice(450, 850)
    for strand in (0, 1):
        assert with_gc[near, strand].sum() > 1.5 * without[near, strand].sum()
    far = slice(0, 100)
    np.testing.assert_allclose(with_gc[far], without[far], rtol=1e-3)


def test_n_scores_as_no_motif():
    s = promoter()
    masked = s[:669] + "N" * 8 + s[677:]
    r = grammar.initiation(np.array([[0, 0, 0, 0] if b == "N" else one_hot(b)[0] for b in masked],
                                    dtype=np.uint8))
    assert r[690:711, 0].sum() < grammar.initiation(one_hot(s))[690:711, 0].sum()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_variant_path_equals_spelled_out_haplotypes(seed):
    rng = np.random.default_rng(seed)
    L = int(rng.integers(50, 700))
    ref = rng.integers(0, 4, L).astype(np.uint8)
    ref[rng.integers(L)] = 4                                   # an N somewhere
    pos = rng.choice(L, int(rng.integers(0, 15)), replace=False)
    alleles = rng.integers(0, 4, (6, len(pos))).astype(np.uint8)
    fast = grammar.initiation_variants(ref, pos, alleles)
    spelled = np.repeat(ref[None], 6, axis=0)
    spelled[:, pos] = alleles
    eye = np.vstack([np.eye(4, dtype=np.uint8), np.zeros((1, 4), np.uint8)])
    np.testing.assert_allclose(fast, grammar.initiation(eye[spelled]), rtol=1e-5, atol=1e-7)


def test_breaking_snp_really_breaks():
    rng = np.random.default_rng(5)
    for m in grammar.MOTIFS.values():
        site = grammar.sample_site(m, rng)
        i, alt = grammar.breaking_snp(m, site, rng)
        mutated = site[:i] + alt + site[i + 1:]
        occ = [grammar.occupancy(one_hot(s + "A" * 12))[(m.name, False)][0] for s in (site, mutated)]
        assert occ[0] > 0.9 and occ[1] < 0.1, m.name
