"""Cell values as they come in raw exports: missing-value tokens, numbers written as text, decimal commas.

Every cell is read as text (hierpool.rawfile); these functions say which cells are missing,
parse the rest to numbers, and stop with advice when the numbers use another format.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from hierpool import schema
from hierpool.errors import DataError
from hierpool.rawfile import preview

MISSING_VALUES = tuple(schema.defaults("cleaning")["missing_values"])  # the config's default
_DECIMAL_COMMA = re.compile(r"[+-]?[0-9]*,[0-9]+(?:[eE][+-]?[0-9]+)?")
_THOUSANDS = re.compile(r"[+-]?[0-9]{1,3}(?:[,.' ][0-9]{3})+(?:[.,][0-9]+)?")


def _is_missing(values: pd.Series, tokens=MISSING_VALUES) -> pd.Series:
    """Cells equal to one of ``tokens`` after trimming, case-insensitively."""
    return values.str.strip().str.lower().isin({t.strip().lower() for t in tokens})


def parse_numeric(
    values: pd.Series,
    missing_values=MISSING_VALUES,
    decimal: str = ".",
    thousands: str | None = None,
):
    """Parse text to floats.

    Parameters
    ----------
    values : pandas.Series
        Cells as text.
    missing_values : sequence of str
        Cells that mean "missing" (trimmed, case-insensitive).
    decimal, thousands : str
        The decimal mark and the thousands separator used in the file.

    Returns
    -------
    tuple of pandas.Series
        (numbers, missing mask, non-numeric mask); numbers are NaN where not a finite number.
    """
    text = values.astype(str).str.strip()
    missing = _is_missing(text, missing_values)
    number_text = text.where(~missing)
    if thousands:
        number_text = number_text.str.replace(thousands, "", regex=False)
    if (
        decimal != "."
    ):  # a "." left in a decimal-comma file is not a number: make it unparseable first
        number_text = number_text.str.replace(".", "?", regex=False).str.replace(
            decimal, ".", regex=False
        )
    numbers = pd.to_numeric(number_text, errors="coerce").astype(float)
    bad = ~missing & ~np.isfinite(numbers)  # text that is not a number, and inf
    return numbers.where(~bad), missing, bad


def check_number_format(
    values: pd.Series, bad: pd.Series, name: str, source: str, row_number: pd.Series
) -> None:
    """Stop when the cells that did not parse look like numbers in another format (``3,5``, ``1,234.5``)."""
    text = values[bad].astype(str).str.strip()
    comma = text[text.str.fullmatch(_DECIMAL_COMMA.pattern)]
    grouped = text[text.str.fullmatch(_THOUSANDS.pattern)]
    suspicious = comma if len(comma) >= len(grouped) else grouped
    if suspicious.empty:
        return
    rows = row_number[suspicious.index].tolist()
    if len(comma) >= len(grouped):
        advice = "they look like numbers with a decimal comma: set `decimal: ','` for this dataset"
    else:
        advice = "they look like numbers with a thousands separator: set `thousands:` to that character for this dataset"
    raise DataError(
        f"{source}: column {name!r} has {len(suspicious)} value(s) such as {preview(suspicious.unique(), 3)} that are not "
        f"plain numbers (rows {preview(rows, 5)}); {advice} in the config, or fix the export, instead of letting "
        "cleaning drop them."
    )
