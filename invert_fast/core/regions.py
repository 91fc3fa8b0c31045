"""Regions: the groups of samples that share one concept vector.

Every concept (and every formula of concepts) is constant on a region, so rank sums over any mask
follow from per-region rank sums. ImageNet's 1,473 concepts split 50,000 samples into only 1,000
regions; dense multi-label concepts may leave every sample its own region.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from .. import ops
from .bits import popcount, unpack_bits

# Odd 64-bit multipliers of the concept-vector hash (fixed: regions are numbered the same every run).
HASH_MULT = torch.randint(-(2**62), 2**62, (1 << 12,), generator=torch.Generator().manual_seed(2026)) | 1


def hash_multipliers(words: int) -> torch.Tensor:
    """[words] odd int64 multipliers: HASH_MULT, continued by the same seeded stream past its 4,096 words
    (262,144 concepts), so any number of concepts hashes and the first 4,096 never change."""
    if words <= HASH_MULT.numel():
        return HASH_MULT[:words]
    return torch.randint(-(2**62), 2**62, (words,), generator=torch.Generator().manual_seed(2026)) | 1


@dataclass(frozen=True)
class Regions:
    """Samples grouped by concept vector, with CSR maps for the two sums.

    Attributes:
        n_samples: N.
        region_of: [N] int64 region of each sample.
        sizes: [G] int64 samples per region.
        sample_indptr, sample_indices: CSR [G + 1], [N]: the samples of each region.
        concept_indptr, concept_regions: CSR [K + 1], [nnz]: the regions of each concept.
        identity: True when every sample is its own region and region g is sample g.

    Example:
        >>> r = ConceptSet.from_classes([0, 2, 1, 2], ["a", "b", "c"]).regions()
        >>> r.num_regions, r.sizes.tolist(), r.region_of.tolist()
        (3, [2, 1, 1], [2, 0, 1, 0])
    """

    n_samples: int
    region_of: torch.Tensor
    sizes: torch.Tensor
    sample_indptr: torch.Tensor
    sample_indices: torch.Tensor
    concept_indptr: torch.Tensor
    concept_regions: torch.Tensor
    identity: bool

    @property
    def num_regions(self) -> int:
        return int(self.sizes.numel())

    @property
    def num_concepts(self) -> int:
        return int(self.concept_indptr.numel()) - 1

    @property
    def density(self) -> float:
        """Share of (concept, region) pairs where the concept holds the region."""
        return self.concept_regions.numel() / max(1, self.num_concepts * self.num_regions)

    @functools.cached_property
    def membership_f64(self) -> torch.Tensor:
        """[K, G] float64 membership, cached for the dense products."""
        return self.membership(torch.float64)

    @functools.cached_property
    def membership_bool(self) -> torch.Tensor:
        """[K, G] bool membership, cached for building formula masks in region space."""
        return self.membership(torch.bool)

    def membership(self, dtype=torch.float64, block: int = 1 << 20) -> torch.Tensor:
        """[K, G] dense 0/1 matrix of which regions each concept holds (filled in blocks of about `block`
        entries of the concept CSR, so no [nnz] index temporaries)."""
        k, g = self.num_concepts, self.num_regions
        out = torch.zeros(k, g, dtype=dtype, device=self.sizes.device)
        flat, indptr = out.view(-1), self.concept_indptr.tolist()
        k0 = 0
        while k0 < k:
            k1 = k0 + 1
            while k1 < k and indptr[k1 + 1] - indptr[k0] <= block:
                k1 += 1
            lo, hi = indptr[k0], indptr[k1]
            rows = torch.repeat_interleave(
                torch.arange(k0, k1, device=out.device),
                self.concept_indptr[k0 + 1 : k1 + 1] - self.concept_indptr[k0:k1],
            )
            flat[rows * g + self.concept_regions[lo:hi]] = 1
            k0 = k1
        return out


def compute_regions(bits: torch.Tensor, n: int, chunk_elems: int = 1 << 23) -> Regions:
    """Group samples by their concept vector.

    Each sample's concept vector, packed (ops.bits_transpose: [N, ceil(K / 64)]), is hashed to one
    int64; samples are grouped by hash, and every group is checked word for word against its first
    sample, so the grouping is exact (on a hash collision the rows are sorted instead).

    Args:
        bits: [K, W] int64 packed concept masks.
        n: number of samples N.
        chunk_elems: bound on the temporary [concepts, regions] bool blocks.

    Returns:
        Regions on bits' device.

    Example:
        >>> compute_regions(concepts.bits, concepts.n_samples).num_regions   # what ConceptSet.regions() caches
    """
    k = bits.shape[0]
    if k == 0 or n == 0:
        ids = torch.zeros(n, dtype=torch.int64, device=bits.device)
        return regions_from_groups(ids, n, k, None, lambda: bits, chunk_elems)
    rows = ops.bits_transpose(bits, n)  # [N, J]
    return regions_from_groups(group_rows(rows), n, k, lambda reps: rows[reps], lambda: bits, chunk_elems)


def group_rows(rows: torch.Tensor) -> torch.Tensor:
    """[M] int64 group of each packed concept vector of rows [M, J], numbered by ascending hash (so two
    collections holding the same distinct vectors number them alike), exact on hash collisions."""
    mult = hash_multipliers(rows.shape[1]).to(rows.device)
    h = (rows * mult).sum(1)  # wraps modulo 2^64
    _, ids = torch.unique(h, return_inverse=True)
    m = rows.shape[0]
    first = torch.zeros(int(ids.max()) + 1, dtype=torch.int64, device=rows.device)
    first[ids.flip(0)] = torch.arange(m - 1, -1, -1, device=rows.device)  # each group's first member
    if not bool((rows == rows[first[ids]]).all()):
        _, ids = torch.unique(rows, dim=0, return_inverse=True)  # a hash collision: exact, slower
    return ids


def regions_from_groups(ids: torch.Tensor, n: int, k: int, rep_rows, bits, chunk_elems: int = 1 << 23) -> Regions:
    """Regions from the group of every sample and the groups' concept vectors.

    Args:
        ids: [N] int64 group of each sample, numbered 0 .. G - 1 (group_rows).
        n, k: samples N and concepts K.
        rep_rows: rep_rows(samples [G]) -> [G, ceil(K / 64)] packed concept vectors of those samples.
        bits: bits() -> [K, W] packed concept masks; called only where every sample is its own region.
        chunk_elems: bound on the temporary [concepts, regions] bool blocks.
    """
    device = ids.device
    g = int(ids.max()) + 1 if n else 0
    identity = g == n
    if identity:
        # Every sample alone: number regions as samples so per-region sums are the ranks themselves.
        ids = torch.arange(n, device=device)
    sizes = torch.bincount(ids, minlength=g)
    sample_indices = torch.argsort(ids, stable=True)
    sample_indptr = torch.zeros(g + 1, dtype=torch.int64, device=device)
    sample_indptr[1:] = torch.cumsum(sizes, 0)
    reps = sample_indices[sample_indptr[:-1]]  # first sample of each region

    # Concept -> regions CSR: the representatives' concept vectors transposed back to packed concept
    # masks over regions ([K, ceil(G / 64)]), unpacked in blocks of concepts to bound the [K, G] temporary.
    region_bits = bits() if identity or k == 0 else ops.bits_transpose(rep_rows(reps), k)
    step = max(1, chunk_elems // max(g, 1))
    concept_indptr = torch.zeros(k + 1, dtype=torch.int64, device=device)
    if k:
        concept_indptr[1:] = torch.cumsum(popcount(region_bits), 0)
    ends = concept_indptr.tolist()
    concept_regions = torch.empty(ends[-1], dtype=torch.int64, device=device)  # filled in place, block by block
    for k0 in range(0, k, step):
        k1 = min(k, k0 + step)
        member = unpack_bits(region_bits[k0:k1], g)  # [c, G]
        concept_regions[ends[k0] : ends[k1]] = member.nonzero()[:, 1]
    return Regions(n, ids, sizes, sample_indptr, sample_indices, concept_indptr, concept_regions, identity)
