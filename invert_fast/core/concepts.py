"""ConceptSet: named binary concepts over N samples, bit-packed 64 samples per int64 word."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

import torch

from .. import ops
from .bits import num_words, pack_bits, pack_columns, popcount, unpack_bits
from .validate import as_binary_labels, check_samples, to_tensor, validate_names


class ConceptSet:
    """K named binary concepts (masks) over N samples.

    Masks are stored packed ([K, ceil(N / 64)] int64), so slicing and moving between devices
    copy 8x less than a bool matrix. Empty (no sample) and full (every sample) concepts are
    allowed; their AUROC is undefined and reported as NaN.

    Args:
        labels: [N, K] 0/1 matrix (bool, integer or float tensor / numpy array).
        names: K unique names; default c0, c1, ...
        descriptions: optional human-readable text per concept (sequence of K strings, or a
            mapping from some names to text).

    Example:
        >>> cs = ConceptSet([[1, 0], [0, 1], [1, 1]], names=["cat", "dog"])
        >>> cs.counts.tolist(), len(cs), cs.names
        ([2, 2], 2, ('cat', 'dog'))
    """

    def __init__(self, labels, names: Sequence[str] | None = None, descriptions=None):
        mask = as_binary_labels(labels, "labels")
        n, k = mask.shape
        names = [f"c{i}" for i in range(k)] if names is None else validate_names(names, k)
        self._set(pack_columns(mask), n, names, descriptions)

    def _set(self, bits: torch.Tensor | None, n: int, names: list[str], descriptions, source=None) -> None:
        # source: the ids and tables of from_ids; the packed bits are then built only when asked for.
        self._bits = bits
        self._source = source
        self._n = int(n)
        self._names = tuple(names)
        self._index = {s: i for i, s in enumerate(self._names)}
        self._descriptions = normalize_descriptions(descriptions, self._names)
        self._counts: torch.Tensor | None = None
        self._regions = None

    @classmethod
    def from_bits(cls, bits: torch.Tensor, n_samples: int, names: Sequence[str], descriptions=None) -> ConceptSet:
        """Build from packed masks.

        Args:
            bits: [K, ceil(n_samples / 64)] int64, sample n at bit n % 64 of word n // 64.
            n_samples: N.
            names: K unique names.
        """
        if not isinstance(bits, torch.Tensor) or bits.dtype != torch.int64 or bits.dim() != 2:
            raise TypeError(f"bits: expected a 2-D int64 tensor, got {getattr(bits, 'dtype', type(bits))}")
        check_samples(int(n_samples), "n_samples")
        if bits.shape[1] != num_words(n_samples):
            raise ValueError(
                f"bits: expected {num_words(n_samples)} words per concept for {n_samples} samples, got {bits.shape[1]}"
            )
        tail = n_samples % 64
        if tail and bool(unpack_bits(bits[:, -1:], 64)[:, tail:].any()):
            raise ValueError(f"bits: padding bits beyond sample {n_samples - 1} must be 0")
        out = cls.__new__(cls)
        out._set(bits, n_samples, validate_names(names, bits.shape[0]), descriptions)
        return out

    @classmethod
    def from_classes(cls, y, names: Sequence[str], descriptions=None) -> ConceptSet:
        """One concept per class from class indices (one-hot).

        Args:
            y: [N] integer class index of each sample, in [0, len(names)).
            names: one unique name per class.

        Example:
            >>> ConceptSet.from_classes([0, 2, 1, 2], ["a", "b", "c"]).counts.tolist()
            [1, 1, 2]
        """
        y = to_tensor(y, "y")
        if y.dim() != 1:
            raise ValueError(f"y: expected a 1-D array of class indices [N], got shape {tuple(y.shape)}")
        check_samples(y.shape[0], "y")
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise TypeError(f"y: expected integer class indices, got dtype {y.dtype}")
        names = validate_names(names, len(names))
        c = len(names)
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= c):
            raise ValueError(
                f"y: class indices must lie in [0, {c}) for {c} names, got values from {int(y.min())} to {int(y.max())}"
            )
        # Pack directly: sample n sets bit n % 64 of word n // 64 of its class's row. The bits of one
        # (class, word) are distinct, so adding them is OR (bit 63 wraps to the sign bit, as packed).
        n = y.numel()
        bits = torch.zeros(c, num_words(n), dtype=torch.int64, device=y.device)
        samples = torch.arange(n, device=y.device)
        bits.index_put_(
            (y.long(), samples // 64), torch.bitwise_left_shift(torch.ones_like(samples), samples % 64), True
        )
        out = cls.__new__(cls)
        out._set(bits, n, names, descriptions)
        return out

    @classmethod
    def from_ids(cls, ids, table, names: Sequence[str] | None = None, descriptions=None) -> ConceptSet:
        """Concepts that are functions of a categorical code per sample (a token id, ...), without an
        [N, K] matrix: sample n has concept k of column c when table_c[ids[n, c], k] is 1.

        Regions are the distinct id tuples (merged where their concept vectors agree), built in
        O(N C + V K) memory; everything (counts, regions, every search result) is identical to
        ConceptSet(table[ids]). Packed masks ([K, N / 64]) are built only if something asks for
        .bits (e.g. Formula.mask, dense()).

        Args:
            ids: [N] integer codes, or [N, C] (one code per column: e.g. the token, the previous token,
                a position bucket), each in [0, V_c).
            table: [V, K] 0/1 (bool, integer or float): the concepts of each code; for [N, C] ids, a
                sequence of C tables [V_c, K_c] (their concepts concatenated in order).
            names: K unique names (default c0, c1, ...); descriptions: as for ConceptSet.

        Example:
            >>> table = [[1, 0], [0, 1], [1, 1]]  # 3 token ids, 2 concepts
            >>> cs = ConceptSet.from_ids([2, 0, 0, 1], table, names=["noun", "plural"])
            >>> cs.counts.tolist(), cs.dense().int().tolist()
            ([3, 2], [[1, 1], [1, 0], [1, 0], [0, 1]])
        """
        from .ids import IdConcepts

        src = IdConcepts.build(ids, table)
        names = [f"c{i}" for i in range(src.k)] if names is None else validate_names(names, src.k)
        out = cls.__new__(cls)
        out._set(None, src.n, names, descriptions, src)
        return out

    @classmethod
    def from_csv(cls, path) -> ConceptSet:
        """Concepts from a CSV file: a header of concept names, then one row of 0/1 per sample.

        A first column named "sample" (or "id") is taken as sample ids and ignored.
        """
        import csv

        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        if not rows:
            raise ValueError(f"concepts file {path}: empty, expected a header of concept names")
        header, body = rows[0], rows[1:]
        skip = 1 if header and header[0].strip().lower() in ("sample", "id") else 0
        names = [h.strip() for h in header[skip:]]
        try:
            values = [[float(v) for v in r[skip:]] for r in body]
        except ValueError as e:
            raise ValueError(f"concepts file {path}: expected numbers 0/1 below the header, {e}") from None
        bad = [i + 2 for i, r in enumerate(values) if len(r) != len(names)]
        if bad:
            raise ValueError(
                f"concepts file {path}: line {bad[0]} has a different number of columns than the header ({len(names)})"
            )
        return cls(torch.tensor(values, dtype=torch.float64).reshape(len(values), len(names)), names)

    @classmethod
    def from_json(cls, path) -> ConceptSet:
        """Concepts from JSON: {"n_samples": N, "concepts": {name: [sample indices] or
        {"samples": [...], "description": "..."}}}."""
        import json

        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict) or "n_samples" not in data or "concepts" not in data:
            raise ValueError(f'concepts file {path}: expected an object with "n_samples" and "concepts"')
        n, spec = int(data["n_samples"]), data["concepts"]
        names, desc, mask = list(spec), [], torch.zeros(int(data["n_samples"]), len(spec), dtype=torch.bool)
        for k, name in enumerate(names):
            item = spec[name]
            samples = item.get("samples", []) if isinstance(item, dict) else item
            desc.append(str(item.get("description", "")) if isinstance(item, dict) else "")
            idx = torch.as_tensor(samples, dtype=torch.long)
            if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
                raise ValueError(f"concepts file {path}: concept {name!r} lists samples outside [0, {n})")
            mask[idx, k] = True
        return cls(mask, names, desc)

    # --- properties -------------------------------------------------------------------------
    @property
    def bits(self) -> torch.Tensor:
        """[K, ceil(N / 64)] int64 packed masks (built on first use for from_ids)."""
        if self._bits is None:
            self._bits = self._source.bits()
        return self._bits

    @property
    def n_samples(self) -> int:
        return self._n

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    @property
    def descriptions(self) -> tuple[str, ...]:
        """One text per concept ('' where none was given)."""
        return self._descriptions

    @property
    def definitions(self) -> dict[str, str]:
        """{name: description} of the concepts that have one."""
        return {n: d for n, d in zip(self._names, self._descriptions, strict=True) if d}

    @property
    def device(self) -> torch.device:
        return self._source.device if self._bits is None else self._bits.device

    @property
    def counts(self) -> torch.Tensor:
        """[K] int64 number of samples in each concept."""
        if self._counts is None:
            self._counts = self._source.counts() if self._bits is None else popcount(self._bits)
        return self._counts

    @property
    def fractions(self) -> torch.Tensor:
        """[K] float64 share of samples in each concept."""
        return self.counts.double() / max(self._n, 1)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        shown = ", ".join(self._names[:5]) + (", ..." if len(self) > 5 else "")
        return f"ConceptSet({len(self)} concepts over {self._n} samples on {self.device}: {shown})"

    def index(self, name: str) -> int:
        """Position of a concept by name."""
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"concept {name!r} is not in this ConceptSet ({len(self)} concepts)") from None

    # --- views and copies -----------------------------------------------------------------
    def _positions(self, key) -> list[int]:
        k = len(self)
        if isinstance(key, str):
            return [self.index(key)]
        if isinstance(key, list | tuple) and all(type(v) is int or type(v) is str for v in key):
            # The common case (names or positions), without a call per item.
            out = []
            for v in key:
                if type(v) is str:
                    out.append(self.index(v))
                elif -k <= v < k:
                    out.append(v % k)
                else:
                    raise IndexError(f"concept index {v} is out of range for {k} concepts")
            return out
        if isinstance(key, int):
            if not -k <= key < k:
                raise IndexError(f"concept index {key} is out of range for {k} concepts")
            return [key % k]
        if isinstance(key, slice):
            return list(range(k))[key]
        if isinstance(key, torch.Tensor) and key.dtype == torch.bool:
            if key.shape != (k,):
                raise IndexError(f"boolean concept mask must have shape ({k},), got {tuple(key.shape)}")
            return key.nonzero().flatten().tolist()
        if isinstance(key, Iterable):
            return [p for item in key for p in self._positions(item if isinstance(item, str) else int(item))]
        raise TypeError(f"cannot index a ConceptSet with {type(key).__name__}")

    def __getitem__(self, key) -> ConceptSet:
        """Sub-set by position, slice, name, list of those, or boolean mask."""
        pos = self._positions(key)
        out = ConceptSet.__new__(ConceptSet)
        names, desc = [self._names[p] for p in pos], [self._descriptions[p] for p in pos]
        if self._bits is None:
            out._set(None, self._n, names, desc, self._source.select(pos))
            return out
        out._set(self._bits[torch.tensor(pos, dtype=torch.long, device=self.device)], self._n, names, desc)
        return out

    def select_samples(self, rows) -> ConceptSet:
        """The same concepts (names, descriptions) on the samples `rows`, in that order: e.g. a train / test
        split of one concept set, so both halves name the same concepts.

        Args:
            rows: [M] integer sample indices in [0, N) (repeats allowed), or an [N] boolean mask.

        Example:
            >>> cs.select_samples(torch.arange(0, cs.n_samples, 2)).n_samples  # the even samples
            150
        """
        from .validate import as_integers

        r = to_tensor(rows, "rows")
        if r.dtype == torch.bool:
            if r.shape != (self._n,):
                raise ValueError(f"rows: expected an [N] = [{self._n}] boolean mask, got shape {tuple(r.shape)}")
            r = r.nonzero().flatten()
        r = as_integers(r, "rows").long().flatten()
        if r.numel() and (int(r.min()) < 0 or int(r.max()) >= self._n):
            raise ValueError(f"rows: expected sample indices in [0, {self._n}), got {int(r.min())} to {int(r.max())}")
        out = ConceptSet.__new__(ConceptSet)
        names, desc = list(self._names), list(self._descriptions)
        if self._source is not None:  # from_ids: the codes of the chosen samples, the same tables
            from .ids import IdConcepts

            src = self._source
            out._set(None, r.numel(), names, desc, IdConcepts(src.ids[r.to(src.ids.device)], src.tables))
            return out
        mask = unpack_bits(self._bits, self._n)[:, r.to(self.device)]  # [K, M]
        out._set(pack_bits(mask), r.numel(), names, desc)
        return out

    def to(self, device) -> ConceptSet:
        """The same concepts on another device (a no-op when already there)."""
        device = torch.device(device)
        if device == self.device or (device.index is None and device.type == self.device.type):
            return self
        out = ConceptSet.__new__(ConceptSet)
        if self._bits is None:
            out._set(None, self._n, list(self._names), list(self._descriptions), self._source.to(device))
            return out
        out._set(self._bits.to(device), self._n, list(self._names), list(self._descriptions))
        return out

    def dense(self) -> torch.Tensor:
        """[N, K] bool matrix of all masks."""
        return unpack_bits(self.bits, self._n).t()

    def mask(self, concept: str | int) -> torch.Tensor:
        """[N] bool mask of one concept."""
        return unpack_bits(self.bits[self._positions(concept)[0]], self._n)

    def with_unions(self, unions: Mapping[str, Iterable[str | int]], descriptions=None) -> ConceptSet:
        """A new set with named unions (logical OR) of existing concepts appended.

        This is how WordNet hypernyms extend ImageNet's 1,000 classes to 1,473 concepts.

        Args:
            unions: new name -> members (names or positions of existing concepts), at least one each.
            descriptions: optional texts for the new concepts (mapping name -> text or sequence).

        Example:
            >>> cs = ConceptSet.from_classes([0, 1, 2], ["cat", "dog", "car"])
            >>> cs.with_unions({"animal": ["cat", "dog"]}).counts.tolist()
            [1, 1, 1, 2]
        """
        if not isinstance(unions, Mapping):
            raise TypeError(f"unions: expected a mapping name -> members, got {type(unions).__name__}")
        new_names = list(unions)
        validate_names(list(self._names) + new_names, len(self) + len(new_names), "names (existing + unions)")
        members_of = []
        for name, members in unions.items():
            if isinstance(members, str) or not isinstance(members, Iterable):
                raise TypeError(
                    f"unions[{name!r}]: expected a collection of concept names or positions, got {members!r}"
                )
            pos = self._positions(list(members))
            if not pos:
                raise ValueError(f"unions[{name!r}]: a union needs at least one member, got none")
            members_of.append(pos)
        bits = self.bits
        if members_of:
            # Every union's OR of member masks in one pass (ops.csr_gather_or).
            indptr = torch.tensor([0, *itertools.accumulate(len(pos) for pos in members_of)], device=self.device)
            members = torch.tensor([p for pos in members_of for p in pos], dtype=torch.int64, device=self.device)
            bits = torch.cat([bits, ops.csr_gather_or(bits, indptr, members)])
        new_desc = normalize_descriptions(descriptions, tuple(new_names))
        out = ConceptSet.__new__(ConceptSet)
        out._set(bits, self._n, list(self._names) + new_names, list(self._descriptions) + list(new_desc))
        return out

    def concat(self, other: ConceptSet) -> ConceptSet:
        """A new set with the concepts of `other` (over the same samples) appended."""
        if not isinstance(other, ConceptSet):
            raise TypeError(f"other: expected a ConceptSet, got {type(other).__name__}")
        if other.n_samples != self._n:
            raise ValueError(f"other: expected a concept set over {self._n} samples, got {other.n_samples}")
        return ConceptSet.from_bits(
            torch.cat([self.bits, other.bits.to(self.device)]),
            self._n,
            list(self._names + other.names),
            list(self._descriptions + other.descriptions),
        )

    def hash_into(self, h) -> None:
        """Feed the masks' content to a hashlib object h (checkpoint run keys): the packed masks, or for
        from_ids sets the codes and tables they come from (so no [K, N] masks are built to hash them)."""
        if self._source is not None:
            h.update(b"ids")
            for t in (self._source.ids, *self._source.tables):
                h.update(str(tuple(t.shape)).encode())
                h.update(t.cpu().contiguous().numpy().tobytes())
            return
        h.update(self.bits.cpu().contiguous().numpy().tobytes())

    def regions(self):
        """Samples grouped by concept vector (cached); see invert_fast.core.regions.Regions."""
        if self._regions is None:
            from .regions import compute_regions

            self._regions = self._source.regions() if self._bits is None else compute_regions(self._bits, self._n)
        return self._regions


def normalize_descriptions(descriptions, names: tuple[str, ...]) -> tuple[str, ...]:
    if descriptions is None:
        return ("",) * len(names)
    if isinstance(descriptions, Mapping):
        unknown = [k for k in descriptions if k not in names]
        if unknown:
            raise ValueError(f"descriptions: names not among the concepts: {unknown[:5]}")
        return tuple(str(descriptions.get(n, "")) for n in names)
    if isinstance(descriptions, str) or not isinstance(descriptions, Sequence):
        raise TypeError(f"descriptions: expected a sequence of strings or a mapping, got {type(descriptions).__name__}")
    if len(descriptions) != len(names):
        raise ValueError(f"descriptions: expected {len(names)} texts (one per concept), got {len(descriptions)}")
    return tuple(str(d) for d in descriptions)
