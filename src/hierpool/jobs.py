"""Glue for Snakemake `script:` files: send library chatter to the rule's log, errors to the user."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout

from hierpool.errors import ConfigError, DataError, ModelError

USER_ERRORS = (DataError, ConfigError, ModelError)


def _point_loggers_at(handle) -> None:
    """Libraries (PyMC, Bambi) attach their own stream handlers at import; send those to the log too."""
    for logger in [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and not isinstance(
                handler, logging.FileHandler
            ):
                handler.setStream(handle)


def run_logged(snakemake, main: Callable[[object], None]) -> None:
    """Run ``main(snakemake)`` with stdout/stderr going to the rule's log file.

    A user error (bad data, bad config) is printed as one clear line on the console
    and in the log; anything else is logged with its traceback. Either way the job
    fails, and Snakemake removes its partial outputs.
    """
    log_path = snakemake.log[0] if len(snakemake.log) else None
    console = sys.__stderr__
    handle = open(log_path, "w") if log_path else sys.stderr
    try:
        with redirect_stdout(handle), redirect_stderr(handle):
            logging.basicConfig(
                stream=handle,
                level=logging.INFO,
                format="%(asctime)s %(name)s %(levelname)s: %(message)s",
                force=True,
            )
            _point_loggers_at(handle)
            try:
                main(snakemake)
            except USER_ERRORS as err:
                print(f"ERROR: {err}", file=handle)
                details = getattr(err, "details", "")
                if details:
                    print(f"\nDetails:\n{details}", file=handle)
                more = f" (full listing in {log_path})" if details and log_path else ""
                print(
                    f"\nERROR ({snakemake.rule}, {dict(snakemake.wildcards)}): {err}{more}\n",
                    file=console,
                )
                sys.exit(1)
            except Exception:
                traceback.print_exc(file=handle)
                print(
                    f"\nERROR ({snakemake.rule}): unexpected failure; see {log_path}\n",
                    file=console,
                )
                sys.exit(1)
    finally:
        if log_path:
            handle.close()


def load_analysis(smk):
    """The prologue every analysis job shares, in one place: columns, cleaned data, predictor scale, fits.

    Reads ``input.data``, ``input.summary``, ``input.fits`` and ``params.models`` /
    ``params.columns``; returns a namespace with ``columns``, ``data``, ``summary`` (the cleaning
    summary), ``scale`` (hierpool.fitinfo.PredictorScale), ``fits`` (model -> InferenceData, in
    config order), ``dataset`` (its name) and ``site_data`` (the first four but the summary, as
    one hierpool.sitedata.SiteData).
    """
    from types import SimpleNamespace

    import arviz as az

    from hierpool.clean import load_clean
    from hierpool.fitinfo import PredictorScale
    from hierpool.io import read_json
    from hierpool.sitedata import SiteData

    columns = dict(smk.params.columns)
    summary = read_json(smk.input.summary)
    site_data = SiteData(
        data=load_clean(smk.input.data, columns["group"]),
        columns=columns,
        scale=PredictorScale.from_summary(summary),
        name=smk.wildcards.dataset,
    )
    return SimpleNamespace(
        columns=columns,
        data=site_data.data,
        summary=summary,
        scale=site_data.scale,
        fits={m: az.from_netcdf(p) for m, p in zip(smk.params.models, smk.input.fits)},
        dataset=site_data.name,
        site_data=site_data,
    )
