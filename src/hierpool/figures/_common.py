"""Shared pieces of the report figures: site selection, panel grids, labels, line draws.

Importing it applies the figure style of `hierpool.figures.style` (Agg backend, literal text)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
import xarray as xr

from hierpool import fitinfo, posterior, roles
from hierpool.figures import style as _style  # noqa: F401  (figure style: Agg backend, literal labels)
from hierpool.fitinfo import PredictorScale


def model_label(model: str, idata, columns: dict) -> str:
    """A model's name with its role in words, e.g. ``vi: partial pooling (varying intercepts)``."""
    return f"{model}: {roles.LABELS[fitinfo.role(idata, columns)]}"


def choose_sites(
    counts: pd.DataFrame, max_sites: int, how: str = "largest"
) -> tuple[list[str], str]:
    """Pick at most ``max_sites`` sites, ordered by n (largest first), and a note saying which were shown.

    ``how="largest"`` keeps the largest sites; ``"spread"`` keeps sites evenly spaced over
    the size order (smallest and largest included), which shows small sites too.
    """
    ordered = (
        counts.sort_values(["n", "site"], ascending=[False, True], kind="stable")["site"]
        .astype(str)
        .tolist()
    )
    total = len(ordered)
    if total <= max_sites:
        return ordered, ""
    if how == "largest":
        return ordered[:max_sites], f"{max_sites} largest of {total} sites"
    if how == "spread":
        index = np.unique(np.linspace(0, total - 1, max_sites).round().astype(int))
        return [ordered[i] for i in index], f"{len(index)} of {total} sites, spread over sizes"
    raise ValueError(f"how must be 'largest' or 'spread', got {how!r}")


def marker_size(n_points: int) -> float:
    """Scatter marker area that keeps dense panels legible."""
    return float(np.clip(60.0 / np.sqrt(max(n_points, 1)), 3.0, 25.0))


def _grid(
    n_panels: int, ncols: int = 4, panel: tuple[float, float] = (3.0, 2.4), sharey: bool = True
):
    ncols = max(1, min(ncols, n_panels))
    nrows = math.ceil(n_panels / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(panel[0] * ncols, panel[1] * nrows + 0.8),
        sharex=True,
        sharey=sharey,
        squeeze=False,
    )
    for ax in axes.ravel()[n_panels:]:
        ax.set_visible(False)
    return fig, axes.ravel()[:n_panels]


def _title(fig, text: str, note: str = "") -> None:
    fig.suptitle(text + (f"\n({note})" if note else ""), fontsize=12)


def _label_outer(fig, xlabel: str, ylabel: str) -> None:
    fig.supxlabel(xlabel, fontsize=10)
    fig.supylabel(ylabel, fontsize=10)


def predictor_label(columns: dict) -> str:
    return columns["predictor"]


def intercept_label(columns: dict, scale: PredictorScale) -> str:
    """What a site 'intercept' is here: the expected outcome at the predictor's centre."""
    if not columns.get("predictor"):
        return f"site mean of {columns['outcome']}"
    return f"{columns['outcome']} at {columns['predictor']} = {scale.center:.3g}"


def not_applicable(dataset: str, what: str, why: str):
    """A figure that says why it is empty (its file is still an output of its rule)."""
    fig, ax = plt.subplots(figsize=(6.5, 1.8))
    ax.axis("off")
    ax.text(
        0.5, 0.5, f"{what}: not applicable\n{why}", ha="center", va="center", fontsize=11, wrap=True
    )
    ax.set_title(f"{dataset}: {what}", fontsize=10)
    return fig


def _original_x(data: pd.DataFrame, columns: dict, scale: PredictorScale) -> np.ndarray:
    return scale.to_original(data[columns["predictor"]].to_numpy(dtype=float))


def _plain_log_axis(axis) -> None:
    """Log-scaled axis labelled 1, 10, 100 rather than 10^0, 10^1, 10^2."""
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))


def _scatter_x(x: np.ndarray, all_x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Predictor values for a scatter: a small horizontal jitter when the predictor takes few values (e.g. 0/1)."""
    distinct = np.unique(all_x)
    if distinct.size > 10:
        return x
    step = np.min(np.diff(distinct)) if distinct.size > 1 else 1.0
    return x + np.random.default_rng(seed).uniform(-0.06, 0.06, len(x)) * step


def _discrete_ticks(ax, all_x: np.ndarray) -> None:
    distinct = np.unique(all_x)
    if distinct.size <= 5:
        ax.set_xticks(distinct, [f"{v:g}" for v in distinct])


def _site_frames(data: pd.DataFrame, columns: dict) -> dict[str, pd.DataFrame]:
    labels = data[columns["group"]].astype(str)
    return {site: part for site, part in data.groupby(labels.to_numpy(), sort=False)}


def _line_draws(
    intercept: xr.DataArray,
    slope: xr.DataArray,
    grid: np.ndarray,
    scale: PredictorScale,
    link: str = "identity",
) -> xr.DataArray:
    """Expected outcome (response scale: a probability, a rate) on an ORIGINAL-scale grid: dims (chain, draw, [site,] x)."""
    dist = xr.DataArray(np.asarray(grid) - scale.center, dims="x")
    return xr.apply_ufunc(posterior.inverse_link, intercept + slope * dist, kwargs={"link": link})


def _thin(da: xr.DataArray, n: int, seed: int = 0) -> np.ndarray:
    """Up to ``n`` draws of (chain, draw, ...) as an array (draws, ...), chosen at random but reproducibly."""
    stacked = da.stack(sample=("chain", "draw")).transpose("sample", ...)
    keep = np.random.default_rng(seed).choice(
        stacked.sizes["sample"], size=min(n, stacked.sizes["sample"]), replace=False
    )
    return stacked.values[np.sort(keep)]


def parameter_label(parameter: str, columns: dict, scale: PredictorScale) -> str:
    """What a site ``intercept`` or ``slope`` is, in the dataset's own variable names."""
    if parameter == "intercept":
        return intercept_label(columns, scale)
    return f"slope of {columns['outcome']} per unit {columns['predictor']}"


def finish_panels(
    fig, axes, x_all: np.ndarray, title: str, note: str, xlabel: str, ylabel: str
) -> None:
    """The common ending of a figure with one panel per site: ticks, titles, shared labels, layout."""
    _discrete_ticks(axes[0], x_all)
    _title(fig, title, note)
    _label_outer(fig, xlabel, ylabel)
    fig.tight_layout()


def site_points(
    ax, part: pd.DataFrame, columns: dict, scale: PredictorScale, x_all: np.ndarray, **style
) -> None:
    """A site's observations as points (black, jittered where the predictor is discrete)."""
    ax.scatter(
        _scatter_x(_original_x(part, columns, scale), x_all),
        part[columns["outcome"]],
        s=marker_size(len(part)),
        **{"color": "k", "zorder": 3, "edgecolor": "none", **style},
    )
