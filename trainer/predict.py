"""Predictions from saved models: single models or ensembles, with reverse-complement averaging.

    pred = load_predictor(["m/rep1/model.keras", "m/rep2/model.keras"])   # ensemble mean
    profile, quantity = pred(x)            # x (B, L, 4) two-hot; profile (B, 2*out) plus|minus
    ds = predict_store(pred, "store.zarr") # xarray: profile (individual, locus, out_position)

Why RC averaging: the model sees both strands in training (RC augmentation), so predicting a
sequence and its reverse complement, then flipping the second profile back (positions reversed,
plus and minus swapped), and averaging removes strand-orientation noise. Models load with
`safe_mode=True`: no code from a model file is ever executed.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from clipstore.errors import InputError

from .storage import experiment_models, fetch_model, is_remote

log = logging.getLogger(__name__)


def flip_profile(profile: np.ndarray) -> np.ndarray:
    """Profile of the reverse-complemented sequence, back in forward coordinates:
    (B, 2*O) plus|minus -> reverse positions and swap strands."""
    B, n = profile.shape
    return profile.reshape(B, 2, n // 2)[:, ::-1, ::-1].reshape(B, n)


class Predictor:
    """Callable (x (B, L, 4)) -> (profile (B, 2*out) f32 >= 0, quantity (B,) f32 >= 0)."""

    def __init__(self, models: list, *, rc_average: bool = True, batch_size: int = 256,
                 paths: Sequence[str] = ()):
        if not models:
            raise ValueError("a predictor needs at least one model")
        shapes = {(int(m.input_shape[1]), int(m.output["profile"].shape[-1])) for m in models}
        if len(shapes) != 1:
            raise InputError(f"ensemble members disagree on input/output lengths: {sorted(shapes)}")
        (li, lo2), = shapes
        self.models = models
        self.rc_average = rc_average
        self.batch_size = int(batch_size)
        self.paths = list(paths)
        self.input_length = li
        self.output_length = lo2 // 2       # per strand

    def __repr__(self) -> str:
        return (f"Predictor({len(self.models)} model(s), input_length={self.input_length}, "
                f"output_length={self.output_length}, rc_average={self.rc_average})")

    def _one(self, model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = model.predict_on_batch(x)
        return (np.asarray(out["profile"], np.float32),
                np.asarray(out["quantity"], np.float32).reshape(-1))

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[1:] != (self.input_length, 4):
            raise InputError(f"expected sequences of shape (B, {self.input_length}, 4), "
                             f"got {x.shape}")
        B, O2 = len(x), 2 * self.output_length
        profile = np.zeros((B, O2), np.float32)
        quantity = np.zeros(B, np.float32)
        n_terms = len(self.models) * (2 if self.rc_average else 1)
        for s in range(0, B, self.batch_size):
            xb = x[s:s + self.batch_size].astype(np.float32)
            xr = xb[:, ::-1, ::-1].copy() if self.rc_average else None
            for m in self.models:
                p, q = self._one(m, xb)
                profile[s:s + len(xb)] += p
                quantity[s:s + len(xb)] += q
                if xr is not None:
                    p, q = self._one(m, xr)
                    profile[s:s + len(xb)] += flip_profile(p)
                    quantity[s:s + len(xb)] += q
        profile /= n_terms
        quantity /= n_terms
        return np.maximum(profile, 0), np.maximum(quantity, 0)


def load_predictor(paths: str | Sequence[str], rc_average: bool = True, batch_size: int = 256,
                   storage_options: dict | None = None) -> Predictor:
    """A Predictor from one model (file or run folder) or a list of them (ensemble mean); an
    experiment folder written by `train_all` (e.g. a 9-fold ensemble) means all its models, and
    a folder of CLIPNET's released `fold_<k>.h5` files the released fold ensemble."""
    import trainer.losses  # noqa: F401  (registers the loss classes saved with the models)

    if isinstance(paths, (str, os.PathLike)):
        paths = [str(paths)]
    paths = [m for p in paths for m in _expand_experiment(str(p))]
    models = [load_model(str(p), storage_options) for p in paths]
    return Predictor(models, rc_average=rc_average, batch_size=batch_size,
                     paths=[str(p) for p in paths])


def load_model(path: str, storage_options: dict | None = None):
    """One model, loaded without running code from the file: a `.keras` file or run folder
    (Keras safe_mode), or a released CLIPNET `.h5` (weights copied into our architecture)."""
    import keras

    from .released import is_h5, load_h5

    local = fetch_model(path, storage_options)
    if is_h5(local):
        return load_h5(local)
    try:
        return keras.saving.load_model(local, safe_mode=True, compile=False)
    except (ValueError, OSError) as e:
        raise InputError(f"cannot load model safely ({e})", file=str(path)) from None


def _expand_experiment(path: str) -> list[str]:
    """A local experiment folder (experiment.json, no model.keras) means all its models; a local
    folder of CLIPNET's `fold_<k>.h5` files means the fold ensemble."""
    from .released import fold_files

    p = Path(path)
    if is_remote(path) or not p.is_dir() or (p / "model.keras").exists():
        return [path]
    if (p / "experiment.json").exists():
        return experiment_models(path)
    return fold_files(p) or [path]


