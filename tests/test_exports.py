"""Exports to Neuronpedia's explanation import and delphi's explanations folder, read back."""

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import invert_fast as inv
from invert_fast.apps.cli import main
from invert_fast.io.exports import export_delphi, export_neuronpedia


@pytest.fixture(scope="module")
def res():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 7, generator=g)
    y = torch.rand(300, 5, generator=g) < 0.3
    x[:, 2] += 3 * y[:, 1]
    return inv.explain(x, inv.ConceptSet(y, ["cat", "cat2", "dog", "sea side", "tree"]), L=2, B=3, layer="6-mlp")


def read_rows(files):
    return [json.loads(line) for f in files for line in gzip.decompress(f.read_bytes()).decode().splitlines()]


def neuronpedia_tables() -> dict[str, dict[str, tuple[str, bool, bool]]]:
    """{table: {column: (SQL type, NOT NULL, has DEFAULT)}} from Neuronpedia's own migrations (the fixture
    tests/data/neuronpedia_tables.sql, copied from its repository, not written from our rows)."""
    text = (Path(__file__).parent / "data" / "neuronpedia_tables.sql").read_text()
    tables = {}
    for name, body in re.findall(r'CREATE TABLE "(\w+)" \((.*?)\n\);', text, re.S):
        cols = {}
        for line in body.splitlines():
            m = re.match(r'\s+"(\w+)" ([A-Z]+(?: PRECISION)?)', line)
            if m:
                cols[m.group(1)] = (m.group(2), "NOT NULL" in line, "DEFAULT" in line)
        tables[name] = cols
    return tables


JSON_TYPES = {"TEXT": (str,), "DOUBLE PRECISION": (float, int), "INTEGER": (int,), "BOOLEAN": (bool,)}


def check_import(lines: list[dict], table: str, tables) -> None:
    """What Neuronpedia's importer (lib/db/import.ts importJsonlString) does with a file of rows: the first
    line's keys that are columns go into INSERT ... jsonb_to_recordset; everything else is dropped, and a
    NOT NULL column without a default that is missing fails the insert."""
    cols = tables[table]
    keys = list(lines[0])
    assert set(keys) <= set(cols), f"{table}: keys the importer would drop: {set(keys) - set(cols)}"
    required = {c for c, (_, not_null, default) in cols.items() if not_null and not default}
    assert required <= set(keys), f"{table}: NOT NULL columns missing: {required - set(keys)}"
    for row in lines:
        assert list(row) == keys  # the importer reads every line with the first line's columns
        for k, v in row.items():
            sql, not_null, _ = cols[k]
            if v is None:
                assert not not_null, (table, k)
            else:
                assert isinstance(v, JSON_TYPES[sql]) and not (sql != "BOOLEAN" and isinstance(v, bool)), (table, k, v)


def test_neuronpedia_files_are_what_its_importer_reads(res, tmp_path):
    tables = neuronpedia_tables()
    assert {"Explanation", "ExplanationScore", "ExplanationType"} <= set(tables)
    assert tables["Explanation"]["authorId"] == ("TEXT", True, False)  # the fixture parses as the schema says
    files = export_neuronpedia(res, tmp_path / "np", model_id="smollm2-135m", author_id="u1", batch=4)
    names = [f.relative_to(tmp_path / "np").as_posix() for f in files]
    assert names == ["explanations/batch-0.jsonl.gz", "explanations/batch-1.jsonl.gz",
                     "explanation_scores/batch-0.jsonl.gz", "explanation_scores/batch-1.jsonl.gz",
                     "config/explanation_type.jsonl", "config/explanation_model_type.jsonl",
                     "config/explanation_score_type.jsonl", "config/explanation_score_model.jsonl"]  # fmt: skip
    expl = [read_rows([f]) for f in files[:2]]
    scores = [read_rows([f]) for f in files[2:4]]
    config = {f.stem: [json.loads(x) for x in f.read_text().splitlines()] for f in files[4:]}
    for part in expl:
        check_import(part, "Explanation", tables)
    for part in scores:
        check_import(part, "ExplanationScore", tables)
    table_of = {"explanation_type": "ExplanationType", "explanation_model_type": "ExplanationModelType",
                "explanation_score_type": "ExplanationScoreType", "explanation_score_model": "ExplanationScoreModel"}  # fmt: skip
    for name, lines in config.items():
        check_import(lines, table_of[name], tables)
    rows = [r for part in expl for r in part]
    assert len(rows) == 7 and [r["index"] for r in rows] == [str(d) for d in range(7)]
    ids = {r["id"] for r in rows}
    assert len(ids) == 7
    by_id = {r["id"]: d for d, r in enumerate(rows)}
    # Foreign keys inside the export: scores -> explanations, type / model names -> config rows.
    names_of = {k: {r["name"] for r in v} for k, v in config.items()}
    for r in rows:
        assert r["typeName"] in names_of["explanation_type"] and r["authorId"] == "u1"
        assert r["explanationModelName"] in names_of["explanation_model_type"]
    all_scores = [s for part in scores for s in part]
    assert [len(p) for p in scores] == [4, 3]  # one AUC score per explanation (no permutations: no p-value rows)
    for s in all_scores:
        e = res[by_id[s["explanationId"]]][0]
        assert s["explanationScoreTypeName"] == "invert_auc" and s["value"] == e.auc  # the exact AUROC
        assert s["explanationScoreModelName"] in names_of["explanation_score_model"]
        details = json.loads(s["jsonDetails"])
        assert details == {"pValue": e.p_value, "conceptFraction": e.concept_fraction, "rank": 0, "length": e.length}
    for d, r in enumerate(rows):
        assert r["modelId"] == "smollm2-135m" and r["layer"] == "6-mlp" and r["description"] == str(res[d][0].formula)
    third = read_rows(export_neuronpedia(res, tmp_path / "np3", "m", "u1", source="s", ranks=3)[:1])
    assert [r["index"] for r in third[:4]] == ["0", "0", "0", "1"] and len({r["id"] for r in third}) == len(third)
    again = export_neuronpedia(res, tmp_path / "np2", model_id="smollm2-135m", author_id="u1", batch=2)  # 4 + 4
    again = export_neuronpedia(res, tmp_path / "np2", model_id="smollm2-135m", author_id="u1", batch=4)  # 2 + 2
    assert sorted(f.name for f in (tmp_path / "np2" / "explanation_scores").iterdir()) == ["batch-0.jsonl.gz",
                                                                                          "batch-1.jsonl.gz"]  # fmt: skip
    assert [f.read_bytes() for f in again] == [f.read_bytes() for f in files]  # byte-identical reruns, same ids
    with pytest.raises(ValueError, match="model_id: expected Neuronpedia's model id"):
        export_neuronpedia(res, tmp_path / "x", model_id="", author_id="u1")
    with pytest.raises(ValueError, match="author_id: expected the importing user's id, got ''"):
        export_neuronpedia(res, tmp_path / "x", model_id="m", author_id="")


