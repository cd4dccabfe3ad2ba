"""Bad or changed inputs that used to end in a store marked complete holding wrong data
(issue 13): each exits 2 naming the file and the problem, and leaves nothing that opens as
complete. Real files, real htslib, real processes."""
from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pysam
import pytest
import zarr

from clipstore import schema
from clipstore.cli import main
from tests._build_inputs import assert_same_store, build_process, write_bigwig, write_cohort
from tests.test_build_errors import edit_config, run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return write_cohort(tmp_path_factory.mktemp("bad13") / "in", loci_per_contig=6)


@pytest.fixture
def inputs(base, tmp_path):
    d = tmp_path / "in"
    shutil.copytree(base["dir"], d)
    return d


def vcf_lines(d: Path) -> list[str]:
    return gzip.open(d / "cohort.vcf.gz", "rt").read().splitlines()


def write_vcf(d: Path, lines: list[str], index: bool = True) -> Path:
    plain = d / "cohort.vcf"
    plain.write_text("\n".join(lines) + "\n")
    if index:
        pysam.tabix_index(str(plain), preset="vcf", force=True)
    else:
        pysam.tabix_compress(str(plain), str(plain) + ".gz", force=True)
        plain.unlink()
    return d / "cohort.vcf.gz"


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clipstore", "-q", *args], cwd=ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=300)


# ------------------------------------------------------------------ 13.1 contigs
def test_vcf_contigs_resolving_to_nothing_fail_and_say_how_to_alias(inputs, tmp_path, capsys):
    lines = [ln.replace("##contig=<ID=", "##contig=<ID=NC_0000") if ln.startswith("##contig")
             else ln if ln.startswith("#") else "NC_0000" + ln for ln in vcf_lines(inputs)]
    write_vcf(inputs, lines)
    err = run(capsys, inputs / "build.yaml", tmp_path / "s.zarr")
    assert "cohort.vcf.gz" in err and "NC_00001" in err and "chr1" in err
    assert "contig_aliases" in err and "--alias" in err
    main(["-q", "build", str(inputs / "build.yaml"), "-o", str(tmp_path / "s.zarr"),
          "--alias", "NC_00001=chr1", "--alias", "NC_00002=chr2"])      # the advice works
    assert schema.store_info(zarr.open_group(str(tmp_path / "s.zarr"), mode="r")).complete


