"""Round 4 of the fault campaign (issue 34), one test per class: token capture, token concepts, sparse
input, delphi caches, exports and the CLI. No silent wrong result (truncated ids, an empty capture
beside N tokens), no traceback or allocation error where a one-line error naming the argument, what was
expected and what came is right."""

import h5py
import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

import invert_fast as inv
from invert_fast.apps.cli import main
from invert_fast.compat import invertH5Dataset
from invert_fast.core.sparse import SparseColumns, as_sparse
from invert_fast.io.delphi import DelphiCache
from invert_fast.io.exports import export_delphi, export_neuronpedia

from .test_delphi import make_cache

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def llama():
    from .test_sequence import texts, tiny_llama, tiny_tokenizer

    return tiny_llama(), tiny_tokenizer(), texts


# --- token capture -------------------------------------------------------------------------------------
def test_a_module_that_never_runs_is_an_error_not_an_empty_layer(llama):
    model, tok, texts = llama
    model.unused = torch.nn.Linear(3, 3)  # registered, never called by forward
    try:
        with pytest.raises(ValueError, match=r"layers: \['x'\] never ran in batch 0 \(not on the model's forward"):
            inv.capture_tokens(model, inv.token_batches(tok, texts(2)), {"x": "unused"})
    finally:
        del model.unused


def test_no_batches_is_an_error_not_a_shapeless_capture(llama, tmp_path):
    model, _, _ = llama
    with pytest.raises(ValueError, match="batches: expected at least one batch of token ids, got none"):
        inv.capture_tokens(model, [], inv.mlp_neurons(model))
    with pytest.raises(ValueError, match="batches: expected at least one batch"):
        inv.capture_tokens(model, [], inv.mlp_neurons(model), out=tmp_path / "acts")
    assert list((tmp_path / "acts").iterdir()) == []  # no partial file looks like a capture


def test_module_objects_are_named_or_captured_not_printed(llama):
    model, tok, texts = llama
    mod = model.model.layers[0]
    with pytest.raises(TypeError) as e:
        inv.capture_tokens(model, inv.token_batches(tok, texts(2)), [mod])
    assert str(e.value) == (
        "layers: expected module names (str), got a LlamaDecoderLayer; pass a dict {name: module} to capture a "
        "module object"
    )
    by_object = inv.capture_tokens(model, inv.token_batches(tok, texts(2)), {"h0": mod})
    by_name = inv.capture_tokens(model, inv.token_batches(tok, texts(2)), {"h0": "model.layers.0"})
    assert torch.equal(by_object.activations["h0"], by_name.activations["h0"])  # one run, one shape


def test_text_longer_than_the_model_positions_is_refused_naming_both(llama):
    model, tok, _ = llama
    long_text = " ".join(f"w{i % 50}" for i in range(70))  # 70 tokens; the model has 64 positions
    with pytest.raises(ValueError) as e:
        inv.capture_tokens(model, inv.token_batches(tok, ["w1 w2", long_text], max_length=128), inv.mlp_neurons(model))
    assert str(e.value) == (
        "batches: batch 0 has a text of 70 tokens, more than the model's 64 positions "
        "(config.max_position_embeddings); make the batches with token_batches(..., max_length=64)"
    )
    ok = inv.capture_tokens(model, inv.token_batches(tok, [long_text], max_length=64), inv.mlp_neurons(model))
    assert ok.activations["layer0"].shape[0] == 64


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch that sees no CUDA device")
def test_capture_on_cuda_without_cuda_is_the_one_line_device_error(llama):
    model, tok, texts = llama
    for call in (
        lambda: inv.capture_tokens(model, inv.token_batches(tok, texts(2)), inv.mlp_neurons(model), device="cuda"),
        lambda: inv.explain(torch.randn(10, 2), torch.rand(10, 2) < 0.5, device="cuda"),
    ):
        with pytest.raises(ValueError, match=r"^device: cuda was asked for, but torch sees no CUDA device$"):
            call()


# --- ids and indices are integers, never truncated -----------------------------------------------------
def test_fractional_token_ids_and_sparse_indices_are_refused():
    from .test_tokens import byte_bpe

    tok = byte_bpe()
    with pytest.raises(TypeError, match="tokens: expected integers, got dtype torch.float64"):
        inv.TokenIndex(np.array([3.0, 4.5]), np.array([0, 0]), np.array([0, 1]))
    with pytest.raises(ValueError, match="top: expected an integer >= 0, got -1"):
        inv.token_concepts(tok, inv.TokenIndex(np.array([3, 4]), np.array([0, 0]), np.array([0, 1])), top=-1)
    with pytest.raises(TypeError, match="activations rows: expected integers, got dtype torch.float64"):
        SparseColumns.from_coo(np.array([0.0, 1.5]), [0, 1], [1.0, 2.0], (3, 2))
    with pytest.raises(TypeError, match="activations columns: expected integers, got dtype torch.float32"):
        SparseColumns.from_coo([0, 1], torch.tensor([0.0, 1.0]), [1.0, 2.0], (3, 2))


