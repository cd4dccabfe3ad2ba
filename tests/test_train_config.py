"""Training configs: safe YAML, overrides, clear errors, experiment expansion."""
from __future__ import annotations

import pytest

from clipstore.errors import InputError
from trainer.config import load_train_config, parse_override


def _write(tmp_path, text: str):
    p = tmp_path / "train.yaml"
    p.write_text(text)
    return p


def test_defaults_are_clipnets_and_paths_resolve(tmp_path):
    cfg = load_train_config(_write(tmp_path, "store: s.zarr\noutput: models/rep1\n"))
    assert cfg.store == str(tmp_path / "s.zarr") and cfg.output == str(tmp_path / "models/rep1")
    assert (cfg.learning_rate, cfg.batch_size, cfg.patience, cfg.max_epochs) == (1e-3, 256, 10, 200)
    assert cfg.loss_lambda == 1 / 500 and cfg.model == "clipnet" and cfg.replicate == 1
    url = load_train_config(_write(tmp_path, "store: s3://b/s.zarr\noutput: gs://b/m\n"))
    assert url.store == "s3://b/s.zarr" and url.output == "gs://b/m"


def test_overrides_win_including_dotted_keys(tmp_path):
    p = _write(tmp_path, "store: s.zarr\noutput: m\nsubsample: {n: 5, draws: 2}\n")
    cfg = load_train_config(p, max_epochs=3, **{"subsample.n": [5, 10]})
    assert cfg.max_epochs == 3 and cfg.subsample == {"n": [5, 10], "draws": 2, "seed": 0}
    assert parse_override("ensemble=[1, 2]") == ("ensemble", [1, 2])
    assert parse_override("fine_tune_from=null") == ("fine_tune_from", None)
    with pytest.raises(InputError, match="key=value"):
        parse_override("max_epochs")


@pytest.mark.parametrize("text, match", [
    ("store: s\noutput: m\nepochs: 3\n", r"unknown option\(s\) \['epochs'\]"),
    ("output: m\n", "missing required option 'store'"),
    ("store: s\noutput: m\nmax_epochs: three\n", "max_epochs must be int"),
    ("store: s\noutput: m\nmasked: 1\n", "masked must be bool"),
    ("store: s\noutput: m\nreplicate: 0\n", "replicate must be 1..9"),
    ("store: s\noutput: m\nensemble: [0, 1]\n", "ensemble must be"),
    ("store: s\noutput: m\nsubsample: {draws: 2}\n", "subsample needs at least n"),
    ("store: s\noutput: m\nsubsample: {n: 2, reps: 2}\n", "unknown subsample option"),
    ("store: s\noutput: m\nmodel: huge\n", "unknown model size"),
    ("store: s\noutput: m\nloss: mse\n", "loss must be clipnet or multiscale"),
    ("store: s\noutput: m\nbatch_size: 0\n", "batch_size must be positive"),
    ("- a\n- b\n", "mapping"),
    ("store: [unclosed\n", "not valid YAML"),
    ("store: !!python/object:os.system x\noutput: m\n", "not valid YAML"),
])
def test_clear_errors(tmp_path, text, match):
    with pytest.raises(InputError, match=match) as e:
        load_train_config(_write(tmp_path, text))
    assert "train.yaml" in str(e.value)


def test_missing_file():
    with pytest.raises(InputError, match="not found"):
        load_train_config("/nonexistent/train.yaml")


def test_expand_ensemble_and_subsample_grid(tmp_path):
    from trainer.train import expand, subsample_seed

    cfg = load_train_config(_write(tmp_path, "store: s\noutput: out\nensemble: all\n"
                                   "subsample: {n: [5, 10], draws: 3, seed: 7}\n"))
    runs = expand(cfg)
    assert len(runs) == 2 * 3 * 9
    rels = [r for r, _ in runs]
    assert rels[0] == "n5/draw0/rep1" and rels[-1] == "n10/draw2/rep9" and len(set(rels)) == 54
    one = dict(runs)["n10/draw1/rep4"]
    assert one.replicate == 4 and one.ensemble is None
    assert one.subsample == {"n": 10, "draws": 1, "seed": 7, "draw": 1}
    assert one.output == str(tmp_path / "out") + "/n10/draw1/rep4"
    seeds = {subsample_seed(c.subsample) for _, c in runs}
    assert len(seeds) == 6                                   # one per (n, draw)
    plain = load_train_config(_write(tmp_path, "store: s\noutput: out\nreplicate: 3\n"))
    assert expand(plain) == [("", plain)]


def test_to_dict_drops_storage_options(tmp_path):
    cfg = load_train_config(_write(tmp_path, "store: s\noutput: m\n"),
                            storage_options={"secret": "x"})
    assert "storage_options" not in cfg.to_dict() and cfg.storage_options == {"secret": "x"}


def test_shipped_experiment_configs_load_and_expand():
    from pathlib import Path

    import trainer
    from trainer.train import expand

    folder = Path(trainer.__file__).parent / "configs"
    counts = {p.stem: len(expand(load_train_config(p))) for p in sorted(folder.glob("*.yaml"))}
    assert counts == {"demo": 1, "ensemble": 9, "finetune": 1, "masked": 9, "replicate": 1,
                      "subsample": 25}
    ft = load_train_config(folder / "finetune.yaml")
    assert ft.fine_tune_from.endswith("models/ens/rep1/model.keras") and ft.warmup_lr == 1e-4


@pytest.mark.parametrize("text, match", [
    ("learning_rate: 0\n", "learning_rate must be positive"),
    ("learning_rate: fast\n", "learning_rate must be float"),
    ("patience: -1\n", "patience must be >= 0"),
    ("jitter: -3\n", "jitter must be >= 0"),
    ("steps_per_epoch: 0\n", "steps_per_epoch must be positive"),
    ("profile_loss: l2\n", "profile_loss must be cosine or multinomial"),
    ("mixed_precision: maybe\n", "mixed_precision must be auto or on or off"),
    ("input_length: 200\noutput_length: 400\n", "output_length 400 must be <= input_length 200"),
    ("quantity_scale: -1\n", "quantity_scale must be a positive number"),
])
def test_ranges_and_relations(tmp_path, text, match):
    with pytest.raises(InputError, match=match):
        load_train_config(_write(tmp_path, "store: s\noutput: m\n" + text))


def test_every_problem_at_once_through_the_shared_layer(tmp_path):
    from clipstore.config import RULES as BUILD_RULES
    from trainer.config import RULES
    from clipstore.configcheck import Rule
    assert all(isinstance(r, Rule) for r in [*RULES.values(), *BUILD_RULES.values()])
    with pytest.raises(InputError) as e:
        load_train_config(_write(tmp_path, "output: m\nmax_epochs: three\nbatch_size: 0\n"
                                           "loss: mse\nreplicate: 12\n"))
    msg = str(e.value)
    assert "5 problems" in msg
    for key in ("'store'", "max_epochs", "batch_size", "loss", "replicate"):
        assert key in msg, key
