"""The data flow, stage by stage: case -> data -> split -> features -> policies -> evaluation -> Result."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from advisor.case import Case, case_from_arguments, load_case
from advisor.data import Dataset, Split, load_dataset, split_dataset
from advisor.errors import InputError
from advisor.evaluate import evaluate
from advisor.features import FeatureSpec
from advisor.manifest import build_manifest
from advisor.ml import MLPolicy
from advisor.policy import BaselinePolicy, Policy
from advisor.result import Result

Progress = Callable[[str], None]


def resolve_case(case: Case | str | Path | pd.DataFrame, **kwargs) -> Case:
    """A Case from a Case, a case-file path, or data (path or frame) plus keyword arguments."""
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
        return load_case(path)
    raise InputError(
        "expected a case file (.yaml) or data with target= and costs=", where=str(case)
    )


def fit_policies(case: Case, split: Split, spec: FeatureSpec, data: Dataset) -> dict[str, Policy]:
    """Fit every policy the run compares; adding a policy means adding it here."""
    from advisor.rules.policy import fit_rule_policies

    train, valid = split.train, split.valid
    policies: dict[str, Policy] = {
        "baseline": BaselinePolicy(case.costs, spec).fit(train.frame, train.y)
    }
    policies.update(fit_rule_policies(case, split, spec, data))
    policies["ml"] = MLPolicy(case.costs, spec, seed=case.seed).fit(
        train.frame, train.y, valid.frame, valid.y
    )
    return policies


class Timings:
    def __init__(self, progress: Progress | None) -> None:
        self.seconds: dict[str, float] = {}
        self.progress = progress

    @contextmanager
    def stage(self, name: str, message: str):
        if self.progress:
            self.progress(message)
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 3)


def advise(
    case: Case | str | Path | pd.DataFrame, *, progress: Progress | None = None, **kwargs
) -> Result:
    """Run every stage for a case and return the Result.

    `case` is a Case, a case-file path, or data (a path or a DataFrame) with `target=`,
    `costs=` and the decision context as keyword arguments (see `case_from_arguments`).
    """
    timings = Timings(progress)
    with timings.stage("load", "Loading the case and its data"):
        case = resolve_case(case, **kwargs)
        data = load_dataset(case)
    with timings.stage("split", "Splitting 60/20/20"):
        split = split_dataset(data, case.seed)
    with timings.stage("features", "Fitting the feature definitions"):
        spec = FeatureSpec(data.schema).fit(split.train.frame)
    with timings.stage("fit", "Fitting the policies"):
        policies = fit_policies(case, split, spec, data)
    with timings.stage("evaluate", "Evaluating every policy on the test split"):
        evaluation = evaluate(
            policies, split.test, case.costs, case.option("bootstrap_resamples"), case.seed
        )
    payload = {
        "case": case.to_dict(),
        "data": {**data.summary(case.costs), "split": split.summary(), "features": spec.to_dict()},
        "evaluation": evaluation.summary,
    }
    stages = StageInputs(case, data, split, spec, policies, evaluation, timings)
    for name, message, run in later_stages():
        with timings.stage(name, message):
            run(stages, payload)
    payload["manifest"] = build_manifest(data.sha256, case.seed, case.to_dict())
    payload["timings"] = dict(timings.seconds)
    return Result(data=payload, policies=policies)


class StageInputs:
    """What the later stages (simulation, drift, latency, maintenance, recommendation) read."""

    def __init__(self, case, data, split, spec, policies, evaluation, timings) -> None:
        self.case = case
        self.data = data
        self.split = split
        self.spec = spec
        self.policies = policies
        self.evaluation = evaluation
        self.timings = timings


def later_stages() -> list[tuple[str, str, Callable[[StageInputs, dict], None]]]:
    """Stages after evaluation, in order; each adds its own keys to the payload.

    Each entry is (timing name, progress message, function(stages, payload)). Later entries
    may read what earlier ones wrote: maintenance reads the drift cadence, and the
    recommendation reads everything.
    """
    from advisor.drift import run_drift_stage
    from advisor.experiment import run_experiment_stage
    from advisor.explain import explain as explain_stage
    from advisor.maintenance import run_maintenance_stage
    from advisor.recommend import run_recommendation_stage
    from advisor.rules.policy import rules_stage
    from advisor.serving import run_latency_stage
    from advisor.shadow import run_shadow_stage

    return [
        ("rules", "Describing the rule lists", rules_stage),
        ("model", "Explaining the model", explain_stage),
        ("shadow", "Running ML in shadow beside the rules", run_shadow_stage),
        ("experiment", "Planning and simulating the A/B test", run_experiment_stage),
        ("latency", "Measuring serving latency", run_latency_stage),
        ("drift", "Checking drift and decay over time", run_drift_stage),
        ("maintenance", "Pricing the upkeep of each option", run_maintenance_stage),
        ("recommend", "Weighing the options", run_recommendation_stage),
    ]
