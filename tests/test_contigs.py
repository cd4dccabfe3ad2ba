"""Contig name resolution across inputs."""
from clipstore.contigs import resolve, reverse_map


def test_chr_prefix_added_or_removed_only_when_unambiguous_target_exists():
    assert resolve("22", {"chr22", "chr1"}) == "chr22"
    assert resolve("chr22", {"22"}) == "22"
    assert resolve("chr22", {"chr22", "22"}) == "chr22"     # exact match first
    assert resolve("MT", {"chrM"}) == "chrM" and resolve("chrM", {"MT"}) == "MT"
    assert resolve("22", {"chr21"}) is None


def test_explicit_aliases_win():
    assert resolve("NC_000022.11", {"chr22"}, {"NC_000022.11": "chr22"}) == "chr22"
    assert resolve("22", {"chr22", "22_alt"}, {"22": "22_alt"}) == "22_alt"


def test_reverse_map_finds_each_reference_contig_in_another_file():
    assert reverse_map(["1", "2", "X"], ["chr1", "chrX", "chr9"]) == {"chr1": "1", "chrX": "X"}
    # aliases apply in both directions
    assert reverse_map(["chr22"], ["NC22"], {"NC22": "chr22"}) == {"NC22": "chr22"}