def test_validate_inputs_reports_a_vcf_contig_resolving_to_nothing(inputs, tmp_path, capsys):
    out = tmp_path / "s.zarr"
    main(["-q", "build", str(inputs / "build.yaml"), "-o", str(out)])
    lines = [ln if ln.startswith("#") else "NC_0000" + ln for ln in vcf_lines(inputs)]
    write_vcf(inputs, [ln.replace("##contig=<ID=", "##contig=<ID=NC_0000") for ln in lines])
    with pytest.raises(SystemExit) as e:
        main(["validate", str(out), "--inputs", str(inputs / "build.yaml")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "cohort.vcf.gz" in err and "NC_00001" in err


def test_vcf_lacking_one_contig_entirely_is_an_error(inputs, tmp_path, capsys):
    lines = [ln for ln in vcf_lines(inputs)
             if not ln.startswith(("2\t", "##contig=<ID=2,"))]
    write_vcf(inputs, lines)
    err = run(capsys, inputs / "build.yaml", tmp_path / "s.zarr")
    assert "cohort.vcf.gz" in err and "chr2" in err and "contig_aliases" in err


# ------------------------------------------------------------------ 13.2 damaged VCF / index
def _two_block_vcf(d: Path) -> tuple[Path, int]:
    """The cohort VCF bgzipped as header block + records block (bgzip concatenation is valid
    BGZF), indexed; returns it and the records block's offset."""
    lines = vcf_lines(d)
    head = "".join(ln + "\n" for ln in lines if ln.startswith("#")).encode()
    body = "".join(ln + "\n" for ln in lines if not ln.startswith("#")).encode()
    gz = d / "cohort.vcf.gz"
    with pysam.BGZFile(str(gz), "wb") as f:
        f.write(head)
    first = gz.read_bytes()[:-28]           # drop the EOF block between the two parts
    with pysam.BGZFile(str(gz), "wb") as f:
        f.write(body)
    gz.write_bytes(first + gz.read_bytes())
    pysam.tabix_index(str(gz), preset="vcf", force=True)
    return gz, len(first)


def test_corrupt_data_block_in_the_vcf_fails_naming_the_block(inputs, tmp_path, capsys):
    gz, at = _two_block_vcf(inputs)
    main(["-q", "build", str(inputs / "build.yaml"), "-o", str(tmp_path / "ok.zarr")])
    data = bytearray(gz.read_bytes())
    for k in range(at + 60, at + 90):
        data[k] ^= 0xFF                     # header block intact: cyvcf2 opens it fine
    gz.write_bytes(bytes(data))
    err = run(capsys, inputs / "build.yaml", tmp_path / "s.zarr")
    assert "cohort.vcf.gz" in err and f"block at byte {at}" in err and "damaged" in err


def test_truncated_vcf_fails_naming_the_file(inputs, tmp_path, capsys):
    gz = inputs / "cohort.vcf.gz"
    gz.write_bytes(gz.read_bytes()[:-28])   # the EOF block lost: htslib only warns
    err = run(capsys, inputs / "build.yaml", tmp_path / "s.zarr")
    assert "cohort.vcf.gz" in err and "cut short" in err


def test_vcf_rewritten_after_indexing_fails_naming_the_stale_index(inputs, tmp_path, capsys):
    tbi = (inputs / "cohort.vcf.gz.tbi").read_bytes()
    lines = vcf_lines(inputs)
    first = next(k for k, ln in enumerate(lines) if ln.startswith("1\t"))
    del lines[first + 1:first + 4]          # a few contig-1 records gone: contig 2 moves
    write_vcf(inputs, lines, index=False)
    (inputs / "cohort.vcf.gz.tbi").write_bytes(tbi)
    err = run(capsys, inputs / "build.yaml", tmp_path / "s.zarr")
    assert "cohort.vcf.gz" in err and "stale" in err and "bcftools index" in err


def test_index_older_than_the_vcf_is_stale(inputs, tmp_path, capsys):
    gz = inputs / "cohort.vcf.gz"
    t = gz.stat().st_mtime
    os.utime(str(gz) + ".tbi", (t - 3600, t - 3600))
    err = run(capsys, inputs / "build.yaml", tmp_path / "s.zarr")
    assert "cohort.vcf.gz" in err and "older than the file" in err


# ------------------------------------------------------------------ 13.3 changed inputs
def test_changed_bigwig_before_resume_is_refused_and_overwrite_rebuilds(inputs, tmp_path,
                                                                        capsys):
    out = tmp_path / "s.zarr"
    r = subprocess.run(build_process(inputs / "build.yaml", out, kill_after=1), cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr        # a real kill -9 after one shard
    write_bigwig(inputs / "lib2.pl.bw", __import__("numpy").random.default_rng(7), 1.0)
    r = cli("build", str(inputs / "build.yaml"), "-o", str(out))
    assert r.returncode == 2, r.stderr
    assert "lib2.pl.bw" in r.stderr and "changed" in r.stderr and "--overwrite" in r.stderr
    assert not schema.store_info(zarr.open_group(str(out), mode="r")).complete
    r = cli("build", str(inputs / "build.yaml"), "-o", str(out), "--overwrite")
    assert r.returncode == 0, r.stderr
    fresh = tmp_path / "fresh.zarr"
    main(["-q", "build", str(inputs / "build.yaml"), "-o", str(fresh)])
    assert_same_store(str(fresh), str(out))      # all new data, none of the old


def test_changed_vcf_after_a_complete_build_is_not_called_current(inputs, tmp_path, capsys):
    out = tmp_path / "s.zarr"
    main(["-q", "build", str(inputs / "build.yaml"), "-o", str(out)])
    lines = vcf_lines(inputs)
    k = next(i for i, ln in enumerate(lines) if not ln.startswith("#"))
    f = lines[k].split("\t")
    f[9] = "1|1" if f[9] != "1|1" else "0|0"
    lines[k] = "\t".join(f)
    write_vcf(inputs, lines)
    with pytest.raises(SystemExit) as e:
        main(["-q", "build", str(inputs / "build.yaml"), "-o", str(out)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "cohort.vcf.gz" in err and "changed" in err
    rep_err = []
    with pytest.raises(SystemExit) as e:
        main(["validate", str(out), "--inputs", str(inputs / "build.yaml"), "--n", "5"])
    rep_err = capsys.readouterr().err
    assert e.value.code == 1 and "input changed since the build" in rep_err
    assert "cohort.vcf.gz" in rep_err


def test_unchanged_inputs_copied_elsewhere_still_validate(inputs, tmp_path, capsys):
    out = tmp_path / "s.zarr"
    main(["-q", "build", str(inputs / "build.yaml"), "-o", str(out)])
    moved = tmp_path / "moved"
    shutil.copytree(inputs, moved)
    main(["validate", str(out), "--inputs", str(moved / "build.yaml"), "--n", "5"])
    assert "OK" in capsys.readouterr().out


# ------------------------------------------------------------------ 13.7 damage found mid-build
def test_truncated_bgzipped_fasta_fails_naming_file_and_locus(inputs, tmp_path, capsys):
    fa = inputs / "ref.fa.gz"
    fa.write_bytes(fa.read_bytes()[:fa.stat().st_size // 2])     # .fai/.gzi still promise more
    err = run(capsys, inputs / "build.yaml", tmp_path / "s.zarr")
    assert "ref.fa.gz" in err and "cannot read bases chr" in err and "truncated" in err


def test_truncated_plain_fasta_with_its_old_index_fails_by_name(inputs, tmp_path, capsys):
    plain = inputs / "plain.fa"
    shutil.copy(inputs / "oracle_ref.fa", plain)
    pysam.faidx(str(plain))
    plain.write_text(plain.read_text()[:plain.stat().st_size * 3 // 4])
    err = run(capsys, edit_config(inputs, reference="plain.fa"), tmp_path / "s.zarr")
    assert "plain.fa" in err and "chr2" in err and "truncated" in err


def test_corrupt_bigwig_data_block_fails_naming_file_library_and_region(inputs, tmp_path,
                                                                        capsys):
    import struct
    bw = inputs / "lib1.pl.bw"
    data = bytearray(bw.read_bytes())
    start, index = struct.unpack_from("<QQ", data, 16)         # data section, R-tree index
    for k in range(start + 600, min(start + 1000, index)):
        data[k] ^= 0x5A
    bw.write_bytes(bytes(data))
    err = run(capsys, inputs / "build.yaml", tmp_path / "s.zarr")
    assert "lib1.pl.bw" in err and "library lib1" in err and "cannot read values of chr" in err


def test_full_output_disk_exits_1_naming_the_store_and_resumes_after(inputs, tmp_path):
    import resource
    out = tmp_path / "s.zarr"

    def small_files():                   # every file written is capped at 4 KiB: EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    r = subprocess.run([sys.executable, "-m", "clipstore", "-q", "build",
                        str(inputs / "build.yaml"), "-o", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300, preexec_fn=small_files)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("error: ") and str(out) in r.stderr
    assert "cannot write the store" in r.stderr and "rerun" in r.stderr
    assert "Traceback" not in r.stderr
    assert not schema.store_info(zarr.open_group(str(out), mode="r")).complete
    main(["-q", "build", str(inputs / "build.yaml"), "-o", str(out)])     # room again: resumes
    fresh = tmp_path / "fresh.zarr"
    main(["-q", "build", str(inputs / "build.yaml"), "-o", str(fresh)])
    assert_same_store(str(fresh), str(out))


def test_read_only_output_exits_1_naming_the_store(inputs, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    mounted = False
    if os.geteuid() == 0:     # root writes through mode bits: use a read-only tmpfs instead
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)],
                                 capture_output=True).returncode == 0
        if not mounted:
            pytest.skip("running as root without permission to mount a read-only tmpfs")
    else:
        ro.chmod(0o555)
    try:
        r = cli("build", str(inputs / "build.yaml"), "-o", str(ro / "s.zarr"))
    finally:
        if mounted:
            subprocess.run(["umount", str(ro)], check=True)
        else:
            ro.chmod(0o755)
    assert r.returncode == 1, r.stderr
    assert str(ro / "s.zarr") in r.stderr and "cannot write the store" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("first", ["chr1\tfive\t600\tx\t0\t+\n", "chr1 500\n",
                                   "chrX_header\tstart\tend\n"])
def test_malformed_first_peak_line_is_an_error_not_a_header(inputs, tmp_path, capsys, first):
    body = gzip.open(inputs / "peaks.bed.gz", "rt").read()
    with gzip.open(inputs / "peaks.bed.gz", "wt") as fh:
        fh.write(first + body)
    err = run(capsys, inputs / "build.yaml", tmp_path / "s.zarr")
    assert "peaks.bed.gz" in err and "line 1" in err


@pytest.mark.parametrize("head", ["track name=x\n", "browser position chr1:1-100\n",
                                  "# comment\n", "chrom\tstart\tend\tname\tscore\tstrand\n"])
def test_real_header_forms_are_skipped(inputs, tmp_path, head):
    body = gzip.open(inputs / "peaks.bed.gz", "rt").read()
    with gzip.open(inputs / "peaks.bed.gz", "wt") as fh:
        fh.write(head + body)
    main(["-q", "build", str(inputs / "build.yaml"), "-o", str(tmp_path / "s.zarr")])
    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    assert root["locus_id"].shape[0] == 6 * 2        # every planted locus kept
