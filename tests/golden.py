"""Stored outputs of the search as the trust and exact-search issues left it (tests/data/golden.json),
and the cases that produce them; test_golden.py checks every later change reproduces them bit for bit.

    python -m tests.golden        # regenerate (only when the semantics change on purpose)
"""

import json
import sys
from pathlib import Path

import torch

import invert_fast as inv

PATH = Path(__file__).parent / "data" / "golden.json"


def problems():
    g = torch.Generator().manual_seed(20261127)
    n = 3000
    y = torch.randint(0, 60, (n,), generator=g)
    classes = inv.ConceptSet.from_classes(y, [f"class{i}" for i in range(60)])
    unions = {f"hyper{i}": torch.randperm(60, generator=g)[: 2 + i % 9].tolist() for i in range(25)}
    imagenet = classes.with_unions(unions)
    x = torch.randn(n, 24, generator=g).relu_().to(torch.bfloat16).float()  # ties: half exactly 0
    dens = 0.02 + 0.38 * torch.rand(30, generator=g)
    dense = inv.ConceptSet(torch.rand(n, 30, generator=g) < dens, [f"m{i}" for i in range(30)])
    return {"imagenet-like": (x, imagenet), "dense": (x[:, :12], dense)}


CONFIGS = [
    dict(L=3, B=10),
    dict(L=3, B=10, distinct=False),
    dict(L=3, B=6, mode="negative"),
    dict(L=3, B=5, limit_search=7),
    dict(L=3, B=5, limit_search=4, mode="negative", distinct=False, min_fraction=0.01),
    dict(L=2, B=8, search="exact"),
    dict(L=2, B=4, certify=True),
    dict(L=2, B=4, permutations=5, seed=3),
]


def outputs() -> dict:
    out = {}
    for pname, (x, cs) in problems().items():
        for i, cfg in enumerate(CONFIGS):
            if pname == "dense" and cfg.get("search") == "exact":
                cfg = {**cfg, "L": 2}
            res = inv.explain(x, cs, **cfg)
            out[f"{pname}/{i}"] = [
                [
                    [
                        str(e.formula),
                        e.length,
                        repr(e.auc),
                        repr(e.p_value),
                        repr(e.p_value_search),
                        repr(e.bound),
                        e.certified,
                    ]
                    for e in r
                ]
                for r in res
            ]
    return out


if __name__ == "__main__":
    PATH.parent.mkdir(exist_ok=True)
    PATH.write_text(json.dumps(outputs(), indent=0))
    print(f"wrote {PATH}", file=sys.stderr)
