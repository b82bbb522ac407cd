"""NUTS with nutpie on hierpool's PyMC model, its progress written to the job's log every few seconds.

A fit of 100,000 rows runs for minutes; ``tail -f logs/<dataset>/fit/<model>.log`` then shows
lines such as

    sampling: 4 chains, 5200/12000 draws (43%, tuning done), 0 divergences, 31 s, about 41 s left

nutpie's own progress bar draws only on a terminal or in a notebook, so the sampler runs in the
background (``blocking=False``) and its trace so far is read with ``inspect()``. The result is
the InferenceData ``pm.sample(nuts_sampler="nutpie")`` returns: the same seed, the observed
data and the ``sampling_time`` attribute.
"""

from __future__ import annotations

import logging
import time

import arviz as az
import numpy as np

_log = logging.getLogger(__name__)
INTERVAL_S = 10.0
POLL_S = 0.2


def progress_line(
    done: int, total: int, tuning_done: bool, divergences: int, chains: int, elapsed: float
) -> str:
    """One progress line: draws done of all (tuning included), divergences so far, time left."""
    share = done / total if total else 1.0
    left = elapsed * (1 - share) / share if share > 0 else float("nan")
    eta = f"about {left:.0f} s left" if np.isfinite(left) else "time left unknown"
    phase = "tuning done" if tuning_done else "tuning"
    return (
        f"sampling: {chains} chains, {done}/{total} draws ({100 * share:.0f}%, {phase}), "
        f"{divergences} divergences, {elapsed:.0f} s, {eta}"
    )


def _finished(sampler) -> bool:
    """nutpie's ``is_finished`` raises TimeoutError while the sampler runs (nutpie 0.16)."""
    try:
        return bool(sampler.is_finished)
    except TimeoutError:
        return False


def _trace_counts(trace: az.InferenceData) -> tuple[int, bool, int]:
    """(draws done over all chains, whether tuning is over, divergences after tuning) of a partial trace.

    nutpie runs at most ``cores`` chains at once and pads the chains that lag (or have not
    started) with NaN up to the longest one, so a draw counts where its ``logp`` is finite.
    """
    done = {}
    for group in ("warmup_sample_stats", "sample_stats"):
        if group in trace.groups() and "logp" in trace[group]:
            done[group] = np.isfinite(np.asarray(trace[group]["logp"], dtype=float))
    warmup, draws = done.get("warmup_sample_stats"), done.get("sample_stats")
    divergences = 0
    if draws is not None and draws.any() and "diverging" in trace.sample_stats:
        diverging = np.asarray(trace.sample_stats["diverging"].values, dtype=float)
        divergences = int(np.nansum(np.where(draws, diverging, 0.0)))
    total = sum(int(d.sum()) for d in done.values())
    # tuning is over when every chain that has started is past it
    started = warmup.any(axis=1) if warmup is not None else np.zeros(0, bool)
    sampling = draws.any(axis=1) if draws is not None else np.zeros_like(started)
    tuned = bool(sampling.any()) and bool((sampling | ~started).all())
    return total, tuned, divergences


def sample(
    model_pm,
    draws: int,
    tune: int,
    chains: int,
    target_accept: float,
    random_seed: int,
    compiled=None,
    **nuts_kwargs,
):
    """``pm.sample(nuts_sampler="nutpie", ...)`` with a progress line in the log every `INTERVAL_S` seconds.

    ``compiled``: nutpie's compiled ``model_pm`` to sample instead of compiling it again (for
    example with other data, ``compiled.with_data(...)``).
    """
    import nutpie
    import pymc as pm
    from pymc.backends.arviz import (
        coords_and_dims_for_inferencedata,
        dict_to_dataset,
        find_observations,
    )

    try:  # the seed pm.sample gives nutpie, so both paths draw the same numbers
        from pymc.util import _get_seeds_per_chain

        seed = int(_get_seeds_per_chain(random_seed, 1)[0])
    except ImportError:  # pragma: no cover - a PyMC without it
        seed = int(random_seed)
    if compiled is None:
        compiled = nutpie.compile_pymc_model(model_pm)
    start = time.time()
    sampler = nutpie.sample(
        compiled,
        draws=draws,
        tune=tune,
        chains=chains,
        target_accept=target_accept,
        seed=seed,
        progress_bar=False,
        blocking=False,
        **nuts_kwargs,
    )
    total = chains * (draws + tune)
    next_line = start + INTERVAL_S
    while not _finished(sampler):
        time.sleep(POLL_S)  # short polls: a small fit is not held back by the logging interval
        if _finished(sampler) or time.time() < next_line:
            continue
        next_line += INTERVAL_S
        try:
            done, tuned, divergences = _trace_counts(sampler.inspect())
        except Exception as err:  # noqa: BLE001 - progress is best effort, sampling goes on
            _log.info("sampling: %.0f s (progress unavailable: %s)", time.time() - start, err)
            continue
        _log.info(progress_line(done, total, tuned, divergences, chains, time.time() - start))
    idata = sampler.wait()
    elapsed = time.time() - start
    coords, dims = coords_and_dims_for_inferencedata(model_pm)
    observed = find_observations(model_pm)
    if observed:
        idata.add_groups(
            {
                "observed_data": dict_to_dataset(
                    observed, library=pm, coords=coords, dims=dims, default_dims=[]
                )
            },
            coords=coords,
            dims=dims,
        )
    idata.posterior.attrs.update({"sampling_time": elapsed, "tuning_steps": tune})
    _log.info(
        "sampling: done, %d chains × %d draws in %.0f s, %d divergences",
        chains,
        draws,
        elapsed,
        int(idata.sample_stats["diverging"].sum()),
    )
    return idata
