"""Fingerprints of a build's input files, recorded in the store, so that a resume or a rerun
over a complete store refuses inputs that changed since (shards before a kill would hold the
old data and shards after it the new, and the store would still say complete).

What is recorded per file: size, mtime and a blake2b content hash.
* Files up to FULL_HASH_BYTES are hashed whole (measured: blake2b 1 GB/s, so chr20's 18 MB
  `20.fa.gz` costs 0.02 s); a change is a different size or hash (mtime alone is not: a copy
  with `cp` changes it, the data is the same).
* Bigger files (genome-wide bigWigs run to GBs, ×2 per library) hash their first and last MiB
  (headers, chromosome tree and index live there) and SAMPLES evenly spaced 64 KiB blocks:
  ~4 MiB read per file. Sampling can miss an in-place edit, so for these a newer mtime also
  counts as a change.
* An indexed bgzipped VCF is read whole anyway (`bgzf.check_indexed` verifies every block's
  CRC32 and the index); its hash comes from that pass.
* URLs (s3://, gs://, https://): size and the service's ETag or mtime, as fsspec reports them.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any

from .bgzf import check_indexed, index_path
from .config import BuildConfig
from .paths import is_url

FULL_HASH_BYTES = 32 * 2**20
SAMPLES = 32
SAMPLE_BYTES = 64 * 2**10
EDGE_BYTES = 2**20
KEY = "clipstore_inputs"       # root attribute of the store: {path: fingerprint}


def input_files(config: BuildConfig) -> dict[str, str]:
    """{role: path} of every file whose bytes go into the store. Keyed by role, not path, so a
    copy of the inputs in another folder compares by content (`validate --inputs`)."""
    from .folds import normalize_spec
    spec = normalize_spec(config.folds)
    roles = {"reference": config.reference, "peaks": config.peaks}
    roles.update({k: p for k, p in (("variants", config.variants),
                                    ("folds", spec.get("map") or spec.get("path"))) if p})
    for lib in config.libraries:
        roles[f"library {lib.id} plus"] = lib.plus
        roles[f"library {lib.id} minus"] = lib.minus
    return roles


def _hash_file(path: str, size: int) -> tuple[str, str]:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        if size <= FULL_HASH_BYTES:
            while chunk := f.read(1 << 20):
                h.update(chunk)
            return h.hexdigest(), "full"
        step = (size - 2 * EDGE_BYTES) // (SAMPLES + 1)
        spans = [(0, EDGE_BYTES)] + [(EDGE_BYTES + k * step, SAMPLE_BYTES)
                                     for k in range(1, SAMPLES + 1)]
        spans.append((size - EDGE_BYTES, EDGE_BYTES))
        for off, n in spans:
            f.seek(off)
            h.update(f.read(n))
    return h.hexdigest(), "sampled"


def fingerprint(path: str, is_vcf: bool = False) -> dict[str, Any]:
    """{size, mtime, hash, method} of one input (see module doc)."""
    if is_url(path):
        import fsspec
        fs, p = fsspec.core.url_to_fs(path)
        info = fs.info(p)
        tag = info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("mtime")
        return {"path": path, "size": int(info.get("size") or 0), "mtime": None,
                "hash": str(tag), "method": "remote"}
    st = os.stat(path)
    if is_vcf and index_path(path):
        digest, method = check_indexed(path), "full+bgzf"
    else:
        digest, method = _hash_file(path, st.st_size)
    return {"path": path, "size": st.st_size, "mtime": st.st_mtime, "hash": digest,
            "method": method}


def fingerprints(config: BuildConfig, known: dict[str, dict[str, Any]] | None = None
                 ) -> dict[str, dict[str, Any]]:
    """{role: fingerprint} of every input (the VCF's blocks and index verified on the way);
    `known`: fingerprints already taken (the VCF's, before it was read)."""
    known = known or {}
    return {role: known.get(role) or fingerprint(p, is_vcf=role == "variants")
            for role, p in input_files(config).items()}


def changes(recorded: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]]
            ) -> list[str]:
    """One line per input that differs from what the store recorded, naming the file."""
    out = []
    for role, now in current.items():
        was, path = recorded.get(role), now["path"]
        if was is None:
            out.append(f"{path} ({role}): not an input of the recorded build")
        elif was["size"] != now["size"]:
            out.append(f"{path} ({role}): size {was['size']} → {now['size']} bytes")
        elif was["hash"] != now["hash"]:
            out.append(f"{path} ({role}): content changed (same size)")
        elif now["method"] == "sampled" and was.get("mtime") != now.get("mtime"):
            out.append(f"{path} ({role}): modified since the build (mtime changed; a large "
                       "file, its content is sampled)")
    out += [f"{was['path']} ({role}): no longer an input" for role, was in recorded.items()
            if role not in current]
    return out
