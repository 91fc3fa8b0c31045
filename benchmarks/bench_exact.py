"""How often INVERT's beam misses the best formula, and what the exact search costs.

    python benchmarks/bench_exact.py                            # every case below
    python benchmarks/bench_exact.py --cases mnist imagenet --neurons 256
    python benchmarks/bench_exact.py --cases imagenet --device cuda    # on a GPU (synchronized timings)
    python benchmarks/bench_exact.py --cases dense --dense-neurons 8   # densest concepts: sparse vs GEMM
    python benchmarks/bench_exact.py --cases mnist fashion --objective iou --alpha 0.01   # by IoU (or f1)

For each case and L, explain(search="exact") gives every neuron's best formula of at most L atoms;
the beam search (B = 5 and 10) is compared with it: misses (the beam's best AUC below the exact
optimum), mean and largest AUC gap over the misses, and wall time of each (2 CPU threads unless the
machine has others). The B = 10 beam also runs with certify=True: its time beside the plain beam's,
and how many neurons' best labels it certifies optimal (for L <= 2 exactly those the beam does not
miss; the bound is checked against the optimum on every neuron). min_fraction 0.02 as in the demos
(INVERT's default 0 makes one-sample masks win); the ImageNet shape uses its own min_fraction 0.

Cases: MNIST (ccexam CNN, 202 neurons, 5,000 digits, 18 concepts; L = 2, 3); Fashion-MNIST
(MobileNetV2 features.18 + 16 logits, 2,000 images, 23 concepts; L = 2, 3); MiniLM (all 9,216 MLP
neurons, 3,000 sentences, ~25k tokens; L = 2); ImageNet shape (N = 50,000, K = 1,473, D neurons of
tied ReLU activations; L = 2); dense (not by default: --cases dense; K = 500 concepts of 2-40% density,
50,000 regions, --dense-neurons neurons; L = 2), where the sparse pair product is compared with the
float64 GEMM that would replace it.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import shapes  # noqa: E402
from bench_auroc import machine, timed  # noqa: E402

import invert_fast as inv  # noqa: E402


def mnist_case():
    from invert_fast.cases import zoo
    from invert_fast.concepts.classes import mnist_concepts

    images, labels = zoo.load_mnist_5k()
    model = zoo.load_mnist_cnn()
    x = zoo.mnist_tensor(images)
    layers = {"conv2": model.features[4], "hidden": model.classifier[1], "logits": model.classifier[2]}
    acts = inv.capture(model, [x[i : i + 1000] for i in range(0, len(x), 1000)], layers)
    return torch.cat(list(acts.values()), 1), mnist_concepts(images, labels), "MNIST case (202 neurons)"


def fashion_case():
    from invert_fast.apps.demo import MATCHING_LOGITS
    from invert_fast.cases import zoo
    from invert_fast.concepts.classes import fashion_concepts
    from invert_fast.concepts.wordnet import WordNet

    images, labels = zoo.load_fashion_mnist("test")
    images, labels = images[:2000], labels[:2000]
    model = zoo.load_mobilenet_v2()
    concepts = fashion_concepts(images, labels, WordNet.load())
    x = zoo.imagenet_tensor(images, size=160)
    acts = inv.capture(
        model, [x[i : i + 64] for i in range(0, len(x), 64)], {"f": model.features[18], "l": model.classifier[1]}
    )
    layer = torch.cat([acts["f"], acts["l"][:, list(MATCHING_LOGITS)]], 1)
    return layer, concepts, "Fashion-MNIST case (1,296 neurons)"


def minilm_case():
    from invert_fast.apps.demo import capture_minilm_tokens
    from invert_fast.cases.minilm import load_minilm
    from invert_fast.concepts.lexicons import Lexicon, token_concepts, wordnet_sentences
    from invert_fast.io.capture import load_activations

    model, tokenizer = load_minilm()
    sentences = wordnet_sentences()
    order = np.random.default_rng(0).permutation(len(sentences))[:3000]
    folder = Path("out/bench_exact_minilm")
    paths, tokens, _ = capture_minilm_tokens(model, tokenizer, [sentences[i] for i in order], folder)
    acts = torch.cat([load_activations(p).clone() for p in paths], 1)
    return acts, token_concepts(Lexicon(), tokens), f"MiniLM case (9,216 neurons, {len(tokens):,} tokens)"


def imagenet_case(neurons: int):
    n = 50_000
    cs = shapes.imagenet_like_concepts(n, 1000, 473)
    return shapes.tied_activations(n, neurons), cs, f"ImageNet shape ({neurons} neurons, N = 50,000, K = 1,473)"


def dense_case(neurons: int):
    n = 50_000
    cs = shapes.dense_concepts(n, 500)
    return shapes.tied_activations(n, neurons), cs, f"dense multi-label ({neurons} neurons, N = 50,000, K = 500)"


def dense_product_note(x, cs, device: torch.device) -> str:
    """The pair sums as a float64 GEMM, M diag(r) M^T per neuron, timed for the same neurons: the
    alternative to the sparse product (sum over regions of (concepts holding it)^2 additions)."""
    m = cs.regions().membership_bool.to(device)
    held = m.sum(0).double()
    mf = m.double()
    r = torch.rand(m.shape[1], dtype=torch.float64, device=device)
    t, _ = timed(lambda: [(mf * r) @ mf.T for _ in range(x.shape[1])], device)
    return (
        f"pair sums: sparse {float((held**2).sum()):.3g} additions per neuron against a GEMM's K^2 G = "
        f"{m.shape[0] ** 2 * m.shape[1]:.3g} multiply-adds; the float64 GEMM alone for these {x.shape[1]} neurons: "
        f"{t:.2f} s"
    )


def compare(x, cs, L, min_fraction, device: torch.device, objective: str = "auroc", alpha: float = 0.005):
    """Exact search, the beam at B = 5 and 10, and the B = 10 beam with certify=True on one case, by the
    objective (auroc, iou or f1; alpha: T's share for the latter two)."""
    kw = {"min_fraction": min_fraction, "device": device, "objective": objective, "alpha": alpha}

    def score(e):
        return e.auc if objective == "auroc" else getattr(e, objective)

    if device.type == "cuda":  # the CUDA context and kernels' first load outside the timing
        inv.explain(x[:, :8], cs, L=L, B=1, search="exact", **kw)
    t_exact, exact = timed(lambda: inv.explain(x, cs, L=L, B=1, search="exact", **kw), device)
    t_cert, cert = timed(lambda: inv.explain(x, cs, L=L, B=10, certify=True, **kw), device)
    certified = sum(bool(r and r[0].certified) for r in cert)
    for c, e in zip(cert, exact, strict=True):
        # the bound is admissible, and it is the optimum itself for L <= 2
        if c and e and (c[0].bound < score(e[0]) or (L <= 2 and c[0].bound != score(e[0]))):
            raise AssertionError(f"bound {c[0].bound} against the optimum {score(e[0])} (L = {L})")
    rows = []
    for B in (5, 10):
        t_beam, beam = timed(lambda B=B: inv.explain(x, cs, L=L, B=B, **kw), device)
        gaps = [
            score(e[0]) - score(b[0])
            for b, e in zip(beam, exact, strict=True)
            if e and b and score(b[0]) != score(e[0])
        ]
        rows.append((B, len(gaps), len(exact), np.mean(gaps) if gaps else 0.0, max(gaps, default=0.0), t_beam))
    return t_exact, (t_cert, certified), rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", nargs="+", default=["mnist", "fashion", "minilm", "imagenet"])
    p.add_argument("--neurons", type=int, default=2048, help="ImageNet-shape neurons (default 2,048)")
    p.add_argument("--dense-neurons", type=int, default=8, help="neurons of the dense case (default 8)")
    p.add_argument("--device", default="cpu", help="where explain computes (default cpu; results are identical)")
    p.add_argument("--objective", default="auroc", choices=("auroc", "iou", "f1"), help="what the searches maximize")
    p.add_argument("--alpha", type=float, default=0.005, help="T's share for --objective iou / f1 (default 0.005)")
    args = p.parse_args()
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else machine()
    by = "AUC" if args.objective == "auroc" else f"{args.objective}, alpha {args.alpha}"
    print(f"# exact vs beam by {by} (min_fraction 0.02; ImageNet shape 0); {where}\n")
    print(
        "| case | L | exact (s) | B | beam (s) | beam misses the optimum | mean gap | largest gap |"
        " beam B = 10 + certify (s) | certified optimal (B = 10) |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    plans = {
        "mnist": (mnist_case, (2, 3), 0.02),
        "fashion": (fashion_case, (2, 3), 0.02),
        "minilm": (minilm_case, (2,), 0.02),
        "imagenet": (lambda: imagenet_case(args.neurons), (2,), 0.0),
        "dense": (lambda: dense_case(args.dense_neurons), (2,), 0.0),
    }
    notes = []
    for name in args.cases:
        make, lengths, mf = plans[name]
        try:
            x, cs, what = make()
        except (FileNotFoundError, ImportError) as e:
            print(f"| {name} | skipped: {e} |")
            continue
        for L in lengths:
            t_exact, (t_cert, certified), rows = compare(x.to(device), cs, L, mf, device, args.objective, args.alpha)
            for B, miss, total, mean, worst, t_beam in rows:
                cert = f"{t_cert:.2f} | {certified}/{total} |" if B == 10 else "— | — |"
                print(
                    f"| {what} | {L} | {t_exact:.1f} | {B} | {t_beam:.2f} | {miss}/{total} ({miss / total:.1%}) | "
                    f"{mean:.4f} | {worst:.4f} | {cert}",
                    flush=True,
                )
        if name == "dense":
            notes.append(dense_product_note(x, cs, device))
    for note in notes:
        print(f"\n{note}")


if __name__ == "__main__":
    main()
