"""Checked Python entry points of the C++/CUDA operators registered as torch.ops.invert_fast.*.

Kernels: csrc/cpu/<op>_cpu.cpp and csrc/cuda/<op>_cuda.cu; shapes and shared checks: csrc/<op>.h;
schemas: csrc/ops.cpp. The compiled library is loaded on the first call (see library.py).
"""

import torch

from .library import check_device, library


def rank_doubled(x: torch.Tensor) -> torch.Tensor:
    """Doubled mid-ranks of every column (ties share the mean rank).

    Args:
        x: [N, D] float16/bfloat16/float32/float64 tensor (any strides, CPU or CUDA), no NaN.

    Returns:
        [N, D] int32 on x's device: 2 * mid-rank of x[n, d] within column d, in [2, 2N].

    Example:
        >>> rank_doubled(torch.tensor([[0.5], [0.1], [0.5]]))[:, 0].tolist()
        [5, 2, 5]
    """
    check_device(x, "rank_doubled")
    return library().rank_doubled(x)


def rank_doubled_ties(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """rank_doubled plus the tie term of each neuron (for Mann-Whitney p-values).

    Args:
        x: [N, D] floating tensor, no NaN.

    Returns:
        ranks: [N, D] int32 doubled mid-ranks.
        tie_sum: [D] float64, sum over groups of tied values of t^3 - t (t = group size).

    Example:
        >>> rank_doubled_ties(torch.tensor([[0.5], [0.1], [0.5]]))[1].tolist()
        [6.0]
    """
    check_device(x, "rank_doubled_ties")
    return library().rank_doubled_ties(x)


def rank_region_sums(x: torch.Tensor, region_of: torch.Tensor, g: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The doubled mid-ranks of every column summed per region, without materialising [N, D] ranks.

    Args:
        x: [N, D] floating tensor, no NaN; region_of: [N] int64 region of each sample, in [0, g); g: regions.

    Returns:
        sums [g, D] int64 (sums[r, d] = sum of 2 * midrank over the samples of region r), tie_sum [D]
        float64 (as rank_doubled_ties).

    Example:
        >>> rank_region_sums(torch.tensor([[0.5], [0.1], [0.5]]), torch.tensor([0, 1, 0]), 2)[0].tolist()
        [[10], [2]]
    """
    check_device(x, "rank_region_sums")
    return library().rank_region_sums(x, region_of, int(g))


def sparse_rank_doubled(
    indptr: torch.Tensor, indices: torch.Tensor, values: torch.Tensor, n: int, first: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Doubled mid-ranks of sparse columns (CSC) from their stored entries; every other entry is 0.0.

    Ranks equal rank_doubled's on the dense matrix: the zeros (implicit and stored) share one doubled
    mid-rank 2m + z + 1 (m negatives, z zeros), below every positive and above every negative.

    Args:
        indptr: [D + 1] int64 column pointer; indices: [nnz] int64 samples, strictly increasing within a
            column, in [0, n); values: [nnz] float16/bfloat16/float32/float64, no NaN; n: samples N;
            first: layer-wide number of column 0 (named in errors).

    Returns:
        ranks [nnz] int32 (each stored entry's doubled mid-rank), zero_ranks [D] int64 (the zeros'), tie_sum
        [D] float64 (as rank_doubled_ties, the zeros' group included; bit-identical to it).

    Example:
        >>> r, z, t = sparse_rank_doubled(torch.tensor([0, 2]), torch.tensor([0, 2]), torch.tensor([0.5, -1.0]), 4)
        >>> r.tolist(), z.tolist(), t.tolist()
        ([8, 2], [5], [6.0])
    """
    check_device(indptr, "sparse_rank_doubled")
    return library().sparse_rank_doubled(indptr, indices, values, int(n), int(first))


def csr_gather_sum(values: torch.Tensor, indptr: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Integer sums of selected rows: out[k] = values[indices[indptr[k]:indptr[k+1]]].sum(0).

    Args:
        values: [M, C] int32 or int64.
        indptr: [K + 1] int64 CSR row pointer (starts at 0, non-decreasing, ends at nnz).
        indices: [nnz] int64 row numbers of values, each in [0, M).

    Returns:
        [K, C] int64 on values' device.

    Example:
        >>> v = torch.tensor([[1, 2], [3, 4], [5, 6]], dtype=torch.int32)
        >>> csr_gather_sum(v, torch.tensor([0, 2, 3]), torch.tensor([0, 2, 1])).tolist()
        [[6, 8], [3, 4]]
    """
    check_device(values, "csr_gather_sum")
    return library().csr_gather_sum(values, indptr, indices)


def csr_gather_or(values: torch.Tensor, indptr: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Bitwise OR of selected rows: out[k] = OR of values[indices[indptr[k]:indptr[k+1]]] (unions of packed masks).

    Args:
        values: [M, C] int64; indptr: [K + 1] int64 CSR row pointer; indices: [nnz] int64 rows of values.

    Returns:
        [K, C] int64 (0 for an empty row).

    Example:
        >>> csr_gather_or(torch.tensor([[1], [4], [6]]), torch.tensor([0, 2, 3]), torch.tensor([0, 2, 1])).tolist()
        [[7], [4]]
    """
    check_device(values, "csr_gather_or")
    return library().csr_gather_or(values, indptr, indices)


def bits_transpose(bits: torch.Tensor, n: int) -> torch.Tensor:
    """Concept-major packed masks [K, W] as sample-major packed concept vectors [n, ceil(K / 64)].

    Args:
        bits: [K, W] int64 (sample s at bit s % 64 of word s // 64); n: samples (<= 64 W).

    Returns:
        [n, ceil(K / 64)] int64: row s holds concept k at bit k % 64 of word k // 64.

    Example:
        >>> bits_transpose(torch.tensor([[0b101], [0b110]]), 3).tolist()   # 2 concepts, 3 samples
        [[1], [2], [3]]
    """
    check_device(bits, "bits_transpose")
    return library().bits_transpose(bits, int(n))


def masked_row_sums(words: torch.Tensor, outside: torch.Tensor, weights: torch.Tensor, table: torch.Tensor):
    """out[d, b] = sum over the regions of packed mask words[d, b] (or, where outside[d, b], the regions not
    in it) of weights[g, d] * table[g]; see csrc/masked_row_sums.h.

    Args:
        words: [Db, B, W] int64 packed region masks; outside: [Db, B] bool; weights: [G, Db] int64;
        table: [G, K] bool or uint8.

    Returns:
        [Db, B, K] int64.

    Example:
        >>> t = torch.tensor([[1, 0], [1, 1]], dtype=torch.bool)
        >>> masked_row_sums(torch.tensor([[[0b10]]]), torch.tensor([[False]]), torch.tensor([[5], [7]]), t).tolist()
        [[[7, 7]]]
    """
    check_device(words, "masked_row_sums")
    return library().masked_row_sums(words, outside, weights, table)


def masked_csr_sums(words, outside, weights, indptr, concepts, k: int):
    """masked_row_sums with the region -> concept table as CSR: each region adds its weight to the concepts
    it holds, so a region costs its concept count instead of K (the same integers).

    Args:
        words: [Db, B, W] int64 packed region masks; outside: [Db, B] bool (sum the regions not in the
            mask); weights: [G, Db] int64; indptr: [G + 1] int64, concepts: [nnz] int64 in [0, k).

    Returns:
        [Db, B, k] int64.

    Example:
        >>> w = torch.tensor([[3], [5]])  # two regions, one neuron
        >>> masked_csr_sums(torch.tensor([[[3]]]), torch.tensor([[False]]), w, torch.tensor([0, 1, 3]),
        ...                 torch.tensor([0, 0, 1]), 2).tolist()
        [[[8, 5]]]
    """
    check_device(words, "masked_csr_sums")
    return library().masked_csr_sums(words, outside, weights, indptr, concepts, int(k))


def weighted_row_sums(indptr, indices, weights, table):
    """out[r] = sum over j in [indptr[r], indptr[r+1]) of weights[j] * table[indices[j]].

    Args:
        indptr: [R + 1] int64 CSR row pointer; indices: [nnz] int64 rows of table; weights: [nnz] int64.
        table: [G, K] bool or uint8 0/1.

    Returns:
        [R, K] int64.

    Example:
        >>> t = torch.tensor([[1, 0], [1, 1]], dtype=torch.bool)
        >>> weighted_row_sums(torch.tensor([0, 2]), torch.tensor([0, 1]), torch.tensor([5, 7]), t).tolist()
        [[12, 7]]
    """
    check_device(table, "weighted_row_sums")
    return library().weighted_row_sums(indptr, indices, weights, table)


def objective_totals(totals, db: int, n: int, device) -> torch.Tensor:
    """[Db] int64 totals of the objective's statistic: as given, or AUROC's N (N + 1) for every neuron."""
    if totals is None:
        return torch.full((db,), n * (n + 1), dtype=torch.int64, device=device)
    return totals


def beam_step_select(
    x, x_p, shift, beam_s, beam_p, beam_valid, conc_s, conc_p, ext, n, p_lo, p_hi, sign, k, totals=None, objective=0,
    beam_len=None, penalty=0.0, flags=0,
):  # fmt: skip
    """Score one beam-search step's pool and keep each neuron's best columns; see csrc/beam_step_select.h.

    Args:
        x: [Db, B, K] int64 (statistic << shift) + size of (beam b AND concept c) when shift > 0, else
            the statistic (AUROC: the doubled rank sum), with x_p [Db, B, K] int64 the size (x_p empty
            when packed).
        beam_s, beam_p: [Db, B] int64; beam_valid: [Db, B] bool.
        conc_s: [Db, K] int64; conc_p: [K] int64; ext: [Db, 2K] bool allowed extension atoms.
        n: samples; p_lo, p_hi: admissible mask sizes; sign: +1.0 (positive mode) or -1.0; k: >= 1.
        totals: [Db] int64 each neuron's statistic over all samples (None: AUROC's N (N + 1));
        objective: the objective's code (core/objectives.py, csrc/objective.h; 0: AUROC).
        beam_len: [Db, B] int64 atoms of each beam formula (read with a penalty); penalty: >= 0 per atom
            beyond the first; flags: KEEP_UNCHANGED | NO_NEGATED_OR (csrc/beam_step_select.h), 0 for INVERT.

    Returns:
        indptr [Db + 1], cols [M] (pool columns: (b * 2 + op) * 2K + atom, then B * 4K + b for the
        current beam), vals [M] float64 scores (sign * the objective's score) of every column reaching
        the neuron's k-th best score, ties included; valid [Db] count of pool members with a finite
        score; s2 [M], p [M] int64 the kept columns' statistics and sizes.
    """
    check_device(x, "beam_step_select")
    totals = objective_totals(totals, x.shape[0], int(n), x.device)
    return library().beam_step_select(
        x,
        x_p,
        int(shift),
        beam_s,
        beam_p,
        beam_valid,
        conc_s,
        conc_p,
        ext,
        int(n),
        int(p_lo),
        int(p_hi),
        float(sign),
        int(k),
        totals,
        int(objective),
        beam_len if beam_len is not None else x.new_empty(0, dtype=torch.int64),
        float(penalty),
        int(flags),
    )


KEEP_UNCHANGED, NO_NEGATED_OR = 1, 2  # beam_step_select's flags (csrc/beam_step_select.h)


def pair_step_select(x, x_p, shift, conc_s, conc_p, n, p_lo, p_hi, sign, k, totals=None, objective=0):
    """Score every formula of two atoms and keep each neuron's best columns; see csrc/pair_step_select.h.

    Args:
        x: [Db, K, K] int64 (rank sum << shift) + size of (concept i AND concept j) when shift > 0, else the
            rank sum with x_p [Db, K, K] the size (x_p empty when packed).
        conc_s: [Db, K] int64 concept rank sums; conc_p: [K] int64 concept sizes.
        n, p_lo, p_hi, sign, k, totals, objective: as beam_step_select.

    Returns:
        indptr [Db + 1], cols [M] (PoolLayout(2K, K) columns: atom b op atom a, or atom b alone),
        vals [M] float64 scores reaching the neuron's k-th best (ties included), valid [Db] count of
        admissible formulas, s2 [M] and p [M] int64 the kept formulas' doubled rank sums and sizes.
    """
    check_device(x, "pair_step_select")
    totals = objective_totals(totals, x.shape[0], int(n), x.device)
    return library().pair_step_select(
        x, x_p, int(shift), conc_s, conc_p, int(n), int(p_lo), int(p_hi), float(sign), int(k), totals, int(objective)
    )


def pair_sums(weights: torch.Tensor, indptr: torch.Tensor, concepts: torch.Tensor, k: int) -> torch.Tensor:
    """Sums over the regions every two concepts share; see csrc/pair_sums.h.

    Args:
        weights: [G, Db] int64 per-region weights (e.g. (rank sum << s) + size), non-negative.
        indptr: [G + 1] int64 and concepts: [nnz] int64 in [0, K): the concepts holding each region (CSR).
        k: K, the number of concepts.

    Returns:
        [Db, K, K] int64, out[d, i, j] = sum of weights[g, d] over regions g holding concepts i and j.

    Example:
        >>> w = torch.tensor([[5], [7]])                      # 2 regions, 1 neuron
        >>> pair_sums(w, torch.tensor([0, 2, 3]), torch.tensor([0, 1, 1]), 2)[0].tolist()
        [[5, 5], [5, 12]]
    """
    check_device(weights, "pair_sums")
    return library().pair_sums(weights, indptr, concepts, int(k))


def and_popcount(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pixels two sets of bit-packed masks share, summed over images.

    Args:
        a: [N, A, W] int64 packed masks (N images, A masks, W words per image).
        b: [N, K, W] int64 packed masks.

    Returns:
        [A, K] int64, out[i, k] = sum over n of popcount(a[n, i] & b[n, k]).

    Example:
        >>> and_popcount(torch.tensor([[[0b1011]]]), torch.tensor([[[0b0110], [0b1111]]])).tolist()
        [[1, 3]]
    """
    check_device(a, "and_popcount")
    return library().and_popcount(a, b)


def upsample_threshold(maps: torch.Tensor, thresholds: torch.Tensor, height: int, width: int):
    """Bit-packed (bilinear upsample, align_corners=False) > threshold masks, decided exactly; see
    csrc/upsample_threshold.h.

    Args:
        maps: [n, D, h, w] float32/float64; thresholds: [D] same dtype; height, width: output size.

    Returns:
        words [n, D, ceil(height * width / 64)] int64; has_nan [n, D] bool (planes holding a NaN).

    Example:
        >>> w, nan = upsample_threshold(torch.ones(1, 1, 2, 2), torch.zeros(1), 4, 4)
        >>> w.tolist(), nan.tolist()
        ([[[65535]]], [[False]])
    """
    check_device(maps, "upsample_threshold")
    return library().upsample_threshold(maps, thresholds, int(height), int(width))


def region_moments(x: torch.Tensor, region_of: torch.Tensor, g: int, cut: torch.Tensor, strict: bool):
    """Per region and neuron, the float64 sums behind the labels' correlation and cosine and the top samples'
    counts; see csrc/region_moments.h (two passes in sample order, identical on both backends).

    Args:
        x: [N, D] floating activations; region_of: [N] int64 region of each sample, in [0, g);
        cut: [D] float64; strict: the top samples are a > cut (True) or a >= cut.

    Returns:
        (A [g, D] float64 sums of a, Dv [g, D] float64 sums of the deviations from the neuron's mean,
        T [g, D] int64 top samples, moments [3, D] float64: sum of a, sum of a^2, sum of squared deviations).

    Example:
        >>> A, Dv, T, m = region_moments(torch.tensor([[1.0], [3.0]]), torch.tensor([0, 0]), 1, torch.tensor([2.0]), False)
        >>> A.tolist(), T.tolist(), m.flatten().tolist()
        ([[4.0]], [[1]], [4.0, 10.0, 2.0])
    """
    check_device(x, "region_moments")
    return library().region_moments(x, region_of, int(g), cut, bool(strict))


def top_values(maps: torch.Tensor, prev: torch.Tensor, keep: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each unit's `keep` largest values over prev and a chunk of maps, descending; see csrc/top_values.h.

    Args:
        maps: [n, D, h, w] float32/float64; prev: [D, m] (m <= keep) the previous result.
        keep: values to keep per unit.

    Returns:
        values [D, min(keep, m + n * h * w)] same dtype; nan_image [D] int64, the first image of the
        chunk where the unit has a NaN (its values are then not meaningful), or -1.

    Example:
        >>> top_values(torch.tensor([[[[3.0, 1.0], [2.0, 5.0]]]]), torch.zeros(1, 0), 2)[0].tolist()
        [[5.0, 3.0]]
    """
    check_device(maps, "top_values")
    return library().top_values(maps, prev, int(keep))


def formula_texts(hist: torch.Tensor, atom_text: torch.Tensor, atom_offsets: torch.Tensor):
    """Canonical texts and lengths of formulas given by their extension histories; see csrc/formula_texts.h.

    Args:
        hist: [M, T] int64: the first atom, then op * 2K + atom per join (op 1 AND, 2 OR), -1 padding.
        atom_text: [bytes] uint8 UTF-8 texts of the 2K atoms; atom_offsets: [2K + 1] int64.

    Returns:
        (list of M str, lengths [M] int64).

    Example:
        >>> t = torch.tensor(list(b"a~a"), dtype=torch.uint8)   # atoms "a" (0) and "~a" (1), K = 1
        >>> formula_texts(torch.tensor([[0, 1 * 2 + 1]]), t, torch.tensor([0, 1, 3]))[0]
        ['a & ~a']
    """
    data, offsets, lengths = library().formula_texts(hist.cpu(), atom_text, atom_offsets)
    raw, off = bytes(data.numpy()), offsets.tolist()
    return [raw[off[i] : off[i + 1]].decode("utf-8") for i in range(len(off) - 1)], lengths


def select_step(
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
    k,
    n,
    sign,
    B,
    distinct,
    D,
    totals=None,
    objective=0,
    penalty=0.0,
):
    """Each neuron's best B formulas among the kept columns of a beam-step pool, in the search's exact
    order; see csrc/select_step.h. Runs on the CPU (the kept columns are few); results on neuron's device.

    Args:
        neuron, cols, s2, p: [M] int64 kept columns (ops.beam_step_select / pair_step_select) and sums.
        beam_hist: [Db or 1, Bb, T] int64 beam histories; beam_ntok: [Db or 1, Bb] tokens used;
        beam_words: [Db or 1, Bb, W] packed region masks; atom_words: [2K, W]; atom_text, atom_offsets:
        the 2K atom texts (CPU). k: K concepts; n, sign, B, distinct, D, totals, objective: as select_labels.
        penalty: >= 0, scores compared as score - penalty * (length - 1), exactly.

    Returns:
        winners [D, B] int64 indices into the M candidates best first (-1 padding), lengths [D, B] int64.
    """
    dev = neuron.device
    cpu = [t.cpu() for t in (neuron, cols, s2, p, beam_hist, beam_ntok, beam_words, atom_words)]
    tt = objective_totals(totals, int(D), int(n), "cpu").cpu()
    w, lens = library().select_step(
        *cpu, atom_text, atom_offsets, int(k), int(n), float(sign), int(B), bool(distinct), int(D), tt, int(objective),
        float(penalty),
    )  # fmt: skip
    return w.to(dev), lens.to(dev)


def select_labels(
    neuron, s2, p, hist, words, atom_text, atom_offsets, n, sign, B, distinct, D, totals=None, objective=0
):
    """Each neuron's best B labels among gathered candidates, in the search's exact order; see
    csrc/select_labels.h. Runs on the CPU whatever the inputs' device (they are the few candidates
    the gather kernels kept); results come back on neuron's device.

    Args:
        neuron: [M] int64 neuron of each candidate; s2, p: [M] int64 statistic (AUROC: doubled rank sum)
            and size (0 < p < n); hist: [M, T] int64 formula histories; words: [M, W] int64 packed masks
            (W may be 0 without distinct); atom_text, atom_offsets: the 2K atom texts (CPU).
        n: samples; sign: +1.0 / -1.0; B: labels per neuron; distinct: one label per mask; D: neurons.
        totals: [D] int64 each neuron's statistic over all samples (None: AUROC's N (N + 1));
        objective: the objective's code (0: AUROC).

    Returns:
        winners [D, B] int64 candidate indices best first (-1 padding), lengths [D, B] int64.
    """
    dev = neuron.device
    cpu = [t.cpu() for t in (neuron, s2, p, hist, words)]
    tt = objective_totals(totals, int(D), int(n), "cpu").cpu()
    w, lens = library().select_labels(
        *cpu, atom_text, atom_offsets, int(n), float(sign), int(B), bool(distinct), int(D), tt, int(objective)
    )
    return w.to(dev), lens.to(dev)
