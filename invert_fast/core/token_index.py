"""The token index: which token every sample of a token layer is, and where it came from.

One type for every token source, so every concept family can be built from any of them:
`capture_tokens` returns it (`caps.index`, texts and character offsets included when the batches came
from `token_batches`), a delphi latent cache gives it (`DelphiCache.token_index(tokenizer)`, the text
decoded from its token ids), and a user with token ids alone makes one (`TokenIndex(tokens, sequence,
position)`, then `.with_text(tokenizer, texts)`).

    sample k = token tokens[k], at position position[k] of sequence sequence[k] (positions count that
    sequence's real tokens from 0); its characters are texts[sequence[k]][offsets[k, 0]:offsets[k, 1]]
    (an empty span for a token with no character of its own: special tokens, or the first bytes of a
    character split over several byte-level tokens, whose last piece holds the character).

Samples are in (sequence, position) order: sequences numbered 0, 1, ... without gaps, positions 0, 1, ...
within each. That is the order both sources give, and what previous / next token concepts rely on.

Example:
    >>> idx = TokenIndex(torch.tensor([5, 9, 5]), torch.tensor([0, 0, 1]), torch.tensor([0, 1, 0]))
    >>> idx.n_sequences, len(idx)
    (2, 3)
    >>> idx = idx.with_text(tokenizer)          # decoded: texts and offsets of every token
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .validate import as_integers

FILES = ("tokens", "sequence", "position", "offsets")  # <name>.npy in a folder, and texts.json


@dataclass(frozen=True)
class TokenIndex:
    """Token id, sequence, position (and, with text, the texts and each token's character span) of N samples.

    Attributes:
        tokens, sequence, position: [N] int64 tensors (module docstring: the order they must be in).
        texts: the S texts of the sequences (S = n_sequences), or None.
        offsets: [N, 2] int64 character span of each token in its sequence's text, or None (with texts).

    Example:
        >>> caps = capture_tokens(model, token_batches(tok, texts), mlp_neurons(model))
        >>> caps.index.texts[0][slice(*caps.index.offsets[3].tolist())]    # the characters of sample 3
    """

    tokens: torch.Tensor
    sequence: torch.Tensor
    position: torch.Tensor
    texts: tuple[str, ...] | None = None
    offsets: torch.Tensor | None = None

    def __post_init__(self):
        t, s, p = (as_integers(getattr(self, a), a).long() for a in ("tokens", "sequence", "position"))
        if not (t.dim() == s.dim() == p.dim() == 1 and t.numel() == s.numel() == p.numel()):
            raise ValueError(
                f"tokens, sequence, position: expected three [N] arrays, got shapes {tuple(t.shape)}, "
                f"{tuple(s.shape)} and {tuple(p.shape)}"
            )
        if t.numel():
            first = torch.ones_like(s, dtype=torch.bool)
            first[1:] = s[1:] != s[:-1]
            step = s[1:] - s[:-1]
            bad = (int(s[0]) != 0) or bool(((step != 0) & (step != 1)).any())
            bad = bad or bool((p[first] != 0).any()) or bool((p[1:][~first[1:]] != p[:-1][~first[1:]] + 1).any())
            if bad:
                raise ValueError(
                    "sequence, position: expected samples in (sequence, position) order: sequences numbered 0, 1, ... "
                    "without gaps, positions 0, 1, ... within each"
                )
            if int(t.min()) < 0:
                raise ValueError(f"tokens: expected token ids >= 0, got {int(t.min())}")
        object.__setattr__(self, "tokens", t)
        object.__setattr__(self, "sequence", s)
        object.__setattr__(self, "position", p)
        if (self.texts is None) != (self.offsets is None):
            raise ValueError("texts, offsets: expected both (each token's span in its text) or neither")
        if self.texts is None:
            return
        if isinstance(self.texts, str) or not all(isinstance(x, str) for x in self.texts):
            raise TypeError("texts: expected a sequence of strings, one per sequence")
        texts = tuple(self.texts)
        if len(texts) != self.n_sequences:
            raise ValueError(f"texts: expected one text per sequence ({self.n_sequences}), got {len(texts)}")
        o = as_integers(self.offsets, "offsets").long()
        if tuple(o.shape) != (t.numel(), 2):
            raise ValueError(f"offsets: expected [{t.numel()}, 2] character spans, got {tuple(o.shape)}")
        length = torch.tensor([len(x) for x in texts], dtype=torch.int64)[s] if t.numel() else s
        bad = (o[:, 0] < 0) | (o[:, 1] < o[:, 0]) | (o[:, 1] > length)
        if bool(bad.any()):
            k = int(bad.nonzero()[0])
            raise ValueError(
                f"offsets: token {k} spans characters {o[k].tolist()}, outside its text (sequence {int(s[k])}, "
                f"{int(length[k])} characters)"
            )
        object.__setattr__(self, "texts", texts)
        object.__setattr__(self, "offsets", o)

    def __len__(self) -> int:
        return self.tokens.numel()

    @property
    def n_sequences(self) -> int:
        """S: the number of sequences."""
        return int(self.sequence[-1]) + 1 if len(self) else 0

    @property
    def bounds(self) -> np.ndarray:
        """[S + 1] int64: sequence i is samples bounds[i]:bounds[i + 1]."""
        return np.searchsorted(self.sequence.numpy(), np.arange(self.n_sequences + 1))

    def pieces(self) -> list[str]:
        """The N tokens' own characters ("" for an empty span); needs texts."""
        if self.texts is None:
            raise ValueError("index: it has no texts; index.with_text(tokenizer, texts) adds them")
        s, o = self.sequence.tolist(), self.offsets.tolist()
        return [self.texts[i][a:b] for i, (a, b) in zip(s, o, strict=True)]

    def token_texts(self) -> list[str]:
        """The N tokens' texts as they read in their sequence: from a token's start to the next token's
        start (so spaces a tokenizer leaves out of its offsets stay between the tokens), the last to its
        end; "" for an empty span (special tokens). Joined per sequence: its text from the first token's
        start. Needs texts.

        Example:
            >>> "".join(idx.token_texts()[a:b])      # sequence i's text, bounds a, b = idx.bounds[i:i + 2]
        """
        if self.texts is None:
            raise ValueError("index: it has no texts; index.with_text(tokenizer, texts) adds them")
        o, out = self.offsets.tolist(), []
        b = self.bounds
        for i, text in enumerate(self.texts):
            spans = o[b[i] : b[i + 1]]
            pieces, nxt = [], None  # nxt: the start of the next non-empty token (one pass, back to front)
            for a, e in reversed(spans):
                if a == e:
                    pieces.append("")
                    continue
                pieces.append(text[a : max(e, nxt)] if nxt is not None else text[a:e])
                nxt = a
            out.extend(reversed(pieces))
        return out

    @classmethod
    def from_grid(cls, tokens) -> TokenIndex:
        """The index of a [S, T] grid of token ids (every sequence T tokens long, as delphi stores them)."""
        g = as_integers(tokens, "tokens").long()
        if g.dim() != 2:
            raise ValueError(f"tokens: expected a [sequences, context length] grid, got shape {tuple(g.shape)}")
        n_seq, ctx = g.shape
        return cls(g.reshape(-1), torch.arange(n_seq).repeat_interleave(ctx), torch.arange(ctx).repeat(n_seq))

    def with_text(self, tokenizer, texts=None, *, max_length: int | None = None) -> TokenIndex:
        """This index with texts and offsets.

        Args:
            tokenizer: the Hugging Face tokenizer of the tokens.
            texts: the S texts the sequences came from: each is tokenized again (a fast tokenizer's offset
                mapping, truncated at max_length as the capture was) and must give exactly this sequence's
                token ids. None: the text is decoded from the token ids, token by token (incrementally, so a
                character split over several byte tokens lands, whole, on the last of them; special tokens
                get empty spans).
            max_length: the truncation the batches used (with texts).

        Example:
            >>> cache.token_index().with_text(tok)           # a delphi cache: text decoded from its ids
        """
        if texts is None:
            all_texts, offsets = _decode(tokenizer, self)
        else:
            all_texts, offsets = _retokenize(tokenizer, self, texts, max_length)
        return TokenIndex(self.tokens, self.sequence, self.position, all_texts, offsets)

    def save(self, folder) -> Path:
        """tokens.npy, sequence.npy, position.npy (and offsets.npy, texts.json) in folder."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in FILES[:3]:
            np.save(folder / f"{name}.npy", getattr(self, name).numpy())
        if self.texts is not None:
            np.save(folder / "offsets.npy", self.offsets.numpy())
            write_texts(folder, self.texts)
        return folder

    @classmethod
    def load(cls, folder) -> TokenIndex:
        """The index save (or capture_tokens with out) wrote in folder."""
        folder = Path(folder)
        missing = [f"{n}.npy" for n in FILES[:3] if not (folder / f"{n}.npy").is_file()]
        if missing:
            raise FileNotFoundError(f"folder: {folder} lacks the token index's {', '.join(missing)}")
        arrays = [torch.from_numpy(np.load(folder / f"{n}.npy")) for n in FILES[:3]]
        texts = offsets = None
        if (folder / "texts.json").is_file():
            texts = json.loads((folder / "texts.json").read_text(encoding="utf-8"))
            offsets = torch.from_numpy(np.load(folder / "offsets.npy"))
        return cls(*arrays, texts, offsets)


def write_texts(folder, texts) -> Path:
    """folder/texts.json: the S texts of an index (TokenIndex.load reads them back with the arrays).

    Example:
        >>> write_texts("acts/", ["The cat sat.", "A dog ran."])
    """
    path = Path(folder) / "texts.json"
    path.write_text(json.dumps(list(texts), ensure_ascii=False), encoding="utf-8")
    return path


def _retokenize(tokenizer, index: TokenIndex, texts, max_length):
    if isinstance(texts, str) or not hasattr(texts, "__len__"):
        raise TypeError(f"texts: expected a sequence of strings, got {type(texts).__name__}")
    texts = list(texts)
    if len(texts) != index.n_sequences:
        raise ValueError(f"texts: expected one text per captured sequence ({index.n_sequences}), got {len(texts)}")
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"tokenizer: expected a fast tokenizer that returns character offsets (return_offsets_mapping), got "
            f"{type(tokenizer).__name__}"
        )
    bounds, t = index.bounds, index.tokens.numpy()
    offsets = []
    for i, text in enumerate(texts):
        enc = tokenizer(text, return_offsets_mapping=True, truncation=max_length is not None, max_length=max_length)
        ids, got = list(enc["input_ids"]), t[bounds[i] : bounds[i + 1]]
        if len(ids) != len(got) or any(a != int(b) for a, b in zip(ids, got, strict=False)):
            raise ValueError(
                f"tokens: sequence {i} has {len(got)} captured tokens but the tokenizer gives {len(ids)} "
                f"{'different ' if len(ids) == len(got) else ''}tokens for texts[{i}] ({text[:40]!r}); pass the "
                "texts, tokenizer and max_length the capture used"
            )
        offsets.extend(enc["offset_mapping"])
    return texts, torch.tensor(offsets, dtype=torch.int64).reshape(-1, 2)


def _decode(tokenizer, index: TokenIndex):
    """Texts and offsets decoded from the ids, one sequence at a time, by incremental detokenization: a
    token's characters are decode(ids[p:j+1]) minus decode(ids[p:r]) for a window start p a token or more
    back (so SentencePiece's dropped leading space of a window's first token never lands on token j), held
    back while the text ends in an incomplete character (U+FFFD) and given to the token that completes it."""
    if not callable(getattr(tokenizer, "decode", None)):
        raise TypeError(f"tokenizer: expected a tokenizer with decode(ids), got {type(tokenizer).__name__}")

    def dec(ids):
        return tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    bounds, t = index.bounds, index.tokens.tolist()
    texts, offsets = [], np.zeros((len(index), 2), dtype=np.int64)
    for i in range(index.n_sequences):
        ids, base = t[bounds[i] : bounds[i + 1]], int(bounds[i])
        text, prefix, read = "", 0, 0
        for j in range(len(ids)):
            before, after = dec(ids[prefix:read]), dec(ids[prefix : j + 1])
            if after.endswith("\ufffd") and j + 1 < len(ids):
                continue  # an incomplete character: its bytes go to the token that completes it
            if not after.startswith(before):
                raise ValueError(
                    f"tokenizer: decoding sequence {i} is not incremental at position {j} ({before!r} then {after!r}); "
                    "pass the texts to with_text instead"
                )
            new = after[len(before) :]
            offsets[base + read : base + j] = len(text)  # held-back tokens: empty spans
            offsets[base + j] = (len(text), len(text) + len(new))
            text += new
            prefix, read = read, j + 1
        texts.append(text)
    return texts, torch.from_numpy(offsets)
