"""Token-level activations of sequence models: one sample per non-padding token.

    batches = token_batches(tokenizer, texts, batch_size=32, max_length=128)   # padded, with attention masks
    caps = capture_tokens(model, batches, mlp_neurons(model))                  # every MLP neuron of every layer
    caps.activations["layer3"], caps.index                                     # [N, 1536], the TokenIndex

Any torch module that takes token batches works (Hugging Face causal LMs among them): a batch is a dict of
keyword arguments with `input_ids` [B, T] and `attention_mask` [B, T] (1 for real tokens, 0 for padding,
either side). A layer is a module name; its output is captured, or its input with `"input:"` before the
name — the MLP neurons of a transformer are the input of the MLP's output projection (act(gate) · up in
Llama's SwiGLU), which `mlp_neurons(model)` names for Llama-, GPT-2- and Pythia-style models:

    Llama / Mistral / Qwen / SmolLM2   model.layers.<i>.mlp.down_proj         (input: act(gate_proj) * up_proj)
    GPT-2                              transformer.h.<i>.mlp.c_proj           (input: gelu(c_fc))
    Pythia / GPT-NeoX                  gpt_neox.layers.<i>.mlp.dense_4h_to_h  (input: gelu(dense_h_to_4h))

The residual stream is a decoder layer's output (`model.layers.<i>`), taken as its first element when the
layer returns a tuple. Tokens are kept in (sequence, position) order; `position` counts real tokens only
(0 for the first real token, whichever side the padding is). The token index (core/token_index.py:
token ids, sequences, positions, and, for batches from `token_batches` with a fast tokenizer, the texts and
every token's character offsets) comes back with the activations. With `out`, every layer streams to
`out/<name>.npy` and the index to `out/tokens.npy`, `sequence.npy`, `position.npy` (`offsets.npy`,
`texts.json`), so 10^6 tokens of activations never have to fit in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.token_index import TokenIndex, write_texts
from ..core.validate import as_device
from .capture import NpyWriter, hooked_run, layer_file_name, model_device, module_names, move_to, resolve_layers
from .progress import ProgressLine

INPUT_PREFIX = "input:"
# (the module holding the decoder layers, the MLP output projection inside each layer)
_MLP_LAYOUTS = (
    ("model.layers", "mlp.down_proj"),  # Llama, Mistral, Qwen, SmolLM2
    ("transformer.h", "mlp.c_proj"),  # GPT-2
    ("gpt_neox.layers", "mlp.dense_4h_to_h"),  # Pythia, GPT-NeoX
)


def mlp_neurons(model: nn.Module) -> dict[str, str]:
    """{"layer<i>": "input:<the MLP output projection of decoder layer i>"} for Llama-, GPT-2- and
    Pythia-style models: the MLP's hidden neurons (act(gate) · up for SwiGLU).

    Example:
        >>> mlp_neurons(llama)["layer0"]
        'input:model.layers.0.mlp.down_proj'
    """
    names = dict(model.named_modules())
    for stack, proj in _MLP_LAYOUTS:
        layers = names.get(stack)
        if isinstance(layers, nn.ModuleList) and f"{stack}.0.{proj}" in names:
            return {f"layer{i}": f"{INPUT_PREFIX}{stack}.{i}.{proj}" for i in range(len(layers))}
    known = ", ".join(f"{s}.<i>.{p}" for s, p in _MLP_LAYOUTS)
    raise ValueError(f"model: no MLP layout found (looked for {known}); name the modules to capture instead")


class TokenBatches(list):
    """token_batches' batches (a list of {"input_ids", "attention_mask"} dicts), with the texts they came
    from and each batch's [B, T, 2] character offsets (None for a tokenizer without offsets), which
    capture_tokens puts in its token index.

    Example:
        >>> batches = token_batches(tok, ["The cat sat.", "A dog ran."], batch_size=2)
        >>> batches.texts, batches.offsets[0].shape
        (('The cat sat.', 'A dog ran.'), torch.Size([2, 4, 2]))
    """

    def __init__(self, batches, texts, offsets):
        super().__init__(batches)
        self.texts, self.offsets = tuple(texts), offsets


def token_batches(tokenizer, texts: Sequence[str], batch_size: int = 32, max_length: int = 128) -> TokenBatches:
    """Padded batches of a Hugging Face tokenizer: [{"input_ids": [B, T], "attention_mask": [B, T]}].

    Texts that tokenize to nothing are an error (they would give no sample); a tokenizer without a pad
    token pads with its end-of-sequence token (the attention mask keeps it out). A fast tokenizer's
    character offsets ride along (TokenBatches.offsets), so the capture's index knows every token's text.

    Example:
        >>> tok = AutoTokenizer.from_pretrained(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
        >>> batches = token_batches(tok, sentences, batch_size=32, max_length=64)
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError(f"texts: expected a sequence of strings, got {type(texts).__name__}")
    if batch_size < 1 or max_length < 1:
        raise ValueError(f"batch_size, max_length: expected integers >= 1, got {batch_size} and {max_length}")
    if getattr(tokenizer, "pad_token", None) is None:
        if getattr(tokenizer, "eos_token", None) is None:
            raise ValueError("tokenizer: it has neither a pad token nor an end-of-sequence token to pad with")
        tokenizer.pad_token = tokenizer.eos_token
    out, offsets = [], [] if getattr(tokenizer, "is_fast", False) else None
    for s in range(0, len(texts), batch_size):
        chunk = list(texts[s : s + batch_size])
        enc = tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="pt",
                        return_offsets_mapping=offsets is not None)  # fmt: skip
        empty = (enc["attention_mask"].sum(1) == 0).nonzero()
        if empty.numel():
            i = s + int(empty[0])
            raise ValueError(f"texts: text {i} ({texts[i][:40]!r}) tokenizes to no token")
        out.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
        if offsets is not None:
            offsets.append(enc["offset_mapping"])
    return TokenBatches(out, texts, offsets)


