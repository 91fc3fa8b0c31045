"""capture(): hooks, reductions, crash-safe on-disk store, and explain over a memory-mapped layer."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import invert_fast as inv
from invert_fast.io.capture import capture, load_activations


def small_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 8 * 8, 5)).eval()


def loader(n=70, batch=16):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 1, 8, 8, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch), x, y


def test_in_memory_matches_direct_forward():
    model = small_cnn()
    dl, x, _ = loader()
    acts = capture(model, dl, ["1", "3"])
    with torch.no_grad():
        conv = model[1](model[0](x))
        logits = model(x)
    assert torch.allclose(acts["1"], conv.mean((2, 3)), atol=1e-6)
    assert torch.allclose(acts["3"], logits, atol=1e-6)
    assert torch.allclose(capture(model, dl, {"relu": model[1]}, reduce="max")["relu"], conv.amax((2, 3)), atol=1e-6)
    assert capture(model, dl, ["1"], reduce="keep")["1"].shape == (70, 6, 8, 8)


def test_sequence_reductions():
    class Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 3)

        def forward(self, x):  # [B, T, 4]
            return self.lin(x)

    m = Seq().eval()
    x = torch.randn(5, 7, 4)
    with torch.no_grad():
        full = m(x)
    assert torch.allclose(capture(m, [x], ["lin"], sequence="mean")["lin"], full.mean(1))
    assert torch.allclose(capture(m, [x], ["lin"], sequence="last")["lin"], full[:, -1])
    assert capture(m, [x], ["lin"], sequence="tokens")["lin"].shape == (35, 3)


def test_disk_store_is_crash_safe_and_explain_reads_it_in_chunks(tmp_path):
    model = small_cnn()
    dl, x, y = loader(n=200, batch=32)
    paths = capture(model, dl, ["1", "3"], out=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.npy", "3.npy"]
    mem = capture(model, dl, ["1"])["1"]
    disk = load_activations(paths["1"])
    assert disk.shape == (200, 6) and torch.equal(disk, mem)
    concepts = inv.ConceptSet.from_classes(y, ["a", "b", "c"])
    with pytest.warns(UserWarning, match="searching one neuron at a time"):
        small = inv.explain(disk, concepts, L=2, B=3, max_memory=4096)  # a budget far below the layer: neuron chunks
    assert [[str(e.formula) for e in r] for r in small] == [
        [str(e.formula) for e in r] for r in inv.explain(mem, concepts, L=2, B=3)
    ]

    class Boom(Exception):
        pass

    def failing():
        for i, batch in enumerate(dl):
            if i == 3:
                raise Boom
            yield batch

    with pytest.raises(Boom):
        capture(model, failing(), ["3"], out=tmp_path / "crash")
    assert list((tmp_path / "crash").iterdir()) == []  # no file that looks complete, no partial left


def test_bad_arguments():
    model = small_cnn()
    with pytest.raises(ValueError, match="layers: the model has no module 'nope'"):
        capture(model, [torch.zeros(1, 1, 8, 8)], ["nope"])
    with pytest.raises(ValueError, match="reduce: expected one of"):
        capture(model, [torch.zeros(1, 1, 8, 8)], ["1"], reduce="median")
    with pytest.raises(TypeError, match="data: expected batches"):
        capture(model, ["text"], ["1"])


def test_npy_is_standard(tmp_path):
    model = small_cnn()
    dl, _, _ = loader(n=40)
    path = capture(model, dl, ["3"], out=tmp_path, dtype=np.float16)["3"]
    arr = np.load(path)
    assert arr.dtype == np.float16 and arr.shape == (40, 5)
