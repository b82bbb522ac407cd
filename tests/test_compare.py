"""PSIS-LOO summaries, Pareto-k bins and the stacking comparison on synthetic log-likelihoods."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd

from hierpool import compare


def idata_with_loglik(loglik: np.ndarray) -> az.InferenceData:
    chains, draws, _ = loglik.shape
    return az.from_dict(posterior={"mu": np.zeros((chains, draws))}, log_likelihood={"y": loglik})


def test_pareto_k_bins_use_the_classic_thresholds():
    counts = compare.pareto_k_counts(np.array([0.1, 0.5, 0.6, 0.7, 0.71, 1.0, 1.5]))
    assert counts == {"good": 2, "ok": 2, "bad": 2, "very bad": 1}


def test_a_point_dominating_the_likelihood_is_a_bad_observation_traced_to_its_row():
    rng = np.random.default_rng(0)
    loglik = rng.normal(-1.0, 0.05, size=(2, 500, 30))
    loglik[:, :, 7] = rng.standard_t(df=1, size=(2, 500)) * 5 - 20  # wild, heavy-tailed weights
    result = compare.loo(idata_with_loglik(loglik))
    summary = compare.loo_summary("m", result)
    assert summary["n_obs"] == 30 and summary["k_bad"] + summary["k_very_bad"] >= 1
    assert summary["loo_reliable"] is False
    data = pd.DataFrame(
        {"site": [f"s{i % 3}" for i in range(30)], "source_row": np.arange(101, 131)}
    )
    bad = compare.bad_observations("m", result, data, "site")
    assert 7 in bad["observation"].tolist()
    row = bad.set_index("observation").loc[7]
    assert row["source_row"] == 108 and row["site"] == "s1"


def test_compare_ranks_every_model_with_weights_summing_to_one():
    rng = np.random.default_rng(1)
    good = rng.normal(-1.0, 0.05, size=(2, 400, 40))
    worse = good - 0.5 + rng.normal(0, 0.05, size=good.shape)
    loos = {
        "good": compare.loo(idata_with_loglik(good)),
        "worse": compare.loo(idata_with_loglik(worse)),
    }
    table = compare.compare(loos)
    assert table["model"].tolist() == ["good", "worse"]
    assert table["rank"].tolist() == [0, 1]
    assert abs(table["weight"].sum() - 1) < 1e-6
    assert table["loo_reliable"].all() and (table["flag"] == "").all()
