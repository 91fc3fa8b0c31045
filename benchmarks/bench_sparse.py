"""A whole SAE layer from a delphi-format cache on disk: sparse activations and token concepts.

    python benchmarks/bench_sparse.py                    # the issue's shape: 16,384 latents x 10^7 tokens
    python benchmarks/bench_sparse.py --tokens 1000000 --latents 2048     # minutes, not a quarter hour
    python benchmarks/bench_sparse.py --device cuda      # GPU (needs a CUDA build)

The cache is synthetic but has the shape and layout of a real one: 39,063 sequences x 256 tokens drawn
from a 49,152-token vocabulary (Zipf, exponent 1.1), each latent active on 32 / 16,384 of the tokens on
average (TopK-like density, 0.2%), float16 activations; a latent prefers one token concept (its tokens
fire 20x more often and more strongly), so labels exist to be found. Token concepts: 6 categorical
families of 40 values and 60 binary features of the token id (300 concepts), as ConceptSet.from_ids.

Timed (one process, each phase apart): opening the cache, building the concepts, and explain of the whole
layer from the cache to the labels CSV (L = 3, B = 5, min_fraction 0.001); peak RSS of the process.
The dense path on a slice of the same data that fits in memory is timed per latent beside it.
The cache is written once into --folder and reused when its parameters match.
"""

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_auroc import machine  # noqa: E402

import invert_fast as inv  # noqa: E402

VOCAB, FAMILIES, VALUES, BINARY = 49_152, 6, 40, 60


