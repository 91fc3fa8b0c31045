"""Network Dissection tally: invert_fast.network_dissection vs np.quantile + the vectorised torch tally."""

import baselines
import pytest
import torch

import invert_fast as inv


@pytest.mark.benchmark(group="dissection")
def test_dissection_invert_fast(benchmark, dissection_case):
    maps, masks = dissection_case
    diss = benchmark(inv.network_dissection, maps, masks)
    assert diss.intersection.shape == (maps.shape[1], masks.shape[1])


@pytest.mark.benchmark(group="dissection")
def test_dissection_torch_peer(benchmark, dissection_case):
    maps, masks = dissection_case
    diss = inv.network_dissection(maps, masks)

    def peer():
        th = torch.from_numpy(baselines.numpy_thresholds(maps.numpy(), 0.005))
        return baselines.torch_dissection_tally(maps, masks, th)

    inter, _ = benchmark(peer)
    assert torch.equal(inter, diss.intersection)
