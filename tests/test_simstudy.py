"""The simulation study: estimators on fixtures with known answers, seeds, aggregation with MC SE, findings,
and (marked e2e) the quick grid run by Snakemake in a temporary copy of the repository."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import copy_workflow

from hierpool import schema as hpschema
from hierpool import simstudy
from hierpool.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def frame(groups: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"site": site, "y": y} for site, ys in groups.items() for y in ys])


# ----------------------------------------------------------------------------- estimators


def test_no_pooling_is_each_sites_sample_mean_and_complete_pooling_the_grand_mean():
    summary = simstudy.site_summaries(frame({"a": [1, 2, 3], "b": [10, 12], "c": [0, 0, 0, 4]}))
    assert summary["site"].tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(simstudy.no_pooling(summary), [2.0, 11.0, 1.0])
    np.testing.assert_allclose(simstudy.complete_pooling(summary), np.full(3, (6 + 22 + 4) / 9))
    np.testing.assert_allclose(summary["s2"], [1.0, 2.0, 4.0])
    # pooled within-site variance: sum (n_j - 1) s2_j / (N - J) = (2*1 + 1*2 + 3*4) / 6
    assert simstudy.pooled_sigma2(summary) == pytest.approx(16 / 6)


def test_dersimonian_laird_matches_a_hand_computation_and_truncates_at_zero():
    ybar, v = np.array([0.0, 1.0, 3.0]), np.array([0.5, 0.25, 1.0])  # weights 1/v: 2, 4, 1
    fixed = (0 * 2 + 1 * 4 + 3 * 1) / 7
    q = 2 * fixed**2 + 4 * (1 - fixed) ** 2 + 1 * (3 - fixed) ** 2
    expected = (q - 2) / (7 - (4 + 16 + 1) / 7)
    assert simstudy.dersimonian_laird_tau2(ybar, v) == pytest.approx(expected)
    assert simstudy.dersimonian_laird_tau2([1.0, 1.01, 0.99], [1.0, 1.0, 1.0]) == 0.0


def test_dersimonian_laird_ignores_site_order_and_scales_with_the_data():
    ybar, v = np.array([0.0, 1.0, 3.0, -2.0]), np.array([0.5, 0.25, 1.0, 0.1])
    tau2 = simstudy.dersimonian_laird_tau2(ybar, v)
    order = [2, 0, 3, 1]
    assert simstudy.dersimonian_laird_tau2(ybar[order], v[order]) == pytest.approx(tau2)
    # y in other units (times c, shifted): tau^2 in those units, the shift ignored
    assert simstudy.dersimonian_laird_tau2(3 * ybar + 7, 9 * v) == pytest.approx(9 * tau2)


def test_empirical_bayes_with_known_variances_is_the_closed_form():
    summary = pd.DataFrame(
        {
            "site": ["a", "b", "c"],
            "n": [4, 16, 100],
            "ybar": [1.0, -0.5, 0.2],
            "s2": [1.0, 1.0, 1.0],
        }
    )
    tau2, sigma2 = 0.25, 1.0
    out, hyper = simstudy.empirical_bayes(summary, levels=(0.9,), tau2=tau2, sigma2=sigma2)
    v = sigma2 / summary["n"].to_numpy()
    weight = tau2 / (tau2 + v)
    mu = np.sum(summary["ybar"] / (tau2 + v)) / np.sum(1 / (tau2 + v))
    np.testing.assert_allclose(out["weight"], weight)
    np.testing.assert_allclose(out["estimate"], weight * summary["ybar"] + (1 - weight) * mu)
    np.testing.assert_allclose(out["sd"], np.sqrt(weight * v))
    np.testing.assert_allclose(
        out["hi_0.9"] - out["estimate"], 1.6448536 * np.sqrt(weight * v), rtol=1e-6
    )
    assert hyper == pytest.approx({"tau2": tau2, "sigma2": sigma2, "mu": mu})


def test_empirical_bayes_shrinks_fully_to_the_grand_mean_when_tau2_is_estimated_as_zero():
    data = frame(
        {"a": [0.0, 2.0, 1.0], "b": [1.1, 0.9, 3.0, -1.0], "c": [1.0, 1.5, 0.5]}
    )  # site means 1, 1, 1
    summary = simstudy.site_summaries(data)
    out, hyper = simstudy.empirical_bayes(summary)
    assert hyper["tau2"] == 0.0
    np.testing.assert_allclose(out["weight"], 0.0)
    np.testing.assert_allclose(out["estimate"], simstudy.complete_pooling(summary))
    np.testing.assert_allclose(
        out["hi_0.95"] - out["lo_0.95"], 0.0
    )  # the plug-in interval collapses


def test_empirical_bayes_barely_shrinks_large_sites_when_sites_differ_a_lot():
    rng = np.random.default_rng(1)
    data, truth = simstudy.simulate_replicate(3.0, [500] * 10, seed=int(rng.integers(1000)))
    out, hyper = simstudy.empirical_bayes(simstudy.site_summaries(data))
    assert hyper["tau2"] > 1 and (out["weight"] > 0.99).all()
    np.testing.assert_allclose(out["estimate"], simstudy.site_summaries(data)["ybar"], atol=0.02)


def fake_fit(rng, sites=("a", "b", "c"), chains=2, draws=200, divergent=3):
    """A posterior shaped like Bambi's fit of ``y ~ 1 + (1|site)`` (no sampling)."""
    import arviz as az

    diverging = np.zeros((chains, draws), bool)
    diverging.flat[:divergent] = True
    from hierpool.fitinfo import stamp

    return stamp(
        az.from_dict(
            posterior={
                "Intercept": rng.normal(1.0, 0.1, (chains, draws)),
                "1|site": rng.normal([-1.0, 0.0, 2.0], 0.2, (chains, draws, len(sites))),
                "1|site_sigma": rng.gamma(20, 0.05, (chains, draws)),
                "sigma": rng.gamma(50, 0.02, (chains, draws)),
            },
            dims={"1|site": ["site__factor_dim"]},
            coords={"site__factor_dim": list(sites)},
            sample_stats={"diverging": diverging},
        ),
        simstudy.PARTIAL_POOLING_FORMULA,
    )


