"""Unit tests for hierpool.simulate: determinism, shapes, site sizes, invalid specs, and recoverable truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from hierpool.simulate import DEFAULT_COLUMNS, SimulationSpec, simulate, site_labels, site_sizes

COLS = DEFAULT_COLUMNS  # {"outcome": "scontrol", "predictor": "stress", "group": "site"}


def sizes_of(truth: dict) -> np.ndarray:
    return np.array([s["n"] for s in truth["sites"]])


def effects_of(truth: dict) -> np.ndarray:
    return np.array([[s["intercept"], s["slope"]] for s in truth["sites"]])


# --------------------------------------------------------------------------- determinism


def test_same_spec_gives_identical_bytes_and_truth():
    spec = SimulationSpec()
    data1, truth1 = simulate(spec)
    data2, truth2 = simulate(SimulationSpec())
    assert data1.to_csv(index=False) == data2.to_csv(index=False)
    assert truth1 == truth2


def test_different_seed_gives_different_data_and_truth():
    data1, truth1 = simulate(SimulationSpec(seed=1))
    data2, truth2 = simulate(SimulationSpec(seed=2))
    assert data1.to_csv(index=False) != data2.to_csv(index=False)
    assert effects_of(truth1).tolist() != effects_of(truth2).tolist()
    # the shuffled order of the site sizes depends on the seed too
    assert sizes_of(truth1).tolist() != sizes_of(truth2).tolist()


def test_column_mapping_does_not_change_the_numbers():
    spec = SimulationSpec(seed=5)
    data1, _ = simulate(spec)
    data2, _ = simulate(spec, columns={"outcome": "y", "predictor": "x", "group": "lab"})
    np.testing.assert_array_equal(data1.to_numpy(), data2.to_numpy())


# --------------------------------------------------------------------------- shapes and columns


def test_default_columns_rows_and_labels():
    spec = SimulationSpec(n_sites=12, site_size={"min": 3, "max": 40}, seed=11)
    data, truth = simulate(spec)
    assert list(data.columns) == [COLS["group"], COLS["predictor"], COLS["outcome"]]
    sizes = sizes_of(truth)
    assert len(truth["sites"]) == 12
    assert len(data) == sizes.sum()
    # every row belongs to a site listed in the truth, and the per-site counts agree
    counts = data[COLS["group"]].value_counts()
    assert {s["site"]: s["n"] for s in truth["sites"]} == counts.to_dict()
    assert [s["site"] for s in truth["sites"]] == site_labels(12)
    assert data[COLS["predictor"]].dtype == float and data[COLS["outcome"]].dtype == float
    assert data.notna().all().all()
    assert truth["columns"] == COLS


def test_custom_column_mapping():
    mapping = {"outcome": "y", "predictor": "x", "group": "lab"}
    data, truth = simulate(SimulationSpec(n_sites=3, site_size=4), columns=mapping)
    assert list(data.columns) == ["lab", "x", "y"]
    assert truth["columns"] == mapping


def test_partial_column_mapping_keeps_defaults_for_the_rest():
    data, truth = simulate(SimulationSpec(n_sites=3, site_size=4), columns={"group": "county"})
    assert list(data.columns) == ["county", COLS["predictor"], COLS["outcome"]]
    assert truth["columns"] == {**COLS, "group": "county"}


def test_site_labels_are_zero_padded_and_sort_naturally():
    assert site_labels(3) == ["site_1", "site_2", "site_3"]
    labels = site_labels(120)
    assert labels[0] == "site_001" and labels[-1] == "site_120"
    assert labels == sorted(labels)


def test_truth_records_spec_and_population():
    spec = SimulationSpec(
        n_sites=4,
        site_size=3,
        intercept=1.0,
        slope=2.0,
        sd_intercept=0.3,
        sd_slope=0.1,
        correlation=0.2,
        sigma=0.5,
        seed=9,
    )
    _, truth = simulate(spec)
    assert truth["spec"]["seed"] == 9 and truth["spec"]["n_sites"] == 4
    assert truth["population"] == {
        "intercept": 1.0,
        "slope": 2.0,
        "sd_intercept": 0.3,
        "sd_slope": 0.1,
        "correlation": 0.2,
        "sigma": 0.5,
    }
    # the truth must be JSON/YAML-serialisable with builtin types (it is written to disk)
    assert yaml.safe_load(yaml.safe_dump(truth)) == truth


# --------------------------------------------------------------------------- site sizes


def test_unbalanced_sizes_span_min_and_max():
    spec = SimulationSpec(n_sites=20, site_size={"min": 2, "max": 150}, seed=3)
    data, truth = simulate(spec)
    sizes = sizes_of(truth)
    assert sizes.min() == 2 and sizes.max() == 150
    assert 2 in sizes and 150 in sizes
    assert ((sizes >= 2) & (sizes <= 150)).all()
    assert sizes.sum() == len(data)
    # shuffled over sites, not in increasing order
    assert sizes.tolist() != sorted(sizes.tolist())


def test_unbalanced_sizes_with_equal_min_and_max():
    _, truth = simulate(SimulationSpec(n_sites=5, site_size={"min": 7, "max": 7}))
    assert sizes_of(truth).tolist() == [7] * 5


def test_fixed_size():
    data, truth = simulate(SimulationSpec(n_sites=6, site_size=9))
    assert sizes_of(truth).tolist() == [9] * 6
    assert len(data) == 54
    # numpy integers are accepted as a fixed size too
    sizes = site_sizes(SimulationSpec(n_sites=3, site_size=np.int64(4)), np.random.default_rng(0))
    assert sizes.tolist() == [4, 4, 4]


def test_list_sizes_are_used_in_order():
    sizes = [1, 5, 2, 30]
    data, truth = simulate(SimulationSpec(n_sites=4, site_size=sizes))
    assert sizes_of(truth).tolist() == sizes
    assert data[COLS["group"]].value_counts().reindex(site_labels(4)).tolist() == sizes


def test_list_sizes_from_yaml_config():
    cfg = yaml.safe_load("n_sites: 3\nsite_size: [2, 3, 4]\nseed: 1\n")
    spec = SimulationSpec.from_config(cfg)
    data, _ = simulate(spec)
    assert len(data) == 9


# --------------------------------------------------------------------------- invalid specs


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_sites": 1}, "n_sites"),
        ({"n_sites": 0}, "n_sites"),
        ({"correlation": 1.5}, "correlation"),
        ({"correlation": -1.01}, "correlation"),
        ({"site_size": {"min": 10, "max": 5}}, "min"),
        ({"site_size": {"min": 0, "max": 5}}, "min"),
        ({"n_sites": 3, "site_size": [2, 3]}, "n_sites"),
        ({"n_sites": 3, "site_size": [2, 0, 3]}, "at least 1"),
        ({"site_size": 0}, "at least 1"),
    ],
)
def test_invalid_specs_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate(SimulationSpec(**kwargs))


def test_from_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="n_site"):
        SimulationSpec.from_config({"n_site": 20})


def test_from_config_matches_shipped_config(repo_root):
    config = yaml.safe_load((repo_root / "config" / "config.yaml").read_text())
    block = config["datasets"]["simulated"]["simulate"]
    spec = SimulationSpec.from_config(block)
    assert spec.n_sites == block["n_sites"] and spec.seed == block["seed"]
    data, truth = simulate(spec, config["datasets"]["simulated"]["columns"])
    assert len(truth["sites"]) == block["n_sites"]
    assert sizes_of(truth).min() == block["site_size"]["min"]
    assert sizes_of(truth).max() == block["site_size"]["max"]


# --------------------------------------------------------------------------- singular covariance


def test_zero_slope_sd_gives_identical_slopes():
    _, truth = simulate(SimulationSpec(n_sites=30, sd_slope=0.0, site_size=2))
    effects = effects_of(truth)
    np.testing.assert_allclose(effects[:, 1], -0.4, atol=1e-12)
    assert effects[:, 0].std() > 0.1


def test_zero_sds_give_identical_sites():
    _, truth = simulate(SimulationSpec(n_sites=5, sd_intercept=0.0, sd_slope=0.0, site_size=2))
    np.testing.assert_allclose(effects_of(truth), [[3.5, -0.4]] * 5, atol=1e-12)


@pytest.mark.parametrize("rho", [1.0, -1.0])
def test_perfect_correlation(rho):
    _, truth = simulate(SimulationSpec(n_sites=50, correlation=rho, site_size=2))
    effects = effects_of(truth)
    assert np.corrcoef(effects.T)[0, 1] == pytest.approx(rho, abs=1e-9)


# --------------------------------------------------------------------------- truth recoverable from the data


def per_site_ols(data: pd.DataFrame) -> pd.DataFrame:
    """OLS intercept, slope and slope standard error (with the known sigma left out) per site."""
    rows = []
    for site, g in data.groupby(COLS["group"], sort=False):
        x = g[COLS["predictor"]].to_numpy()
        y = g[COLS["outcome"]].to_numpy()
        X = np.column_stack([np.ones_like(x), x])
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        xtx_inv = np.linalg.inv(X.T @ X)
        resid = y - X @ coef
        rows.append(
            {
                "site": site,
                "intercept": coef[0],
                "slope": coef[1],
                "var_intercept": xtx_inv[0, 0],
                "var_slope": xtx_inv[1, 1],
                "resid_sd": resid.std(ddof=2),
            }
        )
    return pd.DataFrame(rows).set_index("site")


def test_per_site_ols_recovers_each_site_line():
    spec = SimulationSpec(n_sites=40, site_size=3000, seed=123)
    data, truth = simulate(spec)
    ols = per_site_ols(data)
    true = pd.DataFrame(truth["sites"]).set_index("site").loc[ols.index]
    # standard errors with the true sigma; 5 SE is far out for 40 sites x 2 coefficients
    se_intercept = spec.sigma * np.sqrt(ols["var_intercept"])
    se_slope = spec.sigma * np.sqrt(ols["var_slope"])
    assert ((ols["intercept"] - true["intercept"]).abs() < 5 * se_intercept).all()
    assert ((ols["slope"] - true["slope"]).abs() < 5 * se_slope).all()
    # and the tolerance is meaningful: a slope off by the population SD would be caught
    assert (5 * se_slope < spec.sd_slope / 2).all()
    # residual SD recovers sigma
    assert ols["resid_sd"].mean() == pytest.approx(spec.sigma, rel=0.03)
    # the predictor has the configured distribution
    assert data[COLS["predictor"]].mean() == pytest.approx(spec.predictor_mean, abs=0.02)
    assert data[COLS["predictor"]].std() == pytest.approx(spec.predictor_sd, rel=0.03)


def test_mean_of_site_slopes_is_near_population_slope():
    spec = SimulationSpec(n_sites=400, site_size=60, seed=7)
    data, truth = simulate(spec)
    true_slopes = effects_of(truth)[:, 1]
    # SD of the mean of 400 true slopes is 0.2 / 20 = 0.01
    assert true_slopes.mean() == pytest.approx(spec.slope, abs=0.04)
    # the OLS slopes are unbiased for the site slopes, so their mean is near the population slope too
    ols = per_site_ols(data)
    assert ols["slope"].mean() == pytest.approx(spec.slope, abs=0.05)
    true_intercepts = effects_of(truth)[:, 0]
    assert true_intercepts.mean() == pytest.approx(spec.intercept, abs=0.1)


def test_site_effect_sds_and_correlation_match_spec():
    spec = SimulationSpec(
        n_sites=5000, site_size=1, sd_intercept=0.5, sd_slope=0.2, correlation=0.6, seed=99
    )
    _, truth = simulate(spec)
    effects = effects_of(truth)
    # sampling SD of an SD estimate from 5000 draws is about sd / 100
    assert effects[:, 0].std(ddof=1) == pytest.approx(0.5, abs=0.03)
    assert effects[:, 1].std(ddof=1) == pytest.approx(0.2, abs=0.012)
    assert np.corrcoef(effects.T)[0, 1] == pytest.approx(0.6, abs=0.05)


def test_outcome_is_rounded_to_six_decimals_and_round_trips_through_csv(tmp_path):
    data, _ = simulate(SimulationSpec(n_sites=3, site_size=20, seed=4))
    path = tmp_path / "sim.csv"
    data.to_csv(path, index=False)
    back = pd.read_csv(path)
    pd.testing.assert_frame_equal(back, data)
    for col in (COLS["predictor"], COLS["outcome"]):
        np.testing.assert_array_equal(np.round(data[col], 6), data[col])


# --------------------------------------------------------------------------- families


def test_gaussian_output_is_byte_identical_to_before_families():
    """The default spec's CSV as written before families existed (the rng calls keep their order)."""
    import hashlib

    data, truth = simulate(SimulationSpec())
    text = data.to_csv(index=False, float_format="%.6f")
    assert hashlib.sha256(text.encode()).hexdigest().startswith("fe7efe5790f5c6a5")
    assert truth["family"] == "gaussian" and truth["link"] == "identity"
    assert list(data.columns) == [COLS["group"], COLS["predictor"], COLS["outcome"]]


