"""Report figures: the data, prior and posterior lines, site estimates, checks, variance partition, shrinkage.

Every function returns a matplotlib Figure (save it with `hierpool.plots.save_figure`)
with a title and axis labels in the dataset's own variable names; the predictor axis is
always on the ORIGINAL scale (the model's centring undone). Figures stay readable from 5
to a few hundred sites: faceted figures show at most ``max_panels`` sites and say which,
long site lists are thinned evenly over the sites ordered by size, and markers shrink as
the number of sites grows.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import arviz as az  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

from hierpool import effects as ef  # noqa: E402
from hierpool import plots  # noqa: E402, F401  (figure style: labels drawn literally)
from hierpool.plots import MODEL_COLORS  # noqa: E402
from hierpool import roles  # noqa: E402
from hierpool import variance as va  # noqa: E402
from hierpool.effects import HDI_PROB, PredictorScale  # noqa: E402



def model_label(model: str, idata, columns: dict) -> str:
    """A model's name with its role in words, e.g. ``vi: partial pooling (varying intercepts)``."""
    return f"{model}: {roles.LABELS[ef.role(idata, columns)]}"


# --------------------------------------------------------------------------- helpers


def choose_sites(counts: pd.DataFrame, max_sites: int, how: str = "largest") -> tuple[list[str], str]:
    """Pick at most ``max_sites`` sites, ordered by n (largest first), and a note saying which were shown.

    ``how="largest"`` keeps the largest sites; ``"spread"`` keeps sites evenly spaced over
    the size order (smallest and largest included), which shows small sites too.
    """
    ordered = counts.sort_values(["n", "site"], ascending=[False, True], kind="stable")["site"].astype(str).tolist()
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


def _grid(n_panels: int, ncols: int = 4, panel: tuple[float, float] = (3.0, 2.4), sharey: bool = True):
    ncols = max(1, min(ncols, n_panels))
    nrows = math.ceil(n_panels / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel[0] * ncols, panel[1] * nrows + 0.8), sharex=True, sharey=sharey, squeeze=False)
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
    ax.text(0.5, 0.5, f"{what}: not applicable\n{why}", ha="center", va="center", fontsize=11, wrap=True)
    ax.set_title(f"{dataset}: {what}", fontsize=10)
    return fig


def site_intervals(idata, data: pd.DataFrame, columns: dict, scale: PredictorScale, dataset: str, model: str,
                   group: str = "posterior", prob: float = HDI_PROB, max_rows: int = 90):
    """Without a predictor (summary data): each site's expected outcome with its HDI, and the observed value.

    ``group="prior"`` shows what the priors imply before the data. With a known SE per row the
    observed value carries a bar of +-1.96 SE.
    """
    source = idata.prior if group == "prior" else idata
    intercept, _ = ef.site_lines(source, columns, scale, sites=ef.site_counts(data, columns)["site"], data=data)
    mean_draws = xr.apply_ufunc(ef.inverse_link, intercept, kwargs={"link": ef.model_info(idata)["link"]})
    table = ef.site_summary(mean_draws, prob)
    counts = ef.site_counts(data, columns).set_index("site")
    sites, note = choose_sites(counts.reset_index(), max_rows, "spread")
    table = table.set_index("site").loc[sites]
    y = np.arange(len(sites))[::-1]
    fig, ax = plt.subplots(figsize=(7.5, float(np.clip(0.3 * len(sites) + 1.8, 3.0, 18))))
    color = "C3" if group == "prior" else MODEL_COLORS.get(ef.role(idata, columns), "C0")
    ax.errorbar(table["mean"], y + 0.12, xerr=[table["mean"] - table["hdi_low"], table["hdi_high"] - table["mean"]], fmt="o",
                color=color, label=f"{model_label(model, idata, columns)} ({group}, {int(prob * 100)}% HDI)")
    se = ef.model_info(idata)["known_se"]
    observed = counts.loc[sites, "observed_mean"].to_numpy()
    if se:
        half = 1.96 * data.groupby(data[columns["group"]].astype(str), sort=False, observed=True)[se].mean().loc[sites].to_numpy()
        ax.errorbar(observed, y - 0.12, xerr=half, fmt="s", color="k", ms=4, lw=0.8, label="observed ± 1.96 SE")
    else:
        ax.plot(observed, y - 0.12, "s", color="k", ms=4, label="observed mean")
    ax.set_yticks(y, [f"{s} (n={counts.loc[s, 'n']})" for s in sites], fontsize=8)
    ax.set_xlabel(f"{columns['outcome']} (expected)")
    ax.set_title(f"{dataset}, {model}: {group} site means" + (f"\n({note})" if note else ""))
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
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


