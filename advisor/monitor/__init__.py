"""`advisor monitor`: production against the offline expectations of a run folder.

`monitor()` reads the run folder, the prediction log and the outcomes that have arrived, cuts
the log into time windows, measures each (operations, drift, decision mix, realised cost,
shadow, the test to date), raises alerts on harm and gives a verdict; `write()` puts
`monitor.json` and `monitor.html` into a folder at once. Every input is checked before
anything is computed, so bad input leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from advisor.artefacts.bundle import meta_plugin
from advisor.artefacts.manifest import advisor_version
from advisor.core.errors import InputError
from advisor.monitor import family
from advisor.monitor.alerts import review
from advisor.monitor.arrival import RULE as ARRIVAL_RULE
from advisor.monitor.estimate import CONCEPT_DRIFT, RELIABLE_RULE
from advisor.monitor.expectations import read_expectations
from advisor.monitor.logs import read_outcomes
from advisor.monitor.scan import BATCH_BYTES, Scan, scan_log
from advisor.monitor.windows import Context, measure, parse_window
from advisor.stats.psi import NOISE_QUANTILE, PSI_MAJOR, PSI_MODERATE, NoiseLevels

SCHEMA_VERSION = 1
JSON, HTML = "monitor.json", "monitor.html"
EXIT_ALERT = 3


@dataclass(frozen=True)
class Monitoring:
    """What `advisor monitor` found: the `monitor.json` payload."""

    payload: dict

    @property
    def alerts(self) -> list[dict]:
        return self.payload["alerts"]

    @property
    def verdict(self) -> dict:
        return self.payload["verdict"]

    @property
    def exit_status(self) -> int:
        """0 when no alert fired, 3 when one did."""
        return EXIT_ALERT if self.alerts else 0


def monitor(
    run: str | Path,
    log: str | Path,
    outcomes: str | Path | None = None,
    key: str = "id",
    window: str = "1d",
    share: float | None = None,
    seed: int = 0,
    batch_bytes: int = BATCH_BYTES,
) -> Monitoring:
    """Compare a prediction log (and the outcomes known so far) with a run folder; the log is
    read in blocks of `batch_bytes` (the figures do not depend on it, the memory does)."""
    expectations = read_expectations(run)
    width, window_text = parse_window(window)
    known = None
    if outcomes is not None:
        known = read_outcomes(outcomes, key, expectations.target, expectations.costs)
    scan = scan_log(log, expectations, width, known, key, batch_bytes)
    del known
    light = scan.light
    light["in_run"] = scan.in_run(expectations.bundles)
    if not light["in_run"].any():
        seen = scan.rows(["policy", "model_version"], 0, 1)
        first = " ".join(str(v) for v in seen.iloc[0])
        held = ", ".join(f"{n} {m['version']}" for n, m in expectations.bundles.items())
        raise InputError(
            f"no row was decided by a policy of the run at its version (the log has {first}; "
            f"the run holds {held})",
            where=str(log),
        )
    plan = expectations.plan
    share = float(plan.get("treatment_share", 0.5)) if share is None else float(share)
    if not 0 < share < 1:
        raise InputError(f"must be above 0 and below 1, got {share:g}", where="--share")
    logged = {str(p) for p in light.loc[light["in_run"], "policy"].unique()}
    rule_features = {
        f
        for name in logged
        if meta_plugin(expectations.bundles[name], name).transparent
        for f in expectations.bundles[name].get("inputs") or ()
    }
    important = expectations.important(rule_features)
    noise = None
    if expectations.reference is not None:
        noise = NoiseLevels(expectations.reference.counts, seed)
    context = Context(expectations, set(important["features"]), noise, share, seed)
    windows, overall, readings, whole = measure(scan, width, context)
    found = review(readings, whole, expectations, important)
    payload = {
        "schema_version": SCHEMA_VERSION,
        "verdict": found["verdict"],
        "alerts": found["alerts"],
        "notes": found["notes"],
        "family": family.summary(len(windows)),
        "estimated_cost_rule": RELIABLE_RULE,
        "arrival_rule": ARRIVAL_RULE,
        "concept_drift": CONCEPT_DRIFT,
        "run": _run_summary(expectations, share),
        "log": _log_summary(scan, expectations),
        "outcomes": scan.joined | {"source": None if outcomes is None else str(outcomes)},
        "window": {"width": window_text, "count": len(windows)},
        "important_features": important,
        "thresholds": _thresholds(),
        "test": _test(overall),
        "windows": windows,
        "overall": overall,
        "manifest": {
            "advisor_version": advisor_version(),
            "created": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "seed": seed,
        },
    }
    payload["exit_status"] = EXIT_ALERT if payload["alerts"] else 0
    return Monitoring(payload)


def _test(overall: dict) -> dict | None:
    """The A/B test as read to date: its design, the always-valid readout and the power."""
    exp = overall.get("experiment")
    if not exp or not exp.get("readout"):
        return None
    read = exp["readout"]
    return {
        "design": read["design"],
        "analysed": read["analysed"],
        "readout": {k: read[k] for k in ("effect", "decision", "looks")},
        "alpha": read["alpha"],
        "power": exp.get("power"),
    }


def _run_summary(run, share: float) -> dict:
    plan = run.plan
    return {
        "path": str(run.path),
        "case": run.case["name"],
        "question": run.case.get("question"),
        "currency": run.currency,
        "target": run.target,
        "latency_budget_ms": run.budget_ms,
        "roles": {k: run.roles.get(k) for k in ("control", "treatment", "baseline")},
        "policies": {
            name: {
                "version": meta["version"],
                "kind": meta.get("kind"),
                "expected": meta.get("expected"),
            }
            for name, meta in run.bundles.items()
        },
        "plan": {
            key: plan.get(key)
            for key in (
                "design",
                "control",
                "treatment",
                "n_per_arm",
                "treatment_share",
                "days_enrolling",
                "effect_size",
                "analytical_power",
                "target_power",
            )
        }
        if plan
        else None,
        "treatment_share": share,
    }


def _log_summary(scan: Scan, run) -> dict:
    light = scan.light
    groups = ["policy", "model_version"] if "model_version" in light else ["policy"]
    frame = scan.rows([*groups, "in_run"])
    policies = [
        {**dict(zip(groups, k if isinstance(k, tuple) else (k,), strict=True)), "rows": len(g)}
        | {"in_run": bool(g["in_run"].iloc[0])}
        for k, g in frame.groupby(groups, sort=True, dropna=False)
    ]
    features = list(run.reference.binners) if run.reference is not None else []
    return {
        "source": scan.source,
        "files": scan.files,
        "rows": len(light),
        "partial_lines_skipped": scan.partial_lines,
        "first": light["ts"].iloc[0].isoformat() + "Z",
        "last": light["ts"].iloc[-1].isoformat() + "Z",
        "policies": policies,
        "features_logged": [f for f in features if f in scan.columns],
        "features_missing": [f for f in features if f not in scan.columns],
        "has_latency": "latency_ms" in light,
        "has_shadow": "shadow_decision" in light and bool(light["shadow_decision"].notna().any()),
    }


def _thresholds() -> dict:
    from advisor.monitor import family
    from advisor.monitor.alerts import ERROR_TOLERANCE
    from advisor.monitor.arrival import HOLD_LEVEL
    from advisor.monitor.expectations import IMPORTANT_SHARE
    from advisor.monitor.measures import MIN_ROWS, MIX_THRESHOLD, RESAMPLES

    return {
        "psi_moderate": PSI_MODERATE,
        "psi_major": PSI_MAJOR,
        "psi_noise_quantile": NOISE_QUANTILE,
        "important_share": IMPORTANT_SHARE,
        "decision_mix_p": MIX_THRESHOLD,
        "srm_p": family.BUDGET["srm"],
        "error_tolerance": ERROR_TOLERANCE,
        "error_p": family.window_level("errors"),
        "drift_p": family.window_level("drift"),
        "latency_level": family.window_level("latency"),
        "latency_span": family.LATENCY_SPAN,
        "min_rows": MIN_ROWS,
        "arrival_hold_p": HOLD_LEVEL,
        "resamples": RESAMPLES,
    }


def write(monitoring: Monitoring, out: str | Path) -> Path:
    """`monitor.json` and `monitor.html` into `out`, written together (a temporary folder and
    one rename): both appear, or neither."""
    import json

    from advisor.artefacts.run import write_folder
    from advisor.monitor.page import render_monitor

    text = json.dumps(monitoring.payload, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    html = render_monitor(monitoring.payload)
    return write_folder(out, {JSON: text, HTML: html}, marker=JSON)
