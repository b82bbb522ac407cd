"""Unit tests for hierpool.roles: a model's role and terms from its formula, checked against Bambi's built model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hierpool import roles

LADDER = {
    "complete_pooling": "y ~ x",
    "no_pooling": "y ~ 0 + g + g:x",
    "varying_intercepts": "y ~ x + (1|g)",
    "varying_slopes": "y ~ x + (x|g)",
}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 48
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "age": rng.normal(40, 5, n),
            "sex": rng.choice(["f", "m"], n),
            "g": pd.Categorical(np.repeat(list("abcd"), 12)),
            "cls": np.tile(list("uv"), 24),
            "rater": rng.choice(list("pqr"), n),
            "u": np.repeat([1.0, 2, 3, 4], 12),
        }
    )


@pytest.mark.parametrize("role", roles.ROLES)
def test_the_ladder_is_recognised_by_structure_under_any_name(role):
    assert roles.model_roles(LADDER[role], "g", "x").role == role


@pytest.mark.parametrize(
    "formula,role,factors,covariates",
    [
        (
            "y ~ x + age + C(sex) + log(u) + (1|g)",
            "varying_intercepts",
            ("g",),
            ("age", "C(sex)", "log(u)"),
        ),
        ("y ~ x + (1|g) + (1|g:cls)", "varying_intercepts", ("g", "g:cls"), ()),
        ("y ~ x + (1|g) + (1|rater)", "varying_intercepts", ("g", "rater"), ()),
        ("y ~ x + (0 + x|g)", "varying_slopes", ("g",), ()),
        ("y ~ 0 + g + g:x + age", "no_pooling", (), ("age",)),
        ("p(y, n) ~ x + (1|g)", "varying_intercepts", ("g",), ()),
        ("y ~ 1 + (1|g)", "varying_intercepts", ("g",), ()),
        ("y ~ x + (1|rater)", "complete_pooling", ("rater",), ()),
    ],
)
def test_covariates_and_further_grouping_factors_do_not_change_the_role(
    formula, role, factors, covariates
):
    found = roles.model_roles(formula, "g", "x")
    assert (found.role, found.factors, found.covariates) == (role, factors, covariates)


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ x + age + C(sex) + (1|g) + (x|g:cls)",
        "y ~ x + (1|g) + (1|rater)",
        LADDER["varying_slopes"],
    ],
)
def test_group_terms_are_the_ones_bambi_builds(formula, data):
    import bambi as bmb

    model = bmb.Model(formula, data)
    built = {t for t in model.components[model.family.likelihood.parent].terms if "|" in t}
    described = {
        f"{e}|{f}"
        for f, exprs in roles.model_roles(formula, "g", "x").group_terms.items()
        for e in exprs
    }
    assert described == built


def test_stages_say_why_they_do_not_apply():
    only_pooled = {"a": LADDER["complete_pooling"], "b": LADDER["no_pooling"]}
    stages = roles.stages(only_pooled, "g", "x")
    assert (
        "no model has effects varying" in stages["variance"]
        and "varying intercepts" in stages["shrinkage"]
    )
    renamed = {"first": LADDER["varying_intercepts"], "second": LADDER["no_pooling"]}
    assert roles.stages(renamed, "g", "x") == {"variance": "", "shrinkage": ""}
    assert roles.main_model({**renamed, "third": LADDER["varying_slopes"]}, "g", "x") == "third"
