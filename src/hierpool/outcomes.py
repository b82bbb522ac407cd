"""Outcome checks per family: binary 0/1 (or two labels), binomial successes of trials, counts, known SEs.

`hierpool.clean` calls these for the outcome kind of the dataset's models
(`hierpool.config.outcome_kind`); each error names the file, the column, rows and the fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hierpool.errors import DataError
from hierpool.rawfile import preview
from hierpool.values import _is_missing, parse_numeric

if TYPE_CHECKING:
    from hierpool.clean import CleaningOptions

OUTCOME_KINDS = ("continuous", "binary", "binomial", "count")
KNOWN_BINARY_PAIRS = (
    ("no", "yes"),
    ("false", "true"),
    ("n", "y"),
    ("f", "t"),
    ("absent", "present"),
    ("negative", "positive"),
    ("fail", "pass"),
    ("0", "1"),
)


def _value_examples(text: pd.Series, row_number: pd.Series, n: int = 5) -> str:
    """Distinct cells with the rows they are on: ``'maybe' (rows 4, 9), '2' (row 7)``."""
    parts = []
    for value, rows in row_number[text.index].groupby(text.to_numpy(), sort=False):
        listed = rows.tolist()
        parts.append(
            f"{value!r} (row{'s' if len(listed) > 1 else ''} {', '.join(map(str, listed[:3]))}{', ...' if len(listed) > 3 else ''})"
        )
    return ", ".join(parts[:n]) + (f", ... ({len(parts) - n} more)" if len(parts) > n else "")


def _reject_rows(
    bad: pd.Series,
    values: pd.Series,
    row_number: pd.Series,
    source: str,
    role: str,
    name: str,
    must: str,
    fix: str,
) -> None:
    """Stop, naming rows and values, when any cell of a column breaks a rule the model needs."""
    if not bad.any():
        return
    text = values[bad].astype(str).str.strip()
    raise DataError(
        f"{source}: the {role} column {name!r} must hold {must}, but {int(bad.sum())} row(s) do not: "
        f"{_value_examples(text, row_number)}. {fix}"
    )


def _not_count(numbers: pd.Series) -> pd.Series:
    """Numbers that are not non-negative integers (``2.0`` is one; ``2.5`` and ``-1`` are not)."""
    return numbers.notna() & ((numbers < 0) | (numbers != np.round(numbers)))


def _shown_spelling(text: pd.Series, keys: pd.Series) -> dict[str, str]:
    """For each case-folded label, its most frequent spelling (ties: the first seen)."""
    counts = (
        pd.DataFrame({"key": keys.to_numpy(), "label": text.to_numpy()})
        .value_counts(sort=False)
        .reset_index()
    )
    counts = counts.sort_values("count", ascending=False, kind="stable")
    return dict(counts.drop_duplicates("key")[["key", "label"]].itertuples(index=False))


def binary_outcome(
    values: pd.Series, options: CleaningOptions, name: str, source: str, row_number: pd.Series
) -> tuple[pd.Series, pd.Series, dict]:
    """Code a binary outcome as 0/1.

    Numbers must be 0 or 1. Two text labels (trimmed, any case) map by themselves when they are a
    known pair (no/yes, false/true, n/y, f/t, absent/present, negative/positive, fail/pass), else
    ``options.positive_label`` says which one is 1.

    Returns
    -------
    tuple
        (0/1 as floats, NaN where missing; the missing mask; {"levels": {"0": label, "1": label}}).

    Raises
    ------
    DataError
        Not two labels, numbers other than 0/1, no known pair and no ``positive_label``, or a
        ``positive_label`` that is not one of the two labels.
    """
    text = values.astype(str).str.strip()
    missing = _is_missing(text, options.missing_values)
    present = text[~missing]
    numbers, _, non_numeric = parse_numeric(
        values, options.missing_values, options.decimal, options.thousands
    )
    where = "the outcome column"
    if present.empty:
        raise DataError(
            f"{source}: {where} {name!r} has no values (every cell is missing). Map the column with the 0/1 outcome."
        )
    if options.positive_label is None and not non_numeric.any():
        _reject_rows(
            ~missing & ~numbers.isin([0.0, 1.0]),
            values,
            row_number,
            source,
            "outcome",
            name,
            "0 or 1 for a binary (bernoulli) outcome",
            "Recode the column to 0/1, mark those cells missing (cleaning.missing_values), or, for counts, "
            "use the binomial (with columns.trials) or poisson family.",
        )
        return numbers.where(~missing), missing, {"levels": {"0": "0", "1": "1"}}
    keys = present.str.casefold()
    shown = _shown_spelling(present, keys)
    if len(shown) != 2:
        raise DataError(
            f"{source}: {where} {name!r} must hold exactly two labels for a binary (bernoulli) outcome, but has "
            f"{len(shown)}: {_value_examples(present, row_number)}. Recode it to two labels or 0/1, or add the labels "
            "that mean missing to cleaning.missing_values."
        )
    if options.positive_label is not None:
        positive = options.positive_label.strip().casefold()
        if positive not in shown:
            raise DataError(
                f"{source}: cleaning.positive_label is {options.positive_label!r}, which is not one of the two labels "
                f"of {where} {name!r} ({preview(shown.values())}); set it to the label that means 1."
            )
    else:
        pair = next((p for p in KNOWN_BINARY_PAIRS if set(p) == set(shown)), None)
        if pair is None:
            raise DataError(
                f"{source}: {where} {name!r} has the two labels {_value_examples(present, row_number)}, which are not "
                f"a known pair (such as no/yes, false/true); set cleaning.positive_label to the label that means 1 "
                f"(one of {preview(shown.values())})."
            )
        positive = pair[1]
    negative = next(k for k in shown if k != positive)
    coded = pd.Series(np.nan, index=values.index)
    coded[~missing] = (keys == positive).astype(float)
    return coded, missing, {"levels": {"0": shown[negative], "1": shown[positive]}}


def _check_outcome_values(
    parsed: dict, frame: pd.DataFrame, columns: dict, kind: str, source: str, row_number: pd.Series
) -> None:
    """The checks the outcome kind and the trials and se columns need; DataError naming rows."""
    outcome, trials, se = columns["outcome"], columns.get("trials"), columns.get("se")
    if kind == "binomial" and not trials:
        raise DataError(
            f"{source}: a binomial outcome needs the number of trials: set columns.trials to that column."
        )
    if kind in ("count", "binomial"):
        what = (
            "successes, for the binomial family"
            if kind == "binomial"
            else "counts, for the poisson and negativebinomial families"
        )
        _reject_rows(
            _not_count(parsed[outcome]),
            frame[outcome],
            row_number,
            source,
            "outcome",
            outcome,
            f"non-negative whole numbers ({what})",
            "Fix those cells, or fit a continuous family (gaussian, t) if the outcome is not a count.",
        )
    if trials:
        n = parsed[trials]
        _reject_rows(
            _not_count(n) | (n < 1),
            frame[trials],
            row_number,
            source,
            "trials",
            trials,
            "whole numbers of at least 1 (the number of trials)",
            "Fix those cells, or map the right column as columns.trials.",
        )
        if kind == "binomial":
            over = parsed[outcome] > n
            _reject_rows(
                over,
                frame[outcome] + " of " + frame[trials],
                row_number,
                source,
                "outcome",
                outcome,
                f"at most the number of trials in {trials!r} (successes of trials)",
                "Check that columns.outcome holds successes and columns.trials the trials.",
            )
    if se:
        _reject_rows(
            parsed[se] <= 0,
            frame[se],
            row_number,
            source,
            "se",
            se,
            "standard errors greater than 0",
            "Fix those cells (a standard error of 0 means an exactly known value).",
        )