def _line_draws(intercept: xr.DataArray, slope: xr.DataArray, grid: np.ndarray, scale: PredictorScale,
                link: str = "identity") -> xr.DataArray:
    """Expected outcome (response scale: a probability, a rate) on an ORIGINAL-scale grid: dims (chain, draw, [site,] x)."""
    dist = xr.DataArray(np.asarray(grid) - scale.center, dims="x")
    return xr.apply_ufunc(ef.inverse_link, intercept + slope * dist, kwargs={"link": link})


def _thin(da: xr.DataArray, n: int, seed: int = 0) -> np.ndarray:
    """Up to ``n`` draws of (chain, draw, ...) as an array (draws, ...), chosen at random but reproducibly."""
    stacked = da.stack(sample=("chain", "draw")).transpose("sample", ...)
    keep = np.random.default_rng(seed).choice(stacked.sizes["sample"], size=min(n, stacked.sizes["sample"]), replace=False)
    return stacked.values[np.sort(keep)]


# --------------------------------------------------------------------------- data


def observations_per_site(data: pd.DataFrame, columns: dict, dataset: str, max_labels: int = 100):
    """Bar chart of observations per site, sorted by n; site labels shown while there are few enough."""
    counts = ef.site_counts(data, columns).sort_values(["n", "site"], ascending=[False, True])
    n_sites = len(counts)
    width = float(np.clip(0.22 * n_sites + 2.5, 6, 14))
    fig, ax = plt.subplots(figsize=(width, 4.2))
    x = np.arange(n_sites)
    ax.bar(x, counts["n"], color="C0", width=0.85 if n_sites < 100 else 1.0)
    if n_sites <= max_labels:
        ax.set_xticks(x, counts["site"], rotation=90, fontsize=8 if n_sites <= 30 else 6 if n_sites <= 60 else 5)
        ax.set_xlim(-0.7, n_sites - 0.3)
        ax.set_xlabel(columns["group"])
    else:
        ax.set_xticks([])
        ax.set_xlabel(f"{columns['group']} ({n_sites} sites, sorted by n; labels omitted)")
    if counts["n"].max() / max(counts["n"].min(), 1) > 30:
        ax.set_yscale("log")
        _plain_log_axis(ax.yaxis)
    ax.set_ylabel("observations (n)")
    total = int(counts["n"].sum())
    ax.set_title(
        f"{dataset}: observations per {columns['group']} ({n_sites} sites, {total} rows; "
        f"median {counts['n'].median():g}, range {counts['n'].min()}–{counts['n'].max()})"
    )
    fig.tight_layout()
    return fig


def outcome_vs_predictor(data: pd.DataFrame, columns: dict, scale: PredictorScale, dataset: str, max_panels: int = 20):
    """Scatter of outcome against predictor, one panel per site (largest sites first when there are many)."""
    counts = ef.site_counts(data, columns, scale)
    sites, note = choose_sites(counts, max_panels, "largest")
    frames = _site_frames(data, columns)
    n_by_site = counts.set_index("site")["n"]
    all_x = _original_x(data, columns, scale)
    fig, axes = _grid(len(sites))
    for ax, site in zip(axes, sites):
        part = frames[site]
        x = _scatter_x(_original_x(part, columns, scale), all_x)
        ax.scatter(x, part[columns["outcome"]], s=marker_size(len(part)), alpha=0.7, color="C0", edgecolor="none")
        ax.set_title(f"{site} (n={n_by_site[site]})", fontsize=9)
    _discrete_ticks(axes[0], all_x)
    _title(fig, f"{dataset}: {columns['outcome']} against {columns['predictor']} per {columns['group']}", note)
    _label_outer(fig, predictor_label(columns), columns["outcome"])
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- prior and posterior lines


