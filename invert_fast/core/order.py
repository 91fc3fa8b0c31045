"""Exact order of rational scores, and exact identity of masks, for the search's tie rules.

Scores are rationals num / den of exact integers (an AUC is (S2 - P(P+1)) / (2 P (N - P)), a
differentiability |S2 - P(N+1)| / (P (N - P))). Their float64 values are correctly rounded
divisions, so two different floats always order like the rationals; only equal floats can hide
different rationals (two fractions closer than an ulp). exact_subrank orders those exactly, so no
decision of the search ever rests on float noise.
"""

from __future__ import annotations

from fractions import Fraction

import torch

from .bits import pack_bits


def row_groups(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact grouping of equal rows, by stable sorts (much faster than torch.unique(dim=0) on the CPU).

    Args:
        rows: [M, C] int64.

    Returns:
        (group [M] int64: equal for equal rows, numbered 0, 1, ... in sorted order;
         sizes [number of groups] int64).
    """
    m = rows.shape[0]
    if m == 0:
        return torch.zeros(0, dtype=torch.int64, device=rows.device), torch.zeros(
            0, dtype=torch.int64, device=rows.device
        )
    perm = torch.arange(m, device=rows.device)
    for c in range(rows.shape[1] - 1, -1, -1):  # least significant column first
        perm = perm[torch.argsort(rows[perm, c], stable=True)]
    s = rows[perm]
    new = torch.ones(m, dtype=torch.bool, device=rows.device)
    new[1:] = (s[1:] != s[:-1]).any(1)
    ids = torch.cumsum(new.long(), 0) - 1
    group = torch.empty_like(ids)
    group[perm] = ids
    return group, torch.bincount(ids)


def float_key(values: torch.Tensor) -> torch.Tensor:
    """int64 bit pattern of float64 values, equal exactly when the values are equal (-0.0 as +0.0)."""
    return (values.double() + 0.0).contiguous().view(torch.int64)


def exact_subrank(group: torch.Tensor, num: torch.Tensor, den: torch.Tensor, descending: bool = True) -> torch.Tensor:
    """Rank of each entry's exact value num / den among the distinct values of its group.

    Args:
        group: [M, g] int64 group keys (e.g. neuron and float_key of the rounded value): only entries
            of one group are compared.
        num, den: [M] int64 numerators and positive denominators.
        descending: rank 0 is the largest value (else the smallest).

    Returns:
        [M] int64: 0 for the best value of the group, 1 for the next distinct value, ...; equal
        rationals share a rank. Groups whose entries are all equal (the usual case) are all 0.

    Example:
        >>> g = torch.zeros(3, 1, dtype=torch.long)
        >>> exact_subrank(g, torch.tensor([1, 2, 1]), torch.tensor([3, 6, 2])).tolist()
        [1, 1, 0]
    """
    m = num.numel()
    out = torch.zeros(m, dtype=torch.int64, device=num.device)
    if m == 0:
        return out
    g = torch.gcd(num, den)
    g = torch.where(g == 0, torch.ones_like(g), g)
    rn, rd = num // g, den // g
    # Cheap exit: sort by group; no group holds two different reduced fractions (the usual case).
    gid, _ = row_groups(group)
    order = torch.argsort(gid, stable=True)
    same = gid[order][1:] == gid[order][:-1]
    differ = same & ((rn[order][1:] != rn[order][:-1]) | (rd[order][1:] != rd[order][:-1]))
    if not bool(differ.any()):
        return out
    key = torch.cat([group, rn.unsqueeze(1), rd.unsqueeze(1)], 1)
    inv, _ = row_groups(key)
    first = torch.full((int(inv.max()) + 1,), -1, dtype=torch.int64, device=key.device)
    first[inv] = torch.arange(m, device=key.device)  # one representative entry per distinct row
    uniq = key[first]
    ginv = gid[first]
    gcount = torch.bincount(ginv)
    multi = (gcount[ginv] > 1).nonzero().flatten()
    groups: dict[int, list[tuple[Fraction, int]]] = {}
    for r, gi, row in zip(multi.tolist(), ginv[multi].tolist(), uniq[multi].tolist(), strict=True):
        groups.setdefault(gi, []).append((Fraction(row[-2], row[-1]), r))
    sub = torch.zeros(uniq.shape[0], dtype=torch.int64)
    for members in groups.values():
        members.sort(reverse=descending)  # distinct reduced fractions: no two compare equal
        for i, (_, r) in enumerate(members):
            sub[r] = i
    return sub.to(num.device)[inv]


def mask_ids(group: torch.Tensor, collide: torch.Tensor, words) -> torch.Tensor:
    """Ids that are equal exactly when two entries of one group have equal masks.

    Masks are grouped by a 64-bit hash of their words first, then every group is checked word for
    word against its first member; only if some hash collides are the full rows sorted.

    Args:
        group: [M] int64 group of each entry (e.g. the neuron); ids are compared within groups only.
        collide: [M] bool, entries whose mask may equal another's (e.g. equal rank sum and size);
            every other entry gets an id of its own without its mask being built.
        words: words(idx) -> [len(idx), W] int64 packed masks of the entries idx ([T] int64).

    Returns:
        [M] int64 ids (negative for the entries known to be alone).
    """
    m = group.numel()
    ids = -1 - torch.arange(m, dtype=torch.int64, device=group.device)
    idx = collide.nonzero().flatten()
    if idx.numel() == 0:
        return ids
    w = words(idx)
    mult = _HASH_MULT[: w.shape[1]].to(w.device) if w.shape[1] <= _HASH_MULT.numel() else None
    if mult is not None:
        h = (w * mult).sum(1)  # wraps modulo 2^64: a hash, verified below
        got, sizes = row_groups(torch.stack([group[idx], h], 1))
        first = torch.full((sizes.numel(),), 0, dtype=torch.int64, device=w.device)
        first[got.flip(0)] = torch.arange(got.numel() - 1, -1, -1, device=w.device)  # lowest member
        if bool((w == w[first[got]]).all()):
            ids[idx] = got
            return ids
    ids[idx] = row_groups(torch.cat([group[idx].unsqueeze(1), w], 1))[0]
    return ids


_HASH_MULT = torch.randint(-(2**62), 2**62, (1024,), generator=torch.Generator().manual_seed(12345)) | 1


def collisions(*keys: torch.Tensor) -> torch.Tensor:
    """[M] bool: entries whose tuple of keys ([M] int64 each) another entry shares."""
    group, sizes = row_groups(torch.stack(keys, 1))
    return sizes[group] > 1


def packed_rows(mask: torch.Tensor) -> torch.Tensor:
    """[..., G] bool region masks -> [..., ceil(G / 64)] int64 words (see bits.pack_bits)."""
    return pack_bits(mask)
