"""Bad input: each case exits 2 via the CLI with a message naming the file and record, and never
leaves a store that looks complete."""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
import yaml
import zarr

from clipstore import schema
from clipstore.cli import main
from tests._build_inputs import write_cohort


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return write_cohort(tmp_path_factory.mktemp("bad") / "in", loci_per_contig=4)


@pytest.fixture
def inputs(base, tmp_path):
    d = tmp_path / "in"
    shutil.copytree(base["dir"], d)
    return d


def run(capsys, cfg: Path, out: Path, *extra: str) -> str:
    with pytest.raises(SystemExit) as e:
        main(["-q", "build", str(cfg), "-o", str(out), *extra])
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert err.startswith("error: ")
    if (out / "zarr.json").exists():   # whatever is there must not look complete
        root = zarr.open_group(str(out), mode="r")
        assert not schema.store_info(root).complete
    return err


def edit_config(d: Path, **changes) -> Path:
    cfg = yaml.safe_load((d / "build.yaml").read_text())
    cfg.update(changes)
    (d / "build.yaml").write_text(yaml.safe_dump(cfg))
    return d / "build.yaml"


def test_missing_file(inputs, tmp_path, capsys):
    (inputs / "lib2.pl.bw").unlink()
    err = run(capsys, inputs / "build.yaml", tmp_path / "s.zarr")
    assert "lib2.pl.bw" in err and "not found" in err
    assert not (tmp_path / "s.zarr").exists()


def test_fasta_without_index_is_indexed_when_writable(inputs, tmp_path):
    for ext in (".fai", ".gzi"):
        Path(str(inputs / "ref.fa.gz") + ext).unlink()
    main(["-q", "build", str(inputs / "build.yaml"), "-o", str(tmp_path / "s.zarr")])
    assert (inputs / "ref.fa.gz.fai").exists()