def prior_lines(idata, data: pd.DataFrame, columns: dict, scale: PredictorScale, dataset: str, model: str,
                max_panels: int = 12, n_lines: int = 60, how: str = "spread"):
    """Regression lines drawn from the PRIOR, per site, over the observed predictor range, with the data for scale."""
    if "prior" not in idata.groups():
        raise ValueError(f"{model}: the fit has no prior group; refit with prior draws to plot the prior check")
    counts = ef.site_counts(data, columns, scale)
    sites, note = choose_sites(counts, max_panels, how)
    intercept, slope = ef.site_lines(idata.prior, columns, scale, sites=sites, data=data)
    link = ef.model_info(idata)["link"]
    x_all = _original_x(data, columns, scale)
    grid = np.linspace(x_all.min(), x_all.max(), 30)
    lines = _thin(_line_draws(intercept, slope, grid, scale, link).transpose("chain", "draw", "site", "x"), n_lines)
    frames = _site_frames(data, columns)
    n_by_site = counts.set_index("site")["n"]
    fig, axes = _grid(len(sites))
    for k, (ax, site) in enumerate(zip(axes, sites)):
        ax.plot(grid, lines[:, k, :].T, color="C3", alpha=0.25, lw=0.7)
        part = frames[site]
        ax.scatter(_scatter_x(_original_x(part, columns, scale), x_all), part[columns["outcome"]], s=marker_size(len(part)), color="k", zorder=3, edgecolor="none")
        ax.set_title(f"{site} (n={n_by_site[site]})", fontsize=9)
    _discrete_ticks(axes[0], x_all)
    y = data[columns["outcome"]]
    axes[0].figure.text(0.99, 0.005, f"observed {columns['outcome']} range: {y.min():.3g} to {y.max():.3g}", ha="right", fontsize=8, color="0.3")
    _title(fig, f"{dataset}, {model}: prior predictive regression lines ({lines.shape[0]} prior draws, red) and the data (black)", note)
    _label_outer(fig, predictor_label(columns), f"{columns['outcome']} (expected)")
    fig.tight_layout()
    return fig


