#!/usr/bin/env python3
"""How long nutpie's compilation takes in a fresh process, and whether any cache shortens it.

Each line of the table is one new ``python`` process (as every fit job is): it writes a
varying-slopes model (ROWS rows in SITES sites) in PyMC, compiles it with
``nutpie.compile_pymc_model`` and samples 2 chains x (200 + 200) draws. Variants: the data as
numpy constants (as Bambi and hierpool write the model) or as ``pm.Data`` with
``freeze_model=False``; ``--cache`` passes ``cache=True`` on to ``numba.cfunc``. Two data sets
of the same shapes show whether a second model of the same structure compiles faster. Not a
test: timings depend on the machine and on what else runs.

    .venv/bin/python tools/benchmark_compile.py
    .venv/bin/python tools/benchmark_compile.py --rows 3000 --sites 50 --cache
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np, pymc as pm, nutpie
imported = time.perf_counter() - t0
mode, seed, rows, sites, cache = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
rng = np.random.default_rng(seed)
x = rng.normal(size=rows); g = rng.integers(0, sites, rows); y = 1 + 0.5 * x + rng.normal(size=rows)
with pm.Model(coords={"site": range(sites)}) as model:
    if mode == "shared":
        x, g, y = pm.Data("x", x), pm.Data("g", g), pm.Data("y", y)
    a, b = pm.Normal("a", 0, 1), pm.Normal("b", 0, 1)
    sa, sb = pm.HalfNormal("sa", 1), pm.HalfNormal("sb", 1)
    za, zb = pm.Normal("za", 0, 1, dims="site"), pm.Normal("zb", 0, 1, dims="site")
    mu = a + za[g] * sa + (b + zb[g] * sb) * x
    pm.Normal("obs", mu, pm.HalfNormal("sigma", 1), observed=y)
kwargs = {"freeze_model": False} if mode == "shared" else {}
if cache:
    kwargs["cache"] = True
start = time.perf_counter()
compiled = nutpie.compile_pymc_model(model, **kwargs)
compile_s = time.perf_counter() - start
start = time.perf_counter()
nutpie.sample(compiled, draws=200, tune=200, chains=2, progress_bar=False, seed=1)
print(json.dumps({"imports_s": imported, "compile_s": compile_s, "sampling_s": time.perf_counter() - start}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--cache", action="store_true", help="numba.cfunc(cache=True) as well")
    args = parser.parse_args()
    print("| data | data set | cache | imports s | compile s | sampling s |")
    print("|---|---:|---|---:|---:|---:|")
    for mode in ("constants", "shared"):
        for seed in (1, 2):
            for cache in (False, True) if args.cache else (False,):
                result = subprocess.run(
                    [sys.executable, "-c", CHILD, mode, str(seed), str(args.rows),
                     str(args.sites), "1" if cache else "0"],
                    capture_output=True, text=True,
                )  # fmt: skip
                lines = [x for x in result.stdout.splitlines() if x.startswith("{")]
                if result.returncode != 0 or not lines:
                    print(result.stderr[-2000:], file=sys.stderr)
                    continue
                r = json.loads(lines[-1])
                print(
                    f"| {mode} | {seed} | {'cache=True' if cache else '–'} | {r['imports_s']:.1f} "
                    f"| {r['compile_s']:.1f} | {r['sampling_s']:.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
