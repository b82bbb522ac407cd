"""Cross-validation by refitting: held-out likelihoods, remedied LOO, and exact LOO against PSIS."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest

from hierpool import crossval, pymc_model, refitplan
from hierpool.fit import fit
from hierpool.models import build_model


def test_held_out_elpd_is_the_log_mean_density_pointwise_and_jointly_per_site():
    rng = np.random.default_rng(0)
    log_lik = rng.normal(-1, 0.3, size=(500, 4))
    pointwise, sites = crossval.held_out_elpd(log_lik, ["a", "a", "b", "a"])
    np.testing.assert_allclose(pointwise, np.log(np.exp(log_lik).mean(0)), rtol=1e-12)
    joint_a = np.log(np.exp(log_lik[:, [0, 1, 3]].sum(1)).mean())
    a = sites.set_index("site").loc["a"]
    assert a["elpd_joint"] == pytest.approx(joint_a, rel=1e-12)
    assert a["elpd"] == pytest.approx(pointwise[[0, 1, 3]].sum(), rel=1e-12)
    assert sites.set_index("site")["n"].to_dict() == {"a": 3, "b": 1}


def test_remedied_loo_replaces_the_refitted_values_and_keeps_lppd():
    rng = np.random.default_rng(1)
    ll = rng.normal(-1.0, 0.05, size=(2, 500, 20))
    ll[:, :, 4] = rng.standard_t(df=1, size=(2, 500)) * 5 - 20
    psis = az.loo(
        az.from_dict(posterior={"m": np.zeros((2, 500))}, log_likelihood={"y": ll}), pointwise=True
    )
    plan = refitplan.loo_plan(psis.pareto_k.values, 1000, 10, 10, 1)
    assert 4 in plan["high"]
    refits = [{"rows": [i], "elpd": [-30.0]} for i in plan["high"]]
    fixed, methods = crossval.remedied_loo(psis, plan, refits)
    assert fixed.loo_i.values[4] == -30.0 and methods[4] == "exact"
    assert not fixed.warning and (methods[plan["high"]] == "exact").all()
    lppd = float(psis.elpd_loo + psis.p_loo)
    assert float(fixed.elpd_loo + fixed.p_loo) == pytest.approx(lppd)
    assert float(fixed.elpd_loo) == pytest.approx(float(fixed.loo_i.values.sum()))
    unfixed, methods = crossval.remedied_loo(psis, plan, [])
    assert unfixed.warning and (methods[plan["high"]] == "unresolved").all()


def test_loso_compare_ranks_by_the_sum_of_site_densities():
    sites = pd.DataFrame(
        {
            "model": ["a", "a", "b", "b"],
            "site": ["s1", "s2", "s1", "s2"],
            "n": [3, 4, 3, 4],
            "elpd": [-5.0, -6.0, -4.0, -6.5],
        }
    )
    table = crossval.loso_compare(sites).set_index("model")
    assert table.loc["b", "rank"] == 0 and table.loc["b", "elpd_loso"] == -10.5
    assert table.loc["a", "elpd_diff"] == pytest.approx(0.5)
    assert table.loc["a", "dse"] == pytest.approx((2 * np.var([-1.0, 0.5])) ** 0.5)


@pytest.fixture(scope="module")
def outlier_data():
    """6 sites of 8; observation 3 is 3.5 residual SDs off its line: PSIS fails on it."""
    rng = np.random.default_rng(1)
    site = np.repeat(np.arange(6), 8)
    x = rng.normal(size=site.size)
    y = 1 + 0.5 * x + rng.normal(0, 0.5, 6)[site] + rng.normal(0, 0.5, site.size)
    y[3] += 3.5
    return pd.DataFrame({"y": y, "x": x, "site": pd.Categorical(site.astype(str))})


# Priors fixed (not scaled from the data), so that the model without a row has the same priors
PRIORS = {
    "Intercept": {"dist": "Normal", "mu": 0, "sigma": 5},
    "x": {"dist": "Normal", "mu": 0, "sigma": 5},
    "1|site": {"dist": "Normal", "mu": 0, "sigma": {"dist": "HalfNormal", "sigma": 1}},
    "sigma": {"dist": "HalfNormal", "sigma": 1},
}
SPEC = {"name": "vi", "formula": "y ~ x + (1|site)", "family": "gaussian", "priors": PRIORS}


@pytest.mark.parametrize(
    "formula, family",
    [
        ("y ~ x + (1|site)", "gaussian"),
        ("y ~ x + (x|site)", "gaussian"),
        ("b ~ x + (1|site)", "bernoulli"),
        ("p(k, n) ~ x + (1|site)", "binomial"),
    ],
)
def test_a_held_out_likelihood_is_the_full_one_without_those_rows(outlier_data, formula, family):
    data = outlier_data.assign(
        b=(outlier_data["y"] > 1).astype(int),
        k=(outlier_data["y"] > 0).astype(int) + (outlier_data["y"] > 1).astype(int),
        n=2,
    )
    model = build_model({"name": "m", "formula": formula, "family": family}, data, 1.0)
    held = np.array([3, 10, 11])
    full = pymc_model.build_pymc(model)
    kept = pymc_model.build_pymc(model, held_out=held)
    weighted = pymc_model.build_pymc(model, weighted=True)
    weights = np.ones(len(data))
    weights[held] = 0
    weighted.set_data(pymc_model.CV_WEIGHTS, weights)
    point = {k: v + 0.2 for k, v in full.initial_point(random_seed=2).items()}
    response = full.observed_RVs[0]
    pointwise = full.compile_fn(full.logp(vars=[response], sum=False)[0], inputs=full.value_vars)(
        {k: point[k] for k in [v.name for v in full.value_vars]}
    )
    expected = full.compile_logp()(point) - pointwise[held].sum()
    assert kept.compile_logp()(point) == pytest.approx(expected, rel=1e-10)
    assert weighted.compile_logp()(point) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("formula", ["y ~ x + (1|site)", "y ~ x + (x|site)"])
@pytest.mark.parametrize("likelihood", ["rows", "sufficient"])
def test_one_shared_model_serves_every_refit_with_its_data(outlier_data, formula, likelihood):
    """``weighted=True`` + `refit_data` equals the model built without the held-out rows."""
    model = build_model({"name": "m", "formula": formula, "family": "gaussian"}, outlier_data, 1.0)
    shared = pymc_model.build_pymc(model, likelihood=likelihood, weighted=True)
    names = {v.name for v in shared.data_vars}
    point = {k: v + 0.2 for k, v in shared.initial_point(random_seed=2).items()}
    sites = outlier_data["site"].astype(str).to_numpy()
    for held in (np.array([3, 10, 11]), np.flatnonzero(sites == sites[0])):
        data = pymc_model.refit_data(shared, held)
        assert set(data) <= names
        for name, value in data.items():
            shared.set_data(name, value)
        kept = pymc_model.build_pymc(model, likelihood=likelihood, held_out=held)
        assert shared.compile_logp()(point) == pytest.approx(kept.compile_logp()(point), rel=1e-10)


def _exact_loo_known_se(x, y, se, prior_sd, i):
    """The exact leave-one-out log density of row i of ``y ~ x`` with known SEs and Normal priors.

    Conjugate: the posterior without row i is Normal, so is the predictive. Bambi's intercept is
    that of the predictor centred at the mean of every row, as the refits' design keeps it.
    """
    design = np.column_stack([np.ones_like(x), x - x.mean()])
    keep = np.arange(x.size) != i
    w = 1.0 / se[keep] ** 2
    precision = design[keep].T @ (design[keep] * w[:, None]) + np.eye(2) / prior_sd**2
    cov = np.linalg.inv(precision)
    mean = cov @ (design[keep].T @ (w * y[keep]))
    var = design[i] @ cov @ design[i] + se[i] ** 2
    return float(-0.5 * np.log(2 * np.pi * var) - 0.5 * (y[i] - design[i] @ mean) ** 2 / var)


def test_the_remedies_move_elpd_from_psis_to_the_exact_leave_one_out_value():
    """An influential observation (far out in x and off the line) in a model whose exact LOO is
    known in closed form: PSIS fails on it, moment matching and the exact refit fix it."""
    from hierpool import momentmatch

    rng = np.random.default_rng(3)
    n = 16
    x = rng.normal(size=n)
    x[0] = 5.0
    y = 1 + 0.5 * x + rng.normal(0, 1, n)
    y[0] = 1 + 0.5 * 5 - 4.0
    data = pd.DataFrame(
        {"y": y, "x": x, "se": 1.0, "site": pd.Categorical((np.arange(n) % 4).astype(str))}
    )
    priors = {name: {"dist": "Normal", "mu": 0, "sigma": 5} for name in ("Intercept", "x")}
    spec = {"name": "line", "formula": "y ~ x", "priors": priors, "known_se": "se"}
    sampler = {
        "backend": "nutpie",
        "draws": 1000,
        "tune": 1000,
        "chains": 4,
        "seed": 5,
        "target_accept": 0.9,
        "prior_predictive_draws": 10,
        "posterior_predictive_draws": 20,
    }
    model = build_model(spec, data, 1.0)
    fitted, psis = fit(model, sampler, keep_unconstrained=True)
    k_psis = float(psis.pareto_k[0])
    plan = refitplan.loo_plan(psis.pareto_k.values, 4000, 10, 10, 1)
    assert plan["high"] == [0], psis.pareto_k.values
    exact = _exact_loo_known_se(x, y, np.ones(n), 5.0, 0)
    matched = momentmatch.remedy(model, fitted, psis, 10)
    assert matched["rows"] == [0], matched["note"]
    moment, k_moment = matched["elpd"][0], matched["pareto_k"][0]
    (result,) = crossval.run_batch(
        build_model(spec, data, 1.0), sampler, plan, ["obs0"], data["site"]
    )
    refit = result["elpd"][0]
    psis_value = float(psis.loo_i.values[0])
    print(
        f"PSIS {psis_value:.3f} (k {k_psis:.2f}), moment matching {moment:.3f} (k {k_moment:.2f}), "
        f"exact refit {refit:.3f}, closed form {exact:.3f}"
    )
    assert k_moment < refitplan.pareto_threshold(4000) < k_psis
    assert abs(moment - exact) < 0.5 * abs(psis_value - exact), (psis_value, moment, exact)
    assert abs(refit - exact) < 0.1, (refit, exact)  # a thin-tailed predictive: small MC error


def test_loo_pit_equals_arviz_on_the_same_draws(outlier_data):
    from hierpool import calibration

    sampler = {
        "backend": "nutpie",
        "draws": 300,
        "tune": 300,
        "chains": 2,
        "seed": 5,
        "target_accept": 0.9,
    }
    sampler.update(
        prior_predictive_draws=10, posterior_predictive_draws=600, keep_log_likelihood="always"
    )
    model = build_model({"name": "vi", "formula": "y ~ x + (1|site)"}, outlier_data, 1.0)
    idata, _ = fit(model, sampler)
    assert (
        idata.posterior_predictive.sizes["draw"] == 300
    )  # every draw: ArviZ's loo_pit can use them
    ours = calibration.loo_pit(model, idata, seed=0, budget_mb=0.001)  # many chunks
    theirs = az.loo_pit(idata, y="y")
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    summary = calibration.uniformity(ours)
    assert summary["n"] == len(outlier_data) and 0 <= summary["ks"] <= 1
    table = calibration.ppc_by_site(idata, outlier_data["site"].astype(str).to_numpy())
    assert set(table["statistic"]) == {"mean", "sd"} and len(table) == 12
    assert table["p_value"].between(0, 1).all()


def test_pit_of_ties_is_randomised_within_the_tied_mass():
    replicated = np.array([[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])  # draws × rows
    pit = calibration_pit(replicated, np.array([1.0, 1.0]), np.array([0.5, 0.0]))
    # row 0: P(rep < 1) = 0.5, P(rep = 1) = 0.5 → 0.5 + 0.5 × 0.5; row 1: P(rep < 1) = 0.25
    np.testing.assert_allclose(pit, [0.75, 0.25])


def calibration_pit(replicated, observed, u):
    from hierpool import calibration

    return calibration.pit_values(np.zeros_like(replicated), replicated, observed, u)


def test_known_standard_errors_leave_a_school_out_of_the_likelihood():
    from pathlib import Path

    data = pd.read_csv(Path(__file__).resolve().parents[1] / "data/raw/eight_schools.csv")
    data["school"] = data["school"].astype("category")
    spec = {"name": "p", "formula": "estimate ~ 1 + (1|school)", "known_se": "se"}
    model = build_model(spec, data, 1.0)
    full = pymc_model.build_pymc(model)
    kept = pymc_model.build_pymc(model, held_out=np.array([0, 5]))
    point = {k: v + 0.1 for k, v in full.initial_point(random_seed=1).items()}
    response = full.observed_RVs[0]
    pointwise = full.compile_fn(
        full.logp(vars=[response], sum=False)[0], inputs=full.value_vars, on_unused_input="ignore"
    )(point)
    expected = full.compile_logp()(point) - pointwise[[0, 5]].sum()
    assert kept.compile_logp()(point) == pytest.approx(expected, rel=1e-10)


def test_leave_one_site_out_refits_agree_between_the_rows_and_the_sufficient_statistics(
    outlier_data,
):
    """One compiled model per batch, either likelihood: the same held-out densities (MC error aside)."""
    data = outlier_data.copy()
    data.loc[3, "y"] -= 3.5  # no outlier: its held-out density would be mostly Monte Carlo error
    sampler = {"backend": "nutpie", "draws": 400, "tune": 400, "chains": 2, "seed": 3}
    sampler["target_accept"] = 0.9
    plan = refitplan.loso_plan("partial_pooling", data["site"], 10, 1)
    units = plan["units"][:2]
    scores = {}
    for likelihood in ("rows", "sufficient"):
        model = build_model(SPEC, data, 1.0)
        results = crossval.run_batch(
            model, {**sampler, "likelihood": likelihood}, plan, units, data["site"]
        )
        assert pymc_model.settings(model)["likelihood"] == likelihood
        scores[likelihood] = np.concatenate([r["elpd"] for r in results])
    assert scores["rows"].size == 16
    np.testing.assert_allclose(scores["sufficient"], scores["rows"], atol=0.1)
