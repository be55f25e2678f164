"""The rollout report: one self-contained HTML page (inline CSS and SVG) plus a JSON summary.

``write_report(plan, events, paths)`` writes
``<reports_dir>/<model>/<run>.html`` and ``<run>.json`` atomically (temp file + rename) and
returns the HTML path. The page shows the outcome and the time from the first fault signal to
0 % first, then the candidate's weight over time, P95 latency and rejection rate per version,
score histograms, each gate's effect over time against its threshold, and every final verdict.
It works from the journal alone; Prometheus adds detail when it answers.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

from paddle_canary.errors import UserError
from paddle_canary.files import replace_file
from paddle_canary.registry.names import check_model_name
from paddle_canary.release import events as ev
from paddle_canary.release import journal
from paddle_canary.report import data, prom, svg

WIDE, NARROW = 1120, 552

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#22252a;margin:0;
background:#f3f4f6}
main{max-width:1160px;margin:0 auto;padding:20px 20px 60px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 10px}
h3{font-size:14px;margin:16px 0 6px}
.sub{color:#6b7079;font-size:13px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{background:#fff;border:1px solid #dde0e5;border-radius:8px;padding:10px 14px;min-width:170px;
flex:1}
.card .k{font-size:12px;color:#6b7079;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:22px;font-weight:650;margin-top:2px}
.card .n{font-size:12px;color:#4a4f57;margin-top:3px}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;font-size:13px;
font-weight:600;vertical-align:middle}
.promoted,.pass{background:#2e9d4e}.rolled_back,.failed,.fail{background:#d1342f}
.refused{background:#a2541b}.unfinished,.inconclusive{background:#8a8f98}
.charts{display:flex;flex-wrap:wrap;gap:12px}
svg{max-width:100%;height:auto}
.wide svg{width:100%}
.charts svg,.wide svg{background:#fff;border:1px solid #dde0e5;border-radius:8px}
.note{font-size:12px;color:#6b7079;margin:4px 0 0}
table{border-collapse:collapse;background:#fff;font-size:13px;width:100%;margin-bottom:10px}
th,td{border:1px solid #dde0e5;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f7f8fa;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.st{font-weight:600}.st.pass{color:#2e9d4e;background:none}.st.fail{color:#d1342f;background:none}
.st.inconclusive{color:#6b7079;background:none}
.checks{color:#4a4f57;font-size:12px}
pre{background:#fff;border:1px solid #dde0e5;padding:8px;font-size:12px;overflow:auto}
details summary{cursor:pointer;margin:8px 0}
.why{background:#fff;border:1px solid #dde0e5;border-left:5px solid #8a8f98;border-radius:6px;
padding:8px 12px;font-size:14px;margin:0 0 8px}
.rolled_back-box,.failed-box{border-left-color:#d1342f}.refused-box{border-left-color:#a2541b}
"""


def safe_name(model: str, run_id: str) -> str:
    """The file stem of a run's report: the same as its journal's."""
    return journal.journal_path(Path("."), model, run_id).stem


def report_paths(reports_dir: Path, model: str, run_id: str) -> tuple[Path, Path]:
    stem = safe_name(check_model_name(model), run_id)
    folder = Path(reports_dir) / model
    return folder / f"{stem}.html", folder / f"{stem}.json"


def write_report(plan: dict[str, Any], events: list[dict[str, Any]], paths,
                 *, prometheus_url: str | None = None, run_url: str | None = None) -> Path:
    """Write the HTML page and the JSON summary of one release; return the HTML path.

    ``prometheus_url`` defaults to ``paths.prometheus_url``; pass ``""`` to skip Prometheus.
    """
    html_path, json_path = report_paths(paths.reports_dir, plan.get("model"),
                                        str(plan.get("run_id") or ""))
    url = paths.prometheus_url if prometheus_url is None else prometheus_url
    summary = data.summary(plan, events)
    metrics = _metrics(plan, events, url)
    page = render(plan, events, summary, metrics, run_url=run_url)
    summary.update(report=html_path.name, generated_at=time.time(), metrics={
        "p95_source": metrics["p95_source"], "rejection_source": metrics["rejection_source"],
        "score_rows": {v: sum(c) for v, c in (metrics["scores"].get("counts") or {}).items()},
        "note": metrics.get("note")})
    replace_file(json_path, json.dumps(summary, indent=2, default=str) + "\n")
    replace_file(html_path, page)
    return html_path


