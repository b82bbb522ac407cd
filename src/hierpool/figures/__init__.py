"""Report figures: the data, prior and posterior lines, site estimates, checks, variance partition, shrinkage.

Every function returns a matplotlib Figure (save it with `hierpool.figures.style.save_figure`)
with a title and axis labels in the dataset's own variable names; the predictor axis is
always on the ORIGINAL scale (the model's centring undone). Figures stay readable from 5
to a few hundred sites: faceted figures show at most ``max_panels`` sites and say which,
long site lists are thinned evenly over the sites ordered by size, and markers shrink as
the number of sites grows.
"""

from __future__ import annotations

from hierpool.figures._common import (
    choose_sites,
    intercept_label,
    marker_size,
    model_label,
    not_applicable,
    predictor_label,
)
from hierpool.figures.checking import loo_comparison
from hierpool.figures.data import observations_per_site, outcome_vs_predictor
from hierpool.figures.diagnostics import ppc, rank_parameters, rank_plots
from hierpool.figures.lines import posterior_lines, prior_lines, site_intervals
from hierpool.figures.recovery import recovery_sites
from hierpool.figures.shrinkage import shrinkage_arrows, shrinkage_by_n
from hierpool.figures.sites import forest
from hierpool.figures.variance import icc_posterior, vpc_curve

__all__ = [
    "choose_sites",
    "forest",
    "icc_posterior",
    "intercept_label",
    "loo_comparison",
    "marker_size",
    "model_label",
    "not_applicable",
    "observations_per_site",
    "outcome_vs_predictor",
    "posterior_lines",
    "ppc",
    "predictor_label",
    "prior_lines",
    "rank_parameters",
    "rank_plots",
    "recovery_sites",
    "shrinkage_arrows",
    "shrinkage_by_n",
    "site_intervals",
    "vpc_curve",
]
