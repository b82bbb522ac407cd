"""Figures of the simulation study."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hierpool.simstudy.design import ESTIMATORS, INTERVAL_METHODS, LABELS


def _style():
    """pyplot with the project's figure style (`hierpool.figures.style`: Agg backend, labels drawn literally)."""
    import matplotlib.pyplot as plt

    from hierpool.figures import style  # noqa: F401

    return plt


def _panels_by(frame: pd.DataFrame, column: str, width: float, **kwargs):
    """One panel per value of ``column`` in a row: yields (figure, axes row, [(value, panel, rows)])."""
    plt = _style()
    values = sorted(frame[column].unique())
    fig, axes = plt.subplots(
        1, len(values), figsize=(width * len(values), 3.6), squeeze=False, **kwargs
    )
    return fig, axes[0], [(v, axes[0][k], frame[frame[column] == v]) for k, v in enumerate(values)]


def _finish(fig, title: str):
    """Give the figure its title and final layout, and return it."""
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def estimator_colors() -> dict[str, str]:
    """Each estimator in the colour of its model family in the report's figures (`hierpool.figures.style.MODEL_COLORS`).

    Full Bayes fits varying intercepts; empirical Bayes approximates the same model in
    closed form and takes the next free colour, as lines outside the families do there.
    """
    from hierpool.figures.style import MODEL_COLORS

    return {
        "no_pooling": MODEL_COLORS["no_pooling"],
        "complete_pooling": MODEL_COLORS["complete_pooling"],
        "full_bayes": MODEL_COLORS["varying_intercepts"],
        "empirical_bayes": "C4",
    }


def _log_scale(ax, which: str) -> None:
    """Log scale on axis ``which`` (``x`` or ``y``) with plain tick labels such as ``0.01``.

    The shared style draws all text literally, so the default ``10^x`` labels (mathtext) would show as code.
    """
    import matplotlib.ticker as ticker

    getattr(ax, f"set_{which}scale")("log")
    axis = getattr(ax, f"{which}axis")
    axis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def _tau_axis(ax, taus) -> None:
    """Log-scaled x axis with a tick at every tau of the grid."""
    values = sorted(float(t) for t in set(taus))
    ax.set_xscale("log")
    ax.set_xticks(values, [f"{t:g}" for t in values])
    ax.minorticks_off()


def plot_mse_vs_tau(mse: pd.DataFrame):
    """MSE (log scale, ±2 MC SE, lower bars cut at 10% of the value) against tau per estimator; rows: design, columns: number of sites."""
    plt = _style()
    colors = estimator_colors()
    designs, js = sorted(mse["design"].unique()), sorted(mse["n_sites"].unique())
    fig, axes = plt.subplots(
        len(designs),
        len(js),
        figsize=(4.2 * len(js), 3.2 * len(designs)),
        squeeze=False,
        sharex=True,
    )
    for i, design in enumerate(designs):
        for k, j in enumerate(js):
            ax = axes[i][k]
            part = mse[(mse["design"] == design) & (mse["n_sites"] == j)]
            for name in ESTIMATORS:
                line = part[part["estimator"] == name].sort_values("tau")
                bar = 2 * line["mc_se"].fillna(0).to_numpy()
                lower = np.minimum(
                    bar, 0.9 * line["mse"].to_numpy()
                )  # a log axis cannot show a bar below 0
                ax.errorbar(
                    line["tau"],
                    line["mse"],
                    yerr=[lower, bar],
                    marker="o",
                    ms=4,
                    capsize=2,
                    color=colors[name],
                    label=LABELS[name],
                )
            _log_scale(ax, "y")
            _tau_axis(ax, mse["tau"])
            ax.set_title(f"{design} sites, J = {j}", fontsize=10)
            if k == 0:
                ax.set_ylabel("MSE of site means")
            if i == len(designs) - 1:
                ax.set_xlabel("between-site SD tau (sigma = 1)")
    axes[0][0].legend(fontsize=8)
    return _finish(
        fig, "Mean squared error of the site means against heterogeneity (bars: ±2 Monte Carlo SE)"
    )