def test_summarise_fit_reads_site_means_tau_and_sigma_from_bambis_names():
    idata = fake_fit(np.random.default_rng(1))
    data = frame({"a": [0.0] * 2, "b": [0.0] * 3, "c": [0.0] * 4})
    sites, info = simstudy.summarise_fit(idata, data, levels=(0.9,))
    post = idata.posterior
    theta = (post["Intercept"] + post["1|site"]).values.reshape(-1, 3)
    assert sites["site"].tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(sites["estimate"], theta.mean(axis=0))
    np.testing.assert_allclose(sites["lo_0.9"], np.quantile(theta, 0.05, axis=0))
    tau, sigma = post["1|site_sigma"].values.ravel(), post["sigma"].values.ravel()
    within = sigma[None, :] ** 2 / np.array([2.0, 3.0, 4.0])[:, None]
    np.testing.assert_allclose(sites["pooling"], np.mean(within / (within + tau**2), axis=1))
    assert info["tau"]["mean"] == pytest.approx(tau.mean()) and info["sigma_mean"] == pytest.approx(
        sigma.mean()
    )
    assert info["mu_mean"] == pytest.approx(float(post["Intercept"].mean()))
    assert info["divergences"] == 3 and info["chains"] == 2 and info["draws"] == 200
    assert info["max_rhat"] == pytest.approx(
        max(info["max_rhat_theta"], info["rhat_tau"]), abs=0.05
    )
    assert info["min_ess_bulk"] <= min(info["min_ess_bulk_theta"], info["ess_bulk_tau"])


# ----------------------------------------------------------------------------- grid, seeds, simulation


