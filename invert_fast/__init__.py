"""invert_fast: exact INVERT neuron labeling for thousands of neurons at once.

>>> import invert_fast as inv
>>> auc = inv.auroc(activations, labels)   # [N, D] x [N, K] -> [D, K] float64
"""

from ._ops import and_popcount, built_with_cuda, csr_gather_sum, rank_doubled, rank_doubled_ties
from .auroc import auc_from_rank_sums, auroc
from .compositional import IoULabel, compositional_explain
from .concepts import ConceptSet
from .dissection import Dissection, network_dissection, quantile_thresholds
from .formula import Formula
from .pixel_masks import PixelMasks
from .regions import Regions, compute_regions
from .results import Explanation, Explanations
from .scoring import score
from .search import explain

__version__ = "0.1.0"

__all__ = [
    "ConceptSet",
    "Dissection",
    "IoULabel",
    "PixelMasks",
    "and_popcount",
    "compositional_explain",
    "network_dissection",
    "quantile_thresholds",
    "Explanation",
    "Explanations",
    "Formula",
    "Regions",
    "auc_from_rank_sums",
    "auroc",
    "built_with_cuda",
    "compute_regions",
    "explain",
    "score",
    "csr_gather_sum",
    "rank_doubled",
    "rank_doubled_ties",
]