@pytest.mark.parametrize(
    "family, link, extra",
    [
        ("gaussian", "identity", {"sigma"}),
        ("t", "identity", {"sigma", "nu"}),
        ("bernoulli", "logit", set()),
        ("binomial", "logit", set()),
        ("poisson", "log", set()),
        ("negativebinomial", "log", {"alpha"}),
    ],
)
def test_truth_names_family_link_and_its_parameters(family, link, extra):
    _, truth = simulate(SimulationSpec(n_sites=4, site_size=5, intercept=0.5, family=family))
    assert truth["family"] == family and truth["link"] == link
    assert (
        set(truth["population"])
        == {"intercept", "slope", "sd_intercept", "sd_slope", "correlation"} | extra
    )
    assert truth["population"]["intercept"] == 0.5
    assert yaml.safe_load(yaml.safe_dump(truth)) == truth


def test_bernoulli_outcome_is_zero_one_integers():
    data, _ = simulate(
        SimulationSpec(n_sites=10, site_size=50, intercept=0.0, family="bernoulli", seed=4)
    )
    y = data[COLS["outcome"]]
    assert y.dtype.kind == "i" and set(y.unique()) == {0, 1}


def test_bernoulli_site_logits_recover_the_truth():
    spec = SimulationSpec(
        n_sites=20,
        site_size=4000,
        intercept=-0.7,
        slope=0.0,
        sd_intercept=0.4,
        sd_slope=0.0,
        family="bernoulli",
        seed=8,
    )
    data, truth = simulate(spec)
    share = data.groupby(COLS["group"])[COLS["outcome"]].mean()
    logit = np.log(share / (1 - share))
    true_b0 = pd.Series({s["site"]: s["intercept"] for s in truth["sites"]})
    np.testing.assert_allclose(
        logit[true_b0.index], true_b0, atol=0.15
    )  # SE of one site's logit ~ 0.035
    assert logit.mean() == pytest.approx(true_b0.mean(), abs=0.05)
    assert true_b0.mean() == pytest.approx(-0.7, abs=3 * 0.4 / np.sqrt(20))


