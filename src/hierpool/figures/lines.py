"""Prior and posterior regression lines per site (or site means, for summary data without a predictor)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from hierpool import fitinfo, posterior, summaries
from hierpool.figures._common import (
    _discrete_ticks,
    _grid,
    _label_outer,
    _line_draws,
    _original_x,
    _site_frames,
    _thin,
    _title,
    choose_sites,
    finish_panels,
    model_label,
    predictor_label,
    site_points,
)
from hierpool.figures.style import MODEL_COLORS
from hierpool.sitedata import SiteData
from hierpool.summaries import HDI_PROB


def _site_curves(idata, draws, site_data: SiteData, max_panels: int, how: str, n_grid: int):
    """What both line figures need: the sites shown, their data, the predictor grid, the curves.

    ``draws`` is the fit's posterior or its prior group; the curves are on the response scale
    with dims (chain, draw, site, x).
    """
    from types import SimpleNamespace

    data, columns, scale = site_data.data, site_data.columns, site_data.scale
    counts = summaries.site_counts(data, columns, scale)
    sites, note = choose_sites(counts, max_panels, how)
    intercept, slope = posterior.site_lines(draws, columns, scale, sites=sites, data=data)
    link = fitinfo.model_info(idata)["link"]
    x_all = _original_x(data, columns, scale)
    grid = np.linspace(x_all.min(), x_all.max(), n_grid)
    curves = _line_draws(intercept, slope, grid, scale, link).transpose(
        "chain", "draw", "site", "x"
    )
    return SimpleNamespace(sites=sites, note=note, frames=_site_frames(data, columns),
                           n_by_site=counts.set_index("site")["n"], x_all=x_all, grid=grid, link=link,
                           curves=curves)  # fmt: skip


def prior_lines(
    idata, site_data: SiteData, model: str, max_panels: int = 12, n_lines: int = 60, how="spread"
):
    """Regression lines drawn from the PRIOR, per site, over the observed predictor range, with the data for scale.

    Parameters
    ----------
    idata : arviz.InferenceData
        The fit, with its ``prior`` group.
    site_data : SiteData
        The dataset's rows, column mapping, predictor scale and name.
    model : str
        The model's name, for the title.
    max_panels, n_lines : int
        How many sites (panels) and prior draws (lines per panel) at most.
    how : {"spread", "largest"}
        Which sites when there are more than ``max_panels`` (`choose_sites`).
    """
    data, columns, scale, dataset = (
        site_data.data,
        site_data.columns,
        site_data.scale,
        site_data.name,
    )
    if "prior" not in idata.groups():
        raise ValueError(
            f"{model}: the fit has no prior group; refit with prior draws to plot the prior check"
        )
    c = _site_curves(idata, idata.prior, site_data, max_panels, how, 30)
    sites, note, frames, n_by_site = c.sites, c.note, c.frames, c.n_by_site
    x_all, grid = c.x_all, c.grid
    lines = _thin(c.curves, n_lines)
    fig, axes = _grid(len(sites))
    for k, (ax, site) in enumerate(zip(axes, sites)):
        ax.plot(grid, lines[:, k, :].T, color="C3", alpha=0.25, lw=0.7)
        site_points(ax, frames[site], columns, scale, x_all)
        ax.set_title(f"{site} (n={n_by_site[site]})", fontsize=9)
    _discrete_ticks(axes[0], x_all)
    y = data[columns["outcome"]]
    axes[0].figure.text(
        0.99,
        0.005,
        f"observed {columns['outcome']} range: {y.min():.3g} to {y.max():.3g}",
        ha="right",
        fontsize=8,
        color="0.3",
    )
    _title(
        fig,
        f"{dataset}, {model}: prior predictive regression lines ({lines.shape[0]} prior draws, red) and the data (black)",
        note,
    )
    _label_outer(fig, predictor_label(columns), f"{columns['outcome']} (expected)")
    fig.tight_layout()
    return fig


def posterior_lines(
    idata,
    site_data: SiteData,
    model: str,
    references: dict | None = None,
    max_panels: int = 16,
    how: str = "spread",
    prob: float = HDI_PROB,
):
    """Posterior mean line and HDI band per site, with the data; optional reference fits drawn as thin lines.

    Parameters
    ----------
    idata : arviz.InferenceData
        The fit drawn.
    site_data : SiteData
        The dataset's rows, column mapping, predictor scale and name.
    model : str
        The model's name, for the title and legend.
    references : dict, optional
        Label -> fit (e.g. no pooling) whose mean site line is drawn for comparison over each
        site's own predictor range; the model's population line is dashed.
    max_panels : int
        How many sites (panels) at most; ``how`` chooses them (`choose_sites`).
    prob : float
        The HDI band's probability.
    """
    data, columns, scale, dataset = (
        site_data.data,
        site_data.columns,
        site_data.scale,
        site_data.name,
    )
    c = _site_curves(idata, idata, site_data, max_panels, how, 40)
    sites, note, frames, n_by_site = c.sites, c.note, c.frames, c.n_by_site
    x_all, grid, link, mu = c.x_all, c.grid, c.link, c.curves
    low, high = summaries.hdi_along(mu, prob)
    mean = mu.mean(("chain", "draw")).values
    population = posterior.population_line(idata, columns, scale, data=data)
    pop_mean = (
        None
        if population is None
        else _line_draws(*population, grid, scale, link).mean(("chain", "draw")).values
    )
    ref_means = {}
    for label, ref in (references or {}).items():
        a, b = posterior.site_lines(ref, columns, scale, sites=sites, data=data)
        ref_means[label] = (
            _line_draws(a, b, grid, scale, link)
            .transpose("chain", "draw", "site", "x")
            .mean(("chain", "draw"))
            .values
        )
    y = data[columns["outcome"]].to_numpy(dtype=float)
    pad = 0.15 * (y.max() - y.min())
    ylim = (y.min() - pad, y.max() + pad)
    fig, axes = _grid(len(sites))
    for k, (ax, site) in enumerate(zip(axes, sites)):
        color = MODEL_COLORS.get(fitinfo.role(idata, columns), "C0")
        ax.fill_between(
            grid, low[k], high[k], color=color, alpha=0.25, lw=0, label=f"{int(prob * 100)}% HDI"
        )
        ax.plot(
            grid, mean[k], color=color, lw=1.8, label=f"{model_label(model, idata, columns)}: mean"
        )
        if pop_mean is not None:
            ax.plot(grid, pop_mean, color="k", ls="--", lw=1, label="population line")
        part = frames[site]
        own = _original_x(part, columns, scale)
        for j, (label, values) in enumerate(ref_means.items()):
            # A reference fit is drawn over this site's own predictor range only: a no-pooling line
            # outside it (or its slope, when the predictor never varies there) is the prior talking.
            inside = (grid >= own.min() - 1e-9) & (grid <= own.max() + 1e-9)
            style = dict(
                color=MODEL_COLORS.get(fitinfo.role(references[label], columns), f"C{j + 4}"),
                label=f"{model_label(label, references[label], columns)}: mean (site's range)",
            )
            if inside.sum() >= 2:
                ax.plot(grid[inside], values[k][inside], ls=":", lw=1.6, **style)
            else:
                a, b = posterior.site_lines(
                    references[label], columns, scale, sites=[site], data=data
                )
                at_mean = posterior.inverse_link(
                    (a + b * (own.mean() - scale.center)).values, link
                ).mean()
                ax.plot([own.mean()], [float(at_mean)], marker="D", ms=5, ls="none", **style)
        site_points(ax, part, columns, scale, x_all, alpha=0.6)
        ax.set_title(f"{site} (n={n_by_site[site]})", fontsize=9)
        ax.set_ylim(*ylim)
    title = f"{dataset}, {model}: posterior regression line per {columns['group']} with {int(prob * 100)}% HDI band"
    finish_panels(fig, axes, x_all, title, note, predictor_label(columns), columns["outcome"])
    handles, labels = axes[0].get_legend_handles_labels()
    # Below everything (save_figure uses bbox_inches="tight", so it is kept).
    fig.legend(
        handles,
        labels,
        loc="upper center",
        ncol=len(labels),
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(0.5, 0.0),
    )
    return fig


def site_intervals(
    idata,
    site_data: SiteData,
    model: str,
    group: str = "posterior",
    prob: float = HDI_PROB,
    max_rows: int = 90,
):
    """Without a predictor (summary data): each site's expected outcome with its HDI, and the observed value.

    ``group="prior"`` shows what the priors imply before the data. With a known SE per row the
    observed value carries a bar of +-1.96 SE. ``site_data`` is the dataset's rows, column
    mapping, predictor scale and name; at most ``max_rows`` sites are shown.
    """
    data, columns, scale, dataset = (
        site_data.data,
        site_data.columns,
        site_data.scale,
        site_data.name,
    )
    source = idata.prior if group == "prior" else idata
    intercept, _ = posterior.site_lines(
        source, columns, scale, sites=summaries.site_counts(data, columns)["site"], data=data
    )
    mean_draws = xr.apply_ufunc(
        posterior.inverse_link, intercept, kwargs={"link": fitinfo.model_info(idata)["link"]}
    )
    table = summaries.site_summary(mean_draws, prob)
    counts = summaries.site_counts(data, columns).set_index("site")
    sites, note = choose_sites(counts.reset_index(), max_rows, "spread")
    table = table.set_index("site").loc[sites]
    y = np.arange(len(sites))[::-1]
    fig, ax = plt.subplots(figsize=(7.5, float(np.clip(0.3 * len(sites) + 1.8, 3.0, 18))))
    color = "C3" if group == "prior" else MODEL_COLORS.get(fitinfo.role(idata, columns), "C0")
    ax.errorbar(
        table["mean"],
        y + 0.12,
        xerr=[table["mean"] - table["hdi_low"], table["hdi_high"] - table["mean"]],
        fmt="o",
        color=color,
        label=f"{model_label(model, idata, columns)} ({group}, {int(prob * 100)}% HDI)",
    )
    se = fitinfo.model_info(idata)["known_se"]
    observed = counts.loc[sites, "observed_mean"].to_numpy()
    if se:
        half = (
            1.96
            * data.groupby(data[columns["group"]].astype(str), sort=False, observed=True)[se]
            .mean()
            .loc[sites]
            .to_numpy()
        )
        ax.errorbar(
            observed,
            y - 0.12,
            xerr=half,
            fmt="s",
            color="k",
            ms=4,
            lw=0.8,
            label="observed ± 1.96 SE",
        )
    else:
        ax.plot(observed, y - 0.12, "s", color="k", ms=4, label="observed mean")
    ax.set_yticks(y, [f"{s} (n={counts.loc[s, 'n']})" for s in sites], fontsize=8)
    ax.set_xlabel(f"{columns['outcome']} (expected)")
    ax.set_title(f"{dataset}, {model}: {group} site means" + (f"\n({note})" if note else ""))
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig
