import pytest

from clipstore.errors import InputError
from clipstore.folds import UNASSIGNED, fold_of, load_fold_map, split_folds

from .conftest import real_data


def test_builtin_map_is_clipnets():
    m = load_fold_map()
    assert {c for c, f in m.items() if f == 0} == {"chr9", "chr13", "chr20", "chr21"}
    assert m["chr1"] == 4 and m["chr22"] == 5 and m["chr8"] == 9
    assert fold_of("22", m) == 5 and fold_of("chrX", m) == UNASSIGNED


def test_builtin_map_equals_shared_copy():
    path = real_data("clipnet", "data_fold_assignments.csv")
    assert load_fold_map(path) == load_fold_map()


def test_split_folds():
    train, val, test = split_folds(3)
    assert val == [3] and test == [0] and sorted(train) == [1, 2, 4, 5, 6, 7, 8, 9]
    with pytest.raises(ValueError):
        split_folds(0)


def test_bad_fold_csv(tmp_path):
    p = tmp_path / "f.csv"
    p.write_text("chrom,fold\nchr1,one\n")
    with pytest.raises(InputError, match="line 2"):
        load_fold_map(p)
