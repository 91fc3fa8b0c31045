"""The search reproduces, bit for bit, the outputs stored when its semantics were last set (distinct
labels, exact tie rules, exact search, certify, permutations): speed work must not change a label.

Formulas, lengths, AUCs, p_value_search, bounds and certified flags are compared exactly. The
Mann-Whitney p-value is the one float computed through libm-style special functions (log_ndtr, exp;
core/stats.py), whose last bits depend on the CPU and the SIMD path torch picks: the file was written
on an AMD EPYC, and an AVX-512 Xeon gives p-values up to 1.8e-15 apart (relative, 8 ulp) with every
other field identical. p-values are therefore compared to 1e-13 relative, far below any printed digit.
"""

import json
import math

from .golden import PATH, outputs

P_VALUE = 3  # column of the p-value in a stored row (tests/golden.py)


def same_row(a, b) -> bool:
    exact = [v for i, v in enumerate(a) if i != P_VALUE] == [v for i, v in enumerate(b) if i != P_VALUE]
    pa, pb = float(a[P_VALUE]), float(b[P_VALUE])
    close = (math.isnan(pa) and math.isnan(pb)) or math.isclose(pa, pb, rel_tol=1e-13, abs_tol=0.0)
    return exact and close


def test_outputs_equal_the_stored_ones():
    stored = json.loads(PATH.read_text())
    now = outputs()
    assert now.keys() == stored.keys()
    for key in stored:
        assert len(now[key]) == len(stored[key]), key
        for n, (got, want) in enumerate(zip(now[key], stored[key], strict=True)):
            assert len(got) == len(want), f"{key} neuron {n}: {len(got)} labels, stored {len(want)}"
            bad = [(g, w) for g, w in zip(got, want, strict=True) if not same_row(g, w)]
            assert not bad, f"{key} neuron {n} differs from tests/data/golden.json: {bad[0]}"