def test_seeds_are_deterministic_distinct_and_independent_of_the_rest_of_the_grid():
    seed = simstudy.derive_seed(20261121, 0.5, "unbalanced", 30, 2)
    assert (
        seed
        == simstudy.derive_seed(20261121, 0.5, "unbalanced", 30, 2)
        == simstudy.derive_seed(20261121, 0.5, "unbalanced", "30", "2")
    )
    assert seed == 23267165  # pinned: a change here changes every published number
    others = {
        simstudy.derive_seed(20261121, t, d, j, r)
        for t in (0.05, 0.5)
        for d in ("small", "unbalanced")
        for j in (8, 30)
        for r in (1, 2, 3)
    }
    assert len(others) == 24
    assert simstudy.derive_seed(1, 0.5, "unbalanced", 30, 2) != seed
    assert simstudy.derive_seed(20261121, 1, "small", 8, 1) == simstudy.derive_seed(
        20261121, 1.0, "small", 8, 1
    )


def test_grid_frame_expands_every_cell_and_replicate():
    grid = {"tau": [0.05, 1], "design": ["small", "unbalanced"], "n_sites": [8], "replicates": 3}
    cells = simstudy.grid_frame(grid)
    assert list(cells.columns) == ["tau", "design", "n_sites", "replicate"]
    assert (
        len(cells) == 12
        and cells["tau"].dtype == float
        and sorted(cells["replicate"].unique()) == [1, 2, 3]
    )


def test_site_sizes_cycle_a_list_and_repeat_an_integer():
    assert simstudy.site_sizes([5, 50, 500], 8).tolist() == [5, 50, 500, 5, 50, 500, 5, 50]
    assert simstudy.site_sizes(5, 3).tolist() == [5, 5, 5]
    with pytest.raises(ValueError):
        simstudy.site_sizes(1, 3)


def test_simulate_replicate_is_reproducible_and_matches_its_truth():
    data, truth = simstudy.simulate_replicate(0.5, [5, 50, 500], mu=2.0, sigma=1.0, seed=11)
    again, _ = simstudy.simulate_replicate(0.5, [5, 50, 500], mu=2.0, sigma=1.0, seed=11)
    pd.testing.assert_frame_equal(data, again)
    assert len(data) == 555 and truth["n"].tolist() == [5, 50, 500]
    big = data[data["site"] == truth["site"].iloc[2]]["y"]
    assert abs(big.mean() - truth["theta"].iloc[2]) < 0.2
    zero, truth0 = simstudy.simulate_replicate(0.0, [3, 3], mu=1.5, seed=1)
    np.testing.assert_allclose(truth0["theta"], 1.5)


def test_study_settings_resolve_the_grid_and_name_bad_keys():
    block = {
        "grid": "quick",
        "grids": {"quick": {"tau": [0.5], "design": ["small"], "n_sites": [8], "replicates": 1}},
        "designs": {"small": 5},
        "mu": 0.0,
        "sigma": 1.0,
        "seed": 3,
        "levels": [0.9],
        "sampler": {
            "backend": "nutpie",
            "draws": 50,
            "tune": 50,
            "chains": 2,
            "target_accept": 0.9,
        },
    }
    study = simstudy.study_settings({"simulation_study": block, "site_sd_prior_scale": 0.5})
    assert study["grid_name"] == "quick" and study["site_sd_prior_scale"] == 0.5
    setup = simstudy.replicate_setup(
        study,
        {
            "tau": np.float64(0.5),
            "design": "small",
            "n_sites": np.int64(8),
            "replicate": np.int64(1),
        },
    )
    assert setup["sizes"] == [5] * 8 and setup["seed"] == simstudy.derive_seed(
        3, 0.5, "small", 8, 1
    )
    assert setup["sampler"]["seed"] != setup["seed"] and type(setup["n_sites"]) is int
    with pytest.raises(ConfigError, match="simulation_study.grid"):
        simstudy.study_settings({"simulation_study": {**block, "grid": "huge"}})
    with pytest.raises(ConfigError, match="designs"):
        simstudy.study_settings(
            {
                "simulation_study": {
                    **block,
                    "grids": {"quick": {**block["grids"]["quick"], "design": ["tiny"]}},
                }
            }
        )


