"""A Case: the question, the data, the costs and the decision context, from YAML or arguments."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from advisor.core.assumptions import parse_assumptions
from advisor.core.cases import bundled_case_file, is_bundled
from advisor.core.costs import CostMatrix, parse_costs
from advisor.core.errors import InputError, yaml_error
from advisor.core.incumbent import Incumbent, parse_incumbent
from advisor.core.timecolumn import check_time_unit

DAYS_PER = {"day": 1.0, "week": 7.0, "month": 365.25 / 12, "year": 365.25}
TIMINGS = ("periodic", "live")
_VOLUME = re.compile(
    r"^\s*([0-9][0-9_,]*(?:\.[0-9]+)?)\s*(?:(?:per|/|a)\s*(day|week|month|year)s?)?\s*$"
)
_KNOWN_KEYS = {
    "name",
    "question",
    "data",
    "target",
    "time",
    "time_unit",
    "time_features",
    "ignore",
    "currency",
    "costs",
    "decision",
    "rules",
    "assumptions",
    "seed",
    "options",
    "incumbent",
    "incumbent_missing",
    "trained_until",
    "policies",
}
DEFAULT_OPTIONS = {
    "max_rules": 8,
    "max_conditions": 3,
    "rules_capture_target": 0.9,
    "max_experiment_days": 90,
    "horizon_years": 2.0,
    "bootstrap_resamples": 2000,
    "alpha": 0.05,
    "power": 0.8,
    "treatment_share": 0.5,
    # most refits (cross-fitting folds x repeats, or backtest periods); 1: a single split.
    # ADVISOR_REFITS sets the default (the test suite's knob for fewer refits).
    "refits": int(os.environ.get("ADVISOR_REFITS", "10")),
}


@dataclass(frozen=True)
class DecisionContext:
    """How the decision is made in the business: volume, timing and the latency budget."""

    volume_per_day: float = 1000.0
    volume: str = "1000 per day"
    timing: str = "periodic"
    precomputable: bool = True
    latency_budget_ms: float = 100.0
    label_delay_days: float = 30.0


@dataclass(frozen=True)
class Case:
    """Everything advisor needs to know about one decision problem."""

    name: str
    costs: CostMatrix
    target: str
    data_path: Path | None = None
    frame: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    question: str = ""
    time: str | None = None
    time_unit: str | None = None
    time_features: str = "drop"  # features that only encode the date: "drop" or "keep"
    ignore: tuple[str, ...] = ()
    currency: str = "USD"
    decision: DecisionContext = DecisionContext()
    rules_path: Path | None = None
    assumptions: Mapping = field(default_factory=dict)
    seed: int = 0
    options: Mapping = field(default_factory=lambda: dict(DEFAULT_OPTIONS))
    source: Path | None = None
    incumbent: Incumbent | None = None
    # The user's ready-made policies by name: fitted estimators (`advise(policies=...)`).
    models: Mapping = field(default_factory=dict, repr=False, compare=False)
    trained_until: str | None = None  # the last time the ready-made models saw

    def option(self, key: str):
        return self.options.get(key, DEFAULT_OPTIONS[key])

    def to_dict(self) -> dict:
        """The case as loaded, for the manifest and the report."""
        return {
            "name": self.name,
            "question": self.question,
            "source": _shown(self.source),
            "data": _shown(self.data_path) or "<data frame>",
            "target": self.target,
            "time": self.time,
            "time_unit": self.time_unit,
            "time_features": self.time_features,
            "ignore": list(self.ignore),
            "currency": self.currency,
            "costs": self.costs.to_dict(),
            "decision": asdict(self.decision),
            "rules": _shown(self.rules_path),
            "assumptions": dict(self.assumptions),
            "seed": self.seed,
            "options": {**DEFAULT_OPTIONS, **dict(self.options)},
            "incumbent": self.incumbent.to_dict() if self.incumbent else None,
            "policies": {name: model_kind(model) for name, model in self.models.items()},
            "trained_until": self.trained_until,
        }


def model_kind(model: object) -> str:
    """What a ready-made policy is: "mlflow" (a `mlflow:` URI) or "estimator" (an object)."""
    return "mlflow" if isinstance(model, str) else "estimator"


def _trained_until(raw: object) -> str | None:
    """The last time the ready-made models saw, as text (compared with the time column)."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise InputError(f"expected a time, got {raw!r}", where="trained_until")
    return str(raw)


