"""The outcome families the workflow supports: one table, read by config, cleaning, simulator and analysis.

Per Bambi family: what cleaning checks in the outcome column (`kind`) and the default link of
its mean, the scale on which intercepts, slopes, site effects and variance shares are reported.
"""

from __future__ import annotations

FAMILIES = {
    # family: (outcome kind, default link)
    "gaussian": ("continuous", "identity"),
    "t": ("continuous", "identity"),
    "bernoulli": ("binary", "logit"),
    "binomial": ("binomial", "logit"),
    "poisson": ("count", "log"),
    "negativebinomial": ("count", "log"),
}
OUTCOME_KIND = {family: kind for family, (kind, _) in FAMILIES.items()}
DEFAULT_LINK = {family: link for family, (_, link) in FAMILIES.items()}
