"""Input fingerprints (clipstore.fingerprint) and the BGZF/index check (clipstore.bgzf) on their
own: what counts as a change for whole-hashed and for sampled large files, and tbi and csi
indexes of real bgzipped VCFs."""
from __future__ import annotations

import gzip
import os
import shutil

import pysam
import pytest

from clipstore import bgzf, fingerprint
from clipstore.errors import InputError


def test_whole_hashed_file_changes_by_content_not_by_mtime(tmp_path):
    p = tmp_path / "a.bed"
    p.write_bytes(b"chr1\t10\t20\n" * 1000)
    was = {"r": fingerprint.fingerprint(str(p))}
    assert was["r"]["method"] == "full"
    os.utime(p, (1, 1))                                 # a copy without -p: same bytes
    assert fingerprint.changes(was, {"r": fingerprint.fingerprint(str(p))}) == []
    data = bytearray(p.read_bytes())
    data[5000] ^= 1                                     # one bit, same size
    p.write_bytes(bytes(data))
    (line,) = fingerprint.changes(was, {"r": fingerprint.fingerprint(str(p))})
    assert str(p) in line and "content changed" in line


def test_sampled_large_file_changes_by_sample_or_mtime(tmp_path, monkeypatch):
    monkeypatch.setattr(fingerprint, "FULL_HASH_BYTES", 1 << 16)
    monkeypatch.setattr(fingerprint, "EDGE_BYTES", 1 << 12)
    monkeypatch.setattr(fingerprint, "SAMPLE_BYTES", 1 << 10)
    p = tmp_path / "big.bw"
    p.write_bytes(os.urandom(1 << 20))
    was = {"r": fingerprint.fingerprint(str(p))}
    assert was["r"]["method"] == "sampled"
    data = bytearray(p.read_bytes())
    data[100] ^= 1                                      # inside the first edge: sampled
    p.write_bytes(bytes(data))
    os.utime(p, (was["r"]["mtime"], was["r"]["mtime"]))
    assert "content changed" in fingerprint.changes(was, {"r": fingerprint.fingerprint(str(p))})[0]
    p.write_bytes(p.read_bytes())                       # same bytes as now, newer mtime
    now = {"r": fingerprint.fingerprint(str(p))}
    assert "mtime" in fingerprint.changes({"r": now["r"] | {"mtime": 1.0}}, now)[0]
    assert fingerprint.changes(now, now) == []


def _vcf(tmp_path, cohort, csi: bool):
    src = cohort["dir"] / "cohort.vcf.gz"
    lines = gzip.open(src, "rt").read().splitlines()
    plain = tmp_path / "v.vcf"
    plain.write_text("\n".join(lines) + "\n")
    gz = pysam.tabix_index(str(plain), preset="vcf", force=True, csi=csi)
    return gz, lines


@pytest.mark.parametrize("csi", [False, True])
def test_tbi_and_csi_indexes_check_and_go_stale(tmp_path, cohort, csi):
    gz, lines = _vcf(tmp_path, cohort, csi)
    assert bgzf.index_path(gz).endswith(".csi" if csi else ".tbi")
    assert len(bgzf.check_indexed(gz)) == 32              # verified; blake2b-128 hex
    index = bgzf.index_path(gz)
    kept = tmp_path / "old_index"
    shutil.copy(index, kept)
    first = next(k for k, ln in enumerate(lines) if ln.startswith("1\t"))
    del lines[first + 1:first + 5]                       # rewritten after indexing
    (tmp_path / "v.vcf").write_text("\n".join(lines) + "\n")
    pysam.tabix_compress(str(tmp_path / "v.vcf"), gz, force=True)
    shutil.copy(kept, index)                             # the old index, newer mtime
    with pytest.raises(InputError, match="stale") as e:
        bgzf.check_indexed(gz)
    assert e.value.file == gz and "bcftools index" in str(e.value)


def test_a_file_that_is_not_bgzf_is_named(tmp_path):
    p = tmp_path / "plain.vcf.gz"
    p.write_bytes(gzip.compress(b"##fileformat=VCFv4.2\n"))   # gzip, not BGZF
    with pytest.raises(InputError, match="not a BGZF block header") as e:
        bgzf.scan(str(p))
    assert e.value.file == str(p) and "bgzip" in str(e.value)
