"""Model-checking figures: the LOO comparison, LOO-PIT calibration, leave-one-site-out and new-site predictions, per-site predictive checks."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hierpool.figures import style  # noqa: F401  (figure style: Agg backend, labels drawn literally)
from hierpool.figures._common import _plain_log_axis


def loso_sites(sites: pd.DataFrame, colors: dict, dataset: str, ax=None):
    """Per held-out site: elpd per observation (joint density of its rows / n) against the site's size.

    Parameters
    ----------
    sites : DataFrame
        ``checking/loso_sites.csv``: model, site, n, elpd, elpd_per_obs and, optionally,
        ``method`` (where a model's other sites come from the fit, its refitted ones are drawn hollow).
    colors : dict
        Model -> colour (`hierpool.figures.style.model_colors`).
    dataset : str
        For the title.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.2))
    models = list(dict.fromkeys(sites["model"]))
    jitter = np.linspace(-0.06, 0.06, max(1, len(models)))
    refit = sites["method"].eq("refit") if "method" in sites else pd.Series(False, sites.index)
    for offset, model in zip(jitter, models):
        of_model = sites["model"] == model
        mixed = refit[of_model].any() and not refit[of_model].all()
        groups = (
            [(False, of_model & ~refit), (True, of_model & refit)] if mixed else [(False, of_model)]
        )
        for hollow, rows in groups:
            part, color = sites[rows], colors.get(model)
            ax.scatter(
                part["n"] * 10**offset,
                part["elpd_per_obs"],
                s=18,
                alpha=0.75,
                facecolors="none" if hollow else color,
                edgecolors=color,
                label=f"{model} (refitted)" if hollow else model,
            )
    ax.set_xscale("log")
    _plain_log_axis(ax.xaxis)
    ax.set_xlabel("observations in the held-out site (log scale)")
    ax.set_ylabel("elpd per observation of the new site")
    ax.set_title(f"{dataset}: predicting a site the model has not seen (leave-one-site-out)")
    if models:
        ax.legend(fontsize=8, frameon=False)
    ax.figure.tight_layout()
    return ax.figure


def new_site(table: pd.DataFrame, colors: dict, columns: dict, dataset: str):
    """Per model: the predictive distribution of a new site along the predictor (``checking/new_site.csv``).

    Shaded: a new observation's 50% and outer interval; line and dashes: the new site's expected
    outcome and its outer interval.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from hierpool.figures._common import _grid, _label_outer, _title

    models = list(dict.fromkeys(table["model"]))
    fig, axes = _grid(max(1, len(models)), ncols=min(3, max(1, len(models))), panel=(4.2, 3.0))
    for ax, model in zip(axes, models):
        part = table[table["model"] == model]
        color = colors.get(model, "C0")
        expected = part[part["quantity"] == "expected"].sort_values("x")
        observed = part[part["quantity"] == "observation"].sort_values("x")
        x = expected["x"].to_numpy()
        if len(x) > 1:
            if len(observed):
                ax.fill_between(x, observed["low"], observed["high"], color=color, alpha=0.15, lw=0)
                ax.fill_between(x, observed["q25"], observed["q75"], color=color, alpha=0.3, lw=0)
            ax.plot(x, expected["mean"], color=color, lw=2)
            ax.plot(x, expected["low"], color=color, lw=1, ls="--")
            ax.plot(x, expected["high"], color=color, lw=1, ls="--")
        else:
            for offset, rows in ((-0.05, expected), (0.05, observed)):
                if len(rows):
                    r = rows.iloc[0]
                    ax.errorbar(
                        [offset],
                        [r["mean"]],
                        yerr=[[r["mean"] - r["low"]], [r["high"] - r["mean"]]],
                        fmt="o",
                        color=color,
                        capsize=3,
                    )
            ax.set_xticks([-0.05, 0.05], ["expected", "observation"])
            ax.set_xlim(-0.2, 0.2)
        ax.set_title(model, fontsize=9)
    for ax in axes[len(models) :]:
        ax.set_visible(False)
    _label_outer(fig, columns.get("predictor") or "", columns["outcome"])
    _title(
        fig,
        f"{dataset}: predictions for a new site",
        "shaded: a new observation, 50% and 95%; line: the site's expected outcome, dashes 95%",
    )
    fig.tight_layout()
    return fig


def loo_pit_ecdf(pits: dict, dataset: str):
    """Per model: the ECDF of the LOO-PIT values minus the uniform's, with a pointwise 95% band.

    Inside the band: calibrated. A curve above it at low PIT (below it at high PIT) means too
    many observations in the predictive's tails (overconfident); the opposite, too uncertain.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from scipy import stats

    from hierpool.figures._common import _grid, _title

    models = list(pits)
    fig, axes = _grid(max(1, len(models)), ncols=min(3, max(1, len(models))), panel=(4.0, 2.8))
    grid = np.linspace(0, 1, 201)
    for ax, model in zip(axes, models):
        pit = np.sort(np.asarray(pits[model]))
        n = pit.size
        ecdf = np.searchsorted(pit, grid, side="right") / n
        low = stats.binom.ppf(0.025, n, grid) / n - grid
        high = stats.binom.ppf(0.975, n, grid) / n - grid
        ax.fill_between(grid, low, high, color="0.85", lw=0)
        ax.plot(grid, ecdf - grid, color="C0", lw=1.5)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("LOO-PIT")
    if models:
        axes[0].set_ylabel("ECDF − uniform")
    _title(fig, f"{dataset}: LOO-PIT calibration", "grey: pointwise 95% band of a calibrated model")
    fig.tight_layout()
    return fig


