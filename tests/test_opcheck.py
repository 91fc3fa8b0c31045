"""Every torch.ops.invert_fast operator passes torch.library.opcheck (schema, fake kernel, dispatch)
on the CPU (and CUDA where a GPU exists), and torch.compile(fullgraph=True) traces the AUROC core."""

import pytest
import torch

import invert_fast as inv
from invert_fast import ops
from invert_fast.core.order import packed_rows

from .helpers import CUDA, random_labels, tied

ops.load()
NOT_TENSOR_OPS = {"built_with_cuda"}  # no tensor arguments: nothing for opcheck to trace


def _regions():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 6, (90,), generator=g)
    cs = inv.ConceptSet.from_classes(y, [f"k{i}" for i in range(6)]).with_unions({"u": [0, 1], "v": [2, 3, 4]})
    from invert_fast.core.space import RegionSpace

    return RegionSpace(cs, "sparse")


def samples(device):
    """One entry per operator: the arguments opcheck runs it with."""
    g = torch.Generator().manual_seed(1)
    space = _regions()
    k, G = space.k, space.regions.num_regions
    x = tied((90, 3), levels=7)
    ranks = ops.rank_doubled(x)
    rs = ops.csr_gather_sum(ranks, space.regions.sample_indptr, space.regions.sample_indices)
    w = rs.long() * 2**space.shift + space.regions.sizes.unsqueeze(1)
    mask = torch.rand(3, 2, G, generator=g) < 0.4
    xs = torch.einsum("dbg,gd,gk->dbk", mask.long(), w, space.member_t.long())
    conc = ops.csr_gather_sum(rs, space.regions.concept_indptr, space.regions.concept_regions).t().contiguous()
    maps = torch.rand(4, 3, 5, 5, generator=g)
    texts = b"ab~a~b"
    atom_text = torch.tensor(list(texts), dtype=torch.uint8)
    atom_offsets = torch.tensor([0, 1, 2, 4, 6])
    hist = torch.tensor([[0, 1 * 4 + 1, -1], [2, -1, -1], [0, 2 * 4 + 3, -1]])
    pair = ops.pair_sums(w, *space.region_csr(), k)
    t = lambda v: v.to(device)  # noqa: E731
    return {
        "rank_doubled": (t(x),),
        "rank_doubled_ties": (t(x),),
        "rank_region_sums": (t(x), t(space.regions.region_of), space.regions.num_regions),
        "sparse_rank_doubled": (
            t(torch.tensor([0, 3, 3, 7])), t(torch.tensor([1, 4, 80, 0, 2, 3, 89])),
            t(torch.tensor([0.5, -1.0, 0.5, 2.0, 0.0, -0.0, 2.0])), 90, 0,
        ),
        "csr_gather_sum": (t(ranks), t(space.regions.sample_indptr), t(space.regions.sample_indices)),
        "weighted_row_sums": (t(torch.tensor([0, 2, 3])), t(torch.tensor([0, 1, 1])), t(torch.tensor([5, 7, 9])), t(space.member_t)),
        "beam_step_select": (
            t(xs), t(torch.empty(0, dtype=torch.int64)), space.shift, t(torch.randint(0, 9000, (3, 2), generator=g)),
            t(torch.randint(1, 40, (3, 2), generator=g)), t(torch.ones(3, 2, dtype=torch.bool)), t(conc),
            t(space.counts), t(torch.ones(3, 2 * k, dtype=torch.bool)), 90, 1, 45, 1.0, 4, t(torch.full((3,), 90 * 91)), 0,
            t(torch.tensor([[1, 2], [2, 2], [1, 3]])), 0.01, 3,
        ),
        "pair_step_select": (t(pair), t(torch.empty(0, dtype=torch.int64)), space.shift, t(conc), t(space.counts), 90, 1, 45, 1.0, 5, t(torch.full((3,), 90 * 91)), 0),
        "pair_sums": (t(w), t(space.region_csr()[0]), t(space.region_csr()[1]), k),
        "masked_row_sums": (t(packed_rows(mask)), t(mask.sum(-1) * 2 > G), t(w), t(space.member_t)),
        "masked_csr_sums": (t(packed_rows(mask)), t(mask.sum(-1) * 2 > G), t(w), *(t(v) for v in space.region_csr()), k),
        "csr_gather_or": (t(space.member_t.long()), t(torch.tensor([0, 2, 3])), t(torch.tensor([0, 4, 2]))),
        "bits_transpose": (t(torch.randint(-(2**62), 2**62, (70, 2), generator=g)), 100),
        "select_step": (
            torch.tensor([0, 0, 1, 1]), torch.tensor([0, 2 * 4 * 2 + 1, 3, 2 * 4 * 2]), torch.tensor([40, 50, 30, 44]),
            torch.tensor([3, 4, 2, 3]), torch.tensor([[[0, -1], [3, -1]]]), torch.ones(1, 2, dtype=torch.int64),
            torch.tensor([[[5], [9]]]), torch.tensor([[1], [2], [4], [8]]), atom_text, atom_offsets, 2, 10, 1.0, 2,
            True, 2, torch.tensor([55, 40]), 1, 0.002,
        ),
        "and_popcount": (t(torch.randint(-(2**40), 2**40, (5, 3, 2), generator=g)), t(torch.randint(-(2**40), 2**40, (5, 4, 2), generator=g))),
        "upsample_threshold": (t(maps), t(torch.full((3,), 0.7)), 9, 11),
        "top_values": (t(maps), t(torch.zeros(3, 0)), 7),
        "region_moments": (t(torch.nan_to_num(x, posinf=3.0, neginf=-3.0)), t(space.regions.region_of), space.regions.num_regions, t(torch.tensor([3.0, 1.0, 2.0], dtype=torch.float64)), False),
        "formula_texts": (hist, atom_text, atom_offsets),
        "select_labels": (
            torch.tensor([0, 0, 1]), torch.tensor([40, 50, 30]), torch.tensor([3, 4, 2]), hist,
            torch.tensor([[1], [2], [3]]), atom_text, atom_offsets, 10, 1.0, 2, True, 2, torch.tensor([110, 110]), 0,
        ),
    }  # fmt: skip


