"""Memory and runtime a job asks its cluster for, computed from the data it will read.

Snakemake's rules call these (``resources: mem_mb=...``) once a job's inputs exist, so a fit of
100,000 rows asks for what it needs and a fit of 100 rows does not block a node. The constants
were measured on the workflow's own fit (``hierpool.fit.fit`` + ``save``, nutpie; peak RSS of a
fresh process; ``docs/performance.md``, section "Running on SLURM", 2026-12-03):

- the per-observation work (log-likelihood, PSIS-LOO, predictions) is done in chunks of rows
  (``sampler.chunk_mb``), so what grows with the data is the posterior (site effects, about one
  per site and varying effect) and the per-row data: about 1 byte per (posterior draw x row) with
  varying intercepts and slopes, at 5,000 to 100,000 rows (829 MB for 5,000 rows x 8,000 draws,
  1,521 MB for 100,000 x 8,000);
- importing the stack and compiling the model cost about 700 MB whatever the data.

This module imports nothing heavy: the Snakefile imports it when it builds the DAG.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

BASE_MB = (
    800  # interpreter, Bambi/PyMC/nutpie imports (~370 MB measured), numba compilation, headroom
)
FIT_BASE_MB = 1000  # a fit job's: the default run's Bernoulli fits peaked at 962 MB on 1,065 rows (2026-12-04)
SAFETY = 1.2  # on top of the measured peaks
BYTES_FIXED = 0.5  # per posterior draw x row, whatever the model (chunks, data, predictions)
BYTES_PER_VARYING_EFFECT = 0.5  # per posterior draw x row and varying effect (the site effects)
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


def fit_mem_mb(rows: int | None, formula: str, sampler: dict, attempt: int = 1) -> int:
    """Memory (MB) for one fit of ``formula`` on ``rows`` observations with these sampler settings.

    ``attempt`` is Snakemake's: a job retried after running out of memory asks for that many times more.
    """
    rows = FALLBACK_ROWS if rows is None else rows
    per_cell = BYTES_FIXED + BYTES_PER_VARYING_EFFECT * varying_effects(formula)
    posterior_draws = int(sampler["chains"]) * int(sampler["draws"])
    peak = FIT_BASE_MB + per_cell * posterior_draws * rows / 1e6
    return _round_up(peak * SAFETY * max(1, int(attempt)), ROUND_MB)


def fit_threads(chains: int, cores: int | None) -> int:
    """CPUs a fit (or refit batch) asks for: its chains, but at most half of a local run's ``--cores``.

    Only sampling runs the chains in parallel; compiling the model, the log-likelihood, LOO and
    the predictions take one CPU, about as long as sampling in the default fits (their CPU time
    equals their wall time: ``docs/performance.md``). A fit holding every core of a local run
    kept every other job waiting, so on ``--cores 4`` two fits now run side by side. Where
    ``cores`` is unknown or huge (a cluster run), the chains decide.
    """
    chains = max(1, int(chains))
    if not isinstance(cores, int) or cores <= 0 or cores >= LOCAL_CORES_MAX:
        return chains
    return max(1, min(chains, cores // 2))


LOCAL_CORES_MAX = 4096  # more ``--cores`` than this: a cluster's "unlimited", not one machine


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
