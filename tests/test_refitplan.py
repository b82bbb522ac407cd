"""Refit plans: the Pareto-k threshold, exact refits or K-fold, folds and held-out rows."""

from __future__ import annotations

import numpy as np
import pytest

from hierpool import refitplan


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