def test_binomial_outcome_has_a_trials_column_and_never_exceeds_it():
    data, truth = simulate(
        SimulationSpec(n_sites=6, site_size=40, intercept=0.3, family="binomial", trials=7, seed=2)
    )
    assert list(data.columns) == [COLS["group"], COLS["predictor"], COLS["outcome"], "trials"]
    assert (data["trials"] == 7).all() and data["trials"].dtype.kind == "i"
    y = data[COLS["outcome"]]
    assert y.dtype.kind == "i" and y.between(0, 7).all() and y.nunique() > 2
    assert truth["columns"]["trials"] == "trials"
    named, _ = simulate(
        SimulationSpec(n_sites=3, site_size=4, family="binomial"), columns={"trials": "n_items"}
    )
    assert "n_items" in named.columns


def test_binomial_share_recovers_the_pooled_logit():
    spec = SimulationSpec(
        n_sites=10,
        site_size=2000,
        intercept=1.0,
        slope=0.0,
        sd_intercept=0.0,
        sd_slope=0.0,
        family="binomial",
        trials=5,
        seed=3,
    )
    data, _ = simulate(spec)
    p = data[COLS["outcome"]].sum() / data["trials"].sum()
    assert np.log(p / (1 - p)) == pytest.approx(1.0, abs=0.03)


