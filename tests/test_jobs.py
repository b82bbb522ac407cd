"""The Snakemake script glue: a user error is one short line on the console, its long listing in the log."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from hierpool.errors import DataError
from hierpool.jobs import run_logged


def test_user_error_details_go_to_the_log_not_the_console(tmp_path, capfd):
    log = tmp_path / "clean.log"
    smk = SimpleNamespace(log=[str(log)], rule="clean", wildcards={"dataset": "labs"})
    listing = "\n".join(f"lab{i} 1" for i in range(5000))

    def main(_):
        raise DataError("labs.csv: only 0 site(s) left", details=listing)

    with pytest.raises(SystemExit):
        run_logged(smk, main)
    console = capfd.readouterr().err
    assert (
        "labs.csv: only 0 site(s) left" in console
        and str(log) in console
        and "lab4999" not in console
    )
    assert "lab4999 1" in log.read_text()