def posterior_lines(idata, data: pd.DataFrame, columns: dict, scale: PredictorScale, dataset: str, model: str,
                    references: dict | None = None, max_panels: int = 16, how: str = "spread", prob: float = HDI_PROB):
    """Posterior mean line and HDI band per site, with the data; optional reference fits drawn as thin lines.

    ``references`` maps a label to a fit (e.g. no pooling, complete pooling) whose mean
    site line is drawn for comparison; the model's population line is dashed.
    """
    counts = ef.site_counts(data, columns, scale)
    sites, note = choose_sites(counts, max_panels, how)
    intercept, slope = ef.site_lines(idata, columns, scale, sites=sites, data=data)
    link = ef.model_info(idata)["link"]
    frames = _site_frames(data, columns)
    n_by_site = counts.set_index("site")["n"]
    x_all = _original_x(data, columns, scale)
    grid = np.linspace(x_all.min(), x_all.max(), 40)
    mu = _line_draws(intercept, slope, grid, scale, link).transpose("chain", "draw", "site", "x")
    low, high = ef.hdi_along(mu, prob)
    mean = mu.mean(("chain", "draw")).values
    population = ef.population_line(idata, columns, scale, data=data)
    pop_mean = None if population is None else _line_draws(*population, grid, scale, link).mean(("chain", "draw")).values
    ref_means = {}
    for label, ref in (references or {}).items():
        a, b = ef.site_lines(ref, columns, scale, sites=sites, data=data)
        ref_means[label] = _line_draws(a, b, grid, scale, link).transpose("chain", "draw", "site", "x").mean(("chain", "draw")).values
    y = data[columns["outcome"]].to_numpy(dtype=float)
    pad = 0.15 * (y.max() - y.min())
    ylim = (y.min() - pad, y.max() + pad)
    fig, axes = _grid(len(sites))
    for k, (ax, site) in enumerate(zip(axes, sites)):
        color = MODEL_COLORS.get(ef.role(idata, columns), "C0")
        ax.fill_between(grid, low[k], high[k], color=color, alpha=0.25, lw=0, label=f"{int(prob * 100)}% HDI")
        ax.plot(grid, mean[k], color=color, lw=1.8, label=f"{model_label(model, idata, columns)}: mean")
        if pop_mean is not None:
            ax.plot(grid, pop_mean, color="k", ls="--", lw=1, label="population line")
        part = frames[site]
        own = _original_x(part, columns, scale)
        for j, (label, values) in enumerate(ref_means.items()):
            # A reference fit is drawn over this site's own predictor range only: a no-pooling line
            # outside it (or its slope, when the predictor never varies there) is the prior talking.
            inside = (grid >= own.min() - 1e-9) & (grid <= own.max() + 1e-9)
            style = dict(color=MODEL_COLORS.get(ef.role(references[label], columns), f"C{j + 4}"),
                         label=f"{model_label(label, references[label], columns)}: mean (site's range)")
            if inside.sum() >= 2:
                ax.plot(grid[inside], values[k][inside], ls=":", lw=1.6, **style)
            else:
                a, b = ef.site_lines(references[label], columns, scale, sites=[site], data=data)
                at_mean = ef.inverse_link((a + b * (own.mean() - scale.center)).values, link).mean()
                ax.plot([own.mean()], [float(at_mean)], marker="D", ms=5, ls="none", **style)
        ax.scatter(_scatter_x(_original_x(part, columns, scale), x_all), part[columns["outcome"]], s=marker_size(len(part)), color="k", alpha=0.6, zorder=3, edgecolor="none")
        ax.set_title(f"{site} (n={n_by_site[site]})", fontsize=9)
        ax.set_ylim(*ylim)
    _discrete_ticks(axes[0], x_all)
    _title(fig, f"{dataset}, {model}: posterior regression line per {columns['group']} with {int(prob * 100)}% HDI band", note)
    _label_outer(fig, predictor_label(columns), columns["outcome"])
    fig.tight_layout()
    handles, labels = axes[0].get_legend_handles_labels()
    # Below everything (save_figure uses bbox_inches="tight", so it is kept).
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0.0))
    return fig


# --------------------------------------------------------------------------- site estimates


