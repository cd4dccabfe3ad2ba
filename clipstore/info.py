"""Summary of a store: dims, folds with locus counts, skipped counts, size on disk, config."""
from __future__ import annotations

from typing import Any

import numpy as np

from . import schema

# What a store's recorded counts mean: records that went INTO the store, and records or loci
# left out (or only partly used), each with its reason.
USED = {
    "peaks_read": "peak records read",
    "snps": "biallelic SNP records applied to the individuals' sequences",
    "unphased": "unphased genotype calls used (a two-hot sequence needs no phase)",
}
SKIPPED = {
    "peaks_unpaired": "stranded peaks without a divergent partner",
    "loci_off_edge": "loci whose window runs off a contig (or the FASTA slice)",
    "loci_other_contig": "loci on contigs that are not in the reference FASTA",
    "duplicate_peaks": "peaks whose span was already read",
    "loci_no_fold": "loci without a fold under the fold scheme (kept, fold -1: never trained on)",
    "loci_fold_conflict": "loci whose window spans fold regions that disagree (kept, fold -1)",
    "indels": "indel records (only SNPs change the stored sequence)",
    "multiallelic": "multi-allelic records",
    "sv": "structural-variant records",
    "missing_calls": "genotype calls with a missing allele (that allele reads as reference)",
}


def split_counts(counts: dict[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    """(used, skipped) counts; an unknown key counts as skipped (never silently used)."""
    used = {k: int(counts[k]) for k in USED if k in counts}
    return used, {k: int(v) for k, v in counts.items() if k not in USED}


def count_lines(counts: dict[str, int]) -> list[str]:
    """One line per count, used first, each with its reason."""
    used, skipped = split_counts(counts)
    return ([f"used       {k} {v}: {USED[k]}" for k, v in used.items()]
            + [f"skipped    {k} {v}: {SKIPPED.get(k, 'see the build log')}"
               for k, v in skipped.items()])


def size_on_disk(url: str, storage_options: dict | None = None) -> int:
    import fsspec
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    return int(fs.du(path, total=True))


def store_summary(url: str, storage_options: dict | None = None) -> dict[str, Any]:
    """JSON-safe summary; works on incomplete stores too (it says so)."""
    root = schema.open_store(url, storage_options=storage_options, require_complete=False)
    info = schema.store_info(root)
    folds, counts = np.unique(root["fold"][:], return_counts=True)
    dims = {"individual": root["individual_id"].shape[0], "locus": root[schema.REFERENCE].shape[0],
            "position": info.window, "signal_position": info.signal_window,
            "library": root[schema.SIGNAL].shape[0]}
    return {
        "store": url, "complete": info.complete, "reference_only": info.reference_only,
        "dims": dims, "input_length": info.input_length, "max_jitter": info.max_jitter,
        "output_length": info.output_length, "shard_loci": info.shard_loci,
        "schema_version": info.schema_version, "block_loci": info.block_loci,
        "signal_dtype": info.signal_dtype,
        "folds": {int(f): int(n) for f, n in zip(folds, counts)},
        "fold_scheme": fold_scheme_line(root.attrs[schema.ATTRS_KEY]),
        **dict(zip(("used", "skipped"), split_counts(dict(info.skipped or {})))),
        "size_bytes": size_on_disk(url, storage_options),
        "clipstore_version": info.clipstore_version, "build_config": dict(info.build_config or {}),
    }


def fold_scheme_line(attrs: dict[str, Any]) -> str:
    """The store's fold scheme in words (and whether `clipstore folds` was interrupted)."""
    from .folds import describe
    from .refold import rewrite_interrupted, store_spec
    line = describe(store_spec(attrs))
    return line + ("; REWRITE INTERRUPTED: rerun `clipstore folds`"
                   if rewrite_interrupted(attrs) else "")


def format_summary(s: dict[str, Any]) -> str:
    d = s["dims"]
    lines = [f"store        {s['store']}" + ("" if s["complete"] else "   (INCOMPLETE build)"),
             f"dims         individual {d['individual']}  locus {d['locus']}  position "
             f"{d['position']}  signal_position {d['signal_position']}  library {d['library']}",
             f"lengths      input {s['input_length']}  jitter ±{s['max_jitter']}  output "
             f"{s['output_length']}  shard {s['shard_loci']} loci  signal {s['signal_dtype']}",
             f"layout       schema {s['schema_version']}, " + (
                 f"row-major ({s['block_loci']}-locus chunks per individual / library)"
                 if s["block_loci"] else "locus-major (`clipstore migrate` rewrites it)"),
             "folds        " + "  ".join(f"{f}:{n}" for f, n in s["folds"].items())
             + f"   ({s['fold_scheme']})",
             f"size         {s['size_bytes'] / 2**20:.2f} MiB",
             f"version      clipstore {s['clipstore_version']}"]
    lines += [ln.replace("used       ", "used         ").replace("skipped    ", "skipped      ")
              for ln in count_lines({**s["used"], **s["skipped"]})]
    cfg = s["build_config"]
    lines.append("config       " + ", ".join(
        f"{k}={v}" for k, v in cfg.items() if k != "libraries"))
    lines.append(f"libraries    {len(cfg.get('libraries', []))}")
    return "\n".join(lines)
