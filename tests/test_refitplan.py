"""Refit plans: the Pareto-k threshold, exact refits or K-fold, folds and held-out rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hierpool import crossval, refitplan


def test_the_pareto_threshold_depends_on_the_number_of_draws():
    assert refitplan.pareto_threshold(8000) == pytest.approx(0.7)
    assert refitplan.pareto_threshold(200) == pytest.approx(1 - 1 / np.log10(200))
    k = np.array([0.2, 0.6, 0.9, 0.68])
    assert refitplan.high_k(k, 8000).tolist() == [2]
    assert refitplan.high_k(k, 200).tolist() == [2, 3, 1]  # 0.565 for 200 draws; highest first


def test_the_plan_chooses_exact_refits_then_k_fold():
    k = np.array([0.1, 0.9, 0.2, 0.8])
    assert refitplan.loo_plan(k[[0, 2]], 8000, 10, 10, 1)["method"] == "psis"
    exact = refitplan.loo_plan(k, 8000, 10, 10, 1)
    assert exact["method"] == "exact" and exact["units"] == ["obs1", "obs3"]
    kfold = refitplan.loo_plan(k, 8000, 1, 5, 1)
    assert kfold["method"] == "kfold" and kfold["units"] == [f"fold{i}" for i in range(1, 6)]
    assert refitplan.loo_plan(k, 8000, 1, 0, 1)["method"] == "unresolved"
    assert refitplan.batches(kfold["units"], 2) == [
        ["fold1", "fold2"],
        ["fold3", "fold4"],
        ["fold5"],
    ]


def test_k_fold_spreads_every_site_over_the_folds():
    groups = np.repeat(["a", "b", "c"], [2, 9, 30])
    fold = refitplan.kfold_assignment(groups, 4, seed=3)
    assert set(fold) == {1, 2, 3, 4}
    assert np.bincount(fold)[1:].max() - np.bincount(fold)[1:].min() <= 1  # balanced
    for site in "abc":
        counts = np.bincount(fold[groups == site], minlength=5)[1:]
        assert counts.max() - counts.min() <= 1  # each site spread evenly
    assert (refitplan.kfold_assignment(groups, 4, seed=3) == fold).all()
    plan = {"folds": 4, "seed": 3}
    rows = [refitplan.held_out_rows(f"fold{k}", plan, groups) for k in range(1, 5)]
    assert sorted(np.concatenate(rows).tolist()) == list(range(len(groups)))


def test_site_folds_are_one_per_site_up_to_the_maximum():
    sites = [f"s{i}" for i in range(7)]
    assert refitplan.site_folds(sites, 10, 1) == {s: i + 1 for i, s in enumerate(sorted(sites))}
    grouped = refitplan.site_folds(sites, 3, 1)
    assert sorted(set(grouped.values())) == [1, 2, 3]
    assert sorted(np.bincount(list(grouped.values()))[1:]) == [2, 2, 3]
    plan = refitplan.loso_plan("varying_intercepts", sites * 2, 3, 1)
    held = refitplan.held_out_rows("site1", plan, np.array(sites * 2))
    assert {(sites * 2)[i] for i in held} == {s for s, k in grouped.items() if k == 1}
    none = refitplan.loso_plan("no_pooling", sites, 3, 1)
    assert none["method"] == "none" and "cannot predict a new site" in none["reason"]
    assert refitplan.loso_plan("complete_pooling", sites, 0, 1)["method"] == "none"


def test_leave_one_site_out_refits_only_the_sites_the_fit_cannot_judge():
    sites = [f"s{i}" for i in range(6)]
    estimate = pd.DataFrame({"site": sites, "pareto_k": [0.1, 0.9, 0.2, 0.75, 0.3, 0.0]})
    plan = refitplan.loso_plan("varying_slopes", sites * 2, 10, 1, estimate, n_samples=4000)
    assert plan["method"] == "psis" and plan["estimated"] == 4
    assert plan["refitted"] == ["s1", "s3"] and plan["units"] == ["site1", "site2"]
    held = refitplan.held_out_rows("site1", plan, np.array(sites * 2))
    assert {(sites * 2)[i] for i in held} == {"s1"}
    fine = refitplan.loso_plan("varying_slopes", sites, 10, 1, estimate.assign(pareto_k=0.2), 4000)
    assert fine["method"] == "psis" and fine["units"] == [] and fine["estimated"] == 6
    # no estimate (a model the fit cannot answer for): every site, as before
    everyone = refitplan.loso_plan("varying_slopes", sites, 10, 1, estimate.iloc[:0], 4000)
    assert everyone["method"] == "loso" and len(everyone["units"]) == 6
    with pytest.raises(ValueError, match="does not cover"):
        refitplan.loso_plan("varying_slopes", sites, 10, 1, estimate.iloc[:3], 4000)


def test_leave_one_site_out_table_puts_refits_beside_the_estimate():
    estimate = pd.DataFrame(
        {
            "site": ["a", "b", "c"],
            "n": [2, 3, 4],
            "elpd": [-2.0, -3.5, -5.0],
            "elpd_joint": [-1.8, -3.0, -4.0],
            "pareto_k": [0.1, 0.95, 0.2],
        }
    )
    plan = refitplan.loso_plan("varying_slopes", list("abc"), 10, 1, estimate, n_samples=4000)
    folds = [{"sites": [{"site": "b", "n": 3, "elpd": -4.5, "elpd_joint": -3.9}]}]
    table = crossval.loso_sites("m", plan, folds, estimate).set_index("site")
    assert list(table["method"]) == ["PSIS", "refit", "PSIS"]
    assert table.loc["b", "elpd"] == -4.5 and table.loc["a", "elpd"] == -2.0
    assert table.loc["b", "pareto_k"] == 0.95 and table.loc["c", "elpd_per_obs"] == -1.25
    summary = crossval.loso_summary(table.reset_index(), {"m": plan}).iloc[0]
    assert summary["elpd_loso"] == -11.5 and summary["max_pareto_k"] == 0.95
    assert summary["estimated_sites"] == 2 and summary["refitted_sites"] == 1
