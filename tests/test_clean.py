"""Unit tests for hierpool.clean: every cleaning rule, the record of what was dropped, and clear errors."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pandas as pd
import pytest

from hierpool.clean import CleaningOptions, file_sha256, load_clean, read_raw
from hierpool.clean import clean as clean_strict
from hierpool.errors import DataError
from hierpool.io import write_csv
from hierpool.values import MISSING_VALUES

COLS = {"outcome": "y", "predictor": "x", "group": "site"}
RADON_COLS = {"outcome": "log_radon", "predictor": "floor", "group": "county"}


def clean(raw, columns, options=None, **kwargs):
    """``clean`` with any share of rows allowed to drop: most tests here drop rows on purpose.

    The default limit (``max_dropped_share``) has tests of its own, which call ``clean_strict``.
    """
    options = dataclasses.replace(options or CleaningOptions(), max_dropped_share=1.0)
    return clean_strict(raw, columns, options, **kwargs)


def frame(rows: list[tuple], columns=("y", "x", "site")) -> pd.DataFrame:
    """A raw frame as read_raw returns it: every cell text."""
    return pd.DataFrame([[str(v) for v in row] for row in rows], columns=list(columns), dtype=str)


def base_rows() -> list[tuple]:
    """Two clean sites, A and B, with 3 rows each (y, x, site)."""
    return [(1, 1, "A"), (2, 2, "A"), (3, 3, "A"), (4, 4, "B"), (5, 5, "B"), (6, 6, "B")]


# --------------------------------------------------------------------------- columns


def test_extra_columns_are_ignored():
    raw = frame(
        [(y, x, s, "junk", "") for y, x, s in base_rows()],
        columns=("y", "x", "site", "comment", "empty"),
    )
    result = clean(raw, COLS)
    assert list(result.data.columns) == ["site", "x", "y", "source_row"]
    assert result.summary["rows_out"] == 6
    assert result.summary["rows_dropped"] == {}
    assert result.dropped_rows.empty


def test_clean_does_not_modify_its_input():
    raw = frame(base_rows() + [(" 3.5 ", "NA", " a ")])
    before = raw.copy()
    clean(raw, COLS)
    pd.testing.assert_frame_equal(raw, before)


# --------------------------------------------------------------------------- missing and non-numeric cells


@pytest.mark.parametrize("token", ["NA", "", ".", "nan", "NULL", " na ", "N/A", "null", "NaN"])
def test_missing_tokens_in_outcome(token):
    raw = frame(base_rows() + [(token, 7, "A")])
    result = clean(raw, COLS)
    assert result.summary["rows_dropped"] == {"missing outcome": 1}
    assert result.summary["rows_out"] == 6
    row = result.dropped_rows.iloc[0]
    assert (row["source_row"], row["reason"], row["column"], row["value"]) == (
        7,
        "missing outcome",
        "y",
        token,
    )


@pytest.mark.parametrize("token", ["NA", "", ".", "nan", "NULL"])
def test_missing_tokens_in_predictor_and_group(token):
    raw = frame(base_rows() + [(7, token, "A"), (8, 8, token), (9, 9, token)])
    options = CleaningOptions(group_missing_values=MISSING_VALUES, min_obs_per_site=1)
    result = clean(raw, COLS, options)
    assert result.summary["rows_dropped"] == {"missing predictor": 1, "missing group": 2}


@pytest.mark.parametrize("label", ["NA", "na", "NULL", "."])
def test_a_site_named_like_a_missing_token_is_kept_by_default_and_noted(label):
    """Namibia's lab is "NA": by default only an empty group cell means "no site"."""
    raw = frame(base_rows() + [(7, 7, label), (8, 8, label), (9, 9, "")])
    result = clean(raw, COLS)
    assert result.summary["rows_dropped"] == {"missing group": 1}
    assert result.summary["site_counts"][label] == 2
    assert any(
        repr(label) in note and "group_missing_values" in note for note in result.summary["notes"]
    )


def test_missing_counted_per_reason():
    rows = base_rows() + [
        ("NA", 1, "A"),
        ("", 2, "B"),
        (".", 3, "A"),
        (1, "nan", "B"),
        (2, "NULL", "A"),
        (3, 3, "NA"),
        ("abc", 4, "A"),
        (5, "five", "B"),
        ("NA", "NA", "NA"),  # several problems: the first one (group) is the recorded reason
    ]
    result = clean(frame(rows), COLS, CleaningOptions(group_missing_values=("", "NA")))
    assert result.summary["rows_dropped"] == {
        "missing outcome": 3,
        "missing predictor": 2,
        "missing group": 2,
        "non-numeric outcome": 1,
        "non-numeric predictor": 1,
    }
    assert result.summary["rows_in"] == 15
    assert result.summary["rows_out"] == 6
    assert sum(result.summary["rows_dropped"].values()) == len(result.dropped_rows) == 9


def test_numbers_stored_as_text_with_spaces_are_parsed():
    raw = frame([(" 3.5 ", " 1 ", "A"), ("2", "\t2.25", "A"), ("1e1", "3 ", "B"), ("-4", "4", "B")])
    result = clean(raw, COLS, CleaningOptions(center=False))
    assert result.data["y"].tolist() == [3.5, 2.0, 10.0, -4.0]
    assert result.data["x"].tolist() == [1.0, 2.25, 3.0, 4.0]
    assert result.data["y"].dtype == float and result.data["x"].dtype == float
    assert result.summary["rows_dropped"] == {}


def test_non_numeric_outcome_dropped_with_reason():
    raw = frame(base_rows() + [("abc", 7, "A"), ("3 kg", 8, "B")])
    result = clean(raw, COLS)
    assert result.summary["rows_dropped"] == {"non-numeric outcome": 2}
    dropped = result.dropped_rows
    assert dropped["reason"].tolist() == ["non-numeric outcome"] * 2
    assert dropped["value"].tolist() == ["abc", "3 kg"]
    assert dropped["column"].tolist() == ["y", "y"]


