"""Grouping factors as codes (hierpool.groupcodes): the same model as formulae's dense evaluation."""

import warnings

import arviz as az
import bambi as bmb
import numpy as np
import pandas as pd
import pytest

from hierpool.groupcodes import IdentityContrast, OneHotRows, compact_group_factors
from hierpool.models import build_model


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    n = 60
    data = pd.DataFrame(
        {
            "g": rng.choice(["b", "a", "c", "d"], n),
            "h": rng.integers(0, 3, n),
            "x": rng.normal(size=n),
            "y": rng.normal(size=n),
        }
    )
    data["go"] = pd.Categorical(data.g, categories=["d", "c", "b", "a"], ordered=True)
    return data


def _both(formula, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dense = bmb.Model(formula, data)
        with compact_group_factors():
            compact = bmb.Model(formula, data)
    dense.build()
    compact.build()
    return dense, compact


@pytest.mark.parametrize(
    "formula",
    ["y ~ x + (x|g)", "y ~ (1|h) + (x|go)", "y ~ x + (1|g:h)", "y ~ 0 + x + (0 + x|g)"],
)
def test_codes_give_formulaes_group_index_design_and_levels(frame, formula):
    dense, compact = _both(formula, frame)
    terms = compact.components["mu"].group_specific_terms
    assert terms.keys() == dense.components["mu"].group_specific_terms.keys()
    for name, term in dense.components["mu"].group_specific_terms.items():
        other = terms[name]
        np.testing.assert_array_equal(other.group_index, term.group_index)
        assert (other.data != term.data).nnz == 0
        assert list(other.coords) == list(term.coords)
        for key, values in term.coords.items():
            np.testing.assert_array_equal(other.coords[key], values)
        # plain factors never hold rows x levels; an interaction is left to formulae
        assert isinstance(other.grouper, OneHotRows) == (":" not in name.split("|")[1])


def test_predictions_on_new_data_match_including_an_unseen_site(frame):
    dense, compact = _both("y ~ x + (x|g)", frame)
    rng = np.random.default_rng(1)
    posterior = {
        "Intercept": rng.normal(size=(1, 5)),
        "x": rng.normal(size=(1, 5)),
        "sigma": rng.uniform(1, 2, size=(1, 5)),
        "1|g_sigma": rng.uniform(0.5, 1, size=(1, 5)),
        "x|g_sigma": rng.uniform(0.5, 1, size=(1, 5)),
        "1|g": rng.normal(size=(1, 5, 4)),
        "x|g": rng.normal(size=(1, 5, 4)),
    }
    idata = az.from_dict(
        posterior=posterior,
        dims={"1|g": ["g__factor_dim"], "x|g": ["g__factor_dim"]},
        coords={"g__factor_dim": ["a", "b", "c", "d"]},
    )
    new = pd.concat([frame.iloc[:7], pd.DataFrame({"g": ["zz"], "x": [0.3], "y": [0.0]})])
    args = {"data": new, "inplace": False, "kind": "response_params", "sample_new_groups": True}
    expected = dense.predict(idata, random_seed=3, **args).posterior["mu"].values
    got = compact.predict(idata, random_seed=3, **args).posterior["mu"].values
    np.testing.assert_allclose(got, expected)


def test_the_built_model_holds_codes_and_an_identity_contrast(frame):
    spec = {"name": "vs", "formula": "y ~ x + (x|g)", "family": "gaussian"}
    term = build_model(spec, frame).components["mu"].group_specific_terms["1|g"]
    assert isinstance(term.grouper, OneHotRows)
    contrast = term.term.factor.components[0].contrast_matrix.matrix
    assert isinstance(contrast, IdentityContrast)
    np.testing.assert_array_equal(np.asarray(term.grouper), np.eye(4, dtype=int)[term.group_index])
    np.testing.assert_array_equal(contrast[[2, 0]], np.eye(4, dtype=int)[[2, 0]])