# --- sparse input: shapes and pointers checked before anything is allocated ---------------------------
def test_sparse_shapes_and_layouts_fail_in_one_line():
    with pytest.raises(ValueError, match=r"activations: expected a shape \(N, D\) with D >= 0, got D = -2"):
        SparseColumns.from_coo([0], [0], [1.0], (3, -2))
    with pytest.raises(ValueError, match=r"D = 100,000,000,000 neurons would need 745 GiB .* \(not transposed\)\?"):
        SparseColumns.from_coo([0], [0], [1.0], (3, 10**11))
    dense = torch.tensor([[0.0, 1.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0], [0.0, 4.0, 0.0, 0.0]])
    with pytest.raises(
        TypeError, match="activations: expected a sparse COO, CSR or CSC tensor, got layout torch.sparse_bsr"
    ):
        inv.explain(dense.to_sparse_bsr((2, 2)), torch.rand(4, 2) < 0.5)
    csr = dense.to_sparse_csr()
    assert torch.equal(as_sparse(csr).dense(), dense) and torch.equal(as_sparse(dense.to_sparse_csc()).dense(), dense)
    bad = torch.sparse_csr_tensor(torch.tensor([0, 2, 1, 3, 4]), csr.col_indices(), csr.values(), (4, 4),
                                  check_invariants=False)  # fmt: skip
    with pytest.raises(ValueError, match="activations: row pointers must not decrease, got 2 then 1 at row 1"):
        as_sparse(bad)
    short = torch.sparse_csr_tensor(torch.tensor([0, 1, 2, 3, 3]), csr.col_indices(), csr.values(), (4, 4),
                                    check_invariants=False)  # fmt: skip
    with pytest.raises(ValueError, match="activations: expected row pointers running from 0 to nnz = 4, got 0 .. 3"):
        as_sparse(short)


# --- delphi caches ---------------------------------------------------------------------------------------
def test_delphi_cache_with_no_context_is_refused_at_open(tmp_path):
    make_cache(tmp_path / "c", shards=((0, 23),))
    loc = np.zeros((0, 3), dtype=np.uint16)
    save_file({"locations": loc, "activations": np.zeros(0, np.float16), "tokens": np.zeros((40, 0), np.int64)},
              str(tmp_path / "c" / "0_23.safetensors"))  # fmt: skip
    with pytest.raises(ValueError, match=r"shard 0_23.safetensors: tokens must be \[sequences, context length\] "
                                         r"with both >= 1, got \[40, 0\]"):  # fmt: skip
        DelphiCache(tmp_path / "c")


def test_delphi_shard_naming_absurd_latents_fails_before_allocating(tmp_path):
    make_cache(tmp_path / "c", shards=((0, 23),))
    (tmp_path / "c" / "0_23.safetensors").rename(tmp_path / "c" / "0_99999999999.safetensors")
    with pytest.raises(ValueError, match=r"shard 0_99999999999.safetensors \(latents 0 .. 99999999999\): "
                                         r"D = 100,000,000,000 neurons would need"):  # fmt: skip
        DelphiCache(tmp_path / "c")


def test_delphi_duplicate_names_the_layer_wide_latent(tmp_path):
    make_cache(tmp_path / "c")
    from safetensors.numpy import load_file

    d = load_file(str(tmp_path / "c" / "10_15.safetensors"))
    loc = d["locations"].copy()
    loc[1] = loc[0]
    save_file({**d, "locations": loc}, str(tmp_path / "c" / "10_15.safetensors"))
    with pytest.raises(ValueError) as e:
        DelphiCache(tmp_path / "c").read(10, 16)
    latent = 10 + int(loc[0, 2])
    assert f"both store (sample {int(loc[0, 0]) * 16 + int(loc[0, 1])}, neuron {latent})" in str(e.value)


# --- exports ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_layers():
    g = torch.Generator().manual_seed(0)
    y = torch.rand(200, 3, generator=g) < 0.4
    out = []
    for i, d in enumerate((4, 6)):
        x = torch.randn(200, d, generator=g)
        out.append(inv.explain(x, inv.ConceptSet(y, ["a", "b", "c"]), L=2, B=2, layer=f"layers.{i}"))
    return out