def test_the_shipped_config_and_the_schema_defaults_define_both_grids():
    from snakemake.utils import validate

    schema = str(ROOT / "workflow/schemas/config.schema.yaml")
    shipped = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    validate(shipped, schema)
    minimal = {"datasets": {"d": {"simulate": {}}}, "simulation_study": {}}
    validate(minimal, schema)
    assert minimal["simulation_study"] == {**shipped["simulation_study"], "grid": "default"}
    # what the workflow puts in place of an absent block: the same as validating an empty one
    assert hpschema.defaults("simulation_study") == minimal["simulation_study"]
    for name in ("default", "quick"):
        study = simstudy.study_settings(
            {**minimal, "simulation_study": {**minimal["simulation_study"], "grid": name}}
        )
        assert len(simstudy.grid_frame(study["grid"])) > 0
        record = simstudy.study_record(study)
        assert (
            record["name"] == name
            and set(record["designs"]) == set(record["design"])
            and record["formula"] == "y ~ 1 + (1|site)"
        )
    default = shipped["simulation_study"]["grids"]["default"]
    assert len(default["tau"]) >= 4 and len(default["n_sites"]) >= 2 and len(default["design"]) == 3


# ----------------------------------------------------------------------------- one replicate, with a stand-in for the Bayesian fit


def fake_full_bayes(data, sampler, scale, levels, cores):
    """Full Bayes stand-in: the EB answer with wider intervals (no sampling), and a tau posterior around EB's tau."""
    eb, hyper = simstudy.empirical_bayes(simstudy.site_summaries(data), levels)
    out = eb.rename(columns={"weight": "pooling"}).assign(
        pooling=lambda f: 1 - f["pooling"], sd=lambda f: f["sd"] * 2
    )
    for level in levels:
        half = (out[f"hi_{level:g}"] - out[f"lo_{level:g}"]) + 0.1
        out[f"lo_{level:g}"], out[f"hi_{level:g}"] = out["estimate"] - half, out["estimate"] + half
    tau = math.sqrt(hyper["tau2"])
    tau_post = {
        "mean": tau + 0.05,
        "median": tau + 0.04,
        "sd": 0.1,
        **{f"lo_{lv:g}": max(0, tau - 0.2) for lv in levels},
        **{f"hi_{lv:g}": tau + 0.3 for lv in levels},
    }
    return out, {
        "tau": tau_post,
        "sigma_mean": 1.0,
        "mu_mean": hyper["mu"],
        "divergences": 0,
        "max_rhat": 1.0,
        "min_ess_bulk": 500.0,
        "chains": 2,
        "draws": 10,
        "sampling_s": 0.0,
        "fit_wall_s": 0.0,
    }


def small_setup(tau=0.5, design=(5, 50, 500), n_sites=9, replicate=1, seed=5):
    return {
        "tau": tau,
        "design": "unbalanced",
        "n_sites": n_sites,
        "replicate": replicate,
        "seed": seed,
        "sizes": simstudy.site_sizes(list(design), n_sites).tolist(),
        "mu": 0.0,
        "sigma": 1.0,
        "levels": [0.9, 0.95],
        "sampler": {},
        "site_sd_prior_scale": 1.0,
    }


def test_run_replicate_scores_every_estimator_against_the_true_means():
    sites, record = simstudy.run_replicate(small_setup(), fit_full_bayes=fake_full_bayes)
    assert len(sites) == 9 and {"tau", "design", "n_sites", "replicate"} <= set(sites.columns)
    for name in simstudy.ESTIMATORS:
        np.testing.assert_allclose(sites[f"se_{name}"], (sites[name] - sites["theta"]) ** 2)
        assert record[f"mse_{name}"] == pytest.approx(sites[f"se_{name}"].mean())
    np.testing.assert_allclose(sites["no_pooling"], sites["ybar"])
    covers = (sites["empirical_bayes_lo_0.9"] <= sites["theta"]) & (
        sites["theta"] <= sites["empirical_bayes_hi_0.9"]
    )
    assert record["coverage_empirical_bayes_0.9"] == pytest.approx(covers.mean())
    assert record["fb_tau_covers_0.9"] == (
        record["fb_tau_lo_0.9"] <= 0.5 <= record["fb_tau_hi_0.9"]
    )
    assert record["rows"] == 3 * (5 + 50 + 500) and record["seed"] == 5
    json.dumps(record)  # the replicate record is written as JSON


