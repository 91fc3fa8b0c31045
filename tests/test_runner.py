"""Checkpointed, resumable and distributed explain: same output bytes as one uninterrupted process."""

import os
import signal
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


def test_torchrun_two_gloo_processes_match_one(files):
    tmp = files
    base = ["--activations", tmp / "a.npy", "--labels", tmp / "y.npy", "-L", "2", "-B", "3", "--quiet", "--chunk", "8"]
    subprocess.run(cli(*base, "--out", tmp / "one.csv"), check=True, capture_output=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
           "-m", "invert_fast", "explain", *map(str, base), "--out", str(tmp / "two.csv")]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp / "two.csv").read_bytes() == (tmp / "one.csv").read_bytes()
    assert res.stdout.count("labeled 48 neurons") == 1  # rank 0 alone reports
