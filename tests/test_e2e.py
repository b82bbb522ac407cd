"""End to end: the real workflow on a tiny config (few draws) in a temporary copy, outputs checked by content."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import arviz as az
import pandas as pd
import pytest
import yaml
from conftest import (
    E2E_TIMEOUT_S,
    HOSTILE,
    e2e_run_result,
    snakemake_command,
)

from hierpool.loo import load_moment_match

ROOT = Path(__file__).resolve().parents[1]
MODELS = [
    "complete_pooling",
    "no_pooling",
    "varying_intercepts",
    "varying_slopes",
    "varying_slopes_correlated",
]
RADON_MODELS = ["no_pooling", "varying_intercepts", "uranium"]  # .test/config/config.yaml
FIGURES = [
    "observations_per_site",
    "outcome_vs_predictor",
    "prior_lines",
    "posterior_lines",
    "forest_intercepts",
    "forest_slopes",
    "ppc",
    "rank_plots",
    "icc_posterior",
    "vpc_curve",
    "shrinkage_by_n",
    "shrinkage_arrows",
]
SECTIONS = [
    "Summary",
    "What changed since the previous run",
    "Data and cleaning",
    "Models and priors",
    "Convergence diagnostics",
    "Model comparison (leave-one-out)",
    "Model checking",
    "Posterior: sites and population",
    "Variance partition",
    "Shrinkage",
    "Appendix: reproducibility",
]
pytestmark = pytest.mark.e2e


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        snakemake_command(*args),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=E2E_TIMEOUT_S,
    )


@pytest.fixture(scope="module")
def workdir() -> Path:
    """The shared run of the tiny config (tests/conftest.py starts it when the tests are collected)."""
    return e2e_run_result()


def test_cleaning_summaries_describe_each_dataset(workdir):
    radon = json.loads((workdir / "results/radon/data/cleaning_summary.json").read_text())
    assert HOSTILE in radon["site_counts"]
    assert radon["rows_in"] == 919 and radon["rows_out"] == 919 and radon["sites_kept"] == 85
    assert radon["predictor"]["centered"] is False
    tiny = json.loads((workdir / "results/tiny/data/cleaning_summary.json").read_text())
    truth = json.loads((workdir / "results/tiny/data/truth.json").read_text())
    assert tiny["sites_kept"] == 6 and tiny["rows_out"] == sum(s["n"] for s in truth["sites"])
    assert (
        abs(
            tiny["predictor"]["center"]
            - pd.read_csv(workdir / "results/tiny/data/simulated.csv")["stress"].mean()
        )
        < 1e-9
    )


def test_every_fit_holds_log_likelihood_and_predictive_draws(workdir):
    for dataset, n_obs, models in (("tiny", None, MODELS), ("radon", 919, RADON_MODELS)):
        for model in models:
            idata = az.from_netcdf(workdir / f"results/{dataset}/fits/{model}.nc")
            assert {
                "posterior",
                "log_likelihood",
                "posterior_predictive",
                "prior",
                "prior_predictive",
            } <= set(idata.groups())
            assert idata.posterior.sizes["draw"] == 100 and idata.posterior.sizes["chain"] == 2
            if n_obs:
                assert idata.log_likelihood["log_radon"].sizes["__obs__"] == n_obs
            priors = json.loads(
                (workdir / f"results/{dataset}/fits/{model}_priors.json").read_text()
            )
            assert priors["model"] == model and priors["priors"]


def test_radon_varying_intercepts_lands_near_the_reference(workdir):
    idata = az.from_netcdf(workdir / "results/radon/fits/varying_intercepts.nc")
    post = idata.posterior
    # lme4 reference (shared/README): intercept 1.492, floor -0.663, county SD 0.315, residual 0.726
    assert abs(float(post["Intercept"].mean()) - 1.492) < 0.1
    assert abs(float(post["floor"].mean()) + 0.663) < 0.1
    assert abs(float(post["1|county_sigma"].mean()) - 0.315) < 0.12
    assert abs(float(post["sigma"].mean()) - 0.726) < 0.05


def test_diagnostics_and_comparison_cover_every_model(workdir):
    for dataset, models in (("tiny", MODELS), ("radon", RADON_MODELS)):
        diag = pd.read_csv(workdir / f"results/{dataset}/diagnostics/diagnostics.csv")
        assert sorted(diag["model"]) == sorted(models)
        assert {
            "max_rhat",
            "min_ess_bulk",
            "min_ess_tail",
            "divergences",
            "min_bfmi",
            "wall_time_s",
            "ess_per_second",
            "passed",
        } <= set(diag.columns)
        verdict = json.loads(
            (workdir / f"results/{dataset}/diagnostics/convergence.json").read_text()
        )
        assert verdict["policy"] == "warn" and set(verdict["passed_models"]) | set(
            verdict["failed_models"]
        ) == set(models)
        table = pd.read_csv(workdir / f"results/{dataset}/compare/compare.csv")
        assert sorted(table["model"]) == sorted(models) and sorted(table["rank"]) == list(
            range(len(models))
        )
        assert abs(table["weight"].sum() - 1) < 1e-6
        loo = pd.read_csv(workdir / f"results/{dataset}/compare/loo.csv")
        assert (loo[["k_good", "k_ok", "k_bad", "k_very_bad"]].sum(axis=1) == loo["n_obs"]).all()
        assert (workdir / f"results/{dataset}/compare/loo_comparison.png").stat().st_size > 10_000
    radon = pd.read_csv(workdir / "results/radon/compare/compare.csv").set_index("model")
    assert radon.loc["varying_intercepts", "elpd_loo"] > radon.loc["no_pooling", "elpd_loo"]


def test_high_pareto_k_is_refitted_and_new_sites_are_predicted(workdir):
    """radon (.test config: checking on, 200 draws): every high-k observation gets a remedy's elpd
    (moment matching in the fit job, then refits for what it left)."""
    loo = pd.read_csv(workdir / "results/radon/compare/loo.csv").set_index("model")
    bad = pd.read_csv(workdir / "results/radon/compare/pareto_k_bad.csv")
    assert (bad["pareto_k"] > loo["k_threshold"].iloc[0]).all() and len(bad) > 0
    remedies = {"moment matching", "exact refit", "K-fold"}
    assert set(bad["method"]) <= remedies, "every flagged observation remedied"
    assert loo["loo_reliable"].all()
    assert loo["n_moment_matched"].sum() > 0, loo["moment_matching"]
    for model, row in loo.iterrows():
        matched = load_moment_match(workdir / f"results/radon/fits/{model}.loo.nc")
        fixed = sum(k <= row["k_threshold"] for k in matched["pareto_k"])
        assert row["elpd_method"] == "K-fold CV" or row["n_moment_matched"] == fixed, model
    assert loo.loc["no_pooling", "elpd_method"] == "K-fold CV"  # dozens of high k: 2-fold CV
    for model, row in loo.iterrows():
        plan = json.loads((workdir / f"results/radon/checking/loo/{model}/plan.json").read_text())
        assert plan["high"] == [] or row["elpd_method"] != "PSIS"
        if plan["method"] == "exact":
            assert row["n_exact"] == len(plan["high"]) and row["elpd_loo"] != row["elpd_psis"]
    compare = pd.read_csv(workdir / "results/radon/compare/compare.csv")
    assert compare["loo_reliable"].all() and compare["flag"].isna().all()
    assert (
        json.loads((workdir / "results/radon/report/headline.json").read_text())["loo"][
            "unreliable"
        ]
        == []
    )
    loso = pd.read_csv(workdir / "results/radon/checking/loso.csv").set_index("model")
    assert loso.loc[["varying_intercepts", "uranium"], "elpd_loso"].notna().all()
    assert pd.isna(loso.loc["no_pooling", "elpd_loso"])
    assert "cannot predict a new site" in loso.loc["no_pooling", "note"]
    sites = pd.read_csv(workdir / "results/radon/checking/loso_sites.csv")
    assert set(sites["model"]) == {"varying_intercepts", "uranium"}
    assert sites.groupby("model")["site"].nunique().eq(85).all()  # every county held out once
    assert sites.groupby("model")["n"].sum().eq(919).all()
    by_model = sites.groupby("model")["elpd"].sum()
    assert abs(by_model["uranium"] - loso.loc["uranium", "elpd_loso"]) < 1e-6
    # Gaussian models: every county's value from the fit, refits only where its Pareto k is high
    assert set(sites["method"]) <= {"PSIS", "refit"} and (sites["method"] == "PSIS").any()
    counts = loso.loc[["varying_intercepts", "uranium"], ["estimated_sites", "refitted_sites"]]
    assert (counts.sum(axis=1) == 85).all() and (counts["estimated_sites"] > 0).all()
    for model in ("varying_intercepts", "uranium"):
        plan = json.loads((workdir / f"results/radon/checking/loso/{model}/plan.json").read_text())
        mine = sites[sites["model"] == model]
        refitted = mine[mine["method"] == "refit"]
        assert sorted(refitted["site"]) == sorted(plan["refitted"])
        assert (refitted["pareto_k"] > plan["threshold"]).all()
        assert (mine.loc[mine["method"] == "PSIS", "pareto_k"] <= plan["threshold"]).all()
    assert len(pd.read_csv(workdir / "results/radon/fits/no_pooling.loso.csv")) == 0
    html = report_text(workdir, "radon")
    assert "Predicting a new site" in html and "cannot predict a new site" in html
    assert "PSIS-LOO is unreliable" not in html
    # checking off (the .test default): a plan without refits, and the report says why
    tiny = pd.read_csv(workdir / "results/tiny/checking/loso.csv")
    assert tiny["elpd_loso"].isna().all() and tiny["note"].str.contains("is off").any()


def test_calibration_new_site_and_prior_sensitivity_for_every_dataset(workdir):
    for dataset, family in (("tiny", "gaussian"), ("radon", "gaussian"), ("binary", "bernoulli")):
        results = workdir / "results" / dataset
        n_rows = len(pd.read_csv(results / "data/clean.csv"))
        pit = pd.read_csv(results / "checking/loo_pit.csv")
        overall = pit[pit["site"] == "(all)"].set_index("model")
        assert (overall["n"] == n_rows).all() and overall["ks"].between(0, 1).all()
        ppc = pd.read_csv(results / "checking/ppc_sites.csv")
        assert set(ppc["statistic"]) == {"mean", "sd"} and ppc["p_two_sided"].between(0, 1).all()
        new = pd.read_csv(results / "checking/new_site.csv")
        assert "no_pooling" not in set(new["model"]) and len(new) > 0
        expected = new[new["quantity"] == "expected"]
        assert (expected["low"] <= expected["mean"]).all() and (
            expected["mean"] <= expected["high"]
        ).all()
        assert ((new["q25"] >= new["low"]) & (new["q75"] <= new["high"])).all()
        if family == "bernoulli":  # probabilities
            assert expected["mean"].between(0, 1).all()
        sens = pd.read_csv(results / "checking/prior_sensitivity.csv")
        assert {"model", "parameter", "prior", "likelihood", "prior_dominated"} <= set(sens)
        assert sens["site_sd"].any()  # every dataset has a model with a site SD
        if dataset == "tiny":  # a correlated block's SDs too (its Cholesky factor is not kept)
            block = sens[sens["model"] == "varying_slopes_correlated"]
            assert (
                block["site_sd"].sum() == 2 and block["parameter"].str.startswith("site_corr").any()
            )
        html = report_text(workdir, dataset)
        for heading in ("Calibration", "Prior sensitivity", "Predictions for a new site"):
            assert heading in html, (dataset, heading)
        for name in ("loo_pit", "ppc_sites", "new_site", "loso_sites"):
            assert (results / f"figures/{name}.png").stat().st_size > 1000


def test_logs_and_benchmarks_are_written(workdir):
    assert (
        "Formula: log_radon ~ floor + (1|county)"
        in (workdir / "logs/radon/fit/varying_intercepts.log").read_text()
    )
    bench = pd.read_csv(workdir / "benchmarks/radon/fit/varying_intercepts.tsv", sep="\t")
    assert bench["s"].iloc[0] > 0


def test_every_figure_and_analysis_table_is_written(workdir):
    for dataset in ("tiny", "radon"):
        for name in FIGURES:
            assert (workdir / f"results/{dataset}/figures/{name}.png").stat().st_size > 5_000, (
                dataset,
                name,
            )
        icc = pd.read_csv(workdir / f"results/{dataset}/variance/icc.csv")
        assert (
            (icc["hdi_low"] >= 0) & (icc["hdi_high"] <= 1) & (icc["hdi_low"] <= icc["mean"])
        ).all()
        shrink = pd.read_csv(workdir / f"results/{dataset}/shrinkage/shrinkage.csv")
        assert (
            len(shrink)
            == json.loads((workdir / f"results/{dataset}/data/cleaning_summary.json").read_text())[
                "sites_kept"
            ]
        )
        assert shrink["weight_mean"].between(0, 1).all()
    assert (workdir / "results/tiny/figures/recovery_sites.png").stat().st_size > 5_000
    summary = pd.read_csv(workdir / "results/tiny/recovery/site_summary.csv")
    assert {"model", "parameter", "rmse", "coverage_95"} <= set(summary.columns)
    assert not (
        workdir / "results/radon/recovery"
    ).exists()  # recovery only where the truth is known


def report_text(workdir, dataset):
    """The report's HTML with runs of whitespace made single spaces (pandoc wraps long lines)."""
    return " ".join((workdir / f"results/{dataset}/report.html").read_text().split())


