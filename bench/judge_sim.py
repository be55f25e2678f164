"""Judge simulation bench: rows for a good retrain to pass, A/A false fails, a +2.5 pp rejection
shift, and a release-level A/A; the paired (shadow) judge beside the unpaired ones, on the same
simulated counts in the same run.

Traffic is simulated from the real models: v1's and v2's scores on the 200 reference rows
(Paddle Inference, computed at start), each request one random reference row as the load
generator sends them, a 5 % canary (the stable version gets 19 rows for each candidate row),
latencies lognormal around 4 ms, no errors. Each sequence is one step's window, looked at again
and again as it grows, every look building on the previous one (``previous=``). Candidates:

* ``v2``: the good retrain (2 of the 200 reference rows decide differently, one each way);
* ``v1-copy``: A/A, identical to v1;
* ``shift``: v1 with 5 of its approved rows (its 5 highest-scoring approves) scored 0.55 and
  rejected: +2.5 pp rejections.

Judges, on the same counts at the same looks:

* ``paired``: this judge given the paired series a candidate served with ``--shadow v1``
  exports (flips by direction, score sums);
* ``unpaired``: this judge without them (its fallback);
* ``today``: the judge of ``--baseline-ref`` (default: the commit before paired analysis),
  extracted with ``git archive`` and run in a subprocess on the same seeds.

    .venv/bin/python bench/judge_sim.py                 # ~9 minutes here
    .venv/bin/python bench/judge_sim.py --only v2,shift --judges paired --alpha 0.01655
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODEL = "risk-score"
BASELINE_REF = "e0e1ec2"   # the last commit before the judge's rewrite (issue #10)


# ---- simulated traffic ---------------------------------------------------------------------

def model_scores() -> dict[str, np.ndarray]:
    """v1, v2 and the +2.5 pp shift on the 200 reference rows."""
    from paddle_canary.registry import Registry
    from paddle_canary.serving.predictor import Predictor

    reg = Registry(REPO / "model_registry")
    v1 = reg.card(MODEL, "v1")
    rows = v1.reference_inputs()
    s1 = Predictor(v1, device="cpu").predict(rows).astype(float)
    s2 = Predictor(reg.card(MODEL, "v2"), device="cpu").predict(rows).astype(float)
    shift = s1.copy()
    approves = np.flatnonzero(s1 < v1.decision_threshold)
    shift[approves[np.argsort(s1[approves])[-5:]]] = 0.55
    return {"v1": s1, "v2": s2, "v1-copy": s1.copy(), "shift": shift}


def _edges():
    from paddle_canary import telemetry

    return np.array(telemetry.SCORE_BUCKETS), np.array(telemetry.LATENCY_BUCKETS)


def _arm(rng, scores: np.ndarray, n: int, score_edges, lat_edges, threshold=0.5) -> dict:
    idx = rng.integers(0, len(scores), n)
    s = scores[idx]
    lat = 0.004 * rng.lognormal(0.0, 0.35, n)
    rej = float(np.sum(s >= threshold))
    return {"requests": float(n), "errors": 0.0, "invalid": 0.0, "approve": n - rej,
            "reject": rej,
            "score_buckets": np.bincount(np.searchsorted(score_edges, s), minlength=21)
            .astype(float),
            "score_sum": float(s.sum()), "score_count": float(n),
            "latency_buckets": np.bincount(np.searchsorted(lat_edges, lat), minlength=23)
            .astype(float),
            "latency_sum": float(lat.sum()), "latency_count": float(n)}, idx


def looks(seed: int, scores: dict, candidate: str, rows_per_look: int, n_looks: int,
          stable_ratio: float = 19.0):
    """Yield (stable totals, candidate totals, paired totals) after each look."""
    score_edges, lat_edges = _edges()
    rng = np.random.default_rng(seed)
    base = cand = None
    paired = np.zeros(6)    # rows, approve->reject, reject->approve, sum c, sum s, sum (c-s)^2
    for _ in range(n_looks):
        b, _ = _arm(rng, scores["v1"], int(round(rows_per_look * stable_ratio)), score_edges,
                    lat_edges)
        c, idx = _arm(rng, scores[candidate], rows_per_look, score_edges, lat_edges)
        cs, ss = scores[candidate][idx], scores["v1"][idx]
        paired += [len(idx), np.sum((cs >= 0.5) & (ss < 0.5)), np.sum((ss >= 0.5) & (cs < 0.5)),
                   cs.sum(), ss.sum(), np.sum((cs - ss) ** 2)]
        base = b if base is None else {k: base[k] + b[k] for k in b}
        cand = c if cand is None else {k: cand[k] + c[k] for k in c}
        yield base, cand, paired.copy()


def window(version: str, totals: dict, end: float, paired=None, shadow: str = "v1"):
    from paddle_canary.analysis.counts import WindowCounts

    fields = {k: (tuple(float(x) for x in v) if isinstance(v, np.ndarray) else v)
              for k, v in totals.items()}
    if paired is not None:
        from paddle_canary.analysis.counts import PairedCounts

        fields["paired"] = PairedCounts(shadow, *(float(x) for x in paired))
    return WindowCounts(model=MODEL, version=version, start=0.0, end=end, **fields)


# ---- one judge over one scenario -----------------------------------------------------------

SCENARIOS = {
    # name: candidate, rows per look (paired / unpaired), looks (paired / unpaired), stop on
    "v2": ("v2", (100, 1000), (60, 100), ("pass", "fail")),
    "aa": ("v1-copy", (100, 100), (100, 100), ()),
    "shift": ("shift", (100, 500), (30, 40), ("fail",)),
}


def run(judge_name: str, scenario: str, sequences: int, scores: dict,
        alpha: float = 0.05) -> list[dict]:
    """Per sequence: rows at the first pass and the first fail (None if never), the gates
    that failed first, and the looks made."""
    from paddle_canary.analysis import GateConfig, judge

    config = GateConfig.from_dict(None, {"alpha": alpha})
    candidate, rows, n_looks, stop_on = SCENARIOS[scenario]
    k = 0 if judge_name == "paired" else 1
    out = []
    for seq in range(sequences):
        rec = {"pass": None, "fail": None, "fail_gates": None, "looks": 0}
        prev = None
        for i, (b, c, p) in enumerate(looks(1000 + seq, scores, candidate, rows[k], n_looks[k])):
            end = float(i + 1)
            base = window("v1", b, end)
            cand = window(candidate, c, end, paired=p if judge_name == "paired" else None)
            if judge_name == "today":
                v = judge(base, cand, config, evaluated_at=end)
            else:
                v = judge(base, cand, config, evaluated_at=end, previous=prev)
                prev = v
            rec["looks"] += 1
            n = c["requests"]
            if v.status == "pass" and rec["pass"] is None:
                rec["pass"] = n
            if v.status == "fail" and rec["fail"] is None:
                rec["fail"] = n
                rec["fail_gates"] = v.failed_gates()
            if v.status in stop_on:
                break
        out.append(rec)
    return out


def _plus(done: tuple | None, window: tuple) -> tuple:
    """(stable, candidate, paired) totals: ``done`` and this window's added."""
    if done is None:
        return window
    (b0, c0, p0), (b, c, p) = done, window
    return {k: b0[k] + b[k] for k in b}, {k: c0[k] + c[k] for k in c}, p0 + p


