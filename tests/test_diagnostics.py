"""Diagnostics extraction and the convergence policy, on InferenceData with known properties."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

from hierpool.diagnostics import (
    ConvergencePolicy,
    diagnostics_table,
    fit_diagnostics,
    judge,
    verdict,
)


def idata_from(
    theta: np.ndarray, diverging: np.ndarray | None = None, wall: float = 2.0
) -> az.InferenceData:
    chains, draws = theta.shape
    rng = np.random.default_rng(1)
    stats = {
        "diverging": diverging if diverging is not None else np.zeros((chains, draws), bool),
        "energy": rng.normal(size=(chains, draws)),
    }
    idata = az.from_dict(posterior={"theta": theta}, sample_stats=stats)
    idata.posterior.attrs["hierpool_fit_wall_s"] = wall
    idata.posterior.attrs["hierpool_backend"] = "test"
    return idata


def test_well_mixed_chains_pass():
    rng = np.random.default_rng(0)
    diag = fit_diagnostics(idata_from(rng.normal(size=(4, 1000))))
    assert diag["max_rhat"] < 1.01 and diag["min_ess_bulk"] > 2000 and diag["divergences"] == 0
    assert diag["ess_per_second"] == pytest.approx(diag["min_ess_bulk"] / 2.0)
    assert len(diag["bfmi"]) == 4
    assert judge(diag, ConvergencePolicy()) == []


def test_chains_stuck_in_different_places_fail_on_rhat_and_ess():
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(4, 200)) + np.array([0, 0, 3, 3])[:, None]
    problems = judge(fit_diagnostics(idata_from(theta)), ConvergencePolicy())
    assert any(p.startswith("R-hat") and "theta" in p for p in problems)
    assert any("bulk ESS" in p for p in problems)


def test_divergences_are_counted_and_judged():
    rng = np.random.default_rng(0)
    div = np.zeros((4, 500), bool)
    div[1, [3, 7, 9]] = True
    diag = fit_diagnostics(idata_from(rng.normal(size=(4, 500)), diverging=div))
    assert diag["divergences"] == 3
    assert judge(diag, ConvergencePolicy(max_divergences=0)) == [
        "3 divergent transitions (allowed: 0)"
    ]
    assert judge(diag, ConvergencePolicy(max_divergences=5)) == []


def test_one_short_chain_is_flagged():
    rng = np.random.default_rng(0)
    problems = judge(fit_diagnostics(idata_from(rng.normal(size=(1, 20)))), ConvergencePolicy())
    assert any("only 1 chain" in p for p in problems)
    assert any("ESS" in p for p in problems)


def test_table_and_verdict_name_the_failing_model():
    rng = np.random.default_rng(0)
    good = fit_diagnostics(idata_from(rng.normal(size=(4, 1000))))
    bad = fit_diagnostics(idata_from(rng.normal(size=(1, 20))))
    policy = ConvergencePolicy(policy="fail")
    table = diagnostics_table({"good": good, "bad": bad}, policy)
    assert table.set_index("model")["passed"].to_dict() == {"good": True, "bad": False}
    result = verdict(table, policy)
    assert result["all_passed"] is False and list(result["failed_models"]) == ["bad"]
    assert result["passed_models"] == ["good"] and result["policy"] == "fail"
