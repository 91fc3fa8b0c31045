"""Fake (meta) kernels of every torch.ops.invert_fast operator: output shapes and dtypes without
computing, so torch.compile, torch.export and FakeTensor tracing can run code that calls them.

Registered by library.load() right after the compiled library; one entry per operator (a new
operator without an entry here fails tests/test_opcheck.py). Data-dependent output sizes (the kept
columns of the step kernels, the bytes of formula texts) come from the fake context's dynamic sizes.
"""

from __future__ import annotations

import torch

_registered = False


def _dynamic() -> torch.SymInt:
    return torch.library.get_ctx().new_dynamic_size()


def register() -> None:
    """Register the fake kernels (once)."""
    global _registered
    if _registered:
        return
    _registered = True
    reg = torch.library.register_fake

    @reg("invert_fast::rank_doubled")
    def _rank_doubled(x):
        return x.new_empty(x.shape, dtype=torch.int32)

    @reg("invert_fast::rank_doubled_ties")
    def _rank_doubled_ties(x):
        return x.new_empty(x.shape, dtype=torch.int32), x.new_empty((x.shape[1],), dtype=torch.float64)

    @reg("invert_fast::rank_region_sums")
    def _rank_region_sums(x, region_of, G):
        return x.new_empty((G, x.shape[1]), dtype=torch.int64), x.new_empty((x.shape[1],), dtype=torch.float64)

    @reg("invert_fast::sparse_rank_doubled")
    def _sparse_rank_doubled(indptr, indices, values, N, first):
        d = indptr.shape[0] - 1
        return (
            indices.new_empty(indices.shape, dtype=torch.int32),
            indptr.new_empty((d,), dtype=torch.int64),
            indptr.new_empty((d,), dtype=torch.float64),
        )

    @reg("invert_fast::csr_gather_sum")
    def _csr_gather_sum(values, indptr, indices):
        return values.new_empty((indptr.shape[0] - 1, values.shape[1]), dtype=torch.int64)

    @reg("invert_fast::csr_gather_or")
    def _csr_gather_or(values, indptr, indices):
        return values.new_empty((indptr.shape[0] - 1, values.shape[1]))

    @reg("invert_fast::bits_transpose")
    def _bits_transpose(bits, n):
        return bits.new_empty((n, (bits.shape[0] + 63) // 64))

    @reg("invert_fast::masked_row_sums")
    def _masked_row_sums(words, outside, weights, table):
        return words.new_empty((words.shape[0], words.shape[1], table.shape[1]))

    @reg("invert_fast::masked_csr_sums")
    def _masked_csr_sums(words, outside, weights, indptr, concepts, K):
        return words.new_empty((words.shape[0], words.shape[1], K))

    @reg("invert_fast::weighted_row_sums")
    def _weighted_row_sums(indptr, indices, weights, table):
        return table.new_empty((indptr.shape[0] - 1, table.shape[1]), dtype=torch.int64)

    def _selected(x, d):
        m = _dynamic()
        return (
            x.new_empty((d + 1,), dtype=torch.int64),
            x.new_empty((m,), dtype=torch.int64),
            x.new_empty((m,), dtype=torch.float64),
            x.new_empty((d,), dtype=torch.int64),
            x.new_empty((m,), dtype=torch.int64),
            x.new_empty((m,), dtype=torch.int64),
        )

    @reg("invert_fast::beam_step_select")
    def _beam_step_select(
        x, x_p, shift, beam_s, beam_p, beam_valid, conc_s, conc_p, ext, n, p_lo, p_hi, sign, k, totals, objective,
        beam_len, penalty, flags,
    ):  # fmt: skip
        return _selected(x, x.shape[0])

    @reg("invert_fast::pair_step_select")
    def _pair_step_select(x, x_p, shift, conc_s, conc_p, n, p_lo, p_hi, sign, k, totals, objective):
        return _selected(x, x.shape[0])

    @reg("invert_fast::pair_sums")
    def _pair_sums(weights, indptr, concepts, K):
        return weights.new_empty((weights.shape[1], K, K), dtype=torch.int64)

    @reg("invert_fast::and_popcount")
    def _and_popcount(a, b):
        return a.new_empty((a.shape[1], b.shape[1]), dtype=torch.int64)

    @reg("invert_fast::upsample_threshold")
    def _upsample_threshold(maps, thresholds, H, W):
        n, d = maps.shape[0], maps.shape[1]
        return maps.new_empty((n, d, (H * W + 63) // 64), dtype=torch.int64), maps.new_empty((n, d), dtype=torch.bool)

    @reg("invert_fast::region_moments")
    def _region_moments(x, region_of, G, cut, strict):
        d = x.shape[1]
        f64 = torch.float64
        return (
            x.new_empty((G, d), dtype=f64),
            x.new_empty((G, d), dtype=f64),
            x.new_empty((G, d), dtype=torch.int64),
            x.new_empty((3, d), dtype=f64),
        )

    @reg("invert_fast::top_values")
    def _top_values(maps, prev, keep):
        d = maps.shape[1]
        m = min(keep, prev.shape[1] + maps.shape[0] * maps.shape[2] * maps.shape[3])
        return maps.new_empty((d, m)), maps.new_empty((d,), dtype=torch.int64)

    @reg("invert_fast::formula_texts")
    def _formula_texts(hist, atom_text, atom_offsets):
        m = hist.shape[0]
        return (
            hist.new_empty((_dynamic(),), dtype=torch.uint8),
            hist.new_empty((m + 1,), dtype=torch.int64),
            hist.new_empty((m,), dtype=torch.int64),
        )

    @reg("invert_fast::select_step")
    def _select_step(
        neuron,
        cols,
        s2,
        p,
        beam_hist,
        beam_ntok,
        beam_words,
        atom_words,
        atom_text,
        atom_offsets,
        K,
        n,
        sign,
        B,
        distinct,
        D,
        totals,
        objective,
        penalty,
    ):
        return neuron.new_empty((D, B), dtype=torch.int64), neuron.new_empty((D, B), dtype=torch.int64)

    @reg("invert_fast::select_labels")
    def _select_labels(neuron, s2, p, hist, words, atom_text, atom_offsets, n, sign, B, distinct, D, totals, objective):
        return neuron.new_empty((D, B), dtype=torch.int64), neuron.new_empty((D, B), dtype=torch.int64)
