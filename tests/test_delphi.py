"""A delphi latent cache, written here in its layout (shards <start>_<end>.safetensors with locations,
activations and tokens), labeled through the API and the CLI exactly as its dense twin; bad caches
fail with one line naming the shard and the entry."""

import gzip
import json
import os

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

import invert_fast as inv
from invert_fast.apps.cli import main
from invert_fast.io.delphi import DelphiCache

N_SEQ, CTX, D, V = 40, 16, 24, 50


def make_cache(folder, shards=((0, 9), (10, 15), (16, 23)), loc_dtype=np.uint16, act_dtype=np.float16, seed=0):
    """A cache of D latents over N_SEQ x CTX tokens (TopK-like: a few latents per token) and its dense twin."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, V, size=(N_SEQ, CTX)).astype(np.int64)
    dense = np.zeros((N_SEQ * CTX, D), dtype=act_dtype)
    for n in range(N_SEQ * CTX):
        on = rng.choice(D, size=3, replace=False)
        dense[n, on] = rng.gamma(2.0, 1.0, size=3).astype(act_dtype)
    dense[tokens.reshape(-1) == 7, 5] = 9.0  # latent 5 reads token 7
    folder.mkdir(parents=True, exist_ok=True)
    for a, b in shards:
        n, j = np.nonzero(dense[:, a : b + 1])
        loc = np.stack([n // CTX, n % CTX, j], 1).astype(loc_dtype)
        save_file(
            {"locations": loc, "activations": dense[n, a + j], "tokens": tokens}, str(folder / f"{a}_{b}.safetensors")
        )
    return tokens.reshape(-1), torch.from_numpy(dense.astype(np.float32)).to(
        torch.float16 if act_dtype == np.float16 else torch.float32
    )


def token_table():
    g = torch.Generator().manual_seed(1)
    table = torch.rand(V, 12, generator=g) < 0.25
    table[:, 0] = torch.arange(V) == 7
    return table


@pytest.mark.parametrize("loc_dtype", [np.uint16, np.uint32, np.int64])
def test_cache_labels_equal_dense_twin(tmp_path, loc_dtype):
    tokens, dense = make_cache(tmp_path / "layers.3", loc_dtype=loc_dtype)
    cache = inv.NeuronStore(tmp_path / "layers.3")
    assert isinstance(cache, DelphiCache) and cache.shape == (N_SEQ * CTX, D) and cache.nnz == int((dense != 0).sum())
    assert torch.equal(cache.tokens(), torch.from_numpy(tokens))
    cs = inv.ConceptSet.from_ids(cache.tokens(), token_table())
    want = inv.explain(dense, cs, L=3, B=3, permutations=5, groups=torch.arange(N_SEQ * CTX) // CTX)
    got = inv.explain(cache, cs, L=3, B=3, permutations=5, max_memory=3_000_000)  # groups: sequences by default
    key = lambda r: [(e.neuron, str(e.formula), e.auc, e.p_value, e.p_value_search) for p in r for e in p]  # noqa: E731
    assert str(key(got)) == str(key(want))
    assert got.params["groups"] == want.params["groups"]
    assert str(got[5][0].formula) == "c0" and got[5][0].auc > 0.99


def test_cli_labels_a_cache_with_token_ids(tmp_path, capsys):
    tokens, dense = make_cache(tmp_path / "latents" / "layers.3")
    (tmp_path / "latents" / "config.json").write_text(
        json.dumps({"model": "EleutherAI/pythia-70m", "hookpoints": ["layers.3"]})
    )
    np.save(tmp_path / "table.npy", token_table().numpy())
    (tmp_path / "names.txt").write_text("\n".join(["tok=7"] + [f"f{i}" for i in range(11)]) + "\n")
    out = tmp_path / "labels.csv"
    args = ["explain", "--activations", str(tmp_path / "latents" / "layers.3"), "--ids", "tokens", "--labels",
            str(tmp_path / "table.npy"), "--names", str(tmp_path / "names.txt"), "-L", "2", "-B", "2", "--quiet",
            "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    assert f"labeled {D} neurons ({N_SEQ * CTX} samples, 12 concepts" in capsys.readouterr().out
    (res,) = inv.read_csv(out)
    assert res.layer == "layers.3" and str(res[5][0].formula) == "tok=7"
    assert main([*args[:-1], str(tmp_path / "labels.json")]) == 0  # JSON keeps the parameters: config.json's model
    # Exports name the cache's model and hook point without being told.
    assert (
        main(
            [
                *args,
                "--export",
                "neuronpedia",
                str(tmp_path / "np"),
                "--author-id",
                "u1",
                "--export",
                "delphi",
                str(tmp_path / "ex"),
            ]
        )
        == 0  # fmt: skip
    )
    first = gzip.decompress((tmp_path / "np" / "explanations" / "batch-0.jsonl.gz").read_bytes()).splitlines()[5]
    assert json.loads(first)["modelId"] == "EleutherAI/pythia-70m" and json.loads(first)["layer"] == "layers.3"
    assert json.loads((tmp_path / "ex" / "layers.3_latent5.txt").read_text()) == "tok=7"
    assert json.loads((tmp_path / "labels.json").read_text())["params"]["model"] == "EleutherAI/pythia-70m"
    cs = inv.ConceptSet.from_ids(torch.from_numpy(tokens), token_table(), ["tok=7"] + [f"f{i}" for i in range(11)])
    want = inv.explain(dense, cs, L=2, B=2)
    assert [(str(e.formula), e.auc) for p in res for e in p] == [(str(e.formula), e.auc) for p in want for e in p]
    np.save(tmp_path / "ids.npy", tokens)
    assert main([*args[:4], str(tmp_path / "ids.npy"), *args[5:-1], str(tmp_path / "b.csv")]) == 0
    assert (tmp_path / "b.csv").read_text() == out.read_text()


def test_tokens_needs_a_cache(tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.zeros((4, 2), dtype=np.float32))
    np.save(tmp_path / "t.npy", np.eye(2, dtype=np.int8))
    code = main(["explain", "--activations", str(tmp_path / "a.npy"), "--ids", "tokens", "--labels", str(tmp_path / "t.npy"),
                 "--out", str(tmp_path / "o.csv")])  # fmt: skip
    assert code != 0 and "ids: 'tokens' needs a delphi cache folder" in capsys.readouterr().err


def rewrite(folder, name, **change):
    from safetensors.numpy import load_file

    data = load_file(str(folder / name))
    data.update(change)
    save_file(data, str(folder / name))


@pytest.mark.parametrize(
    "damage, msg",
    [
        (lambda f: os.rename(f / "10_15.safetensors", f / "11_15.safetensors"), "has no shard for latents 10 .. 10"),
        (lambda f: os.rename(f / "10_15.safetensors", f / "9_15.safetensors"), "shard 9_15.safetensors overlaps"),
        (lambda f: (f / "notes.safetensors").write_bytes(b"x"), "notes.safetensors is not named <start>_<end>"),
        (lambda f: (f / "0_9.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}"), "cannot read shard"),
        (lambda f: rewrite(f, "10_15.safetensors", tokens=np.zeros((3, 3), dtype=np.int64)), "tokens are [3, 3]"),
    ],
)
def test_bad_caches_fail_at_open(tmp_path, damage, msg):
    make_cache(tmp_path / "c")
    damage(tmp_path / "c")
    with pytest.raises(ValueError) as e:
        inv.NeuronStore(tmp_path / "c")
    assert msg in str(e.value)


def _shard(folder, name):
    from safetensors.numpy import load_file

    return load_file(str(folder / name))


@pytest.mark.parametrize(
    "change, msg",
    [
        ("dup", "shard 10_15.safetensors: entries"),
        ("latent", "shard 10_15.safetensors, entry 0: latent - start 6 is outside [0, 6)"),
        ("seq", "shard 10_15.safetensors, entry 0: sequence 40 is outside [0, 40)"),
        ("nan", "shard 10_15.safetensors, entry 1: activation nan is not finite"),
        ("inf", "shard 10_15.safetensors, entry 1: activation inf is not finite"),
        ("tokens", "shard 10_15.safetensors: tokens differ from the first shard's at token 0"),
    ],
)
def test_bad_entries_fail_when_read(tmp_path, change, msg):
    make_cache(tmp_path / "c")
    d = _shard(tmp_path / "c", "10_15.safetensors")
    loc, act, tok = d["locations"].copy(), d["activations"].copy(), d["tokens"].copy()
    if change == "dup":
        loc[1] = loc[0]
    elif change == "latent":
        loc[0, 2] = 6
    elif change == "seq":
        loc[0, 0] = N_SEQ
    elif change in ("nan", "inf"):
        act[1] = np.float16(change)
    else:
        tok[0, 0] = (tok[0, 0] + 1) % V
    save_file({"locations": loc, "activations": act, "tokens": tok}, str(tmp_path / "c" / "10_15.safetensors"))
    cache = inv.NeuronStore(tmp_path / "c")
    cache.read(0, 5)  # the first shard is intact
    with pytest.raises(ValueError) as e:
        cache.read(8, 12)
    assert msg in str(e.value)


def test_cache_changed_while_read(tmp_path):
    make_cache(tmp_path / "c")
    cache = inv.NeuronStore(tmp_path / "c")
    cache.read(0, 3)
    d = _shard(tmp_path / "c", "16_23.safetensors")
    save_file({k: v[:-1] if k != "tokens" else v for k, v in d.items()}, str(tmp_path / "c" / "16_23.safetensors"))
    with pytest.raises(ValueError, match="shard .*16_23.safetensors changed .* after the store was opened"):
        cache.read(16, 24)
    with pytest.raises(ValueError, match="has no keys to pick"):
        inv.NeuronStore(tmp_path / "c", key="Y")