def test_reports_are_single_self_contained_files_with_every_section(workdir):
    for dataset in ("tiny", "radon"):
        html = report_text(workdir, dataset)
        for section in SECTIONS:
            assert section in html, (dataset, section)
        assert len(re.findall(r'src="data:image/png;base64,', html)) >= len(FIGURES)
        assert not re.search(r'<(img|script|link)[^>]+(src|href)="(?!data:)[^"#]', html), (
            "external resource"
        )
        assert re.search(r"Renderer: (Quarto \S+|fallback)", html), (
            "the appendix names the renderer"
        )
    assert "Parameter recovery (simulated data)" in report_text(workdir, "tiny")
    assert "Parameter recovery" not in report_text(workdir, "radon")


def test_report_numbers_come_from_the_pipeline_tables(workdir):
    for dataset in ("tiny", "radon"):
        html = report_text(workdir, dataset)
        head = json.loads((workdir / f"results/{dataset}/report/headline.json").read_text())
        best = (
            pd.read_csv(workdir / f"results/{dataset}/compare/compare.csv")
            .sort_values("rank")
            .iloc[0]
        )
        assert head["loo"]["best"] == best["model"]
        name = f"({re.escape(best['model'])}|{re.escape(best['model'].replace('_', '&#95;'))})"
        assert re.search(
            rf"Best model by leave-one-out cross-validation:.{{0,40}}<code>{name}</code>", html
        )
        icc = (
            pd.read_csv(workdir / f"results/{dataset}/variance/icc.csv")
            .set_index("model")
            .loc["varying_intercepts"]
        )
        assert f"{icc['mean']:.2f} (95% HDI {icc['hdi_low']:.2f} to {icc['hdi_high']:.2f})" in html
        slope = head["slope"]
        assert (
            f"{slope['mean']:.3f} (95% HDI {slope['hdi'][0]:.3f} to {slope['hdi'][1]:.3f})" in html
        )


