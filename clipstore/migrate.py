"""`clipstore migrate STORE [OUT]`: rewrite a schema 2-4 (locus-major) store in the current
row-major layout (schema 5) without the build's inputs. Resumable, never complete early.

How: OUT is created with `complete` False and a `clipstore_migrate` record (source, shards
done); each locus shard is read from STORE through zarr (its crc32c checks on every chunk),
checked against the CRC32s the build recorded for it (when the store has them), written whole
in the new layout and recorded done; the last write marks OUT complete. A killed migration
rerun with the same command skips the shards done. The build's own record (per-shard CRC32s of
the two-hot arrays, input fingerprints) is carried over unchanged, so `clipstore validate`
checks the migrated store against the CRC32s of the original build.

Without OUT (local stores only) the new store is written beside STORE (`STORE.migrating`) and
then swapped in: STORE is renamed to `STORE.schema<N>` and the new store renamed to STORE; the
old copy is deleted only after the swap (rerunning after a kill between the renames finishes it).
"""
from __future__ import annotations

import dataclasses
import os
import shutil

import numpy as np
import zarr

from . import layout, schema
from .build import PROGRESS_KEY, writing
from .errors import InputError
from .shard import checksums

MIGRATE_KEY = "clipstore_migrate"


def migrate(src: str, out: str | None = None, *, storage_options: dict | None = None,
            after_shard=None) -> str:
    """Migrate `src` to schema `schema.SCHEMA_VERSION` at `out` (default: in place); returns
    the migrated store's URL. `after_shard(i)` (tests) runs after each shard is recorded."""
    if out is None:
        return _in_place(src, after_shard)
    root = schema.open_store(src, storage_options=storage_options)
    info = schema.store_info(root)
    if info.rows:
        raise InputError(f"this store is already schema {info.schema_version}: nothing to do",
                         file=src)
    dst = _open_or_create(root, info, src, out, storage_options)
    n_loci = root[schema.REFERENCE].shape[0]
    record = dict(dst.attrs[MIGRATE_KEY])
    done = set(record["done"])
    crcs = (root.attrs.get(PROGRESS_KEY) or {}).get("done", {})
    for i in range(schema.n_shards(n_loci, info.shard_loci)):
        if i in done:
            continue
        sl = schema.shard_slice(i, n_loci, info.shard_loci)
        seq, ref, sig = layout.read_shard(root, sl)
        want = crcs.get(str(i), {}).get("crc32")
        if want is not None and list(want) != checksums(seq, ref, sig):
            raise InputError(f"shard {i} (loci {sl.start}-{sl.stop - 1}) does not match the "
                             "CRC32s its build recorded", file=src,
                             hint="the store is damaged: rebuild it from its inputs")
        with writing(out):
            layout.write_shard(dst, sl, seq, ref, sig)
            done.add(i)
            dst.attrs[MIGRATE_KEY] = {**record, "done": sorted(done)}
        if after_shard is not None:
            after_shard(i)
    with writing(out):
        schema.mark_complete(dst)
    return out


def _open_or_create(root: zarr.Group, info: schema.StoreInfo, src: str, out: str,
                    storage_options: dict | None) -> zarr.Group:
    """OUT as a migration of `src` in progress: resumed when it is one, else created."""
    try:
        dst = zarr.open_group(out, mode="r", zarr_format=3, storage_options=storage_options)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        dst = None
    if dst is not None:
        rec = dst.attrs.get(MIGRATE_KEY)
        if rec is None or rec.get("from") != _abs(src):
            raise InputError("output already holds something that is not a migration of this "
                             "store", file=out, hint="choose another OUT, or delete it first")
        if schema.store_info(dst).complete:
            raise InputError("output already holds a finished migration of this store",
                             file=out, hint="use it, or delete it to migrate again")
        return zarr.open_group(out, mode="r+", zarr_format=3, storage_options=storage_options)
    attrs = dict(root.attrs[schema.ATTRS_KEY])
    new = dataclasses.replace(info, schema_version=schema.SCHEMA_VERSION, complete=False,
                              block_loci=0, signal_dtype=np.dtype(root[schema.SIGNAL].dtype).name)
    n_ind = root["individual_id"].shape[0]
    with writing(out):
        dst = schema.create_store(out, n_loci=root[schema.REFERENCE].shape[0],
                                  individuals=[str(s) for s in root["individual_id"][:]],
                                  libraries=[str(s) for s in root["library_id"][:]],
                                  library_individual=root["library_individual"][:], info=new,
                                  storage_options=storage_options)
        assert dst["individual_id"].shape[0] == n_ind
        for name in schema.ALL_COORDS:
            dst[name][:] = root[name][:]
        for key, value in root.attrs.items():         # the build's record, fingerprints
            if key != schema.ATTRS_KEY:
                dst.attrs[key] = value
        dst.attrs[schema.ATTRS_KEY] = {**attrs, **dst.attrs[schema.ATTRS_KEY], "complete": False}
        dst.attrs[MIGRATE_KEY] = {"from": _abs(src), "from_schema": info.schema_version,
                                  "done": []}
    return dst


def _abs(url: str) -> str:
    return url if "://" in url else os.path.abspath(url)


def _in_place(src: str, after_shard) -> str:
    """Migrate a local store in place: write beside it, then swap (see the module doc)."""
    if "://" in src and not src.startswith("file://"):
        raise InputError("in-place migration works on local stores only", file=src,
                         hint="give an OUT: `clipstore migrate STORE OUT`")
    src = os.path.abspath(src.removeprefix("file://"))
    tmp = src.rstrip("/") + ".migrating"
    if not os.path.exists(src) and os.path.exists(tmp):   # killed between the two renames
        old = _old_copy(src)
        if old is None:
            raise InputError("no store here, only an unfinished migration", file=tmp,
                             hint="rerun the migration from the original store")
        os.replace(tmp, src)
        shutil.rmtree(old)
        return src
    root = schema.open_store(src)
    info = schema.store_info(root)
    if info.rows and _old_copy(src) is not None:       # killed before deleting the old copy
        shutil.rmtree(_old_copy(src))
        return src
    finished = False
    if os.path.exists(tmp):
        tmp_root = zarr.open_group(tmp, mode="r")
        rec = tmp_root.attrs.get(MIGRATE_KEY) or {}
        if rec.get("from") != src:
            raise InputError("a leftover that is not a migration of this store is in the way",
                             file=tmp, hint="move or delete it")
        finished = schema.store_info(tmp_root).complete
    if not finished:
        migrate(src, tmp, after_shard=after_shard)
    old = f"{src}.schema{info.schema_version}"
    os.replace(src, old)
    os.replace(tmp, src)
    shutil.rmtree(old)
    return src


def _old_copy(src: str) -> str | None:
    for v in range(schema.MIN_SCHEMA_VERSION, schema.SCHEMA_VERSION):
        if os.path.isdir(f"{src}.schema{v}"):
            return f"{src}.schema{v}"
    return None


def _cli():
    import click

    @click.command(context_settings={"help_option_names": ["-h", "--help"]})
    @click.argument("store")
    @click.argument("out", required=False)
    def migrate_cmd(store: str, out: str | None) -> None:
        """Rewrite STORE (schema 2-4) in the current layout, at OUT or in place.

        Resumable: a killed migration rerun with the same command finishes it; OUT is marked
        complete only by the last write. Values are unchanged (checked against the CRC32s the
        build recorded).
        """
        url = migrate(store, out)
        click.echo(f"migrated     {store} -> {url} (schema {schema.SCHEMA_VERSION})")

    return migrate_cmd


command = _cli()