def test_poisson_counts_have_the_log_link_mean():
    spec = SimulationSpec(
        n_sites=10,
        site_size=2000,
        intercept=np.log(4.0),
        slope=0.0,
        sd_intercept=0.0,
        sd_slope=0.0,
        family="poisson",
        seed=5,
    )
    data, _ = simulate(spec)
    y = data[COLS["outcome"]]
    assert y.dtype.kind == "i" and (y >= 0).all()
    assert y.mean() == pytest.approx(4.0, rel=0.03)
    assert y.var() == pytest.approx(4.0, rel=0.08)


def test_negative_binomial_variance_is_mu_plus_mu_squared_over_alpha():
    spec = SimulationSpec(
        n_sites=10,
        site_size=3000,
        intercept=np.log(10.0),
        slope=0.0,
        sd_intercept=0.0,
        sd_slope=0.0,
        family="negativebinomial",
        alpha=5.0,
        seed=6,
    )
    data, _ = simulate(spec)
    y = data[COLS["outcome"]]
    assert y.dtype.kind == "i" and (y >= 0).all()
    assert y.mean() == pytest.approx(10.0, rel=0.03)
    assert y.var() == pytest.approx(10.0 + 100.0 / 5.0, rel=0.1)


def test_t_outcome_is_the_line_plus_scaled_t_noise():
    spec = SimulationSpec(
        n_sites=10,
        site_size=3000,
        intercept=2.0,
        slope=0.0,
        sd_intercept=0.0,
        sd_slope=0.0,
        family="t",
        sigma=0.5,
        nu=5.0,
        seed=7,
    )
    data, _ = simulate(spec)
    y = data[COLS["outcome"]]
    assert y.dtype.kind == "f"
    assert y.median() == pytest.approx(2.0, abs=0.02)
    assert y.var() == pytest.approx(0.25 * 5.0 / 3.0, rel=0.1)  # sigma^2 nu / (nu - 2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"family": "beta"}, "family"),
        ({"family": "binomial", "trials": 0}, "trials"),
        ({"family": "negativebinomial", "alpha": 0.0}, "alpha"),
        ({"family": "t", "nu": -1.0}, "nu"),
    ],
)
def test_invalid_family_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate(SimulationSpec(n_sites=3, site_size=4, **kwargs))


def test_from_config_accepts_the_family_keys():
    spec = SimulationSpec.from_config(
        {"family": "negativebinomial", "alpha": 2.5, "trials": 3, "nu": 6.0}
    )
    assert (spec.family, spec.alpha, spec.trials, spec.nu) == ("negativebinomial", 2.5, 3, 6.0)