def test_hostile_site_label_is_escaped_in_the_report(workdir):
    html = report_text(workdir, "radon")
    assert HOSTILE not in html
    assert "<script>alert" not in html
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        or "&#60;script&#62;alert(1)&#60;/script&#62;" in html
    )
    assert (
        workdir / "results/radon/figures/forest_intercepts.png"
    ).stat().st_size > 5_000  # `$` drawn literally


def test_balanced_design_reports_an_undefined_rank_correlation_in_words(workdir):
    """`trials` (binomial) has 10 rows in every site: size cannot explain the shifts."""
    summary = json.loads((workdir / "results/trials/shrinkage/shrinkage_summary.json").read_text())
    assert summary["spearman_n_vs_abs_shift"] is None and summary["closed_form"] is False
    cleaning = json.loads((workdir / "results/trials/data/cleaning_summary.json").read_text())
    assert set(cleaning["site_counts"].values()) == {10}
    html = report_text(workdir, "trials")
    assert "undefined here (every site has the same number of observations" in html
    for section in ("Summary", "Shrinkage", "Variance partition"):
        assert section in html


def test_second_run_has_nothing_to_do(workdir):
    result = snakemake(workdir, "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_editing_one_dataset_reruns_only_that_dataset(workdir):
    config = yaml.safe_load((workdir / "config/config.yaml").read_text())
    config["datasets"]["tiny"]["simulate"]["seed"] = 8
    (workdir / "config/changed.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "-n", "--configfile", "config/changed.yaml")
    assert result.returncode == 0, result.stderr
    planned = [
        line.split("results/")[1].split("/")[0]
        for line in result.stdout.splitlines()
        if line.strip().startswith("output: results/")
    ]
    assert planned and set(planned) == {"tiny"}


def test_changing_only_the_report_text_rerenders_without_refitting(workdir):
    qmd = workdir / "reports/report.qmd"
    original = qmd.read_text()
    qmd.write_text(original + "\nA sentence added to the report.\n")
    try:
        result = snakemake(workdir, "-n")
        assert result.returncode == 0, result.stderr
        rules = set(re.findall(r"^(?:local)?rule (\w+):", result.stdout, flags=re.M))
        assert rules == {"report", "all"} or rules == {"report"}, rules
    finally:
        qmd.write_text(original)


def test_appending_a_site_reruns_that_dataset_and_the_report_says_what_changed(workdir):
    # classes (one model, no refits) rather than radon: the same rerun logic in a third of the time
    raw = workdir / ".test/data/classes.csv"
    lines = raw.read_text().splitlines()
    template = lines[1].split(",")
    school = lines[0].split(",").index("school")
    new_rows = []
    for value in ["48.5", "51.1", "50.9", "55.7", "47.2"]:
        row = list(template)
        row[school] = "NEW SCHOOL"
        row[-1] = value
        new_rows.append(",".join(row))
    raw.write_text("\n".join(lines + new_rows) + "\n")
    result = snakemake(workdir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ran = re.findall(
        r"^(?:local)?rule (\w+):\n(?:.*\n)*?\s+wildcards: (.*)$",
        result.stdout + result.stderr,
        flags=re.M,
    )
    datasets = {w for _, wc in ran for w in re.findall(r"dataset=(\w+)", wc)}
    rules = {r for r, _ in ran}
    assert datasets == {"classes"}, ran
    assert {"clean", "fit", "compare", "report"} <= rules and "simulate" not in rules
    changes = json.loads((workdir / "results/classes/report/changes.json").read_text())
    assert changes["first_run"] is False and changes["sites_added"] == ["NEW SCHOOL"]
    assert changes["observations_added"] == 5
    html = report_text(workdir, "classes")
    assert "Sites added: NEW SCHOOL" in html
    assert f"{len(lines) - 1} → {len(lines) + 4}" in html


def test_non_gaussian_families_go_through_every_stage(workdir):
    binary = pd.read_csv(workdir / "results/binary/data/clean.csv")
    assert set(binary["scontrol"].unique()) <= {0, 1}
    trials = pd.read_csv(workdir / "results/trials/data/clean.csv")
    assert (trials["scontrol"] <= trials["trials"]).all()
    expected = {
        "binary": "latent scale: pi^2/3",
        "trials": "latent scale: pi^2/3",
        "counts": "lognormal approximation",
    }
    for dataset, definition in expected.items():
        priors = json.loads(
            (workdir / f"results/{dataset}/fits/varying_intercepts_priors.json").read_text()
        )
        assert (
            priors["family"]
            == {"binary": "bernoulli", "trials": "binomial", "counts": "poisson"}[dataset]
        )
        icc = pd.read_csv(workdir / f"results/{dataset}/variance/icc.csv")
        assert icc["residual_variance"].str.contains(definition, regex=False).all(), icc
        assert icc["mean"].between(0, 1).all()
        r2 = pd.read_csv(workdir / f"results/{dataset}/variance/bayes_r2.csv")
        assert r2["mean"].between(0, 1).all() and "residual variance" in r2["definition"].iloc[0]
        coefficients = pd.read_csv(
            workdir / f"results/{dataset}/fits/varying_intercepts_coefficients.csv"
        )
        assert {"Intercept", "stress", "1|site_sigma"} <= set(
            coefficients["parameter"]
        ) and "sigma" not in set(coefficients["parameter"])
        recovery = pd.read_csv(workdir / f"results/{dataset}/recovery/population.csv")
        assert set(recovery["parameter"]) == {"intercept", "slope", "sd_intercept"}
        html = report_text(workdir, dataset)
        assert "link scale" in html and "latent-scale" in html
        # leave-one-site-out from the fit (hierpool.quadrature), on for counts only (loso_folds)
        estimate = pd.read_csv(workdir / f"results/{dataset}/fits/varying_intercepts.loso.csv")
        assert len(estimate) == (5 if dataset == "counts" else 0), estimate
        assert (estimate["elpd"] < 0).all() and (estimate["elpd_joint"] < 0).all()
    sites = pd.read_csv(workdir / "results/counts/checking/loso_sites.csv")
    plan = json.loads(
        (workdir / "results/counts/checking/loso/varying_intercepts/plan.json").read_text()
    )
    assert len(sites) == 5 and sorted(sites.loc[sites["method"] == "refit", "site"]) == sorted(
        plan["refitted"]
    )
    assert (sites.loc[sites["method"] == "PSIS", "pareto_k"] <= plan["threshold"]).all()
    shrink = json.loads((workdir / "results/binary/shrinkage/shrinkage_summary.json").read_text())
    assert shrink["closed_form"] is False and shrink["weight_range"] is None
    assert "no weight is computed" in report_text(workdir, "binary")


def test_covariates_and_a_nested_grouping_factor(workdir):
    icc = pd.read_csv(workdir / "results/classes/variance/icc.csv")
    nested = icc[icc["model"] == "nested"]
    assert nested["factor"].tolist() == ["school", "school:class"]
    coefficients = pd.read_csv(workdir / "results/classes/fits/nested_coefficients.csv").set_index(
        "parameter"
    )
    assert {"hours", "age", "1|school_sigma", "1|school:class_sigma"} <= set(coefficients.index)
    assert any(p.startswith("C(sex)") for p in coefficients.index)
    assert 0.5 < coefficients.loc["hours", "mean"] < 3.5  # simulated 2
    summary = json.loads((workdir / "results/classes/variance/variance_summary.json").read_text())
    assert "school:class" in summary["icc_other_factors"]["nested"]
    html = report_text(workdir, "classes")
    assert "Further grouping factors" in html and "held at each site" in html


def test_radon_uranium_model_takes_county_variance_away(workdir):
    """Gelman & Hill: adding county uranium shrinks the county SD (lme4: about 0.32 -> 0.15)."""
    coefficients = pd.read_csv(workdir / "results/radon/fits/uranium_coefficients.csv").set_index(
        "parameter"
    )
    assert abs(coefficients.loc["floor", "mean"] + 0.639) < 0.15
    assert abs(coefficients.loc["log(Uppm)", "mean"] - 0.697) < 0.2
    plain = pd.read_csv(
        workdir / "results/radon/fits/varying_intercepts_coefficients.csv"
    ).set_index("parameter")
    assert coefficients.loc["1|county_sigma", "mean"] < plain.loc["1|county_sigma", "mean"] - 0.05
    shrink = json.loads((workdir / "results/radon/shrinkage/shrinkage_summary.json").read_text())
    assert shrink["closed_form"] is True


def test_the_correlated_model_goes_through_every_stage(workdir):
    tiny = workdir / "results/tiny"
    priors = json.loads((tiny / "fits/varying_slopes_correlated_priors.json").read_text())
    assert priors["priors"]["site_corr"] == {"dist": "LKJCorr", "eta": 2.0}
    corr = pd.read_csv(tiny / "variance/correlation.csv")
    assert set(corr["model"]) == {"varying_slopes_correlated"}
    assert set(corr["quantity"]) == {"correlation", "covariance"}
    assert set(corr["pair"]) == {"Intercept, stress"}
    rho = corr[corr["quantity"] == "correlation"].iloc[0]
    assert -1 <= rho["hdi_low"] < rho["mean"] < rho["hdi_high"] <= 1
    curve = pd.read_csv(tiny / "variance/vpc_curve.csv")
    assert "varying_slopes_correlated" in set(curve["model"])
    recovered = pd.read_csv(tiny / "recovery/population.csv")
    row = recovered[
        (recovered["model"] == "varying_slopes_correlated")
        & (recovered["parameter"] == "correlation")
    ]
    assert len(row) == 1 and row["truth_spec"].iloc[0] == 0.0
    estimates = pd.read_csv(tiny / "sites/site_estimates.csv")
    assert "varying_slopes_correlated" in set(estimates["model"])
    text = report_text(workdir, "tiny")
    assert "are <strong>correlated</strong>" in text and "Correlation (and covariance" in text
    assert "site_corr ~ LKJCorr(eta=2)" in text
    # radon's models (.test config) have no correlated effects: an empty table, no section text
    assert pd.read_csv(workdir / "results/radon/variance/correlation.csv").empty
    assert "Correlation (and covariance" not in report_text(workdir, "radon")


def test_the_report_appendix_gives_each_jobs_time_and_memory(workdir):
    timings = pd.read_csv(workdir / "results/tiny/report/timings.csv")
    fits = timings[timings["stage"] == "fit"]
    assert sorted(fits["job"]) == sorted(MODELS)
    assert {"compare", "figures", "variance", "shrinkage", "recovery"} <= set(timings["stage"])
    assert (timings["wall_s"] > 0).all() and (timings["peak_rss_mb"] > 0).all()
    text = report_text(workdir, "tiny")
    assert "Wall time and peak memory of this dataset" in text  # pandoc curls the apostrophe
    assert "tail -f logs/tiny/fit/&lt;model&gt;.log" in text