def plan_of_journal(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The plan a journal starts with. Raises UserError for a journal without one (a refused
    request)."""
    plan = next((r["plan"] for r in records
                 if r.get("event") == ev.PLAN and isinstance(r.get("plan"), dict)), None)
    if plan is None:
        raise UserError("the journal has no plan event: the release was refused before it started")
    return plan


def report_from_journal(records: list[dict[str, Any]], settings, *,
                        prometheus_url: str | None = None, run_url: str | None = None) -> Path:
    """Write the report of the release whose journal ``records`` are (their plan names the
    model and the run); what it shows depends on the journal alone, plus Prometheus when it
    answers. ``run_url``: the release's run in Airflow, linked from the page. Raises UserError
    for a journal without a plan (a refused request)."""
    return write_report(plan_of_journal(records), records, settings,
                        prometheus_url=prometheus_url, run_url=run_url)


def page_from_journal(records: list[dict[str, Any]], settings, *, run_url: str | None = None,
                      refresh_s: int | None = None) -> str:
    """The report page of a journal, rendered now and written nowhere (the live report Airflow
    serves). ``refresh_s``: while the release is unfinished, the page reloads itself this
    often."""
    plan = plan_of_journal(records)
    summary = data.summary(plan, records)
    metrics = _metrics(plan, records, settings.prometheus_url)
    live = refresh_s if data.outcome(records)["outcome"] == ev.UNFINISHED else None
    return render(plan, records, summary, metrics, run_url=run_url, refresh_s=live)


def _metrics(plan: dict[str, Any], events: list[dict[str, Any]], url: str) -> dict[str, Any]:
    """Per-version figures: the judge's looks first, Prometheus for what they lack."""
    versions = [v for v in (plan.get("baseline"), plan.get("candidate")) if v]
    looked_p95 = data.version_series(events, data.P95_KEYS)
    looked_rej = data.version_series(events, data.REJECTION_KEYS)
    out: dict[str, Any] = {
        "p95_ms": _by_version(plan, looked_p95), "p95_source": "judge",
        "rejection": _by_version(plan, looked_rej), "rejection_source": "judge",
        "scores": {"edges": [], "counts": {}}, "note": None,
    }
    start, end = data.window(events)
    if not url or not versions or not events:
        out["note"] = "Prometheus not asked" if not url else None
        return out
    if data.outcome(events)["outcome"] == "unfinished":
        end = max(end, time.time())
    live = prom.release_metrics(url, plan.get("model", ""), versions, start, end)
    out["note"] = live["note"]
    if not any(out["p95_ms"].values()):
        out["p95_ms"], out["p95_source"] = live["p95_ms"], "prometheus"
    if not any(out["rejection"].values()):
        out["rejection"], out["rejection_source"] = live["rejection"], "prometheus"
    out["scores"] = live["scores"]
    return out


def _by_version(plan, sides: dict[str, list]) -> dict[str, list]:
    return {plan.get("baseline") or "baseline": sides["baseline"],
            plan.get("candidate") or "candidate": sides["candidate"]}


# ---- the page -----------------------------------------------------------------------------

def render(plan: dict[str, Any], events: list[dict[str, Any]], summary: dict[str, Any],
           metrics: dict[str, Any], *, run_url: str | None = None,
           refresh_s: int | None = None) -> str:
    start, end = data.window(events)
    model, cand, base = (str(plan.get(k) or "?") for k in ("model", "candidate", "baseline"))
    title = f"{model}: {cand} vs stable {base}"
    run = escape(str(plan.get("run_id") or "?"))
    if run_url:
        run = f"<a href='{escape(run_url, quote=True)}'>{run}</a> in Airflow"
    live = (f" · live: reloads every {refresh_s} s" if refresh_s else "")
    body = [
        f"<h1>{escape(title)} <span class='badge {escape(summary['outcome'])}'>"
        f"{escape(data.outcome(events)['label'])}</span></h1>",
        f"<div class='sub'>run {run} · {_when(start)} → {_when(end)} (UTC){live}</div>",
        _cards(plan, events, summary),
        _why(events),
        "<h2>Candidate traffic</h2>",
        f"<div class='wide'>{_weight_chart(plan, events, summary, start, end)}</div>",
        _steps_table(plan, events, summary, start),
        "<h2>Per version</h2>",
        f"<div class='charts'>{_p95_chart(plan, events, metrics, start, end)}"
        f"{_rejection_chart(plan, events, metrics, start, end)}{_score_chart(plan, metrics)}"
        "</div>",
        _sources_note(metrics),
        "<h2>Gates over time</h2>",
        _gate_charts(plan, events, start, end),
        "<h2>Verdicts</h2>",
        _verdict_tables(plan, events, start),
        _approvals_table(summary, start),
        _manual_table(summary, start),
        _window_table(summary, start),
        "<h2>Plan</h2>",
        _plan_block(plan),
        _event_log(events, start),
        f"<p class='note'>Generated {_when(time.time())} UTC by paddle-canary.</p>",
    ]
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            + (f"<meta http-equiv='refresh' content='{int(refresh_s)}'>" if refresh_s else "") +
            f"<title>{escape('Release report: ' + title)}</title><style>{CSS}</style></head>"
            f"<body><main>{''.join(body)}</main></body></html>\n")


