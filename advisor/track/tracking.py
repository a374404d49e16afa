"""Tracking: one MLflow run per analysis, in an experiment named after the case, with every
policy as a loadable model.

A run holds the parameters (case, seed, costs, volume, timing, options, the upkeep assumptions),
the metrics (each policy's cost per decision and its interval bounds, the rules capture, the A/B
test's size and days, p99 latency, each option's net annual value), the tags (recommendation,
data sha256, git commit, advisor version), `report.html` and `result.json`, the data set (its
source, the columns the policies read and the data's sha256 as digest) and one MLflow pyfunc
model per policy wrapping its bundle (`pyfunc.py`). With a registered-model name, the
recommended policy's model becomes a new version of it with the alias `champion`.

MLflow is the optional extra `advisor-ship[mlflow]`, imported only here and only when asked for.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pandas as pd

from advisor.artefacts.payload import ResultData
from advisor.artefacts.run import POLICIES, REPORT, RESULT, open_run
from advisor.core.errors import InputError, first_line
from advisor.policies.output import output_fields
from advisor.policies.registry import plugin_of
from advisor.ship.export import option_policy
from advisor.stats.interval import Interval

CHAMPION = "champion"  # the registry alias of the recommended policy's model
DIGEST_CHARS = 36  # the longest dataset digest MLflow stores
PACKAGE = Path(__file__).resolve().parent.parent
MODEL_CODE = Path(__file__).resolve().parent / "model_code.py"
# What loading and running a bundle imports beyond advisor itself (which each model carries).
DECISION_PARAMS = (
    "volume",
    "volume_per_day",
    "timing",
    "precomputable",
    "latency_budget_ms",
    "label_delay_days",
)
PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Tracked:
    """Where a run went: the store, the experiment and run, each policy's model URI and, when
    registered, the champion model's URI and version."""

    uri: str
    experiment_id: str
    run_id: str
    models: dict[str, str]
    registered: str | None = None
    version: str | None = None


def require_mlflow():
    """The `mlflow` module, or an InputError saying how to install it."""
    try:
        import mlflow
    except ImportError:
        raise InputError(
            "--track needs MLflow, which is not installed: pip install 'advisor-ship[mlflow]'"
        ) from None
    return mlflow


def check_request(track: bool | str | None, register: str | None) -> None:
    """Refuse a tracking request before any work: MLflow missing, a registered-model name
    without tracking, or an empty one."""
    if register is not None and (not isinstance(register, str) or not register.strip()):
        raise InputError("--register needs a model name")
    if register and track in (None, False):
        raise InputError("--register needs --track: a model is registered from a tracked run")
    if track not in (None, False):
        require_mlflow()


def _bounds(prefix: str, interval: Interval) -> dict[str, object]:
    """`prefix`, `prefix_low` and `prefix_high` from an interval."""
    return {
        prefix: interval.estimate,
        f"{prefix}_low": interval.low,
        f"{prefix}_high": interval.high,
    }