def test_non_finite_numbers_are_not_kept():
    raw = frame(base_rows() + [("inf", 7, "A"), (1, "-inf", "B")])
    result = clean(raw, COLS)
    assert result.summary["rows_out"] == 6
    assert np.isfinite(result.data[["x", "y"]].to_numpy()).all()
    assert result.summary["rows_dropped"] == {"non-numeric outcome": 1, "non-numeric predictor": 1}


# --------------------------------------------------------------------------- site labels


def test_padded_and_differently_cased_labels_are_merged():
    raw = frame(
        [
            (1, 1, " Lab A"),
            (2, 2, "lab a"),
            (3, 3, "Lab A"),
            (4, 4, "Lab  A "),
            (5, 5, "B"),
            (6, 6, "b "),
        ]
    )
    result = clean(raw, COLS)
    assert sorted(result.data["site"].unique()) == ["B", "Lab A"]
    assert result.summary["sites_in"] == 2
    assert result.summary["site_counts"] == {"B": 2, "Lab A": 4}
    merges = result.summary["label_merges"]
    assert merges["Lab A"] == ["lab a"]
    assert merges["B"] == ["b"]  # tie: the first spelling seen is shown


def test_most_frequent_spelling_is_shown():
    raw = frame(
        [
            (1, 1, "Lab A"),
            (2, 2, "lab a"),
            (3, 3, "LAB A"),
            (4, 4, "lab a"),
            (5, 5, "B"),
            (6, 6, "B"),
        ]
    )
    result = clean(raw, COLS)
    assert set(result.data["site"]) == {"lab a", "B"}
    assert result.summary["label_merges"] == {"lab a": ["LAB A", "Lab A"]}


def test_numeric_site_codes_are_merged_and_kept_as_text():
    raw = frame([(1, 1, "1"), (2, 2, "01"), (3, 3, " 1 "), (4, 4, "2"), (5, 5, "2"), (6, 6, "10")])
    result = clean(raw, COLS, CleaningOptions(min_obs_per_site=1))
    assert result.data["site"].tolist() == ["1", "1", "1", "2", "2", "10"]
    assert all(isinstance(s, str) for s in result.data["site"])
    assert result.summary["label_merges"] == {"1": ["01"]}
    assert result.summary["site_counts"] == {"1": 3, "2": 2, "10": 1}
    # the site table sorts numeric codes by value
    assert result.sites["site"].tolist() == ["1", "2", "10"]


@pytest.mark.parametrize(
    "a, b",
    [
        ("9007199254740993", "9007199254740992"),
        ("10", "1e1"),
        ("10", "1_0"),
        ("1", "١"),
        ("1", "1.0"),
        ("10", "10.0"),
    ],
)
def test_site_codes_merge_only_by_exact_integer_text(a, b):
    """No float conversion: long codes stay distinct, and 1e1, 1_0, 1.0 or Arabic-Indic digits are not numbers."""
    raw = frame([(1, 1, a), (2, 2, a), (3, 3, b), (4, 4, b)])
    result = clean(raw, COLS)
    assert result.summary["site_counts"] == {a: 2, b: 2}
    assert result.summary["label_merges"] == {}


def test_label_merging_can_be_switched_off():
    raw = frame([(1, 1, "Lab A"), (2, 2, "lab a"), (3, 3, "01"), (4, 4, "1")])
    result = clean(
        raw, COLS, CleaningOptions(min_obs_per_site=1, merge_case=False, merge_integer_codes=False)
    )
    assert result.summary["sites_kept"] == 4 and result.summary["label_merges"] == {}
    assert clean(raw, COLS, CleaningOptions(min_obs_per_site=1)).summary["sites_kept"] == 2


def test_leading_zero_labels_survive_clean_and_load_clean(tmp_path):
    raw = frame(
        [(1, 1, "01"), (2, 2, "01"), (3, 3, "02"), (4, 4, "02"), (5, 5, "10"), (6, 6, "10")]
    )
    result = clean(raw, COLS)
    assert sorted(result.data["site"].unique()) == ["01", "02", "10"]
    path = write_csv(tmp_path / "clean.csv", result.data)
    loaded = load_clean(path, "site")
    assert loaded["site"].astype(str).tolist() == ["01", "01", "02", "02", "10", "10"]
    assert list(loaded["site"].cat.categories) == ["01", "02", "10"]
    assert loaded["x"].dtype == float


def test_load_clean_keeps_text_labels_and_does_not_treat_na_as_missing(tmp_path):
    path = tmp_path / "tidy.csv"
    path.write_text("site,x,y,source_row\n007,0.5,1,1\nNA,-0.5,2,2\n10,0.0,3,3\n")
    loaded = load_clean(path, "site")
    assert loaded["site"].astype(str).tolist() == ["007", "NA", "10"]
    assert list(loaded["site"].cat.categories) == [
        "007",
        "10",
        "NA",
    ]  # numeric codes first, by value


# --------------------------------------------------------------------------- tiny sites


