"""Figures of the variance partition: the ICC posterior and the VPC against the predictor."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hierpool import fitinfo, posterior, summaries, variance
from hierpool.figures._common import _original_x
from hierpool.figures.style import model_colors
from hierpool.fitinfo import PredictorScale
from hierpool.summaries import HDI_PROB


def icc_posterior(
    fits: dict,
    columns: dict,
    dataset: str,
    prob: float = HDI_PROB,
    data: pd.DataFrame | None = None,
):
    """Posterior density of the ICC (varying intercepts) and of the VPC at the centre (varying slopes)."""
    models = [m for m, i in fits.items() if posterior.site_sds(i, columns) is not None]
    if not models:
        raise ValueError("no fit with site effects: no ICC to plot")
    draws = {m: variance.icc_draws(fits[m], columns, data).values.ravel() for m in models}
    every = np.concatenate(list(draws.values()))
    lo, hi = np.quantile(every, [0.0005, 0.9995])
    pad = 0.1 * (hi - lo if hi > lo else 0.1)
    lo, hi = max(0.0, lo - pad), min(1.0, hi + pad)
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    top = 0.0
    colors = model_colors({m: fitinfo.role(fits[m], columns) for m in models})
    for model in models:
        s = summaries.summarise(draws[model], prob)
        role = fitinfo.role(fits[model], columns)
        color = colors[model]
        what = "ICC" if role == "varying_intercepts" else "VPC at centre"
        bins = {"bins": 60, "range": (lo, hi), "density": True, "color": color}
        heights, _, _ = ax.hist(draws[model], histtype="stepfilled", alpha=0.25, **bins)
        ax.hist(
            draws[model],
            histtype="step",
            lw=1.4,
            **bins,
            label=f"{model}: {what} {s['mean']:.2f}, {int(prob * 100)}% HDI [{s['hdi_low']:.2f}, {s['hdi_high']:.2f}]",
        )
        ax.axvline(s["mean"], color=color, lw=1.2, ls="--")
        top = max(top, heights.max())
        draws[model] = (s, color)
    for k, (s, color) in enumerate(draws.values()):
        ax.hlines(-top * (0.05 + 0.06 * k), s["hdi_low"], s["hdi_high"], color=color, lw=4)
    ax.set_ylim(-top * (0.08 + 0.06 * len(models)), top * 1.3)
    ax.set_yticks([t for t in ax.get_yticks() if t >= 0])
    ax.set_xlim(lo, hi)
    residual = variance.residual_variance(fits[models[0]], columns, data)[1]
    ax.set_xlabel(
        f"between-{columns['group']} share of {columns['outcome']} variance: sd_site² / (sd_site² + residual; {residual})",
        fontsize=8,
    )
    ax.set_ylabel("posterior density")
    ax.set_title(
        f"{dataset}: intraclass correlation (dashed: mean; bars below: {int(prob * 100)}% HDI)"
    )
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def vpc_curve(
    curve: pd.DataFrame, data: pd.DataFrame, columns: dict, scale: PredictorScale, dataset: str
):
    """VPC(x) and the between-site SD of the expected outcome against the ORIGINAL predictor, with HDI bands."""
    if curve.empty:
        raise ValueError("empty VPC table: no fit with site effects")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = model_colors(dict(zip(curve["model"], curve["role"])))
    for model, part in curve.groupby("model", sort=False):
        color = colors[model]
        left.fill_between(
            part["x"], part["vpc_hdi_low"], part["vpc_hdi_high"], color=color, alpha=0.2, lw=0
        )
        left.plot(part["x"], part["vpc_mean"], color=color, lw=2, label=model)
        right.fill_between(
            part["x"],
            part["site_sd_hdi_low"],
            part["site_sd_hdi_high"],
            color=color,
            alpha=0.2,
            lw=0,
        )
        right.plot(part["x"], part["site_sd_mean"], color=color, lw=2, label=model)
    x = _original_x(data, columns, scale)
    for ax in (left, right):
        ax.plot(
            x,
            np.zeros_like(x),
            "|",
            color="k",
            alpha=0.25,
            ms=8,
            transform=ax.get_xaxis_transform(),
        )
        ax.set_xlabel(f"{columns['predictor']} (ticks: observed values)")
        ax.axvline(scale.center, color="0.5", ls=":", lw=1)
    left.set_ylim(0, 1)
    left.set_ylabel("VPC: between-site share of variance")
    left.set_title(f"variance partition coefficient ({int(HDI_PROB * 100)}% HDI)", fontsize=10)
    right.set_ylabel(f"between-{columns['group']} SD of expected {columns['outcome']}")
    right.set_ylim(bottom=0)
    right.set_title("how far apart sites' expected outcomes are", fontsize=10)
    left.legend(fontsize=8)
    fig.suptitle(
        f"{dataset}: between-site variation across {columns['predictor']} (dotted: centre {scale.center:.3g})"
    )
    fig.tight_layout()
    return fig
