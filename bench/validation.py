"""What the Great Expectations suite costs offline validation, beside the numpy checks it
replaced, measured in the same run on the same numbers.

1. Import: ``import great_expectations`` (+ pandas) in a fresh interpreter, vs ``import numpy``.
2. One suite run (96 expectations on risk-score: v2's scores on stable v1's reference rows),
   warm, median of ``--rounds``; vs the numpy checks of the same facts (finite, in [0, 1],
   columns/dtype/no nulls/ranges of the inputs, PSI, decision agreement).
3. One whole ``compare_with_baseline`` (loads both models, scores, suite, timing), warm.

    .venv/bin/python bench/validation.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np

from paddle_canary.registry import Registry, default_root, score_histogram
from paddle_canary.serving.predictor import Predictor
from paddle_canary.validation.compare import compare_with_baseline
from paddle_canary.validation.suite import run_suite

MODEL = "risk-score"


def _import_s(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=300)
    return float(out.stdout.split()[-1])


def _numpy_checks(card, base_card, rows, scores, base) -> bool:
    from paddle_canary.analysis.stats import psi

    lo, hi = rows.min(axis=0), rows.max(axis=0)
    ok = rows.shape[1] == card.n_features and rows.dtype == np.float32
    ok &= bool(np.isfinite(rows).all() and ((rows >= lo) & (rows <= hi)).all())
    ok &= bool(np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all())
    value = psi(score_histogram(scores)["counts"], score_histogram(base)["counts"])
    agree = np.mean([card.decision(c) == base_card.decision(b) for c, b in zip(scores, base)])
    return ok and value <= 0.25 and agree >= 0.9


def _median_s(fn, rounds: int) -> float:
    fn()  # warm
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args(argv)
    reg = Registry(default_root())
    v1, v2 = reg.card(MODEL, "v1"), reg.card(MODEL, "v2")
    rows = v1.reference_inputs()
    scores = Predictor(v2, device="cpu").predict(rows).astype(np.float64).ravel()
    base = Predictor(v1, device="cpu").predict(rows).astype(np.float64).ravel()

    imports = {m: _import_s(m) for m in ("numpy", "pandas", "great_expectations")}
    suite = _median_s(lambda: run_suite(v2, v1, inputs=rows, scores=scores,
                                        baseline_scores=base), args.rounds)
    expectations = run_suite(v2, v1, inputs=rows, scores=scores,
                             baseline_scores=base)["statistics"]["evaluated"]
    numpy_s = _median_s(lambda: _numpy_checks(v2, v1, rows, scores, base), args.rounds)
    whole = _median_s(lambda: compare_with_baseline(v2, v1), max(3, args.rounds // 2))

    print(f"import (fresh interpreter): numpy {imports['numpy']:.2f} s, pandas "
          f"{imports['pandas']:.2f} s, great_expectations {imports['great_expectations']:.2f} s")
    print(f"checks of v2 vs v1 on {len(rows)} rows, warm, median of {args.rounds}:")
    print(f"  GX suite ({expectations} expectations)  {suite * 1000:8.1f} ms")
    print(f"  numpy, same facts           {numpy_s * 1000:8.1f} ms   (baseline)")
    print(f"  ratio                       {suite / numpy_s:8.0f}x")
    print(f"whole compare_with_baseline (load both, score, suite, time predictor): "
          f"{whole:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
