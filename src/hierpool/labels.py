"""Site labels as people type them: padded, in several cases, as integer codes written differently.

`normalise_labels` merges the spellings of one site (trimmed, optionally by case and by the
exact value of integer codes) and records every merge; `sort_key` orders labels naturally.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hierpool.values import _is_missing

if TYPE_CHECKING:
    from hierpool.clean import CleaningOptions

_INTEGER_CODE = re.compile(r"[+-]?[0-9]+", re.ASCII)


def _label_key(label: str, merge_case: bool, merge_integer_codes: bool) -> str:
    """Key under which site labels are the same site: integer codes by exact integer value, text by case."""
    if merge_integer_codes and _INTEGER_CODE.fullmatch(label):
        return "code:" + str(int(label))  # Python int: exact for any length, no float rounding
    return "text:" + (label.casefold() if merge_case else label)


def normalise_labels(
    values: pd.Series,
    missing_values=("",),
    merge_case: bool = True,
    merge_integer_codes: bool = True,
) -> tuple[pd.Series, dict[str, list[str]]]:
    """Strip and collapse whitespace, and merge labels that differ only in case or integer format.

    Parameters
    ----------
    values : pandas.Series
        The group column as text.
    missing_values : sequence of str
        Labels that mean "no site" (trimmed, case-insensitive); by default only empty cells.
    merge_case : bool
        ``"Lab A"`` and ``"lab a"`` are one site.
    merge_integer_codes : bool
        Integer codes with the same exact value are one site (``"01"``, ``"1"``, ``"+1"``); text
        such as ``"1.0"``, ``"1e1"``, ``"1_0"`` or non-ASCII digits is never read as a number.

    Returns
    -------
    tuple
        The labels (NaN where missing; each site under its most frequent spelling) and the
        merges made, as {shown label: [other spellings]}.
    """
    uniques = pd.Series(pd.unique(values.astype(str)))
    cleaned = dict(zip(uniques, uniques.map(lambda s: re.sub(r"\s+", " ", s.strip()))))
    text = values.astype(str).map(cleaned)
    missing = _is_missing(text, missing_values)
    present = text[~missing]
    key_of = {
        label: _label_key(label, merge_case, merge_integer_codes) for label in pd.unique(present)
    }
    keys = present.map(key_of)
    # One row per (site key, spelling): its count and where it first appears (ties go to the first).
    spellings = pd.DataFrame(
        {"key": keys.to_numpy(), "label": present.to_numpy(), "order": np.arange(len(present))}
    )
    spellings = (
        spellings.groupby(["key", "label"], sort=False)
        .agg(n=("order", "size"), first=("order", "min"))
        .reset_index()
    )
    spellings = spellings.sort_values(["n", "first"], ascending=[False, True], kind="stable")
    shown = dict(spellings.drop_duplicates("key")[["key", "label"]].itertuples(index=False))
    merges: dict[str, list[str]] = {}
    for key, label in spellings.loc[
        spellings.duplicated("key", keep=False), ["key", "label"]
    ].itertuples(index=False):
        if label != shown[key]:
            merges.setdefault(shown[key], []).append(label)
    merges = {best: sorted(others) for best, others in merges.items()}
    labels = pd.Series(np.nan, index=values.index, dtype=object)
    labels[~missing] = keys.map(shown)
    return labels, merges


def label_notes(sites: list[str], options: CleaningOptions, group: str) -> list[str]:
    """Sites whose label reads like a missing value: kept (a lab may be called "NA"), and said so."""
    tokens = {t.strip().lower() for t in options.missing_values} - {
        t.strip().lower() for t in options.group_missing_values
    }
    return [
        f"site {site!r} in column {group!r} is kept as a site although it reads like a missing value; "
        "if it means 'no site', add it to cleaning.group_missing_values"
        for site in sites
        if site.strip().lower() in tokens
    ]


def sort_key(label: str):
    """Natural sort: integer codes by exact value, then other numbers, then text labels."""
    if _INTEGER_CODE.fullmatch(label):
        return (0, int(label), "")
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label.casefold())