def release_aa(releases: int, scores: dict, total_alpha: float, mode: str,
               looks_per_step: int = 10) -> dict:
    """Releases of 11 steps (5, 15, ..., 95, 100 %) of an identical candidate, paired judge,
    every step a fresh window looked at ``looks_per_step`` times; 1,000 requests a look.

    ``mode``: ``each`` - every step at ``total_alpha``; ``spent`` - the alpha spent over the
    steps (``spending.step_alpha``); ``carried`` - what releases do: the step windows spend half
    of it, and every look also judges the release so far (one window from the first step, at
    the other half, its running intersection kept across steps) and carries its pass or fail
    (``analysis.release_window.carry``)."""
    from paddle_canary.analysis import GateConfig, judge, spending
    from paddle_canary.analysis.release_window import carry

    steps = (5, 15, 25, 35, 45, 55, 65, 75, 85, 95, 100)
    config = GateConfig.from_dict()
    failed = 0
    step_fails = [0] * len(steps)
    for r in range(releases):
        any_fail = False
        done: tuple | None = None     # the release's totals before this step
        rel_prev = None
        clock = 0.0
        for i, w in enumerate(steps):
            if mode == "each":
                alpha = total_alpha
            else:
                alpha = spending.step_alpha(total_alpha / (2 if mode == "carried" else 1), i,
                                            len(steps))
            cfg = config.with_alpha(alpha)
            rel_cfg = config.with_alpha(total_alpha / 2)
            prev = None
            ratio = (100 - w) / w
            last = None
            for j, (b, c, p) in enumerate(looks(50_000 + 100 * r + i, scores, "v1-copy",
                                                10 * w, looks_per_step, stable_ratio=ratio)):
                clock += 1.0
                v = judge(window("v1", b, j + 1.0), window("v1-copy", c, j + 1.0, paired=p),
                          cfg, evaluated_at=j + 1.0, previous=prev)
                prev = v
                last = (b, c, p)
                if mode == "carried":
                    rb, rc, rp = _plus(done, (b, c, p))
                    rv = judge(window("v1", rb, clock), window("v1-copy", rc, clock, paired=rp),
                               rel_cfg, evaluated_at=clock, previous=rel_prev)
                    rel_prev = rv
                    v = carry(v, rv, config.min_samples)
                if v.status == "fail":
                    step_fails[i] += 1
                    any_fail = True
                    break
            if any_fail:
                break
            done = _plus(done, last)
        failed += any_fail
    return {"releases": releases, "failed": failed, "step_fails": step_fails,
            "alpha": total_alpha, "mode": mode}


# ---- reporting -------------------------------------------------------------------------------

def _q(values, q):
    vals = [v for v in values if v is not None]
    return None if not vals else float(np.percentile(vals, q))


