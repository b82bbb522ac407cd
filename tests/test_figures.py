"""Unit tests for hierpool.figures: every figure renders with 5 and with 200 sites, titled and labelled in the
dataset's own variable names, with the predictor on the original scale and the panel count capped."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from analysis_fixtures import make_data, make_fit  # noqa: E402

from hierpool import figures as fg  # noqa: E402
from hierpool import shrinkage as sh  # noqa: E402
from hierpool import variance as va  # noqa: E402
from hierpool.figures.style import save_figure  # noqa: E402
from hierpool.fitinfo import PredictorScale  # noqa: E402
from hierpool.sitedata import SiteData  # noqa: E402

# Unusual names, so a hard-coded "site"/"stress" label would show.
COLS = {"outcome": "wellbeing", "predictor": "hours_slept", "group": "clinic"}
SCALE = PredictorScale(center=7.0, scale=1.0)


def toy(data) -> SiteData:
    return SiteData(data, COLS, SCALE, "toy")


MAX_PANELS = 12


def build(n_sites: int):
    rng = np.random.default_rng(n_sites)
    sizes = np.round(np.exp(np.linspace(np.log(2), np.log(60), n_sites))).astype(int)
    data = make_data(
        sizes,
        COLS,
        intercepts=rng.normal(2, 0.6, n_sites),
        slopes=rng.normal(-0.4, 0.2, n_sites),
        seed=n_sites,
    )
    means = (
        data.groupby("clinic", observed=True)["wellbeing"]
        .mean()
        .reindex(data["clinic"].cat.categories)
        .to_numpy()
    )
    kw = dict(chains=2, draws=40)
    fits = {
        "complete_pooling": make_fit("complete_pooling", data, COLS, intercept=means.mean(), **kw),
        "no_pooling": make_fit(
            "no_pooling", data, COLS, site_intercept=means, site_slope=np.full(n_sites, -0.4), **kw
        ),
        "varying_intercepts": make_fit(
            "varying_intercepts",
            data,
            COLS,
            intercept=means.mean(),
            site_intercept=0.7 * (means - means.mean()),
            **kw,
        ),
        "varying_slopes": make_fit(
            "varying_slopes",
            data,
            COLS,
            intercept=means.mean(),
            site_intercept=0.7 * (means - means.mean()),
            **kw,
        ),
    }
    return data, fits


@pytest.fixture(scope="module", params=[5, 200], ids=["5_sites", "200_sites"])
def setup(request):
    data, fits = build(request.param)
    return (
        request.param,
        data,
        fits,
        sh.site_estimates(fits, SiteData(data, COLS, SCALE)),
        sh.shrinkage_table(fits, SiteData(data, COLS, SCALE)),
    )


def all_text(fig) -> str:
    parts = [t.get_text() for t in fig.texts]
    if fig._suptitle is not None:
        parts.append(fig._suptitle.get_text())
    for ax in fig.axes:
        parts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
    for label in (fig._supxlabel, fig._supylabel):
        if label is not None:
            parts.append(label.get_text())
    return "\n".join(parts)


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def check(fig, tmp_path, name, words):
    text = all_text(fig)
    assert "toy" in text, f"{name}: no title naming the dataset"
    for word in words:
        assert word in text, f"{name}: {word!r} not in titles/labels"
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    assert (
        "toy" in suptitle
        or all("toy" in ax.get_title() for ax in visible_axes(fig))
        or all(ax.get_title() for ax in visible_axes(fig))
    ), f"{name}: a panel without a title and no figure title naming the dataset"
    path = tmp_path / f"{name}.png"
    save_figure(fig, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_figure_renders_readably(setup, tmp_path):
    n_sites, data, fits, estimates, table = setup
    x = SCALE.to_original(data["hours_slept"])
    curve = va.vpc_curve(fits, COLS, SCALE, x.min(), x.max(), n=20)
    figures = {
        "observations": (fg.observations_per_site(data, COLS, "toy"), ["clinic", "observations"]),
        "scatter": (
            fg.outcome_vs_predictor(data, COLS, SCALE, "toy", max_panels=MAX_PANELS),
            ["wellbeing", "hours_slept"],
        ),
        "prior": (
            fg.prior_lines(
                fits["varying_slopes"], toy(data), "varying_slopes", max_panels=MAX_PANELS
            ),
            ["wellbeing", "hours_slept", "prior"],
        ),
        "posterior": (
            fg.posterior_lines(
                fits["varying_slopes"],
                toy(data),
                "varying_slopes",
                references={"no_pooling": fits["no_pooling"]},
                max_panels=MAX_PANELS,
            ),
            ["wellbeing", "hours_slept", "HDI"],
        ),
        "forest_i": (
            fg.forest(estimates, COLS, SCALE, "toy", "intercept", population=2.0, max_rows=60),
            ["wellbeing at hours_slept = 7", "clinic"],
        ),
        "forest_s": (
            fg.forest(estimates, COLS, SCALE, "toy", "slope", max_rows=60),
            ["slope of wellbeing per unit hours_slept"],
        ),
        "ppc": (fg.ppc(fits, COLS, "toy"), ["wellbeing", "posterior predictive"]),
        "rank": (
            fg.rank_plots(fits, COLS, "toy", data),
            ["rank", "hours_slept|clinic_sigma", "clinic:hours_slept"],
        ),
        "icc": (fg.icc_posterior(fits, COLS, "toy"), ["wellbeing", "clinic", "intraclass"]),
        "vpc": (fg.vpc_curve(curve, data, COLS, SCALE, "toy"), ["hours_slept", "wellbeing", "VPC"]),
        "shrinkage_by_n": (
            fg.shrinkage_by_n(table, COLS, SCALE, "toy"),
            ["no pooling", "partial pooling", "clinic", "wellbeing at hours_slept"],
        ),
        "arrows": (
            fg.shrinkage_arrows(table, COLS, SCALE, "toy"),
            ["clinic", "wellbeing at hours_slept"],
        ),
    }
    for name, (fig, words) in figures.items():
        check(fig, tmp_path, name, words)
    assert not plt.get_fignums(), "save_figure should close every figure"


@pytest.mark.parametrize("maker", ["scatter", "prior", "posterior"])
def test_faceted_figures_cap_the_panels_and_say_so(setup, maker):
    n_sites, data, fits, _, _ = setup
    make = {
        "scatter": lambda: fg.outcome_vs_predictor(data, COLS, SCALE, "toy", max_panels=MAX_PANELS),
        "prior": lambda: fg.prior_lines(
            fits["varying_slopes"], toy(data), "vs", max_panels=MAX_PANELS
        ),
        "posterior": lambda: fg.posterior_lines(
            fits["varying_slopes"], toy(data), "vs", max_panels=MAX_PANELS
        ),
    }[maker]
    fig = make()
    panels = visible_axes(fig)
    assert len(panels) == min(n_sites, MAX_PANELS)
    assert ("of 200 sites" in fig._suptitle.get_text()) == (n_sites > MAX_PANELS)
    plt.close(fig)


def test_predictor_axis_is_on_the_original_scale(setup):
    _, data, fits, _, _ = setup
    fig = fg.outcome_vs_predictor(data, COLS, SCALE, "toy", max_panels=3)
    xs = np.concatenate([c.get_offsets()[:, 0] for ax in fig.axes for c in ax.collections])
    assert 5.0 < xs.mean() < 9.0  # centred data are near 0, the original near the centre 7
    plt.close(fig)
    fig = fg.posterior_lines(fits["varying_intercepts"], toy(data), "vi", max_panels=2)
    line_x = fig.axes[0].lines[0].get_xdata()
    assert line_x.min() == pytest.approx(SCALE.to_original(data["hours_slept"]).min())
    plt.close(fig)


def test_choose_sites_largest_and_spread():
    counts = pd.DataFrame({"site": [f"c{i}" for i in range(10)], "n": np.arange(1, 11)})
    chosen, note = fg.choose_sites(counts, 3, "largest")
    assert chosen == ["c9", "c8", "c7"] and note == "3 largest of 10 sites"
    chosen, note = fg.choose_sites(counts, 3, "spread")
    assert chosen[0] == "c9" and chosen[-1] == "c0" and len(chosen) == 3 and "spread" in note
    assert fg.choose_sites(counts, 20)[1] == ""
    with pytest.raises(ValueError):
        fg.choose_sites(counts, 3, "random")


def test_forest_leaves_out_prior_only_estimates_and_caps_rows():
    data, fits = build(5)
    data.loc[data["clinic"] == "s1", "hours_slept"] = (
        0.3  # s1: constant predictor, no-pooling slope is prior-only
    )
    est = sh.site_estimates(fits, SiteData(data, COLS, SCALE))
    fig = fg.forest(est, COLS, SCALE, "toy", "slope")
    assert "1 prior-only estimate(s) not shown" in fig.axes[0].get_title()
    plt.close(fig)
    data200, fits200 = build(200)
    est200 = sh.site_estimates(
        {"no_pooling": fits200["no_pooling"]}, SiteData(data200, COLS, SCALE)
    )
    fig = fg.forest(est200, COLS, SCALE, "toy", "intercept", models=("no_pooling",), max_rows=50)
    assert len(fig.axes[0].get_yticks()) == 50 and "50 of 200 sites" in fig.axes[0].get_title()
    plt.close(fig)


def test_shrinkage_arrows_go_from_no_pooling_to_partial_pooling(setup):
    n_sites, _, _, _, table = setup
    fig = fg.shrinkage_arrows(table, COLS, SCALE, "toy")
    arrows = [a for a in fig.axes[0].texts if getattr(a, "arrow_patch", None) is not None]
    assert len(arrows) == n_sites
    starts = sorted(a.xyann[1] for a in arrows)
    ends = sorted(a.xy[1] for a in arrows)
    np.testing.assert_allclose(starts, sorted(table["no_pooling_intercept"]))
    np.testing.assert_allclose(ends, sorted(table["varying_intercepts_intercept"]))
    plt.close(fig)


HOSTILE_SITES = ["Lab $x^$", "a_b", "c^d", "back\\slash", "emoji 🐧", "مختبر"]


def test_site_labels_are_drawn_literally(tmp_path):
    """Labels from the data never reach matplotlib's maths parser: `$`, `_`, `^`, `\\`, emoji, RTL text."""
    data, _ = build(len(HOSTILE_SITES))
    data["clinic"] = data["clinic"].cat.rename_categories(HOSTILE_SITES)
    means = (
        data.groupby("clinic", observed=True)["wellbeing"].mean().reindex(HOSTILE_SITES).to_numpy()
    )
    fits = {
        "no_pooling": make_fit(
            "no_pooling",
            data,
            COLS,
            site_intercept=means,
            site_slope=np.full(len(means), -0.4),
            chains=2,
            draws=40,
        ),
        "varying_intercepts": make_fit(
            "varying_intercepts",
            data,
            COLS,
            intercept=means.mean(),
            site_intercept=0.7 * (means - means.mean()),
            chains=2,
            draws=40,
        ),
    }
    figures = {
        "observations": fg.observations_per_site(data, COLS, "toy $1"),
        "scatter": fg.outcome_vs_predictor(data, COLS, SCALE, "toy $1"),
        "forest": fg.forest(
            sh.site_estimates(fits, SiteData(data, COLS, SCALE)), COLS, SCALE, "toy $1", "intercept"
        ),
        "arrows": fg.shrinkage_arrows(
            sh.shrinkage_table(fits, SiteData(data, COLS, SCALE)), COLS, SCALE, "toy $1"
        ),
    }
    for name, fig in figures.items():
        fig.canvas.draw()
        shown = " ".join(t.get_text() for t in fig.findobj(matplotlib.text.Text))
        if name != "arrows":  # the arrows figure names no site
            assert all(label in shown for label in HOSTILE_SITES[:4]), (name, shown)
        assert all(
            not t.get_parse_math() for t in fig.findobj(matplotlib.text.Text) if "$" in t.get_text()
        )
        save_figure(fig, tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