# ----------------------------------------------------------------------------- aggregation


def test_mc_se_is_the_standard_error_over_replicates():
    assert simstudy.mc_se([1.0, 2.0, 3.0, 4.0]) == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    assert math.isnan(simstudy.mc_se([1.0]))
    # a constant denominator: the ratio's SE is the numerator's SE divided by it
    assert simstudy.ratio_mc_se([1.0, 2.0, 3.0, 4.0], [2.0] * 4) == pytest.approx(
        simstudy.mc_se([1, 2, 3, 4]) / 2
    )


def test_ratio_mc_se_matches_the_spread_of_simulated_ratios():
    rng = np.random.default_rng(0)
    ratios, ses = [], []
    for _ in range(2000):
        b = rng.gamma(4.0, 0.25, size=20)
        a = 0.6 * b + rng.normal(0, 0.1, size=20)
        ratios.append(a.mean() / b.mean())
        ses.append(simstudy.ratio_mc_se(a, b))
    assert np.mean(ses) == pytest.approx(np.std(ratios), rel=0.1)


def synthetic_replicates() -> tuple[pd.DataFrame, pd.DataFrame]:
    recs, sites = [], []
    for tau in (0.05, 1.0):
        for rep in (1, 2, 3):
            s, r = simstudy.run_replicate(
                small_setup(tau=tau, replicate=rep, seed=rep + int(tau * 100)),
                fit_full_bayes=fake_full_bayes,
            )
            recs.append({k: v for k, v in r.items() if not isinstance(v, dict)})
            sites.append(s)
    return pd.DataFrame(recs), pd.concat(sites, ignore_index=True)


def test_aggregate_tables_have_one_row_per_cell_and_estimator_with_mc_se():
    replicates, sites = synthetic_replicates()
    tables = simstudy.aggregate(replicates, sites)
    mse = tables["mse"]
    assert len(mse) == 2 * 4 and set(mse["estimator"]) == set(simstudy.ESTIMATORS)
    cell = replicates[replicates["tau"] == 1.0]
    row = mse[(mse["tau"] == 1.0) & (mse["estimator"] == "complete_pooling")].iloc[0]
    assert row["mse"] == pytest.approx(cell["mse_complete_pooling"].mean())
    assert row["mc_se"] == pytest.approx(cell["mse_complete_pooling"].std(ddof=1) / math.sqrt(3))
    assert row["relative_to_no_pooling"] == pytest.approx(
        cell["mse_complete_pooling"].mean() / cell["mse_no_pooling"].mean()
    )
    assert (mse.groupby("tau")["lowest_mse_in_cell"].sum() == 1).all()
    assert mse.loc[mse["estimator"] == "no_pooling", "relative_to_no_pooling"].eq(1).all()
    by_size = tables["mse_by_size"]
    assert sorted(by_size["n"].unique()) == [5, 50, 500] and len(by_size) == 2 * 3 * 4
    cov = tables["coverage"]
    assert len(cov) == 2 * 2 * 2 and cov["coverage"].between(0, 1).all()
    tau = tables["tau"]
    assert len(tau) == 2 and tau.loc[tau["tau"] == 1.0, "fb_tau_bias"].iloc[0] == pytest.approx(
        cell["fb_tau_mean"].mean() - 1.0
    )