# ---- stores -----------------------------------------------------------------------------------
def predict_store(predictor, url: str, *, loci=None, individuals: Sequence[str] | None = None,
                  masked: bool = False, storage_options: dict | None = None,
                  batch_size: int = 256):
    """Predict every (individual, locus) of a store, reading through the clipstore reader.

    Returns an xarray.Dataset with profile (individual, locus, out_position) — out_position is
    the plus strand then the minus strand — and quantity (individual, locus). `masked=True`
    predicts the reference sequence once (individual dimension = ["reference"]). `loci` takes
    store indices, locus ids or a boolean mask.
    """
    import xarray as xr

    from clipstore.reader import StoreDataset

    ds = StoreDataset.open(url, storage_options=storage_options)
    ind_ids = np.asarray(ds.meta.root["individual_id"][:]).astype(str)
    lib_ind = ds.meta.library_individual
    if masked:
        chosen = np.array([0])
        names = np.array(["reference"])
    else:
        want = np.arange(len(ind_ids)) if individuals is None else _index(ind_ids, individuals, url)
        have = set(lib_ind.tolist())
        missing = [ind_ids[i] for i in want if i not in have]
        if missing:
            raise InputError(f"individual(s) without a library cannot be read: {missing[:3]}",
                             file=url)
        chosen = want
        names = ind_ids[want]
    # one library per individual: the reader serves that individual's sequence
    libs = [int(np.flatnonzero(lib_ind == i)[0]) for i in chosen] if not masked else [0]
    sel = ds.with_libraries(libs).masked(masked)
    if loci is not None:
        sel = sel.with_loci(loci)
    try:
        sel = sel.with_lengths(predictor.input_length, predictor.output_length)
    except ValueError as e:
        raise InputError(str(e), file=url, hint="the model's lengths must fit the store window")
    n_loc = len(sel.loci)
    pos_of_locus = {int(l): i for i, l in enumerate(sel.loci.tolist())}
    pos_of_lib = {lib: i for i, lib in enumerate(libs)}
    O2 = 2 * predictor.output_length
    profile = np.zeros((len(libs), n_loc, O2), np.float32)
    quantity = np.zeros((len(libs), n_loc), np.float32)
    for b in sel.batches(batch_size, shuffle=False):
        p, q = predictor(b.x)
        r = np.array([pos_of_lib[int(v)] for v in b.library])
        c = np.array([pos_of_locus[int(v)] for v in b.locus])
        profile[r, c] = p
        quantity[r, c] = q
    root = ds.meta.root
    coords = {"individual": names, "locus": sel.loci,
              "locus_id": ("locus", np.asarray(ds.meta.locus_id[sel.loci]).astype(str)),
              "chrom": ("locus", np.asarray(root["chrom"][:])[sel.loci].astype(str)),
              "fold": ("locus", ds.meta.fold[sel.loci])}
    return xr.Dataset(
        {"profile": (("individual", "locus", "out_position"), profile),
         "quantity": (("individual", "locus"), quantity)},
        coords=coords,
        attrs={"profile_layout": "plus strand then minus strand",
               "output_length": predictor.output_length, "masked": int(masked),
               "models": list(getattr(predictor, "paths", []))})


def _index(ids: np.ndarray, wanted: Sequence[str], url: str) -> np.ndarray:
    pos = {s: i for i, s in enumerate(ids.tolist())}
    bad = [w for w in wanted if w not in pos]
    if bad:
        raise InputError(f"no individual {bad[0]!r} in this store", file=url)
    return np.array([pos[w] for w in wanted], dtype=np.int64)


# ---- sequences from files ---------------------------------------------------------------------
def read_fasta(path: str) -> list[tuple[str, str]]:
    """(name, sequence) records of a plain or gzipped FASTA, read by pysam (no index needed);
    a file whose first line is not a `>` header is refused rather than skipped silently."""
    import pysam

    from clipstore.paths import open_text

    try:
        with open_text(path) as fh:
            first = next((line for line in fh if line.strip()), "")
    except FileNotFoundError:
        raise InputError("FASTA not found", file=str(path)) from None
    except (UnicodeDecodeError, OSError) as e:
        raise InputError(f"not a text FASTA ({e})", file=str(path)) from None
    if not first.startswith(">"):
        raise InputError("expected a '>' header on the first line", file=str(path),
                         record="line 1", hint="give a FASTA of sequences (one '>' line each)")
    with pysam.FastxFile(str(path)) as fh:
        records = [(r.name, r.sequence or "") for r in fh]
    if not records:
        raise InputError("no FASTA records", file=str(path))
    return records