def _shown(path: Path | None) -> str | None:
    """A path as a reader should see it: relative to the working folder when inside it."""
    if path is None:
        return None
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def parse_volume(value: object, where: str = "decision.volume") -> tuple[float, str]:
    """`"8000 per month"` -> (decisions per day, text); a bare number means per day."""
    if isinstance(value, bool):
        raise InputError(f"expected e.g. '2000 per day', got {value!r}", where=where)
    if isinstance(value, int | float):
        text = f"{value:g} per day"
        number, unit = float(value), "day"
    else:
        m = _VOLUME.match(str(value)) if isinstance(value, str) else None
        if not m:
            raise InputError(
                f"expected e.g. '2000 per day' (per day, week, month or year), got {value!r}",
                where=where,
            )
        number, unit = float(m.group(1).replace(",", "").replace("_", "")), m.group(2) or "day"
        text = f"{m.group(1)} per {unit}"
    if not math.isfinite(number) or number <= 0:
        raise InputError(f"volume must be a positive number, got {value!r}", where=where)
    return number / DAYS_PER[unit], text


def _number(raw: Mapping, key: str, default: float, where: str, minimum: float = 0.0) -> float:
    v = raw.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < minimum:
        raise InputError(f"expected a number >= {minimum:g}, got {v!r}", where=f"{where}.{key}")
    return float(v)


def _boolean(raw: Mapping, key: str, default: bool, where: str) -> bool:
    v = raw.get(key, default)
    if not isinstance(v, bool):
        raise InputError(f"expected true or false, got {v!r}", where=f"{where}.{key}")
    return v


