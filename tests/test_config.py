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
