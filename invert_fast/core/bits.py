"""Bit-packed boolean masks: 64 samples per int64 word, sample n at bit n % 64 of word n // 64."""

import sys

import torch

if sys.byteorder != "little":  # the packing views 8 little-endian bytes as one int64
    raise ImportError("invert_fast's bit packing assumes a little-endian machine")

_BYTE_WEIGHTS = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8)


def num_words(n: int) -> int:
    """Number of int64 words that hold n bits."""
    return (n + 63) // 64


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """Pack the last axis of a boolean mask into int64 words.

    Args:
        mask: [..., N] bool.

    Returns:
        [..., ceil(N / 64)] int64 on mask's device; padding bits are 0.

    Example:
        >>> pack_bits(torch.tensor([True, False, True])).tolist()
        [5]
    """
    n = mask.shape[-1]
    w = num_words(n)
    padded = torch.zeros(*mask.shape[:-1], w * 64, dtype=torch.uint8, device=mask.device)
    padded[..., :n] = mask
    weights = _BYTE_WEIGHTS.to(mask.device)
    byte_vals = (padded.view(*mask.shape[:-1], w * 8, 8) * weights).sum(-1, dtype=torch.uint8)
    return byte_vals.view(torch.int64)


def pack_columns(mask: torch.Tensor, block: int = 1 << 14) -> torch.Tensor:
    """Pack each column of a sample-major mask: [N, K] bool -> [K, ceil(N / 64)] int64, the same as
    pack_bits(mask.t()) without its [K, N] copies: rows are packed in blocks of samples ([N, ceil(K / 64)]
    words, K / 8 bytes per sample), then transposed bit for bit (ops.bits_transpose).

    Example:
        >>> pack_columns(torch.tensor([[True, False], [False, True], [True, True]])).tolist()
        [[5], [6]]
    """
    from .. import ops

    n, k = mask.shape
    if n == 0 or k == 0:
        return torch.zeros(k, num_words(n), dtype=torch.int64, device=mask.device)
    rows = torch.cat([pack_bits(mask[s : s + block]) for s in range(0, n, block)])  # [N, ceil(K / 64)]
    return ops.bits_transpose(rows, k)


def unpack_bits(words: torch.Tensor, n: int) -> torch.Tensor:
    """Inverse of pack_bits.

    Args:
        words: [..., W] int64 with W >= ceil(n / 64).
        n: number of bits to return.

    Returns:
        [..., n] bool.
    """
    byte_vals = words.contiguous().view(torch.uint8)
    shifts = torch.arange(8, dtype=torch.uint8, device=words.device)
    bits = (byte_vals.unsqueeze(-1) >> shifts) & 1
    return bits.reshape(*words.shape[:-1], -1)[..., :n].bool()


def popcount(words: torch.Tensor) -> torch.Tensor:
    """Number of set bits along the last axis.

    Args:
        words: [..., W] int64.

    Returns:
        [...] int64.
    """
    from ..ops import and_popcount

    w = words.shape[-1]
    if w == 0 or words.numel() == 0:
        return torch.zeros(words.shape[:-1], dtype=torch.int64, device=words.device)
    rows = words.reshape(1, -1, w)
    ones = torch.full((1, 1, w), -1, dtype=torch.int64, device=words.device)  # AND with all bits set
    return and_popcount(rows, ones)[:, 0].reshape(words.shape[:-1])