def test_min_obs_per_site_drops_tiny_sites_and_records_them():
    rows = base_rows() + [(7, 7, "C"), (8, 8, "D"), ("NA", 9, "D"), (10, 10, "D")]
    result = clean(frame(rows), COLS, CleaningOptions(min_obs_per_site=3))
    summary = result.summary
    assert summary["sites_in"] == 4 and summary["sites_kept"] == 2
    dropped = {d["site"]: d for d in summary["sites_dropped"]}
    assert set(dropped) == {"C", "D"}
    assert dropped["C"]["n_usable"] == 1 and dropped["D"]["n_usable"] == 2
    assert "fewer than 3" in dropped["C"]["reason"]
    # D's missing-outcome row keeps its own reason; the other rows of C and D are 'site too small'
    assert summary["rows_dropped"] == {"site too small": 3, "missing outcome": 1}
    assert set(result.data["site"]) == {"A", "B"}
    sites = result.sites.set_index("site")
    assert (
        sites.loc["D", "status"] == "dropped"
        and sites.loc["D", "n_raw"] == 3
        and sites.loc["D", "n_kept"] == 0
    )
    assert sites.loc["A", "status"] == "kept" and sites.loc["A", "n_kept"] == 3
    small = result.dropped_rows[result.dropped_rows["reason"] == "site too small"]
    assert small["source_row"].tolist() == [7, 8, 10]
    assert small["column"].tolist() == ["site"] * 3
    assert small["value"].tolist() == ["C", "D", "D"]


def test_min_obs_per_site_one_keeps_singletons():
    rows = base_rows() + [(7, 7, "C")]
    result = clean(frame(rows), COLS, CleaningOptions(min_obs_per_site=1))
    assert result.summary["sites_kept"] == 3 and result.summary["sites_dropped"] == []


def test_min_obs_per_site_below_one_is_an_error():
    with pytest.raises(DataError, match="min_obs_per_site"):
        clean(frame(base_rows()), COLS, CleaningOptions(min_obs_per_site=0))


# --------------------------------------------------------------------------- predictor transform


def test_centering_uses_mean_of_kept_predictor_values():
    # the dropped rows (missing y, tiny site C) have extreme x that must not enter the mean
    rows = [(1, 1, "A"), (2, 2, "A"), (3, 4, "B"), (4, 9, "B"), ("NA", 1000, "A"), (5, -500, "C")]
    result = clean(frame(rows), COLS, CleaningOptions(min_obs_per_site=2, center=True))
    kept_x = np.array([1.0, 2.0, 4.0, 9.0])
    pred = result.summary["predictor"]
    assert pred["center"] == pytest.approx(kept_x.mean())
    assert pred["centered"] is True and pred["scale"] == 1.0
    assert result.data["x"].mean() == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(result.data["x"], kept_x - kept_x.mean())
    assert (pred["min"], pred["max"]) == (1.0, 9.0)