def token_table(seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """[V, 300] bool concepts of each token id: one value of each categorical family, 60 binary features
    of densities 1% to 30%."""
    rng = np.random.default_rng(seed)
    cols, names = [], []
    for f in range(FAMILIES):
        value = rng.integers(0, VALUES, VOCAB)
        for v in range(VALUES):
            cols.append(value == v)
            names.append(f"fam{f}={v}")
    for b in range(BINARY):
        cols.append(rng.random(VOCAB) < 0.01 + 0.29 * b / (BINARY - 1))
        names.append(f"feat{b}")
    return np.stack(cols, 1), names


def write_cache(folder: Path, n_seq: int, ctx: int, latents: int, k: int, shard: int, seed: int = 0) -> None:
    """A delphi latent cache: shards <start>_<end>.safetensors of locations, activations and tokens.

    Latent j prefers one concept c_j: it fires on a token with probability 20 p_j if the token has c_j,
    else p_j (p_j sets the average density to k / latents), 3x more strongly on preferred tokens. Drawn
    as counts (binomial) and positions (uniform within the token set, duplicates dropped), so a latent
    costs its nonzeros, not N random numbers."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = n_seq * ctx
    zipf = 1.0 / np.arange(1, VOCAB + 1) ** 1.1
    tokens = rng.choice(VOCAB, size=n, p=zipf / zipf.sum()).astype(np.int32)
    table, _ = token_table()
    order = np.argsort(tokens, kind="stable")  # samples grouped by token: a concept's samples by slicing
    starts = np.concatenate([[0], np.cumsum(np.bincount(tokens, minlength=VOCAB))])
    members: dict[int, np.ndarray] = {}
    density = k / latents
    # delphi's narrowest location type that holds every (sequence, position, latent - start)
    loc_dtype = np.uint16 if max(n_seq, ctx, shard) <= 2**16 else np.uint32
    for a in range(0, latents, shard):
        b = min(latents, a + shard) - 1
        locs, acts = [], []
        for j in range(a, b + 1):
            c = int(rng.integers(table.shape[1]))
            if c not in members:
                ids = np.flatnonzero(table[:, c])
                members[c] = np.concatenate([order[starts[t] : starts[t + 1]] for t in ids])
            pref = members[c]
            base = density / (1 + 19 * pref.size / n)
            on_all = rng.integers(0, n, rng.binomial(n, base))
            on_pref = (
                pref[rng.integers(0, pref.size, rng.binomial(pref.size, min(1.0, 19 * base)))]
                if pref.size
                else on_all[:0]
            )
            on = np.union1d(on_all, on_pref)
            strong = np.isin(on, on_pref)
            val = rng.gamma(2.0, 1.0, on.size) * np.where(strong, 3.0, 1.0)
            locs.append(np.stack([on // ctx, on % ctx, np.full(on.size, j - a)], 1).astype(loc_dtype))
            acts.append(val.astype(np.float16))
        save_file(
            {
                "locations": np.concatenate(locs),
                "activations": np.concatenate(acts),
                "tokens": tokens.reshape(n_seq, ctx),
            },
            str(folder / f"{a}_{b}.safetensors"),
        )
    (folder / "params.json").write_text(json.dumps(dict(n_seq=n_seq, ctx=ctx, latents=latents, k=k, seed=seed, v=2)))


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=10_000_000)
    ap.add_argument("--latents", type=int, default=16_384)
    ap.add_argument("--k", type=int, default=32, help="active latents per token on average (TopK k)")
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--shard", type=int, default=1024, help="latents per cache shard")
    ap.add_argument("--folder", default="/tmp/invert_fast_bench_sae/layers.6")
    ap.add_argument("--dense-latents", type=int, default=64, help="latents of the dense comparison (0: skip)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="/tmp/invert_fast_bench_sae/labels.csv")
    ap.add_argument("--write-only", action="store_true", help="write the cache and stop (nothing timed)")
    args = ap.parse_args()
    n_seq = -(-args.tokens // args.ctx)
    folder = Path(args.folder)
    want = dict(n_seq=n_seq, ctx=args.ctx, latents=args.latents, k=args.k, seed=0, v=2)
    params = folder / "params.json"
    if not params.is_file() or json.loads(params.read_text()) != want:
        for f in folder.glob("*.safetensors"):
            f.unlink()
        t = time.perf_counter()
        write_cache(folder, n_seq, args.ctx, args.latents, args.k, args.shard)
        print(f"wrote the cache in {time.perf_counter() - t:.0f} s: {folder}", file=sys.stderr)
    size = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
    if args.write_only:
        return

    # The floor: read every shard's arrays, and that plus sorting every latent's values (our ranking).
    from safetensors.numpy import load_file

    t = time.perf_counter()
    for f in sorted(folder.glob("*.safetensors")):
        load_file(str(f))
    t_read = time.perf_counter() - t
    t = time.perf_counter()
    probe = inv.NeuronStore(folder)
    for a in range(0, probe.shape[1], args.shard):
        xs = probe.read(a, a + args.shard)
        inv.ops.sparse_rank_doubled(xs.indptr, xs.indices, xs.values, xs.shape[0])
    t_sort = time.perf_counter() - t
    del probe, xs

    t0 = time.perf_counter()
    cache = inv.NeuronStore(folder)
    t_open = time.perf_counter() - t0
    t = time.perf_counter()
    table, names = token_table()
    concepts = inv.ConceptSet.from_ids(cache.tokens(), torch.from_numpy(table), names)
    regions = concepts.regions()
    t_concepts = time.perf_counter() - t
    t = time.perf_counter()
    kw = dict(L=3, B=5, min_fraction=0.001, device=args.device)
    res = inv.explain_to_file(cache, concepts, args.out, layer=cache.hookpoint, keep_results=False, chunk=4096, **kw)
    t_explain = time.perf_counter() - t
    total = time.perf_counter() - t0
    n, d = cache.shape
    rows = [
        ("floor: read every shard", t_read, "safetensors load_file, page cache warm"),
        ("floor: read, check, sort, rank", t_sort, "DelphiCache.read + ops.sparse_rank_doubled, whole layer"),
        ("open the cache", t_open, ""),
        ("concepts (from_ids, regions)", t_concepts, f"{regions.num_regions:,} regions"),
        ("explain -> labels CSV", t_explain, f"{1e3 * t_explain / d:.2f} ms per latent"),
        ("whole layer", total, f"{total:.1f} s (target <= 120 s for 16,384 x 10^7)"),
    ]
    if args.dense_latents:
        xs = cache.read(0, args.dense_latents)
        dense = xs.dense()
        t = time.perf_counter()
        want_res = inv.explain(dense, concepts, **kw)
        t_dense = time.perf_counter() - t
        t = time.perf_counter()
        got = inv.explain(xs, concepts, **kw)
        t_sp = time.perf_counter() - t
        same = [(str(e.formula), e.auc) for p in got for e in p] == [
            (str(e.formula), e.auc) for p in want_res for e in p
        ]
        rows.append(
            (
                f"dense path, {args.dense_latents} latents",
                t_dense,
                f"{1e3 * t_dense / args.dense_latents:.1f} ms per latent",
            )
        )
        rows.append(
            (f"sparse path, same {args.dense_latents}", t_sp,
             f"{1e3 * t_sp / args.dense_latents:.2f} ms per latent; {t_dense / t_sp:.1f}x; identical labels: {same}")
        )  # fmt: skip
    print(f"\nSAE layer from a delphi cache: {d:,} latents x {n:,} tokens ({cache.n_seq:,} x {cache.ctx}), "
          f"nnz {cache.nnz:,} ({cache.nnz / n / d:.3%}), {size / 2**30:.2f} GiB on disk; {len(concepts)} concepts "
          f"from ids; L = 3, B = 5, min_fraction 0.001")  # fmt: skip
    print(f"machine: {machine()}; device {args.device}")
    print(f"{'phase':<40} {'seconds':>9}  note")
    for name, s, note in rows:
        print(f"{name:<40} {s:>9.2f}  {note}")
    print(f"peak RSS {peak_rss_gb():.2f} GB (target <= 4 GB); nnz per latent {cache.nnz / d:,.0f}; "
          f"median best AUC {float(np.nanmedian(res)):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
