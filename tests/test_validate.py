"""`clipstore validate`: shard checksums and a random sample re-checked against the inputs."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import zarr

from clipstore.build import build
from clipstore.cli import main
from clipstore.validate import validate
from tests._build_inputs import write_bigwig, write_cohort


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("val")
    c = write_cohort(tmp / "in", loci_per_contig=8, shard_loci=4)
    out = str(tmp / "store.zarr")
    build(str(c["config"]), out)
    return c, out


def test_clean_store_validates(built, capsys):
    c, out = built
    rep = validate(out, str(c["config"]), n=50)
    assert rep.ok and rep.shards_checked == 4 and 20 < rep.examples_checked <= 50
    main(["validate", out, "--inputs", str(c["config"]), "--n", "20"])
    assert "OK" in capsys.readouterr().out


def test_a_changed_byte_in_a_shard_is_caught(built, tmp_path, capsys):
    _, out = built
    bad = str(tmp_path / "bad.zarr")
    shutil.copytree(out, bad)
    root = zarr.open_group(bad, mode="r+")
    d = root["sequence_delta"][:, 4:8]      # schema 5: two-hot - 2 x reference
    d[1, 2, 17] = [1, 0, 0, 1]              # one het SNP more at one position
    root["sequence_delta"][:, 4:8] = d      # whole shard 1 rewritten, one base changed
    rep = validate(bad)
    assert not rep.ok and rep.problems == ["shard 1 (loci 4-7): checksum mismatch"]
    with pytest.raises(SystemExit) as e:
        main(["validate", bad])
    assert e.value.code == 1


def test_inputs_that_changed_since_the_build_are_caught(built, tmp_path):
    c, out = built
    d = tmp_path / "in"
    shutil.copytree(c["dir"], d)
    write_bigwig(d / "lib0.pl.bw", np.random.default_rng(99), 1.0)   # different counts
    rep = validate(out, str(d / "build.yaml"), n=100)
    assert any("signal of library 0" in p for p in rep.problems)
    assert not any("sequence" in p for p in rep.problems)


def test_incomplete_store_is_refused(built, tmp_path, capsys):
    from clipstore import schema
    _, out = built
    inc = str(tmp_path / "inc.zarr")
    shutil.copytree(out, inc)
    root = zarr.open_group(inc, mode="r+")
    attrs = dict(root.attrs[schema.ATTRS_KEY])
    attrs["complete"] = False
    root.attrs[schema.ATTRS_KEY] = attrs
    with pytest.raises(SystemExit) as e:
        main(["validate", inc])
    assert e.value.code == 2 and "did not finish" in capsys.readouterr().err


def test_corrupted_chunk_bytes_are_reported_not_a_crash(built, tmp_path, capsys):
    _, out = built
    bad = tmp_path / "bad.zarr"
    shutil.copytree(out, bad)
    shard = sorted((bad / "signal" / "c").rglob("*"))
    shard = [p for p in shard if p.is_file()][0]
    raw = bytearray(shard.read_bytes())
    raw[40:200] = bytes(160)                      # zero a run of compressed bytes
    shard.write_bytes(bytes(raw))
    rep = validate(str(bad))
    assert not rep.ok and any("unreadable" in p or "checksum" in p for p in rep.problems)
    with pytest.raises(SystemExit) as e:
        main(["validate", str(bad)])
    assert e.value.code == 1