def forest(estimates: pd.DataFrame, columns: dict, scale: PredictorScale, dataset: str, parameter: str = "intercept",
           models: tuple[str, ...] = ("no_pooling", "varying_slopes"), population: float | None = None, max_rows: int = 90):
    """Forest plot of one site parameter (``intercept`` at the centre, or ``slope``) for several models, sorted by n.

    Estimates that only the prior informs (``identified`` False, e.g. a no-pooling slope of
    a site whose predictor never varies) are left out and counted in the note.
    """
    part = estimates[(estimates["parameter"] == parameter) & (estimates["model"].isin(models))]
    if part.empty:
        raise ValueError(f"no {parameter!r} estimates for models {models}")
    models = [m for m in models if m in set(part["model"])]
    counts = part.drop_duplicates("site")[["site", "n"]]
    sites, note = choose_sites(counts, max_rows, "spread")
    dropped = part[~part["identified"] & part["site"].isin(sites)]
    part = part[part["identified"] & part["site"].isin(sites)]
    position = {site: i for i, site in enumerate(sites[::-1])}  # largest on top
    n_rows = len(sites)
    fig, ax = plt.subplots(figsize=(7.5, float(np.clip(0.16 * n_rows + 1.8, 3.2, 18))))
    offsets = np.linspace(-0.22, 0.22, len(models)) if len(models) > 1 else [0.0]
    for offset, model in zip(offsets, models):
        rows = part[part["model"] == model]
        y = rows["site"].map(position).to_numpy() + offset
        role = rows["role"].iloc[0] if len(rows) else ""
        color = MODEL_COLORS.get(role, None)
        label = f"{model}: {roles.LABELS[role]}" if role in roles.LABELS else model
        ax.errorbar(rows["mean"], y, xerr=[rows["mean"] - rows["hdi_low"], rows["hdi_high"] - rows["mean"]], fmt="o",
                    ms=3 if n_rows > 40 else 4, lw=0.8, color=color, label=label)
    if population is not None:
        ax.axvline(population, color="k", ls="--", lw=1, label="population mean")
    n_by_site = counts.set_index("site")["n"]
    ax.set_yticks(list(position.values()), [f"{s} (n={n_by_site[s]})" for s in position], fontsize=8 if n_rows <= 40 else 6)
    ax.set_ylim(-0.8, n_rows - 0.2)
    what = intercept_label(columns, scale) if parameter == "intercept" else f"slope of {columns['outcome']} per unit {columns['predictor']}"
    ax.set_xlabel(f"{what} (posterior mean, {int(HDI_PROB * 100)}% HDI)")
    ax.set_ylabel(f"{columns['group']} (largest n at the top)")
    notes = [note] if note else []
    if len(dropped):
        notes.append(f"{dropped['site'].nunique()} prior-only estimate(s) not shown")
    ax.set_title(f"{dataset}: site {parameter}s" + (f"\n({'; '.join(notes)})" if notes else ""))
    _robust_xlim(ax, part)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def _robust_xlim(ax, part: pd.DataFrame) -> None:
    """Keep the axis on the estimates: intervals of poorly informed sites may run off the side."""
    means = part["mean"].to_numpy()
    lo = min(np.quantile(part["hdi_low"], 0.02), means.min())
    hi = max(np.quantile(part["hdi_high"], 0.98), means.max())
    pad = 0.05 * (hi - lo if hi > lo else 1.0)
    ax.set_xlim(lo - pad, hi + pad)


# --------------------------------------------------------------------------- checks


def ppc(fits: dict, columns: dict, dataset: str, num_pp_samples: int = 100):
    """Posterior predictive check per model: observed outcome density against replicated ones (az.plot_ppc)."""
    models = [m for m, i in fits.items() if "posterior_predictive" in i.groups()]
    fig, axes = _grid(len(models), ncols=2, panel=(5.0, 3.2), sharey=False)
    for ax, model in zip(axes, models):
        pp = fits[model].posterior_predictive
        available = int(pp.sizes["chain"] * pp.sizes["draw"])
        response = list(fits[model].observed_data.data_vars)[0]  # e.g. "p(successes, trials)" for a binomial
        az.plot_ppc(fits[model], ax=ax, num_pp_samples=min(num_pp_samples, available), random_seed=0, var_names=[response], legend=True)
        ax.set_title(model_label(model, fits[model], columns), fontsize=10)
        ax.set_xlabel(columns["outcome"], fontsize=10)
        ax.tick_params(labelbottom=True, labelsize=9)
        legend = ax.get_legend()
        if legend is not None:
            for text in legend.get_texts():
                text.set_fontsize(7)
    _title(fig, f"{dataset}: posterior predictive check (density of {columns['outcome']}: observed against replicated datasets)")
    fig.supylabel("density", fontsize=10)
    fig.tight_layout()
    return fig


def rank_parameters(idata, columns: dict, data: pd.DataFrame | None = None) -> list[tuple[str, dict, str]]:
    """Key parameters for rank plots: (variable, coords, label). No pooling: sigma and the smallest site's line."""
    n = ef.names(columns)
    post = idata.posterior
    out = [(v, {}, v) for v in (n["intercept"], n["slope"], n["sigma"], n["sd_intercept"], n["sd_slope"]) if v in post]
    if n["np_intercept"] in post:
        site_var = post[n["np_intercept"]]
        dim = [d for d in site_var.dims if d not in ef.SAMPLE_DIMS][0]
        label = str(site_var[dim].values[0])
        if data is not None:
            counts = ef.site_counts(data, columns)
            label = str(counts.sort_values("n").iloc[0]["site"])
        out.append((n["np_intercept"], {dim: [label]}, f"{n['np_intercept']}[{label}]"))
        if n["np_slope"] in post:
            slope_dim = [d for d in post[n["np_slope"]].dims if d not in ef.SAMPLE_DIMS][0]
            out.append((n["np_slope"], {slope_dim: [label]}, f"{n['np_slope']}[{label}]"))
    return out