def test_no_centering_keeps_raw_predictor():
    result = clean(frame(base_rows()), COLS, CleaningOptions(center=False))
    assert result.summary["predictor"]["center"] == 0.0
    assert result.data["x"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def test_scale_divides_by_sd_of_kept_values():
    result = clean(frame(base_rows()), COLS, CleaningOptions(center=True, scale=True))
    x = np.arange(1.0, 7.0)
    pred = result.summary["predictor"]
    assert pred["scaled"] is True
    assert pred["scale"] == pytest.approx(x.std(ddof=1))
    assert result.data["x"].std(ddof=1) == pytest.approx(1.0)
    assert result.data["x"].mean() == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(result.data["x"], (x - x.mean()) / x.std(ddof=1))


def test_covariates_are_parsed_and_their_missing_values_dropped():
    raw = frame(
        [(y, x, s, z) for (y, x, s), z in zip(base_rows(), ["1", " 2 ", "NA", "4", "five", "6"])],
        columns=("y", "x", "site", "age"),
    )
    options = CleaningOptions.from_config({"min_obs_per_site": 1, "covariates": ["age"]})
    assert options.covariates == ("age",)
    result = clean(raw, COLS, options)
    assert result.data["age"].tolist() == [1.0, 2.0, 4.0, 6.0]
    assert result.summary["rows_dropped"] == {"missing age": 1, "non-numeric age": 1}
    assert result.summary["covariates"] == {"age": "numeric"}


# --------------------------------------------------------------------------- dropped-rows table and source rows


def test_dropped_rows_table_is_one_based_with_reason_column_value():
    rows = [("abc", 1, "A")] + base_rows() + [(9, "NA", "B")]
    result = clean(frame(rows), COLS)
    dropped = result.dropped_rows
    assert list(dropped.columns) == ["source_row", "reason", "column", "value"]
    assert dropped.to_dict("records") == [
        {"source_row": 1, "reason": "non-numeric outcome", "column": "y", "value": "abc"},
        {"source_row": 8, "reason": "missing predictor", "column": "x", "value": "NA"},
    ]
    # kept rows point back to their data row in the file (1 = first row after the header)
    assert result.data["source_row"].tolist() == [2, 3, 4, 5, 6, 7]


def test_source_row_matches_line_in_file(write_raw_csv):
    path = write_raw_csv("y,x,site\n1,1,A\nNA,2,A\n3,3,A\n4,4,B\n5,5,B\n")
    result = clean(read_raw(path), COLS, source=str(path))
    lines = path.read_text().splitlines()
    assert result.dropped_rows["source_row"].tolist() == [2]
    assert lines[result.dropped_rows["source_row"].iloc[0]] == "NA,2,A"  # header is line 0
    for row in result.data.itertuples():
        assert lines[row.source_row].startswith(f"{row.y:g},")


def test_raw_file_is_byte_identical_after_read_and_clean(write_raw_csv):
    content = b"y,x,site,extra\r\n 3.5 ,1, Lab A,z\r\nNA,2,lab a,\r\n3,3,Lab A,\r\n4,4,B,\r\n5,5,b,\r\n6,NULL,B,\r\n"
    path = write_raw_csv(content)
    digest = hashlib.sha256(content).hexdigest()
    assert file_sha256(path) == digest
    mtime = path.stat().st_mtime_ns
    clean(read_raw(path), COLS, source=str(path))
    assert path.read_bytes() == content
    assert file_sha256(path) == digest
    assert path.stat().st_mtime_ns == mtime


def test_read_raw_keeps_every_cell_as_text(write_raw_csv):
    path = write_raw_csv("y,x,site\n1.50,NA,01\n,2, a \n")
    raw = read_raw(path)
    assert raw.to_dict("records") == [
        {"y": "1.50", "x": "NA", "site": "01"},
        {"y": "", "x": "2", "site": " a "},
    ]


def test_read_raw_strips_padded_header_names(write_raw_csv):
    path = write_raw_csv(" y , x ,site\n1,1,A\n2,2,A\n3,3,B\n4,4,B\n")
    raw = read_raw(path)
    assert list(raw.columns) == ["y", "x", "site"]
    assert clean(raw, COLS).summary["rows_out"] == 4


def test_read_raw_ignores_utf8_byte_order_mark(write_raw_csv):
    # "CSV UTF-8" exports from Excel start with a BOM; the first column must still be found by name
    path = write_raw_csv(b"\xef\xbb\xbfy,x,site\n1,1,A\n2,2,A\n3,3,B\n4,4,B\n")
    raw = read_raw(path)
    assert list(raw.columns) == ["y", "x", "site"]
    assert clean(raw, COLS, source=str(path)).summary["rows_out"] == 4


def test_read_raw_other_separator(write_raw_csv):
    path = write_raw_csv("y;x;site\n1;1;A\n2;2;A\n3;3;B\n4;4;B\n")
    raw = read_raw(path, sep=";")
    assert list(raw.columns) == ["y", "x", "site"] and len(raw) == 4


# --------------------------------------------------------------------------- errors on bad input


def test_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(DataError, match="file not found") as err:
        read_raw(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("content", ["", "\n\n", "   \n"])
def test_empty_file(write_raw_csv, content):
    path = write_raw_csv(content)
    with pytest.raises(DataError, match="empty") as err:
        read_raw(path)
    assert str(path) in str(err.value)


def test_header_only_file(write_raw_csv):
    path = write_raw_csv("y,x,site\n")
    with pytest.raises(DataError, match="no data rows") as err:
        read_raw(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("header", ["y,x,y,site", "y,x, site,site "])
def test_duplicate_column_names(write_raw_csv, header):
    path = write_raw_csv(header + "\n" + "\n".join(",".join(["1"] * 4) for _ in range(3)) + "\n")
    with pytest.raises(DataError, match="duplicate column names") as err:
        read_raw(path)
    message = str(err.value)
    assert str(path) in message
    assert "'y'" in message or "'site'" in message


def test_mapped_column_absent_lists_existing_columns(write_raw_csv):
    path = write_raw_csv("outcome,x,lab,notes\n1,1,A,\n2,2,B,\n")
    raw = read_raw(path)
    with pytest.raises(DataError) as err:
        clean(raw, COLS, source=str(path))
    message = str(err.value)
    assert str(path) in message
    assert "'y'" in message and "outcome" in message
    for existing in ("outcome", "x", "lab", "notes"):
        assert existing in message


def test_mapped_column_absent_suggests_case_variant():
    raw = frame(base_rows(), columns=("Y", "x", "site"))
    with pytest.raises(DataError, match="Did you mean 'Y'"):
        clean(raw, COLS, source="survey.csv")


def test_incomplete_column_mapping():
    with pytest.raises(DataError, match="group"):
        clean(frame(base_rows()), {"outcome": "y", "predictor": "x"}, source="survey.csv")


@pytest.mark.parametrize("role, column", [("outcome", "y"), ("predictor", "x")])
def test_column_with_no_numeric_values(role, column):
    rows = [(y, x, s) for y, x, s in base_rows()]
    raw = frame(rows)
    raw[column] = ["low", "high", "NA", "", "mid", "low"]
    with pytest.raises(DataError) as err:
        clean(raw, COLS, source="survey.csv")
    message = str(err.value)
    assert "survey.csv" in message and repr(column) in message and role in message
    assert "no numeric values" in message
    assert "high" in message  # shows example values


def test_fewer_than_two_sites_left():
    rows = [(1, 1, "A"), (2, 2, "A"), (3, 3, "A"), (4, 4, "B")]
    with pytest.raises(DataError) as err:
        clean(frame(rows), COLS, CleaningOptions(min_obs_per_site=2), source="survey.csv")
    message = str(err.value)
    assert "survey.csv" in message and "'site'" in message
    assert "1 site(s)" in message and "min_obs_per_site" in message


def test_only_one_site_at_all():
    rows = [(1, 1, "A"), (2, 2, " a"), (3, 3, "A ")]
    with pytest.raises(DataError, match=r"only 1 site\(s\) left"):
        clean(frame(rows), COLS, CleaningOptions(min_obs_per_site=1), source="survey.csv")


def test_constant_predictor():
    rows = [
        (1, 2, "A"),
        (2, 2, "A"),
        (3, 2, "B"),
        (4, 2, "B"),
        (5, 7, "C"),
    ]  # varies only in a dropped site
    with pytest.raises(DataError) as err:
        clean(frame(rows), COLS, CleaningOptions(min_obs_per_site=2), source="survey.csv")
    message = str(err.value)
    assert "survey.csv" in message and "'x'" in message and "constant" in message


# --------------------------------------------------------------------------- simulated data round trip


def test_simulated_data_survives_cleaning_unchanged(tmp_path):
    from hierpool.simulate import SimulationSpec, simulate

    data, truth = simulate(SimulationSpec(n_sites=8, site_size={"min": 1, "max": 30}, seed=2))
    path = write_csv(tmp_path / "sim.csv", data)
    cols = truth["columns"]
    result = clean(
        read_raw(path), cols, CleaningOptions(min_obs_per_site=1, center=False), source=str(path)
    )
    assert result.summary["rows_out"] == len(data)
    assert result.summary["label_merges"] == {}
    np.testing.assert_array_equal(result.data[cols["outcome"]], data[cols["outcome"]])
    np.testing.assert_array_equal(result.data[cols["predictor"]], data[cols["predictor"]])
    assert result.data[cols["group"]].tolist() == data[cols["group"]].tolist()


# --------------------------------------------------------------------------- shipped real data


@pytest.fixture(scope="module")
def radon_raw():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "data" / "raw" / "radon.csv"
    return path, read_raw(path)


def test_radon_raw_shape(radon_raw):
    _, raw = radon_raw
    assert len(raw) == 919
    assert {"log_radon", "floor", "county"} <= set(raw.columns)
    assert raw["county"].nunique() == 85


def test_radon_keep_all_counties(radon_raw):
    path, raw = radon_raw
    result = clean(
        raw, RADON_COLS, CleaningOptions(min_obs_per_site=1, center=False), source=str(path)
    )
    s = result.summary
    assert s["rows_in"] == s["rows_out"] == 919
    assert s["sites_in"] == s["sites_kept"] == 85
    assert s["sites_dropped"] == [] and s["rows_dropped"] == {}
    assert set(result.data["floor"].unique()) == {0.0, 1.0}
    assert result.data["log_radon"].between(-3, 4).all()


def test_radon_default_drops_single_home_counties(radon_raw):
    path, raw = radon_raw
    result = clean(raw, RADON_COLS, CleaningOptions(), source=str(path))
    s = result.summary
    assert s["sites_in"] == 85 and s["sites_kept"] == 82
    assert len(s["sites_dropped"]) == 3
    assert all(d["n_usable"] == 1 for d in s["sites_dropped"])
    assert {d["site"] for d in s["sites_dropped"]} == {"MAHNOMEN", "MURRAY", "WILKIN"}
    assert s["rows_dropped"] == {"site too small": 3}
    assert s["rows_out"] == 916
    assert result.data["floor"].mean() == pytest.approx(0.0, abs=1e-12)


def test_radon_file_untouched(radon_raw):
    path, raw = radon_raw
    digest = file_sha256(path)
    clean(raw, RADON_COLS, source=str(path))
    assert file_sha256(path) == digest


# --------------------------------------------------------------------------- files that are not plain UTF-8 CSV


def test_latin1_file_names_the_line_and_the_encoding_key(write_raw_csv):
    path = write_raw_csv("y,x,site\n1,1,A\n2,2,A\n3,3,Caf\u00e9\n".encode("latin-1"))
    with pytest.raises(DataError) as err:
        read_raw(path)
    message = str(err.value)
    assert str(path) in message and "line 4" in message and "encoding: cp1252" in message


def test_latin1_file_reads_with_the_encoding_key(write_raw_csv):
    path = write_raw_csv("y,x,site\n1,1,Caf\u00e9\n".encode("cp1252"))
    assert read_raw(path, encoding="cp1252")["site"].tolist() == ["Caf\u00e9"]


def test_ragged_row_names_the_line(write_raw_csv):
    path = write_raw_csv("y,x,site\n1,1,A\n2,2,3,B\n3,3,C\n")
    with pytest.raises(DataError) as err:
        read_raw(path, columns=["y", "x", "site"])
    message = str(err.value)
    assert (
        str(path) in message
        and "line 3 has 4 fields but the header has 3" in message
        and "quote" in message
    )


def test_ragged_row_is_caught_when_reading_only_some_columns(write_raw_csv):
    path = write_raw_csv("y,x,site,note\n1,1,A,ok\n2,2,B,a,b\n")
    with pytest.raises(DataError, match="line 3 has 5 fields"):
        read_raw(path, columns=["y", "x"])


def test_unclosed_quote_names_the_line(write_raw_csv):
    path = write_raw_csv('y,x,site\n1,1,A\n2,"2,B\n3,3,C\n4,4,D\n')
    with pytest.raises(DataError) as err:
        read_raw(path)
    message = str(err.value)
    assert str(path) in message and "line 3" in message and "never closed" in message


def test_gzipped_csv_is_read_whatever_its_name(write_raw_csv):
    import gzip

    content = gzip.compress(b"y,x,site\n1,1,A\n2,2,B\n")
    for name in ("raw.csv.gz", "raw.csv"):
        assert read_raw(write_raw_csv(content, name))["site"].tolist() == ["A", "B"]


@pytest.mark.parametrize(
    "lead, what",
    [(b"PK\x03\x04", "Excel workbook"), (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "old Excel")],
)
def test_excel_file_renamed_csv_says_export_as_csv(write_raw_csv, lead, what):
    path = write_raw_csv(lead + b"\x00" * 64, "survey.csv")
    with pytest.raises(DataError) as err:
        read_raw(path)
    assert str(path) in str(err.value) and what in str(err.value) and "CSV" in str(err.value)


def test_semicolon_file_suggests_sep(write_raw_csv):
    path = write_raw_csv("y;x;site\n1,5;1;A\n")
    with pytest.raises(DataError) as err:
        read_raw(path)
    assert "sep: ';'" in str(err.value) and str(path) in str(err.value)


def test_header_only_file_says_what_to_do(write_raw_csv):
    with pytest.raises(DataError, match="Add one row per observation"):
        read_raw(write_raw_csv("y,x,site\n"))


def test_only_the_mapped_columns_are_read(write_raw_csv):
    path = write_raw_csv(",y,notes,x,site\n1,2,free text,3,A\n")
    raw = read_raw(path, columns=["y", "x", "site", "absent"])
    assert list(raw.columns) == ["y", "x", "site"]
    assert raw.attrs["file_columns"] == ["y", "notes", "x", "site"]
    with pytest.raises(DataError, match="'absent' is not in the file"):
        clean(raw, {"outcome": "y", "predictor": "x", "group": "absent"}, source=str(path))


# --------------------------------------------------------------------------- number formats and how much may drop


def test_decimal_commas_stop_with_advice_instead_of_biasing_the_sample():
    """Seven rows, three with "3,5"-style numbers: before, four were kept silently."""
    rows = [
        ("3,5", 1, "A"),
        (4, 2, "A"),
        ("2,25", 3, "A"),
        (5, 4, "B"),
        (6, 5, "B"),
        ("1,5", 6, "B"),
        (7, 7, "B"),
    ]
    with pytest.raises(DataError) as err:
        clean(frame(rows), COLS, source="survey.csv")
    message = str(err.value)
    assert (
        "survey.csv" in message
        and "'y'" in message
        and "decimal: ','" in message
        and "'3,5'" in message
    )


def test_decimal_and_thousands_keys_parse_such_numbers():
    rows = [
        ("3,5", "1.000,5", "A"),
        ("4", "2.000", "A"),
        ("2,25", "3.000", "B"),
        ("5", "4.000,25", "B"),
    ]
    result = clean(frame(rows), COLS, CleaningOptions(decimal=",", thousands=".", center=False))
    assert result.data["y"].tolist() == [3.5, 4.0, 2.25, 5.0]
    assert result.data["x"].tolist() == [1000.5, 2000.0, 3000.0, 4000.25]


def test_thousands_separators_are_detected():
    rows = [("1,234.5", 1, "A"), ("2,000", 2, "A"), (3, 3, "B"), (4, 4, "B")]
    with pytest.raises(DataError, match="thousands"):
        clean(frame(rows), COLS)


def test_dropping_more_than_the_allowed_share_stops_with_the_reasons():
    rows = base_rows() * 3 + [("NA", 1, "A"), ("", 2, "B")]  # 2 of 20 rows: 10%
    with pytest.raises(DataError) as err:
        clean_strict(frame(rows), COLS, source="survey.csv")
    message = str(err.value)
    assert (
        "survey.csv" in message
        and "2 of 20 rows (10%)" in message
        and "2 missing outcome" in message
    )
    assert "max_dropped_share" in message and "row 19" in message
    result = clean_strict(
        frame(rows), COLS, CleaningOptions(max_dropped_share=0.1), source="survey.csv"
    )
    assert result.summary["rows_out"] == 18


@pytest.mark.parametrize(
    "mapping, words",
    [
        ({"outcome": "y", "predictor": "y", "group": "site"}, "outcome and predictor"),
        ({"outcome": "y", "predictor": "x", "group": "x"}, "predictor and group"),
    ],
)
def test_roles_mapped_to_one_column_are_rejected(mapping, words):
    with pytest.raises(DataError) as err:
        clean(frame(base_rows()), mapping, source="survey.csv")
    assert words in str(err.value) and "survey.csv" in str(err.value)


def test_many_tiny_sites_give_a_short_message_with_the_listing_in_details():
    rows = [(i, i, f"lab{i}") for i in range(5000)]
    with pytest.raises(DataError) as err:
        clean(frame(rows), COLS, source="survey.csv")
    assert len(str(err.value)) < 1000, len(str(err.value))
    assert "of 5000" in str(err.value) and "more)" in str(err.value)
    assert err.value.details.count("lab") == 5000


def test_constant_predictor_message_shows_a_plain_number():
    rows = [(1, 2, "A"), (2, 2, "A"), (3, 2, "B"), (4, 2, "B")]
    with pytest.raises(DataError) as err:
        clean(frame(rows), COLS)
    assert "constant (2)" in str(err.value) and "np." not in str(err.value)


# --------------------------------------------------------------------------- outcome kinds (the models' family)


def kind(outcome_kind: str, **kwargs) -> CleaningOptions:
    return CleaningOptions(min_obs_per_site=1, outcome_kind=outcome_kind, **kwargs)


def with_outcome(values, extra: dict | None = None) -> pd.DataFrame:
    """base_rows' x and site with the outcome cells given (and extra columns)."""
    raw = frame(base_rows())
    raw["y"] = [str(v) for v in values]
    for name, cells in (extra or {}).items():
        raw[name] = [str(v) for v in cells]
    return raw


def test_outcome_kind_defaults_to_continuous_and_unknown_kinds_are_rejected():
    assert (
        CleaningOptions().outcome_kind == "continuous" and CleaningOptions().positive_label is None
    )
    assert clean(frame(base_rows()), COLS).summary["outcome"] == {
        "kind": "continuous",
        "column": "y",
    }
    with pytest.raises(DataError, match="outcome_kind"):
        clean(frame(base_rows()), COLS, kind("ordinal"))


def test_from_config_takes_outcome_kind_and_positive_label():
    options = CleaningOptions.from_config(
        {"outcome_kind": "binary", "positive_label": "dead", "covariates": []}
    )
    assert options.outcome_kind == "binary" and options.positive_label == "dead"


def test_binary_numeric_zero_one_is_kept_as_integers():
    result = clean(with_outcome([0, 1, "1.0", " 0 ", "NA", 1]), COLS, kind("binary"))
    assert result.data["y"].tolist() == [0, 1, 1, 0, 1] and result.data["y"].dtype.kind == "i"
    assert result.summary["outcome"]["levels"] == {"0": "0", "1": "1"}
    assert result.summary["rows_dropped"] == {"missing outcome": 1}


def test_binary_numbers_other_than_zero_and_one_name_the_rows():
    with pytest.raises(DataError) as err:
        clean(with_outcome([0, 1, 2, 1, 0.5, 2]), COLS, kind("binary"), source="trial.csv")
    message = str(err.value)
    assert "trial.csv" in message and "'y'" in message and "0 or 1" in message
    assert "'2' (rows 3, 6)" in message and "'0.5' (row 5)" in message
    assert "Recode" in message


@pytest.mark.parametrize(
    "negative, positive",
    [
        ("no", "yes"),
        ("False", "TRUE"),
        ("n", "Y"),
        ("f", "t"),
        ("absent", "present"),
        ("Negative", "Positive"),
        ("fail", "pass"),
    ],
)
def test_known_label_pairs_map_to_zero_one(negative, positive):
    result = clean(
        with_outcome([negative, positive, f" {positive} ", negative, positive, negative]),
        COLS,
        kind("binary"),
    )
    assert result.data["y"].tolist() == [0, 1, 1, 0, 1, 0]
    assert result.summary["outcome"] == {
        "kind": "binary",
        "column": "y",
        "levels": {"0": negative, "1": positive},
        "min": 0,
        "max": 1,
    }
    assert any(
        f"coded 1 for {positive!r} and 0 for {negative!r}" in note
        for note in result.summary["notes"]
    )


def test_labels_that_differ_only_in_case_are_one_label_shown_in_the_most_frequent_spelling():
    result = clean(with_outcome(["Yes", "yes", "yes", "No", "no", "NA"]), COLS, kind("binary"))
    assert result.data["y"].tolist() == [1, 1, 1, 0, 0]
    assert result.summary["outcome"]["levels"] == {"0": "No", "1": "yes"}


def test_two_unknown_labels_need_positive_label():
    raw = with_outcome(["alive", "dead", "alive", "alive", "dead", "alive"])
    with pytest.raises(DataError) as err:
        clean(raw, COLS, kind("binary"), source="trial.csv")
    message = str(err.value)
    assert "trial.csv" in message and "'y'" in message and "cleaning.positive_label" in message
    assert "'alive' (rows 1, 3, 4, ...)" in message and "'dead' (rows 2, 5)" in message
    result = clean(raw, COLS, kind("binary", positive_label="dead"))
    assert result.data["y"].tolist() == [0, 1, 0, 0, 1, 0]
    assert result.summary["outcome"]["levels"] == {"0": "alive", "1": "dead"}


def test_positive_label_overrides_a_known_pair_and_numbers():
    assert (
        clean(with_outcome(["no", "yes"] * 3), COLS, kind("binary", positive_label="No"))
        .data["y"]
        .tolist()
        == [1, 0] * 3
    )
    assert (
        clean(with_outcome([0, 1] * 3), COLS, kind("binary", positive_label="0")).data["y"].tolist()
        == [1, 0] * 3
    )


def test_positive_label_that_is_not_one_of_the_labels_is_an_error():
    with pytest.raises(
        DataError, match=r"positive_label is 'deceased'.*'alive', 'dead'.*set it to the label"
    ):
        clean(
            with_outcome(["alive", "dead"] * 3),
            COLS,
            kind("binary", positive_label="deceased"),
            source="trial.csv",
        )


def test_three_labels_are_not_a_binary_outcome():
    with pytest.raises(DataError) as err:
        clean(
            with_outcome(["yes", "no", "maybe", "yes", "no", "maybe"]),
            COLS,
            kind("binary"),
            source="trial.csv",
        )
    message = str(err.value)
    assert (
        "trial.csv" in message
        and "'y'" in message
        and "exactly two labels" in message
        and "has 3" in message
    )
    assert "'maybe' (rows 3, 6)" in message and "cleaning.missing_values" in message


def test_count_outcome_accepts_whole_numbers_written_as_decimals():
    result = clean(with_outcome([0, "2.0", 3, 10, "NA", 1]), COLS, kind("count"))
    assert result.data["y"].tolist() == [0, 2, 3, 10, 1] and result.data["y"].dtype.kind == "i"
    assert result.summary["outcome"] == {"kind": "count", "column": "y", "min": 0, "max": 10}


@pytest.mark.parametrize("bad, row", [("2.5", 2), ("-1", 4)])
def test_count_outcome_rejects_fractions_and_negatives(bad, row):
    values = [0, 1, 2, 3, 4, 5]
    values[row - 1] = bad
    with pytest.raises(DataError) as err:
        clean(with_outcome(values), COLS, kind("count"), source="counts.csv")
    message = str(err.value)
    assert "counts.csv" in message and "'y'" in message and "non-negative whole numbers" in message
    assert f"{bad!r} (row {row})" in message


BINOMIAL_COLS = {**COLS, "trials": "n"}


def test_binomial_keeps_successes_and_trials_as_integers():
    result = clean(
        with_outcome([0, 3, 5, 1, 2, 4], {"n": [5, 5, 5, 2, "3.0", "NA"]}),
        BINOMIAL_COLS,
        kind("binomial"),
    )
    assert list(result.data.columns) == ["site", "x", "y", "n", "source_row"]
    assert result.data["y"].tolist() == [0, 3, 5, 1, 2] and result.data["n"].tolist() == [
        5,
        5,
        5,
        2,
        3,
    ]
    assert result.data["n"].dtype.kind == "i"
    assert result.summary["rows_dropped"] == {"missing trials": 1}
    assert result.summary["columns"] == BINOMIAL_COLS


@pytest.mark.parametrize(
    "successes, trials, fragment",
    [
        ([0, 3, 6, 1, 2, 4], [5] * 6, "at most the number of trials"),
        ([0, 1, 1, 1, 0, 0], [5, 5, 0, 5, 5, 5], "at least 1"),
        ([0, 1, 1, 1, 0, 0], [5, 5, "2.5", 5, 5, 5], "at least 1"),
        ([0, 1, -1, 1, 0, 0], [5] * 6, "non-negative whole numbers"),
    ],
)
def test_binomial_violations_name_the_row(successes, trials, fragment):
    with pytest.raises(DataError) as err:
        clean(
            with_outcome(successes, {"n": trials}),
            BINOMIAL_COLS,
            kind("binomial"),
            source="tests.csv",
        )
    message = str(err.value)
    assert "tests.csv" in message and fragment in message and "(row 3)" in message


def test_binomial_without_a_trials_column_is_an_error():
    with pytest.raises(DataError, match="columns.trials"):
        clean(frame(base_rows()), COLS, kind("binomial"))


def test_se_column_is_kept_and_must_be_positive():
    cols = {**COLS, "se": "se"}
    result = clean(
        with_outcome([1, 2, 3, 4, 5, 6], {"se": [0.5, 1, 2, "NA", "big", 3]}),
        cols,
        kind("continuous"),
    )
    assert result.data["se"].tolist() == [0.5, 1.0, 2.0, 3.0]
    assert result.summary["rows_dropped"] == {"missing se": 1, "non-numeric se": 1}
    for bad in ("0", "-2"):
        with pytest.raises(DataError) as err:
            clean(
                with_outcome([1, 2, 3, 4, 5, 6], {"se": [0.5, 1, bad, 1, 1, 1]}),
                cols,
                kind("continuous"),
                source="schools.csv",
            )
        assert (
            "schools.csv" in str(err.value)
            and "greater than 0" in str(err.value)
            and f"{bad!r} (row 3)" in str(err.value)
        )


def test_summary_data_without_a_predictor():
    raw = frame(
        [
            ("A", 28, 15),
            ("B", 8, 10),
            ("C", -3, 16),
            ("D", 7, 11),
            ("E", -1, 9),
            ("F", 1, 11),
            ("G", 18, 10),
            ("H", 12, 18),
        ],
        columns=("school", "estimate", "se"),
    )
    cols = {"outcome": "estimate", "group": "school", "se": "se"}
    result = clean(raw, cols, CleaningOptions(min_obs_per_site=1))
    assert list(result.data.columns) == ["school", "estimate", "se", "source_row"]
    assert result.summary["sites_kept"] == 8 and result.summary["rows_out"] == 8
    predictor = result.summary["predictor"]
    assert predictor["column"] is None and predictor["name"] is None
    assert predictor["center"] == 0.0 and predictor["scale"] == 1.0
    assert result.summary["columns"] == cols


def test_mapped_columns_lists_every_role_then_covariates():
    from hierpool.columns import mapped_columns

    assert mapped_columns({"group": "g", "se": "s", "outcome": "y", "trials": "n"}, ["age"]) == [
        "y",
        "g",
        "n",
        "s",
        "age",
    ]
    assert mapped_columns(COLS) == ["y", "x", "site"]


# --------------------------------------------------------------------------- categorical covariates


def test_text_covariate_is_kept_as_categorical_text():
    raw = with_outcome(
        [1, 2, 3, 4, 5, 6],
        {"sex": [" f", "m ", "NA", "f", "m", "f"], "age": [20, 30, 40, 50, 60, 70]},
    )
    result = clean(raw, COLS, CleaningOptions(min_obs_per_site=1, covariates=("sex", "age")))
    assert result.data["sex"].tolist() == ["f", "m", "f", "m", "f"]
    assert result.data["age"].dtype.kind == "f"
    assert result.summary["covariates"] == {"sex": "categorical", "age": "numeric"}
    assert result.summary["rows_dropped"] == {"missing sex": 1}
    assert any("'sex' is categorical, 2 level(s)" in note for note in result.summary["notes"])


def test_a_second_grouping_factor_survives_the_csv_round_trip(tmp_path):
    raw = with_outcome([1, 2, 3, 4, 5, 6], {"class": ["1a", "1b", "1a", "2a", "2a", "2b"]})
    result = clean(raw, COLS, CleaningOptions(min_obs_per_site=1, covariates=("class",)))
    path = write_csv(tmp_path / "clean.csv", result.data)
    assert pd.read_csv(path)["class"].tolist() == ["1a", "1b", "1a", "2a", "2a", "2b"]


def test_a_mostly_numeric_covariate_stays_numeric_and_drops_the_odd_cell():
    raw = with_outcome([1, 2, 3, 4, 5, 6], {"age": [20, 30, "old", 50, 60, 70]})
    result = clean(raw, COLS, CleaningOptions(min_obs_per_site=1, covariates=("age",)))
    assert result.summary["covariates"] == {"age": "numeric"}
    assert result.summary["rows_dropped"] == {"non-numeric age": 1}


# --------------------------------------------------------------------------- simulated families round trip


@pytest.mark.parametrize(
    "family, outcome_kind",
    [
        ("bernoulli", "binary"),
        ("binomial", "binomial"),
        ("poisson", "count"),
        ("negativebinomial", "count"),
        ("t", "continuous"),
    ],
)
def test_simulated_families_survive_cleaning(tmp_path, family, outcome_kind):
    from hierpool.simulate import SimulationSpec, simulate

    data, truth = simulate(
        SimulationSpec(n_sites=5, site_size=20, intercept=0.2, family=family, seed=1)
    )
    path = write_csv(tmp_path / "sim.csv", data)
    result = clean(
        read_raw(path), truth["columns"], kind(outcome_kind, center=False), source=str(path)
    )
    assert result.summary["rows_out"] == len(data)
    y = truth["columns"]["outcome"]
    np.testing.assert_array_equal(result.data[y], data[y])
    if family == "binomial":
        np.testing.assert_array_equal(result.data["trials"], data["trials"])
