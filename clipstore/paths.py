"""What a path string is, decided in one place for every package (configs, the build, the
trainer's run folders): a URL goes through fsspec, a relative local path resolves against the
folder of the file that named it."""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import IO


def is_url(path: str | Path) -> bool:
    """Has a scheme (s3://, gs://, memory://, file://): opened through fsspec, not os."""
    return "://" in str(path)


def is_remote(path: str | Path) -> bool:
    """A URL whose bytes are not on this machine's disk (file:// is local)."""
    return is_url(path) and not str(path).startswith("file://")


def resolve(path: str | None, base: Path | None) -> str | None:
    """A relative local path made absolute against `base` (a config's folder); URLs, absolute
    paths, None and a missing base are returned as they are."""
    if path is None or base is None or is_url(path) or Path(path).is_absolute():
        return path
    return str((Path(base) / path).resolve())


def is_gzip(path: str | Path) -> bool:
    """gzip (or bgzip) by its magic bytes, whatever the file is named."""
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def open_text(path: str | Path, encoding: str = "utf-8") -> IO[str]:
    """A text file opened for reading, gunzipped on the fly when it is gzipped (tables, BEDs,
    FASTA and VCF-like files reach us either way). FileNotFoundError as open() raises it."""
    return gzip.open(path, "rt", encoding=encoding) if is_gzip(path) else open(path, encoding=encoding)