def rank_plots(fits: dict, columns: dict, dataset: str, data: pd.DataFrame | None = None):
    """Rank plots (one row per model) of the key parameters: flat bars in every chain mean good mixing."""
    params = {m: rank_parameters(i, columns, data) for m, i in fits.items()}
    ncols = max(len(p) for p in params.values())
    fig, axes = plt.subplots(len(fits), ncols, figsize=(2.9 * ncols, 2.2 * len(fits) + 0.8), squeeze=False)
    for row, (model, idata) in enumerate(fits.items()):
        for col in range(ncols):
            ax = axes[row, col]
            if col >= len(params[model]):
                ax.set_visible(False)
                continue
            var, coords, label = params[model][col]
            az.plot_rank(idata, var_names=[var], coords=coords or None, ax=ax, kind="bars")
            ax.set_title(f"{model}\n{label}", fontsize=8)
            ax.set_xlabel("rank (all chains)", fontsize=8)
            ax.set_ylabel("chain", fontsize=8)
            ax.tick_params(labelsize=7)
    _title(fig, f"{dataset}: rank plots of key parameters (uniform bars in every chain = chains agree)")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- variance partition


def icc_posterior(fits: dict, columns: dict, dataset: str, prob: float = HDI_PROB, data: pd.DataFrame | None = None):
    """Posterior density of the ICC (varying intercepts) and of the VPC at the centre (varying slopes)."""
    models = [m for m, i in fits.items() if ef.site_sds(i, columns) is not None]
    if not models:
        raise ValueError("no fit with site effects: no ICC to plot")
    draws = {m: va.icc_draws(fits[m], columns, data).values.ravel() for m in models}
    every = np.concatenate(list(draws.values()))
    lo, hi = np.quantile(every, [0.0005, 0.9995])
    pad = 0.1 * (hi - lo if hi > lo else 0.1)
    lo, hi = max(0.0, lo - pad), min(1.0, hi + pad)
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    top = 0.0
    for k, model in enumerate(models):
        s = ef.summarise(draws[model], prob)
        role = ef.role(fits[model], columns)
        color = MODEL_COLORS.get(role, f"C{k}")
        what = "ICC" if role == "varying_intercepts" else "VPC at centre"
        heights, _, _ = ax.hist(draws[model], bins=60, range=(lo, hi), density=True, histtype="stepfilled", alpha=0.25, color=color)
        ax.hist(draws[model], bins=60, range=(lo, hi), density=True, histtype="step", lw=1.4, color=color,
                label=f"{model}: {what} {s['mean']:.2f}, {int(prob * 100)}% HDI [{s['hdi_low']:.2f}, {s['hdi_high']:.2f}]")
        ax.axvline(s["mean"], color=color, lw=1.2, ls="--")
        top = max(top, heights.max())
        draws[model] = (s, color)
    for k, (s, color) in enumerate(draws.values()):
        ax.hlines(-top * (0.05 + 0.06 * k), s["hdi_low"], s["hdi_high"], color=color, lw=4)
    ax.set_ylim(-top * (0.08 + 0.06 * len(models)), top * 1.3)
    ax.set_yticks([t for t in ax.get_yticks() if t >= 0])
    ax.set_xlim(lo, hi)
    residual = va.residual_variance(fits[models[0]], columns, data)[1]
    ax.set_xlabel(f"between-{columns['group']} share of {columns['outcome']} variance: sd_site² / (sd_site² + residual; {residual})",
                  fontsize=8)
    ax.set_ylabel("posterior density")
    ax.set_title(f"{dataset}: intraclass correlation (dashed: mean; bars below: {int(prob * 100)}% HDI)")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def vpc_curve(curve: pd.DataFrame, data: pd.DataFrame, columns: dict, scale: PredictorScale, dataset: str):
    """VPC(x) and the between-site SD of the expected outcome against the ORIGINAL predictor, with HDI bands."""
    if curve.empty:
        raise ValueError("empty VPC table: no fit with site effects")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for k, (model, part) in enumerate(curve.groupby("model", sort=False)):
        color = MODEL_COLORS.get(part["role"].iloc[0], f"C{k}")
        left.fill_between(part["x"], part["vpc_hdi_low"], part["vpc_hdi_high"], color=color, alpha=0.2, lw=0)
        left.plot(part["x"], part["vpc_mean"], color=color, lw=2, label=model)
        right.fill_between(part["x"], part["site_sd_hdi_low"], part["site_sd_hdi_high"], color=color, alpha=0.2, lw=0)
        right.plot(part["x"], part["site_sd_mean"], color=color, lw=2, label=model)
    x = _original_x(data, columns, scale)
    for ax in (left, right):
        ax.plot(x, np.zeros_like(x), "|", color="k", alpha=0.25, ms=8, transform=ax.get_xaxis_transform())
        ax.set_xlabel(f"{columns['predictor']} (ticks: observed values)")
        ax.axvline(scale.center, color="0.5", ls=":", lw=1)
    left.set_ylim(0, 1)
    left.set_ylabel("VPC: between-site share of variance")
    left.set_title(f"variance partition coefficient ({int(HDI_PROB * 100)}% HDI)", fontsize=10)
    right.set_ylabel(f"between-{columns['group']} SD of expected {columns['outcome']}")
    right.set_ylim(bottom=0)
    right.set_title("how far apart sites' expected outcomes are", fontsize=10)
    left.legend(fontsize=8)
    fig.suptitle(f"{dataset}: between-site variation across {columns['predictor']} (dotted: centre {scale.center:.3g})")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- shrinkage


