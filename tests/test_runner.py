"""Checkpointed, resumable and distributed explain: same output bytes as one uninterrupted process."""

import math
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import invert_fast as inv
from invert_fast.io.runner import explain_to_file


def problem(n=400, d=37, k=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(n, k, generator=g) < 0.2
    x = torch.randint(0, 9, (n, d), generator=g).float() + 2 * y[:, :1].float()
    return x, y


def test_chunks_and_checkpoints_match_plain_explain(tmp_path):
    x, y = problem()
    plain = inv.explain(x, y, L=3, B=4, adjust="bh")
    plain.to_csv(tmp_path / "plain.csv")
    explain_to_file(x, y, tmp_path / "ck.csv", checkpoint=tmp_path / "ck", chunk=5, L=3, B=4, adjust="bh")
    assert (tmp_path / "ck.csv").read_bytes() == (tmp_path / "plain.csv").read_bytes()
    assert len(list((tmp_path / "ck").glob("chunk_*.json"))) == 8
    # resume: drop two chunks, the others must be reused untouched
    files = sorted((tmp_path / "ck").glob("chunk_*.json"))
    stamps = {f: f.stat().st_mtime_ns for f in files[2:]}
    for f in files[:2]:
        f.unlink()
    explain_to_file(x, y, tmp_path / "again.csv", checkpoint=tmp_path / "ck", chunk=5, L=3, B=4, adjust="bh")
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "plain.csv").read_bytes()
    assert all(f.stat().st_mtime_ns == t for f, t in stamps.items())
    with pytest.raises(ValueError, match="checkpoint: .* holds a run with other inputs or parameters"):
        explain_to_file(x, y, tmp_path / "other.csv", checkpoint=tmp_path / "ck", chunk=5, L=2, B=4)


def _ckpt_run(x, y, tmp_path, out="out.csv", ckpt="ck"):
    return explain_to_file(x, y, tmp_path / out, checkpoint=tmp_path / ckpt, chunk=5, L=2, B=3)


@pytest.mark.parametrize("suffix", [".npy", ".pt"])
@pytest.mark.parametrize("change", ["one value", "rows replaced", "rows swapped"])
def test_changed_activations_are_never_reused(tmp_path, suffix, change):
    x, y = problem()
    path = tmp_path / f"a{suffix}"
    save = (lambda a: np.save(path, a.numpy())) if suffix == ".npy" else (lambda a: torch.save(a, path))
    save(x)
    _ckpt_run(inv.NeuronStore(path), y, tmp_path)
    x2 = x.clone()
    if change == "one value":
        x2[40, 10] += 5
    elif change == "rows replaced":
        x2[1:78] = torch.randint(0, 9, (77, x.shape[1]), generator=torch.Generator().manual_seed(9)).float()
    else:
        x2[[3, 200]] = x2[[200, 3]]
    save(x2)
    with pytest.warns(UserWarning, match="computed from other activations"):
        _ckpt_run(inv.NeuronStore(path), y, tmp_path, out="again.csv")
    inv.explain(x2, y, L=2, B=3).to_csv(tmp_path / "fresh.csv")
    assert (tmp_path / "again.csv").read_bytes() == (tmp_path / "fresh.csv").read_bytes()


def _edit_json(path, edit):
    import json

    saved = json.loads(path.read_text())
    edit(saved)
    path.write_text(json.dumps(saved))


@pytest.mark.parametrize(
    "tamper, reason",
    [
        ("rows deleted", "fails its checksum"),
        ("rows deleted, checksum redone", "holds 4 neurons, expected 5"),
        ("copied over another", "belongs elsewhere: chunk 3 .*start 15"),
        ("auc digit edited", "fails its checksum"),
        ("formula edited", "fails its checksum"),
        ("input hash edited, checksum redone", "was computed from other activations"),
        ("bit flip", "not a readable checkpoint chunk|fails its checksum"),
        ("truncated", "not a readable checkpoint chunk"),
    ],
)
def test_tampered_chunks_are_recomputed(tmp_path, tamper, reason):
    from invert_fast.io.checkpoint import _checksum

    x, y = problem()
    _ckpt_run(x, y, tmp_path, out="ref.csv")
    ck = tmp_path / "ck"
    target = ck / "chunk_000002.json"

    def redo(saved):
        saved["checksum"] = _checksum(saved["body"])

    if tamper == "rows deleted":
        _edit_json(target, lambda s: s["body"]["rows"].pop(1))
    elif tamper == "rows deleted, checksum redone":
        _edit_json(target, lambda s: (s["body"]["rows"].pop(1), redo(s)))
    elif tamper == "copied over another":
        target.write_bytes((ck / "chunk_000003.json").read_bytes())
    elif tamper == "auc digit edited":
        _edit_json(target, lambda s: s["body"]["rows"][0][0].update(auc=s["body"]["rows"][0][0]["auc"] * 0.9))
    elif tamper == "formula edited":
        _edit_json(target, lambda s: s["body"]["rows"][0][0].update(formula="c0 | c1"))
    elif tamper == "input hash edited, checksum redone":

        def edit(s):
            s["body"]["input"] = "0" * 64
            redo(s)

        _edit_json(target, edit)
    elif tamper == "bit flip":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x10
        target.write_bytes(bytes(data))
    else:
        target.write_bytes(target.read_bytes()[:100])
    with pytest.warns(UserWarning, match=f"chunk_000002.json .*({reason}).*recomputing chunk 2"):
        _ckpt_run(x, y, tmp_path)
    assert (tmp_path / "out.csv").read_bytes() == (tmp_path / "ref.csv").read_bytes()
    _ckpt_run(x, y, tmp_path, out="third.csv")  # the recomputed chunk was saved again, verifiably
    assert (tmp_path / "third.csv").read_bytes() == (tmp_path / "ref.csv").read_bytes()


