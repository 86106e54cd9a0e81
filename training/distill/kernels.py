"""Kernel maths for feature distillation: Nadaraya-Watson regression and centered kernel alignment.

Nadaraya (1964), Watson (1964): m(q) = sum_j K(q, k_j) v_j / sum_j K(q, k_j).
Kornblith, Norouzi, Lee, Hinton, "Similarity of Neural Network Representations Revisited", ICML 2019:
    CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)),  HSIC(K, L) = tr(K H L H) / (n - 1)^2,
with H = I - 11^T / n; for linear kernels CKA = ||Y_c^T X_c||_F^2 / (||X_c^T X_c||_F ||Y_c^T Y_c||_F).
"""

from __future__ import annotations

import torch


def median_bandwidth(distances: torch.Tensor, factor: float = 1.0) -> torch.Tensor:
    """Median heuristic over a (batched) m x n distance matrix: of the off-diagonal entries when the
    matrix is square (queries = keys, the zero self-distances would halve the median), else of all."""
    m, n = distances.shape[-2:]
    if m == n:
        off = ~torch.eye(n, dtype=torch.bool, device=distances.device)
        values = distances[..., off].reshape(*distances.shape[:-2], -1)
    else:
        values = distances.reshape(*distances.shape[:-2], -1)
    return values.median(dim=-1).values.clamp(min=1e-6) * factor


def laplace_weights(queries: torch.Tensor, keys: torch.Tensor, bandwidth: float | torch.Tensor | None = None,
                    factor: float = 1.0) -> torch.Tensor:
    """Row-normalised Laplace kernel weights exp(-||q - k||_1 / h) (batched: ... x m x d, ... x n x d).

    h defaults to the median heuristic on the query-key L1 distances times `factor`. Normalisation is a
    softmax over -d/h, so h -> 0 gives the nearest key's weight 1 without underflow.
    """
    distances = torch.cdist(queries, keys, p=1)
    if bandwidth is None:
        bandwidth = median_bandwidth(distances, factor) if distances.shape[-1] > 1 else torch.ones(())
    bandwidth = torch.as_tensor(bandwidth, dtype=distances.dtype, device=distances.device)
    while bandwidth.dim() < distances.dim():
        bandwidth = bandwidth.unsqueeze(-1)
    return torch.softmax(-distances / bandwidth, dim=-1)


def nadaraya_watson(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                    bandwidth: float | torch.Tensor | None = None, factor: float = 1.0) -> torch.Tensor:
    """Kernel regression of `values` (... x n x e) at `queries` with a Laplace kernel on `keys`."""
    return laplace_weights(queries, keys, bandwidth, factor) @ values


def _center_gram(gram: torch.Tensor) -> torch.Tensor:
    return gram - gram.mean(-1, keepdim=True) - gram.mean(-2, keepdim=True) + gram.mean((-1, -2), keepdim=True)


def hsic(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:  # noqa: E741 - the paper's names
    n = k.shape[-1]
    return (_center_gram(k) * _center_gram(l)).sum((-1, -2)) / (n - 1) ** 2


def rbf_gram(x: torch.Tensor, factor: float = 1.0) -> torch.Tensor:
    """Gaussian kernel with sigma^2 = factor * median squared distance (scale invariant)."""
    sq = torch.cdist(x, x, p=2, compute_mode="donot_use_mm_for_euclid_dist").pow(2)  # exact, not |x|^2-2xy+|y|^2
    sigma2 = median_bandwidth(sq, factor)
    while sigma2.dim() < sq.dim():
        sigma2 = sigma2.unsqueeze(-1)
    return torch.exp(-sq / (2 * sigma2))


def _unit(x: torch.Tensor) -> torch.Tensor:
    norm = x.pow(2).sum((-1, -2), keepdim=True).sqrt()
    return x / torch.where(norm > 0, norm, torch.ones_like(norm))


def cka(x: torch.Tensor, y: torch.Tensor, kernel: str = "linear", eps: float = 1e-12) -> torch.Tensor:
    """CKA between representations x (... x n x p) and y (... x n x q) of the same n samples."""
    if kernel == "linear":
        # Unit Frobenius norm first: CKA is scale invariant, and eps is then relative to the features' scale.
        xc = _unit(x - x.mean(-2, keepdim=True))
        yc = _unit(y - y.mean(-2, keepdim=True))
        cross = (yc.transpose(-1, -2) @ xc).pow(2).sum((-1, -2))
        norm_x = (xc.transpose(-1, -2) @ xc).pow(2).sum((-1, -2)).sqrt()
        norm_y = (yc.transpose(-1, -2) @ yc).pow(2).sum((-1, -2)).sqrt()
        return cross / (norm_x * norm_y + eps)
    if kernel == "rbf":
        k, l = rbf_gram(x), rbf_gram(y)  # noqa: E741
        return hsic(k, l) / ((hsic(k, k) * hsic(l, l)).sqrt() + eps)
    raise ValueError(f"unknown CKA kernel {kernel!r}; expected 'linear' or 'rbf'")
