"""What each task of a release does, in plain Python (no Airflow).

:class:`Release` drives one release through the interfaces only: a :class:`Runtime` (where the
versions run), a :class:`TrafficRouter` (the data plane), the registry, a metrics provider and
the release's :class:`Journal`. :func:`open_release` builds it from the plan and the settings
through the factories; tests pass doubles. Every method is idempotent, so a retried task or a
restarted trigger never applies a step twice or loses one.

Safety rules kept here:

* a candidate that is gone (exited, restarted) or fails /deep_health for longer than
  ``HEALTH_GRACE_S`` is a *fail* at the next look; a *stable* restart makes the look
  inconclusive and restarts the window;
* the gateway's health is part of every look: a gateway that is down or out of sync fails it;
* weights go up, and promotion happens, only while the candidate answers /deep_health and the
  gateway serves what it was told;
* rollback does every part it can (traffic, registry, candidate, scrape target) and records the
  parts it could not, instead of stopping at the first error.

Imports of the parts (registry, runtime, router, analysis) stay inside functions: the DAG file
imports this module through the operators, and Airflow parses DAG files often.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from paddle_canary.release import events as ev
from paddle_canary.release import lock
from paddle_canary.release.journal import Journal
from paddle_canary.release.plan import ReleasePlan, resolve_plan
from paddle_canary.settings import Settings

#: How long a running candidate may fail /deep_health before a look fails it.
HEALTH_GRACE_S = 10.0
PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
#: Who a failure is blamed on: the candidate is rejected only for its own faults.
BLAME_CANDIDATE, BLAME_GATEWAY = "candidate", "gateway"


class ReleaseFailed(RuntimeError):
    """A step of the release could not be carried out (the reason is in the message)."""


def check_gates(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    from paddle_canary.analysis.config import GateConfig
    return GateConfig.from_dict(defaults, overrides).to_dict()


def registry_at(settings: Settings):
    from paddle_canary.registry import Registry  # numpy: not at DAG parse time
    return Registry(settings.registry_root)


def journal_of(plan: ReleasePlan, settings: Settings | None = None) -> Journal:
    settings = settings or Settings.from_env()
    return Journal.of_run(settings.home, plan.model, plan.run_id)


def prepare(request: dict[str, Any], run_id: str, settings: Settings | None = None) -> ReleasePlan:
    """Resolve the request and take the model's release lock; refuse before any change."""
    settings = settings or Settings.from_env()
    reg = registry_at(settings)
    plan = resolve_plan(reg, request, check_gates=check_gates, run_id=run_id)
    from paddle_canary.analysis.custom_gates import from_model_card
    from_model_card(reg.model_defaults(plan.model))  # a bad custom gate is refused here
    lock.acquire(settings.registry_root, plan.model, run_id, plan.candidate)
    try:
        if reg.pointers(plan.model).candidate != plan.candidate:
            reg.set_candidate(plan.model, plan.candidate)
        journal_of(plan, settings).append(ev.PlanRecorded(plan=plan.to_dict()))
    except Exception:
        lock.release(settings.registry_root, plan.model, run_id)
        raise
    return plan


def open_release(plan: ReleasePlan | dict[str, Any], settings: Settings | None = None,
                 provider=None) -> "Release":
    """The release of ``plan`` wired to the runtime its plan names and the router the settings
    name (factories), the registry, its journal and Prometheus (or ``provider``)."""
    from paddle_canary.runtime.factory import make_runtime
    from paddle_canary.settings_sources import prometheus_provider
    from paddle_canary.traffic.factory import make_router

    settings = settings or Settings.from_env()
    if isinstance(plan, dict):
        plan = ReleasePlan.from_dict(plan)
    return Release(plan, runtime=Lazy(lambda: make_runtime(plan.runtime, settings)),
                   router=Lazy(lambda: make_router(settings)), registry=registry_at(settings),
                   journal=journal_of(plan, settings),
                   provider=provider or Lazy(lambda: prometheus_provider(settings)))


class Lazy:
    """A part built on first use (a task that only writes the journal needs no gateway)."""

    def __init__(self, build):
        self.build = build


