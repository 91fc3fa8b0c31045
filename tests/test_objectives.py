"""The objective's one home (core/objectives.py): AUROC's rational, score, mirror and exact comparison
against Python fractions and the plain definition, and the one-line error for an unknown objective."""

from fractions import Fraction

import pytest
import torch

from invert_fast.core.objectives import AUROC, OBJECTIVES, objective


def test_auroc_is_the_rational_of_rank_sums_compared_exactly():
    g = torch.Generator().manual_seed(0)
    n = 50
    for _ in range(200):
        x = torch.randint(0, 6, (n,), generator=g).double()  # many ties
        ma, mb = torch.rand(n, generator=g) < 0.3, torch.rand(n, generator=g) < 0.6
        if not (0 < int(ma.sum()) < n and 0 < int(mb.sum()) < n):
            continue
        r2 = torch.tensor([float(2 * (x < v).sum() + (x == v).sum() + 1) for v in x])  # 2 x mid-rank
        sa, pa, sb, pb = int(r2[ma].sum()), int(ma.sum()), int(r2[mb].sum()), int(mb.sum())

        def plain(m, x=x):  # P(inside > outside) + P(tie) / 2, by pairs
            ins, out = x[m], x[~m]
            return Fraction(int((ins[:, None] > out[None]).sum()) * 2 + int((ins[:, None] == out[None]).sum()),
                            2 * len(ins) * len(out))  # fmt: skip

        fa, fb = plain(ma), plain(mb)
        num, den = AUROC.rational(sa, pa, n)
        assert Fraction(num, den) == fa
        assert AUROC.score(torch.tensor([sa]), torch.tensor([pa]), n).item() == float(fa)
        assert AUROC.compare(sa, pa, sb, pb, n) == (fa > fb) - (fa < fb)
        assert Fraction(*AUROC.rational(AUROC.mirrored(sa, pa, n), pa, n)) == 1 - fa
    assert AUROC.score(torch.tensor([0, 7]), torch.tensor([0, 3]), 3).isnan().all()  # P = 0 and P = N


def test_the_table_and_an_unknown_objective():
    assert OBJECTIVES == {"auroc": AUROC} and objective("auroc") is AUROC
    with pytest.raises(ValueError, match=r"^objective: expected one of \['auroc'\], got 'iou'$"):
        objective("iou")
