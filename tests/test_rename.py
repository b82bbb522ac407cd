"""Renaming every model changes no number: stages, tables and headline follow the formulas, not the names."""

from __future__ import annotations

import pandas as pd
import pytest
from analysis_fixtures import COLS, four_fits, ladder_formula, make_data

from hierpool import r2, roles, shrinkage, variance
from hierpool.fitinfo import PredictorScale
from hierpool.sitedata import SiteData

RENAMED = {
    "complete_pooling": "one_line",
    "no_pooling": "own",
    "varying_intercepts": "vi_model",
    "varying_slopes": "slopes",
}


@pytest.fixture(scope="module")
def both():
    data = make_data([2, 4, 8, 16, 32], intercepts=[1.0, 1.5, 2.0, 2.5, 3.0], seed=4)
    fits = four_fits(data)
    return (
        data,
        fits,
        {RENAMED[m]: fit for m, fit in reversed(list(fits.items()))},
    )  # other names, other order


def _numbers(table: pd.DataFrame) -> pd.DataFrame:
    """The table without its model column, in a canonical row order."""
    out = table.drop(columns=["model"]).reset_index(drop=True)
    keys = [c for c in ("role", "factor", "kind", "point", "parameter", "site", "x") if c in out]
    return out.sort_values(keys).reset_index(drop=True)


def test_stages_and_main_model_follow_the_formulas():
    formulas = {m: ladder_formula(m) for m in RENAMED}
    renamed = {RENAMED[m]: f for m, f in reversed(list(formulas.items()))}
    assert roles.stages(formulas, "site", "stress") == roles.stages(renamed, "site", "stress")
    assert roles.main_model(renamed, "site", "stress") == "slopes"


def test_every_analysis_table_has_the_same_numbers_after_renaming(both):
    data, fits, renamed = both
    scale = PredictorScale()
    for compute in (
        lambda f: variance.icc_table(f, COLS, data=data),
        lambda f: r2.r2_table(f, data, COLS),
        lambda f: variance.vpc_curve(f, COLS, scale, -1.0, 1.0, n=5, data=data),
        lambda f: variance.between_site_sd(f, COLS, scale, {"low": -1.0, "high": 1.0}, data=data),
        lambda f: shrinkage.site_estimates(f, SiteData(data, COLS, scale)),
    ):
        pd.testing.assert_frame_equal(_numbers(compute(fits)), _numbers(compute(renamed)))
    pd.testing.assert_frame_equal(
        shrinkage.shrinkage_table(fits, SiteData(data, COLS, scale)),
        shrinkage.shrinkage_table(renamed, SiteData(data, COLS, scale)),
    )
    assert set(variance.not_applicable(renamed, COLS)) == {"one_line", "own"}
