"""clipstore.open: lazy xarray with shard-sized dask chunks, values equal to the store; and the
reader over a real moto S3 server on loopback."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
import zarr

import clipstore
from clipstore import schema
from clipstore.reader import StoreDataset
from tests._synthetic import synthetic_store


@pytest.fixture(scope="module")
def url(tmp_path_factory) -> str:
    return synthetic_store(str(tmp_path_factory.mktemp("xr") / "s.zarr"), n_loci=70,
                           n_individuals=3, replicates=1, shard_loci=32, seed=2)


def test_open_is_lazy_with_shard_chunks(url):
    ds = clipstore.open(url)
    assert ds["sequence"].dims == schema.DIMS[schema.SEQUENCE]
    assert ds["sequence"].chunks is not None
    assert ds["sequence"].chunksizes["locus"][0] == 32
    assert "locus_id" in ds.coords and "total_counts" in ds.coords
    root = zarr.open_group(url, mode="r")
    np.testing.assert_array_equal(ds["signal"].isel(locus=slice(30, 40)).values,
                                  root["signal"][:, 30:40])
    np.testing.assert_array_equal(ds["locus_id"].values, root["locus_id"][:])


@contextlib.contextmanager
def _s3():
    try:
        from clipstore.testing import moto_server
    except ImportError:
        moto_server = None
    if moto_server is not None:
        with moto_server() as srv:
            yield srv
        return
    pytest.importorskip("moto")
    from moto.server import ThreadedMotoServer

    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    srv.start()
    host, port = srv.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    so = {"key": "test", "secret": "test", "client_kwargs": {"endpoint_url": endpoint,
                                                             "region_name": "us-east-1"}}
    try:
        yield endpoint, so
    finally:
        srv.stop()


def test_reader_and_open_from_s3(url):
    import fsspec

    with _s3() as srv:
        endpoint, so = srv if isinstance(srv, tuple) else (srv.endpoint, srv.storage_options)
        import boto3

        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                     aws_secret_access_key="test", region_name="us-east-1").create_bucket(
            Bucket="bucket")
        fs = fsspec.filesystem("s3", **so)
        fs.put(url, "bucket/s.zarr", recursive=True)
        remote = StoreDataset.open("s3://bucket/s.zarr", storage_options=so).with_jitter(10).with_rc(True)
        local = StoreDataset.open(url).with_jitter(10).with_rc(True)
        for a, b in zip(remote.batches(64, seed=1), local.batches(64, seed=1)):
            np.testing.assert_array_equal(a.x, b.x)
            np.testing.assert_array_equal(a.profile, b.profile)
        xds = clipstore.open("s3://bucket/s.zarr", storage_options=so)
        np.testing.assert_array_equal(xds["reference"].values, zarr.open_group(url)["reference"][:])
