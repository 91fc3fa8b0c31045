"""Long runs: explain in neuron chunks with checkpoints (resume after any kill), sharded across
torch.distributed ranks, with the output written once, atomically.

    explain_to_file(acts, concepts, "labels.csv", checkpoint="ckpt/", chunk=512, L=3, B=10)
    torchrun --nproc_per_node=2 -m invert_fast explain ... --checkpoint ckpt/ --out labels.csv

Every finished chunk of neurons is saved as ckpt/chunk_NNNNNN.json (atomic rename), so a run killed
at any moment (SIGKILL included) and started again with the same command recomputes only the chunks
it had not saved, and writes the same bytes as an uninterrupted run. Ranks take chunks round-robin
(rank r: chunks r, r + W, ...; neuron chunks cost about the same, so this balances) and send their
results to rank 0, which writes the output; the checkpoint folder may be per node or shared.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import torch

from ._validate import as_activations, check_positive_int
from .concepts import ConceptSet
from .formula import Formula
from .results import COLUMNS, Explanation, Explanations, _atomic
from .search import _adjust, explain
from .store import NeuronStore


def _fingerprint(x, concepts: ConceptSet, params: dict) -> str:
    """What a checkpoint must match to be resumed: shapes, a sample of the activations (64 rows of a
    tensor, 64 blocks of a store's file: cheap for any size), concept names and masks, parameters."""
    h = hashlib.sha256()
    store = isinstance(x, NeuronStore)
    dtype = str(x.dtype)
    h.update(json.dumps({"shape": list(x.shape), "dtype": dtype, "params": params}, sort_keys=True).encode())
    if store:
        h.update(x.fingerprint().encode())
    else:
        h.update(x[:: max(1, x.shape[0] // 64)].contiguous().cpu().numpy().tobytes())
    h.update("\0".join(concepts.names).encode())
    h.update(concepts.bits.cpu().numpy().tobytes())
    return h.hexdigest()


def _to_json(exps: list[list[Explanation]]) -> list:
    return [[[e.neuron, e.rank, str(e.formula), e.length, e.auc, e.differentiability, e.concept_fraction,
              e.p_value, e.log10_p_value] for e in row] for row in exps]  # fmt: skip


def _from_json(rows: list) -> list[list[Explanation]]:
    return [[Explanation(r[0], r[1], Formula.parse(r[2]), *r[3:]) for r in row] for row in rows]


def explain_to_file(
    activations,
    concepts,
    out,
    *,
    checkpoint=None,
    chunk: int = 512,
    rank: int = 0,
    world: int = 1,
    gather=None,
    adjust: str | None = None,
    layer: str = "",
    progress=None,
    keep_results: bool = True,
    **explain_kwargs,
) -> Explanations | np.ndarray | None:
    """explain() over neuron chunks with checkpoints and optional sharding; writes `out` (.csv/.json).

    Args:
        activations: [N, D] tensor or array, or a NeuronStore (an on-disk .npy read chunk by chunk with
            explicit reads: memory holds one chunk of neurons, whatever the file's size).
        concepts: ConceptSet or [N, K] 0/1 matrix.
        out: output path (.csv or .json), written by rank 0 only, atomically.
        checkpoint: folder for finished chunks (resume); None keeps nothing.
        chunk: neurons per chunk (and per checkpoint file).
        rank, world: this process's shard (rank r takes chunks r, r + world, ...).
        gather: with world > 1, a function list -> list of every rank's list on rank 0 (None elsewhere),
            e.g. torch.distributed.gather_object.
        adjust, layer, progress: as for explain (adjustment is applied once, over all neurons).
        keep_results: False writes each chunk's rows to `out` as it finishes (one process, .csv, no
            adjustment), so memory holds one chunk of results however many neurons there are; the
            return value is then only each neuron's best AUC ([D] float64, NaN where none).
        **explain_kwargs: L, B, limit_search, min_fraction, max_fraction, mode, device, alternative,
            method, max_memory.

    Returns:
        the Explanations on rank 0 (best AUCs with keep_results=False), None on other ranks.
    """
    store = activations if isinstance(activations, NeuronStore) else None
    x = None if store is not None else as_activations(activations)
    shape = store.shape if store is not None else tuple(x.shape)
    cs = concepts if isinstance(concepts, ConceptSet) else ConceptSet(concepts)
    chunk = check_positive_int(chunk, "chunk")
    out = Path(out)
    if out.suffix.lower() not in (".csv", ".json"):
        raise ValueError(f"out: expected a .csv or .json path, got {str(out)!r}")
    d = shape[1]
    n_chunks = (d + chunk - 1) // chunk
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None:
        ckpt.mkdir(parents=True, exist_ok=True)
        key = {**{k: v for k, v in explain_kwargs.items() if k != "device" and k != "max_memory"}, "chunk": chunk}
        meta = {"fingerprint": _fingerprint(store if store is not None else x, cs, key), "neurons": d, "chunk": chunk}
        meta_path = ckpt / "meta.json"
        if meta_path.exists():
            old = json.loads(meta_path.read_text())
            if old != meta:
                raise ValueError(
                    f"checkpoint: {ckpt} holds a run with other inputs or parameters; use a new folder or delete it"
                )
        elif rank == 0:
            with _atomic(meta_path) as f:
                json.dump(meta, f)
    stream = not keep_results
    if stream and (world > 1 or adjust is not None or out.suffix.lower() != ".csv"):
        raise ValueError("keep_results: False needs one process, no p-value adjustment and a .csv output")
    mine: dict[int, list] = {}
    params = None
    done = 0
    best_auc: list[float] = []
    with contextlib.ExitStack() as stack:
        writer = None
        if stream:  # rows go to the (atomic) output as chunks finish; memory holds one chunk
            writer = csv.DictWriter(stack.enter_context(_atomic(out)), fieldnames=list(COLUMNS))
            writer.writeheader()
        for c in range(rank, n_chunks, world):
            path = ckpt / f"chunk_{c:06d}.json" if ckpt is not None else None
            if path is not None and path.exists():
                saved = json.loads(path.read_text())
                rows, params = saved["rows"], saved["params"]
            else:
                # A store reads just this chunk of neurons from disk; a tensor (or memory map) is sliced.
                xc = store.read(c * chunk, (c + 1) * chunk) if store is not None else x[:, c * chunk : (c + 1) * chunk]
                res = explain(xc, cs, layer=layer, **explain_kwargs)
                del xc
                rows = _to_json([[_shift(e, c * chunk) for e in row] for row in res.per_neuron])
                params = res.params
                if path is not None:
                    with _atomic(path) as f:
                        json.dump({"rows": rows, "params": res.params}, f)
            if stream:
                part = Explanations(_from_json(rows), params, layer, cs.definitions)
                for r in part.records():
                    writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
                best_auc += [row[0].auc if row else math.nan for row in part.per_neuron]
            else:
                mine[c] = rows
            done += 1
            if progress is not None:
                progress(min(d, done * chunk * world), d)
    if stream:
        return np.array(best_auc)
    parts = [(mine, params)]
    if world > 1:
        parts = gather((mine, params))
        if rank != 0:
            return None
    merged: dict[int, list] = {}
    for m, p in parts:
        merged.update(m)
        params = params or p
    per_neuron = [row for c in range(n_chunks) for row in _from_json(merged[c])]
    if adjust is not None:
        _adjust(per_neuron, adjust)
    result = Explanations(per_neuron, {**(params or {}), "adjust": adjust}, layer, cs.definitions)
    (result.to_json if out.suffix.lower() == ".json" else result.to_csv)(out)
    return result


def _shift(e: Explanation, offset: int) -> Explanation:
    return Explanation(**{**e.__dict__, "neuron": e.neuron + offset})


def distributed_context():
    """(rank, world, gather, device) under torchrun (WORLD_SIZE > 1), else (0, 1, None, None).

    Initialises torch.distributed: NCCL when CUDA is available (one GPU per local rank), gloo otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, None, None
    import torch.distributed as dist

    cuda = torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank()
    device = None
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"

    def gather(obj):
        bucket = [None] * world if rank == 0 else None
        dist.gather_object(obj, bucket, dst=0)
        return bucket

    return rank, world, gather, device
