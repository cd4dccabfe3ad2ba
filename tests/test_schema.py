import warnings

import numpy as np
import pytest
import xarray as xr

from clipstore import layout, schema
from clipstore.errors import IncompleteStoreError, InputError


def _store(tmp_path):
    info = schema.StoreInfo(input_length=20, max_jitter=5, output_length=10, shard_loci=4)
    return schema.create_store(str(tmp_path / "s.zarr"), n_loci=10, individuals=["a", "b"],
                               libraries=["l1", "l2", "l3"],
                               library_individual=np.array([0, 0, 1]), info=info)


def test_layout_opens_in_xarray_with_no_help(tmp_path):
    root = _store(tmp_path)
    # schema 5: one shard object per individual / library and 4-locus shard, chunks of
    # block_loci = 4 loci (the largest divisor of shard_loci up to 32)
    d = root["sequence_delta"]
    assert d.shards == (1, 4, 30, 4) and d.chunks == (1, 4, 30, 4) and d.dtype == np.int8
    # signal covers output 10 + 2 x jitter 5 only, not the 30 bp sequence window
    assert root["signal"].shards == (1, 4, 20, 2) and root["signal"].chunks == (1, 4, 20, 2)
    assert "sequence" not in root and schema.store_info(root).block_loci == 4
    schema.mark_complete(root)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(tmp_path / "s.zarr", consolidated=False)
    assert ds["sequence_delta"].dims == schema.DIMS["sequence"]
    assert ds["signal"].dims == ("library", "locus", "signal_position", "strand")
    # both position coordinates are bp from the centre (start + 15): they line up by label
    assert list(ds["position"].values) == list(range(-15, 15))
    assert list(ds["signal_position"].values) == list(range(-10, 10))
    assert "chrom" in ds.coords and "library_id" in ds.coords
    assert list(ds["base"].values) == list("ACGT")
    for v in ds.variables.values():
        assert v.dtype != object or v.name in schema.ALL_COORDS  # strings decode to str in memory
    for name in schema.DIMS:
        if name != schema.SEQUENCE:               # schema 5 stores sequence_delta instead
            assert root[name].dtype != np.dtype(object)


def test_incomplete_store_is_refused(tmp_path):
    root = _store(tmp_path)
    with pytest.raises(IncompleteStoreError, match="did not finish"):
        schema.open_store(str(tmp_path / "s.zarr"))
    schema.mark_complete(root, skipped={"indels": 3})
    info = schema.store_info(schema.open_store(str(tmp_path / "s.zarr")))
    assert info.complete and info.skipped == {"indels": 3} and info.window == 30


def test_not_a_store(tmp_path):
    with pytest.raises(InputError):
        schema.open_store(str(tmp_path / "nothing.zarr"))


def test_shard_slices_cover_every_locus_once():
    covered = [i for s in range(schema.n_shards(10, 4)) for i in range(10)[schema.shard_slice(s, 10, 4)]]
    assert covered == list(range(10))


def test_signal_geometry_is_centred():
    info = schema.StoreInfo(input_length=1000, max_jitter=250, output_length=500)
    assert (info.window, info.signal_window, info.signal_offset) == (1500, 1000, 250)
    # the signal window sits in the middle of the sequence window
    assert info.signal_offset * 2 + info.signal_window == info.window
    assert info.to_attrs()["signal_window"] == 1000


def test_store_of_an_older_schema_is_refused(tmp_path):
    root = _store(tmp_path)
    schema.mark_complete(root)
    attrs = dict(root.attrs[schema.ATTRS_KEY])
    root.attrs[schema.ATTRS_KEY] = {**attrs, "schema_version": 1}
    with pytest.raises(InputError, match="older clipstore.*rebuild with `clipstore build"):
        schema.open_store(str(tmp_path / "s.zarr"))
    root.attrs[schema.ATTRS_KEY] = {**attrs, "schema_version": schema.SCHEMA_VERSION + 1}
    with pytest.raises(InputError, match="newer clipstore"):
        schema.open_store(str(tmp_path / "s.zarr"))


def test_window_slices_are_what_the_reader_serves(tmp_path):
    """`schema.window_slices`: the input and output of an unjittered example, cut from the
    stored windows, equal the reader's example (and a shift moves both by the same bp)."""
    from clipstore.reader import StoreDataset
    from tests._synthetic import synthetic_store

    url = synthetic_store(str(tmp_path / "w.zarr"), n_loci=8, shard_loci=8, input_length=30,
                          max_jitter=4, output_length=10, seed=1)
    root = schema.open_store(url)
    info = schema.store_info(root)
    xs, ys = schema.window_slices(info)
    assert (xs, ys) == (slice(4, 34), slice(4, 14))    # signal window = 10 + 2 x 4 bp
    ds = StoreDataset.open(url).with_lengths(20, 6)
    b = next(iter(ds.batches(16, shuffle=False)))
    xs, ys = schema.window_slices(info, 20, 6)
    for i in range(len(b)):
        lib, loc = int(b.library[i]), int(b.locus[i])
        ind = int(root["library_individual"][lib])
        np.testing.assert_array_equal(b.x[i], layout.sequence(root)[ind, loc, xs])
        np.testing.assert_array_equal(b.profile[i][:6], root["signal"][lib, loc, ys, 0])
    xs2, ys2 = schema.window_slices(info, 20, 6, shift=-3)
    assert xs2.start == xs.start - 3 and ys2.start == ys.start - 3
    with pytest.raises(ValueError, match="do not fit"):
        schema.window_slices(info, 30, 10, shift=5)