def parse_decision(raw: object, where: str) -> DecisionContext:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise InputError("expected a mapping (volume, timing, ...)", where=where)
    known = {f for f in DecisionContext.__dataclass_fields__ if f != "volume_per_day"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InputError(f"unknown field {unknown[0]!r}; known: {sorted(known)}", where=where)
    per_day, text = parse_volume(raw.get("volume", "1000 per day"), f"{where}.volume")
    timing = raw.get("timing", "periodic")
    if timing not in TIMINGS:
        raise InputError(f"expected 'periodic' or 'live', got {timing!r}", where=f"{where}.timing")
    return DecisionContext(
        volume_per_day=per_day,
        volume=text,
        timing=timing,
        precomputable=_boolean(raw, "precomputable", True, where),
        latency_budget_ms=_number(raw, "latency_budget_ms", 100.0, where, minimum=1e-9),
        label_delay_days=_number(raw, "label_delay_days", 30.0, where),
    )


def parse_options(raw: object, where: str = "options") -> dict:
    if raw is None:
        return dict(DEFAULT_OPTIONS)
    if not isinstance(raw, Mapping):
        raise InputError("expected a mapping", where=where)
    unknown = sorted(set(raw) - set(DEFAULT_OPTIONS))
    if unknown:
        raise InputError(
            f"unknown option {unknown[0]!r}; known: {sorted(DEFAULT_OPTIONS)}", where=where
        )
    out = dict(DEFAULT_OPTIONS)
    for key, v in raw.items():
        default = DEFAULT_OPTIONS[key]
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
            raise InputError(f"expected a positive number, got {v!r}", where=f"{where}.{key}")
        if isinstance(default, int) and not float(v).is_integer():
            raise InputError(f"expected a whole number, got {v!r}", where=f"{where}.{key}")
        out[key] = type(default)(v)
    for key in ("rules_capture_target", "alpha", "power", "treatment_share"):
        if not 0 < out[key] < 1 + (key == "rules_capture_target"):
            raise InputError(
                f"expected a number between 0 and 1, got {out[key]!r}", where=f"{where}.{key}"
            )
    if out["bootstrap_resamples"] < 100:
        raise InputError("expected at least 100 resamples", where=f"{where}.bootstrap_resamples")
    return out


def _name_list(raw: object, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise InputError("expected a list of column names", where=where)
    return tuple(raw)


def _time_features(value: object) -> str:
    """What to do with features that only encode the date: "drop" (the default) or "keep"."""
    if value not in ("drop", "keep"):
        raise InputError(f"expected 'drop' or 'keep', got {value!r}", where="time_features")
    return str(value)


def _time_unit(time: object, unit: object) -> str | None:
    """The time column's unit: for numeric time (an ordering, or Unix time); needs a column."""
    if unit is not None and not time:
        raise InputError("a time unit needs a time column ('time')", where="time_unit")
    return check_time_unit(unit)


def _seed(raw: object, where: str = "seed") -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise InputError(f"expected a non-negative whole number, got {raw!r}", where=where)
    return raw


def load_case(path: str | Path) -> Case:
    """Read and validate a case YAML; paths inside are relative to the case file."""
    import yaml

    path = Path(path)
    if path.is_dir():
        raise InputError("a folder, not a file: expected a case file", where=str(path))
    if not path.is_file():
        raise InputError("no such case file", where=str(path))
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise yaml_error(exc, str(path)) from None
    except UnicodeDecodeError:
        raise InputError("not a UTF-8 text file", where=str(path)) from None
    if raw is None:
        raise InputError("the case file is empty", where=str(path))
    if not isinstance(raw, Mapping):
        raise InputError(
            "expected a mapping of case fields (name, data, target, costs, ...)", where=str(path)
        )
    try:
        return _case_from_mapping(raw, path)
    except InputError as exc:
        if not (exc.where or "").startswith(str(path)):
            raise InputError(str(exc), where=str(path)) from None
        raise


def _existing_file(base: Path, name: str, what: str, where: str) -> Path:
    """`name` resolved against the case file's folder; it must be a file."""
    path = (base / name).resolve()
    if path.is_dir():
        raise InputError(f"{what} {name!r} is a folder, not a file ({path})", where=where)
    if not path.is_file():
        raise InputError(f"{what} {name!r} not found (looked in {path})", where=where)
    return path


def _case_from_mapping(raw: Mapping, path: Path) -> Case:
    unknown = sorted(set(raw) - _KNOWN_KEYS)
    if unknown:
        raise InputError(f"unknown field {unknown[0]!r}; known fields: {sorted(_KNOWN_KEYS)}")
    for key in ("data", "target", "costs"):
        if raw.get(key) in (None, ""):
            raise InputError(f"missing field {key!r}")
    for key in ("name", "question", "data", "target", "currency"):
        if key in raw and not isinstance(raw[key], str):
            raise InputError(f"expected text, got {raw[key]!r}", where=key)
    if raw.get("time") is not None and not isinstance(raw["time"], str):
        raise InputError(f"expected a column name, got {raw['time']!r}", where="time")
    base = path.parent
    data_path = _existing_file(base, raw["data"], "data file", "data")
    rules_path = None
    if raw.get("rules"):
        if not isinstance(raw["rules"], str):
            raise InputError(f"expected a path, got {raw['rules']!r}", where="rules")
        rules_path = _existing_file(base, raw["rules"], "rule file", "rules")
    assumptions = raw.get("assumptions") or {}
    parse_assumptions(assumptions)
    return Case(
        name=raw.get("name") or path.stem.removesuffix(".case"),
        question=raw.get("question", ""),
        data_path=data_path,
        target=raw["target"],
        time=raw.get("time"),
        time_unit=_time_unit(raw.get("time"), raw.get("time_unit")),
        time_features=_time_features(raw.get("time_features", "drop")),
        ignore=_name_list(raw.get("ignore"), "ignore"),
        currency=raw.get("currency", "USD"),
        costs=parse_costs(raw["costs"]),
        decision=parse_decision(raw.get("decision"), "decision"),
        rules_path=rules_path,
        assumptions=dict(assumptions),
        seed=_seed(raw.get("seed", 0)),
        options=parse_options(raw.get("options")),
        source=path.resolve(),
        incumbent=_incumbent(raw),
        trained_until=_trained_until(raw.get("trained_until")),
        models=parse_policies(raw.get("policies")),
    )


def parse_policies(raw: object, where: str = "policies") -> dict:
    """The case file's `policies: {NAME: mlflow:MODEL_URI}`: ready-made models by name."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InputError("expected a mapping of NAME: mlflow:MODEL_URI", where=where)
    for name, uri in raw.items():
        if not isinstance(name, str) or not isinstance(uri, str) or not uri.startswith("mlflow:"):
            raise InputError(f"expected mlflow:MODEL_URI, got {uri!r}", where=f"{where}.{name}")
    return dict(raw)


def _incumbent(raw: Mapping) -> Incumbent | None:
    """The case file's `incumbent:` (with `incumbent_missing:`), or None."""
    if raw.get("incumbent") is None:
        if raw.get("incumbent_missing") is not None:
            raise InputError("needs an incumbent column ('incumbent')", where="incumbent_missing")
        return None
    return parse_incumbent(raw["incumbent"], raw.get("incumbent_missing"))


def case_from_arguments(
    data: str | Path | pd.DataFrame,
    *,
    target: str,
    costs: Mapping | CostMatrix,
    name: str | None = None,
    question: str = "",
    time: str | None = None,
    time_unit: str | None = None,
    time_features: str = "drop",
    ignore: tuple[str, ...] | list[str] = (),
    currency: str = "USD",
    volume: str | float = "1000 per day",
    timing: str = "periodic",
    precomputable: bool = True,
    latency_budget_ms: float = 100.0,
    label_delay_days: float = 30.0,
    rules: str | Path | None = None,
    assumptions: Mapping | None = None,
    seed: int = 0,
    positive: object = None,
    incumbent: str | Mapping | None = None,
    incumbent_missing: str | None = None,
    trained_until: str | None = None,
    **options,
) -> Case:
    """Build a Case from arguments (library and command line).

    `costs` is a CostMatrix, a case-file style mapping (`{"matrix": ..., "decisions": ...}`),
    or the binary shortcut `{"fp": .., "fn": .., "tp": 0, "tn": 0}`; the positive class is
    `positive` or, by default, the last of the sorted target values.
    """
    frame = data if isinstance(data, pd.DataFrame) else None
    data_path = None if frame is not None else Path(data).resolve()
    if data_path is not None and data_path.is_dir():
        raise InputError("a folder, not a file: expected a data file", where=str(data))
    if data_path is not None and not data_path.is_file():
        raise InputError("no such data file", where=str(data))
    if not isinstance(target, str) or not target:
        raise InputError("a target column is needed", where="target")
    matrix = _costs_from_argument(costs, target, frame, data_path, positive)
    decision = parse_decision(
        {
            "volume": volume,
            "timing": timing,
            "precomputable": precomputable,
            "latency_budget_ms": latency_budget_ms,
            "label_delay_days": label_delay_days,
        },
        "decision",
    )
    rules_path = Path(rules).resolve() if rules else None
    if rules_path is not None and rules_path.is_dir():
        raise InputError("a folder, not a file: expected a rule file", where=str(rules))
    if rules_path is not None and not rules_path.is_file():
        raise InputError("no such rule file", where=str(rules))
    if isinstance(ignore, str):
        ignore = (ignore,)
    parse_assumptions(assumptions)
    return Case(
        name=name or (data_path.name.split(".")[0] if data_path else "analysis"),
        question=question,
        data_path=data_path,
        frame=frame,
        target=target,
        time=time,
        time_unit=_time_unit(time, time_unit),
        time_features=_time_features(time_features),
        ignore=tuple(ignore),
        currency=currency,
        costs=matrix,
        decision=decision,
        rules_path=rules_path,
        assumptions=dict(assumptions or {}),
        seed=_seed(seed),
        options=parse_options(options or None),
        incumbent=_incumbent({"incumbent": incumbent, "incumbent_missing": incumbent_missing}),
        trained_until=_trained_until(trained_until),
    )


def _costs_from_argument(costs, target, frame, data_path, positive) -> CostMatrix:
    if isinstance(costs, CostMatrix):
        return costs
    if not isinstance(costs, Mapping):
        raise InputError("expected a cost matrix or {'fp': .., 'fn': ..}", where="costs")
    if "matrix" in costs:
        return parse_costs(costs)
    unknown = sorted(set(costs) - {"fp", "fn", "tp", "tn"})
    if unknown or not {"fp", "fn"} <= set(costs):
        raise InputError(
            "the binary shortcut needs 'fp' and 'fn' (and optionally 'tp', 'tn')", where="costs"
        )
    from advisor.core.reading import read_target_values

    values = read_target_values(frame, data_path, target)
    source = str(data_path) if data_path is not None else "data"
    if len(values) != 2:
        raise InputError(
            f"the fp/fn shortcut needs exactly two classes, found {len(values)}: "
            f"{[str(v) for v in values[:10]]}; write a cost matrix in a case file",
            where=f"{source}: column {target!r}",
        )
    if positive is None:
        negative, pos = values
    else:
        from advisor.core.costs import label_key

        keys = [label_key(v) for v in values]
        if label_key(positive) not in keys:
            raise InputError(
                f"positive class {positive!r} is not among the values of {target!r}: {values}",
                where=source,
            )
        pos = values[keys.index(label_key(positive))]
        negative = values[1 - keys.index(label_key(positive))]
    return CostMatrix.binary(negative, pos, **{k: costs[k] for k in costs})


def resolve_case(case: Case | str | Path | pd.DataFrame, **kwargs) -> Case:
    """A Case from a Case, a case-file path, a bundled case's name (`"telco-churn"`), or data
    (path or frame) plus keyword arguments. An existing file wins over a bundled name."""
    if isinstance(case, Case):
        if kwargs:
            raise InputError(f"unexpected arguments with a Case: {sorted(kwargs)}")
        return case
    if isinstance(case, pd.DataFrame) or kwargs.get("target"):
        return case_from_arguments(case, **kwargs)
    path = Path(case)
    if path.suffix.lower() in {".yaml", ".yml"}:
        if kwargs:
            raise InputError(f"unexpected arguments with a case file: {sorted(kwargs)}")
        if not path.exists() and is_bundled(path.stem):
            raise InputError(
                f"no such case file; the bundled case goes by its name: {path.stem!r}",
                where=str(case),
            )
        return load_case(path)
    if path.is_dir():
        raise InputError("a folder: expected a case file or a bundled case's name", where=str(case))
    if not path.is_file():
        if kwargs:
            raise InputError(f"unexpected arguments with a case name: {sorted(kwargs)}")
        return load_case(bundled_case_file(str(case)))
    raise InputError(
        "expected a case file (.yaml) or data with target= and costs=", where=str(case)
    )
