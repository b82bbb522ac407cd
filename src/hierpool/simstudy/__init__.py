"""Simulation study: when does partial pooling win?

Every replicate draws site means ``theta_j = mu + tau * z_j`` and observations
``y_ij = theta_j + sigma * e_ij`` (intercept only), then estimates every site's mean four ways:

* **no pooling**: the site's sample mean ``ybar_j``;
* **complete pooling**: the grand mean of all observations;
* **empirical Bayes** (closed form): ``w_j * ybar_j + (1 - w_j) * mu_hat`` with
  ``w_j = tau2 / (tau2 + sigma2 / n_j)``, ``sigma2`` the pooled within-site variance, ``tau2``
  the DerSimonian-Laird (method-of-moments) estimate truncated at 0 and ``mu_hat`` the
  random-effects weighted mean; its interval ``+- z * sqrt(w_j * sigma2 / n_j)`` treats
  the plug-in variances as known;
* **full Bayes**: Bambi ``y ~ 1 + (1|site)`` sampled with nutpie, with the project's
  prior on the between-site SD (`hierpool.models.build_model`).

`score` compares them with the true site means; `aggregate` averages over replicates with
Monte Carlo standard errors; `findings` turns the tables into the numbers the report states.
Seeds come from `derive_seed` (a hash of the base seed, the cell and the replicate), so a
cell's data do not change when other cells are added to or removed from the grid.

Modules: `design` (grid, seeds, simulation), `estimators`, `replicate` (one replicate,
scored), `tables` (summary tables with Monte Carlo SE), `answers` (the findings as numbers)
and `plots`; the words are in ``reports/simulation_study.qmd``. Every public name is
re-exported here.
"""

from hierpool.simstudy.answers import findings
from hierpool.simstudy.design import (
    CELL,
    ESTIMATORS,
    INTERVAL_METHODS,
    LABELS,
    PARTIAL_POOLING_FORMULA,
    derive_seed,
    grid_frame,
    replicate_setup,
    simulate_replicate,
    site_sizes,
    study_record,
    study_settings,
)
from hierpool.simstudy.estimators import (
    complete_pooling,
    dersimonian_laird_tau2,
    empirical_bayes,
    full_bayes,
    no_pooling,
    pooled_sigma2,
    site_summaries,
    summarise_fit,
)
from hierpool.simstudy.plots import (
    plot_coverage,
    plot_fb_vs_eb,
    plot_mse_vs_tau,
    plot_shrinkage_vs_n,
)
from hierpool.simstudy.replicate import estimate_replicate, run_replicate, score
from hierpool.simstudy.tables import aggregate, mc_se, ratio_mc_se

__all__ = [
    "CELL",
    "ESTIMATORS",
    "INTERVAL_METHODS",
    "LABELS",
    "PARTIAL_POOLING_FORMULA",
    "aggregate",
    "complete_pooling",
    "derive_seed",
    "dersimonian_laird_tau2",
    "empirical_bayes",
    "estimate_replicate",
    "findings",
    "full_bayes",
    "grid_frame",
    "mc_se",
    "no_pooling",
    "plot_coverage",
    "plot_fb_vs_eb",
    "plot_mse_vs_tau",
    "plot_shrinkage_vs_n",
    "pooled_sigma2",
    "ratio_mc_se",
    "replicate_setup",
    "run_replicate",
    "score",
    "simulate_replicate",
    "site_sizes",
    "site_summaries",
    "study_record",
    "study_settings",
    "summarise_fit",
]
