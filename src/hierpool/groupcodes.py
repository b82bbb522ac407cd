"""Grouping factors of varying terms as level codes, never as a dense rows × levels matrix.

formulae 0.6 evaluates the grouping factor ``g`` of a varying term ``(x|g)`` as a dense 0/1
matrix of rows × levels (``Variable.eval_categoric``: the identity contrast, itself levels ×
levels, indexed by each row's level), of which formulae and Bambi then read only where each
row's 1 is (``argmax(1)``). That matrix is 8 bytes × rows × levels per varying term: 1.6 GB
for 100,000 rows in 1,000 sites with a varying intercept and slope, 74 GiB for 1,000,000 rows
in 10,000 sites. `compact_group_factors` evaluates such a factor as its codes instead
(`OneHotRows`), with the same levels, labels and sparse design matrix; predictions on new
data get their dense rows from `IdentityContrast`, chunk by chunk. A factor that is not one
plain categorical column (an interaction ``(1|a:b)``, a call) is left to formulae.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pandas as pd
from formulae.categorical import ContrastMatrix
from formulae.terms.terms import GroupSpecificTerm
from formulae.terms.variable import Variable
from formulae.utils import row_khatri_rao_sparse

_FORMULAE_SET_DATA = GroupSpecificTerm.set_data


class OneHotRows:
    """The rows × levels indicator of a grouping factor, held as one code per row."""

    ndim = 2

    def __init__(self, codes: np.ndarray, n_levels: int):
        self.codes = np.asarray(codes, dtype=np.intp)
        self.shape = (self.codes.size, int(n_levels))

    def argmax(self, axis=None):
        if axis not in (1, -1):
            raise ValueError("OneHotRows only gives each row's level (argmax(1))")
        return self.codes

    def __array__(self, dtype=None, copy=None):
        dense = np.zeros(self.shape, dtype=dtype or int)
        dense[np.arange(self.shape[0]), self.codes] = 1
        return dense


class IdentityContrast:
    """The levels × levels identity contrast of a full dummy coding, without storing it."""

    ndim = 2
    dtype = np.dtype(int)

    def __init__(self, n_levels: int):
        self.shape = (int(n_levels), int(n_levels))

    def __getitem__(self, codes):
        return np.asarray(OneHotRows(np.asarray(codes), self.shape[1]))

    def __array__(self, dtype=None, copy=None):
        return np.eye(self.shape[0], dtype=dtype or int)


def _plain_factor(term: GroupSpecificTerm) -> Variable | None:
    """The factor's one categorical column, or None where formulae should evaluate it."""
    components = term.factor.components
    if len(components) != 1 or not isinstance(components[0], Variable):
        return None
    variable = components[0]
    return variable if variable.kind == "categoric" and not variable.is_response else None


def _factor_codes(variable: Variable) -> np.ndarray:
    """``Variable.eval_categoric`` for a grouping factor (full coding), keeping codes, not rows."""
    x = variable._intermediate_data
    if not hasattr(x.dtype, "ordered") or not x.dtype.ordered:  # as formulae orders the levels
        categories = sorted(np.unique(x).tolist())
        x = pd.Categorical(x).astype(pd.api.types.CategoricalDtype(categories, ordered=True))
    else:
        x = pd.Categorical(x)
    codes = np.asarray(x.codes)
    if (codes < 0).any():
        raise ValueError(f"grouping factor {variable.name!r} has missing values")
    variable.levels = x.categories.tolist()
    contrast = ContrastMatrix.__new__(ContrastMatrix)
    contrast._matrix = IdentityContrast(len(variable.levels))
    contrast._labels = [str(level) for level in variable.levels]
    variable.contrast_matrix = contrast
    variable.value = OneHotRows(codes, len(variable.levels))
    variable.spans_intercept = True
    return codes


def _set_data(self: GroupSpecificTerm, spans_intercept):
    """formulae's ``GroupSpecificTerm.set_data`` with the factor as codes (`_factor_codes`)."""
    variable = _plain_factor(self)
    if variable is None:
        return _FORMULAE_SET_DATA(self, spans_intercept)
    self.expr.set_data(spans_intercept)
    codes = _factor_codes(variable)
    self.factor.data = variable.value
    self.kind = self.expr.kind
    self.groups = list(variable.contrast_matrix.labels)
    x = self.expr.data
    x = x[:, np.newaxis] if x.ndim == 1 else x
    self.data = row_khatri_rao_sparse(x, codes, len(self.groups))
    return None


@contextmanager
def compact_group_factors():
    """Within the block, formulae evaluates plain grouping factors as codes (`OneHotRows`)."""
    GroupSpecificTerm.set_data = _set_data
    try:
        yield
    finally:
        GroupSpecificTerm.set_data = _FORMULAE_SET_DATA
