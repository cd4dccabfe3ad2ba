import pytest

from clipstore.build import geometry
from clipstore.config import load_config
from clipstore.errors import InputError


def _write(tmp_path, text):
    (tmp_path / "libraries.tsv").write_text(
        "library\tindividual\tplus\tminus\nL1\tNA1\tbw/L1.pl.bw\tbw/L1.mn.bw\n"
        "L2\tNA1\tbw/L2.pl.bw\tbw/L2.mn.bw\n")
    p = tmp_path / "build.yaml"
    p.write_text(text)
    return p


def test_relative_paths_resolve_against_config(tmp_path):
    p = _write(tmp_path, "reference: ref.fa\npeaks: peaks.bed\nlibraries: libraries.tsv\n"
                         "contig_aliases: {22: chr22}\n")
    cfg = load_config(p)
    assert cfg.reference == str(tmp_path / "ref.fa")
    assert cfg.libraries[0].plus == str(tmp_path / "bw" / "L1.pl.bw")
    assert cfg.contig_aliases == {"22": "chr22"} and geometry(cfg).window == 1500
    assert geometry(load_config(p, max_jitter=100)).window == 1200


def test_unsafe_yaml_is_refused(tmp_path):
    p = _write(tmp_path, "reference: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_config(p)


@pytest.mark.parametrize("text, match", [
    ("peaks: p\nlibraries: libraries.tsv\n", "missing required option 'reference'"),
    ("reference: r\npeaks: p\nlibraries: libraries.tsv\nbogus: 1\n", "unknown option"),
    ("reference: r\npeaks: p\nlibraries: [{id: A, individual: x, plus: a, minus: b},"
     " {id: A, individual: y, plus: c, minus: d}]\n", "duplicated library id"),
    ("reference: r\npeaks: p\nlibraries: libraries.tsv\noutput_length: 2000\n", "output_length"),
])
def test_bad_configs(tmp_path, text, match):
    with pytest.raises(InputError, match=match):
        load_config(_write(tmp_path, text))


BASE = "reference: r\npeaks: p\nlibraries: libraries.tsv\n"


@pytest.mark.parametrize("extra, match", [
    ("max_jitter: -100\n", "max_jitter must be >= 0, got -100"),
    ("input_length: thousand\n", "input_length must be int, got 'thousand'"),
    ("input_length: true\n", "input_length must be int, got True"),
    ("shard_loci: 0\n", "shard_loci must be positive, got 0"),
    ("output_length: -5\n", "output_length must be positive"),
    ("divergent_distance: 1.5\n", "divergent_distance must be int"),
    ("signal_dtype: int8\n", "signal_dtype must be auto or uint16 or float32"),
    ("contig_aliases: [a, b]\n", "contig_aliases must be dict"),
    ("libraries: 7\n", "libraries must be str or list"),
    ("libraries: [{id: A}]\n", "each library needs id, individual, plus, minus"),
])
def test_each_bad_value_is_named_with_its_key(tmp_path, extra, match):
    with pytest.raises(InputError, match=match) as e:
        load_config(_write(tmp_path, BASE + extra))
    assert "build.yaml" in str(e.value)


def test_every_problem_is_reported_at_once_and_the_cli_exits_2(tmp_path, capsys):
    from clipstore.cli import main
    p = _write(tmp_path, "peaks: p\nlibraries: libraries.tsv\nmax_jitter: -100\n"
                         "input_length: thousand\nshard_loci: 0\nbogus: 1\n")
    with pytest.raises(InputError) as e:
        load_config(p)
    msg = str(e.value)
    for key in ("'reference'", "max_jitter", "input_length", "shard_loci", "bogus"):
        assert key in msg, key
    assert msg.count(";") == 4
    with pytest.raises(SystemExit) as ex:
        main(["-q", "build", str(p), "-o", str(tmp_path / "s.zarr")])
    err = capsys.readouterr().err
    assert ex.value.code == 2 and "5 problems" in err and not (tmp_path / "s.zarr").exists()


def test_relation_output_within_input_also_for_defaults_and_flags(tmp_path):
    with pytest.raises(InputError, match="output_length 1200 must be <= input_length 1000"):
        load_config(_write(tmp_path, BASE + "output_length: 1200\n"))
    with pytest.raises(InputError, match="output_length 500 must be <= input_length 400"):
        load_config(_write(tmp_path, BASE), input_length=400)


def test_a_config_built_in_code_is_checked_before_anything_is_written(cohort, tmp_path):
    from clipstore.build import build
    cfg = load_config(cohort["config"])
    with pytest.raises(InputError, match="max_jitter must be >= 0"):
        build(cfg, str(tmp_path / "s.zarr"), max_jitter=-100)
    assert not (tmp_path / "s.zarr").exists()


def test_duplicated_library_ids_in_a_library_table(tmp_path):
    (tmp_path / "libs.tsv").write_text("library\tindividual\tplus\tminus\n"
                                       "A\tx\ta.bw\tb.bw\nA\ty\tc.bw\td.bw\n")
    (tmp_path / "b.yaml").write_text("reference: r.fa\npeaks: p.bed\nlibraries: libs.tsv\n")
    with pytest.raises(InputError, match=r"duplicated library id\(s\) \['A'\]") as e:
        load_config(tmp_path / "b.yaml")
    assert "b.yaml" in e.value.message()
