"""Which linguistic family helps a SmolLM2 layer's labels on held-out sentences, one family at a time.

    python benchmarks/bench_families.py                     # after `invert-fast demo --case smollm2`
    python benchmarks/bench_families.py --layers 5 15 25 --folder out/demo-smollm2

Reads the demo's capture (its activations folder: tokens, sequences, positions and one .npy per layer),
re-annotates the same sentences with spaCy, and for each layer prints the median held-out AUC
(demo.held_out_medians: best label found on the even-numbered sentences, scored on the odd ones) with
the tokenizer's concepts alone, with the tokenizer's plus one linguistic family (the token's word and the
previous and next word), and with everything; beside each, the share of neurons whose best label (found
on the even sentences) holds an atom of that family, and the median held-out gain among those neurons.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_auroc import machine  # noqa: E402

from invert_fast.apps.demo import DEFAULT_OUT, held_out_aucs  # noqa: E402
from invert_fast.cases.smollm2 import load_smollm2  # noqa: E402
from invert_fast.concepts.lexicons import wordnet_sentences  # noqa: E402
from invert_fast.concepts.linguistic import WordAnnotations, load_english, word_annotations  # noqa: E402
from invert_fast.concepts.tokens import concept_family, token_concepts  # noqa: E402
from invert_fast.core.token_index import TokenIndex  # noqa: E402

FAMILIES = ("part of speech", "dependency", "entity", "morphology", "WordNet category")


def only(words: WordAnnotations, family: str) -> WordAnnotations:
    """The word annotations of one family: its columns of the table, the same codes."""
    keep = [j for j, n in enumerate(words.names) if concept_family(n) == family]
    return WordAnnotations(words.codes, words.table[:, keep], tuple(words.names[j] for j in keep), words.words,
                           words.prev_codes, words.next_codes)  # fmt: skip


def bare(name: str) -> str:
    """A concept name without its prev: / next: prefix."""
    return name.split(":", 1)[1] if name.startswith(("prev:", "next:")) else name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, nargs="+", default=[5, 15, 25])
    ap.add_argument("--folder", default=str(DEFAULT_OUT["smollm2"]), help="the demo's --out folder")
    ap.add_argument("--samples", type=int, default=2000, help="the demo's --samples (default 2,000)")
    ap.add_argument("--top-tokens", type=int, default=100, help="the demo's --top-tokens (default 100)")
    args = ap.parse_args()
    acts = Path(args.folder) / "activations"
    if not (acts / "tokens.npy").is_file():
        raise SystemExit(f"--folder: {acts} holds no capture; run `invert-fast demo --case smollm2` first")
    t0 = time.perf_counter()
    _, tok = load_smollm2()
    nlp = load_english()
    sentences = wordnet_sentences()  # the demo's sentences, in the demo's order
    order = np.random.default_rng(0).permutation(len(sentences))[: args.samples]
    sentences = sorted((sentences[i] for i in order), key=len)
    index = TokenIndex.load(acts)
    if index.texts is None:  # a capture from before the index carried its texts: the demo's, checked
        index = index.with_text(tok, sentences, max_length=64)
    tokens, seq = index.tokens.numpy(), index.sequence.numpy()
    words = word_annotations(nlp, index)
    sets = {"tokenizer": token_concepts(tok, index, top=args.top_tokens)}
    for fam in FAMILIES:
        sets[f"+ {fam}"] = token_concepts(tok, index, top=args.top_tokens, words=only(words, fam))
    sets["all"] = token_concepts(tok, index, top=args.top_tokens, words=words)
    ling = {fam: set(only(words, fam).names) for fam in FAMILIES}
    even = seq % 2 == 0
    tr, te = np.flatnonzero(even), np.flatnonzero(~even)
    split = {k: (cs.select_samples(tr), cs.select_samples(te)) for k, cs in sets.items()}
    print(f"SmolLM2-135M, {args.folder}: {len(tokens):,} tokens of {len(sentences):,} sentences; labels found on the "
          f"{len(tr):,} tokens of the even-numbered sentences, scored on the {len(te):,} of the odd ones")  # fmt: skip
    print(f"machine: {machine()}")
    print("\n| layer | concepts | K | held-out median AUC | gain | best labels using the family | their median gain |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for layer in args.layers:
        x = np.load(acts / f"layer{layer}.npy", mmap_mode="r")
        x_tr = torch.from_numpy(np.asarray(x[tr], dtype=np.float32))
        x_te = torch.from_numpy(np.asarray(x[te], dtype=np.float32))
        base, _ = held_out_aucs(x_tr, x_te, *split["tokenizer"])
        med0 = float(np.nanmedian(base))
        print(f"| layer{layer} | tokenizer | {len(sets['tokenizer'])} | {med0:.3f} | | | |")
        for name in list(sets)[1:]:
            auc, best = held_out_aucs(x_tr, x_te, *split[name])
            fam_names = set().union(*ling.values()) if name == "all" else ling[name[2:]]
            uses = np.array([f is not None and any(bare(c) in fam_names for c in f.concepts()) for f in best])
            gain = auc - base
            among = float(np.nanmedian(gain[uses])) if uses.any() else float("nan")
            print(f"| layer{layer} | {name} | {len(sets[name])} | {np.nanmedian(auc):.3f} | "
                  f"{np.nanmedian(auc) - med0:+.3f} | {uses.mean():.0%} | {among:+.3f} |")  # fmt: skip
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