def test_fasta_without_index_in_read_only_folder_says_how(inputs, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    shutil.copy(inputs / "ref.fa.gz", ro / "ref.fa.gz")
    ro.chmod(0o555)
    try:
        err = run(capsys, edit_config(inputs, reference=str(ro / "ref.fa.gz")), tmp_path / "s.zarr")
    finally:
        ro.chmod(0o755)
    assert "ref.fa.gz" in err and "samtools faidx" in err


def test_vcf_not_indexed(inputs, tmp_path, capsys):
    (inputs / "cohort.vcf.gz.tbi").unlink()
    err = run(capsys, inputs / "build.yaml", tmp_path / "s.zarr")
    assert "cohort.vcf.gz" in err and "not indexed" in err and "bcftools index" in err


def test_sample_missing_from_vcf(inputs, tmp_path, capsys):
    tsv = inputs / "libraries.tsv"
    tsv.write_text(tsv.read_text().replace("lib3\tind3", "lib3\tNA99999"))
    err = run(capsys, inputs / "build.yaml", tmp_path / "s.zarr")
    assert "NA99999" in err and "cohort.vcf.gz" in err


def test_ref_allele_not_matching_fasta(inputs, tmp_path, capsys):
    import pysam
    vcf = inputs / "cohort.vcf.gz"
    lines = gzip.open(vcf, "rt").read().splitlines()
    i = next(k for k, ln in enumerate(lines) if not ln.startswith("#")
             and len(ln.split("\t")[3]) == 1 and len(ln.split("\t")[4]) == 1)
    f = lines[i].split("\t")
    f[3] = next(b for b in "ACGT" if b not in (f[3], f[4]))
    lines[i] = "\t".join(f)
    plain = inputs / "cohort.vcf"
    plain.write_text("\n".join(lines) + "\n")
    pysam.tabix_index(str(plain), preset="vcf", force=True)
    err = run(capsys, inputs / "build.yaml", tmp_path / "s.zarr")
    assert "cohort.vcf.gz" in err and f"{f[0]}:{f[1]}" in err and "REF allele" in err


def test_peaks_on_a_contig_absent_from_fasta_are_skipped_counted_and_aliasable(inputs, tmp_path,
                                                                              caplog):
    with gzip.open(inputs / "peaks.bed.gz", "at") as fh:
        fh.write("chr7\t1000\t1100\tx\t0\t.\n")
    n = len(gzip.open(inputs / "peaks.bed.gz", "rt").read().splitlines())
    main(["-q", "build", str(inputs / "build.yaml"), "-o", str(tmp_path / "s.zarr")])
    info = schema.store_info(zarr.open_group(str(tmp_path / "s.zarr"), mode="r"))
    assert info.complete and info.skipped["loci_other_contig"] == 1      # counted, reported
    warned = [r.getMessage() for r in caplog.records if "not in the reference FASTA" in
              r.getMessage()]
    assert warned and "chr7" in warned[0] and f"line {n}" in warned[0]
    assert "contig_aliases" in warned[0]                   # says what to do, and that works:
    main(["-q", "build", str(inputs / "build.yaml"), "-o", str(tmp_path / "a.zarr"),
          "--alias", "chr7=chr1"])
    root = zarr.open_group(str(tmp_path / "a.zarr"), mode="r")
    assert "chr7:1000-1100" in list(root["locus_id"][:])


def test_no_peak_on_a_fasta_contig_is_an_error(inputs, tmp_path, capsys):
    with gzip.open(inputs / "peaks.bed.gz", "wt") as fh:
        fh.write("chr7\t1000\t1100\tx\t0\t.\n")
    err = run(capsys, inputs / "build.yaml", tmp_path / "s.zarr")
    assert "peaks.bed.gz" in err and "chr7" in err and "line 1" in err
    assert "contig_aliases" in err


def test_bigwig_lacking_a_chromosome(inputs, tmp_path, capsys):
    import pyBigWig
    bw = pyBigWig.open(str(inputs / "lib1.mn.bw"), "w")
    bw.addHeader([("chr1", 30_000)])
    bw.addEntries("chr1", [5], values=[-1.0], span=1)
    bw.close()
    err = run(capsys, inputs / "build.yaml", tmp_path / "s.zarr")
    assert "lib1.mn.bw" in err and "chr2" in err


@pytest.mark.parametrize("line,what", [("chr1\t500\t400\tx\t0\t+\n", "start < end"),
                                       ("chr1\t5e2\t600\tx\t0\t+\n", "integers")])
def test_bad_peak_coordinates(inputs, tmp_path, capsys, line, what):
    with gzip.open(inputs / "peaks.bed.gz", "at") as fh:
        fh.write(line)
    n = len(gzip.open(inputs / "peaks.bed.gz", "rt").read().splitlines())
    err = run(capsys, inputs / "build.yaml", tmp_path / "s.zarr")
    assert "peaks.bed.gz" in err and f"line {n}" in err and what in err


def test_empty_peak_file(inputs, tmp_path, capsys):
    with gzip.open(inputs / "peaks.bed.gz", "wt") as fh:
        fh.write("# nothing\n")
    err = run(capsys, inputs / "build.yaml", tmp_path / "s.zarr")
    assert "peaks.bed.gz" in err and "no records" in err


def test_duplicated_library_ids(inputs, tmp_path, capsys):
    tsv = inputs / "libraries.tsv"
    tsv.write_text(tsv.read_text().replace("lib1b\t", "lib1\t"))
    err = run(capsys, inputs / "build.yaml", tmp_path / "s.zarr")
    assert "duplicated library id" in err and "lib1" in err


def test_output_holding_a_different_store(inputs, tmp_path, capsys):
    out = tmp_path / "s.zarr"
    main(["-q", "build", str(inputs / "build.yaml"), "-o", str(out)])
    before = (out / "zarr.json").read_bytes()
    with pytest.raises(SystemExit) as e:
        main(["-q", "build", str(inputs / "build.yaml"), "-o", str(out), "--max-jitter", "5"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and str(out) in err and "--overwrite" in err
    assert (out / "zarr.json").read_bytes() == before          # untouched
    main(["-q", "build", str(inputs / "build.yaml"), "-o", str(out), "--max-jitter", "5",
          "--overwrite"])
    assert schema.store_info(zarr.open_group(str(out), mode="r")).max_jitter == 5


def test_output_holding_something_else(inputs, tmp_path, capsys):
    out = tmp_path / "notastore"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    err = run(capsys, inputs / "build.yaml", out)
    assert "not a clipstore store" in err
    assert (out / "precious.txt").read_text() == "keep me"


def test_store_killed_while_being_created_is_recreated(inputs, tmp_path):
    out = tmp_path / "s.zarr"
    root = zarr.open_group(str(out), mode="w-", zarr_format=3)     # what a kill leaves behind
    root.create_array("sequence", shape=(1,), dtype="uint8")
    main(["-q", "build", str(inputs / "build.yaml"), "-o", str(out)])
    assert schema.store_info(zarr.open_group(str(out), mode="r")).complete
