"""Benchmark inputs of the published INVERT ImageNet shape, built reproducibly from a seed."""

import torch

import invert_fast as inv


def imagenet_like_concepts(n: int = 50_000, classes: int = 1000, unions: int = 473, seed: int = 0) -> inv.ConceptSet:
    """`classes` one-hot classes of n // classes samples each plus `unions` unions of 2-300 classes,
    the way WordNet hypernyms extend ImageNet's 1,000 classes to 1,473 concepts."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    y = y[torch.randperm(n, generator=g)]
    cs = inv.ConceptSet.from_classes(y, [f"class{i}" for i in range(classes)])
    sizes = torch.randint(2, min(300, classes) + 1, (unions,), generator=g)
    members = {f"hyper{i}": torch.randperm(classes, generator=g)[: int(s)].tolist() for i, s in enumerate(sizes)}
    return cs.with_unions(members)


def tied_activations(n: int, d: int, seed: int = 0) -> torch.Tensor:
    """float32 activations with ties: post-ReLU values (half of them exactly 0) rounded to bfloat16."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g).relu_().to(torch.bfloat16).float()


def dense_concepts(n: int, k: int, lo: float = 0.02, hi: float = 0.40, seed: int = 0) -> inv.ConceptSet:
    """k multi-label concepts with densities spread over [lo, hi]: nearly every sample its own region."""
    g = torch.Generator().manual_seed(seed)
    dens = lo + (hi - lo) * torch.rand(k, generator=g)
    return inv.ConceptSet(torch.rand(n, k, generator=g) < dens)
