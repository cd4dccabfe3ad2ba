"""Seeded synthetic stores written straight through `schema.create_store` (no build needed).

Realistic enough for reader tests and the loader benchmark: a random reference per locus, each
individual = 2 x reference with sparse heterozygous SNPs, and sparse (~92 % zero) count tracks.
"""
from __future__ import annotations

import numpy as np

from clipstore import layout, schema


def synthetic_store(url: str, *, n_loci: int = 300, n_individuals: int = 6,
                    replicates: int = 2, input_length: int = 100, max_jitter: int = 10,
                    output_length: int = 50, shard_loci: int = 32, seed: int = 0,
                    reference_only: bool = False, variant_rate: float = 1e-3,
                    storage_options: dict | None = None, distinct_shards: int | None = None,
                    complete: bool = True, signal_dtype: str = "float32",
                    schema_version: int = schema.SCHEMA_VERSION) -> str:
    """Write a complete store; the first `replicates` individuals get a second library.

    `distinct_shards` (bench only) generates that many shards of random data and reuses them
    rolled for the rest, to keep creating a 20k-locus store fast.
    """
    rng = np.random.default_rng(seed)
    info = schema.StoreInfo(input_length=input_length, max_jitter=max_jitter,
                            output_length=output_length, shard_loci=shard_loci,
                            reference_only=reference_only, signal_dtype=signal_dtype,
                            schema_version=schema_version)
    if reference_only:
        n_individuals, replicates = 1, 0
    individuals = [f"ind{i:03d}" for i in range(n_individuals)]
    lib_ind = list(range(n_individuals)) + list(range(replicates))
    libraries = [f"lib{i:03d}_{individuals[j]}" for i, j in enumerate(lib_ind)]
    root = schema.create_store(url, n_loci=n_loci, individuals=individuals, libraries=libraries,
                               library_individual=np.asarray(lib_ind), info=info,
                               storage_options=storage_options, overwrite=True)
    W = info.window
    chroms = np.array([f"chr{c}" for c in range(1, 23)])
    chrom = chroms[np.sort(rng.integers(0, len(chroms), n_loci))]
    from clipstore.folds import fold_of, load_fold_map
    fmap = load_fold_map()
    starts = np.arange(n_loci, dtype=np.int64) * 10_000
    root["locus_id"][:] = np.array([f"peak{i}" for i in range(n_loci)])
    root["chrom"][:] = chrom
    root["start"][:] = starts
    root["end"][:] = starts + W
    root["centre"][:] = starts + W // 2
    root["fold"][:] = np.array([fold_of(c, fmap) for c in chrom], dtype=np.int8)
    n_lib = len(libraries)
    cache: dict[int, tuple] = {}
    for s in range(schema.n_shards(n_loci, shard_loci)):
        sl = schema.shard_slice(s, n_loci, shard_loci)
        n = sl.stop - sl.start
        key = s if distinct_shards is None else s % distinct_shards
        if key not in cache:
            ref, seq, sig = _shard_data(rng, shard_loci, W, n_individuals, n_lib, variant_rate)
            # counts are drawn over the whole sequence window and the signal window cut out,
            # so the random stream (and every store's content) is the same as before signal
            # shrank to output + 2 x jitter (schema 2)
            off = info.signal_offset
            sig = np.ascontiguousarray(sig[:, :, off:off + info.signal_window])
            if distinct_shards is not None:
                cache[key] = (ref, seq, sig)
        else:
            ref, seq, sig = cache[key]
            r = s // max(distinct_shards or 1, 1)
            seq = np.roll(seq, r, axis=0)
            sig = np.roll(sig, r, axis=0)
        layout.write_shard(root, sl, seq[:, :n], ref[:n], sig[:, :n])
    root["total_counts"][:] = rng.uniform(1e6, 3e7, n_lib)
    if complete:
        schema.mark_complete(root)
    return url


def _shard_data(rng, P, W, n_ind, n_lib, variant_rate):
    bases = rng.integers(0, 4, (P, W))
    ref = np.zeros((P, W, 4), np.uint8)
    np.put_along_axis(ref, bases[..., None], 1, axis=-1)
    seq = np.broadcast_to(2 * ref, (n_ind, P, W, 4)).copy()
    n_var = rng.binomial(n_ind * P * W, variant_rate)
    i, p, w = rng.integers(0, n_ind, n_var), rng.integers(0, P, n_var), rng.integers(0, W, n_var)
    alt = (bases[p, w] + rng.integers(1, 4, n_var)) % 4
    seq[i, p, w, bases[p, w]] = 1
    seq[i, p, w, alt] = 1
    sig = np.zeros((n_lib, P, W, 2), np.float32)
    nz = rng.random(sig.shape, dtype=np.float32) < 0.08 if sig.size < 5e7 else None
    if nz is None:  # big shards: place nonzeros by index, cheaper than a full random mask
        k = int(sig.size * 0.08)
        flat = sig.reshape(-1)
        flat[rng.integers(0, sig.size, k)] = rng.integers(1, 20, k).astype(np.float32)
    else:
        sig[nz] = rng.integers(1, 20, int(nz.sum())).astype(np.float32)
    return ref, seq, sig