def ppc_sites(table: pd.DataFrame, dataset: str):
    """Per model: the sites' two-sided posterior predictive p-values of their mean and SD.

    Calibrated: spread over 0 to 1; a pile near 0: sites whose mean (or spread) the model
    does not reproduce.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from hierpool.figures._common import _grid, _title

    models = list(dict.fromkeys(table["model"])) if len(table) else []
    fig, axes = _grid(max(1, len(models)), ncols=min(3, max(1, len(models))), panel=(4.0, 2.8))
    bins = np.linspace(0, 1, 11)
    for ax, model in zip(axes, models):
        part = table[table["model"] == model]
        for stat, color in (("mean", "C0"), ("sd", "C1")):
            values = part.loc[part["statistic"] == stat, "p_two_sided"]
            ax.hist(values, bins=bins, alpha=0.55, color=color, label=f"site {stat}")
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("posterior predictive p-value (two-sided)")
    if models:
        axes[0].legend(fontsize=8, frameon=False)
    _title(fig, f"{dataset}: do the replicated data reproduce each site?", "site mean and SD")
    fig.tight_layout()
    return fig


def loo_comparison(table: pd.DataFrame, dataset: str):
    """ELPD-LOO per model with its standard error, best model on top; unreliable models marked."""
    table = table.sort_values("rank")
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.55 * len(table)))
    y = range(len(table))[::-1]
    colors = ["C0" if ok else "C3" for ok in table["loo_reliable"]]
    ax.errorbar(table["elpd_loo"], list(y), xerr=table["se"], fmt="none", ecolor="0.4", capsize=3)
    ax.scatter(table["elpd_loo"], list(y), c=colors, zorder=3)
    labels = [
        m + ("  (unreliable: Pareto k too high)" if not ok else "")
        for m, ok in zip(table["model"], table["loo_reliable"])
    ]
    ax.set_yticks(list(y), labels)
    best = table["elpd_loo"].iloc[0]
    ax.axvline(best, color="0.6", ls="--", lw=1)
    for yi, (w, d) in zip(y, zip(table["weight"], table["elpd_diff"])):
        ax.annotate(
            f"weight {w:.2f}, Δ {d:.1f}",
            (best, yi),
            xytext=(6, 6),
            textcoords="offset points",
            fontsize=8,
            color="0.3",
        )
    ax.set_xlabel("ELPD-LOO (higher is better; bars: ±1 SE)")
    ax.set_title(f"{dataset}: model comparison by leave-one-out CV (stacking weights)")
    fig.tight_layout()
    return fig
