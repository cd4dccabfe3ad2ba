"""Build configuration: one YAML file (safe-loaded), every option also a CLI flag.

Example (`clipstore simulate` writes one like it next to its files):

    reference: reference.fa.gz          # FASTA, plain or bgzipped (+ .fai/.gzi)
    variants: cohort.vcf.gz             # phased VCF/BCF, indexed; omit for a reference-only store
    libraries: libraries.tsv            # TSV: library, individual, plus, minus (bigWig paths)
    peaks: peaks.bed.gz                 # BED/narrowPeak/PINTS; strand column → divergent pairs
    input_length: 1000
    max_jitter: 250
    output_length: 500
    divergent_distance: 200
    folds: null                         # null = CLIPNET's chromosome map; a CSV chrom,fold;
                                        # a BED chrom,start,end,fold; or {scheme: blocks,
                                        # block_size: 1000000, seed: 0} (see clipstore.folds)
    contig_aliases: {}                  # e.g. {"22": "chr22"}: names in any input → FASTA names
    shard_loci: 128
    signal_dtype: auto                  # auto | uint16 | float32 (see clipstore.schema)

Relative paths resolve against the config file's folder, so a config travels with its data.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .configcheck import NONE, Rule, problems_of, raise_problems
from .errors import InputError
from .folds import normalize_spec, resolve_paths
from .paths import resolve
from .schema import DEFAULT_SHARD_LOCI, SIGNAL_DTYPES


@dataclass(frozen=True)
class Library:
    id: str
    individual: str
    plus: str
    minus: str


@dataclass(frozen=True)
class BuildConfig:
    reference: str
    peaks: str
    libraries: tuple[Library, ...]
    variants: str | None = None
    input_length: int = 1000
    max_jitter: int = 250
    output_length: int = 500
    divergent_distance: int = 200
    folds: str | dict[str, Any] | None = None   # see clipstore.folds.normalize_spec
    contig_aliases: dict[str, str] = field(default_factory=dict)
    shard_loci: int = DEFAULT_SHARD_LOCI
    signal_dtype: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form recorded in the store (paths only: no credentials ever live here)."""
        d = dataclasses.asdict(self)
        d["libraries"] = [dataclasses.asdict(lib) for lib in self.libraries]
        return d

    def replace(self, **changes: Any) -> "BuildConfig":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def read_library_table(path: str, base: Path) -> tuple[Library, ...]:
    """TSV with a header: library, individual, plus, minus (paths relative to the table)."""
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        raise InputError("library table not found", file=path,
                         hint="give a TSV with columns library, individual, plus, minus")
    rows = [ln.split("\t") for ln in lines if ln.strip() and not ln.startswith("#")]
    if not rows:
        raise InputError("library table is empty", file=path)
    header = [h.strip().lower() for h in rows[0]]
    want = ["library", "individual", "plus", "minus"]
    if header[:4] != want:
        raise InputError(f"expected header {want}, found {header}", file=path, record="line 1")
    libs = []
    for i, r in enumerate(rows[1:], start=2):
        if len(r) < 4:
            raise InputError(f"expected 4 tab-separated columns, found {len(r)}", file=path,
                             record=f"line {i}")
        libs.append(Library(r[0].strip(), r[1].strip(), resolve(r[2].strip(), base),
                            resolve(r[3].strip(), base)))
    return tuple(libs)


RULES = {
    "reference": Rule((str,), required=True), "peaks": Rule((str,), required=True),
    "libraries": Rule((str, list), required=True), "variants": Rule((str, NONE)),
    "input_length": Rule((int,), low=1), "max_jitter": Rule((int,), low=0),
    "output_length": Rule((int,), low=1), "divergent_distance": Rule((int,), low=0),
    "folds": Rule((str, dict, NONE)), "contig_aliases": Rule((dict, NONE)),
    "shard_loci": Rule((int,), low=1),
    "signal_dtype": Rule((str,), choices=("auto", *SIGNAL_DTYPES)),
}


def check_raw(raw: dict[str, Any], source: str) -> None:
    """Every type, range and relation problem of a raw build config, reported at once."""
    problems, ok = problems_of(raw, RULES)
    d = {f.name: f.default for f in dataclasses.fields(BuildConfig)
         if f.default is not dataclasses.MISSING}
    d.update({k: raw[k] for k in ok})
    if {"input_length", "output_length"} <= ok | (set(d) - set(raw)) \
            and d["output_length"] > d["input_length"]:
        problems.append(f"output_length {d['output_length']} must be <= input_length "
                        f"{d['input_length']} (the output window lies inside the input)")
    if "folds" in ok:
        try:
            normalize_spec(raw["folds"], source)
        except InputError as e:
            problems.append(e.what)
    libs = raw.get("libraries")
    if "libraries" in ok and isinstance(libs, list) and not all(
            isinstance(x, dict) and {"id", "individual", "plus", "minus"} <= set(x)
            for x in libs):
        problems.append("libraries: each library needs id, individual, plus, minus")
    if "libraries" in ok and isinstance(libs, list):   # (a TSV table is checked once it is read)
        ids = [str(x["id"]) for x in libs if isinstance(x, dict) and "id" in x]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            problems.append(f"libraries: duplicated library id(s) {dup}; every library needs a "
                            "unique id")
    raise_problems(problems, source)


def load_config(path: str | Path, **overrides: Any) -> BuildConfig:
    """Read and check a build YAML; `overrides` (from CLI flags) win over the file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise InputError("config file not found", file=str(path))
    except yaml.YAMLError as e:
        raise InputError(f"not valid YAML ({e})", file=str(path))
    if not isinstance(raw, dict):
        raise InputError("expected a mapping of options at the top level", file=str(path))
    raw.update({k: v for k, v in overrides.items() if v is not None})
    check_raw(raw, str(path))
    base = path.parent.resolve()
    libs = raw["libraries"]
    from_table = isinstance(libs, str)
    if from_table:
        libs = read_library_table(resolve(libs, base), Path(resolve(libs, base)).parent)
    else:
        libs = tuple(Library(str(d["id"]), str(d["individual"]), resolve(d["plus"], base),
                             resolve(d["minus"], base)) for d in libs)
    raw["libraries"] = libs
    for key in ("reference", "peaks", "variants"):
        raw[key] = resolve(raw.get(key), base)
    raw["folds"] = resolve_paths(raw.get("folds"), base)
    spec = normalize_spec(raw["folds"], str(path))           # checks it; a mapping is kept
    raw["folds"] = spec if isinstance(raw["folds"], dict) else raw["folds"]  # canonical
    raw["contig_aliases"] = {str(k): str(v) for k, v in (raw.get("contig_aliases") or {}).items()}
    cfg = BuildConfig(**raw)
    if from_table:   # the table's rows, checked like the config's own list
        check_raw(cfg.to_dict(), str(path))
    return cfg