def test_neuronpedia_p_value_rows_where_permutations_ran(tmp_path):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(200, 3, generator=g), torch.rand(200, 2, generator=g) < 0.4
    x[:, 0] += 2 * y[:, 0]
    res = inv.explain(x, inv.ConceptSet(y, ["a", "b"]), L=1, B=1, permutations=9, layer="l")
    files = export_neuronpedia(res, tmp_path, "m", "u1")
    scores = read_rows([f for f in files if f.parent.name == "explanation_scores"])
    p = [s for s in scores if s["explanationScoreTypeName"] == "invert_p_value_search"]
    assert len(scores) == 6 and [s["value"] for s in p] == [res[d][0].p_value_search for d in range(3)]
    check_import(p, "ExplanationScore", neuronpedia_tables())


def test_delphi_explanations_read_back(res, tmp_path):
    files = export_delphi(res, tmp_path / "ex", hook="layers.6")
    assert sorted(f.name for f in files) == sorted(f"layers.6_latent{d}.txt" for d in range(7))
    for d in range(7):
        text = (tmp_path / "ex" / f"layers.6_latent{d}.txt").read_bytes()
        assert json.loads(text) == str(res[d][0].formula)  # delphi reads it with orjson.loads
    with pytest.raises(ValueError, match="hook: expected delphi's hook point name"):
        export_delphi(res, tmp_path / "ex", hook="a/b")


def test_cli_exports_both_formats(tmp_path, capsys):
    g = np.random.default_rng(0)
    np.save(tmp_path / "a.npy", g.random((200, 4)).astype(np.float32))
    np.save(tmp_path / "y.npy", (g.random((200, 3)) < 0.4).astype(np.int8))
    base = ["explain", "--activations", str(tmp_path / "a.npy"), "--labels", str(tmp_path / "y.npy"), "-L", "2",
            "-B", "2", "--quiet", "--out", str(tmp_path / "l.csv"), "--layer", "3-mlp"]  # fmt: skip
    assert main([*base, "--export", "neuronpedia", str(tmp_path / "np"), "--model-id", "m1", "--author-id", "u1",
                 "--export", "delphi", str(tmp_path / "dl")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "exported 6 neuronpedia file(s)" in out and "exported 4 delphi file(s)" in out
    (labels,) = inv.read_csv(tmp_path / "l.csv")
    rows = read_rows(sorted((tmp_path / "np" / "explanations").glob("*.gz")))
    assert [(r["index"], r["description"], r["authorId"]) for r in rows] == [
        (str(d), str(labels[d][0].formula), "u1") for d in range(4)
    ]
    assert json.loads((tmp_path / "dl" / "3-mlp_latent2.txt").read_text()) == str(labels[2][0].formula)
    rc = main([*base, "--export", "neuronpedia", str(tmp_path / "np")])
    assert rc == 2 and "--export neuronpedia needs Neuronpedia's model id" in capsys.readouterr().err
    rc = main([*base, "--export", "neuronpedia", str(tmp_path / "np"), "--model-id", "m1"])
    assert rc == 2 and "author-id: --export neuronpedia needs the id of the Neuronpedia user" in capsys.readouterr().err
    rc = main([*base, "--export", "html", str(tmp_path / "np")])
    assert rc == 2 and "export: expected a format of ('neuronpedia', 'delphi'), got 'html'" in capsys.readouterr().err