def _health_gate(status: str, reason: str) -> dict[str, Any]:
    """A gate entry in the judge's verdict shape for what the look saw of the running parts."""
    return {"gate": "health", "status": status, "effect": None, "interval": [None, None],
            "samples": {"baseline": None, "candidate": None}, "reason": reason,
            "thresholds": {"grace_s": HEALTH_GRACE_S}, "checks": [], "details": {}}


class Release:
    def __init__(self, plan: ReleasePlan, *, runtime, router, registry, journal: Journal,
                 provider=None):
        self.plan = plan
        self._parts = {"runtime": runtime, "router": router, "provider": provider}
        self.registry = registry
        self.journal = journal

    def _part(self, name: str):
        value = self._parts[name]
        if isinstance(value, Lazy):
            value = self._parts[name] = value.build()
        return value

    @property
    def runtime(self):
        return self._part("runtime")

    @property
    def router(self):
        return self._part("router")

    @property
    def provider(self):
        return self._part("provider")

    # ---- the journal -----------------------------------------------------------------------

    def record(self, event: ev.Event) -> ev.Event:
        return self.journal.append(event)

    def events(self) -> list[ev.Event]:
        return self.journal.read()

    def record_failure(self, task: str, reason: str, blame: str = BLAME_CANDIDATE) -> None:
        self.record(ev.Failure(task=task, reason=reason, blame=blame))

    def failure(self) -> ev.Failure | None:
        return ev.first(self.events(), ev.Failure)

    def outcome(self) -> str:
        return ev.outcome(self.events())

    # ---- before traffic --------------------------------------------------------------------

    def build_images(self, log=print) -> dict[str, Any] | None:
        """The serving images of stable and the candidate, for runtimes that run images
        (docker, kubernetes): built through the docker SDK on ``$PADDLE_CANARY_IMAGE_BASE``
        (default the GPU base), pushed when ``$PADDLE_CANARY_IMAGE_REGISTRY`` is set, and
        skipped with the reason when the engine has them from the same model files, code and
        base. ``None`` on the local runtime (processes run the package itself)."""
        p = self.plan
        if p.runtime == "local":
            return None
        from paddle_canary.images.build import build_serving_image
        built = {}
        for version in dict.fromkeys((p.baseline, p.candidate)):
            ref = build_serving_image(self.registry.root, p.model, version, log=log)
            built[version] = ref.to_dict()
        return built

    def validate(self) -> dict[str, Any]:
        """Offline checks before any traffic: loads, finite scores in range, close to stable.
        A runtime that runs images (docker) runs them in the candidate's image, with the
        image's own ``validate`` entry; elsewhere in this process."""
        p = self.plan
        if p.runtime == "docker":
            from paddle_canary.runtime.docker import ValidationFailed
            try:
                report = self.runtime.validate(p.model, p.candidate, p.baseline)
            except ValidationFailed as exc:
                report = {**exc.summary, "passed": False,
                          "problems": exc.summary.get("problems") or [str(exc)]}
        else:
            from paddle_canary.validation.compare import compare_with_baseline
            report = compare_with_baseline(self.registry.card(p.model, p.candidate),
                                           self.registry.card(p.model, p.baseline))
        self.record(ev.Validated(report=report))
        if not report["passed"]:
            raise ReleaseFailed("offline validation failed: " + "; ".join(report["problems"]))
        self.registry.mark_validated(p.model, p.candidate, report)
        return report

    def record_validation(self, task: str, summary: dict[str, Any] | None) -> bool:
        """Record a validation that ran elsewhere (the GPU pod): the summary in the journal,
        the registry's ``validated`` on a pass, the release's failure otherwise."""
        if summary is None:
            self.record_failure(task, "offline validation failed: the pod wrote no summary")
            return False
        self.record(ev.Validated(report=summary))
        if summary.get("passed"):
            self.registry.mark_validated(self.plan.model, self.plan.candidate, summary)
            return True
        self.record_failure(task, "offline validation failed: "
                            + "; ".join(summary.get("problems") or ["no reason given"]))
        return False

    def deploy(self) -> dict[str, Any]:
        """Start both versions (idempotent) and route them, the candidate at weight 0. With
        ``plan.paired`` the candidate's process scores every request with the stable version
        too (``shadow=``), so the judge compares both on the same rows; with the plan's header
        route, requests carrying that header go to the candidate from now on."""
        from paddle_canary.traffic.base import HEADER_ROUTE, HeaderRoute, ModelRoute, Unsupported
        p = self.plan
        header = HeaderRoute.from_dict(p.header_route)
        if header and HEADER_ROUTE not in self.router.supports:  # before anything starts
            raise Unsupported(f"the {self.router.kind} router does not support header routes; "
                              "release without header_route")
        stable = self.runtime.deploy(p.model, p.baseline)
        candidate = self.runtime.deploy(p.model, p.candidate,
                                        shadow=p.baseline if p.paired else None)
        live = self.router.live(p.model)
        if (live is not None and live.candidate is not None and live.weight > 0
                and live.candidate.version != p.candidate):
            raise ReleaseFailed(f"the gateway still sends {live.weight} % of {p.model} to another "
                                f"candidate ({live.candidate.version}); roll that back first")
        route = ModelRoute(p.model, stable=self.router.backend(p.baseline, stable.url),
                           candidate=self.router.backend(p.candidate, candidate.url),
                           weight=live.weight if live and live.candidate
                           and live.candidate.version == p.candidate else 0,
                           header=header)
        self.router.apply_verified(route)
        self.record(ev.Deployed(stable_url=stable.url, candidate_url=candidate.url,
                                stable_instance=stable.instance,
                                candidate_instance=candidate.instance))
        return {"stable_url": stable.url, "candidate_url": candidate.url}

    # ---- steps -----------------------------------------------------------------------------

    def _deployed(self) -> ev.Deployed | None:
        found = ev.of_kind(self.events(), ev.Deployed)
        return found[-1] if found else None

    def _require_safe_to_raise(self, what: str) -> None:
        """Refuse to give the candidate more traffic unless it and the gateway are healthy now."""
        p = self.plan
        health = self.runtime.probe(p.model, p.candidate)
        deployed = self._deployed()
        if not health.healthy:
            raise ReleaseFailed(f"{what} refused: candidate {p.candidate} is {health.state} "
                                f"({health.detail})")
        if deployed and deployed.candidate_instance and \
                health.instance != deployed.candidate_instance:
            raise ReleaseFailed(f"{what} refused: candidate {p.candidate} restarted since it "
                                f"was deployed ({deployed.candidate_instance} -> {health.instance})")
        gateway = self.router.health()
        if not gateway.ok:
            raise ReleaseFailed(f"{what} refused: the gateway is not healthy ({gateway.detail})")

    def candidate_health(self) -> str:
        """One line for a person about to approve: does the candidate answer right now?"""
        p = self.plan
        try:
            health = self.runtime.probe(p.model, p.candidate)
        except Exception as exc:  # noqa: BLE001 - the prompt says it could not tell, not "ok"
            return f"Candidate {p.candidate}: health unknown ({type(exc).__name__}: {exc})"
        if health.healthy:
            return f"Candidate {p.candidate}: healthy (answers /deep_health now)"
        return f"Candidate {p.candidate}: **{health.state}** ({health.detail})"

    def _routed(self):
        p = self.plan
        current = self.router.route(p.model)
        if current.candidate is None or current.candidate.version != p.candidate:
            raise ReleaseFailed(f"the gateway does not route {p.model}'s candidate {p.candidate}; "
                                "deploy it first")
        return current

    def start_shadow(self) -> dict[str, Any]:
        """The shadow phase (``plan.shadow_s`` > 0), judged as step 0: the gateway mirrors
        ``plan.shadow_mirror`` % of stable's requests to the candidate, whose answers are
        discarded; no user is routed to it. Needs a healthy candidate and gateway. The first
        step's weight ends it."""
        p = self.plan
        current = self._routed()
        if current.mirror != p.shadow_mirror:
            self._require_safe_to_raise(f"mirroring {p.shadow_mirror} % of {p.model} to "
                                        f"{p.candidate}")
        self.router.apply_verified(current.replace(mirror=p.shadow_mirror))
        at = time.time()
        self.record(ev.MirrorSet(share=p.shadow_mirror, ts=at))
        return {"mirror": p.shadow_mirror, "at": at, "step": 0}

    def window_wait(self, step: int, weight: int, now: float | None = None) -> float | None:
        """When step ``step`` (to ``weight`` %) may move traffic: ``None`` now (the model has no
        promotion window, or it is open), else the unix time the window next opens, recorded
        once per step and opening time (``window_wait``)."""
        window = self.plan.window()
        now = time.time() if now is None else now
        if window is None:
            return None
        opens = window.next_open(datetime.fromtimestamp(now, timezone.utc))
        if opens is None:
            return None
        until = opens.timestamp()
        if not any(e.step == step and e.until == until
                   for e in ev.of_kind(self.events(), ev.WindowWait)):
            self.record(ev.WindowWait(step=step, weight=weight, until=until,
                                      window=window.describe(), ts=now))
        return until

    def set_step_weight(self, step: int, weight: int) -> dict[str, Any]:
        """Move the candidate to ``weight`` % (step ``step``, 1-based), read back from the data
        plane; a shadow phase's mirror ends here (its copies would load the candidate and hold
        stable's connections while users are on it). A raise needs a healthy candidate and
        gateway; lowering never does."""
        p = self.plan
        current = self._routed()
        if weight > current.weight:
            self._require_safe_to_raise(f"raising {p.model} {p.candidate} to {weight} %")
        self.router.apply_verified(current.replace(weight=weight, mirror=0))
        at = time.time()
        if current.mirror:
            self.record(ev.MirrorSet(share=0, ts=at))
        self.record(ev.WeightSet(weight=weight, step=step, ts=at))
        return {"weight": weight, "at": at, "step": step}

    def health_gate(self, previous: dict[str, Any] | None = None) -> tuple[dict[str, Any], float]:
        """What a look sees of the running parts: a ``health`` gate (fail: candidate gone,
        restarted, failing past the grace, gateway down; inconclusive: stable restarted or
        candidate failing within the grace), and the time the judge's window may start from."""
        p = self.plan
        now = time.time()
        deployed = self._deployed()
        since = deployed.ts if deployed else 0.0
        gateway = self.router.health()
        if not gateway.ok:
            gate = _health_gate(FAIL, f"gateway down: {gateway.detail}")
            gate["blame"] = BLAME_GATEWAY
            return gate, since
        cand = self.runtime.probe(p.model, p.candidate)
        if cand.state == "gone":
            return _health_gate(FAIL, f"candidate {p.candidate} is gone: {cand.detail}"), since
        if deployed and cand.restarted_since(deployed.candidate_instance):
            return _health_gate(FAIL, f"candidate {p.candidate} restarted "
                                      f"({deployed.candidate_instance} -> {cand.instance})"), since
        if not cand.healthy:
            before = (previous.get("health") if isinstance(previous, dict) else None) or {}
            failing_since = before.get("failing_since") or now
            gate = _health_gate(FAIL if now - failing_since > HEALTH_GRACE_S else INCONCLUSIVE,
                                f"candidate {p.candidate} fails /deep_health for "
                                f"{now - failing_since:.0f} s: {cand.detail}")
            gate["details"]["failing_since"] = failing_since
            return gate, since
        stable = self.runtime.probe(p.model, p.baseline)
        if not stable.healthy:
            return _health_gate(INCONCLUSIVE, f"stable {p.baseline} is {stable.state}: "
                                              f"{stable.detail}"), since
        if deployed and stable.restarted_since(deployed.stable_instance):
            # A stable restart makes this look inconclusive; the window restarts from now.
            # The new record's ts is the window's new start, at this look and the next ones.
            endpoint = self.runtime.endpoint(p.model, p.baseline)
            self.record(ev.Deployed(ts=now, stable_url=endpoint.url if endpoint else None,
                                    candidate_url=deployed.candidate_url,
                                    stable_instance=stable.instance or "",
                                    candidate_instance=deployed.candidate_instance))
            return _health_gate(INCONCLUSIVE, f"stable {p.baseline} restarted; the window "
                                              "starts again"), now
        return _health_gate(PASS, "candidate, stable and gateway healthy"), since

    def judge(self, since: float, step: int | None = None, weight: int | None = None,
              previous: dict[str, Any] | None = None) -> dict[str, Any]:
        """One look: the running parts' health, then candidate vs stable over [since, now] on
        every gate. Recorded in the journal with the step and weight.

        ``previous``: this step's previous look (what this method returned). Its intervals are
        built on (they never widen; a decided gate stays decided) while the window is the same;
        when the window moved (stable restarted) or it is not a look of these versions, this
        look starts fresh and ``verdict["note"]`` says why. ``step`` (1-based) spends the
        release's alpha (``gates.alpha``) over the plan's steps: ``verdict["alpha"]``."""
        from paddle_canary.analysis.analyze import analyze
        from paddle_canary.analysis.config import GateConfig
        from paddle_canary.analysis.release_window import carry
        from paddle_canary.analysis.verdict import combine
        p = self.plan
        health, window_from = self.health_gate(previous)
        start = max(since, window_from)
        config = GateConfig.from_dict(p.gates)
        alpha = p.step_alpha(config.alpha, step)
        end = time.time()
        step_verdict = analyze(self.provider, p.model, p.baseline, p.candidate, config,
                               start=start, end=end, previous=previous, alpha=alpha)
        released = None
        if step is not None and window_from < start - 1e-3:
            # the release so far (analysis.release_window): deploy (or stable's restart) to now
            released = analyze(self.provider, p.model, p.baseline, p.candidate, config,
                               start=window_from, end=end,
                               previous=self._release_previous(window_from, previous),
                               alpha=p.release_alpha(config.alpha))
        verdict = carry(step_verdict, released, config.min_samples).to_dict()
        verdict["alpha"] = alpha
        if released is not None:
            verdict["release_window"] = {**released.to_dict(),
                                         "alpha": p.release_alpha(config.alpha)}
        custom = self._custom_gates(start, previous)
        verdict["gates"] = [health] + list(verdict.get("gates") or []) + custom
        status = combine(g["status"] for g in verdict["gates"])
        failed_custom = [g["reason"] for g in custom if g["status"] == FAIL]
        if failed_custom and verdict.get("status") != FAIL:
            verdict["reason"] = "; ".join(failed_custom)
        if health["status"] == FAIL:
            verdict["reason"] = health["reason"]
        elif health["status"] == INCONCLUSIVE and status != FAIL:
            verdict["reason"] = f"{health['reason']}; {verdict.get('reason', '')}".rstrip("; ")
        verdict["status"] = status
        verdict["health"] = {"status": health["status"], "reason": health["reason"],
                             "failing_since": health["details"].get("failing_since"),
                             "blame": health.pop("blame", BLAME_CANDIDATE)}
        self.record(ev.Look(verdict=verdict, step=step, weight=weight,
                            health=verdict["health"]))
        return verdict

    def _release_previous(self, start: float, previous: dict[str, Any] | None
                          ) -> dict[str, Any] | None:
        """The last look's release window, when it starts at ``start`` (its running
        intersection continues across steps): the previous look's of this step, which the
        trigger holds; the journal's last one at a step's first look."""
        found = previous.get("release_window") if isinstance(previous, dict) else None
        if not found:
            looks = [look.verdict.get("release_window")
                     for look in ev.of_kind(self.events(), ev.Look) if look.verdict]
            found = next((w for w in reversed(looks) if w), None)
        if found and abs(float(found["window"]["start"]) - start) < 1e-3:
            return found
        return None

    def _custom_gates(self, start: float, previous: dict[str, Any] | None) -> list[dict]:
        """The model's own PromQL gates (model.yaml ``custom_gates``) for this look."""
        from paddle_canary.analysis import custom_gates
        gates = custom_gates.from_model_card(self.registry.model_defaults(self.plan.model))
        if not gates:
            return []
        return custom_gates.evaluate(self.provider, gates, self.plan.model, self.plan.candidate,
                                     window_s=time.time() - start, previous=previous)

    def record_verdict(self, task: str, verdict: dict[str, Any], step: int | None = None,
                       weight: int | None = None) -> None:
        self.record(ev.StepVerdict(task=task, verdict=verdict, step=step, weight=weight))

    def cut(self, reason: str) -> bool:
        """No user traffic to the candidate now (weight 0, no header route, no mirror), if the
        gateway still sends it any. Idempotent; True when it changed something."""
        live = self.router.live(self.plan.model)
        if live is None or live.candidate is None or \
                (live.weight == 0 and live.header is None and live.mirror == 0):
            return False
        self.router.apply_verified(live.replace(weight=0, header=None, mirror=0))
        self.record(ev.Cut(reason=reason))
        return True

    # ---- endings ---------------------------------------------------------------------------

    def rollback(self) -> dict[str, Any]:
        """Every user back on stable, the candidate rejected with the reason (or released, when
        the fault was the gateway's), stopped and no longer scraped. Each part is attempted even
        when an earlier one fails; the parts that failed are recorded and returned."""
        from paddle_canary.traffic.base import ModelRoute
        p = self.plan
        failure = self.failure()
        reason = failure.reason if failure else "a release task failed (see the Airflow log)"
        blame = failure.blame if failure else BLAME_CANDIDATE
        incomplete: list[str] = []

        try:
            stable = self.runtime.deploy(p.model, p.baseline)  # running already: idempotent
            self.router.apply_verified(
                ModelRoute(p.model, stable=self.router.backend(p.baseline, stable.url)))
            self.record(ev.Cut(reason=reason))
        except Exception as exc:  # noqa: BLE001 - record it, then do the rest
            incomplete.append(f"traffic: {type(exc).__name__}: {exc}")
        try:
            if blame == BLAME_CANDIDATE:
                if self.registry.status(p.model, p.candidate) != "rejected":
                    self.registry.mark_rejected(p.model, p.candidate, reason)
            elif self.registry.pointers(p.model).candidate == p.candidate:
                self.registry.clear_candidate(p.model)
        except Exception as exc:  # noqa: BLE001
            incomplete.append(f"registry: {type(exc).__name__}: {exc}")
        try:
            self.runtime.remove(p.model, p.candidate)
        except Exception as exc:  # noqa: BLE001
            incomplete.append(f"candidate: {type(exc).__name__}: {exc}")
        self.record(ev.RolledBack(reason=reason, incomplete=incomplete))
        return {"outcome": ev.ROLLED_BACK_OUTCOME, "reason": reason, "incomplete": incomplete}

    def promote(self) -> dict[str, Any]:
        """At 100 %: the gateway serves the new stable alone, then the registry pointer moves.
        Only while the candidate answers /deep_health and the gateway is healthy."""
        from paddle_canary.traffic.base import ModelRoute
        p = self.plan
        live = self.router.route(p.model)
        if live.candidate is None or live.candidate.version != p.candidate or live.weight != 100:
            raise ReleaseFailed(f"promotion needs 100 % on {p.candidate}; the gateway serves "
                                f"{live.weight} % to {live.candidate.version if live.candidate else None}")
        self._require_safe_to_raise(f"promoting {p.model} {p.candidate}")
        # one change: every user stays on the candidate, which becomes the stable backend
        self.router.apply_verified(ModelRoute(p.model, stable=live.candidate))
        self.registry.promote(p.model, p.candidate, reason=f"release {p.run_id}")
        self.record(ev.Promoted(previous=p.baseline))
        return {"outcome": ev.PROMOTED_OUTCOME, "stable": p.candidate, "previous": p.baseline}

    def promoted_at(self) -> float | None:
        found = ev.first(self.events(), ev.Promoted)
        return found.ts if found else None

    def teardown(self) -> dict[str, Any]:
        """Stop the old version, unless it became stable again meanwhile."""
        p = self.plan
        if self.registry.pointers(p.model).stable == p.baseline:
            self.record(ev.TeardownSkipped(reason="the old version is stable again"))
            return {"removed": None}
        self.runtime.remove(p.model, p.baseline)
        self.record(ev.TornDown(version=p.baseline))
        return {"removed": p.baseline}

    def finish(self, run_id: str) -> dict[str, Any]:
        """Record the outcome once and free the model for its next release (only if this run
        holds it). Called by the rollback as soon as it is done and by the final report task."""
        result = self.outcome()
        if not any(e.outcome == result for e in ev.of_kind(self.events(), ev.Finished)):
            self.record(ev.Finished(outcome=result))
        lock.release(self.registry.root, self.plan.model, run_id)
        return {"outcome": result}
