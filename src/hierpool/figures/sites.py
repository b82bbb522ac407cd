"""Forest plots of the site estimates of several models."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hierpool import roles
from hierpool.figures._common import choose_sites, parameter_label
from hierpool.figures.style import model_colors
from hierpool.fitinfo import PredictorScale
from hierpool.summaries import HDI_PROB


def forest(
    estimates: pd.DataFrame,
    columns: dict,
    scale: PredictorScale,
    dataset: str,
    parameter: str = "intercept",
    models: tuple[str, ...] = ("no_pooling", "varying_slopes"),
    population: float | None = None,
    max_rows: int = 90,
):
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
    colors = model_colors(
        {
            m: part.loc[part["model"] == m, "role"].iloc[0]
            for m in models
            if (part["model"] == m).any()
        }
    )
    for offset, model in zip(offsets, models):
        rows = part[part["model"] == model]
        y = rows["site"].map(position).to_numpy() + offset
        role = rows["role"].iloc[0] if len(rows) else ""
        color = colors.get(model)
        label = f"{model}: {roles.LABELS[role]}" if role in roles.LABELS else model
        ax.errorbar(
            rows["mean"],
            y,
            xerr=[rows["mean"] - rows["hdi_low"], rows["hdi_high"] - rows["mean"]],
            fmt="o",
            ms=3 if n_rows > 40 else 4,
            lw=0.8,
            color=color,
            label=label,
        )
    if population is not None:
        ax.axvline(population, color="k", ls="--", lw=1, label="population mean")
    n_by_site = counts.set_index("site")["n"]
    ax.set_yticks(
        list(position.values()),
        [f"{s} (n={n_by_site[s]})" for s in position],
        fontsize=8 if n_rows <= 40 else 6,
    )
    ax.set_ylim(-0.8, n_rows - 0.2)
    what = parameter_label(parameter, columns, scale)
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