def plot_shrinkage_vs_n(sites: pd.DataFrame):
    """Full Bayes pooling factor (0: no pooling, 1: complete pooling) against site size, one line per tau."""
    fig, axes, panels = _panels_by(sites, "n_sites", 4.6, sharey=True)
    taus = sorted(sites["tau"].unique())
    cmap = _style().get_cmap("viridis")
    for j, ax, part in panels:
        for i, tau in enumerate(taus):
            byn = part[part["tau"] == tau].groupby("n")
            fb, eb = byn["fb_pooling"].mean(), 1 - byn["eb_weight"].mean()
            color = cmap(i / max(1, len(taus) - 1))
            ax.plot(fb.index, fb.values, marker="o", color=color, label=f"tau = {tau:g}")
            ax.plot(eb.index, eb.values, ls="--", marker="x", color=color, alpha=0.7)
        _log_scale(ax, "x")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("site size n_j (log scale)")
        ax.set_title(f"J = {j} sites", fontsize=10)
    axes[0].set_ylabel("shrinkage toward the grand mean")
    axes[0].legend(fontsize=8, title="solid: full Bayes, dashed: EB", title_fontsize=8)
    return _finish(
        fig,
        "How far each site's estimate is pulled toward the grand mean (mean over sites and replicates)",
    )


def plot_fb_vs_eb(sites: pd.DataFrame):
    """Full Bayes posterior mean against the empirical Bayes estimate, per site, one panel per tau."""
    fig, axes, panels = _panels_by(sites, "tau", 3.6)
    sizes = sorted(sites["n"].unique())
    cmap = _style().get_cmap("plasma")
    for tau, ax, part in panels:
        for i, n in enumerate(sizes):
            pts = part[part["n"] == n]
            ax.scatter(
                pts["empirical_bayes"],
                pts["full_bayes"],
                s=8,
                alpha=0.6,
                color=cmap(i / max(1, len(sizes))),
                label=f"n = {n}",
            )
        lo = float(min(part["empirical_bayes"].min(), part["full_bayes"].min()))
        hi = float(max(part["empirical_bayes"].max(), part["full_bayes"].max()))
        ax.plot([lo, hi], [lo, hi], color="0.5", lw=1)
        ax.set_title(f"tau = {tau:g}", fontsize=10)
        ax.set_xlabel("empirical Bayes estimate")
    axes[0].set_ylabel("full Bayes posterior mean")
    axes[0].legend(fontsize=7, markerscale=2)
    return _finish(
        fig, "Full Bayes against empirical Bayes, every site of every replicate (line: equal)"
    )


def plot_coverage(coverage: pd.DataFrame, level: float = 0.95):
    """Coverage of the site-mean intervals against tau: full Bayes vs empirical Bayes, per number of sites."""
    colors = estimator_colors()
    part = coverage[coverage["level"] == level]
    designs = sorted(part["design"].unique())
    fig, axes, panels = _panels_by(part, "n_sites", 4.6, sharey=True)
    markers = dict(zip(designs, "osd^v"))
    for j, ax, rows in panels:
        for method in INTERVAL_METHODS:
            for design in designs:
                line = rows[(rows["method"] == method) & (rows["design"] == design)].sort_values(
                    "tau"
                )
                ax.errorbar(
                    line["tau"],
                    line["coverage"],
                    yerr=2 * line["mc_se"].fillna(0),
                    marker=markers[design],
                    ms=4,
                    capsize=2,
                    color=colors[method],
                    label=f"{LABELS[method].split(' (')[0]}, {design}",
                )
        ax.axhline(level, color="0.4", ls="--", lw=1)
        ax.set_ylim(max(0.0, float(part["coverage"].min()) - 0.1), 1.02)
        _tau_axis(ax, part["tau"])
        ax.set_xlabel("between-site SD tau")
        ax.set_title(f"J = {j} sites", fontsize=10)
    axes[0].set_ylabel(f"coverage of {level:.0%} intervals")
    axes[0].legend(fontsize=7)
    return _finish(
        fig, f"Do the {level:.0%} intervals for the site means cover the truth? (bars: ±2 MC SE)"
    )
