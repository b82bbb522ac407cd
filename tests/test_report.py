"""Report helpers: escaping, headline history and changes, and the fallback renderer's pieces."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from hierpool.report import headline, markup, outputs
from hierpool.report.render import inject_parameters, read_qmd

HOSTILE = "<script>alert('x')</script>"


def entry(sites: dict, sha="a", slope=-0.5, icc=0.2, ranking=("vi", "cp")) -> dict:
    return {
        "created": "t",
        "input_sha256": sha,
        "sites": sites,
        "n_obs": sum(sites.values()),
        "slope": {"mean": slope},
        "icc": {"mean": icc},
        "loo": {"ranking": list(ranking)},
    }


def test_esc_leaves_no_markup_and_no_markdown_emphasis():
    out = markup.esc(HOSTILE + " a_b *c* [l](u) `x` #h | $m$")
    bare = re.sub(r"&#\d+;", "", out)  # what is left once the entities are taken out
    for char in "<>'`*_[]#|$&":
        assert char not in bare
    assert out.startswith("&#60;script&#62;alert(&#39;x&#39;)")


def test_table_html_escapes_cells_and_headers():
    html = markup.table_html(pd.DataFrame({"site": [HOSTILE], "<b>n</b>": [3], "w": [0.123456]}))
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;n&lt;/b&gt;" in html
    assert "0.123" in html and "0.123456" not in html


def test_changes_lists_sites_observations_and_moves():
    before = entry({"A": 5, "B": 7})
    after = entry({"A": 5, "B": 9, "C": 4}, sha="b", slope=-0.4, ranking=("cp", "vi"))
    c = headline.changes(before, after)
    assert (
        c["sites_added"] == ["C"]
        and c["sites_removed"] == []
        and c["sites_resized"] == {"B": [7, 9]}
    )
    assert c["observations_added"] == 6 and c["ranking_changed"] is True
    assert abs(c["slope"]["change"] - 0.1) < 1e-12 and c["icc"]["change"] == 0
    assert headline.changes(None, after) == {"first_run": True}


def test_history_compares_with_the_last_run_that_had_other_inputs(tmp_path):
    history = tmp_path / "history" / "headlines.jsonl"
    first = entry({"A": 5, "B": 7})
    assert headline.previous_headline(history, first) is None
    headline.append_history(history, first)
    headline.append_history(history, first)  # a rerun with the same inputs replaces, not appends
    assert len(history.read_text().splitlines()) == 1
    assert headline.previous_headline(history, first) is None
    second = entry({"A": 5, "B": 7, "C": 4}, sha="b")
    assert headline.previous_headline(history, second)["sites"] == {"A": 5, "B": 7}
    headline.append_history(history, second)
    again = dict(second, created="later")  # e.g. a code change reran the report
    assert headline.previous_headline(history, again)["sites"] == {"A": 5, "B": 7}
    assert [json.loads(line)["input_sha256"] for line in history.read_text().splitlines()] == [
        "a",
        "b",
    ]


def test_qmd_is_read_without_quarto_and_parameters_are_injected_after_their_cell(repo_root):
    notebook, front = read_qmd(repo_root / "reports" / "report.qmd")
    assert "embed-resources: true" in front
    inject_parameters(notebook, {"dataset": HOSTILE, "results_dir": "/x"})
    sources = [c.source for c in notebook.cells if c.cell_type == "code"]
    index = next(i for i, s in enumerate(sources) if "tags: [parameters]" in s)
    injected = sources[index + 1]
    assert injected.startswith("# injected parameters")
    assert f"dataset = {json.dumps(HOSTILE)}" in injected  # a Python string literal, not code


def test_git_commit_outside_a_checkout_says_so(tmp_path):
    assert headline.git_commit(tmp_path).startswith("unknown")


@pytest.mark.parametrize(
    "value, spec, shown",
    [
        (None, ".2f", "undefined"),
        (float("nan"), ".2f", "undefined"),
        (float("inf"), ".1f", "undefined"),
        (0.1234, ".2f", "0.12"),
        (3, "+d", "+3"),
        (-0.5, "+.3f", "-0.500"),
    ],
)
def test_num_formats_numbers_and_names_undefined_statistics(value, spec, shown):
    assert markup.num(value, spec) == shown


def test_fmt_interval_with_undefined_bounds():
    assert markup.fmt_interval(0.5, None, float("nan")) == "0.50 (95% HDI undefined to undefined)"


def test_the_report_reads_only_what_its_rule_declares(tmp_path):
    (tmp_path / "variance").mkdir()
    (tmp_path / "variance" / "icc.csv").write_text("model,mean\nvi,0.3\n")
    (tmp_path / "shrinkage").mkdir()
    (tmp_path / "shrinkage" / "shrinkage.csv").write_text("site\nA\n")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        outputs.manifest_text(tmp_path, [tmp_path / "variance" / "icc.csv", "/elsewhere/x.csv"])
    )
    out = outputs.DatasetOutputs.from_manifest(tmp_path, manifest)
    assert out.read_csv("variance", "icc.csv")["mean"].tolist() == [0.3]
    assert out.read_csv("shrinkage", "shrinkage.csv") is None  # present, but not declared
    with pytest.raises(KeyError, match="does not declare"):
        out.path("shrinkage", "shrinkage.csv")
    assert (
        outputs.DatasetOutputs.from_manifest(tmp_path, "").read_csv("shrinkage", "shrinkage.csv")
        is not None
    )
