"""EleutherAI delphi's latent cache as an activation store: sparse SAE latents over millions of tokens.

A cache folder holds shards `<start>_<end>.safetensors` (latents start .. end, end inclusive), each with
    locations   [n, 3] uint16/uint32/int64: (sequence index, position, latent - start) of every nonzero,
    activations [n] float16/float32: its value,
    tokens      [n_seq, ctx] integers: the token ids of the whole run (the same array in every shard),
and optionally `config.json` (the model and hook point, copied into the output's parameters). Sample n
is token tokens.flat[n] (n = sequence * ctx + position, N = n_seq * ctx); neuron j is latent j; every
location not stored is the activation 0.0.

Neuron batches are read shard by shard: one shard's entries are sorted by (latent, sample) once and
kept while consecutive batches fall inside it, so memory holds one shard's entries and one batch,
never a dense [N, D] matrix. Every shard is checked when it is read (shape, dtypes, ranges, duplicate
coordinates, finite values, tokens equal to the first shard's, the file unchanged since the store was
opened), and the errors name the shard and the entry.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from ..core.sparse import SparseColumns
from ..core.token_index import TokenIndex
from ..core.validate import check_columns
from .store import FOLDER_STORES, NeuronStore, optional

_SHARD = re.compile(r"^(\d+)_(\d+)\.safetensors$")
_LOCATION_DTYPES = ("U16", "U32", "I64", "I32")
_VALUE_DTYPES = {"F16": torch.float16, "F32": torch.float32}


def is_delphi_cache(path) -> bool:
    """A folder holding at least one `<start>_<end>.safetensors` shard."""
    p = Path(path)
    return p.is_dir() and any(_SHARD.match(f.name) for f in p.iterdir())


class DelphiCache(NeuronStore):
    """A delphi latent cache folder read as a sparse [N tokens, D latents] store.

    Args:
        path: the folder of shards (e.g. `latents/layers.6`); `config.json` is looked for in it and in
            its parent.

    Attributes:
        shape (N, D); nnz: stored entries in all; dtype; shards: [(start, end, file)]; n_seq, ctx;
        config: the parsed config.json ({} when absent); sparse: True.

    Example:
        >>> cache = DelphiCache("latents/layers.6")
        >>> x = cache.read(0, 256)           # SparseColumns [N, 256]
        >>> ids, seq = cache.tokens(), cache.sequences()
        >>> index = cache.token_index(tokenizer)   # ids, sequences, positions, decoded texts and offsets
    """

    sparse = True

    def __init__(self, path, key: str | None = None):
        st = optional("safetensors", "safetensors", ".safetensors")
        self.path = Path(path)
        self.key = None
        self.format = "delphi"
        self.neuron_major = True
        if key is not None:
            raise ValueError(f"activations: a delphi cache ({self.path}) has no keys to pick, got key {key!r}")
        if not self.path.is_dir():
            raise FileNotFoundError(f"activations: no such folder: {self.path}")
        files = sorted(self.path.glob("*.safetensors"))
        if not files:
            raise ValueError(f"activations: {self.path} holds no <start>_<end>.safetensors shards")
        shards = []
        for f in files:
            m = _SHARD.match(f.name)
            if m is None:
                raise ValueError(f"activations: {f} is not named <start>_<end>.safetensors (latents start .. end)")
            a, b = int(m.group(1)), int(m.group(2))
            if b < a:
                raise ValueError(f"activations: shard {f.name} ends (latent {b}) before it starts ({a})")
            check_columns(b - a + 1, f"activations: shard {f.name} (latents {a} .. {b})")
            shards.append((a, b, f))
        shards.sort(key=lambda s: (s[0], s[1]))
        expect = 0
        for a, b, f in shards:
            if a > expect:
                raise ValueError(
                    f"activations: {self.path} has no shard for latents {expect} .. {a - 1} (before {f.name})"
                )
            if a < expect:
                raise ValueError(f"activations: shard {f.name} overlaps the latents before it (up to {expect - 1})")
            expect = b + 1
        self.shards = shards
        self._meta = []
        tok_shape, value_dtype, self.nnz = None, None, 0
        for _a, _b, f in shards:
            try:
                with st.safe_open(str(f), framework="numpy") as h:
                    keys = set(h.keys())
                    missing = {"locations", "activations", "tokens"} - keys
                    if missing:
                        raise ValueError(f"activations: shard {f.name} lacks {sorted(missing)} (has {sorted(keys)})")
                    loc, act, tok = h.get_slice("locations"), h.get_slice("activations"), h.get_slice("tokens")
                    ls, as_, ts = tuple(loc.get_shape()), tuple(act.get_shape()), tuple(tok.get_shape())
                    ld, ad, td = loc.get_dtype(), act.get_dtype(), tok.get_dtype()
            except ValueError:
                raise
            except Exception as e:  # noqa: BLE001  (a truncated or foreign file: one line naming it)
                raise ValueError(f"activations: cannot read shard {f}: {str(e).splitlines()[0]}") from None
            if len(ls) != 2 or ls[1] != 3 or ld not in _LOCATION_DTYPES:
                raise ValueError(
                    f"activations: shard {f.name}: locations must be [n, 3] of {'/'.join(_LOCATION_DTYPES)}, got {list(ls)} {ld}"
                )
            if as_ != (ls[0],) or ad not in _VALUE_DTYPES:
                raise ValueError(
                    f"activations: shard {f.name}: activations must be [{ls[0]}] float16/float32 (one per location), "
                    f"got {list(as_)} {ad}"
                )
            if len(ts) != 2 or td[0] not in "IU":
                raise ValueError(
                    f"activations: shard {f.name}: tokens must be a 2-D integer array, got {list(ts)} {td}"
                )
            if min(ts) < 1:
                raise ValueError(
                    f"activations: shard {f.name}: tokens must be [sequences, context length] with both >= 1, got {list(ts)}"
                )
            if tok_shape is None:
                tok_shape, value_dtype = ts, _VALUE_DTYPES[ad]
            elif ts != tok_shape:
                raise ValueError(
                    f"activations: shard {f.name}: tokens are {list(ts)}, the first shard's {list(tok_shape)}; "
                    "every shard of a cache holds the same tokens"
                )
            if _VALUE_DTYPES[ad] != value_dtype:
                raise ValueError(f"activations: shard {f.name} holds {ad} activations, the first shard other ones")
            self._meta.append((f.stat().st_size, f.stat().st_mtime_ns, ls[0]))
            self.nnz += ls[0]
        self.n_seq, self.ctx = tok_shape
        self.shape = (self.n_seq * self.ctx, expect)
        self.dtype = value_dtype
        self._tokens = None
        self._loaded = None  # (shard index, SparseColumns of the shard's latents)
        self.config = {}
        for c in (self.path / "config.json", self.path.parent / "config.json"):
            if c.is_file():
                try:
                    self.config = json.loads(c.read_text(encoding="utf-8"))
                except (ValueError, UnicodeDecodeError) as e:
                    raise ValueError(f"activations: {c} is not valid JSON ({e})") from None
                break

    def __repr__(self) -> str:
        return (
            f"DelphiCache({str(self.path)!r}, {self.shape[0]} tokens ({self.n_seq} x {self.ctx}) x "
            f"{self.shape[1]} latents, {len(self.shards)} shards, nnz {self.nnz})"
        )

    @property
    def hookpoint(self) -> str:
        """The hook point of these latents: the folder's name (delphi names latents/<hookpoint>/)."""
        return self.path.name

    @property
    def model(self) -> str | None:
        """The model named by config.json, if any."""
        m = self.config.get("model") if isinstance(self.config, dict) else None
        return str(m) if m is not None else None

    def tokens(self) -> torch.Tensor:
        """[N] int64 token id of every sample (the first shard's tokens, flattened)."""
        if self._tokens is None:
            self._tokens = torch.from_numpy(self._tokens_raw().astype(np.int64))
        return self._tokens

    def _tokens_raw(self) -> np.ndarray:
        """The first shard's tokens as stored ([N], its integer dtype), to compare other shards' with."""
        if getattr(self, "_raw", None) is None:
            st = optional("safetensors", "safetensors", ".safetensors")
            with st.safe_open(str(self.shards[0][2]), framework="numpy") as h:
                self._raw = h.get_tensor("tokens").reshape(-1)
        return self._raw

    def token_index(self, tokenizer=None) -> TokenIndex:
        """The TokenIndex of the N samples (token ids, sequence, position = n // ctx, n % ctx); with a
        tokenizer, the texts decoded from the ids and every token's character offsets (TokenIndex.with_text),
        so the same concept families as a capture's can be built.

        Example:
            >>> words = word_annotations(nlp, cache.token_index(tok))
        """
        index = TokenIndex.from_grid(self.tokens().reshape(self.n_seq, self.ctx))
        return index.with_text(tokenizer) if tokenizer is not None else index

    def sequences(self) -> torch.Tensor:
        """[N] int64 sequence index of every sample (the default groups of permutations)."""
        return torch.arange(self.shape[0]) // self.ctx

    def read(self, d0: int, d1: int, max_buffer: int = 0) -> SparseColumns:
        """Latents d0:d1 as SparseColumns [N, d1 - d0] (the neurons numbered d0.. in errors)."""
        d0, d1 = max(0, d0), min(self.shape[1], d1)
        parts = []
        for i, (a, b, _f) in enumerate(self.shards):
            if b < d0 or a >= d1:
                continue
            cols = self._shard(i)
            parts.append(cols.columns(max(d0, a) - a, min(d1, b + 1) - a))
        return _concat_columns(parts, self.shape[0], d0)

    def _shard(self, i: int) -> SparseColumns:
        if self._loaded is not None and self._loaded[0] == i:
            return self._loaded[1]
        self._loaded = None
        a, b, f = self.shards[i]
        size, mtime, n_loc = self._meta[i]
        stat = f.stat() if f.exists() else None
        if stat is None or stat.st_size != size or stat.st_mtime_ns != mtime:
            raise ValueError(f"activations: shard {f} changed (or vanished) after the store was opened; open it again")
        st = optional("safetensors", "safetensors", ".safetensors")
        try:
            with st.safe_open(str(f), framework="numpy") as h:
                loc = h.get_tensor("locations")  # as stored (uint16 / uint32 / int64): widened per column
                act = torch.from_numpy(h.get_tensor("activations"))
                tok = h.get_tensor("tokens")
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"activations: cannot read shard {f}: {str(e).splitlines()[0]}") from None
        if loc.shape != (n_loc, 3) or act.shape != (n_loc,):
            raise ValueError(f"activations: shard {f.name} changed shape after the store was opened; open it again")
        if i:
            same = tok.reshape(-1) == self._tokens_raw()
            if not bool(same.all()):
                e = int(np.flatnonzero(~same)[0])
                raise ValueError(
                    f"activations: shard {f.name}: tokens differ from the first shard's at token {e} "
                    f"(sequence {e // self.ctx}, position {e % self.ctx}); every shard holds the same tokens"
                )
        width = b - a + 1
        cols = []
        for j, (what, hi) in enumerate((("sequence", self.n_seq), ("position", self.ctx), ("latent - start", width))):
            col = loc[:, j]
            lo_, hi_ = (int(col.min()), int(col.max())) if n_loc else (0, 0)
            if lo_ < 0 or hi_ >= hi:
                e = int(np.flatnonzero((col < 0) | (col >= hi))[0])
                raise ValueError(
                    f"activations: shard {f.name}, entry {e}: {what} {int(col[e])} is outside [0, {hi})"
                    + (" (the tokens array's shape)" if j < 2 else f" (the shard holds latents {a} .. {b})")
                )
            cols.append(col)
        finite = torch.isfinite(act)
        if not bool(finite.all()):
            e = int((~finite).nonzero()[0])
            raise ValueError(f"activations: shard {f.name}, entry {e}: activation {float(act[e])} is not finite")
        loc = None
        rows = torch.from_numpy(cols[0].astype(np.int64) * self.ctx + cols[1])
        try:
            cols = SparseColumns.from_coo(
                rows, torch.from_numpy(cols[2].astype(np.int64)), act, (self.shape[0], width), f"shard {f.name}", a
            )
        except ValueError as e:
            raise ValueError(f"activations: {e}") from None
        self._loaded = (i, cols)
        return cols


def _concat_columns(parts: list[SparseColumns], n: int, first: int) -> SparseColumns:
    """Consecutive column ranges as one SparseColumns (columns numbered from `first` in errors)."""
    if len(parts) == 1:
        p = parts[0]
        return SparseColumns(p.indptr, p.indices, p.values, p.shape, first)
    indptr, offset, d = [torch.zeros(1, dtype=torch.int64)], 0, 0
    for p in parts:
        indptr.append(p.indptr[1:] + offset)
        offset += p.nnz
        d += p.shape[1]
    dtype = parts[0].values.dtype if parts else torch.float32
    return SparseColumns(
        torch.cat(indptr),
        torch.cat([p.indices for p in parts]) if parts else torch.zeros(0, dtype=torch.int64),
        torch.cat([p.values for p in parts]) if parts else torch.zeros(0, dtype=dtype),
        (n, d),
        first,
    )


FOLDER_STORES.append((is_delphi_cache, DelphiCache))