def test_chunks_without_meta_are_refused(tmp_path):
    x, y = problem()
    _ckpt_run(x, y, tmp_path, out="ref.csv")
    (tmp_path / "ck" / "meta.json").unlink()
    with pytest.raises(ValueError, match="holds chunk files but no meta.json"):
        _ckpt_run(x, y, tmp_path)


def test_partial_files_of_killed_writers_are_swept(tmp_path):
    from invert_fast.files import _host, atomic_write

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".labels.csv.{_host()}.{pid}.abc123.partial"
    stale.write_text("half")
    other = tmp_path / ".labels.csv.otherhost.1.abc.partial"  # another host's: left alone
    other.write_text("half")
    with atomic_write(tmp_path / "labels.csv") as f:
        f.write("ok")
    assert not stale.exists() and other.exists() and (tmp_path / "labels.csv").read_text() == "ok"


def cli(*args):
    return [sys.executable, "-m", "invert_fast", "explain", *map(str, args)]


@pytest.fixture
def files(tmp_path):
    x, y = problem(n=20_000, d=48, k=150, seed=1)
    np.save(tmp_path / "a.npy", x.numpy())
    np.save(tmp_path / "y.npy", y.numpy())
    return tmp_path


def test_sigkill_then_resume_gives_identical_output(files):
    tmp = files
    base = ["--activations", tmp / "a.npy", "--labels", tmp / "y.npy", "-L", "3", "-B", "5", "--quiet"]
    subprocess.run(cli(*base, "--out", tmp / "ref.csv"), check=True, capture_output=True)
    run = ["--checkpoint", tmp / "ck", "--chunk", "4", "--out", tmp / "out.csv"]
    proc = subprocess.Popen(cli(*base, *run), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((tmp / "ck").glob("chunk_*.json"))) < 3:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = sorted((tmp / "ck").glob("chunk_*.json"))
    assert 3 <= len(saved) < 12, "the run must be killed mid-way"
    assert not (tmp / "out.csv").exists()  # nothing that looks complete
    stamps = {f: f.stat().st_mtime_ns for f in saved}
    subprocess.run(cli(*base, *run), check=True, capture_output=True)
    assert (tmp / "out.csv").read_bytes() == (tmp / "ref.csv").read_bytes()
    assert all(f.stat().st_mtime_ns == t for f, t in stamps.items())  # nothing saved was recomputed
    assert not list(tmp.glob(".out.csv.*")), "the killed run's partial output must be swept"


@pytest.mark.parametrize("extra", [[], ["--holdout", "0.3", "--seed", "5"]])
def test_torchrun_two_gloo_processes_match_one(files, extra):
    # With --holdout every rank draws the same seeded split: the held-out columns match one process too.
    tmp = files
    base = ["--activations", tmp / "a.npy", "--labels", tmp / "y.npy", "-L", "2", "-B", "3", "--quiet", "--chunk", "8",
            *extra]  # fmt: skip
    subprocess.run(cli(*base, "--out", tmp / "one.csv"), check=True, capture_output=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def launch():
        with socket.socket() as s:  # a free port each time: no clash with a socket still in TIME_WAIT
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
               "-m", "invert_fast", "explain", *map(str, base), "--out", str(tmp / "two.csv")]  # fmt: skip
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)

    res = launch()
    # Once in three clean-clone CI runs (2026-12-04) a rank aborted while gloo started ("terminate called
    # without an active exception", SIGABRT) and never in isolation: that one signature is retried once.
    if res.returncode != 0 and "terminate called without an active exception" in res.stderr:
        res = launch()
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp / "two.csv").read_bytes() == (tmp / "one.csv").read_bytes()
    assert res.stdout.count("labeled 48 neurons") == 1  # rank 0 alone reports
    if extra:
        (labels,) = inv.read_csv(tmp / "two.csv")
        assert all(not math.isnan(e.auc_heldout) for e in labels[0])
