"""explain (L = 3, B = 10) on both workloads, and the vectorised torch peer (baselines.torch_beam_search)."""

import baselines
import pytest
import torch

import invert_fast as inv


def fresh_explain(x, labels, names):
    cs = inv.ConceptSet(labels, names)  # a fresh concept set: regions are part of the cost
    return inv.explain(x, cs, L=3, B=10)


def rank0(res) -> torch.Tensor:
    return torch.tensor([r[0].auc for r in res], dtype=torch.float64)


@pytest.mark.benchmark(group="explain imagenet shape")
def test_explain_imagenet(benchmark, imagenet_case):
    x, cs = imagenet_case
    res = benchmark(fresh_explain, x, cs.dense(), list(cs.names))
    assert len(res) == x.shape[1] and all(len(r) == 10 for r in res)


@pytest.mark.benchmark(group="explain imagenet shape")
def test_explain_imagenet_torch_peer(benchmark, imagenet_case):
    x, cs = imagenet_case
    best = benchmark(baselines.torch_beam_search, x, cs.dense())
    assert ((best - rank0(inv.explain(x, cs, L=3, B=10))).abs() <= 1e-6).double().mean() >= 0.99


@pytest.mark.benchmark(group="explain dense")
def test_explain_dense(benchmark, dense_case):
    x, cs = dense_case
    res = benchmark(fresh_explain, x, cs.dense(), list(cs.names))
    assert len(res) == x.shape[1] and all(len(r) == 10 for r in res)


@pytest.mark.benchmark(group="explain dense")
def test_explain_dense_torch_peer(benchmark, dense_case):
    x, cs = dense_case
    best = benchmark(baselines.torch_beam_search, x, cs.dense())
    assert ((best - rank0(inv.explain(x, cs, L=3, B=10))).abs() <= 1e-6).double().mean() >= 0.99
