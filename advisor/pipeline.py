"""The data flow, read top to bottom: each stage is a pure function returning a frozen value.

    case -> data -> split -> features -> policies -> roles -> evaluation -> rule report,
    model report -> shadow -> experiment -> latency -> drift -> upkeep -> recommendation

Choices (list length, calibration, which rule list stands for ship-rules) are made on the
validation split while fitting and assigning roles; the test split is scored once, in
`evaluate`, and every later stage reads that evaluation. The JSON is assembled at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pandas as pd

from advisor.bootstrap import resampler_for
from advisor.case import Case, case_from_arguments, load_case
from advisor.data import Split, load_dataset, split_dataset
from advisor.drift import track_drift
from advisor.errors import InputError
from advisor.evaluate import evaluate
from advisor.experiment import plan_ab_test
from advisor.explain import explain_model
from advisor.features import FeatureSpec
from advisor.latency import measure_latency
from advisor.maintenance import price_upkeep
from advisor.manifest import build_manifest
from advisor.ml import MLPolicy
from advisor.policy import BaselinePolicy, Policy
from advisor.psi import training_reference
from advisor.recommend import decision_inputs, recommend
from advisor.result import Result, assemble
from advisor.roles import assign_roles, decide_validation
from advisor.rules.policy import ExpertRulesPolicy, LearnedRulesPolicy, describe_rule_lists
from advisor.shadow import run_shadow

Progress = Callable[[str], None]
EXAMPLE_ROWS = 5  # test rows kept on the Result: the input example of tracked models


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


def candidate_policies(case: Case, spec: FeatureSpec) -> list[Policy]:
    """Every policy a run compares, unfitted; adding a policy means adding it here."""
    policies: list[Policy] = [
        BaselinePolicy(case.costs, spec),
        LearnedRulesPolicy(
            case.costs,
            spec,
            max_rules=int(case.option("max_rules")),
            max_conditions=int(case.option("max_conditions")),
            seed=case.seed,
            list_name=f"{case.name}-rules",
        ),
    ]
    if case.rules_path is not None:
        policies.append(ExpertRulesPolicy(case.rules_path, case.costs, spec))
    policies.append(MLPolicy(case.costs, spec, seed=case.seed))
    return policies


def fit_policies(case: Case, split: Split, spec: FeatureSpec) -> dict[str, Policy]:
    """Each policy fitted the same way: on the training split, with the validation split.

    A hand-written rule file is read first, so a mistake in it is reported before any learning.
    """
    candidates = candidate_policies(case, spec)
    first = sorted(candidates, key=lambda p: not isinstance(p, ExpertRulesPolicy))
    fitted = {p.name: p.fit(split.train, split.valid) for p in first}
    return {p.name: fitted[p.name] for p in candidates}


def _over_http(latency, policies: dict[str, Policy], frame: pd.DataFrame, seed: int):
    """The latency stage's figures through the real service (`--measure-service`)."""
    from advisor.service import NEEDS_EXTRA, missing_extra

    try:
        from advisor.service.measure import measure_service
    except ImportError as exc:
        if missing_extra(exc):
            raise InputError(f"--measure-service {NEEDS_EXTRA}") from None
        raise
    return measure_service(latency, policies, frame, seed)


class StageClock:
    """Seconds per stage, with a progress message as each stage starts."""

    def __init__(self, progress: Progress | None) -> None:
        self.seconds: dict[str, float] = {}
        self.progress = progress

    @contextmanager
    def __call__(self, name: str, message: str) -> Iterator[None]:
        if self.progress:
            self.progress(message)
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 3)


