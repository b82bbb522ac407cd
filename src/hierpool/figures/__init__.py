"""Report figures: the data, prior and posterior lines, site estimates, checks, variance partition, shrinkage.

Every function returns a matplotlib Figure (save it with `hierpool.figures.style.save_figure`)
with a title and axis labels in the dataset's own variable names; the predictor axis is
always on the ORIGINAL scale (the model's centring undone). Figures stay readable from 5
to a few hundred sites: faceted figures show at most ``max_panels`` sites and say which,
long site lists are thinned evenly over the sites ordered by size, and markers shrink as
the number of sites grows.
"""

from __future__ import annotations

import importlib

# Each figure's module, imported when the figure is first asked for: a job that draws one figure
# does not pay for the imports of every other (arviz alone takes seconds).
_MODULE_OF = {
    "choose_sites": "_common",
    "intercept_label": "_common",
    "marker_size": "_common",
    "model_label": "_common",
    "not_applicable": "_common",
    "predictor_label": "_common",
    "loo_comparison": "checking",
    "observations_per_site": "data",
    "outcome_vs_predictor": "data",
    "ppc": "diagnostics",
    "rank_parameters": "diagnostics",
    "rank_plots": "diagnostics",
    "posterior_lines": "lines",
    "prior_lines": "lines",
    "site_intervals": "lines",
    "recovery_sites": "recovery",
    "shrinkage_arrows": "shrinkage",
    "shrinkage_by_n": "shrinkage",
    "forest": "sites",
    "icc_posterior": "variance",
    "vpc_curve": "variance",
}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_MODULE_OF))