def summary(scenario: str, judge_name: str, recs: list[dict]) -> dict:
    n = len(recs)
    fails = [r["fail"] for r in recs]
    passes = [r["pass"] for r in recs]
    gates: dict[str, int] = {}
    for r in recs:
        for g in r["fail_gates"] or []:
            gates[g] = gates.get(g, 0) + 1
    return {
        "scenario": scenario, "judge": judge_name, "sequences": n,
        "looks": int(sum(r["looks"] for r in recs)),
        "failed": sum(f is not None for f in fails),
        "passed": sum(p is not None for p in passes),
        "pass_rows_median": _q(passes, 50), "pass_rows_p90": _q(passes, 90),
        "fail_rows_median": _q(fails, 50), "fail_rows_p95": _q(fails, 95),
        "failed_within_3000": sum(f is not None and f <= 3000 for f in fails) / n,
        "failed_within_20000": sum(f is not None and f <= 20000 for f in fails) / n,
        "first_failing_gates": gates,
    }


def line(s: dict) -> str:
    def f(x):
        return "-" if x is None else f"{x:,.0f}"
    return (f"{s['scenario']:<6} {s['judge']:<9} seqs {s['sequences']:>4}  looks {s['looks']:>6}"
            f"  passed {s['passed']:>4} (rows median {f(s['pass_rows_median'])}, p90 "
            f"{f(s['pass_rows_p90'])})  failed {s['failed']:>4} (rows median "
            f"{f(s['fail_rows_median'])}, p95 {f(s['fail_rows_p95'])}; within 3,000: "
            f"{s['failed_within_3000']:.0%}, 20,000: {s['failed_within_20000']:.0%}) "
            f"{s['first_failing_gates'] or ''}")


# ---- entry points ----------------------------------------------------------------------------

def worker(args) -> int:
    """Run the judge importable here (today's, via PYTHONPATH) on the given scenarios."""
    scores = {k: np.asarray(v) for k, v in json.loads(Path(args.scores).read_text()).items()}
    results = {}
    for scenario, seqs in json.loads(args.worker):
        results[scenario] = run("today", scenario, seqs, scores, args.alpha)
    Path(args.out).write_text(json.dumps(results))
    return 0


def today_judge(ref: str, jobs: list, scores: dict, tmp: Path, alpha: float) -> dict:
    old = tmp / "baseline"
    old.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "plugins/paddle_canary"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
    (tmp / "scores.json").write_text(json.dumps({k: v.tolist() for k, v in scores.items()}))
    out = tmp / "today.json"
    env = {**os.environ, "PYTHONPATH": str(old / "plugins")}
    subprocess.run([sys.executable, __file__, "--worker", json.dumps(jobs), "--scores",
                    str(tmp / "scores.json"), "--out", str(out), "--alpha", str(alpha)],
                   env=env, check=True)
    return json.loads(out.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="v2,aa,shift,release",
                    help="scenarios: v2, aa, shift, release (comma-separated)")
    ap.add_argument("--sequences", type=int, default=200)
    ap.add_argument("--unpaired-v2-sequences", type=int, default=40,
                    help="sequences for the unpaired judges on v2 (each needs ~50,000 rows)")
    ap.add_argument("--releases", type=int, default=100)
    ap.add_argument("--baseline-ref", default=BASELINE_REF)
    ap.add_argument("--alpha", type=float, default=0.05,
                    help="the step's alpha (0.05: the card's; 0.01655: the first of 11 steps "
                         "with analysis.spending.step_alpha)")
    ap.add_argument("--judges", default="paired,unpaired,today")
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--scores", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)

    only = args.only.split(",")
    t_all = time.time()
    scores = model_scores()
    jobs = [(s, args.unpaired_v2_sequences if s == "v2" else args.sequences)
            for s in ("v2", "aa", "shift") if s in only]
    results: dict = {"summaries": [], "release": []}
    judges = args.judges.split(",")
    results["alpha"] = args.alpha
    with tempfile.TemporaryDirectory(prefix="judge-sim-") as tmp:
        t0 = time.time()
        today = (today_judge(args.baseline_ref, jobs, scores, Path(tmp), args.alpha)
                 if jobs and "today" in judges else {})
        results["today_seconds"] = time.time() - t0
    for scenario, seqs in jobs:
        for judge_name in judges:
            n = args.sequences if judge_name == "paired" else seqs
            t0 = time.time()
            recs = today[scenario] if judge_name == "today" else run(judge_name, scenario, n,
                                                                      scores, args.alpha)
            s = summary(scenario, judge_name, recs)
            s["seconds"] = time.time() - t0
            results["summaries"].append(s)
            print(line(s), flush=True)
    if "release" in only:
        for mode in ("carried", "spent", "each"):
            t0 = time.time()
            r = release_aa(args.releases, scores, 0.05, mode)
            r["seconds"] = time.time() - t0
            results["release"].append(r)
            print(f"release A/A, paired judge, alpha 0.05 ({mode}), 11 steps x 10 looks: "
                  f"{r['failed']} of {r['releases']} releases failed "
                  f"(per step: {r['step_fails']})", flush=True)
    results["bench_seconds"] = time.time() - t_all
    print(f"bench {results['bench_seconds']:.0f} s")
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
