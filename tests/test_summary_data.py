"""Summary data with a known standard error per row: Eight Schools (Rubin 1981; BDA3 §5.5)."""

from __future__ import annotations

from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hierpool.errors import ModelError
from hierpool.fit import fit
from hierpool.knownse import known_se_loo
from hierpool.models import build_model, known_se_column
from hierpool.priors import priors_used
from hierpool.roles import model_roles

DATA = Path(__file__).resolve().parents[1] / "data" / "raw" / "eight_schools.csv"
PRIORS = {
    "Intercept": {"dist": "Normal", "mu": 0, "sigma": 5},
    "1|school": {"dist": "Normal", "mu": 0, "sigma": {"dist": "HalfCauchy", "beta": 5}},
}
SPEC = {
    "name": "eight_schools",
    "formula": "estimate ~ 1 + (1|school)",
    "known_se": "se",
    "priors": PRIORS,
    "noncentered": True,
}
# 4 x 5000 draws: MCSE of the means is about 0.025 (mu) and 0.03 (tau); compile + sampling ~15 s on 2 cores.
SAMPLER = {
    "backend": "nutpie",
    "draws": 5000,
    "tune": 1000,
    "chains": 4,
    "seed": 8,
    "target_accept": 0.95,
    "prior_predictive_draws": 20,
    "posterior_predictive_draws": 40,
    "keep_log_likelihood": "always",
}
# Known posterior means (Stan / PyMC case study, same priors): mu 4.4, tau 3.6, rounded to 0.1.
REFERENCE = {"Intercept": 4.4, "1|school_sigma": 3.6}


def eight_schools() -> pd.DataFrame:
    data = pd.read_csv(DATA)
    data["school"] = pd.Categorical(data["school"])
    return data


@pytest.fixture(scope="module")
def es_fit():
    model = build_model(SPEC, eight_schools(), site_sd_prior_scale=1.0)
    idata, loo = fit(model, SAMPLER, cores=2)
    return model, idata, loo


def test_shipped_file_is_rubins_table():
    data = pd.read_csv(DATA)
    assert list(data.columns) == ["school", "estimate", "se"]
    assert data["school"].tolist() == list("ABCDEFGH")
    assert data["estimate"].tolist() == [28, 8, -3, 7, -1, 1, 18, 12]
    assert data["se"].tolist() == [15, 10, 16, 11, 9, 11, 10, 18]


def test_known_se_model_has_no_sigma_and_says_so():
    model = build_model(SPEC, eight_schools())
    assert known_se_column(model) == "se" and model.hierpool_known_se == "se"
    assert set(priors_used(model)) == {
        "Intercept",
        "1|school",
    }  # no sigma, and the offset is not a prior
    assert model_roles(SPEC["formula"], "school").group_terms == {"school": ("1",)}
    assert (
        "sigma" not in model.backend.model.free_RVs
        and known_se_column(build_model({"formula": "estimate ~ 1"}, eight_schools())) is None
    )


def test_posterior_means_match_the_known_eight_schools_result(es_fit):
    _, idata, _ = es_fit
    assert set(idata.posterior.data_vars) == {"Intercept", "1|school", "1|school_sigma"}
    assert int(idata.sample_stats["diverging"].sum()) < 0.01 * 20000
    for name, ref in REFERENCE.items():
        mean = float(idata.posterior[name].mean())
        mcse = float(az.mcse(idata.posterior[name], method="mean").to_array().item())
        assert mcse < 0.08, (name, mcse)
        # 4 MCSE of sampling noise plus 0.05 for the reference's rounding
        assert abs(mean - ref) < 4 * mcse + 0.05, (name, mean, mcse)


def test_fit_groups_and_log_likelihood_use_the_known_se(es_fit):
    model, idata, loo = es_fit
    data = model.data
    ll = idata.log_likelihood["estimate"]
    assert ll.shape == (4, 5000, 8)
    post = idata.posterior
    mu = post["Intercept"] + post["1|school"].rename(
        {"school__factor_dim": "__obs__"}
    ).assign_coords(__obs__=np.arange(8))
    direct = stats.norm.logpdf(
        data["estimate"].to_numpy(),
        mu.transpose("chain", "draw", "__obs__").values,
        data["se"].to_numpy(),
    )
    np.testing.assert_allclose(ll.values, direct, rtol=1e-5)
    assert np.isfinite(loo.elpd_loo) and loo.n_data_points == 8
    assert idata.posterior_predictive["estimate"].sizes["__obs__"] == 8
    assert "sigma" not in idata.prior and "1|school_sigma" in idata.prior
    small, _ = known_se_loo(model, idata.posterior, budget_mb=0.2)  # several chunks
    assert small.elpd_loo == pytest.approx(loo.elpd_loo, rel=1e-9)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"family": "t"}, "gaussian family"),
        ({"known_se": "stderr"}, "not a column"),
        (
            {"priors": {**PRIORS, "sigma": {"dist": "HalfNormal", "sigma": 1}}},
            "cannot have a prior",
        ),
    ],
)
def test_known_se_mistakes_are_model_errors(change, message):
    with pytest.raises(ModelError, match=message):
        build_model({**SPEC, **change}, eight_schools())


def test_non_positive_standard_errors_are_rejected():
    data = eight_schools()
    data.loc[2, "se"] = 0
    with pytest.raises(ModelError, match=r"finite and > 0.*1 row"):
        build_model(SPEC, data)
