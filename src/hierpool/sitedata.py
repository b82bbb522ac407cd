"""One dataset as the analysis stages see it: cleaned rows, column mapping, predictor scale, name."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from hierpool.fitinfo import PredictorScale


@dataclass(frozen=True, eq=False)
class SiteData:
    """What every per-site table and figure of a dataset needs besides the fits.

    Parameters
    ----------
    data : pandas.DataFrame
        The cleaned rows (``hierpool.clean.load_clean``): the predictor as the model saw it.
    columns : dict
        The role -> column mapping (outcome, predictor, group, ...).
    scale : PredictorScale
        How the model's predictor maps back to the original one.
    name : str
        The dataset's name, used in titles.
    """

    data: pd.DataFrame
    columns: dict
    scale: PredictorScale = field(default_factory=PredictorScale)
    name: str = ""
