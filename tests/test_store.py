"""On-disk stores: the neuron-major transpose, chunk reads, identical labels from every layout, and a
bounded memory footprint for a layer larger than the budget."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from invert_fast.apps.cli import main
from invert_fast.io.store import NeuronStore, to_neuron_major


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_transpose_and_reads(tmp_path, dtype):
    x = np.random.default_rng(0).standard_normal((1001, 333)).astype(dtype)
    np.save(tmp_path / "a.npy", x)
    for budget in (1, 700, 10**9):  # tiles of one value, odd tiles, one tile
        out = to_neuron_major(tmp_path / "a.npy", max_memory=budget)
        assert out.name == "a.neurons.npy" and np.array_equal(np.load(out), x.T)
    nm, sm = NeuronStore(out), NeuronStore(tmp_path / "a.npy")
    assert nm.shape == sm.shape == (1001, 333) and nm.neuron_major and not sm.neuron_major
    for d0, d1 in [(0, 1), (10, 50), (300, 400), (0, 333)]:
        want = torch.from_numpy(x[:, d0:d1])
        assert torch.equal(nm.read(d0, d1), want) and torch.equal(sm.read(d0, d1, max_buffer=999), want)


def test_store_errors(tmp_path):
    np.save(tmp_path / "three.npy", np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="holds an array of shape"):
        NeuronStore(tmp_path / "three.npy")
    np.save(tmp_path / "int.npy", np.arange(6, dtype=np.uint16).reshape(2, 3))  # integers are read as they are
    assert NeuronStore(tmp_path / "int.npy").read(0, 3).tolist() == [[0, 1, 2], [3, 4, 5]]
    np.save(tmp_path / "bool.npy", np.zeros((2, 3), bool))
    with pytest.raises(TypeError, match="holds bool; expected floats or integers"):
        NeuronStore(tmp_path / "bool.npy")
    np.save(tmp_path / "big.npy", np.zeros((2, 3), ">f4"))
    with pytest.raises(TypeError, match="expected little-endian"):
        NeuronStore(tmp_path / "big.npy")
    np.save(tmp_path / "f.npy", np.asfortranarray(np.zeros((3, 4), np.float32)))
    with pytest.raises(ValueError, match="Fortran-ordered"):
        NeuronStore(tmp_path / "f.npy")
    np.save(tmp_path / "t.npy", np.zeros((100, 4), np.float32))
    with open(tmp_path / "t.npy", "r+b") as f:
        f.truncate(300)
    with pytest.raises(ValueError, match="is truncated"):
        NeuronStore(tmp_path / "t.npy")
    np.save(tmp_path / "b.neurons.npy", np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="already neuron-major"):
        to_neuron_major(tmp_path / "b.neurons.npy")


def test_every_layout_gives_the_same_labels(tmp_path, capsys):
    g = np.random.default_rng(1)
    y = g.integers(0, 6, 800)
    acts = (g.standard_normal((800, 70)) + (y[:, None] == np.arange(70)[None] % 6)).astype(np.float32)
    np.save(tmp_path / "acts.npy", acts)
    np.save(tmp_path / "y.npy", y)
    torch.save({"a": torch.from_numpy(acts)}, tmp_path / "acts.pt")
    assert main(["transpose", str(tmp_path / "acts.npy"), "--max-memory", "5000"]) == 0
    outs = []
    for src, extra in [
        ("acts.pt", []),
        ("acts.npy", ["--chunk", "16"]),
        ("acts.neurons.npy", ["--max-memory", "200000"]),
    ]:
        out = tmp_path / f"{src}.csv"
        argv = ["explain", "--activations", str(tmp_path / src), "--labels", str(tmp_path / "y.npy"), "-L", "2"]
        assert main([*argv, "-B", "3", "--out", str(out), "--quiet", *extra]) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]
    assert "neuron-major" in capsys.readouterr().out


def test_memory_stays_within_the_budget(tmp_path):
    """A 160 MB neuron-major layer labelled with a 16 MB budget: resident memory grows by far less
    than the layer (explicit chunk reads, no memory map)."""
    n, d = 20_000, 2_000
    g = np.random.default_rng(2)
    y = g.integers(0, 10, n)
    path = tmp_path / "big.neurons.npy"
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(d, n))
    for d0 in range(0, d, 250):
        arr[d0 : d0 + 250] = g.standard_normal((250, n), dtype=np.float32)
    arr.flush()
    del arr
    np.save(tmp_path / "y.npy", y)
    script = textwrap.dedent(
        f"""
        import resource, numpy as np, torch
        import invert_fast as inv
        from invert_fast.io.runner import explain_to_file
        from invert_fast.io.store import NeuronStore
        torch.set_num_threads(1)
        cs = inv.ConceptSet.from_classes(np.load({str(tmp_path / "y.npy")!r}), [str(i) for i in range(10)])
        inv.explain(torch.randn({n}, 4), cs, L=1, B=1)  # warm up allocator and kernels
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        res = explain_to_file(NeuronStore({str(path)!r}), cs, {str(tmp_path / "out.csv")!r}, chunk=50,
                              L=1, B=1, max_memory=16 * 2**20)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(len(res), (after - before) // 1024)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    labelled, grown_mb = map(int, out.stdout.split())
    print(f"resident memory grew by {grown_mb} MB for a 160 MB layer")
    assert labelled == d and grown_mb < 60, f"resident memory grew by {grown_mb} MB for a 160 MB layer"


def test_streamed_output_equals_kept_output(tmp_path):
    from invert_fast.io.runner import explain_to_file

    g = np.random.default_rng(3)
    y = g.integers(0, 4, 300)
    acts = g.standard_normal((300, 23)).astype(np.float32)
    kept = explain_to_file(acts, np.eye(4)[y], tmp_path / "kept.csv", chunk=5, L=2, B=3)
    best = explain_to_file(acts, np.eye(4)[y], tmp_path / "stream.csv", chunk=5, L=2, B=3, keep_results=False)
    assert (tmp_path / "kept.csv").read_bytes() == (tmp_path / "stream.csv").read_bytes()
    assert best.tolist() == [e.auc for e in kept.best()]
    with pytest.raises(ValueError, match="keep_results: False needs one process, no p-value adjustment"):
        explain_to_file(acts, np.eye(4)[y], tmp_path / "x.csv", adjust="bh", keep_results=False)
