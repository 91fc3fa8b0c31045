"""The search reproduces, bit for bit, the outputs stored when its semantics were last set (distinct
labels, exact tie rules, exact search, certify, permutations): speed work must not change a label."""

import json

from .golden import PATH, outputs


def test_outputs_equal_the_stored_ones():
    stored = json.loads(PATH.read_text())
    now = outputs()
    assert now.keys() == stored.keys()
    for key in stored:
        assert now[key] == stored[key], f"{key} differs from tests/data/golden.json"
