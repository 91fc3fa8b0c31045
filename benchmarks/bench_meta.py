"""Meta-evaluation of the six objectives on units whose concept is known (issue 38, section 3).

NeuronEval's Meta-AUPRC (Oikarinen et al., ICML 2025): rank every (unit, concept) pair by a metric and
report the average precision of the correct pairs. Units: the MNIST CNN's 10 digit logits (correct
concept: `digit d`) and ImageNet MobileNetV2's 16 logits whose class matches a Fashion-MNIST class (the
demo's MATCHING_LOGITS; correct concept: that class), against every concept of each case's concept set
(`invert_fast.concept_metrics`: AUROC as INVERT, IoU / F1 / AUPRC against the top-alpha samples,
correlation, cosine). A metric undefined for a pair (NaN) ranks last.

    python benchmarks/bench_meta.py                  # MNIST 5,000 images; Fashion 2,000 at 160 px (~1 minute)
    python benchmarks/bench_meta.py --smollm2 out/demo-smollm2/activations    # + SmolLM2's 20 next tokens

With --smollm2 (a folder the SmolLM2 demo captured: its token index and final.npy), also SmolLM2's
log-probabilities of the 20 most frequent next tokens (as the demo computes them), correct concept
`next:tok=<that token>` among the demo's 723 token and word concepts.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.metrics import average_precision_score

import invert_fast as inv
from invert_fast.apps.demo import MATCHING_LOGITS
from invert_fast.cases import zoo
from invert_fast.concepts.classes import fashion_concepts, mnist_concepts
from invert_fast.io.capture import capture

OBJECTIVES = ("auroc", "iou", "f1", "auprc", "correlation", "cosine")


def meta_auprc(scores: torch.Tensor, correct: torch.Tensor) -> float:
    """Average precision (scikit-learn's) of the correct pairs when every pair is ranked by its score."""
    s = scores.double().nan_to_num(nan=-np.inf).flatten().numpy()
    s = np.where(np.isneginf(s), np.nanmin(s[np.isfinite(s)]) - 1 if np.isfinite(s).any() else 0, s)
    return float(average_precision_score(correct.flatten().numpy(), s))


def mnist_case():
    images, labels = zoo.load_mnist_5k()
    model = zoo.load_mnist_cnn()
    x = zoo.mnist_tensor(images)
    acts = capture(model, [x[i : i + 500] for i in range(0, len(x), 500)], {"logits": model.classifier[2]})
    concepts = mnist_concepts(images, labels)
    correct = torch.zeros(10, len(concepts), dtype=torch.bool)
    for d in range(10):
        correct[d, concepts.names.index(f"digit {d}")] = True
    return "MNIST CNN: 10 digit logits", acts["logits"], concepts, correct


def fashion_case(samples: int, size: int):
    from invert_fast.concepts.wordnet import WordNet

    images, labels = zoo.load_fashion_mnist("test")
    images, labels = images[:samples], labels[:samples]
    model = zoo.load_mobilenet_v2()
    concepts = fashion_concepts(images, labels, WordNet.load())
    x = zoo.imagenet_tensor(images, size=size)
    acts = capture(model, [x[i : i + 64] for i in range(0, len(x), 64)], {"logits": model.classifier[1]})
    logits = acts["logits"][:, list(MATCHING_LOGITS)]
    correct = torch.zeros(len(MATCHING_LOGITS), len(concepts), dtype=torch.bool)
    for j, cls in enumerate(MATCHING_LOGITS.values()):
        correct[j, concepts.names.index(cls)] = True
    return f"MobileNetV2: {len(MATCHING_LOGITS)} Fashion-matching logits", logits, concepts, correct


def smollm2_case(folder: str, top_tokens: int = 100):
    from pathlib import Path

    from invert_fast.apps.demo import next_token_logprobs
    from invert_fast.cases.smollm2 import load_smollm2
    from invert_fast.concepts.linguistic import load_english, word_annotations
    from invert_fast.concepts.tokens import token_concepts, visible
    from invert_fast.core.token_index import TokenIndex

    model, tok = load_smollm2()
    index = TokenIndex.load(folder)
    concepts = token_concepts(tok, index, top=top_tokens, words=word_annotations(load_english(), index))
    tokens, seq = index.tokens.numpy(), index.sequence.numpy()
    nxt = np.where(np.r_[seq[1:] == seq[:-1], False], np.roll(tokens, -1), -1)  # the demo's ground truth
    ids, counts = np.unique(nxt[nxt >= 0], return_counts=True)
    top20 = ids[np.argsort(-counts, kind="stable")[:20]]
    final = torch.from_numpy(np.load(Path(folder) / "final.npy").astype(np.float32))
    _, logprobs = next_token_logprobs(final, model.lm_head.weight.detach(), torch.from_numpy(top20))
    correct = torch.zeros(len(top20), len(concepts), dtype=torch.bool)
    for j, t in enumerate(top20.tolist()):
        correct[j, concepts.names.index(f"next:tok={visible(tok.decode([t]))}")] = True
    return "SmolLM2: 20 next-token log-probabilities", logprobs, concepts, correct


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fashion-samples", type=int, default=2000)
    p.add_argument("--size", type=int, default=160, help="image size fed to MobileNetV2 (the demo's default)")
    p.add_argument("--alphas", default="0.005,0.1", help="top shares T for IoU, F1 and AUPRC")
    p.add_argument("--smollm2", metavar="DIR", help="the SmolLM2 demo's activations folder (adds its case)")
    args = p.parse_args()
    alphas = [float(a) for a in args.alphas.split(",")]
    t0 = time.perf_counter()
    cases = [mnist_case(), fashion_case(args.fashion_samples, args.size)]
    if args.smollm2:
        cases.append(smollm2_case(args.smollm2))
    print("# Meta-AUPRC: average precision of the correct (unit, concept) pairs ranked by each metric\n")
    print("| units | concepts | α | " + " | ".join(OBJECTIVES) + " |\n|---|---:|---:|" + "---:|" * len(OBJECTIVES))
    for title, acts, concepts, correct in cases:
        for alpha in alphas:
            m = inv.concept_metrics(acts, concepts, alpha=alpha)
            cells = " | ".join(f"{meta_auprc(m[o], correct):.3f}" for o in OBJECTIVES)
            print(f"| {title} | {len(concepts)} | {alpha} | {cells} |", flush=True)
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
