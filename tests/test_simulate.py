"""The cohort simulator: reproducible, readable by the real parsers, truth consistent with the
files, planted effects really present in the tracks, skipped counts the build agrees with."""
from __future__ import annotations

import csv
import gzip
import hashlib
import json
from pathlib import Path

import cyvcf2
import numpy as np
import pyBigWig
import pytest
import zarr
from scipy import stats

from clipstore import schema
from clipstore.build import build
from clipstore.cli import main as cli_main
from clipstore.folds import fold_of, load_fold_map
from clipstore.simulate import SimOutputs, simulate

TINY = dict(n_loci=24, n_individuals=3, replicates=1, mpra_max=40)


def read_tsv(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def libraries(sim: SimOutputs) -> list[dict]:
    rows = read_tsv(sim.libraries_tsv)
    for r in rows:
        r["plus"] = str(Path(sim.libraries_tsv).parent / r["plus"])
        r["minus"] = str(Path(sim.libraries_tsv).parent / r["minus"])
    return rows


def plain_fasta(sim: SimOutputs, tmp_path: Path) -> Path:
    """pyfaidx reads bgzipped FASTA only with BioPython; decompress (bgzf is gzip)."""
    out = tmp_path / "ref.fa"
    out.write_bytes(gzip.decompress(Path(sim.reference).read_bytes()))
    return out


def digest(out: Path) -> dict[str, str]:
    """Content hash of every output (bigWigs by values, gz files decompressed)."""
    h = {}
    for p in sorted(out.rglob("*")):
        if p.is_dir() or p.suffix in (".tbi", ".gzi", ".fai"):
            continue
        if p.suffix == ".bw":
            with pyBigWig.open(str(p)) as bw:
                data = b"".join(np.nan_to_num(bw.values(c, 0, n, numpy=True)).tobytes()
                                for c, n in bw.chroms().items())
        elif p.suffix == ".gz":
            data = gzip.decompress(p.read_bytes())
        else:
            data = p.read_bytes()
        h[str(p.relative_to(out))] = hashlib.sha256(data).hexdigest()
    return h


# ---------------------------------------------------------------------------------- files
def test_reproducible_by_seed(tmp_path):
    a = simulate(tmp_path / "a", seed=7, **TINY)
    b = simulate(tmp_path / "b", seed=7, **TINY)
    c = simulate(tmp_path / "c", seed=8, **TINY)
    da, db, dc = digest(a.out_dir), digest(b.out_dir), digest(c.out_dir)
    assert da == db
    assert len(da) == len(dc)
    differ = [k for k in da if da[k] != dc.get(k)]
    assert "cohort.vcf.gz" in differ and "reference.fa.gz" in differ and "truth/snps.tsv" in differ


def test_outputs_open_with_real_parsers(sim, tmp_path):
    import pyfaidx
    for p in (sim.reference, Path(str(sim.reference) + ".fai"), Path(str(sim.reference) + ".gzi"),
              sim.vcf, Path(str(sim.vcf) + ".tbi"), sim.config, sim.libraries_tsv, *sim.peaks):
        assert Path(p).exists(), p
    fa = pyfaidx.Fasta(str(plain_fasta(sim, tmp_path)), as_raw=True)
    assert list(fa.keys()) == [f"chr{i}" for i in range(1, 23)]
    assert all(len(fa[c]) < 2_000_000 for c in fa.keys())        # short chromosomes
    assert "N" * 200 in str(fa["chr1"][:])                        # N runs
    vcf = cyvcf2.VCF(str(sim.vcf))
    assert vcf.samples == sim.samples and len(sim.samples) == 8
    recs = list(vcf)
    assert len(recs) > 500 and all(r.REF == fa[r.CHROM][r.POS - 1:r.POS - 1 + len(r.REF)]
                                   for r in recs)
    assert any(r.genotype.array()[:, -1].all() for r in recs)      # phased calls
    libs = libraries(sim)
    assert len(libs) == 10 and len({r["individual"] for r in libs}) == 8
    for r in libs:
        for key in ("plus", "minus"):
            with pyBigWig.open(r[key]) as bw:
                assert bw.isBigWig() and list(bw.chroms()) == list(fa.keys())
                assert bw.header()["sumData"] > 0                   # counts, written positive
    with gzip.open(sim.peaks[0], "rt") as fh:
        strands = [ln.split("\t")[5].strip() for ln in fh]
    assert set(strands) == {"+", "-"}


def test_every_fold_has_loci_and_loci_match_the_store(sim, store):
    loci = read_tsv(Path(sim.truth_dir) / "loci.tsv")
    fmap = load_fold_map()
    assert {int(r["fold"]) for r in loci} == set(range(10))
    assert all(int(r["fold"]) == fold_of(r["chrom"], fmap) for r in loci)
    root = zarr.open_group(store, mode="r")
    assert list(root["locus_id"][:]) == [r["locus_id"] for r in loci]
    assert list(root["start"][:]) == [int(r["start"]) for r in loci]
    info = schema.store_info(root)
    assert (info.input_length, info.max_jitter, info.output_length) == (1000, 250, 500)


def test_library_depths_differ_between_isogenic_replicates(sim):
    libs = libraries(sim)
    by_ind: dict[str, list[float]] = {}
    for r in libs:
        tot = 0.0
        for key in ("plus", "minus"):
            with pyBigWig.open(r[key]) as bw:
                tot += abs(bw.header()["sumData"])
        by_ind.setdefault(r["individual"], []).append(tot)
    reps = [v for v in by_ind.values() if len(v) == 2]
    assert len(reps) == 2
    assert all(abs(np.log(a / b)) > 0.05 for a, b in reps)


# ---------------------------------------------------------------------------------- truth
def test_truth_tables_consistent_with_vcf(sim, tmp_path):
    vcf = cyvcf2.VCF(str(sim.vcf))
    snps = read_tsv(Path(sim.truth_dir) / "snps.tsv")
    qtls = read_tsv(Path(sim.truth_dir) / "qtls.tsv")
    planted = json.loads((Path(sim.truth_dir) / "planted.json").read_text())
    assert len(snps) == planted["snps"]            # every biallelic SNP, once
    by_id = {}
    for s in snps:
        recs = [r for r in vcf(f"{s['chrom']}:{s['pos']}-{s['pos']}") if r.ID == s["variant_id"]]
        assert len(recs) == 1
        r = recs[0]
        assert (r.REF, r.ALT) == (s["ref"], [s["alt"]])
        gt = r.genotype.array()[:, :2]
        ok = (gt >= 0).all(axis=1)
        dosage = gt[ok].sum(axis=1)
        counts = [int((dosage == k).sum()) for k in range(3)] + [int((~ok).sum())]
        assert counts == [int(s[k]) for k in ("n_homref", "n_het", "n_homalt", "n_missing")]
        by_id[s["variant_id"]] = s
    assert {q["kind"] for q in qtls} == {"ti", "di"}
    for q in qtls:
        s = by_id[q["variant_id"]]
        assert [q[k] for k in ("n_homref", "n_het", "n_homalt", "locus_id")] == \
               [s[k] for k in ("n_homref", "n_het", "n_homalt", "locus_id")]
        col = "true_log2_quantity_effect" if q["kind"] == "ti" else "true_directionality_effect"
        assert float(q["true_effect"]) == pytest.approx(float(s[col]))
        assert int(q["n_homref"]) >= 1 and int(q["n_het"]) + int(q["n_homalt"]) >= 1
    # planted motif-breaking SNPs are in motifs and mostly lower initiation
    pl = [s for s in snps if s["planted"] == "1"]
    assert len(pl) > 50 and all(s["in_motif"] == "1" for s in pl)
    assert np.median([float(s["true_log2_quantity_effect"]) for s in pl]) < -0.1
    assert sum(q["kind"] == "ti" for q in qtls) >= 20 and sum(q["kind"] == "di" for q in qtls) >= 10


def test_mpra_table(sim, tmp_path):
    import pyfaidx
    fa = pyfaidx.Fasta(str(plain_fasta(sim, tmp_path)), as_raw=True)
    rows = read_tsv(Path(sim.truth_dir) / "mpra.tsv")
    assert len(rows) >= 100
    for r in rows:
        ref, alt, pos = r["oligo_ref"], r["oligo_alt"], int(r["pos"])
        assert len(ref) == len(alt) == 200
        assert ref == fa[r["chrom"]][pos - 1 - 100:pos - 1 + 100]
        assert [i for i in range(200) if ref[i] != alt[i]] == [100]
        assert not (r["emvar"] == "1" and r["active"] == "0")
    obs = np.array([float(r["log2fc_observed"]) for r in rows])
    true = np.array([float(r["log2fc_true"]) for r in rows])
    assert np.corrcoef(obs, true)[0, 1] > 0.6
    emv = np.array([r["emvar"] == "1" for r in rows])
    assert 0 < emv.sum() < len(rows)
    assert np.median(np.abs(true[emv])) > 3 * np.median(np.abs(true[~emv]))


# ---------------------------------------------------------------- planted effects in tracks
def _strand_counts(lib: dict, chrom: str, centre: int) -> tuple[float, float]:
    """(plus, minus) counts of one library over the 500 bp output window, from its bigWigs."""
    out = []
    for key in ("plus", "minus"):
        with pyBigWig.open(lib[key]) as bw:
            out.append(float(np.abs(np.nan_to_num(bw.values(chrom, centre - 250, centre + 250,
                                                            numpy=True))).sum()))
    return out[0], out[1]


def _called_dosages(vcf, libs: list[dict], chrom: str, pos: str, variant_id: str):
    """(library, alt dosage) for every library whose individual has a called genotype."""
    rec = next(r for r in vcf(f"{chrom}:{pos}-{pos}") if r.ID == variant_id)
    gt = dict(zip(vcf.samples, rec.genotype.array()[:, :2]))
    return [(lib, int(gt[lib["individual"]].sum())) for lib in libs
            if (gt[lib["individual"]] >= 0).all()]


def _dosage_slopes(sim, snps) -> np.ndarray:
    """Per SNP: slope of log RPM (locus output window) on called alt dosage, over libraries."""
    vcf = cyvcf2.VCF(str(sim.vcf))
    libs = libraries(sim)
    depth = {}
    for lib in libs:
        depth[lib["library"]] = sum(abs(pyBigWig.open(lib[k]).header()["sumData"])
                                    for k in ("plus", "minus"))
    centre = {r["locus_id"]: int(r["centre"]) for r in read_tsv(Path(sim.truth_dir) / "loci.tsv")}
    slopes = []
    for s in snps:
        x, y = [], []
        for lib, dosage in _called_dosages(vcf, libs, s["chrom"], s["pos"], s["variant_id"]):
            q = sum(_strand_counts(lib, s["chrom"], centre[s["locus_id"]]))
            x.append(dosage)
            y.append(np.log((q + 1) / depth[lib["library"]] * 1e6))
        if len(set(x)) > 1:
            slopes.append(np.polyfit(x, y, 1)[0])
    return np.array(slopes)


def test_snps_breaking_motifs_lower_signal_in_carriers(sim):
    """On the bigWigs alone: carriers of strong motif-breaking alleles have less signal at the
    locus. Sign test over SNPs (the sim is seeded, and the margin is wide: ~88% vs 50%)."""
    snps = read_tsv(Path(sim.truth_dir) / "snps.tsv")
    strong = [s for s in snps if float(s["true_log2_quantity_effect"]) <= -0.7]
    null = [s for s in snps if abs(float(s["true_log2_quantity_effect"])) < 0.01][:60]
    b, n = _dosage_slopes(sim, strong), _dosage_slopes(sim, null)
    assert len(b) >= 30
    assert stats.binomtest(int((b < 0).sum()), len(b), alternative="greater").pvalue < 1e-4
    assert np.median(b) < -0.15
    assert abs(np.median(n)) < 0.1
    assert stats.mannwhitneyu(b, n, alternative="less").pvalue < 1e-4


def test_directionality_qtls_shift_strand_balance(sim):
    """diQTL alleles move signal between strands in the direction the truth table says."""
    vcf = cyvcf2.VCF(str(sim.vcf))
    libs = libraries(sim)
    centre = {r["locus_id"]: int(r["centre"]) for r in read_tsv(Path(sim.truth_dir) / "loci.tsv")}
    agree = []
    for q in read_tsv(Path(sim.truth_dir) / "qtls.tsv"):
        if q["kind"] != "di" or abs(float(q["true_effect"])) < 0.5:
            continue
        x, y = [], []
        for lib, dosage in _called_dosages(vcf, libs, q["chrom"], q["pos"], q["variant_id"]):
            plus, minus = _strand_counts(lib, q["chrom"], centre[q["locus_id"]])
            x.append(dosage)
            y.append(np.log1p(plus) - np.log1p(minus))
        if len(set(x)) > 1:
            agree.append(np.sign(np.polyfit(x, y, 1)[0]) == np.sign(float(q["true_effect"])))
    assert len(agree) >= 10
    assert stats.binomtest(int(sum(agree)), len(agree), alternative="greater").pvalue < 1e-3


# ---------------------------------------------------------------------------------- build
def test_build_reports_planted_skips(sim, store):
    planted = json.loads((Path(sim.truth_dir) / "planted.json").read_text())
    skipped = dict(schema.store_info(zarr.open_group(store, mode="r")).skipped)
    for key in ("indels", "multiallelic", "sv", "missing_calls", "unphased", "snps",
                "peaks_unpaired", "loci_off_edge", "peaks_read"):
        assert skipped[key] == planted[key], key
    for key in ("indels", "multiallelic", "sv", "missing_calls", "peaks_unpaired",
                "loci_off_edge"):
        assert planted[key] > 0, key


def test_negative_minus_gives_the_same_store(tmp_path):
    pos = simulate(tmp_path / "pos", seed=3, **TINY)
    neg = simulate(tmp_path / "neg", seed=3, negative_minus=True, **TINY)
    lib = libraries(neg)[0]
    with pyBigWig.open(lib["minus"]) as bw:
        vals = np.concatenate([np.nan_to_num(bw.values(c, 0, n, numpy=True))
                               for c, n in bw.chroms().items()])
    assert vals.min() < 0 and vals.max() == 0
    with pyBigWig.open(lib["plus"]) as bw:
        assert bw.header()["minVal"] >= 0
    a, b = str(tmp_path / "pos.zarr"), str(tmp_path / "neg.zarr")
    build(pos.config, a, quiet=True)
    build(neg.config, b, quiet=True)
    ra, rb = zarr.open_group(a, mode="r"), zarr.open_group(b, mode="r")
    np.testing.assert_array_equal(ra["signal"][:], rb["signal"][:])
    np.testing.assert_array_equal(ra["total_counts"][:], rb["total_counts"][:])
    assert ra["signal"][:].sum() > 0


def test_scaling_params(tmp_path):
    s = simulate(tmp_path / "s", seed=1, n_loci=30, n_individuals=5, replicates=3, depth=40,
                 output_length=200, input_length=400, max_jitter=50, mpra_max=10)
    libs = libraries(s)
    assert len(libs) == 8 and len(read_tsv(Path(s.truth_dir) / "loci.tsv")) == 30
    url = str(tmp_path / "s.zarr")
    build(s.config, url, quiet=True)
    info = schema.store_info(zarr.open_group(url, mode="r"))
    assert (info.input_length, info.max_jitter, info.output_length) == (400, 50, 200)
    with pytest.raises(ValueError, match="22"):
        simulate(tmp_path / "t", n_loci=5)


def test_cli(tmp_path, capsys):
    out = tmp_path / "cli"
    cli_main(["-q", "simulate", str(out), "--loci", "22", "--individuals", "2",
              "--replicates", "1", "--seed", "4", "--negative-minus", "--set", "mpra_max=5"])
    assert (out / "build.yaml").exists() and (out / "truth" / "planted.json").exists()
    p = json.loads((out / "truth" / "planted.json").read_text())
    assert p["params"]["negative_minus"] is True and p["seed"] == 4 and p["loci"] == 22
    with pytest.raises(SystemExit) as e:
        cli_main(["simulate", str(tmp_path / "bad"), "--set", "no_such_knob=1"])
    assert e.value.code == 2
    assert "no_such_knob" in capsys.readouterr().err


def test_grammar_oracle_explains_the_store(sim, store):
    """The grammar, used as a Predictor on the reference, matches the mean observed profiles:
    the tracks come from the planted grammar and nothing else systematic."""
    from clipstore.simulate import GrammarOracle
    root = zarr.open_group(store, mode="r")
    planted = json.loads((Path(sim.truth_dir) / "planted.json").read_text())
    ref, sig = root["reference"][:], root["signal"][:]
    W = ref.shape[1]
    oracle = GrammarOracle(input_length=1000, output_length=500, scale=planted["scale"])
    prof, quant = oracle(ref[:, (W - 1000) // 2:(W - 1000) // 2 + 1000] * 2)
    assert prof.shape == (ref.shape[0], 1000) and (prof >= 0).all()
    np.testing.assert_allclose(quant, prof.sum(axis=1), rtol=1e-5)
    # the signal window (500 + 2 x 250 bp) is centred on the locus centre like the sequence one
    S = sig.shape[2]
    assert S == 1000
    obs = sig[:, :, S // 2 - 250:S // 2 + 250].mean(axis=0)
    obs = np.concatenate([obs[..., 0], obs[..., 1]], axis=1)
    r = [stats.pearsonr(a, b)[0] for a, b in zip(prof, obs)]
    assert np.median(r) > 0.9
    assert stats.spearmanr(quant, obs.sum(axis=1))[0] > 0.9


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        simulate(tmp_path, **TINY)
    assert (tmp_path / "mine.txt").read_text() == "keep me"
    out = tmp_path / "again"
    simulate(out, seed=1, **TINY)
    (out / "store.zarr").mkdir()
    simulate(out, seed=2, **TINY)                        # a simulation's own files are replaced
    assert (out / "store.zarr").exists()
    assert json.loads((out / "truth" / "planted.json").read_text())["seed"] == 2
    with pytest.raises(ValueError, match="already holds"):
        simulate(out, overwrite=False, **TINY)


# ------------------------------------------------------------------ calibration knobs (demo)
def test_null_cohort_zeroes_every_effect_and_keeps_all_else(sim, tmp_path):
    """variant_effects=False: same genome, genotypes and QTL list as the cohort with effects,
    every true effect 0, and carriers of strong alleles no longer differ in signal (the sign
    test that finds the effect in `sim` finds nothing here)."""
    null = simulate(tmp_path / "null", seed=0, variant_effects=False)
    da, dn = digest(sim.out_dir), digest(null.out_dir)
    for f in ("reference.fa.gz", "cohort.vcf.gz", "truth/loci.tsv", "peaks.bed.gz"):
        assert da[f] == dn[f], f
    assert [k for k in da if k.startswith("tracks/") and da[k] != dn[k]], "tracks must change"
    snps = read_tsv(Path(null.truth_dir) / "snps.tsv")
    qtls = read_tsv(Path(null.truth_dir) / "qtls.tsv")
    assert snps and qtls
    assert all(float(s["true_log2_quantity_effect"]) == 0 and float(s["true_directionality_effect"]) == 0
               for s in snps)
    assert all(float(q["true_effect"]) == 0 for q in qtls)
    main_qtls = read_tsv(Path(sim.truth_dir) / "qtls.tsv")
    assert [(q["variant_id"], q["kind"]) for q in qtls] == [(q["variant_id"], q["kind"])
                                                             for q in main_qtls]
    mpra = read_tsv(Path(null.truth_dir) / "mpra.tsv")
    assert all(float(m["log2fc_true"]) == 0 for m in mpra)
    strong = [s for s in read_tsv(Path(sim.truth_dir) / "snps.tsv")
              if float(s["true_log2_quantity_effect"]) <= -0.7]
    b_eff, b_null = _dosage_slopes(sim, strong), _dosage_slopes(null, strong)
    assert len(b_null) >= 30
    assert stats.binomtest(int((b_eff < 0).sum()), len(b_eff), alternative="greater").pvalue < 1e-4
    assert stats.binomtest(int((b_null < 0).sum()), len(b_null)).pvalue > 0.01
    assert abs(np.median(b_null)) < 0.1


def test_hidden_motifs_are_broken_in_the_reference_and_restored_by_common_snps(tmp_path):
    """hidden_motifs=("NRF1",): no intact NRF1 site in any locus window of the reference; each
    planted NRF1 site has a restoring SNP (site label NRF1±) whose alt raises the signal."""
    from clipstore.simulate import grammar

    s = simulate(tmp_path / "h", seed=0, hidden_motifs=("NRF1",))
    snps = read_tsv(Path(s.truth_dir) / "snps.tsv")
    restoring = [r for r in snps if r["motif"].startswith("NRF1") and r["planted"] == "1"]
    assert len(restoring) >= 20
    q = np.array([float(r["true_log2_quantity_effect"]) for r in restoring])
    assert np.median(q) > 0.3                  # restoring an activator raises initiation
    eye = np.vstack([np.eye(4, dtype=np.float32), np.zeros((1, 4), np.float32)])
    loci = read_tsv(Path(s.truth_dir) / "loci.tsv")
    import pysam
    fa = pysam.FastaFile(str(s.reference))
    best = 0.0
    lut = {b: i for i, b in enumerate("ACGT")}
    for d in loci:
        seq = fa.fetch(d["chrom"], int(d["start"]), int(d["end"])).upper()
        occ = grammar.occupancy(eye[[lut.get(c, 4) for c in seq]][None])
        best = max(best, float(occ[("NRF1", False)].max()), float(occ[("NRF1", True)].max()))
    assert best < 0.5, "an intact NRF1 site in the reference"
    # one shared break (grammar.hidden_break): every restoring SNP turns the same broken base
    # back, so the broken sites do not spell out the intact consensus between them
    i, alt = grammar.hidden_break(grammar.MOTIFS["NRF1"])
    intact = grammar.MOTIFS["NRF1"].consensus[i]
    comp = dict(zip("ACGT", "TGCA"))
    pairs = {(r["ref"], r["alt"]) for r in restoring}
    assert pairs <= {(alt, intact), (comp[alt], comp[intact])}, pairs
    with pytest.raises(ValueError, match="hidden_motifs"):
        simulate(tmp_path / "bad", seed=0, n_loci=24, hidden_motifs=("TATA",))


def test_hidden_restored_leaves_decoys_broken_in_everyone(tmp_path):
    """hidden_restored=0.25: about a quarter of the hidden sites get a restoring SNP; the rest
    stay broken in every haplotype, so the reference's broken site does not say which loci gain
    activity in some people. 1.0 (the default) restores every one, drawing nothing more."""
    full = simulate(tmp_path / "all", seed=0, hidden_motifs=("NRF1",)).planted
    part = simulate(tmp_path / "part", seed=0, hidden_motifs=("NRF1",), hidden_restored=0.25).planted
    assert full["hidden_sites"] >= 40 and full["hidden_sites_restored"] == full["hidden_sites"]
    assert part["hidden_sites"] == full["hidden_sites"]          # same genome, same sites
    share = part["hidden_sites_restored"] / part["hidden_sites"]
    assert 0.1 < share < 0.4, share
    with pytest.raises(ValueError, match="hidden_restored"):
        simulate(tmp_path / "bad", seed=0, n_loci=24, hidden_restored=0.0)
