"""One shard of a store as a pure function of the inputs: what a build task computes (and what
`clipstore validate` recomputes), from the plan `build.plan()` made in the driver."""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from . import schema
from .config import BuildConfig
from .encoding import one_hot
from .errors import InputError
from .fasta import contigs_of, fetch, open_fasta
from .tracks import open_bigwig, windows
from .variants import SKIP_KEYS, apply_snps, open_vcf


@dataclass(frozen=True)
class Plan:
    """Everything a shard task needs, as plain picklable data."""
    config: BuildConfig
    loci: dict[str, np.ndarray]
    individuals: list[str]
    library_individual: np.ndarray
    vcf_chroms: dict[str, str]            # FASTA contig → VCF contig
    bw_chroms: list[tuple[dict[str, str], dict[str, str]]]  # per library: plus, minus maps
    totals: np.ndarray
    counts: dict[str, int]                # locus-level skipped counts from the peaks
    signal_dtype: str = "float32"         # resolved from config.signal_dtype ("auto")
    inputs: dict[str, dict] = field(default_factory=dict)  # fingerprint of each input file

    @property
    def n_loci(self) -> int:
        return len(self.loci["start"])


def geometry(config: BuildConfig) -> schema.StoreInfo:
    """The store's windows for this config (lengths only): the one place they are derived."""
    return schema.StoreInfo(input_length=config.input_length, max_jitter=config.max_jitter,
                            output_length=config.output_length, shard_loci=config.shard_loci)


def compute_shard(p: Plan, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """(sequence, reference, signal, counts) of shard i: a pure function of the inputs."""
    cfg = p.config
    sl = schema.shard_slice(i, p.n_loci, cfg.shard_loci)
    geom = geometry(cfg)
    W, n = geom.window, sl.stop - sl.start
    SW, s_off = geom.signal_window, geom.signal_offset
    fa = open_fasta(cfg.reference)
    contigs = contigs_of(fa)
    ref = np.zeros((n, W, 4), np.uint8)
    seq = np.zeros((len(p.individuals), n, W, 4), np.uint8)
    sig = np.zeros((len(cfg.libraries), n, SW, 2), p.signal_dtype)
    counts = dict.fromkeys(SKIP_KEYS, 0)
    vcf = None
    if cfg.variants:
        vcf = open_vcf(cfg.variants)
        order = {s: k for k, s in enumerate(vcf.samples)}
        sample_idx = np.array([order[s] for s in p.individuals])
    chrom, start = p.loci["chrom"], p.loci["start"]
    for k, j in enumerate(range(sl.start, sl.stop)):
        c, s = str(chrom[j]), int(start[j])
        bases = fetch(fa, contigs[c], s, s + W)
        ref[k] = one_hot(bases)
        if vcf is not None and c in p.vcf_chroms:
            count_from = int(p.loci["end"][j - 1]) if j > 0 and chrom[j - 1] == c else -1
            try:
                seq[:, k] = apply_snps(vcf, cfg.variants, p.vcf_chroms[c], s, bases, ref[k],
                                       sample_idx, count_from, counts)
            except InputError:
                raise
            except Exception as e:      # cyvcf2 raises bare Exceptions on bad records
                raise InputError(f"cannot read records in {p.vcf_chroms[c]}:{s + 1}-{s + W} "
                                 f"({e})", file=cfg.variants, record=f"locus {j}",
                                 hint="check the VCF with `bcftools view`") from None
        else:
            seq[:, k] = ref[k][None] * 2
    fa.close()
    if vcf is not None:
        vcf.close()
    for li, lib in enumerate(cfg.libraries):
        for strand, path in enumerate((lib.plus, lib.minus)):
            bw = open_bigwig(path)
            names = p.bw_chroms[li][strand]
            for c in dict.fromkeys(chrom[sl].tolist()):      # loci are sorted by contig
                ks = np.flatnonzero(chrom[sl] == c)
                try:
                    w = windows(bw, names[c], start[sl][ks] + s_off, SW)
                except RuntimeError as e:   # libBigWig: a block that does not inflate
                    lo = int(start[sl][ks][0]) + s_off
                    raise InputError(f"cannot read values of {names[c]}:{lo + 1}-"
                                     f"{int(start[sl][ks][-1]) + s_off + SW} ({e}): the file is "
                                     "damaged or truncated", file=path,
                                     record=f"library {lib.id}",
                                     hint="copy or download the bigWig again") from None
                sig[li, ks, :, strand] = _exact(w, sig.dtype, path, lib.id, c,
                                                start[sl][ks] + s_off)
            bw.close()
    return seq, ref, sig, counts


def _exact(w: np.ndarray, dtype: np.dtype, path: str, library: str, chrom: str,
           starts: np.ndarray) -> np.ndarray:
    """Windows `w` (float32, one row per start) in the store's signal dtype, or an InputError
    naming the first value uint16 would not hold exactly (checked while `w` is in cache)."""
    if dtype == np.float32:
        return w
    out = w.astype(dtype)                 # truncates fractions, wraps overflow: caught here
    if np.array_equal(out, w):
        return out
    k, pos = (int(v[0]) for v in np.nonzero(out != w))
    raise InputError(
        f"value {float(w[k, pos])} at {chrom}:{int(starts[k]) + pos + 1} is not a whole count "
        f"in 0..{schema.UINT16_MAX}, so signal cannot be stored as uint16", file=path,
        record=f"library {library}",
        hint="set signal_dtype: float32 in the build config (or --signal-dtype float32) "
             "and rebuild with --overwrite")


def checksums(seq: np.ndarray, ref: np.ndarray, sig: np.ndarray) -> list[int]:
    """CRC32 of each array's C-order bytes: what `clipstore validate` recomputes from the store."""
    return [zlib.crc32(np.ascontiguousarray(a).data) for a in (seq, ref, sig)]  # no copy