def test_findings_state_numbers_taken_from_the_tables():
    replicates, sites = synthetic_replicates()
    tables = simstudy.aggregate(replicates, sites)
    found = simstudy.findings(tables, "synthetic")
    mse = tables["mse"]
    fb_low = mse[(mse["tau"] == 0.05) & (mse["estimator"] == "full_bayes")][
        "relative_to_no_pooling"
    ].mean()
    assert found["partial_vs_no_pooling"][0]["full_bayes"]["mean"] == pytest.approx(fb_low)
    assert found["partial_vs_no_pooling"][0]["tau"] == 0.05
    assert found["small_sites"]["full_bayes_by_n"][5] < found["small_sites"]["full_bayes_by_n"][500]
    assert found["cells"] == 2 and found["replicates_per_cell"] == [3]
    cov = tables["coverage"]
    eb_cov = cov[(cov["method"] == "empirical_bayes") & (cov["level"] == 0.95)]["coverage"]
    assert found["eb_uncertainty"]["empirical_bayes_coverage"]["mean"] == pytest.approx(
        eb_cov.mean()
    )
    assert found["tau_recovery"]["fits"] == len(replicates)
    json.dumps(found)


# ----------------------------------------------------------------------------- the report scripts' shared body


def test_render_rule_report_passes_absolute_paths_and_the_rules_own_params(
    tmp_path, monkeypatch, capsys
):
    from types import SimpleNamespace

    from hierpool.report import render

    calls = []

    def fake_render(source, output, params, workdir, files=None):
        calls.append((source, output, params, workdir))
        return render.RenderResult(html=output, renderer="fake", message="report renderer: fake")

    monkeypatch.setattr(render, "render_report", fake_render)
    monkeypatch.chdir(tmp_path)
    smk = SimpleNamespace(
        input=SimpleNamespace(qmd="reports/simulation_study.qmd"),
        output=SimpleNamespace(html="out/report.html"),
        params=SimpleNamespace(results_dir="results/simulation_study", workdir="out/render"),
    )
    result = render.render_rule_report(smk, "simulation study", dataset="d")
    ((source, output, params, workdir),) = calls
    assert (
        source == Path("reports/simulation_study.qmd")
        and output == Path("out/report.html")
        and workdir == Path("out/render")
    )
    assert params == {
        "dataset": "d",
        "results_dir": str(tmp_path.resolve() / "results/simulation_study"),
        "project_dir": str(tmp_path.resolve()),
    }
    assert result.renderer == "fake" and "report renderer: fake" in capsys.readouterr().out


# ----------------------------------------------------------------------------- the quick grid, end to end

QUICK = "simulation_study={grid: quick}"


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def quick_study(tmp_path_factory) -> Path:
    work = copy_workflow(tmp_path_factory.mktemp("simstudy"))
    result = snakemake(work, "simulation_study", "--cores", "2", "--config", QUICK)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return work


@pytest.mark.e2e
def test_quick_grid_writes_every_table_figure_and_finding(quick_study):
    out = quick_study / "results/simulation_study"
    grid = yaml.safe_load((ROOT / "config/config.yaml").read_text())["simulation_study"]["grids"][
        "quick"
    ]
    cells = len(grid["tau"]) * len(grid["design"]) * len(grid["n_sites"])
    mse = pd.read_csv(out / "summary/mse.csv")
    assert mse.shape == (cells * 4, 11) and set(mse["estimator"]) == set(simstudy.ESTIMATORS)
    assert (mse["replicates"] == grid["replicates"]).all() and mse["mc_se"].notna().all()
    assert len(pd.read_csv(out / "summary/replicates.csv")) == cells * grid["replicates"]
    assert len(pd.read_csv(out / "summary/coverage.csv")) == cells * 2 * 2
    assert len(pd.read_csv(out / "summary/tau.csv")) == cells
    for name in ("mse_vs_tau", "shrinkage_vs_n", "fb_vs_eb", "coverage"):
        assert (out / f"figures/{name}.png").stat().st_size > 10_000
    found = json.loads((out / "findings.json").read_text())
    assert (
        found["grid"]["name"] == "quick"
        and found["grid"]["tau"] == grid["tau"]
        and found["cells"] == cells
    )
    assert not (out / "findings.md").exists()  # the words are in the report
    report = " ".join((out / "report.html").read_text().split())
    assert (
        "Simulation study: when does partial pooling win?" in report
        and "Where empirical Bayes underestimates uncertainty" in report
    )
    assert len(re.findall(r'src="data:image/png;base64,', report)) == 4
    assert f"{found['partial_vs_no_pooling'][-1]['full_bayes']['mean']:.2f}" in report
    for tau, design, j in [
        (t, d, j) for t in grid["tau"] for d in grid["design"] for j in grid["n_sites"]
    ]:
        folder = f"tau~{float(tau)}/design~{design}/n_sites~{j}"
        assert (quick_study / f"logs/simulation_study/replicates/{folder}/replicate~1.log").exists()
        assert (
            quick_study / f"benchmarks/simulation_study/replicates/{folder}/replicate~1.tsv"
        ).exists()


