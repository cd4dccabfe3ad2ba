"""Small learnable stores and configs for the trainer tests (fast on 2 cores).

`learnable_store` writes a synthetic store whose tracks are a function of the sequence
(plus-strand counts at every G of each individual's genome, minus-strand counts at every C), so a
tiny model's loss falls within a few dozen steps — random tracks would not show learning.
"""
from __future__ import annotations

import numpy as np
import zarr

from clipstore import layout

from tests._synthetic import synthetic_store

TINY = {"conv_filters": [8, 8], "filters": 8, "n_dilated": 2}


def learnable_store(url: str, *, n_loci: int = 320, n_individuals: int = 4, replicates: int = 1,
                    reference_only: bool = False, seed: int = 0) -> str:
    synthetic_store(url, n_loci=n_loci, n_individuals=n_individuals, replicates=replicates,
                    input_length=100, max_jitter=10, output_length=50, shard_loci=32, seed=seed,
                    reference_only=reference_only, variant_rate=2e-2)
    root = zarr.open_group(url, mode="r+")
    a = root.attrs["clipstore"]                     # signal covers output + 2 x jitter, centred
    off = (a["input_length"] - a["output_length"]) // 2
    sw = a["output_length"] + 2 * a["max_jitter"]
    seq = layout.sequence(root)[:, :, off:off + sw]      # (ind, locus, SW, 4)
    lib_ind = root["library_individual"][:]
    plus = 3.0 * seq[..., 2].astype(np.float32)     # G (count 2 when homozygous)
    minus = 3.0 * seq[..., 1].astype(np.float32)    # C
    sig = np.stack([plus, minus], axis=-1)[lib_ind]  # (lib, locus, SW, 2)
    root["signal"][:] = sig
    root["total_counts"][:] = sig.sum(axis=(1, 2, 3)).astype(root["total_counts"].dtype)
    return url


def tiny_config(store: str, output: str, **kw):
    from trainer.config import load_train_config

    base = dict(store=store, output=output, model=TINY, batch_size=32, steps_per_epoch=6,
                validation_steps=2, max_epochs=3, learning_rate=3e-3, tensorboard=False,
                loss="multiscale", loss_lambda=0.05)
    base.update(kw)
    return load_train_config(None, **base)