CPU_ONLY = {
    "formula_texts",
    "select_labels",
    "select_step",
}  # host work on the few gathered candidates (see ops.select_labels)


def test_every_operator_has_an_opcheck_entry():
    # opcheck's test_faketensor then checks each operator's fake kernel (invert_fast/ops/fake.py).
    names = {
        name.split("::")[1].split(".")[0]
        for name in torch._C._dispatch_get_all_op_names()
        if name.startswith("invert_fast::")
    }
    assert names - NOT_TENSOR_OPS == set(samples("cpu")), "every operator needs an opcheck entry here"


@pytest.mark.parametrize(
    "device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason="needs a GPU"))]
)
@pytest.mark.parametrize("name", sorted(samples("cpu")))
def test_opcheck(name, device):
    if device == "cuda" and name in CPU_ONLY:
        pytest.skip("a host operator")
    op = getattr(torch.ops.invert_fast, name)
    torch.library.opcheck(op, samples(device)[name])


def test_compile_fullgraph_auroc_core_equals_eager():
    space = _regions()
    x = tied((90, 5), levels=9)

    def core(acts):
        ranks = inv.rank_doubled(acts)
        per_region = inv.csr_gather_sum(ranks, space.regions.sample_indptr, space.regions.sample_indices)
        return inv.csr_gather_sum(per_region, space.regions.concept_indptr, space.regions.concept_regions)

    compiled = torch.compile(core, fullgraph=True)
    assert torch.equal(compiled(x), core(x))
    y = random_labels(90, 4)
    assert torch.equal(compiled(x * 2), core(x * 2)) and y.shape == (90, 4)


@pytest.mark.skipif(not CUDA, reason="needs a GPU")
@pytest.mark.parametrize("name", sorted(samples("cpu")))
def test_cuda_twin_bit_identical_to_cpu(name):
    # Every operator with a CUDA kernel returns the CPU kernel's outputs bit for bit on the same input.
    if name in CPU_ONLY:
        pytest.skip("a host operator")
    op = getattr(torch.ops.invert_fast, name)
    want, got = op(*samples("cpu")[name]), op(*samples("cuda")[name])
    want, got = (want,) if isinstance(want, torch.Tensor) else want, (got,) if isinstance(got, torch.Tensor) else got
    assert len(want) == len(got)
    for a, b in zip(want, got, strict=True):
        assert torch.equal(a, b.cpu()), name
