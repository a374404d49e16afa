"""The run folder: `OUT/<name>/report.html`, `result.json` and `policies/<policy>/`, one bundle
per policy, written all at once through a temporary sibling folder and a rename."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from advisor.artefacts.bundle import bundle_files
from advisor.artefacts.payload import ResultData, upgrade
from advisor.core.atomic import replacing
from advisor.core.errors import InputError
from advisor.policies.base import Policy
from advisor.policies.registry import plugin_of
from advisor.stats.psi import Reference

REPORT, RESULT, POLICIES = "report.html", "result.json", "policies"


def policy_files(
    payload: Mapping, policies: Mapping[str, Policy], reference: Reference | None
) -> dict[str, str]:
    """`policies/<name>/<file>` for every policy's bundle, with what the run measured of it;
    an evaluated-only policy (the incumbent) has no bundle."""
    evaluation = ResultData(payload).evaluation
    refits = payload.get("refits") or {}
    out = {}
    for name, policy in policies.items():
        if plugin_of(policy).evaluated_only:
            continue
        scored = evaluation.policies.get(name) if evaluation else None
        expected = {
            "split": "test",
            "rows": evaluation.n_test if evaluation else None,
            "cost_per_decision": scored.cost_per_decision.to_dict() if scored else None,
            "decision_shares": dict(scored.decision_shares) if scored else None,
        }
        pooled = (refits.get("policies") or {}).get(name)
        shares = (refits.get("decision_shares") or {}).get(name)
        if pooled is not None:  # the refitted procedure's out-of-fold cost and decision mix
            method = refits["plan"]["method"]
            expected.update(split=f"out-of-fold ({method})", rows=refits["rows_scored"])
            expected["cost_per_decision"] = dict(pooled)
            if shares is not None:
                expected["decision_shares"] = dict(shares)
        latest = refits.get("latest_period") or {}
        cost = (latest.get("cost_per_decision") or {}).get(name)
        if pooled is not None and cost is not None:  # time-ordered: what predicts the next period
            expected.update(
                split=f"latest backtest period ({latest['label']})", rows=latest["rows"]
            )
            expected.update(cost_per_decision=dict(cost), rule=latest["rule"])
        if scored and scored.calibration_gap is not None:
            expected["calibration_gap"] = scored.calibration_gap.to_dict()
        if scored and scored.calibration_bands is not None:
            expected["calibration_bands"] = dict(scored.calibration_bands)
        gap = (refits.get("calibration_gaps") or {}).get(name)
        if pooled is not None and gap is not None:  # the refitted procedure's, out of fold
            expected["calibration_gap"] = dict(gap)
            expected.pop("calibration_bands", None)  # the test split's, of another model
            bands = (refits.get("calibration_bands") or {}).get(name)
            if bands is not None:
                expected["calibration_bands"] = dict(bands)
        files = bundle_files(
            policy,
            case=payload.get("case", {}),
            expected=expected,
            reference=reference,
            manifest=payload.get("manifest", {}),
        )
        out.update({f"{POLICIES}/{name}/{file}": text for file, text in files.items()})
    return out


def replaceable(path: Path, marker: str) -> bool:
    """Whether a folder may be replaced: it does not exist, is empty, or holds `marker` (so it
    is one that advisor wrote), never someone's other folder."""
    if not path.exists():
        return True
    if not path.is_dir():
        return False
    return (path / marker).exists() or not any(path.iterdir())


def write_folder(path: str | Path, files: Mapping[str, str | bytes], marker: str) -> Path:
    """Write a folder of files (relative name -> content) through a temporary sibling folder
    and a rename: the folder appears whole or not at all. It replaces a folder of that name
    only when `replaceable` (one advisor wrote, recognised by `marker`)."""
    path = Path(path)
    if not replaceable(path, marker):
        raise InputError(
            f"exists and is not a folder advisor wrote (no {marker}); choose another place",
            where=str(path),
        )
    with replacing(path, folder=True) as tmp:
        for name, content in files.items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


@dataclass(frozen=True)
class RunFolder:
    """A run folder on disk: where it is and what its result.json holds."""

    path: Path
    result: Mapping

    @property
    def name(self) -> str:
        return self.view.name

    @property
    def view(self) -> ResultData:
        """result.json with typed access to its sections."""
        return ResultData(self.result)

    def bundle(self, policy: str) -> Path:
        return self.path / POLICIES / policy


def open_run(path: str | Path) -> RunFolder:
    """A run folder from its path or the path of its result.json."""
    path = Path(path)
    result_path = path / RESULT if path.is_dir() else path
    if not result_path.is_file():
        raise InputError(f"not a run folder: no {RESULT}", where=str(path))
    try:
        result = json.loads(result_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not a JSON result file ({exc})", where=str(result_path)) from None
    if not isinstance(result, dict) or "case" not in result or "evaluation" not in result:
        raise InputError(
            "not an advisor result (no 'case' or 'evaluation')", where=str(result_path)
        )
    return RunFolder(result_path.parent, upgrade(result, str(result_path)))
