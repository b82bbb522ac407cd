"""Figures of shrinkage: site estimates against site size, and the move from no to partial pooling."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hierpool.figures._common import _plain_log_axis, intercept_label
from hierpool.figures.style import MODEL_COLORS
from hierpool.fitinfo import PredictorScale
from hierpool.summaries import HDI_PROB


def _shrinkage_ylim(table: pd.DataFrame, partial: str) -> tuple[float, float]:
    values = np.concatenate(
        [table["no_pooling_intercept"], table[f"{partial}_hdi_low"], table[f"{partial}_hdi_high"]]
    )
    lo, hi = values.min(), values.max()
    pad = 0.08 * (hi - lo if hi > lo else 1.0)
    return lo - pad, hi + pad


def shrinkage_by_n(
    table: pd.DataFrame,
    columns: dict,
    scale: PredictorScale,
    dataset: str,
    partial: str = "varying_intercepts_intercept",
):
    """Site intercepts against n: no pooling (left) next to partial pooling (right), population mean marked."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11.5, 4.6), sharey=True)
    n = table["n"].to_numpy()
    jitter = np.exp(
        np.random.default_rng(0).uniform(-0.06, 0.06, len(n))
    )  # separate sites with equal n
    ms = 4 if len(table) <= 40 else 2.5
    pop = table["population_intercept"].iloc[0]
    for ax, column, title, color in (
        (
            left,
            "no_pooling_intercept",
            "no pooling: each site on its own",
            MODEL_COLORS["no_pooling"],
        ),
        (
            right,
            partial,
            "partial pooling (varying intercepts)",
            MODEL_COLORS["varying_intercepts"],
        ),
    ):
        mean = table[column].to_numpy()
        err = [
            mean - table[f"{column}_hdi_low"].to_numpy(),
            table[f"{column}_hdi_high"].to_numpy() - mean,
        ]
        ax.errorbar(n * jitter, mean, yerr=err, fmt="o", ms=ms, lw=0.7, color=color, alpha=0.85)
        if (
            table["population_intercept"].nunique() > 1
        ):  # a site-level predictor: each site has its own target
            ax.plot(
                n * jitter,
                table["population_intercept"],
                "_",
                color="k",
                ms=8,
                label="site's population prediction",
            )
        else:
            ax.axhspan(
                table["population_intercept_hdi_low"].iloc[0],
                table["population_intercept_hdi_high"].iloc[0],
                color="k",
                alpha=0.08,
                lw=0,
            )
            ax.axhline(
                pop,
                color="k",
                ls="--",
                lw=1,
                label=f"population mean {pop:.3g} (band: {int(HDI_PROB * 100)}% HDI)",
            )
        ax.set_xscale("log")
        _plain_log_axis(ax.xaxis)
        ax.set_xlabel(f"observations in the {columns['group']} (n, log scale)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="best")
    left.set_ylabel(
        f"{intercept_label(columns, scale)}\n(posterior mean, {int(HDI_PROB * 100)}% HDI)"
    )
    left.set_ylim(*_shrinkage_ylim(table, partial))
    fig.suptitle(
        f"{dataset}: site estimates against site size: small sites are pulled towards the population mean"
    )
    fig.tight_layout()
    return fig


def shrinkage_arrows(
    table: pd.DataFrame,
    columns: dict,
    scale: PredictorScale,
    dataset: str,
    partial: str = "varying_intercepts_intercept",
):
    """An arrow per site from its no-pooling estimate to its partial-pooling estimate, placed at its n."""
    fig, ax = plt.subplots(figsize=(8.5, 5))
    n = table["n"].to_numpy(dtype=float)
    x = n * np.exp(np.random.default_rng(0).uniform(-0.07, 0.07, len(n)))
    start = table["no_pooling_intercept"].to_numpy()
    end = table[partial].to_numpy()
    weight = table["weight_mean"].to_numpy()
    has_weight = bool(np.isfinite(weight).all())
    cmap = plt.get_cmap("viridis")
    norm = plt.Normalize(0, 1)
    for xi, a, b, w in zip(x, start, end, weight):
        color = cmap(norm(w)) if has_weight else MODEL_COLORS["varying_intercepts"]
        ax.annotate(
            "",
            xy=(xi, b),
            xytext=(xi, a),
            arrowprops=dict(
                arrowstyle="-|>", color=color, lw=1.1, mutation_scale=8, shrinkA=0, shrinkB=0
            ),
        )
    ms = 18 if len(n) <= 40 else 8
    ax.scatter(
        x, start, s=ms, facecolor="white", edgecolor="0.3", lw=0.8, zorder=3, label="no pooling"
    )
    if has_weight:
        ax.scatter(x, end, s=ms, c=weight, cmap=cmap, norm=norm, zorder=4, label="partial pooling")
    else:
        ax.scatter(
            x,
            end,
            s=ms,
            color=MODEL_COLORS["varying_intercepts"],
            zorder=4,
            label="partial pooling",
        )
    if table["population_intercept"].nunique() > 1:
        ax.scatter(
            x,
            table["population_intercept"],
            marker="_",
            s=40,
            color="k",
            zorder=2,
            label="site's population prediction",
        )
    else:
        pop = table["population_intercept"].iloc[0]
        ax.axhline(pop, color="k", ls="--", lw=1, label=f"population mean {pop:.3g}")
    ax.set_xscale("log")
    _plain_log_axis(ax.xaxis)
    lo, hi = min(start.min(), end.min()), max(start.max(), end.max())
    pad = 0.06 * (hi - lo if hi > lo else 1.0)
    ax.set_ylim(lo - pad, hi + pad)
    if has_weight:
        fig.colorbar(
            plt.cm.ScalarMappable(norm=norm, cmap=cmap),
            ax=ax,
            label="weight of the site's own data w_j",
        )
    ax.set_xlabel(f"observations in the {columns['group']} (n, log scale)")
    ax.set_ylabel(intercept_label(columns, scale))
    ax.set_title(
        f"{dataset}: shrinkage from no pooling (open) to partial pooling (filled)\nshort arrows: large sites keep their own estimate"
    )
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig
