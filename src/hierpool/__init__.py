"""hierpool: Bayesian multilevel regression for multi-site data.

The analysis library behind the Snakemake workflow: simulate and clean multi-site
data, build and fit Bambi models, check and compare them, and summarise pooling.
"""

__version__ = "0.1.0"

from hierpool.errors import ConfigError, DataError  # noqa: F401
