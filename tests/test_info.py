"""`clipstore info`: dims, folds, skipped counts, size, config — as a table and as JSON."""
import json

from clipstore.build import build
from clipstore.cli import main
from tests._build_inputs import write_cohort


def test_info_table_and_json(tmp_path, capsys):
    c = write_cohort(tmp_path / "in", loci_per_contig=5)
    out = str(tmp_path / "s.zarr")
    build(str(c["config"]), out)
    main(["info", out, "--json"])
    s = json.loads(capsys.readouterr().out)
    assert s["complete"] and s["dims"] == {"individual": 4, "locus": 10, "position": 120,
                                           "signal_position": 70, "library": 5}  # 50 + 2 x 10
    assert s["folds"] == {"4": 5, "5": 5} or s["folds"] == {4: 5, 5: 5}
    assert s["skipped"]["indels"] == c["planted"]["indels"] and s["size_bytes"] > 1000
    assert s["build_config"]["input_length"] == 100
    main(["info", out])
    text = capsys.readouterr().out
    assert "individual 4" in text and "indels" in text and "MiB" in text
    assert "signal_position 70" in text


def test_build_prints_a_summary_unless_quiet(tmp_path, capsys):
    c = write_cohort(tmp_path / "in", loci_per_contig=3)
    main(["build", str(c["config"]), "-o", str(tmp_path / "a.zarr")])
    out = capsys.readouterr().out
    assert "skipped    indels" in out and "used       snps" in out
    assert "skipped    unphased" not in out and "used       unphased" in out
    main(["-q", "build", str(c["config"]), "-o", str(tmp_path / "b.zarr")])
    assert capsys.readouterr().out == ""
    main(["-q", "build", str(c["config"])])                # default output: beside the config
    assert c["config"].with_suffix(".zarr").joinpath("zarr.json").exists()
    main(["build", "--help"])
    assert "--max-memory" in capsys.readouterr().out


def test_used_and_skipped_are_shown_apart_each_with_its_reason(tmp_path, capsys):
    c = write_cohort(tmp_path / "in", loci_per_contig=5)
    out = str(tmp_path / "s.zarr")
    build(str(c["config"]), out)
    main(["info", out, "--json"])
    s = json.loads(capsys.readouterr().out)
    assert s["used"] == {"peaks_read": s["used"]["peaks_read"], "snps": c["planted"]["snps"],
                         "unphased": c["planted"]["unphased"]}
    assert not {"snps", "peaks_read", "unphased"} & set(s["skipped"])
    assert s["skipped"]["indels"] == c["planted"]["indels"]
    main(["info", out])
    lines = capsys.readouterr().out.splitlines()
    used = [ln for ln in lines if ln.startswith("used")]
    skipped = [ln for ln in lines if ln.startswith("skipped")]
    assert len(used) == 3 and any("unphased" in ln and "needs no phase" in ln for ln in used)
    assert all(":" in ln for ln in used + skipped)                  # each with its reason
    assert any(ln.split()[1] == "indels" and "only SNPs" in ln for ln in skipped)
    assert s["schema_version"] == 5 and s["block_loci"] > 0
    assert any(ln.startswith("layout") and "schema 5, row-major" in ln for ln in lines)


def test_quiet_two_worker_build_prints_no_logging_lines(tmp_path):
    import re
    import subprocess
    import sys
    from pathlib import Path
    c = write_cohort(tmp_path / "in", loci_per_contig=5)
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-m", "clipstore", "-q", "build", str(c["config"]),
                        "-o", str(tmp_path / "q.zarr"), "--workers", "2"], cwd=root,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout == "" and r.stderr == "", r.stderr[-3000:]
    r = subprocess.run([sys.executable, "-m", "clipstore", "build", str(c["config"]),
                        "-o", str(tmp_path / "v.zarr"), "--workers", "2"], cwd=root,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    text = r.stdout + r.stderr
    assert "distributed" not in text and "dask" not in text.lower(), text[-3000:]
    assert not re.search(r"^(INFO|DEBUG) ", text, re.M) and "Port 8787" not in text
    assert "build: 100%" in r.stderr                         # the bar, unbroken
