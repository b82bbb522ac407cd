"""Per-fit checks drawn by the figures rule: posterior predictive densities and rank plots."""

from __future__ import annotations

import arviz as az
import matplotlib.pyplot as plt
import pandas as pd

from hierpool import fitinfo, posterior, summaries
from hierpool.figures._common import _grid, _title, model_label


def ppc(fits: dict, columns: dict, dataset: str, num_pp_samples: int = 100):
    """Posterior predictive check per model: observed outcome density against replicated ones (az.plot_ppc)."""
    models = [m for m, i in fits.items() if "posterior_predictive" in i.groups()]
    fig, axes = _grid(len(models), ncols=2, panel=(5.0, 3.2), sharey=False)
    for ax, model in zip(axes, models):
        pp = fits[model].posterior_predictive
        available = int(pp.sizes["chain"] * pp.sizes["draw"])
        response = list(fits[model].observed_data.data_vars)[
            0
        ]  # e.g. "p(successes, trials)" for a binomial
        az.plot_ppc(
            fits[model],
            ax=ax,
            num_pp_samples=min(num_pp_samples, available),
            random_seed=0,
            var_names=[response],
            legend=True,
        )
        ax.set_title(model_label(model, fits[model], columns), fontsize=10)
        ax.set_xlabel(columns["outcome"], fontsize=10)
        ax.tick_params(labelbottom=True, labelsize=9)
        legend = ax.get_legend()
        if legend is not None:
            for text in legend.get_texts():
                text.set_fontsize(7)
    _title(
        fig,
        f"{dataset}: posterior predictive check (density of {columns['outcome']}: observed against replicated datasets)",
    )
    fig.supylabel("density", fontsize=10)
    fig.tight_layout()
    return fig


def rank_parameters(
    idata, columns: dict, data: pd.DataFrame | None = None
) -> list[tuple[str, dict, str]]:
    """Key parameters for rank plots: (variable, coords, label). No pooling: sigma and the smallest site's line."""
    n = fitinfo.names(columns)
    post = idata.posterior
    out = [
        (v, {}, v)
        for v in (n["intercept"], n["slope"], n["sigma"], n["sd_intercept"], n["sd_slope"])
        if v in post
    ]
    if n["np_intercept"] in post:
        site_var = post[n["np_intercept"]]
        dim = [d for d in site_var.dims if d not in posterior.SAMPLE_DIMS][0]
        label = str(site_var[dim].values[0])
        if data is not None:
            counts = summaries.site_counts(data, columns)
            label = str(counts.sort_values("n").iloc[0]["site"])
        out.append((n["np_intercept"], {dim: [label]}, f"{n['np_intercept']}[{label}]"))
        if n["np_slope"] in post:
            slope_dim = [d for d in post[n["np_slope"]].dims if d not in posterior.SAMPLE_DIMS][0]
            out.append((n["np_slope"], {slope_dim: [label]}, f"{n['np_slope']}[{label}]"))
    return out


def rank_plots(fits: dict, columns: dict, dataset: str, data: pd.DataFrame | None = None):
    """Rank plots (one row per model) of the key parameters: flat bars in every chain mean good mixing."""
    params = {m: rank_parameters(i, columns, data) for m, i in fits.items()}
    ncols = max(len(p) for p in params.values())
    fig, axes = plt.subplots(
        len(fits), ncols, figsize=(2.9 * ncols, 2.2 * len(fits) + 0.8), squeeze=False
    )
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
    _title(
        fig, f"{dataset}: rank plots of key parameters (uniform bars in every chain = chains agree)"
    )
    fig.tight_layout()
    return fig
