"""PyTorch reader: `to_torch` serves exactly the numpy path's examples (same seed, selection and
augmentation) in-process and from 1 or 2 DataLoader workers, with no duplicate or missing
example across workers; each pass is the next seeded epoch; and a small PyTorch model trains a
few steps from a store on a loopback S3 server (moto), read by forked DataLoader workers."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed (pip install 'clipstore[torch]')")

from clipstore.reader import StoreDataset  # noqa: E402
from clipstore.torchdata import StoreLoader, TorchStore, to_torch  # noqa: E402

POOL = 64   # one shard per block: the small test store gives several blocks to split


def selections(store: str) -> dict[str, StoreDataset]:
    base = StoreDataset.open(store)
    return {
        "personal": base.subsample(6, seed=1).with_split(1, "train").with_jitter(100)
        .with_rc(True).with_rpm(True),
        "masked": base.masked(True).with_jitter(37).with_rc(True),
    }


def by_example(batches) -> dict[tuple[int, int], tuple]:
    """(library, locus) -> (x, profile, quantity) over torch or numpy batches; asserts no
    example appears twice."""
    out: dict = {}
    for b in batches:
        if isinstance(b, tuple):
            x, y = b
            arrays = (x.numpy(), y["profile"].numpy(), y["quantity"].numpy()[:, 0])
            keys = zip(y["library"].tolist(), y["locus"].tolist())
        else:
            arrays = (b.x, b.profile, b.quantity)
            keys = zip(b.library.tolist(), b.locus.tolist())
        for i, k in enumerate(keys):
            assert k not in out, f"example {k} served twice"
            out[k] = tuple(a[i] for a in arrays)
    return out


@pytest.mark.parametrize("workers", [0, 1, 2])
@pytest.mark.parametrize("which", ["personal", "masked"])
def test_to_torch_serves_exactly_the_numpy_examples(store, workers, which):
    ds = selections(store)[which]
    ref = list(ds.batches(32, seed=3, epoch=0, pool_loci=POOL))
    loader = to_torch(ds, 32, seed=3, num_workers=workers, with_index=True, pool_loci=POOL)
    n = len(loader)              # the next pass's batches
    got = list(loader)
    assert len(got) == n
    x, y = got[0]
    assert x.dtype == torch.uint8 and x.shape[1:] == (ds.input_length, 4)
    assert y["profile"].dtype == torch.float32 and y["profile"].shape[1] == 2 * ds.output_length
    assert y["quantity"].shape[1] == 1
    want, have = by_example(ref), by_example(got)
    assert len(have) == len(want) == ds.n_examples       # no drops, no duplicates (by_example)
    assert have.keys() == want.keys()
    for k, (wx, wp, wq) in want.items():
        hx, hp, hq = have[k]
        np.testing.assert_array_equal(hx, wx, err_msg=str(k))
        np.testing.assert_array_equal(hp, wp, err_msg=str(k))
        np.testing.assert_array_equal(hq, wq, err_msg=str(k))
    if workers <= 1:     # one producer: the very same batches in the same order
        assert [len(b[0]) for b in got] == [len(b) for b in ref]
        for (tx, ty), b in zip(got, ref):
            np.testing.assert_array_equal(tx.numpy(), b.x)
            np.testing.assert_array_equal(ty["locus"].numpy(), b.locus)
    else:                # two workers split the blocks: both serve
        assert len(got) > len(ref) - 1


def test_each_pass_is_the_next_seeded_epoch(store):
    ds = selections(store)["personal"]
    a = to_torch(ds, 64, seed=5, with_index=True, pool_loci=POOL)
    b = to_torch(ds, 64, seed=5, with_index=True, pool_loci=POOL)
    a0, a1, b0 = list(a), list(a), list(b)
    assert a.epoch == 2
    for (x0, _), (x1, _) in zip(a0, b0):                  # seeded: same seed, same epoch
        np.testing.assert_array_equal(x0.numpy(), x1.numpy())
    assert not np.array_equal(a0[0][1]["locus"].numpy(), a1[0][1]["locus"].numpy())  # reshuffled
    ref1 = list(ds.batches(64, seed=5, epoch=1, pool_loci=POOL))
    for (x, y), r in zip(a1, ref1):                         # pass 2 is the numpy path's epoch 1
        np.testing.assert_array_equal(x.numpy(), r.x)
        np.testing.assert_array_equal(y["library"].numpy(), r.library)
    two = to_torch(ds, 64, seed=5, epochs=2, with_index=True, pool_loci=POOL)
    n = len(two)
    assert len(list(two)) == n == len(a0) + len(a1)


def test_workers_reshuffle_every_pass(store):
    """Workers get a copy of the dataset per pass: the loader must still advance the epoch."""
    ds = selections(store)["personal"]
    loader = to_torch(ds, 64, seed=5, num_workers=2, with_index=True, pool_loci=POOL)
    e0, e1 = by_example(loader), by_example(loader)
    assert e0.keys() == e1.keys()
    want1 = by_example(ds.batches(64, seed=5, epoch=1, pool_loci=POOL))
    for k in want1:
        np.testing.assert_array_equal(e1[k][0], want1[k][0])
    assert any(not np.array_equal(e0[k][0], e1[k][0]) for k in e0)   # new jitter/RC draws


def test_rank_shards_times_workers_cover_the_epoch_once(store):
    """A caller's own shard (a DDP rank) split again over DataLoader workers: the union over
    ranks and workers is the epoch, once; TorchStore works in a user-built DataLoader."""
    from torch.utils.data import DataLoader

    ds = selections(store)["personal"]
    seen: dict = {}
    n = 0
    for rank in range(2):
        tds = TorchStore(ds, 16, seed=2, shard=(2, rank), with_index=True, pool_loci=POOL)
        tds.set_epoch(4)
        batches = list(DataLoader(tds, batch_size=None, num_workers=2))
        assert len(batches) == tds.n_batches(num_workers=2)
        part = by_example(batches)
        assert not part.keys() & seen.keys()
        seen.update(part)
        n += sum(len(b[0]) for b in batches)
    assert n == len(seen) == ds.n_examples
    want = by_example(ds.batches(16, seed=2, epoch=4, pool_loci=POOL))
    for k, v in want.items():
        np.testing.assert_array_equal(seen[k][0], v[0])


def test_endless_stream_from_workers_crosses_epochs_when_a_worker_has_no_block(store):
    """One block per epoch, two workers: the idle worker ends each pass instead of spinning."""
    ds = selections(store)["masked"]
    per_epoch = to_torch(ds, 50, seed=1, num_workers=2, with_index=True).dataset.n_batches(2)
    loader = to_torch(ds, 50, seed=1, epochs=None, num_workers=2, with_index=True)
    got = [b for _, b in zip(range(2 * per_epoch + 1), loader)]
    assert len(got) == 2 * per_epoch + 1
    e0 = by_example(got[:per_epoch])
    assert len(e0) == ds.n_examples
    e1 = by_example(got[per_epoch:2 * per_epoch])
    want1 = by_example(ds.batches(50, seed=1, epoch=1))
    for k, v in want1.items():
        np.testing.assert_array_equal(e1[k][0], v[0])


def test_endless_torchstore_in_a_users_worker_is_refused(store):
    from torch.utils.data import DataLoader

    tds = TorchStore(selections(store)["masked"], 50, epochs=None)
    with pytest.raises(Exception, match="epochs=None"):
        next(iter(DataLoader(tds, batch_size=None, num_workers=1)))


def test_an_endless_stream_with_nothing_to_serve_is_refused(store):
    ds = selections(store)["masked"]
    with pytest.raises(ValueError, match="nothing to serve"):
        next(iter(to_torch(ds.with_loci([]), 50, epochs=None)))
    with pytest.raises(ValueError, match="nothing to serve"):   # one block, this rank has none
        next(iter(to_torch(ds, 50, epochs=None, shard=(2, 1))))


def test_drop_remainder_and_length(store):
    ds = selections(store)["masked"]
    for drop in (False, True):
        for workers in (0, 2):
            loader = to_torch(ds, 100, seed=0, num_workers=workers, drop_remainder=drop,
                              pool_loci=POOL)
            n = len(loader)
            got = list(loader)
            assert len(got) == n
            if drop:
                assert {len(x) for x, _ in got} == {100}
            else:
                assert sum(len(x) for x, _ in got) == ds.n_examples


def test_pin_memory_on_request(store):
    from clipstore import torchdata

    ds = selections(store)["masked"]
    can = torch.cuda.is_available()
    torchdata._WARNED.discard("pin")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        loader = to_torch(ds, 64, pin_memory=True, pool_loci=POOL)
        x, y = next(iter(loader))
    if can:
        assert x.is_pinned() and y["profile"].is_pinned()
    else:   # torch cannot page-lock without an accelerator: said once, ordinary tensors served
        assert loader.pin_memory is False and not x.is_pinned()
        assert any("no accelerator" in str(m.message) for m in w)


def test_bad_arguments_are_refused(store):
    ds = selections(store)["masked"]
    with pytest.raises(ValueError, match="epochs"):
        to_torch(ds, 32, epochs=0)
    with pytest.raises(ValueError, match="batch_size"):
        to_torch(ds, 0)
    with pytest.raises(ValueError, match="num_workers"):
        to_torch(ds, 32, num_workers=-1)
    with pytest.raises(TypeError, match="endless"):
        len(to_torch(ds, 32, epochs=None))
    assert isinstance(to_torch(ds, 32), StoreLoader)


def test_a_torch_model_trains_from_a_store_on_loopback_s3(store):
    """Forked workers reopen the bucket store themselves (the parent's client does not survive
    a fork); the model's loss on a fixed batch falls after a few Adam steps."""
    import fsspec

    from clipstore.testing import moto_server

    torch.manual_seed(0)
    with moto_server() as (_, so):
        fs = fsspec.filesystem("s3", **so)
        fs.mkdir("torch-test")
        fs.put(store, "torch-test/store.zarr", recursive=True)
        ds = (StoreDataset.open("s3://torch-test/store.zarr", storage_options=so)
              .with_lengths(200, 100).with_jitter(50).with_rc(True))
        list(ds.batches(64, pool_loci=POOL))      # the parent reads (and opens clients) first
        loader = to_torch(ds, 64, seed=0, epochs=None, num_workers=2, pool_loci=POOL)
        model = torch.nn.Sequential(
            torch.nn.Conv1d(4, 8, 11, padding=5), torch.nn.ReLU(),
            torch.nn.Conv1d(8, 2, 11, padding=5), torch.nn.AdaptiveAvgPool1d(100),
            torch.nn.Flatten(), torch.nn.Softplus())
        opt = torch.optim.Adam(model.parameters(), 1e-2)

        def loss_of(x, y):
            pred = model(x.float().transpose(1, 2))
            return torch.nn.functional.poisson_nll_loss(pred, y["profile"], log_input=False)

        it = iter(loader)
        fixed = next(it)
        with torch.no_grad():
            before = float(loss_of(*fixed))
        for _, (x, y) in zip(range(25), it):
            opt.zero_grad()
            loss = loss_of(x, y)
            loss.backward()
            opt.step()
        with torch.no_grad():
            after = float(loss_of(*fixed))
        del it
    assert np.isfinite(after) and after < before


def test_the_docs_training_loop_runs(store):
    """docs/readers.md's PyTorch loop, as written, on the test store (stored window 1000 + 2 x
    250: the docs' jitter 250 fits)."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "readers.md").read_text()
    section = text[text.index("## `to_torch`"):]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    ns: dict = {}
    # the store's first 8 loci keep the three CPU epochs short
    code = code.replace('StoreDataset.open("store.zarr")',
                        f'StoreDataset.open({store!r}).with_loci(range(8))')
    assert "with_loci" in code
    exec(compile(code, "readers.md", "exec"), ns)
    assert ns["epoch"] == 2 and ns["loader"].epoch == 3
    assert np.isfinite(ns["loss"].item())
