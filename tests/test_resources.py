"""Cluster resources from the data: hierpool.resources (called by the fit, clean and analysis rules)."""

from __future__ import annotations

import pytest

from hierpool import resources

DEFAULT = {
    "chains": 4,
    "draws": 2000,
    "tune": 1000,
    "posterior_predictive_draws": 500,
    "prior_predictive_draws": 200,
}
TINY = {
    "chains": 2,
    "draws": 100,
    "tune": 150,
    "posterior_predictive_draws": 40,
    "prior_predictive_draws": 20,
}


def test_count_rows_counts_data_lines_with_or_without_a_final_newline(tmp_path):
    path = tmp_path / "clean.csv"
    path.write_text("y,x,site\n1,2,a\n3,4,b\n")
    assert resources.count_rows(path) == 2
    path.write_text("y,x,site\n1,2,a\n3,4,b")
    assert resources.count_rows(path) == 2
    path.write_text("y,x,site\n")
    assert resources.count_rows(path) == 0
    assert resources.count_rows(tmp_path / "missing.csv") is None


@pytest.mark.parametrize(
    ("formula", "effects"),
    [
        ("y ~ x", 0),
        ("y ~ 0 + site + site:x", 0),
        ("y ~ x + (1|site)", 1),
        ("y ~ x + (x|site)", 2),
        ("y ~ x + (0 + x|site)", 1),
        ("y ~ x + (1|site) + (1|region)", 2),
        ("y ~ x + (x + z|site)", 3),
    ],
)
def test_varying_effects_per_observation(formula, effects):
    assert resources.varying_effects(formula) == effects


# Peak RSS measured on the workflow's fit code path (docs/performance.md, "Running on SLURM",
# 2026-12-03: hierpool.fit.fit + save in a fresh process; the last two rows are the fit jobs of
# tools/benchmark_scale.py): (rows, chains, draws, formula, measured MB). The request must cover
# it, without wasting a node.
MEASURED = [
    (728, 4, 2000, "y ~ x + (x|site)", 686),
    (5000, 4, 2000, "y ~ x + (x|site)", 829),
    (5000, 2, 1000, "y ~ x + (x|site)", 705),
    (20000, 2, 1000, "y ~ x + (x|site)", 831),
    (5000, 2, 1000, "y ~ x + (1|site)", 741),
    (5000, 2, 1000, "y ~ 0 + site + site:x", 737),
    (5000, 4, 2000, "y ~ x", 752),
    (10002, 4, 2000, "y ~ x + (x|site)", 802),
    (99891, 4, 2000, "y ~ x + (x|site)", 1521),
    # the default run's Bernoulli fits (simulated_binary, 2026-12-04): complete pooling, varying intercepts
    (1065, 4, 2000, "y ~ x", 962),
    (1065, 4, 2000, "y ~ x + (1|site)", 771),
]


@pytest.mark.parametrize(("rows", "chains", "draws", "formula", "measured"), MEASURED)
def test_fit_memory_covers_the_measured_peak_with_modest_headroom(
    rows, chains, draws, formula, measured
):
    sampler = {**DEFAULT, "chains": chains, "draws": draws}
    asked = resources.fit_mem_mb(rows, formula, sampler)
    assert measured < asked < 2.5 * measured + 1000, (asked, measured)
    assert asked % resources.ROUND_MB == 0


def test_fit_memory_grows_with_rows_draws_chains_and_varying_effects():
    base = resources.fit_mem_mb(100_000, "y ~ x + (1|site)", DEFAULT)
    assert resources.fit_mem_mb(1_000_000, "y ~ x + (1|site)", DEFAULT) > 4 * base
    assert resources.fit_mem_mb(100_000, "y ~ x + (1|site)", {**DEFAULT, "draws": 4000}) > base
    assert resources.fit_mem_mb(100_000, "y ~ x + (1|site)", {**DEFAULT, "chains": 8}) > base
    assert resources.fit_mem_mb(100_000, "y ~ x + (x|site)", DEFAULT) > base
    assert (
        resources.fit_mem_mb(100_000, "y ~ x + (1|site)", {**DEFAULT, "tune": 5000}) == base
    )  # warm-up is not kept


def test_a_large_fit_asks_for_what_a_node_has():
    # 1,000,000 rows, 4 x 2000 draws, varying slopes: the chunked per-row work keeps it in GBs
    assert resources.fit_mem_mb(1_000_000, "y ~ x + (x|site)", DEFAULT) <= 16_000


def test_fit_memory_of_the_tiny_test_config_is_small_and_a_retry_asks_for_more():
    first = resources.fit_mem_mb(150, "y ~ x + (x|site)", TINY)
    assert first <= 1250
    assert (
        2 * first - resources.ROUND_MB
        <= resources.fit_mem_mb(150, "y ~ x + (x|site)", TINY, attempt=2)
        <= 2 * first
    )


def test_fit_memory_before_the_data_exist_uses_a_fallback():
    assert resources.fit_mem_mb(None, "y ~ x", DEFAULT) == resources.fit_mem_mb(
        resources.FALLBACK_ROWS, "y ~ x", DEFAULT
    )


def test_fit_runtime_grows_with_the_work_per_thread():
    assert (
        resources.RUNTIME_FIXED_MIN
        <= resources.fit_runtime_min(100, TINY, threads=2)
        <= resources.RUNTIME_FIXED_MIN + resources.ROUND_MIN
    )
    big = resources.fit_runtime_min(100_000, DEFAULT, threads=4)
    assert big > 60 and big % resources.ROUND_MIN == 0
    assert (
        resources.fit_runtime_min(100_000, DEFAULT, threads=1) > 3 * big
    )  # 4 chains one after the other
    assert resources.fit_runtime_min(100_000, DEFAULT, threads=4, attempt=2) == 2 * big


def test_memory_from_the_size_of_the_saved_fits(tmp_path):
    fits = [tmp_path / "a.nc", tmp_path / "b.nc"]
    for path in fits:
        path.write_bytes(b"x" * 500_000)
    assert resources.size_mb(fits) == pytest.approx(1.0)
    assert resources.size_mb(fits + [tmp_path / "missing.nc"]) == pytest.approx(1.0)
    assert resources.from_input_size_mb(1.0, floor_mb=2000) == 2000
    assert (
        resources.from_input_size_mb(1000.0, floor_mb=2000) == 7000
    )  # 800 + 6 x 1000, rounded up to 250 MB
    assert resources.from_input_size_mb(1000.0, floor_mb=2000, attempt=2) == 13750


@pytest.mark.parametrize(
    ("chains", "cores", "threads"),
    [
        (4, 4, 2),  # the default run: two fits side by side
        (4, 8, 4),
        (4, 16, 4),
        (4, 2, 1),
        (4, 1, 1),
        (2, 4, 2),
        (4, None, 4),  # a cluster run without --cores
        (4, 2**63 - 1, 4),  # Snakemake's "unlimited"
    ],
)
def test_fit_threads_leave_room_for_a_second_job_on_one_machine(chains, cores, threads):
    assert resources.fit_threads(chains, cores) == threads
