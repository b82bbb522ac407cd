"""Figure of parameter recovery on simulated data: estimated against true site effects."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hierpool.figures._common import parameter_label
from hierpool.figures.style import MODEL_COLORS
from hierpool.fitinfo import PredictorScale
from hierpool.summaries import HDI_PROB


def recovery_sites(
    sites: pd.DataFrame,
    columns: dict,
    scale: PredictorScale,
    dataset: str,
    models: tuple[str, ...] | None = None,
):
    """Estimated against true site intercept and slope, with 95% HDIs, for no pooling and partial pooling.

    ``models`` defaults to the first no-pooling model and the richest partial-pooling one (by role).
    """
    if models is None:
        first = sites.drop_duplicates("model").set_index("role")["model"]
        first = first[~first.index.duplicated()]
        models = tuple(first[r] for r in ("no_pooling", "varying_slopes") if r in first.index)
        if len(models) < 2 and "varying_intercepts" in first.index:
            models += (first["varying_intercepts"],)
    parameters = [p for p in ("intercept", "slope") if p in set(sites["parameter"])]
    fig, axes = plt.subplots(1, len(parameters), figsize=(5.5 * len(parameters), 5), squeeze=False)
    for ax, parameter in zip(axes[0], parameters):
        part = sites[(sites["parameter"] == parameter) & sites["model"].isin(models)]
        truth = part["truth"].to_numpy()
        for model, rows in part.groupby("model", sort=False):
            color = MODEL_COLORS.get(rows["role"].iloc[0])
            rmse = float(np.sqrt(np.mean(rows["error"] ** 2)))
            ax.errorbar(
                rows["truth"],
                rows["mean"],
                yerr=[rows["mean"] - rows["hdi95_low"], rows["hdi95_high"] - rows["mean"]],
                fmt="o",
                ms=3.5,
                lw=0.7,
                alpha=0.8,
                color=color,
                label=f"{model} (RMSE {rmse:.3f})",
            )
        lo, hi = truth.min(), truth.max()
        pad = 0.25 * (hi - lo if hi > lo else 1.0)
        ax.plot(
            [lo - pad, hi + pad],
            [lo - pad, hi + pad],
            color="k",
            lw=1,
            ls="--",
            label="estimate = truth",
        )
        ax.set_xlim(lo - pad, hi + pad)
        ylim = (lo - 2 * pad, hi + 2 * pad)
        ax.set_ylim(*ylim)
        outside = int(((part["mean"] < ylim[0]) | (part["mean"] > ylim[1])).sum())
        what = parameter_label(parameter, columns, scale)
        ax.set_xlabel(f"true site {what}")
        ax.set_ylabel(f"estimated site {what}\n(posterior mean, {int(HDI_PROB * 100)}% HDI)")
        ax.set_title(
            f"site {parameter}s"
            + (f" ({outside} estimate(s) beyond the vertical axis)" if outside else ""),
            fontsize=10,
        )
        ax.legend(fontsize=8)
    fig.suptitle(f"{dataset}: recovery of the simulated site effects")
    fig.tight_layout()
    return fig