@pytest.mark.e2e
def test_partial_pooling_beats_no_pooling_in_the_heterogeneous_unbalanced_cell(quick_study):
    """tau = 0.5 (ICC 0.2), sites of 5, 50 and 500, 30 sites: pooling helps, most at the 5-observation sites."""
    out = quick_study / "results/simulation_study/summary"
    mse = pd.read_csv(out / "mse.csv").set_index(["tau", "design", "n_sites", "estimator"])
    cell = (0.5, "unbalanced", 30)
    assert mse.loc[(*cell, "full_bayes"), "mse"] < mse.loc[(*cell, "no_pooling"), "mse"]
    assert mse.loc[(*cell, "empirical_bayes"), "mse"] < mse.loc[(*cell, "no_pooling"), "mse"]
    assert mse.loc[(*cell, "complete_pooling"), "mse"] > 2 * mse.loc[(*cell, "no_pooling"), "mse"]
    by_size = pd.read_csv(out / "mse_by_size.csv")
    fb = by_size[
        (by_size["tau"] == 0.5)
        & (by_size["design"] == "unbalanced")
        & (by_size["estimator"] == "full_bayes")
    ]
    per_n = fb.groupby("n")["relative_to_no_pooling"].mean()
    assert per_n.loc[5] < 0.9 and per_n.loc[5] < per_n.loc[500]
    # near-zero heterogeneity: pooling wins by an order of magnitude
    low = mse.xs(0.05, level="tau")
    assert (low.xs("full_bayes", level="estimator")["relative_to_no_pooling"] < 0.3).all()


@pytest.mark.e2e
def test_simulation_study_is_up_to_date_after_it_ran(quick_study):
    again = snakemake(quick_study, "simulation_study", "-n", "--cores", "2", "--config", QUICK)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


def test_the_default_target_does_not_run_the_study_and_its_own_target_plans_one_job_per_replicate():
    default = snakemake(ROOT, "-n", "--forceall", "--cores", "4")
    assert default.returncode == 0, default.stdout[-3000:] + default.stderr[-3000:]
    assert not [
        line for line in default.stdout.splitlines() if line.startswith("simstudy_")
    ]  # no study job planned
    study = snakemake(
        ROOT, "simulation_study", "-n", "--forceall", "--cores", "4", "--config", QUICK
    )
    assert study.returncode == 0, study.stdout[-3000:] + study.stderr[-3000:]
    grid = yaml.safe_load((ROOT / "config/config.yaml").read_text())["simulation_study"]["grids"][
        "quick"
    ]
    jobs = len(grid["tau"]) * len(grid["design"]) * len(grid["n_sites"]) * grid["replicates"]
    counts = dict(
        line.split()[:2] for line in study.stdout.splitlines() if line.startswith("simstudy_")
    )
    assert counts == {
        "simstudy_replicate": str(jobs),
        "simstudy_aggregate": "1",
        "simstudy_plots": "1",
        "simstudy_findings": "1",
        "simstudy_report": "1",
    }


def test_a_grid_that_does_not_exist_stops_the_run_naming_the_key():
    result = snakemake(
        ROOT, "simulation_study", "-n", "--cores", "1", "--config", "simulation_study={grid: huge}"
    )
    assert result.returncode != 0
    assert "simulation_study.grid is 'huge'" in result.stdout + result.stderr
