"""The engine: checked wrappers of the C++/CUDA operators (torch.ops.invert_fast.*) and their contracts.

Every operator has one schema (csrc/ops.cpp), one kernel file per backend (csrc/cpu/<op>_cpu.cpp,
csrc/cuda/<op>_cuda.cu) and shared shapes and checks in csrc/<op>.h. The compiled library is loaded
on the first call (library.load), so the rest of the package imports without it.
"""

from .library import built_with_cuda, check_device, is_loaded, library, load
from .operators import (
    KEEP_UNCHANGED,
    NO_NEGATED_OR,
    and_popcount,
    beam_step_select,
    bits_transpose,
    csr_gather_or,
    csr_gather_sum,
    formula_texts,
    masked_csr_sums,
    masked_row_sums,
    pair_step_select,
    pair_sums,
    rank_doubled,
    rank_doubled_ties,
    rank_region_sums,
    region_moments,
    select_labels,
    select_step,
    sparse_rank_doubled,
    top_values,
    upsample_threshold,
    weighted_row_sums,
)
from .pool import PoolLayout

__all__ = [
    "KEEP_UNCHANGED",
    "NO_NEGATED_OR",
    "PoolLayout",
    "and_popcount",
    "beam_step_select",
    "bits_transpose",
    "built_with_cuda",
    "check_device",
    "csr_gather_or",
    "csr_gather_sum",
    "formula_texts",
    "is_loaded",
    "pair_step_select",
    "pair_sums",
    "library",
    "load",
    "masked_csr_sums",
    "masked_row_sums",
    "rank_doubled",
    "rank_doubled_ties",
    "rank_region_sums",
    "region_moments",
    "select_labels",
    "select_step",
    "sparse_rank_doubled",
    "top_values",
    "upsample_threshold",
    "weighted_row_sums",
]
