"""explain (L = 3, B = 10) on both workloads, and the vectorised torch peer (baselines.torch_beam_search)."""

import baselines
import pytest
import torch

import invert_fast as inv

WORKLOADS = {"imagenet_case": "explain imagenet shape", "dense_case": "explain dense"}  # fixture -> group


def fresh_explain(x, labels, names):
    cs = inv.ConceptSet(labels, names)  # a fresh concept set: regions are part of the cost
    return inv.explain(x, cs, L=3, B=10)


def rank0(res) -> torch.Tensor:
    return torch.tensor([r[0].auc for r in res], dtype=torch.float64)


@pytest.mark.parametrize("case", WORKLOADS)
def test_explain(benchmark, request, case):
    x, cs = request.getfixturevalue(case)
    benchmark.group = WORKLOADS[case]
    res = benchmark(fresh_explain, x, cs.dense(), list(cs.names))
    assert len(res) == x.shape[1] and all(len(r) == 10 for r in res)


@pytest.mark.parametrize("case", WORKLOADS)
def test_explain_torch_peer(benchmark, request, case):
    x, cs = request.getfixturevalue(case)
    benchmark.group = WORKLOADS[case]
    best = benchmark(baselines.torch_beam_search, x, cs.dense())
    assert ((best - rank0(inv.explain(x, cs, L=3, B=10))).abs() <= 1e-6).double().mean() >= 0.99
