"""invert_fast: exact INVERT neuron labeling for thousands of neurons at once.

>>> import invert_fast as inv
>>> auc = inv.auroc(activations, labels)   # [N, D] x [N, K] -> [D, K] float64
>>> res = inv.explain(activations, concepts, L=3, B=10)

The package is layered; each layer imports only those before it:

- ops: the engine (checked wrappers of the C++/CUDA operators, loaded on first use);
- core: concepts, regions, formulas, AUROC, the search, statistics, results;
- dissection: Network Dissection, compositional explanations, pixel masks;
- io: capture of activations, on-disk stores, checkpointed and distributed runs;
- cases: the embedded real models, data and concept sources;
- apps: command line, demo, HTML report (never imported here: the façade holds no app).

The names below are the public API; module paths may move, these do not.
"""

from .concepts.linguistic import load_english, word_annotations
from .concepts.tokens import token_concepts
from .core.auroc import auc_from_rank_sums, auroc
from .core.concepts import ConceptSet
from .core.formula import Formula
from .core.params import SearchParams
from .core.regions import Regions, compute_regions
from .core.results import Explanation, Explanations, read_csv, write_csv
from .core.scoring import concept_metrics, score, score_each
from .core.search import explain
from .core.sparse import SparseColumns
from .core.token_index import TokenIndex
from .dissection.broden import Broden, read_broden, write_broden
from .dissection.compare import compare
from .dissection.compositional import IoULabel, compositional_explain
from .dissection.netdissect import Dissection, network_dissection, quantile_thresholds
from .dissection.pixel_masks import PixelMasks
from .io.audit import Audit, audit
from .io.capture import capture
from .io.circuit import Circuit, CircuitNode, circuit
from .io.delphi import DelphiCache  # registers the delphi folder format with NeuronStore
from .io.runner import explain_to_file
from .io.sequence import TokenActivations, TokenBatches, capture_tokens, mlp_neurons, token_batches
from .io.store import NeuronStore
from .ops import and_popcount, built_with_cuda, csr_gather_sum, rank_doubled, rank_doubled_ties

__version__ = "0.1.0"

__all__ = [
    "Broden",
    "Audit",
    "Circuit",
    "CircuitNode",
    "ConceptSet",
    "DelphiCache",
    "Dissection",
    "Explanation",
    "Explanations",
    "Formula",
    "IoULabel",
    "NeuronStore",
    "PixelMasks",
    "Regions",
    "SearchParams",
    "SparseColumns",
    "TokenActivations",
    "TokenBatches",
    "TokenIndex",
    "and_popcount",
    "auc_from_rank_sums",
    "auroc",
    "built_with_cuda",
    "capture",
    "audit",
    "capture_tokens",
    "circuit",
    "compare",
    "compositional_explain",
    "concept_metrics",
    "compute_regions",
    "csr_gather_sum",
    "explain",
    "explain_to_file",
    "load_english",
    "mlp_neurons",
    "network_dissection",
    "quantile_thresholds",
    "rank_doubled",
    "rank_doubled_ties",
    "read_broden",
    "read_csv",
    "score",
    "score_each",
    "token_batches",
    "token_concepts",
    "word_annotations",
    "write_broden",
    "write_csv",
]
