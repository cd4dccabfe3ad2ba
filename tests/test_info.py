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
    assert "skipped    indels" in capsys.readouterr().out
    main(["-q", "build", str(c["config"]), "-o", str(tmp_path / "b.zarr")])
    assert capsys.readouterr().out == ""
    main(["-q", "build", str(c["config"])])                # default output: beside the config
    assert c["config"].with_suffix(".zarr").joinpath("zarr.json").exists()
    main(["build", "--help"])
    assert "--max-memory" in capsys.readouterr().out
