"""Escaping and number formatting for the report: nothing from the data reaches the HTML as markup."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from hierpool import summaries

_ENTITIES = {char: f"&#{ord(char)};" for char in "&<>\"'\\`*_[]|$#~^:"}


def pre_block(text: str) -> str:
    """Preformatted text (e.g. the configuration as YAML) as an HTML ``<pre>`` block, escaped."""
    return "<pre>" + html.escape(text) + "</pre>"


def esc(value) -> str:
    """Text from the data or the config, safe to put into Markdown or HTML (outside code spans).

    Every character that HTML or Markdown could read as markup becomes a numeric entity,
    so a site named ``<script>alert(1)</script>`` is shown as text, never run.
    """
    return "".join(_ENTITIES.get(char, char) for char in str(value))


def table_html(frame: pd.DataFrame, floatfmt: str = "{:.3g}", index: bool = False) -> str:
    """A DataFrame as an HTML table with every cell escaped."""
    formatters = {
        c: (lambda v, f=floatfmt: "" if pd.isna(v) else f.format(v))
        for c in frame.columns
        if pd.api.types.is_float_dtype(frame[c])
    }
    return frame.to_html(
        index=index, escape=True, formatters=formatters, border=0, classes="table", na_rep=""
    )


UNDEFINED = "undefined"


def num(value, spec: str = ".2f", undefined: str = UNDEFINED) -> str:
    """``format(value, spec)``, or ``undefined`` for a statistic that has no value (None, NaN, inf).

    Every number the report prints goes through here: a JSON ``null`` (e.g. a rank correlation
    when every site has the same size) must read as a word, not crash the report.
    """
    if value is None or isinstance(value, str):
        return undefined if value is None else value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return undefined
    if not np.isfinite(number):
        return undefined
    return format(int(value) if spec.endswith("d") else number, spec)


def fmt_interval(
    mean: float, low: float, high: float, digits: int = 2, prob: float = summaries.HDI_PROB
) -> str:
    """``mean (95% HDI low to high)``, the level written from ``prob`` (hierpool.summaries.HDI_PROB)."""
    spec = f".{digits}f"
    return f"{num(mean, spec)} ({prob * 100:g}% HDI {num(low, spec)} to {num(high, spec)})"
