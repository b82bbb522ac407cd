"""Memory and runtime a job asks its cluster for, computed from the data it will read.

Snakemake's rules call these (``resources: mem_mb=...``) once a job's inputs exist, so a fit of
100,000 rows asks for what it needs and a fit of 100 rows does not block a node. The constants
were measured on the workflow's own fit (``hierpool.fit.fit`` + ``save``, nutpie; peak RSS of the
process; ``docs/performance.md``, section "Running on SLURM"):

- a fit holds about ``B`` bytes per (posterior draw x observation) at its peak, where ``B`` grows
  with the number of varying effects per observation: 66 to 90 bytes without varying effects
  (complete and no pooling), 114 with varying intercepts, 250 to 260 with varying intercepts and
  slopes. Warm-up draws are not kept, so ``tune`` does not count; the thinned posterior predictive
  and prior predictive draws count as draws without varying effects;
- importing the stack and compiling the model costs about 400 MB whatever the data.

This module imports nothing heavy: the Snakefile imports it when it builds the DAG.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from hierpool import schema

BASE_MB = (
    800  # interpreter, Bambi/PyMC/nutpie imports (~370 MB measured), numba compilation, headroom
)
SAFETY = 1.2  # on top of the measured peaks
BYTES_FIXED_ONLY = 100  # per draw x observation, models without varying effects (measured 66-90)
BYTES_PER_VARYING_EFFECT = (
    130  # per draw x observation and varying effect (measured 114 for 1, 250-260 for 2)
)
ROUND_MB = 250
FALLBACK_ROWS = 1000  # used only before the data exist (a dry run); the real job recomputes it

# Runtime: a fixed part (start-up, compilation, saving) plus the sampler's work, which grows with
# rows x iterations per chain. Measured 2.6e-6 s per row and iteration on one chain at
# target_accept 0.9; the factor allows for ten times that (deep trees at target_accept 0.99,
# slower cluster cores).
RUNTIME_FIXED_MIN = 15
SECONDS_PER_ROW_ITERATION = 2.6e-5
ROUND_MIN = 5


def count_rows(path: str | Path | None) -> int | None:
    """Data rows of a CSV (lines after the header), or None when the file does not exist yet."""
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        return None
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":  # no newline after the last row
        lines += 1
    return max(0, lines - 1)


def varying_effects(formula: str) -> int:
    """Varying effects per observation in a Bambi formula: ``(1|g)`` is 1, ``(x|g)`` is 2, ``(0 + x|g)`` is 1."""
    total = 0
    for expr, _group in re.findall(r"\(([^()|]*)\|([^()]*)\)", formula):
        parts = [p.strip() for p in expr.split("+") if p.strip()]
        no_intercept = any(p in ("0", "-1") for p in parts) or "-1" in expr.replace(" ", "")
        total += len([p for p in parts if p not in ("0", "1", "-1")]) + (0 if no_intercept else 1)
    return total


def _round_up(value: float, step: int) -> int:
    return int(math.ceil(value / step) * step)


def _predictive_draws(sampler: dict) -> int:
    """The thinned posterior predictive draws plus the prior (predictive) draws a fit also keeps."""
    sampler = schema.filled("sampler", sampler)
    return int(sampler["posterior_predictive_draws"]) + int(sampler["prior_predictive_draws"])


def fit_mem_mb(rows: int | None, formula: str, sampler: dict, attempt: int = 1) -> int:
    """Memory (MB) for one fit of ``formula`` on ``rows`` observations with these sampler settings.

    ``attempt`` is Snakemake's: a job retried after running out of memory asks for that many times more.
    """
    rows = FALLBACK_ROWS if rows is None else rows
    effects = varying_effects(formula)
    per_cell = BYTES_PER_VARYING_EFFECT * effects if effects else BYTES_FIXED_ONLY
    posterior_draws = int(sampler["chains"]) * int(sampler["draws"])
    cells = per_cell * posterior_draws + BYTES_FIXED_ONLY * _predictive_draws(sampler)
    peak = BASE_MB + cells * rows / 1e6
    return _round_up(peak * SAFETY * max(1, int(attempt)), ROUND_MB)


def fit_runtime_min(rows: int | None, sampler: dict, threads: int, attempt: int = 1) -> int:
    """Wall-clock limit (minutes) for one fit; chains run ``threads`` at a time."""
    rows = FALLBACK_ROWS if rows is None else rows
    chains = int(sampler["chains"])
    iterations = int(sampler["draws"]) + int(sampler["tune"])
    rounds = math.ceil(chains / max(1, min(int(threads), chains)))
    seconds = SECONDS_PER_ROW_ITERATION * rows * iterations * rounds
    return _round_up((RUNTIME_FIXED_MIN + seconds / 60) * max(1, int(attempt)), ROUND_MIN)


def from_input_size_mb(
    input_mb: float, floor_mb: int, factor: float = 6.0, attempt: int = 1
) -> int:
    """Memory for a job that loads saved fits: ``factor`` x their size on disk (float32 on disk, float64
    and working copies in memory), never below ``floor_mb``."""
    return _round_up(
        max(floor_mb, BASE_MB + factor * float(input_mb)) * max(1, int(attempt)), ROUND_MB
    )


def size_mb(paths) -> float:
    """Total size (MB) of the files that exist among ``paths`` (missing ones count 0: a dry run)."""
    total = 0
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        try:
            total += Path(path).stat().st_size
        except OSError:
            pass
    return total / 1e6
