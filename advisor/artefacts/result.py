"""The Result of a run: the JSON payload every surface reads, its sections as typed values
(`advisor.artefacts.payload`), plus the fitted policies."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from advisor.artefacts.payload import SCHEMA_VERSION, Sections, upgrade
from advisor.core.atomic import write_atomic

if TYPE_CHECKING:
    from advisor.analysis.pipeline import Analysis
    from advisor.stats.psi import Reference


def _plain(value):
    """JSON-safe: numpy scalars to Python, NaN and infinities to null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


def assemble(**sections) -> dict:
    """The result.json payload from the stages' values, in the order given.

    Each value is a plain mapping or has `to_dict()`; a value of None (a stage that did not
    apply, e.g. no ML model to explain) leaves its key out.
    """
    payload: dict = {"schema_version": SCHEMA_VERSION}
    for key, value in sections.items():
        if value is None:
            continue
        payload[key] = value.to_dict() if hasattr(value, "to_dict") else dict(value)
    return payload


@dataclass
class Result(Sections):
    """What a run found. `data` is exactly what `to_json` writes, and its sections read as
    typed values (`result.evaluation.policies["ml"].cost_per_decision.low`); `policies` are the
    live objects; `examples` are a few test rows (the input example of the models `track` logs)."""

    data: dict
    policies: dict = field(default_factory=dict, repr=False)
    reference: Reference | None = field(default=None, repr=False)
    examples: pd.DataFrame | None = field(default=None, repr=False)

    @classmethod
    def from_analysis(cls, analysis: Analysis) -> Result:
        """The Result of an analysis: the result.json payload assembled from its stage values."""
        from advisor.artefacts.manifest import build_manifest

        case = analysis.case
        payload = assemble(
            case=case.to_dict(),
            data=analysis.data,
            roles=analysis.roles,
            evaluation=analysis.evaluation,
            rules=analysis.rules,
            model=analysis.model,
            shadow=analysis.shadow,
            experiment=analysis.experiment,
            latency=analysis.latency,
            drift=analysis.drift,
            maintenance=analysis.maintenance,
            recommendation=analysis.recommendation,
            refits=analysis.refits,
            incumbent=analysis.incumbent,
            policies={c.name: c.to_dict() for c in analysis.compared},
            manifest=build_manifest(analysis.data_sha256, case.seed, case.to_dict()),
            timings=analysis.timings,
        )
        # what ships: the refitted procedure when the run refitted, else the main fit
        shipped = analysis.refits.shipped if analysis.refits is not None else None
        return cls(
            data=payload,
            policies=shipped.policies if shipped else analysis.policies,
            reference=shipped.reference if shipped else analysis.reference,
            examples=analysis.examples,
        )

    @classmethod
    def from_json(cls, path: str | Path) -> Result:
        """A result.json read back (a version-2 file upgraded; other versions refused)."""
        from advisor.core.errors import InputError

        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError("no such result file", where=str(path)) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"not a JSON result file ({exc})", where=str(path)) from None
        if not isinstance(data, dict) or "evaluation" not in data or "case" not in data:
            raise InputError("not an advisor result (no 'evaluation' or 'case')", where=str(path))
        return cls(data=upgrade(data, str(path)))

    @property
    def comparison(self) -> pd.DataFrame:
        """One row per policy: cost per decision with its 95 % interval, and probability metrics."""
        from advisor.analysis.evaluate import comparison_frame

        return comparison_frame(self.evaluation, self.currency)

    @property
    def rules(self):
        """The learned rule list (prints as plain English), when the rules policy ran."""
        policy = self.policies.get("rules")
        return getattr(policy, "rules_", None) if policy is not None else None

    def to_dict(self) -> dict:
        return _plain(self.data)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)
        if path is not None:
            write_atomic(path, text + "\n")
        return text

    def to_html(self, path: str | Path | None = None) -> str:
        from advisor.report import render_report

        html = render_report(self.to_dict())
        if path is not None:
            write_atomic(path, html)
        return html

    def save(self, out: str | Path) -> Path:
        """Write the run folder `out/<name>/`: report.html, result.json and a bundle for each
        policy under policies/, all rendered first and then written at once."""
        from advisor.artefacts.run import REPORT, RESULT, policy_files, write_folder

        files = {
            REPORT: self.to_html(),
            RESULT: self.to_json() + "\n",
            **policy_files(self.to_dict(), self.policies, self.reference),
        }
        return write_folder(Path(out) / self.name, files, marker=RESULT)

    def _repr_html_(self) -> str:
        from advisor.report import render_summary

        return render_summary(self.to_dict())

    def __repr__(self) -> str:
        rec = self.recommendation.option if self.recommendation else None
        return f"<advisor.Result {self.name!r}{' -> ' + rec if rec else ''}>"
