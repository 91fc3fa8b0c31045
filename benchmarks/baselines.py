"""What people use today to get the same AUROC matrix, timed against invert_fast."""

import numpy as np
import torch


def torch_midranks(x: torch.Tensor) -> torch.Tensor:
    """[N, D] -> [D, N] float64 mid-ranks with plain torch ops (sort + searchsorted for ties)."""
    s, order = torch.sort(x, dim=0)
    s = s.t().contiguous()
    lo = torch.searchsorted(s, s, right=False)
    hi = torch.searchsorted(s, s, right=True)
    mid = (lo + hi + 1).double() / 2
    ranks = torch.empty_like(mid)
    ranks.scatter_(1, order.t(), mid)
    return ranks


def torch_matmul_auroc(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The plain float64 rank-sum matmul: AUC = (R @ Y - P(P+1)/2) / (P (N - P))."""
    n = x.shape[0]
    r = torch_midranks(x)
    yd = y.double()
    s = r @ yd
    p = yd.sum(0)
    return (s - p * (p + 1) / 2) / (p * (n - p))


def torchmetrics_auroc(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Exact multilabel AUROC of torchmetrics (thresholds=None), one neuron at a time."""
    from torchmetrics.functional.classification import multilabel_auroc

    n, k = y.shape
    yi = y.int()
    out = torch.empty(x.shape[1], k, dtype=torch.float64)
    for d in range(x.shape[1]):
        preds = x[:, d : d + 1].expand(n, k).contiguous()
        out[d] = multilabel_auroc(preds, yi, num_labels=k, average=None, thresholds=None).double()
    return out


def sklearn_auroc(x: np.ndarray, y: np.ndarray, pairs: list[tuple[int, int]]) -> list[float]:
    """scikit-learn's roc_auc_score for the given (neuron, concept) pairs."""
    from sklearn.metrics import roc_auc_score

    return [roc_auc_score(y[:, k], x[:, d]) for d, k in pairs]


def numpy_thresholds(maps: np.ndarray, quantile: float) -> np.ndarray:
    """Each unit's np.quantile(maps[:, d], 1 - quantile), one unit at a time."""
    return np.array([np.quantile(maps[:, d].ravel(), 1 - quantile) for d in range(maps.shape[1])], dtype=maps.dtype)


def torch_dissection_tally(maps: torch.Tensor, masks: torch.Tensor, thresholds: torch.Tensor, batch: int = 100):
    """The straightforward vectorised tally: upsample a batch, threshold, AND with every concept, sum.

    Args: maps [N, D, h, w]; masks [N, K, H, W] bool; thresholds [D].
    Returns: (intersection [D, K], unit pixels [D]) int64.
    """
    n, d = maps.shape[:2]
    k, hh, ww = masks.shape[1:]
    inter = torch.zeros(d, k, dtype=torch.int64)
    unit_px = torch.zeros(d, dtype=torch.int64)
    for s in range(0, n, batch):
        up = torch.nn.functional.interpolate(maps[s : s + batch], size=(hh, ww), mode="bilinear", align_corners=False)
        m = up > thresholds[None, :, None, None]
        unit_px += m.sum((0, 2, 3))
        lab = masks[s : s + batch]
        for c in range(k):  # one concept at a time keeps the [B, D, H, W] intermediate bounded
            inter[:, c] += (m & lab[:, c : c + 1]).sum((0, 2, 3))
    return inter, unit_px


def netdissect_lite_tally(maps: np.ndarray, masks: np.ndarray, thresholds: np.ndarray):
    """NetDissect-Lite's loop: per image and unit whose map exceeds the threshold, upsample that map,
    find its pixels above the threshold and count the concept labels there.

    Args: maps [N, D, h, w] float32; masks [N, K, H, W] bool; thresholds [D].
    Returns: (intersection [D, K], unit pixels [D]) int64.
    """
    n, d = maps.shape[:2]
    k, hh, ww = masks.shape[1:]
    inter = np.zeros((d, k), dtype=np.int64)
    unit_px = np.zeros(d, dtype=np.int64)
    for i in range(n):
        labels = masks[i].reshape(k, -1)
        for u in range(d):
            fmap = maps[i, u]
            if fmap.max() <= thresholds[u] - abs(thresholds[u]) * 1e-5:
                continue
            up = torch.nn.functional.interpolate(
                torch.from_numpy(fmap)[None, None], size=(hh, ww), mode="bilinear", align_corners=False
            )[0, 0].numpy()
            idx = np.flatnonzero(up > thresholds[u])
            unit_px[u] += len(idx)
            inter[u] += labels[:, idx].sum(1)
    return inter, unit_px
