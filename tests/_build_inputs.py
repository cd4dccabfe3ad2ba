"""Small, seeded build inputs written with real writers (pysam, pyBigWig), and independent
oracles (pyfaidx + cyvcf2 + pyBigWig) that the build tests compare stores against.

The cohort deliberately mixes contig spellings (FASTA/bigWig/peaks `chrN`, VCF `N`), plants
indels, multi-allelic sites, a structural variant, missing and unphased calls, unpaired peaks
and a locus off a contig edge, and records what it planted in `planted`.
"""
from __future__ import annotations

import gzip
import time
from pathlib import Path

import numpy as np
import pyBigWig
import pysam
import yaml
import zarr

from clipstore import schema

CONTIGS = {"chr1": 30_000, "chr2": 20_000}


def write_cohort(out: Path, *, seed: int = 0, n_individuals: int = 4, loci_per_contig: int = 40,
                 variants: bool = True, input_length: int = 100, max_jitter: int = 10,
                 shard_loci: int = 8, gz_peaks: bool = True, contigs: dict | None = None,
                 replicates: int = 1, variants_per_locus: int = 4,
                 realistic: bool = False) -> dict:
    """Write FASTA, VCF, bigWigs, peaks, library table and build.yaml under `out`.

    Individual 1..`replicates` get a second library (isogenic replicates). `realistic` (bench):
    allele frequencies from a rare-skewed spectrum and small, TSS-clustered counts, instead of
    the uniform genotypes and counts that exercise every code path in tests."""
    contigs = contigs or CONTIGS
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    W = input_length + 2 * max_jitter
    seqs = {c: "".join(rng.choice(list("ACGT"), n)) for c, n in contigs.items()}
    fa = out / "ref.fa"
    fa.write_text("".join(f">{c}\n" + "\n".join(s[i:i + 60] for i in range(0, len(s), 60)) + "\n"
                          for c, s in seqs.items()))
    pysam.tabix_compress(str(fa), str(fa) + ".gz", force=True)
    plain = fa.rename(out / "oracle_ref.fa")   # for pyfaidx, which needs BioPython for bgzf
    fa = Path(str(fa) + ".gz")
    pysam.faidx(str(fa))
    planted = {"peaks_unpaired": 0, "loci_off_edge": 0, "indels": 0, "multiallelic": 0, "sv": 0,
               "missing_calls": 0, "unphased": 0, "snps": 0}
    # peaks: divergent pairs (minus left, plus right), unpaired peaks, one locus off the edge
    rows, centres = [], {c: [] for c in contigs}
    for c, n in contigs.items():
        cs = np.sort(rng.choice(np.arange(200, n - 200, 90), loci_per_contig, replace=False))
        for x in cs:
            rows.append((c, x - 40, x - 5, "-"))
            rows.append((c, x + 5, x + 40, "+"))
            centres[c].append(int(x))
        rows.append((c, 10, 30, "-"))            # pair centred at ~32: window runs off the start
        rows.append((c, 34, 55, "+"))
        planted["loci_off_edge"] += 1
        rows.append((c, n - 150, n - 120, "+"))   # lone plus peak: unpaired
        planted["peaks_unpaired"] += 1
    bed = "".join(f"{c}\t{s}\t{e}\tpk{i}\t0\t{st}\n" for i, (c, s, e, st) in enumerate(rows))
    peaks = out / ("peaks.bed.gz" if gz_peaks else "peaks.bed")
    if gz_peaks:
        with gzip.open(peaks, "wt") as f:
            f.write(bed)
    else:
        peaks.write_text(bed)
    samples = [f"ind{i}" for i in range(n_individuals)]
    cfg = {"reference": fa.name, "peaks": peaks.name, "libraries": "libraries.tsv",
           "input_length": input_length, "max_jitter": max_jitter,
           "output_length": input_length // 2, "shard_loci": shard_loci}
    if variants:
        cfg["variants"] = write_vcf(out / "cohort.vcf", seqs, samples, centres, W, rng, planted,
                                    variants_per_locus, realistic)
    libs = [(f"lib{i}", s) for i, s in enumerate(samples)]
    libs += [(f"lib{i}b", samples[i]) for i in range(1, 1 + replicates)]
    lines = ["library\tindividual\tplus\tminus"]
    for lib, ind in libs:
        pl, mn = out / f"{lib}.pl.bw", out / f"{lib}.mn.bw"
        write_bigwig(pl, rng, 1.0, contigs, centres if realistic else None)
        write_bigwig(mn, rng, -1.0, contigs, centres if realistic else None)
        lines.append(f"{lib}\t{ind}\t{pl.name}\t{mn.name}")
    (out / "libraries.tsv").write_text("\n".join(lines) + "\n")
    (out / "build.yaml").write_text(yaml.safe_dump(cfg))
    return {"config": out / "build.yaml", "reference": fa, "plain_reference": plain,
            "peaks": peaks, "planted": planted,
            "samples": samples, "libraries": libs, "dir": out}


def write_vcf(path: Path, seqs: dict, samples: list[str], centres: dict, W: int, rng,
              planted: dict, per_locus: int = 4, realistic: bool = False) -> str:
    head = ["##fileformat=VCFv4.2", '##FORMAT=<ID=GT,Number=1,Type=String,Description="GT">',
            '##INFO=<ID=SVTYPE,Number=1,Type=String,Description="SV type">']
    head += [f"##contig=<ID={c[3:]},length={len(s)}>" for c, s in seqs.items()]
    head.append("\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO",
                           "FORMAT", *samples, "extra"]))
    body = []
    for c, s in seqs.items():
        covered = np.zeros(len(s), bool)
        for x in centres[c]:
            covered[x - W // 2:x - W // 2 + W] = True
        pos = np.sort(rng.choice(np.flatnonzero(covered), min(covered.sum(), len(centres[c]) * per_locus),
                                   replace=False))
        for k, p in enumerate(pos):
            ref = s[p]
            alt = rng.choice([b for b in "ACGT" if b != ref])
            kind = ["snp"] * 6 + ["indel", "multi", "sv", "del"]
            kind = kind[k % len(kind)]
            info = "."
            if kind == "indel":
                kind = "indels"
                alt = ref + "AC"
            elif kind == "del":
                ref, alt = s[p:p + 3], s[p]
                kind = "indels"
            elif kind == "multi":
                alt = ",".join(b for b in "ACGT" if b != ref)[:3]
            elif kind == "sv":
                alt, info = "<DEL>", "SVTYPE=DEL"
            planted["multiallelic" if kind == "multi" else "snps" if kind == "snp" else kind] += 1
            gts = []
            af = min(rng.beta(0.15, 1.0), 0.5) if realistic else 0.5
            for _ in samples:
                a, b = (rng.random(2) < af).astype(int)
                r = rng.random()
                if r < (0.01 if realistic else 0.08):
                    gt = "./." if rng.random() < 0.5 else f".|{b}"
                    planted["missing_calls"] += kind == "snp"
                elif r < (0.02 if realistic else 0.2):
                    gt = f"{a}/{b}"
                    planted["unphased"] += kind == "snp"
                else:
                    gt = f"{a}|{b}"
                gts.append(gt)
            body.append("\t".join([c[3:], str(p + 1), f"v{c}_{p}", ref, alt, ".", "PASS", info,
                                   "GT", *gts, "0|1"]))
    path.write_text("\n".join(head + body) + "\n")
    gz = pysam.tabix_index(str(path), preset="vcf", force=True)
    return Path(gz).name


def write_bigwig(path: Path, rng, sign: float, contigs: dict | None = None,
                 centres: dict | None = None) -> None:
    contigs = contigs or CONTIGS
    bw = pyBigWig.open(str(path), "w")
    bw.addHeader(list(contigs.items()))
    for c, n in contigs.items():
        if centres is not None:    # reads pile up within ~±60 bp of each TSS, mostly 1-3 counts
            pos = np.concatenate([x + rng.normal(0, 30, rng.poisson(40)).astype(np.int64)
                                  for x in centres[c]] + [rng.integers(0, n, n // 500)])
            starts, vals = np.unique(np.clip(pos, 0, n - 1), return_counts=True)
            bw.addEntries(c, starts.tolist(), values=(sign * vals).astype(float).tolist(), span=1)
            continue
        starts = np.sort(rng.choice(n - 1, n // 12, replace=False)).astype(np.int64)
        vals = (sign * rng.integers(1, 20, len(starts))).astype(np.float64)
        bw.addEntries(c, starts.tolist(), values=vals.tolist(), span=1)
    bw.close()


# ---------------------------------------------------------------- independent oracles
def haplotypes(fasta: str, vcf: str, sample: str, chrom: str, start: int, end: int,
               vcf_chrom: str | None = None, offset: int = 0) -> tuple[str, str]:
    """Two haplotype strings over [start, end) from pyfaidx + cyvcf2, applying biallelic SNPs
    only; a missing allele stays the reference. `offset`: genome position of the record's
    first base (for region-named slice FASTAs)."""
    import cyvcf2
    import pyfaidx
    with pyfaidx.Fasta(fasta, as_raw=True, sequence_always_upper=True) as fa:
        ref = fa[chrom][start - offset:end - offset]
    h = [list(ref), list(ref)]
    v = cyvcf2.VCF(vcf, samples=[sample])
    for rec in v(f"{vcf_chrom or chrom}:{start + 1}-{end}"):
        p = rec.POS - 1 - start
        if p < 0 or len(rec.REF) != 1 or len(rec.ALT) != 1 or len(rec.ALT[0]) != 1 \
                or rec.ALT[0] not in "ACGT":
            continue
        assert rec.REF == ref[p]
        gt = rec.genotypes[0]
        for k in range(2):
            if gt[k] == 1:
                h[k][p] = rec.ALT[0]
    return "".join(h[0]), "".join(h[1])


def bigwig_window(path: str, chrom: str, start: int, end: int) -> np.ndarray:
    with pyBigWig.open(str(path)) as bw:
        return np.abs(np.nan_to_num(np.array(bw.values(chrom, start, end)), nan=0.0))


STORE_ARRAYS = (schema.SEQUENCE_DELTA, schema.REFERENCE, schema.SIGNAL, "locus_id", "chrom", "start",
                "end", "centre", "fold", "library_id", "library_individual", "total_counts",
                "individual_id")


def assert_same_store(a: str, b: str, so_a: dict | None = None, so_b: dict | None = None) -> None:
    """Every array, the store info and the per-shard checksums equal (local or fsspec URLs)."""
    ra = zarr.open_group(a, mode="r", storage_options=so_a)
    rb = zarr.open_group(b, mode="r", storage_options=so_b)
    for name in STORE_ARRAYS:
        np.testing.assert_array_equal(ra[name][:], rb[name][:], err_msg=name)
    assert schema.store_info(ra) == schema.store_info(rb)
    assert ra.attrs["clipstore_build"] == rb.attrs["clipstore_build"]


def shards_done(out: str) -> int:
    """Shards a (possibly running) build has recorded as done in the store's progress."""
    from clipstore.build import PROGRESS_KEY
    if not Path(out, "zarr.json").exists():
        return 0
    try:
        return len((zarr.open_group(out, mode="r").attrs.get(PROGRESS_KEY) or {}).get("done", {}))
    except Exception:          # the driver is rewriting zarr.json right now
        return 0


def wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# ---------------------------------------------------------------- builds as real processes
_BUILD_SCRIPT = """
import json, os, signal, sys, time
from clipstore.build import BuildHooks, build
a = json.loads(sys.argv[1])
delay, kill_after = a.pop("delay"), a.pop("kill_after")

def after_write(i):
    time.sleep(delay)

def after_record(i, n):
    if n >= kill_after:
        os.kill(os.getpid(), signal.SIGKILL)

if __name__ == "__main__":
    build(a.pop("config"), a.pop("out"), hooks=BuildHooks(
        after_write if delay else None, after_record if kill_after else None), **a)
"""


def build_process(config, out: str, *, kill_after: int | None = None,
                  delay: float | None = None, **kw) -> list[str]:
    """argv of a real `python` process that builds `config` into `out` through the same
    `build()` the CLI calls, with test hooks: SIGKILL itself once `kill_after` shards are
    recorded, and/or sleep `delay` s after each shard write (in whichever process wrote it,
    dask workers included), so that kills land mid-build."""
    import json
    import sys
    args = {"config": str(config), "out": str(out), "kill_after": kill_after, "delay": delay,
            **kw}
    return [sys.executable, "-c", _BUILD_SCRIPT, json.dumps(args)]