def advise(
    case: Case | str | Path | pd.DataFrame,
    *,
    progress: Progress | None = None,
    track: bool | str | None = None,
    register: str | None = None,
    measure_service: bool = False,
    **kwargs,
) -> Result:
    """Run every stage for a case and return the Result.

    `case` is a Case, a case-file path, or data (a path or a DataFrame) with `target=`,
    `costs=` and the decision context as keyword arguments (see `case_from_arguments`).
    `track` logs the run to MLflow (`True`: MLflow's default store, or a tracking URI), and
    `register` names the registered model that the recommended policy becomes (see `tracking`).
    `measure_service` also times every policy through the real service over HTTP (the serve
    extra), and the realtime-ml check then reads that figure.
    """
    if track or register:
        from advisor.tracking import check_request

        check_request(track, register)
    clock = StageClock(progress)
    with clock("load", "Loading the case and its data"):
        case = resolve_case(case, **kwargs)
        data = load_dataset(case)
    with clock("split", "Splitting 60/20/20"):
        split = split_dataset(data, case.seed)
    with clock("features", "Fitting the feature definitions"):
        spec = FeatureSpec(data.schema).fit(split.train.frame)
        reference = training_reference(spec, split.train.frame)
    with clock("fit", "Fitting the policies"):
        policies = fit_policies(case, split, spec)
        resamples = case.option("bootstrap_resamples")
        valid_resampler = resampler_for(split.times(split.valid), resamples, case.seed)
        decided = decide_validation(policies, split.valid)
        roles = assign_roles(decided, split.valid, case.costs, valid_resampler)
    with clock("evaluate", "Evaluating every policy on the test split"):
        resampler = resampler_for(split.times(split.test), resamples, case.seed)
        evaluation = evaluate(policies, split.test, case.costs, roles, resampler)
    with clock("rules", "Describing the rule lists"):
        rule_report = describe_rule_lists(policies, split.test, case.costs)
    with clock("model", "Explaining the model"):
        model = explain_model(
            policies.get(roles.treatment),
            evaluation,
            split.test,
            split.valid,
            decided.get(roles.treatment),
            spec,
            case.costs,
            case.seed,
        )
    with clock("shadow", "Running ML in shadow beside the rules"):
        shadow = run_shadow(
            evaluation,
            roles,
            policies[roles.control],
            split.test.frame,
            case.costs.decisions,
            case.decision.volume_per_day,
        )
    with clock("experiment", "Planning and simulating the A/B test"):
        experiment = plan_ab_test(
            evaluation,
            roles,
            shadow,
            case.decision,
            alpha=case.option("alpha"),
            power=case.option("power"),
            treatment_share=case.option("treatment_share"),
            max_experiment_days=case.option("max_experiment_days"),
            currency=case.currency,
            seed=case.seed,
        )
    with clock("latency", "Measuring serving latency"):
        latency = measure_latency(policies, split.test.frame, case.decision, case.seed)
        if measure_service:
            latency = _over_http(latency, policies, split.test.frame, case.seed)
        latency = replace(latency, realtime_policy=roles.treatment)
    with clock("drift", "Checking drift and decay over time"):
        drift = track_drift(
            split, evaluation, roles, policies.get(roles.treatment), spec, case.seed, reference
        )
    with clock("maintenance", "Pricing the upkeep of each option"):
        upkeep = price_upkeep(
            case.assumptions,
            drift.retrains_per_month,
            case.option("horizon_years"),
            constant_rules=roles.control == roles.baseline,
        )
    with clock("recommend", "Weighing the options"):
        inputs = decision_inputs(
            evaluation,
            roles,
            experiment,
            latency,
            upkeep,
            case.decision,
            max_experiment_days=case.option("max_experiment_days"),
            capture_target=case.option("rules_capture_target"),
        )
        baseline_decision = policies[roles.baseline].describe()["details"]["decision"]
        recommendation = recommend(
            inputs, roles, experiment, baseline_decision, case.currency, len(split.test)
        )
    payload = assemble(
        case=case.to_dict(),
        data={**data.summary(case.costs), "split": split.summary(), "features": spec.to_dict()},
        roles=roles,
        evaluation=evaluation,
        rules=rule_report,
        model=model,
        shadow=shadow,
        experiment=experiment,
        latency=latency,
        drift=drift,
        maintenance=upkeep,
        recommendation=recommendation,
        manifest=build_manifest(data.sha256, case.seed, case.to_dict()),
        timings=clock.seconds,
    )
    columns = list(dict.fromkeys([*spec.names_, *case.costs.columns]))
    result = Result(
        data=payload,
        policies=policies,
        reference=reference,
        examples=split.test.frame.head(EXAMPLE_ROWS)[columns],
    )
    if track:
        from advisor.tracking import track_result

        track_result(result, uri=None if track is True else track, register=register)
    return result
