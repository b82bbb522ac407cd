"""The Gaussian likelihood from per-site sufficient statistics: each gradient costs O(sites), not O(rows).

For a Gaussian model with identity link and one grouping factor, row i of site j has mean
``eta_i = a_iᵀ theta_j``: ``a_i`` holds the row's design values (the common columns, then the
columns of the terms varying by the factor) and ``theta_j`` the coefficients (the common
ones, then site j's effects). So

    sum_i (y_i - eta_i)² = S_yy,j - 2 theta_jᵀ S_ay,j + theta_jᵀ S_aa,j theta_j

with ``S_aa,j = sum a_i a_iᵀ``, ``S_ay,j = sum a_i y_i`` and ``S_yy,j = sum y_i²`` over the site's
rows, and the log-likelihood of all rows is

    -N log(sigma) - N/2 log(2 pi) - sum_j (...) / (2 sigma²),

exactly the sum of the rows' Normal log-densities. The statistics are computed once, in
float64, from the design Bambi built. The pointwise log-likelihood (for LOO) and the
predictions still come from the rows (`hierpool.loo`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt

MAX_COLUMNS = 40
"""...and only while a site's design has at most this many columns (S_aa is columns² per site)."""


@dataclass(frozen=True)
class SiteStatistics:
    """Per-site ``S_aa`` (J, P, P), ``S_ay`` (J, P), ``S_yy`` (J,) and the number of rows N."""

    aa: np.ndarray
    ay: np.ndarray
    yy: np.ndarray
    n_rows: int


def site_statistics(
    a: np.ndarray, y: np.ndarray, index: np.ndarray, n_sites: int
) -> SiteStatistics:
    """Sufficient statistics of the rows ``a`` (N, P), outcome ``y`` (N,), site of each row ``index``.

    Parameters
    ----------
    a : numpy.ndarray
        Design values per row, shape (N, P).
    y : numpy.ndarray
        Outcome minus any offset, shape (N,).
    index : numpy.ndarray
        Site index (0 .. n_sites - 1) of each row.
    n_sites : int
        Number of sites J (sites without rows get zero statistics).
    """
    a = np.asarray(a, dtype=float)
    y = np.asarray(y, dtype=float)
    index = np.asarray(index, dtype=int)
    n_cols = a.shape[1]
    aa = np.zeros((n_sites, n_cols, n_cols))
    for p in range(n_cols):  # column by column: never an N × P × P array
        aa[:, p, :] = _sum_by(index, a * a[:, [p]], n_sites)
    return SiteStatistics(
        aa=aa,
        ay=_sum_by(index, a * y[:, None], n_sites),
        yy=np.bincount(index, weights=y * y, minlength=n_sites),
        n_rows=len(y),
    )


def _sum_by(index: np.ndarray, values: np.ndarray, n_sites: int) -> np.ndarray:
    return np.column_stack(
        [
            np.bincount(index, weights=values[:, k], minlength=n_sites)
            for k in range(values.shape[1])
        ]
    )


def residual_sum_of_squares(theta, stats: SiteStatistics):
    """``sum_j S_yy,j - 2 theta_jᵀ S_ay,j + theta_jᵀ S_aa,j theta_j`` for ``theta`` (J, P), as a tensor."""
    quadratic = ((stats.aa * theta[:, None, :]).sum(axis=-1) * theta).sum()
    return stats.yy.sum() - 2 * (theta * stats.ay).sum() + quadratic


def gaussian_log_likelihood(theta, sigma, stats: SiteStatistics):
    """The total Normal log-likelihood of the rows from their statistics (a PyTensor scalar)."""
    n = stats.n_rows
    return (
        -n * pt.log(sigma)
        - 0.5 * n * np.log(2 * np.pi)
        - residual_sum_of_squares(theta, stats) / (2 * sigma**2)
    )


def rows_of(a_parts: list[np.ndarray]) -> np.ndarray:
    """The design values of every row as one (N, P) array from blocks of shape (N,) or (N, k)."""
    return np.column_stack([p.reshape(len(p), -1) for p in a_parts])
