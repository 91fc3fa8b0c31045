"""Long runs: explain in neuron chunks with checkpoints (resume after any kill), sharded across
torch.distributed ranks, with the output written once, atomically.

    explain_to_file(acts, concepts, "labels.csv", checkpoint="ckpt/", chunk=512, L=3, B=10)
    torchrun --nproc_per_node=2 -m invert_fast explain ... --checkpoint ckpt/ --out labels.csv

The parts: the chunk loop here; finished chunks saved and reused by a CheckpointStore
(checkpoint.py); rows going to a sink as chunks finish (sinks.py: streamed to the CSV, or collected);
ranks and gathering (distributed.py). Ranks take chunks round-robin (rank r: chunks r, r + W, ...;
neuron chunks cost about the same, so this balances) and send their results to rank 0, which writes
the output; the checkpoint folder may be per node or shared.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..core.concepts import ConceptSet
from ..core.results import Explanation, Explanations
from ..core.search import explain, permutation_groups
from ..core.sparse import activation_columns, as_activation_input
from ..core.validate import check_positive_int
from .checkpoint import CheckpointStore, run_key, slice_hash
from .sinks import CollectingSink, StreamingCsvSink
from .store import NeuronStore


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
        gather: with world > 1, a function obj -> list of every rank's obj on rank 0 (None elsewhere),
            e.g. the one of distributed.distributed_context().
        adjust, layer, progress: as for explain (adjustment is applied once, over all neurons).
        keep_results: False writes each chunk's rows to `out` as it finishes (one process, .csv, no
            adjustment), so memory holds one chunk of results however many neurons there are; the
            return value is then only each neuron's best AUC ([D] float64, NaN where none).
        **explain_kwargs: L, B, limit_search, min_fraction, max_fraction, mode, device, distinct,
            permutations, seed, groups, alternative, method, max_memory.

    Returns:
        the Explanations on rank 0 (best AUCs with keep_results=False), None on other ranks.

    Example:
        >>> explain_to_file(NeuronStore("acts/layer3.neurons.npy"), concepts, "labels.csv", checkpoint="ckpt/")
    """
    store = activations if isinstance(activations, NeuronStore) else None
    x = None if store is not None else as_activation_input(activations)
    shape = store.shape if store is not None else tuple(x.shape)
    # Resolved here (not in each chunk's explain, which sees a NeuronSlice): the checkpoint key hashes them.
    groups = permutation_groups(store, explain_kwargs.get("permutations", 0), explain_kwargs.get("groups"))
    if groups is not None:
        explain_kwargs["groups"] = groups
    cs = concepts if isinstance(concepts, ConceptSet) else ConceptSet(concepts)
    chunk = check_positive_int(chunk, "chunk")
    out = Path(out)
    if out.suffix.lower() not in (".csv", ".json"):
        raise ValueError(f"out: expected a .csv or .json path, got {str(out)!r}")
    d = shape[1]
    n_chunks = (d + chunk - 1) // chunk
    ckpt = None
    if checkpoint is not None:
        key = {k: v for k, v in explain_kwargs.items() if k not in ("device", "max_memory", "groups")}
        key["chunk"] = chunk
        if explain_kwargs.get("groups") is not None:  # data, not a parameter: recorded by its hash
            groups = np.ascontiguousarray(np.asarray(explain_kwargs["groups"]))
            key["groups"] = hashlib.blake2b(groups.tobytes() + str(groups.dtype).encode()).hexdigest()
        dtype = store.dtype if store is not None else x.dtype
        ckpt = CheckpointStore(checkpoint, run_key(shape, dtype, cs, key), d, chunk, writer=rank == 0)
    # Pieces of a chunk read to hash it: an eighth of the budget (default budget: 2 GiB).
    piece_bytes = max(1 << 20, (explain_kwargs.get("max_memory") or 2 << 30) // 8)
    stream = not keep_results
    if stream and (world > 1 or adjust is not None or out.suffix.lower() != ".csv"):
        raise ValueError("keep_results: False needs one process, no p-value adjustment and a .csv output")
    sink = StreamingCsvSink(out, layer, cs.definitions) if stream else CollectingSink()
    done = 0
    with sink:
        for c in range(rank, n_chunks, world):
            # A store's chunk is a NeuronSlice (read on demand: hashing and explain read it in pieces within
            # the budget); a tensor (or memory map) is sliced. With a checkpoint the slice is read and hashed
            # even when the chunk is saved: a saved chunk is reused only if its activations hash alike.
            xc = (
                store.slice(c * chunk, (c + 1) * chunk)
                if store is not None
                else activation_columns(x, c * chunk, (c + 1) * chunk)
            )
            digest = slice_hash(xc, piece_bytes) if ckpt is not None else None
            saved = ckpt.load(c, digest) if ckpt is not None else None
            if saved is not None:
                per_neuron, params = saved
            else:
                # A chunk's neurons are numbered from 0 inside explain; its errors name the layer's.
                res = explain(xc, cs, layer=layer, neuron_offset=c * chunk, **explain_kwargs)
                per_neuron = [[_shift(e, c * chunk) for e in row] for row in res.per_neuron]
                params = res.params
                if ckpt is not None:
                    ckpt.save(c, per_neuron, params, digest)
            del xc
            sink.add(c, per_neuron, params)
            done += 1
            if progress is not None:
                progress(min(d, done * chunk * world), d)
    if stream:
        return sink.result()
    states = [sink.state()]
    if world > 1:
        states = gather(sink.state())
        if rank != 0:
            return None
    result = CollectingSink.merge(states, n_chunks, adjust, layer, cs.definitions)
    (result.to_json if out.suffix.lower() == ".json" else result.to_csv)(out)
    return result


def _shift(e: Explanation, offset: int) -> Explanation:
    return Explanation(**{**e.__dict__, "neuron": e.neuron + offset})