def _when(ts: float | None) -> str:
    if not ts:
        return "?"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _offset(ts: float | None, start: float) -> str:
    return "" if ts is None else "+" + svg.fmt_duration(ts - start)


def _card(key: str, value: str, note: str = "") -> str:
    return (f"<div class='card'><div class='k'>{escape(key)}</div><div class='v'>{escape(value)}"
            f"</div>{f'<div class=n>{escape(note)}</div>' if note else ''}</div>")


def _why(events) -> str:
    out = data.outcome(events)
    if not out["reason"]:
        return ""
    return (f"<div class='why {escape(out['outcome'])}-box'><b>Why {escape(out['label'])}:</b> "
            f"{escape(str(out['reason']))}</div>")


def _iso_when(text: Any) -> str:
    """An ISO time from the journal as the page shows times (seconds, no offset)."""
    try:
        t = datetime.fromisoformat(str(text))
    except ValueError:
        return str(text)
    return _when((t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp())


def _asked_when(a: dict[str, Any]) -> str:
    """'before 50 %' (an approval before a step) or 'after 5 %' (a confirmation of a step
    whose analysis stayed inconclusive)."""
    return f"{a.get('kind') or 'before'} {a.get('weight')} %"


def _short(text: str, n: int = 90) -> str:
    return text if len(text) <= n else text[:n - 1].rstrip() + "…"


def _cards(plan, events, summary) -> str:
    out = data.outcome(events)
    outcome_note = _short(str(out["reason"] or ""))
    if out["outcome"] == ev.PROMOTED_OUTCOME:
        torn = next((e for e in events if e.get("event") == ev.TORN_DOWN), None)
        sched = next((e for e in events if e.get("event") == ev.TEARDOWN_SCHEDULED), None)
        outcome_note = (f"{plan.get('baseline')} torn down" if torn else
                        f"{plan.get('baseline')} teardown at {_iso_when(sched.get('at'))} UTC"
                        if sched else "")
    secs = summary["fault_to_zero_s"]
    ftz_value = f"{secs:.1f} s" if secs is not None else "—"
    ftz_note = (summary["fault_signal"] or "") if secs is not None else (
        summary["fault_to_zero_note"] or "")
    approvals = [a for a in summary["approvals"] if a.get("answer")]
    appr_value = f"{len(approvals)} answered" if summary["approvals"] else "none asked"
    appr_note = "; ".join(f"{a['answer']} by {a.get('by') or '?'} {_asked_when(a)}"
                          for a in approvals)
    pending = len(summary["approvals"]) - len(approvals)
    if pending:
        appr_note += ("; " if appr_note else "") + f"{pending} unanswered"
    duration = summary["duration_s"]
    return "<div class='cards'>" + "".join([
        _card("outcome", out["label"], outcome_note),
        _card("fault → 0 % traffic", ftz_value, ftz_note),
        _card("steps reached", f"{summary['steps_reached']} of {len(summary['steps_planned'])}",
              f"max {summary['max_weight']} % of users"),
        _card("duration", svg.fmt_duration(duration) if duration is not None else "—",
              f"{summary['looks']} judge looks"),
        _card("approvals", appr_value, appr_note),
    ]) + "</div>"


# ---- charts -------------------------------------------------------------------------------

def _weight_chart(plan, events, summary, start, end) -> str:
    points = data.weight_points(events)
    chart = svg.Chart("Candidate weight (% of users)", width=WIDE, height=270, y_min=0,
                      y_max=108, x_label="time since the release started",
                      x_range=(0, max(end - start, 1) * 1.02))
    chart.line([(t - start, w) for t, w in points], svg.CANDIDATE, "candidate weight", step=True,
               width=2.4)
    if summary["fault_at"] is not None and summary["zero_at"] is not None:
        chart.vspan(summary["fault_at"] - start, summary["zero_at"] - start, svg.FAIL,
                    f"fault → 0 % ({summary['fault_to_zero_s']:.1f} s)")
    shown: set[str] = set()
    for e in data.ordered(events):
        kind, t = e.get("event"), data.ts_of(e)
        y = data.weight_at(points, t + 1e-6)
        if kind == ev.LOOK and data.status_of(e.get("verdict")) == "fail":
            kind = "fault"
            if kind in shown:
                continue
        first = kind not in shown  # label the first of each kind; the rest have tooltips
        if kind == ev.APPROVAL_REQUESTED:
            chart.marker(t - start, y, svg.THRESHOLD, shape="ring",
                         title=f"approval asked {data.approval_kind(e.get('task'))} "
                               f"{e.get('weight')} % ({_when(t)})")
        elif kind == ev.APPROVAL_ANSWERED:
            # Only the first answer is labelled (answers close in time would overlap); every
            # marker has its tooltip and the Approvals table lists them all.
            ok = str(e.get("answer", "")).lower().startswith("approv")
            who = data.person(e.get("by")) or "?"
            chart.marker(t - start, y, svg.PASS if ok else svg.FAIL, shape="triangle",
                         title=f"{e.get('answer')} by {who} ({_when(t)})",
                         text=f"{e.get('answer')} ({who})" if first else "")
        elif kind == ev.FAILURE:
            chart.marker(t - start, data.weight_at(points, t), svg.FAIL, shape="cross",
                         title=f"failure in {e.get('task')}: {e.get('reason')}")
        elif kind == ev.CUT:
            chart.marker(t - start, 0, svg.FAIL, shape="diamond",
                         title=f"traffic cut to 0 % ({_when(t)}): {e.get('reason')}",
                         text="0 %" if first else "")
        elif kind == ev.PROMOTED:
            chart.marker(t - start, 100, svg.PASS, shape="circle", title=f"promoted ({_when(t)})",
                         text="promoted")
        elif kind == "fault":
            chart.marker(t - start, y, svg.FAIL, shape="cross",
                         title=f"first failing look ({_when(t)}): "
                               f"{data.failing_gates(e['verdict'])}",
                         text=f"{data.failing_gates(e['verdict']) or 'gate'} failed")
        else:
            continue
        shown.add(kind)
    for kind, label, colour, shape in (
            (ev.APPROVAL_REQUESTED, "approval asked", svg.THRESHOLD, "ring"),
            (ev.APPROVAL_ANSWERED, "approval answered", svg.PASS, "triangle"),
            ("fault", "first failing look", svg.FAIL, "cross"),
            (ev.FAILURE, "task failure", svg.FAIL, "cross"),
            (ev.CUT, "cut to 0 %", svg.FAIL, "diamond"),
            (ev.PROMOTED, "promoted", svg.PASS, "circle")):
        if kind in shown:
            chart.legend(label, colour, shape)
    return chart.render()


def _step_guides(chart: svg.Chart, events, start: float) -> svg.Chart:
    """Dotted lines where the candidate's weight changed, labelled with the new weight."""
    previous = None
    for t, w in data.weight_points(events)[1:-1]:
        if w != previous:
            chart.vline(t - start, f"{w} %")
        previous = w
    return chart


def _version_chart(title, series: dict[str, list], plan, events, start, end, *, y_label: str,
                   scale: float = 1.0, threshold: tuple[float, str] | None = None,
                   y_format=svg.fmt_number) -> str:
    chart = svg.Chart(title, width=NARROW, y_min=0, y_label=y_label,
                      x_range=(0, max(end - start, 1)), y_format=y_format)
    colours = {plan.get("baseline"): svg.STABLE, plan.get("candidate"): svg.CANDIDATE}
    for version, pts in series.items():
        role = "stable" if version == plan.get("baseline") else "candidate"
        chart.line([(t - start, v * scale) for t, v in pts], colours.get(version, svg.MUTED),
                   f"{version} ({role})", dots=len(pts) < 40)
    if threshold and not chart.empty:
        chart.hline(threshold[0], svg.THRESHOLD, threshold[1])
    return _step_guides(chart, events, start).render()


def _p95_chart(plan, events, metrics, start, end) -> str:
    max_ms = data.number(((plan.get("gates") or {}).get("latency_p95") or {}).get("max_ms"))
    return _version_chart("P95 latency (ms)", metrics["p95_ms"], plan, events, start, end,
                          y_label="ms", threshold=(max_ms, f"limit {max_ms:g} ms")
                          if max_ms else None)


def _rejection_chart(plan, events, metrics, start, end) -> str:
    return _version_chart("Rejection rate (%)", metrics["rejection"], plan, events, start, end,
                          y_label="% of scored rows", scale=100.0)


def _score_chart(plan, metrics) -> str:
    scores = metrics.get("scores") or {}
    counts = scores.get("counts") or {}
    series = []
    for version, colour, role in ((plan.get("baseline"), svg.STABLE, "stable"),
                                  (plan.get("candidate"), svg.CANDIDATE, "candidate")):
        if version in counts:
            series.append((f"{version} ({role})", colour, counts[version]))
    return svg.histogram_chart("Score distribution over the release", scores.get("edges") or [],
                               series, width=NARROW, x_label="score (share of each version's rows)")


def _sources_note(metrics) -> str:
    bits = [f"P95 from {'the judge’s looks' if metrics['p95_source'] == 'judge' else 'Prometheus'}",
            f"rejection rate from "
            f"{'the judge’s looks' if metrics['rejection_source'] == 'judge' else 'Prometheus'}",
            "score histograms from Prometheus"]
    note = "Sources: " + "; ".join(bits) + "."
    if metrics.get("note"):
        note += f" {metrics['note']}."
    return f"<p class='note'>{escape(note)}</p>"


def _gate_charts(plan, events, start, end) -> str:
    gates = data.gate_names(events)
    if not gates:
        return ("<div class='charts'>" + svg.Chart("Gate effects", width=NARROW).render(
            "no judge looks recorded") + "</div>")
    out = []
    for gate in gates:
        series = data.effect_series(events, gate)
        charts = []
        for s in series or [{"name": gate, "unit": "", "limit": None, "points": []}]:
            charts.append(_effect_chart(gate, s, events, start, end))
        out.append(f"<h3>{escape(gate)}</h3><div class='charts'>{''.join(charts)}</div>")
    out.append("<p class='note'>Each dot is one look of the judge (colour = that look's status); "
               "the band is its always-valid interval; dashed lines are the limits.</p>")
    return "".join(out)


def _effect_chart(gate: str, s: dict[str, Any], events, start: float, end: float) -> str:
    unit = f" ({s['unit']})" if s["unit"] else ""
    name = s["name"] if s["name"] != gate else "effect"
    percent = s["unit"] == "share"
    chart = svg.Chart(f"{gate} · {name}{unit}", width=NARROW, height=210,
                      x_range=(0, max(end - start, 1)),
                      y_format=(lambda v: f"{v * 100:.3g}%") if percent else svg.fmt_number)
    pts = s["points"]
    with_iv = [p for p in pts if p[2] is not None and p[3] is not None]
    chart.band([p[0] - start for p in with_iv], [p[2] for p in with_iv], [p[3] for p in with_iv],
               svg.CANDIDATE, "interval")
    effects = [(p[0] - start, p[1]) for p in pts if p[1] is not None]
    chart.line(effects, svg.INK, "effect", width=1.2)
    for p in pts:
        if p[1] is not None:
            chart.marker(p[0] - start, p[1], svg.STATUS_COLOURS.get(p[4], svg.MUTED),
                         title=f"{_when(p[0])}: {p[4]} effect {svg.fmt_number(p[1])}")
    limit = s.get("limit")
    if limit is not None and not chart.empty:
        chart.hline(limit, svg.THRESHOLD, f"limit {svg.fmt_number(limit)}")
        if s["name"] in data.TWO_SIDED_CHECKS:
            chart.hline(-limit, svg.THRESHOLD)
    return _step_guides(chart, events, start).render("no looks with figures")


# ---- tables -------------------------------------------------------------------------------

def _status(s: Any) -> str:
    s = str(s or "")
    return f"<span class='st {escape(s)}'>{escape(s or '—')}</span>"


def _count(v: Any) -> str:
    f = data.number(v)
    return "—" if f is None else f"{f:,.0f}"


def _fmt(v: Any) -> str:
    f = data.number(v)
    return "—" if f is None else svg.fmt_number(f)


def _steps_table(plan, events, summary, start) -> str:
    applied = {}
    for e in data.ordered(events):
        if e.get("event") == ev.WEIGHT and e.get("weight") not in applied:
            applied[e.get("weight")] = data.ts_of(e)
    verdicts = {}
    for v in data.final_verdicts(plan, events):
        verdicts[v["weight"]] = v["verdict"]
    before = {a.get("weight"): a for a in summary["approvals"] if a.get("kind") != "after"}
    after = {a.get("weight"): a for a in summary["approvals"] if a.get("kind") == "after"}

    def answer(a) -> str:
        if a.get("answer") is None:
            return "pending"
        return f"{escape(str(a.get('answer')))} by {escape(str(a.get('by') or '?'))}"

    rows = []
    for i, w in enumerate(summary["steps_planned"], 1):
        verdict = verdicts.get(w)
        cell = _status(verdict.get("status")) if verdict else ""
        if w in after:
            cell += f" · confirmation: {answer(after[w])}"
        rows.append(
            f"<tr><td class=num>{i}</td><td class=num>{w} %</td>"
            f"<td>{escape(_offset(applied.get(w), start)) if w in applied else 'not reached'}</td>"
            f"<td>{cell}</td><td>{answer(before[w]) if w in before else ''}</td></tr>")
    if not rows:
        return "<p class='note'>The plan lists no steps.</p>"
    return ("<table><tr><th>step</th><th>weight</th><th>applied</th><th>final verdict</th>"
            "<th>approval before it</th></tr>" + "".join(rows) + "</table>")


def _verdict_tables(plan, events, start) -> str:
    """One table per step: its final verdict gate by gate; the looks behind it (and the
    verdicts of the step's extensions) folded under it, one row each."""
    finals = data.final_verdicts(plan, events)
    if not finals:
        return "<p class='note'>No step reached a final verdict.</p>"
    steps: list[list[dict[str, Any]]] = []
    for v in finals:  # the verdicts of one analysis task (extensions included) are one step
        if steps and steps[-1][-1]["task"] == v["task"]:
            steps[-1].append(v)
        else:
            steps.append([v])
    all_looks = data.looks(events)
    out, since = [], float("-inf")
    for group in steps:
        v = group[-1]
        verdict = v["verdict"]
        extended = len(group) - 1
        head = (f"<h3>{escape(str(v['task']))} at {v['weight']} % · {_status(verdict.get('status'))}"
                f" <span class='sub'>{escape(_offset(v['ts'], start))}"
                f"{f' · extended {extended}×' if extended else ''}</span></h3>")
        rows = []
        for g in data.gate_rows(verdict):
            iv = data.interval_of(g)
            b, c = data.samples_of(g)
            checks = "".join(
                f"<div class='checks'>{escape(str(ch.get('name')))}: {escape(str(ch.get('status')))}"
                f", {_fmt(ch.get('effect'))} {escape(str(ch.get('unit') or ''))}"
                f" (limit {_fmt(ch.get('limit'))})</div>"
                for ch in g.get("checks") or [] if isinstance(ch, dict))
            rows.append(
                f"<tr><td>{escape(str(g.get('gate')))}</td><td>{_status(g.get('status'))}</td>"
                f"<td class=num>{_fmt(g.get('effect'))}</td>"
                f"<td class=num>{'[' + _fmt(iv[0]) + ', ' + _fmt(iv[1]) + ']' if iv else '—'}</td>"
                f"<td class=num>{_count(b)} / {_count(c)}</td>"
                f"<td>{escape(str(g.get('reason') or ''))}{checks}</td></tr>")
        reason = verdict.get("reason")
        looks = [(t, lv) for t, lv in all_looks if since < t <= v["ts"] + 1e-6]
        since = v["ts"]
        out.append(head + (f"<p class='note'>{escape(str(reason))}</p>" if reason else "") +
                   "<table><tr><th>gate</th><th>status</th><th>effect</th><th>interval</th>"
                   "<th>samples (stable / candidate)</th><th>reason</th></tr>" + "".join(rows) +
                   "</table>" + _looks_behind(looks, group[:-1], start))
    return "".join(out)


def _looks_behind(looks, earlier, start) -> str:
    """The looks of one step (and its extensions' verdicts), folded: one row each."""
    if not looks and not earlier:
        return ""
    rows = []
    for t, verdict in looks:
        b = c = None
        for g in data.gate_rows(verdict):
            gb, gc = (data.number(x) for x in data.samples_of(g))
            b = gb if gb is not None and (b is None or gb > b) else b
            c = gc if gc is not None and (c is None or gc > c) else c
        gates = ", ".join(f"{g.get('gate')} {g.get('status')}" for g in data.gate_rows(verdict))
        rows.append(f"<tr><td class=num>{escape(_offset(t, start))}</td>"
                    f"<td>{_status(verdict.get('status'))}</td>"
                    f"<td class=num>{_count(b)} / {_count(c)}</td><td>{escape(gates)}</td></tr>")
    ext = (f"; {len(earlier)} inconclusive verdict{'s' if len(earlier) > 1 else ''} extended the "
           "step" if earlier else "")
    return (f"<details><summary>{len(looks)} look{'s' if len(looks) != 1 else ''} behind this "
            f"verdict{ext}</summary><table><tr><th>time</th><th>status</th>"
            "<th>rows (stable / candidate)</th><th>gates</th></tr>" + "".join(rows) +
            "</table></details>")


def _approvals_table(summary, start) -> str:
    if not summary["approvals"]:
        return ""
    rows = "".join(
        f"<tr><td>{escape(str(a.get('task')))}</td><td>{escape(_asked_when(a))}</td>"
        f"<td>{escape(_offset(a.get('requested_at'), start))}</td>"
        f"<td>{escape(str(a.get('answer') or 'pending'))}</td><td>{escape(str(a.get('by') or ''))}</td>"
        f"<td>{escape(_offset(a.get('answered_at'), start))}</td></tr>" for a in summary["approvals"])
    return ("<h2>Approvals</h2><table><tr><th>task</th><th>for</th><th>asked</th>"
            "<th>answer</th><th>by</th><th>answered</th></tr>" + rows + "</table>")


def _manual_table(summary, start) -> str:
    if not summary.get("manual"):
        return ""
    rows = "".join(
        f"<tr><td class=num>{escape(_offset(m.get('at'), start))}</td>"
        f"<td>{escape(str(m.get('action')))}</td><td>{escape(str(m.get('by') or ''))}</td>"
        f"<td>{escape(str(m.get('reason') or ''))}</td></tr>" for m in summary["manual"])
    return ("<h2>By hand</h2><table><tr><th>time</th><th>action</th><th>by</th><th>why</th>"
            "</tr>" + rows + "</table>")


def _window_table(summary, start) -> str:
    waits = summary.get("window_waits") or []
    if not waits:
        return ""
    rows = "".join(
        f"<tr><td class=num>{escape(_offset(w.get('at'), start))}</td>"
        f"<td class=num>{escape(str(w.get('weight')))} %</td>"
        f"<td>{escape(_when(w.get('until')))} UTC</td>"
        f"<td>{escape(svg.fmt_duration((w.get('until') or 0) - (w.get('at') or 0)))}</td>"
        f"<td>{escape(str(w.get('window')))}</td></tr>" for w in waits)
    return ("<h2>Promotion window</h2><table><tr><th>time</th><th>step</th><th>waited until"
            "</th><th>wait</th><th>window</th></tr>" + rows + "</table>")


def _plan_block(plan) -> str:
    keys = ("steps", "step_interval_s", "approvals_before", "poll_interval_s", "max_extensions",
            "teardown_delay_s", "runtime")
    rows = [f"<tr><th>{escape(k)}</th><td>{escape(_plain(plan[k]))}</td></tr>"
            for k in keys if k in plan]
    for gate, value in (plan.get("gates") or {}).items():
        rows.append(f"<tr><th>gates.{escape(str(gate))}</th><td>{escape(_plain(value))}</td></tr>")
    return "<table>" + "".join(rows) + "</table>" if rows else "<p class='note'>no plan</p>"


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} = {_plain(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value) or "none"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _event_log(events, start) -> str:
    rows = []
    for e in data.ordered(events):
        kind = str(e.get("event"))
        if kind == ev.LOOK:
            detail = f"{(e.get('verdict') or {}).get('status')}: " \
                     f"{(e.get('verdict') or {}).get('reason') or ''}"
        elif kind == ev.PLAN:
            detail = "release plan (see above)"
        else:
            detail = ", ".join(f"{k}={json.dumps(v, default=str)[:200]}" for k, v in e.items()
                               if k not in ("ts", "event"))
        rows.append(f"<tr><td class=num>{escape(_offset(data.ts_of(e), start))}</td>"
                    f"<td>{escape(kind)}</td><td>{escape(detail)}</td></tr>")
    return (f"<details><summary>Journal: {len(rows)} events</summary><table><tr><th>time</th>"
            "<th>event</th><th>details</th></tr>" + "".join(rows) + "</table></details>")