def _shrinkage_ylim(table: pd.DataFrame, partial: str) -> tuple[float, float]:
    values = np.concatenate([table["no_pooling_intercept"], table[f"{partial}_hdi_low"], table[f"{partial}_hdi_high"]])
    lo, hi = values.min(), values.max()
    pad = 0.08 * (hi - lo if hi > lo else 1.0)
    return lo - pad, hi + pad


def shrinkage_by_n(table: pd.DataFrame, columns: dict, scale: PredictorScale, dataset: str, partial: str = "varying_intercepts_intercept"):
    """Site intercepts against n: no pooling (left) next to partial pooling (right), population mean marked."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11.5, 4.6), sharey=True)
    n = table["n"].to_numpy()
    jitter = np.exp(np.random.default_rng(0).uniform(-0.06, 0.06, len(n)))  # separate sites with equal n
    ms = 4 if len(table) <= 40 else 2.5
    pop = table["population_intercept"].iloc[0]
    for ax, column, title, color in (
        (left, "no_pooling_intercept", "no pooling: each site on its own", MODEL_COLORS["no_pooling"]),
        (right, partial, "partial pooling (varying intercepts)", MODEL_COLORS["varying_intercepts"]),
    ):
        mean = table[column].to_numpy()
        err = [mean - table[f"{column}_hdi_low"].to_numpy(), table[f"{column}_hdi_high"].to_numpy() - mean]
        ax.errorbar(n * jitter, mean, yerr=err, fmt="o", ms=ms, lw=0.7, color=color, alpha=0.85)
        if table["population_intercept"].nunique() > 1:  # a site-level predictor: each site has its own target
            ax.plot(n * jitter, table["population_intercept"], "_", color="k", ms=8, label="site's population prediction")
        else:
            ax.axhspan(table["population_intercept_hdi_low"].iloc[0], table["population_intercept_hdi_high"].iloc[0], color="k", alpha=0.08, lw=0)
            ax.axhline(pop, color="k", ls="--", lw=1, label=f"population mean {pop:.3g} (band: {int(HDI_PROB * 100)}% HDI)")
        ax.set_xscale("log")
        _plain_log_axis(ax.xaxis)
        ax.set_xlabel(f"observations in the {columns['group']} (n, log scale)")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="best")
    left.set_ylabel(f"{intercept_label(columns, scale)}\n(posterior mean, {int(HDI_PROB * 100)}% HDI)")
    left.set_ylim(*_shrinkage_ylim(table, partial))
    fig.suptitle(f"{dataset}: site estimates against site size: small sites are pulled towards the population mean")
    fig.tight_layout()
    return fig


def shrinkage_arrows(table: pd.DataFrame, columns: dict, scale: PredictorScale, dataset: str, partial: str = "varying_intercepts_intercept"):
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
        ax.annotate("", xy=(xi, b), xytext=(xi, a), arrowprops=dict(arrowstyle="-|>", color=color, lw=1.1, mutation_scale=8, shrinkA=0, shrinkB=0))
    ms = 18 if len(n) <= 40 else 8
    ax.scatter(x, start, s=ms, facecolor="white", edgecolor="0.3", lw=0.8, zorder=3, label="no pooling")
    if has_weight:
        ax.scatter(x, end, s=ms, c=weight, cmap=cmap, norm=norm, zorder=4, label="partial pooling")
    else:
        ax.scatter(x, end, s=ms, color=MODEL_COLORS["varying_intercepts"], zorder=4, label="partial pooling")
    if table["population_intercept"].nunique() > 1:
        ax.scatter(x, table["population_intercept"], marker="_", s=40, color="k", zorder=2, label="site's population prediction")
    else:
        pop = table["population_intercept"].iloc[0]
        ax.axhline(pop, color="k", ls="--", lw=1, label=f"population mean {pop:.3g}")
    ax.set_xscale("log")
    _plain_log_axis(ax.xaxis)
    lo, hi = min(start.min(), end.min()), max(start.max(), end.max())
    pad = 0.06 * (hi - lo if hi > lo else 1.0)
    ax.set_ylim(lo - pad, hi + pad)
    if has_weight:
        fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="weight of the site's own data w_j")
    ax.set_xlabel(f"observations in the {columns['group']} (n, log scale)")
    ax.set_ylabel(intercept_label(columns, scale))
    ax.set_title(f"{dataset}: shrinkage from no pooling (open) to partial pooling (filled)\nshort arrows: large sites keep their own estimate")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- recovery (simulated data)


def recovery_sites(sites: pd.DataFrame, columns: dict, scale: PredictorScale, dataset: str,
                   models: tuple[str, ...] | None = None):
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
            ax.errorbar(rows["truth"], rows["mean"], yerr=[rows["mean"] - rows["hdi95_low"], rows["hdi95_high"] - rows["mean"]],
                        fmt="o", ms=3.5, lw=0.7, alpha=0.8, color=color, label=f"{model} (RMSE {rmse:.3f})")
        lo, hi = truth.min(), truth.max()
        pad = 0.25 * (hi - lo if hi > lo else 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="k", lw=1, ls="--", label="estimate = truth")
        ax.set_xlim(lo - pad, hi + pad)
        ylim = (lo - 2 * pad, hi + 2 * pad)
        ax.set_ylim(*ylim)
        outside = int(((part["mean"] < ylim[0]) | (part["mean"] > ylim[1])).sum())
        what = intercept_label(columns, scale) if parameter == "intercept" else f"slope per unit {columns['predictor']}"
        ax.set_xlabel(f"true site {what}")
        ax.set_ylabel(f"estimated site {what}\n(posterior mean, {int(HDI_PROB * 100)}% HDI)")
        ax.set_title(f"site {parameter}s" + (f" ({outside} estimate(s) beyond the vertical axis)" if outside else ""), fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(f"{dataset}: recovery of the simulated site effects")
    fig.tight_layout()
    return fig
