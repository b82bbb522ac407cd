"""Figures of the data: observations per site, the outcome against the predictor per site."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hierpool import summaries
from hierpool.figures._common import (
    _grid,
    _original_x,
    _plain_log_axis,
    _site_frames,
    choose_sites,
    finish_panels,
    predictor_label,
    site_points,
)
from hierpool.fitinfo import PredictorScale


def observations_per_site(data: pd.DataFrame, columns: dict, dataset: str, max_labels: int = 100):
    """Bar chart of observations per site, sorted by n; site labels shown while there are few enough."""
    counts = summaries.site_counts(data, columns).sort_values(
        ["n", "site"], ascending=[False, True]
    )
    n_sites = len(counts)
    width = float(np.clip(0.22 * n_sites + 2.5, 6, 14))
    fig, ax = plt.subplots(figsize=(width, 4.2))
    x = np.arange(n_sites)
    ax.bar(x, counts["n"], color="C0", width=0.85 if n_sites < 100 else 1.0)
    if n_sites <= max_labels:
        ax.set_xticks(
            x,
            counts["site"],
            rotation=90,
            fontsize=8 if n_sites <= 30 else 6 if n_sites <= 60 else 5,
        )
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


def outcome_vs_predictor(
    data: pd.DataFrame, columns: dict, scale: PredictorScale, dataset: str, max_panels: int = 20
):
    """Scatter of outcome against predictor, one panel per site (largest sites first when there are many)."""
    counts = summaries.site_counts(data, columns, scale)
    sites, note = choose_sites(counts, max_panels, "largest")
    frames = _site_frames(data, columns)
    n_by_site = counts.set_index("site")["n"]
    all_x = _original_x(data, columns, scale)
    fig, axes = _grid(len(sites))
    for ax, site in zip(axes, sites):
        site_points(ax, frames[site], columns, scale, all_x, alpha=0.7, color="C0", zorder=2)
        ax.set_title(f"{site} (n={n_by_site[site]})", fontsize=9)
    title = f"{dataset}: {columns['outcome']} against {columns['predictor']} per {columns['group']}"
    finish_panels(fig, axes, all_x, title, note, predictor_label(columns), columns["outcome"])
    return fig
