"""`clipstore migrate`: a schema-4 store rewritten in the row-major layout (schema 5) holds the
same values, keeps the build's record (so `validate` checks it against the build's CRC32s),
survives a kill -9 midway (the partial output is refused by readers, the same command finishes
it), and migrates in place without ever leaving no complete store behind."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import zarr

from clipstore import layout, schema
from clipstore.build import PROGRESS_KEY
from clipstore.cli import main
from clipstore.errors import IncompleteStoreError, InputError
from clipstore.migrate import MIGRATE_KEY, migrate
from clipstore.reader import StoreDataset
from clipstore.validate import validate
from tests._synthetic import synthetic_store

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def v4(tmp_path_factory) -> str:
    """A schema-4 store (4 shards) carrying a build record of per-shard CRC32s, as a build's."""
    url = synthetic_store(str(tmp_path_factory.mktemp("mig") / "v4.zarr"), n_loci=100,
                          n_individuals=4, replicates=1, shard_loci=32, seed=8,
                          variant_rate=2e-2, schema_version=4)
    root = zarr.open_group(url, mode="r+")
    done = {}
    for i in range(schema.n_shards(100, 32)):
        sl = schema.shard_slice(i, 100, 32)
        arrays = (root[schema.SEQUENCE][:, sl], root[schema.REFERENCE][sl],
                  root[schema.SIGNAL][:, sl])
        done[str(i)] = {"crc32": [zlib.crc32(np.ascontiguousarray(a).data) for a in arrays],
                        "counts": {}}
    root.attrs[PROGRESS_KEY] = {"coords": True, "done": done}
    return url


def _same_values(a: str, b: str) -> None:
    ra, rb = zarr.open_group(a, mode="r"), zarr.open_group(b, mode="r")
    np.testing.assert_array_equal(layout.sequence(ra)[:], layout.sequence(rb)[:])
    for name in (schema.REFERENCE, schema.SIGNAL, *schema.ALL_COORDS):
        np.testing.assert_array_equal(ra[name][:], rb[name][:], err_msg=name)


def test_migrated_store_has_the_same_values_and_validates(v4, tmp_path):
    out = migrate(v4, str(tmp_path / "v5.zarr"))
    _same_values(v4, out)
    info = schema.store_info(schema.open_store(out))
    assert info.schema_version == 5 and info.complete and info.block_loci == 32
    rep = validate(out)                  # against the CRC32s recorded for the schema-4 build
    assert rep.ok and rep.shards_checked == 4, rep.problems
    attrs = zarr.open_group(out, mode="r").attrs
    assert attrs[MIGRATE_KEY]["from_schema"] == 4 and attrs[MIGRATE_KEY]["done"] == [0, 1, 2, 3]
    with pytest.raises(InputError, match="already schema 5"):
        migrate(out, str(tmp_path / "again.zarr"))
    with pytest.raises(InputError, match="finished migration"):
        migrate(v4, out)


def test_a_damaged_source_shard_is_refused(v4, tmp_path):
    src = str(tmp_path / "src.zarr")
    shutil.copytree(v4, src)
    root = zarr.open_group(src, mode="r+")
    rec = dict(root.attrs[PROGRESS_KEY])
    rec["done"] = {**rec["done"], "2": {"crc32": [1, 2, 3], "counts": {}}}
    root.attrs[PROGRESS_KEY] = rec
    with pytest.raises(InputError, match="shard 2 .* CRC32s its build recorded"):
        migrate(src, str(tmp_path / "out.zarr"))
    with pytest.raises(IncompleteStoreError):
        StoreDataset.open(str(tmp_path / "out.zarr"))


def test_killed_migration_is_refused_then_finished_by_the_same_command(v4, tmp_path, capsys):
    out = str(tmp_path / "out.zarr")
    code = ("import os, sys; from clipstore.migrate import migrate; "
            f"migrate({v4!r}, {out!r}, after_shard=lambda i: i == 1 and "
            "os.kill(os.getpid(), 9))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == -9
    assert zarr.open_group(out, mode="r").attrs[MIGRATE_KEY]["done"] == [0, 1]
    with pytest.raises(IncompleteStoreError):
        StoreDataset.open(out)
    with pytest.raises(SystemExit) as e:            # incomplete: every reader refuses it
        main(["validate", out])
    assert e.value.code == 2
    main(["migrate", v4, out])
    assert "schema 5" in capsys.readouterr().out
    _same_values(v4, out)
    a = list(StoreDataset.open(v4).subsample(2, seed=3).with_rc(True).batches(40, seed=1))
    b = list(StoreDataset.open(out).subsample(2, seed=3).with_rc(True).batches(40, seed=1))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.x, y.x)
        np.testing.assert_array_equal(x.profile, y.profile)


def test_in_place_migration_and_its_recovery(v4, tmp_path):
    src = str(tmp_path / "s.zarr")
    shutil.copytree(v4, src)
    assert migrate(src) == src
    assert schema.store_info(schema.open_store(src)).schema_version == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]    # nothing left over
    _same_values(v4, src)
    # killed between the two renames: the old store renamed away, the new one complete
    src2 = str(tmp_path / "t.zarr")
    shutil.copytree(v4, src2)
    migrate(src2, src2 + ".migrating")
    os.replace(src2, src2 + ".schema4")
    assert migrate(src2) == src2
    assert not Path(src2 + ".schema4").exists() and not Path(src2 + ".migrating").exists()
    _same_values(v4, src2)


def test_cli_bad_input_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["migrate", str(tmp_path / "nothing.zarr"), str(tmp_path / "o.zarr")])
    assert e.value.code == 2 and "no clipstore store" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    zarr.open_group(str(other), mode="w")
    url = synthetic_store(str(tmp_path / "v4.zarr"), n_loci=8, shard_loci=8, schema_version=4)
    with pytest.raises(SystemExit) as e:
        main(["migrate", url, str(other)])
    assert e.value.code == 2 and "not a migration of this store" in capsys.readouterr().err