def run_metrics(result: Mapping) -> dict[str, float]:
    """The run's figures as MLflow metrics; a figure the run did not measure is left out."""
    view = ResultData(result)
    out: dict[str, object] = {}
    evaluation = view.evaluation
    for name, scored in (evaluation.policies if evaluation else {}).items():
        out.update(_bounds(f"{name}/cost_per_decision", scored.cost_per_decision))
    if evaluation and evaluation.rules_capture:
        out.update(_bounds("rules_capture", evaluation.rules_capture.share))
    test = view.experiment.test if view.experiment else None
    if test is not None:
        out["experiment/n_per_arm"] = test.n_per_arm
        out["experiment/days_enrolling"] = test.days_enrolling
        out["experiment/days_needed"] = test.days_needed
    for name, measured in (view.latency.policies if view.latency else {}).items():
        out[f"{name}/p99_latency_ms"] = measured.p99_ms
    recommendation = view.recommendation
    for option, values in (recommendation.options if recommendation else {}).items():
        out.update(_bounds(f"{option}/net_annual_value", values.net))
        out[f"{option}/annual_upkeep"] = values.annual_upkeep
    out["p_best"] = recommendation.p_best if recommendation else None
    out["stability"] = recommendation.stability if recommendation else None
    return {
        k: float(v)
        for k, v in out.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def run_params(result: Mapping) -> dict[str, str]:
    """The analysis's inputs as MLflow parameters: the case, its costs, volume and timing, the
    options and the upkeep assumptions as the run used them."""
    case = result["case"]
    decision = case.get("decision") or {}
    costs = case.get("costs") or {}
    params: dict[str, object] = {
        "case": case.get("name"),
        "question": case.get("question") or None,
        "data": case.get("data"),
        "data_rows": (result.get("data") or {}).get("rows"),
        "target": case.get("target"),
        "time": case.get("time"),
        "expert_rules": case.get("rules"),
        "currency": case.get("currency"),
        "seed": case.get("seed"),
        "decisions": json.dumps(costs.get("decisions"), ensure_ascii=False),
        "costs": json.dumps(costs.get("matrix"), ensure_ascii=False),
        **{key: decision.get(key) for key in DECISION_PARAMS},
    }
    for key, value in (case.get("options") or {}).items():
        params[f"option.{key}"] = value
    upkeep = ResultData(result).maintenance
    for key, entry in (upkeep.assumptions if upkeep else {}).items():
        params[f"assumption.{key}"] = entry.value
    return {k: str(v) for k, v in params.items() if v is not None and v != ""}


def run_tags(result: Mapping) -> dict[str, str]:
    """What identifies the run: the recommendation, the data's sha256, the code version."""
    manifest = result.get("manifest") or {}
    recommendation = ResultData(result).recommendation
    tags = {
        "case": result["case"].get("name"),
        "recommendation": recommendation.option if recommendation else None,
        "recommended_policy": _recommended_policy(result),
        "data_sha256": manifest.get("data_sha256"),
        "git_commit": manifest.get("git_commit"),
        "advisor_version": manifest.get("advisor_version"),
        "mlflow.note.content": recommendation.headline if recommendation else None,
    }
    return {k: str(v) for k, v in tags.items() if v}


def _recommended_policy(result: Mapping) -> str | None:
    """The recommended option's policy, or None when there is none or it has no bundle (the
    answer is to keep the incumbent, which is evaluated only)."""
    recommendation = ResultData(result).recommendation
    if recommendation is None:
        return None
    policy = option_policy(result, recommendation.option)
    bundled = ((result.get("policies") or {}).get(policy) or {}).get("bundled", True)
    return policy if bundled else None


def policy_signature(policy, columns: list[str]):
    """The model's signature: every column a run's policies read, required only where this
    policy reads it, and the outputs `decisions_frame` gives.

    The inputs are typed `any`: the bundle reads its columns itself, as in the analysis
    (numbers as int or float with missing values, categories as text or pandas categories,
    unseen levels), where MLflow's own types would refuse an int64 column declared double, a
    missing value in one declared long, or a pandas category declared string."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema
    from mlflow.types.schema import AnyType

    reads = set(policy.input_columns())
    inputs = [ColSpec(AnyType(), c, required=c in reads) for c in columns]
    types = {"string": DataType.string, "long": DataType.long, "double": DataType.double}
    outputs = [
        ColSpec(types[kind], name, required=name != "decision")
        for name, kind in output_fields(policy)
    ]
    params = ParamSchema(
        [
            ParamSpec("reasons", DataType.long, 0),
            ParamSpec("reasons_method", DataType.string, "exact"),
        ]
    )
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs), params=params)


def _column_type(kind: str | None, values: pd.Series):
    """The MLflow type of a data column from its feature kind (cost columns, which have none,
    are numbers), to describe the data set."""
    from mlflow.types import DataType

    if kind in (None, "numeric"):
        return DataType.double
    if kind == "boolean" and pd.api.types.is_bool_dtype(values):
        return DataType.boolean
    if kind == "datetime":
        return DataType.datetime
    return DataType.string


def requirements(policy) -> list[str]:
    """The model's pip requirements: the packages loading its bundle imports, at the versions
    that wrote it (advisor itself travels with the model as code)."""
    out = []
    for name in ("mlflow", *plugin_of(policy).requirements):
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(name)
    return out


@contextmanager
def _using(mlflow, uri: str | None) -> Iterator[None]:
    """MLflow pointed at `uri` for the block (its own default when None), then as it was."""
    if uri is None:
        yield
        return
    before = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)


@contextmanager
def _quiet() -> Iterator[None]:
    """MLflow's and Alembic's info messages, warnings and progress bars kept off the terminal
    (advisor says what it logged); errors stay."""
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic")]
    levels = [lg.level for lg in loggers]
    bar = os.environ.get(PROGRESS_BAR)
    os.environ[PROGRESS_BAR] = "false"
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
        if bar is None:
            os.environ.pop(PROGRESS_BAR, None)
        else:
            os.environ[PROGRESS_BAR] = bar


def _experiment_id(mlflow, name: str, uri: str) -> str:
    """The experiment named after the case, created when it does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            return mlflow.create_experiment(name)
        if experiment.lifecycle_stage != "active":
            raise InputError(
                f"the MLflow experiment {name!r} is deleted; restore it or track elsewhere",
                where=uri,
            )
        return experiment.experiment_id
    except MlflowException as exc:
        first = first_line(exc)
        raise InputError(f"MLflow cannot use this tracking store: {first}", where=uri) from None


def _dataset(result: Mapping, examples: pd.DataFrame):
    """The analysed data as an MLflow data set: where it came from, the columns the policies
    read and, as digest, the data's sha256 (cut to the length MLflow stores)."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.types import ColSpec, Schema

    kinds = ((result.get("data") or {}).get("schema") or {}).get("features") or {}
    schema = Schema([ColSpec(_column_type(kinds.get(c), examples[c]), c) for c in examples.columns])

    case = result["case"]
    path = case.get("data")
    if path and path != "<data frame>":
        source = resolve_dataset_source(Path(path).resolve().as_uri())
    else:
        source = CodeDatasetSource(tags={"advisor.core.case": case["name"]})
    digest = result["manifest"]["data_sha256"][:DIGEST_CHARS]
    return MetaDataset(source, name=case["name"], digest=digest, schema=schema)


def _log_policy(mlflow, bundle: Path, examples: pd.DataFrame):
    """One policy as an MLflow pyfunc model over its bundle."""
    from advisor.artefacts.bundle import load_policy
    from advisor.track.pyfunc import BUNDLE

    policy = load_policy(bundle)
    info = mlflow.pyfunc.log_model(
        name=policy.name,
        python_model=str(MODEL_CODE),
        artifacts={BUNDLE: str(bundle)},
        code_paths=[str(PACKAGE)],
        signature=policy_signature(policy, list(examples.columns)),
        input_example=examples,
        metadata={"input_kinds": {e.name: e.kind for e in policy.spec.encoders_}},
        pip_requirements=requirements(policy),
        tags={"policy": policy.name, "kind": policy.kind, "model_version": policy.version},
    )
    return info


def _register(mlflow, model, name: str, run_id: str, tags: Mapping[str, str]) -> str:
    """A new version of the registered model `name` from a logged model, aliased `champion`."""
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    try:
        try:
            client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                raise
        created = client.create_model_version(
            name, model.model_uri, run_id=run_id, tags=dict(tags), model_id=model.model_id
        )
        client.set_registered_model_alias(name, CHAMPION, created.version)
    except MlflowException as exc:
        first = first_line(exc)
        raise InputError(f"MLflow could not register the model: {first}", where=name) from None
    return str(created.version)


def track_run(
    folder: str | Path,
    examples: pd.DataFrame,
    *,
    uri: str | None = None,
    register: str | None = None,
    progress: Progress | None = None,
) -> Tracked:
    """Log a run folder to MLflow (`uri`, or MLflow's own default): one run in the experiment
    named after the case, and one model per policy bundle; with `register`, the recommended
    policy's model becomes a new version of that registered model, aliased `champion`.
    `examples` are a few rows of the data (the models' input example)."""
    check_request(True, register)
    if examples is None:
        raise InputError("no example rows to track with (a Result read from JSON has none)")
    mlflow = require_mlflow()
    run = open_run(folder)
    result = run.result
    evaluation = run.view.evaluation
    names = [n for n in evaluation.policies if (run.path / POLICIES / n).is_dir()]
    recommended = _recommended_policy(result)
    if register and recommended is None:
        raise InputError(
            "the run has no recommended model to register (no recommendation, or it is to "
            "keep the incumbent, which is not a model)",
            where=str(run.path),
        )
    with _quiet(), _using(mlflow, uri):
        store = mlflow.get_tracking_uri()
        if progress:
            progress(f"Logging the run and its {len(names)} policies to MLflow ({store})")
        experiment = _experiment_id(mlflow, run.name, store)
        option = run.view.recommendation.option if run.view.recommendation else None
        with mlflow.start_run(
            experiment_id=experiment,
            run_name=f"{run.name} {option}" if option else run.name,
            nested=mlflow.active_run() is not None,
            tags=run_tags(result),
        ) as active:
            mlflow.log_params(run_params(result))
            mlflow.log_metrics(run_metrics(result))
            mlflow.log_artifact(str(run.path / REPORT))
            mlflow.log_artifact(str(run.path / RESULT))
            models = {n: _log_policy(mlflow, run.path / POLICIES / n, examples) for n in names}
            mlflow.log_input(_dataset(result, examples), context="analysis")
            run_id = active.info.run_id
        version = None
        if register:
            tags = {"case": run.name, "recommendation": option, "policy": recommended}
            version = _register(mlflow, models[recommended], register, run_id, tags)
    return Tracked(
        uri=store,
        experiment_id=experiment,
        run_id=run_id,
        models={n: info.model_uri for n, info in models.items()},
        registered=f"models:/{register}@{CHAMPION}" if version else None,
        version=version,
    )


def track_result(
    result,
    *,
    uri: str | None = None,
    register: str | None = None,
    progress: Progress | None = None,
) -> Tracked:
    """Track a Result that has no run folder on disk: written to a temporary folder first."""
    with tempfile.TemporaryDirectory(prefix="advisor-track-") as tmp:
        folder = result.save(tmp)
        return track_run(folder, result.examples, uri=uri, register=register, progress=progress)