@dataclass
class TokenActivations:
    """Captured activations, one sample per token.

    Attributes:
        activations: {layer: [N, D] float32 tensor} (in memory) or {layer: Path of its .npy} (with out).
        index: the TokenIndex of the N samples (token id, sequence index over all batches, position among
            the sequence's real tokens; texts and offsets when the batches carried them), in memory.
        tokens, sequence, position, n_sequences: the index's, for short.

    Example:
        >>> caps = capture_tokens(model, token_batches(tok, texts), mlp_neurons(model))
        >>> explain(caps.activations["layer3"], concepts, groups=caps.sequence)
    """

    activations: dict
    index: TokenIndex
    layers: dict = field(default_factory=dict)

    @property
    def tokens(self) -> torch.Tensor:
        return self.index.tokens

    @property
    def sequence(self) -> torch.Tensor:
        return self.index.sequence

    @property
    def position(self) -> torch.Tensor:
        return self.index.position

    @property
    def n_sequences(self) -> int:
        return self.index.n_sequences


def capture_tokens(
    model: nn.Module,
    batches: Iterable[Mapping],
    layers,
    *,
    device=None,
    out=None,
    dtype=np.float32,
    progress: bool = False,
    stop_early: bool = False,
) -> TokenActivations:
    """Run token batches through a sequence model and keep every real token's activations.

    Args:
        model: any nn.Module called as ``model(**batch)`` (eval mode: the caller's; run under inference_mode).
        batches: dicts with "input_ids" [B, T] and "attention_mask" [B, T] (token_batches makes them).
        layers: {name: module name} (e.g. mlp_neurons(model)), or a list of module names; "input:<name>"
            captures the module's input instead of its output.
        device: where the model runs (default: where its first parameter is).
        out: a folder: stream every layer and the token table to .npy files there instead of memory.
        dtype: numpy dtype of the on-disk arrays; progress: a progress line on stderr.
        stop_early: end each forward pass as soon as every layer is captured, so what comes after (the
            later layers, the LM head) is not computed; for models that call each captured module once.

    Returns:
        TokenActivations (activations as tensors, or Paths with out; the index in memory).

    Example:
        >>> caps = capture_tokens(model, token_batches(tok, texts), ["input:model.layers.0.mlp.down_proj"])
    """
    spec = dict(layers) if isinstance(layers, Mapping) else {name: name for name in _names(layers)}
    if not spec:
        raise ValueError("layers: expected at least one layer, got none")
    targets = {}
    for name, target in spec.items():
        if isinstance(target, nn.Module):  # {name: module}: its output, as capture() takes it
            targets[name] = (target, False)
            continue
        if not isinstance(target, str):
            raise TypeError(f"layers[{name!r}]: expected a module name or an nn.Module, got {type(target).__name__}")
        inp = target.startswith(INPUT_PREFIX)
        module_name = target[len(INPUT_PREFIX) :] if inp else target
        (mod,) = resolve_layers(model, [module_name]).values()
        targets[name] = (mod, inp)
    device = as_device(device) if device is not None else model_device(model)
    limit = _max_positions(model)
    positions = _takes_position_ids(model)
    folder = Path(out) if out is not None else None
    names = {n: layer_file_name(n) for n in targets}
    reserved = {"tokens", "sequence", "position", "offsets", "texts"} & set(names.values())
    if folder is not None and reserved:
        raise ValueError(f"layers: {sorted(reserved)} would overwrite the token table's files; rename the layers")
    writers: dict[str, NpyWriter] = {}
    texts, spans = getattr(batches, "texts", None), getattr(batches, "offsets", None)
    with_text = texts is not None and spans is not None
    table = ["tokens", "sequence", "position", *(["offsets"] if with_text else [])]
    parts: dict[str, list[torch.Tensor]] = {n: [] for n in [*targets, *table]}
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        for n in parts:
            file = names.get(n, n)
            writers[n] = NpyWriter(folder / f"{file}.npy", dtype if n in targets else np.int64)
    state = {"keep": None, "left": set()}

    def put(name, block: torch.Tensor):
        if name in writers:
            writers[name].append(block.cpu().numpy())
        else:
            parts[name].append(block.cpu())

    def take(name, x):
        keep = state["keep"]  # [B, T] bool of the current batch
        if not isinstance(x, torch.Tensor) or x.dim() != 3 or tuple(x.shape[:2]) != tuple(keep.shape):
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"layers[{name!r}]: expected a [batch, tokens, features] = [{keep.shape[0]}, {keep.shape[1]}, D] "
                f"tensor, got {got}"
            )
        put(name, x[keep].detach().float())
        state["left"].discard(name)
        if stop_early and not state["left"]:
            raise _Captured

    def input_hook(name):
        return lambda _module, inputs: take(name, inputs[0] if inputs else None)

    def output_hook(name):
        return lambda _module, _inputs, output: take(name, output[0] if isinstance(output, tuple | list) else output)

    handles = [
        m.register_forward_pre_hook(input_hook(n)) if inp else m.register_forward_hook(output_hook(n))
        for n, (m, inp) in targets.items()
    ]
    total = len(batches) if hasattr(batches, "__len__") else None
    line, seqs = ProgressLine(progress), 0
    with hooked_run(handles, writers, line), torch.inference_mode():
        for i, batch in enumerate(batches):
            if not isinstance(batch, Mapping) or "input_ids" not in batch or "attention_mask" not in batch:
                raise TypeError(f"batches: batch {i}: expected a dict with input_ids and attention_mask")
            mask = torch.as_tensor(batch["attention_mask"]).bool()
            ids = torch.as_tensor(batch["input_ids"])
            if ids.shape != mask.shape or ids.dim() != 2:
                raise ValueError(
                    f"batches: batch {i}: input_ids {tuple(ids.shape)} and attention_mask {tuple(mask.shape)} "
                    "must be one [B, T] shape"
                )
            longest = int(mask.sum(1).max()) if mask.numel() else 0
            if limit is not None and longest > limit[0]:
                raise ValueError(
                    f"batches: batch {i} has a text of {longest} tokens, more than the model's {limit[0]} positions "
                    f"(config.{limit[1]}); make the batches with token_batches(..., max_length={limit[0]})"
                )
            state["keep"], state["left"] = mask.to(device), set(targets)
            batch = dict(batch)
            if positions and "position_ids" not in batch:
                # Positions count real tokens only, so left padding gives what one text per batch gives:
                # models with absolute position embeddings (GPT-2) would otherwise count the pads.
                batch["position_ids"] = (torch.cumsum(mask.long(), 1) - 1).clamp(min=0)
            _, kwargs = move_to((), batch, device)
            try:
                model(**kwargs)
            except _Captured:
                pass
            if state["left"]:
                raise ValueError(
                    f"layers: {sorted(state['left'])} never ran in batch {i} (not on the model's forward path?)"
                )
            b = ids.shape[0]
            put("tokens", ids[mask].long())
            put("sequence", (seqs + torch.arange(b)).unsqueeze(1).expand_as(mask)[mask])
            put("position", (torch.cumsum(mask.long(), 1) - 1)[mask])
            if with_text:
                span = torch.as_tensor(spans[i])
                if tuple(span.shape) != (*mask.shape, 2):
                    raise ValueError(
                        f"batches: batch {i}: offsets {tuple(span.shape)} must be [B, T, 2] with the input_ids' "
                        f"{tuple(mask.shape)}"
                    )
                put("offsets", span[mask].long())
            seqs += b
            if progress:
                of = f"/{total}" if total else ""
                line.update(f"capture: batch {i + 1}{of}, {seqs:,} sequences", final=total == i + 1)
        if seqs == 0:
            raise ValueError("batches: expected at least one batch of token ids, got none")
    if with_text and len(texts) != seqs:
        raise ValueError(f"batches: they carry {len(texts)} texts for {seqs} sequences")
    if writers:
        paths = {n: w.close() for n, w in writers.items()}
        acts = {n: paths[n] for n in targets}
        cols = [torch.from_numpy(np.load(paths[n])) for n in table]
    else:
        cat = {n: torch.cat(p) if p else torch.zeros(0) for n, p in parts.items()}
        acts = {n: cat[n] for n in targets}
        cols = [cat[n].long() for n in table]
    index = TokenIndex(*cols[:3], texts, cols[3]) if with_text else TokenIndex(*cols)
    if folder is not None and with_text:
        write_texts(folder, index.texts)  # beside the streamed arrays
    return TokenActivations(acts, index, spec)


class _Captured(Exception):
    """Raised by the last hook of a batch with stop_early: the rest of the forward pass is not needed."""


def _max_positions(model: nn.Module) -> tuple[int, str] | None:
    """(positions, config field) of a Hugging Face model's position limit, or None where it names none."""
    cfg = getattr(model, "config", None)
    for key in ("max_position_embeddings", "n_positions"):
        v = getattr(cfg, key, None)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v, key
    return None


def _takes_position_ids(model: nn.Module) -> bool:
    """Whether model(**batch) takes position_ids (Hugging Face causal LMs do)."""
    import inspect

    try:
        return "position_ids" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def _names(layers) -> list[str]:
    if isinstance(layers, str) or not isinstance(layers, Sequence):
        raise TypeError(f"layers: expected module names or a dict name -> module name, got {type(layers).__name__}")
    return module_names(layers)