def test_export_delphi_takes_a_list_of_layers_and_removes_stale_latents(two_layers, tmp_path):
    files = export_delphi(two_layers, tmp_path / "ex")
    assert len(files) == 10 and (tmp_path / "ex" / "layers.1_latent5.txt").is_file()
    (tmp_path / "ex" / "notes.txt").write_text("mine")
    export_delphi(two_layers[0], tmp_path / "ex", hook="layers.1")  # layer 1's hook now with 4 latents
    names = sorted(p.name for p in (tmp_path / "ex").iterdir())
    assert "layers.1_latent4.txt" not in names and "layers.1_latent5.txt" not in names  # stale, removed
    assert "layers.0_latent3.txt" in names and "notes.txt" in names  # another hook's files, a user's file: kept
    with pytest.raises(ValueError, match=r"hook: 2 layers need a hook each"):
        export_delphi(two_layers, tmp_path / "ex", hook="layers.6")
    with pytest.raises(TypeError, match=r"results\[1\]: expected Explanations"):
        export_delphi([two_layers[0], "labels.csv"], tmp_path / "ex")


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda r, p: export_delphi(r, p / "ex", hook="lay\x00ers"), ValueError, r"hook: expected delphi's hook .* got 'lay\\x00ers'"),
        (lambda r, p: export_delphi(r, p / "file.txt"), ValueError, r"folder: expected a folder to export into, got .*file.txt, which is a file"),
        (lambda r, p: export_neuronpedia(r, p / "file.txt", "m", "u"), ValueError, r"folder: expected a folder .* which is a file"),
        (lambda r, p: export_neuronpedia(r, p / "np", "m", "u", ranks=1.5), TypeError, r"ranks: expected an integer >= 1, got float 1.5"),
        (lambda r, p: export_neuronpedia(r, p / "np", "m", "u", batch="100"), TypeError, r"batch: expected an integer >= 1, got str '100'"),
    ],
)  # fmt: skip
def test_export_arguments_fail_in_one_line(two_layers, tmp_path, call, error, message):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(error, match=message):
        call(two_layers[0], tmp_path)


def test_an_export_with_no_labels_says_so(tmp_path):
    empty = inv.Explanations([[], []], layer="layers.0")
    for call in (
        lambda: export_delphi(empty, tmp_path / "d"),
        lambda: export_neuronpedia(empty, tmp_path / "n", "m", "u"),
    ):
        with pytest.raises(ValueError, match=r"results: no neuron has a label in 1 layer\(s\); nothing to export"):
            call()
    assert not (tmp_path / "n" / "explanations").exists()


def test_cli_checks_the_delphi_hook_before_computing(tmp_path, capsys):
    g = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", g.random((100, 3)).astype(np.float32))
    np.save(tmp_path / "y.npy", (g.random((100, 2)) < 0.4).astype(np.int8))
    rc = main(["explain", "--activations", str(tmp_path / "a.npy"), "--labels", str(tmp_path / "y.npy"), "--quiet",
               "--out", str(tmp_path / "l.csv"), "--layer", "a\\b", "--export", "delphi", str(tmp_path / "d")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "source: --export delphi hook: expected delphi's hook point name" in err[0]
    assert not (tmp_path / "l.csv").exists() and not (tmp_path / "d").exists()  # nothing computed or written


# --- still open from round 3 ---------------------------------------------------------------------------
def test_h5_dataset_update_with_an_empty_batch(tmp_path):
    with invertH5Dataset(tmp_path / "a.h5") as ds:
        ds.update(torch.zeros(0, 2, 3))  # an empty batch: nothing appended, the width known
        ds.update(torch.ones(4, 2, 3))
        ds.update(np.zeros((0, 6), np.float32))
        assert len(ds) == 4
        with pytest.raises(ValueError, match=r"batch: expected rows of 6 values \(as before\), got 5"):
            ds.update(torch.zeros(0, 5))
        with pytest.raises(ValueError, match=r"batch: expected at least one value per sample, got shape \(3, 0\)"):
            ds.update(torch.zeros(3, 0))


def test_labels_key_naming_an_hdf5_group_is_refused(tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.random.default_rng(0).random((50, 2)).astype(np.float32))
    with h5py.File(tmp_path / "y.h5", "w") as f:
        f.create_dataset("y", data=np.zeros((50, 2), np.int8))
        f.create_group("grp")
    rc = main(["explain", "--activations", str(tmp_path / "a.npy"), "--labels", str(tmp_path / "y.h5"),
               "--labels-key", "grp", "--quiet", "--out", str(tmp_path / "l.csv")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert err[0].endswith(f"labels: 'grp' in {tmp_path / 'y.h5'} is an HDF5 group, not a dataset (datasets: ['y'])")
