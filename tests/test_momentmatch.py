"""Moment matching's pieces: the flat layout, the vectorised densities, what the LOO file keeps."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from hierpool import crossval, momentmatch, refitplan
from hierpool.loo import load_moment_match, save_loo
from hierpool.models import build_model


class _Var:
    def __init__(self, name):
        self.name = name


def test_the_flat_layout_follows_nutpies_names():
    names = ["sigma_log__", "b_0", "b_1", "b_2", "m_0.0", "m_0.1", "m_1.0", "m_1.1"]
    shapes = {"sigma_log__": (), "b": (3,), "m": (2, 2)}
    layout = momentmatch._flat_layout(names, [_Var("m"), _Var("b"), _Var("sigma_log__")], shapes)
    assert [(n, w.start, w.stop, s) for n, w, s in layout] == [
        ("sigma_log__", 0, 1, ()),
        ("b", 1, 4, (3,)),
        ("m", 4, 8, (2, 2)),
    ]
    with pytest.raises(ValueError, match="not a value variable"):
        momentmatch._flat_layout(["c_0"], [_Var("b")], {"b": (1,)})
    with pytest.raises(ValueError, match="every value variable"):
        momentmatch._flat_layout(["b_0"], [_Var("b"), _Var("c")], {"b": (1,), "c": ()})


@pytest.mark.parametrize(
    "formula, family", [("y ~ x + (x|site)", "gaussian"), ("b ~ x + (1|site)", "bernoulli")]
)
def test_the_densities_equal_pymcs_at_every_draw(formula, family):
    rng = np.random.default_rng(0)
    site = np.repeat(np.arange(5), 6)
    x = rng.normal(size=site.size)
    data = pd.DataFrame(
        {
            "y": x + rng.normal(size=site.size),
            "b": (x + rng.normal(size=site.size) > 0).astype(int),
            "x": x,
            "site": pd.Categorical(site.astype(str)),
        }
    )
    model = build_model({"name": "m", "formula": formula, "family": family}, data, 1.0)
    model.build()
    model_pm = momentmatch._density_model(model)
    points = [
        {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in model_pm.initial_point().items()}
        for _ in range(6)
    ]
    names, columns = [], []
    for var in model_pm.value_vars:  # flat, in nutpie's naming
        shape = np.shape(points[0][var.name])
        for idx in np.ndindex(*shape):
            names.append(var.name if not shape else f"{var.name}_{'.'.join(map(str, idx))}")
            columns.append([p[var.name][idx] for p in points])
    upars = xr.DataArray(
        np.array(columns).T.reshape(2, 3, -1),
        dims=("chain", "draw", momentmatch.PARAMETER_DIM),
        coords={momentmatch.PARAMETER_DIM: names},
    )
    functions = momentmatch.DensityFunctions(model_pm, names)
    logp = model_pm.compile_logp(jacobian=True)
    expected = np.array([logp(p) for p in points]).reshape(2, 3)
    np.testing.assert_allclose(functions.log_posterior(upars).values, expected, rtol=1e-10)
    response = model_pm.observed_RVs[0]
    pointwise = model_pm.compile_fn(
        model_pm.logp(vars=[response], sum=False)[0], inputs=model_pm.value_vars
    )
    rows = [4, 0, 17]
    expected = np.array([pointwise(p)[rows] for p in points]).reshape(2, 3, 3)
    np.testing.assert_allclose(functions.log_likelihood(upars, rows), expected, rtol=1e-10)
    for j, row in enumerate(rows):  # one row: its own graph (moment matching's calls)
        got = functions.log_likelihood(upars, [row])
        np.testing.assert_allclose(got, expected[..., j : j + 1], rtol=1e-10)
    momentmatch.CHUNK_VALUES, chunk = 30, momentmatch.CHUNK_VALUES  # one draw per chunk
    try:
        np.testing.assert_allclose(functions.log_likelihood(upars, rows), expected, rtol=1e-10)
    finally:
        momentmatch.CHUNK_VALUES = chunk


def _psis(seed=1):
    rng = np.random.default_rng(seed)
    ll = rng.normal(-1.0, 0.05, size=(2, 500, 20))
    ll[:, :, 4] = rng.standard_t(df=1, size=(2, 500)) * 5 - 20
    ll[:, :, 9] = rng.standard_t(df=1, size=(2, 500)) * 5 - 20
    idata = az.from_dict(posterior={"m": np.zeros((2, 500))}, log_likelihood={"y": ll})
    return az.loo(idata, pointwise=True)


def test_the_loo_file_keeps_the_matching_and_the_plan_reads_k_after_it(tmp_path):
    psis = _psis()
    high = refitplan.high_k(psis.pareto_k.values, 1000)
    assert set(high) >= {4, 9}
    matched = {
        "rows": [4, 9],
        "elpd": [-25.0, -26.0],
        "pareto_k": [0.3, 0.9],  # row 4 resolved, row 9 not
        "note": "1 of 2 observations brought below k = 0.67",
    }
    path = tmp_path / "m.loo.nc"
    save_loo(psis, path, matched=matched)
    back = load_moment_match(path)
    assert back["rows"] == [4, 9] and back["note"] == matched["note"]
    np.testing.assert_allclose(back["elpd"], [-25.0, -26.0])
    k, n_samples = refitplan.read_pareto_k(path)
    assert k[4] == pytest.approx(0.3) and k[9] == pytest.approx(0.9) and n_samples == 1000
    plan = refitplan.loo_plan(k, n_samples, 10, 10, 1)
    assert 4 not in plan["high"] and 9 in plan["high"]
    refits = [{"rows": [i], "elpd": [-30.0]} for i in plan["high"]]
    fixed, methods = crossval.remedied_loo(psis, plan, refits, back)
    assert methods[4] == "moment_match" and fixed.loo_i.values[4] == -25.0
    assert methods[9] == "exact" and fixed.loo_i.values[9] == -30.0
    assert not fixed.warning
    save_loo(psis, path)
    assert load_moment_match(path) is None


def test_nothing_to_match_or_off_or_no_draws_says_so():
    psis = _psis()

    class Fit:
        def groups(self):
            return []

    assert "off" in momentmatch.remedy(None, Fit(), psis, 0)["note"]
    assert "unavailable" in momentmatch.remedy(None, Fit(), psis, 5)["note"]