def encode_sequences(records: list[tuple[str, str]], input_length: int, *,
                     encoding: str = "iupac", source: str = "<fasta>", crop: bool = False
                     ) -> tuple[list[str], np.ndarray]:
    """Two-hot arrays for FASTA records of the model's input length.

    Records longer than `input_length` are an error unless `crop` (then their centre is used,
    and a warning says how many were cropped): a silent crop would predict another sequence
    than the one the user gave.

    encoding "iupac": one record per sequence, ambiguity codes are heterozygous sites (A = 2 x A).
    encoding "haplotypes": consecutive record pairs are the two haplotypes of one sequence.
    """
    from clipstore.encoding import two_hot, two_hot_iupac

    longer = [(n, len(s)) for n, s in records if len(s) > input_length]
    if longer and not crop:
        n0, l0 = longer[0]
        raise InputError(f"{len(longer)} of {len(records)} record(s) are longer than the model's "
                         f"{input_length} bp input (first: {n0}, {l0} bp)", file=source,
                         record=n0, hint=f"pass --crop (crop=True) to predict the centre "
                                         f"{input_length} bp of each, or trim the records")
    if longer:
        log.warning("%s: cropped %d of %d record(s) to their centre %d bp (the model's input)",
                    source, len(longer), len(records), input_length)

    def centre(name: str, s: str) -> str:
        if len(s) < input_length:
            raise InputError(f"sequence is {len(s)} bp, the model needs {input_length}",
                             file=source, record=name)
        a = (len(s) - input_length) // 2
        return s[a:a + input_length]

    if encoding == "iupac":
        names = [n for n, _ in records]
        x = np.stack([two_hot_iupac(centre(n, s)) for n, s in records])
    elif encoding == "haplotypes":
        if len(records) % 2:
            raise InputError("haplotype FASTA needs an even number of records (pairs)",
                             file=source)
        names, xs = [], []
        for (n1, s1), (n2, s2) in zip(records[::2], records[1::2]):
            if len(s1) != len(s2):
                raise InputError("the two haplotypes differ in length", file=source, record=n1)
            names.append(n1)
            xs.append(two_hot(centre(n1, s1), centre(n2, s2)))
        x = np.stack(xs)
    else:
        raise InputError(f"encoding must be iupac or haplotypes, got {encoding!r}")
    return names, x


def sequences_from_bed(bed: str, fasta: str, input_length: int) -> tuple[list[str], np.ndarray]:
    """Reference two-hot (2 x one-hot, the store's scale) windows centred on BED intervals."""
    from clipstore.encoding import one_hot
    from clipstore.fasta import contigs_of, fetch, open_fasta

    fa = open_fasta(fasta)
    contigs = contigs_of(fa)
    names, xs = [], []
    from clipstore.paths import open_text

    try:
        fh = open_text(bed)
    except FileNotFoundError:
        raise InputError("BED file not found", file=bed) from None
    with fh:
        for i, line in enumerate(fh, start=1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            f = line.rstrip("\n").split("\t")
            try:
                chrom, start, end = f[0], int(f[1]), int(f[2])
            except (IndexError, ValueError):
                raise InputError("expected chrom, start, end", file=bed, record=f"line {i}")
            contig = contigs.get(chrom) or contigs.get(chrom.removeprefix("chr")) or contigs.get(
                "chr" + chrom)
            if contig is None:
                raise InputError(f"contig {chrom!r} not in the FASTA", file=bed, record=f"line {i}")
            centre = (start + end) // 2
            a = centre - input_length // 2
            if a < contig.offset or a + input_length > contig.end:
                raise InputError("window runs off the FASTA record", file=bed, record=f"line {i}")
            names.append(f[3] if len(f) > 3 and f[3] else f"{chrom}:{start}-{end}")
            xs.append(2 * one_hot(fetch(fa, contig, a, a + input_length)))
    if not xs:
        raise InputError("no intervals in the BED file", file=bed)
    return names, np.stack(xs)


def predict_arrays(predictor, names: list[str], x: np.ndarray):
    """Predict named sequences -> xarray.Dataset (sequence, out_position)."""
    import xarray as xr

    p, q = predictor(x)
    return xr.Dataset({"profile": (("sequence", "out_position"), p),
                       "quantity": (("sequence",), q)},
                      coords={"sequence": np.asarray(names, dtype=str)},
                      attrs={"profile_layout": "plus strand then minus strand",
                             "output_length": predictor.output_length,
                             "models": list(getattr(predictor, "paths", []))})


def save_predictions(ds, path: str, storage_options: dict | None = None) -> str:
    """Write predictions to .npz (numpy arrays + coordinate labels) or Zarr (anything else)."""
    if str(path).endswith(".npz"):
        arrays = {k: np.asarray(v.values) for k, v in ds.data_vars.items()}
        for c in ds.coords:
            arrays[c] = np.asarray(ds[c].values).astype(str) if ds[c].dtype.kind in "OUS" else \
                np.asarray(ds[c].values)
        np.savez_compressed(path, **arrays)
        return str(path)
    out = ds.copy()
    for c in out.coords:   # no object dtypes in stores
        if out[c].dtype.kind == "O":
            out[c] = out[c].astype(str)
    out.attrs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.attrs.items()}
    out.to_zarr(str(path), mode="w", storage_options=storage_options, consolidated=False,
                zarr_format=3)
    return str(path)
