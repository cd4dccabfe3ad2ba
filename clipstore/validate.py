"""Re-check a store: per-shard CRC32s recorded at build time, and (with the inputs) a random
sample of examples recomputed from the FASTA, VCF and bigWigs."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import layout, schema
from .build import PROGRESS_KEY, checksums, compute_shard, plan
from .config import BuildConfig, load_config
from .errors import InputError
from .fingerprint import KEY as INPUTS_KEY, changes


@dataclass
class ValidationReport:
    shards_checked: int = 0
    examples_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate(url: str, inputs: str | BuildConfig | None = None, n: int = 200, seed: int = 0,
             storage_options: dict | None = None) -> ValidationReport:
    root = schema.open_store(url, storage_options=storage_options)
    info = schema.store_info(root)
    rep = ValidationReport()
    done = (root.attrs.get(PROGRESS_KEY) or {}).get("done", {})
    n_loci = root[schema.REFERENCE].shape[0]
    sequence = layout.sequence(root)       # the two-hot cube, whatever the layout
    for i in range(schema.n_shards(n_loci, info.shard_loci)):
        sl = schema.shard_slice(i, n_loci, info.shard_loci)
        rep.shards_checked += 1
        try:
            arrays = layout.read_shard(root, sl)
        except Exception as e:  # corrupt bytes fail in the codec: a finding, not a crash
            rep.problems.append(f"shard {i} (loci {sl.start}-{sl.stop - 1}): unreadable "
                                f"({type(e).__name__}: {e})")
            continue
        want = done.get(str(i), {}).get("crc32")
        if want is None:
            rep.problems.append(f"shard {i}: no checksum recorded")
        elif checksums(*arrays) != list(want):
            rep.problems.append(f"shard {i} (loci {sl.start}-{sl.stop - 1}): checksum mismatch")
    if inputs is None:
        return rep
    cfg = load_config(inputs) if not isinstance(inputs, BuildConfig) else inputs
    cfg = cfg.replace(shard_loci=info.shard_loci)
    p = plan(cfg)
    recorded = root.attrs.get(INPUTS_KEY)
    if recorded is None:
        rep.problems.append("the store records no input fingerprints (built by an older "
                            "clipstore): cannot tell whether the inputs changed")
    else:
        rep.problems += [f"input changed since the build: {c}" for c in changes(recorded, p.inputs)]
    if list(p.loci["locus_id"]) != list(root["locus_id"][:]):
        raise InputError("the inputs give different loci than the store holds", file=str(inputs),
                         hint="validate against the config the store was built from")
    rng = np.random.default_rng(seed)
    n_lib = root[schema.SIGNAL].shape[0]
    pairs = sorted({(int(rng.integers(n_lib)), int(rng.integers(n_loci))) for _ in range(n)},
                   key=lambda t: t[1])
    lib_ind = root["library_individual"][:]
    cache: dict[int, tuple] = {}
    for lib, locus in pairs:
        s = locus // info.shard_loci
        if s not in cache:
            cache = {s: compute_shard(p, s)}
        seq, ref, sig, _ = cache[s]
        k = locus - s * info.shard_loci
        ind = int(lib_ind[lib])
        if not np.array_equal(sequence[ind, locus], seq[ind, k]):
            rep.problems.append(f"sequence of individual {ind} at locus {locus} differs from inputs")
        if not np.array_equal(root[schema.REFERENCE][locus], ref[k]):
            rep.problems.append(f"reference at locus {locus} differs from inputs")
        if not np.array_equal(root[schema.SIGNAL][lib, locus], sig[lib, k]):
            rep.problems.append(f"signal of library {lib} at locus {locus} differs from inputs")
        rep.examples_checked += 1
    return rep
