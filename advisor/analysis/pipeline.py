"""The data flow, read top to bottom: each stage is a pure function returning a frozen value.

    case -> data -> split -> features -> policies -> roles -> evaluation -> rule report,
    model report -> shadow -> experiment -> latency -> drift -> upkeep -> recommendation

Choices (list length, calibration, which rule list stands for ship-rules) are made on the
validation split while fitting and assigning roles; the test split is scored once, in
`evaluate`, and every later stage reads that evaluation. Each stage value is a typed, frozen
`Record` whose `to_dict()` is its result.json section and whose `from_dict()` reads it back;
the JSON is assembled from the returned `Analysis` by `advisor.artefacts.result`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from advisor.analysis.compared import Compared, compared_policies, own_policies
from advisor.analysis.crossfit import (
    Refits,
    cross_fit,
    plan_refits,
    pooled_inputs,
    settle_refits,
    with_refits,
)
from advisor.analysis.drift import Drift, track_drift
from advisor.analysis.evaluate import Evaluation, evaluate
from advisor.analysis.experiment import ExperimentPlan, plan_ab_test
from advisor.analysis.explain import ModelReport, explain_model
from advisor.analysis.latency import Latency, measure_latency
from advisor.analysis.maintenance import Upkeep, price_upkeep
from advisor.analysis.recommend import Recommendation, decision_inputs, recommend
from advisor.analysis.replace import Replacement, weigh_incumbent
from advisor.analysis.roles import Roles, assign_roles, decide_validation, validation_costs
from advisor.analysis.shadow import Shadow, run_shadow
from advisor.analysis.shipping import ship
from advisor.core.case import Case
from advisor.core.data import Dataset, Split, load_dataset, split_dataset, split_releasing
from advisor.core.features import FeatureSpec
from advisor.policies.base import BaselinePolicy, Policy
from advisor.policies.ml import MLPolicy
from advisor.policies.registry import plugin_of
from advisor.policies.rules.policy import (
    ExpertRulesPolicy,
    LearnedRulesPolicy,
    describe_rule_lists,
    refuse_date_columns,
)
from advisor.stats.bootstrap import resampler_for
from advisor.stats.psi import Reference, training_reference

Progress = Callable[[str], None]
EXAMPLE_ROWS = 5  # test rows kept on the Result: the input example of tracked models


def candidate_policies(case: Case, spec: FeatureSpec) -> list[Policy]:
    """Every policy a run compares, unfitted; adding a policy means adding it here."""
    policies: list[Policy] = [
        BaselinePolicy(case.costs, spec),
        LearnedRulesPolicy(case.costs, spec, rule_learner(case), list_name=f"{case.name}-rules"),
    ]
    if case.rules_path is not None:
        policies.append(ExpertRulesPolicy(case.rules_path, case.costs, spec))
    policies.append(MLPolicy(case.costs, spec, seed=case.seed))
    return [*policies, *own_policies(case, spec)]


def checked_first(policy: Policy) -> bool:
    """Whether a policy is fitted before the learners: what the user wrote or fitted."""
    return isinstance(policy, ExpertRulesPolicy) or plugin_of(policy).named_by_user


def timed(policy: Policy) -> bool:
    """Whether the latency stage times a policy: advisor's own, which stand for the options;
    not the incumbent (it is not served) nor a ready-made model (not an option: its speed is
    what its owner already knows)."""
    plugin = plugin_of(policy)
    return not (plugin.evaluated_only or plugin.named_by_user)


def rule_learner(case: Case, max_rules: int | None = None):
    """The case's rule-list learner, unfitted: its options' length limits and its seed."""
    from advisor.policies.rules.learner import RuleListClassifier

    return RuleListClassifier(
        max_rules=int(max_rules if max_rules is not None else case.option("max_rules")),
        max_conditions=int(case.option("max_conditions")),
        random_state=case.seed,
    )


def fit_policies(case: Case, split: Split, spec: FeatureSpec) -> dict[str, Policy]:
    """Each policy fitted the same way: on the training split, with the validation split.

    A hand-written rule file and the user's own models are read first, so a mistake in them
    is reported before any learning.
    """
    candidates = candidate_policies(case, spec)
    fitted = {p.name: p.fit(split.train, split.valid) for p in candidates if checked_first(p)}
    fitted |= side_by_side([p for p in candidates if not checked_first(p)], split)
    return {p.name: fitted[p.name] for p in candidates}


def side_by_side(policies: list[Policy], split: Split) -> dict[str, Policy]:
    """The learners fitted at the same time, each on its own thread. LightGBM leaves the cores
    partly idle between and within its rounds, which the rule search (numpy, releasing the
    GIL) fills. Each fit is seeded and touches only its own policy, so the policies are those
    of fitting one after another; a failure is raised in the policies' order."""
    from concurrent.futures import ThreadPoolExecutor

    if len(policies) <= 1:
        return {p.name: p.fit(split.train, split.valid) for p in policies}
    with ThreadPoolExecutor(max_workers=len(policies), thread_name_prefix="fit") as pool:
        running = [(p.name, pool.submit(p.fit, split.train, split.valid)) for p in policies]
    return {name: future.result() for name, future in running}


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


@dataclass(frozen=True)
class Analysis:
    """Every stage's value for one case, and the fitted policies: what a Result is built from."""

    case: Case
    data: dict
    roles: Roles
    evaluation: Evaluation
    rules: object
    model: ModelReport | None
    shadow: Shadow
    experiment: ExperimentPlan
    latency: Latency
    drift: Drift
    maintenance: Upkeep
    recommendation: Recommendation
    refits: Refits
    data_sha256: str
    timings: dict
    policies: dict = field(repr=False)
    reference: Reference = field(repr=False)
    examples: pd.DataFrame = field(repr=False)
    incumbent: Replacement | None = None
    compared: tuple[Compared, ...] = ()


ServiceTimer = Callable[[Latency, dict, pd.DataFrame, int], Latency]


def _model_expected(
    evaluation: Evaluation, roles: Roles, case: Case, frame: pd.DataFrame
) -> np.ndarray | None:
    """The ML model's expected cost of each decision on each test row, or None without a model."""
    score = evaluation.policies.get(roles.treatment) if roles.treatment else None
    if score is None or score.proba is None:
        return None
    return case.costs.expected_costs(score.proba, frame)


def analyse(
    case: Case,
    *,
    progress: Progress | None = None,
    time_service: ServiceTimer | None = None,
) -> Analysis:
    """Run every stage for a case, in the order of the data flow.

    `time_service`, when given, also times every policy through the real service over HTTP
    (the serve extra supplies it), and the realtime-ml check then reads that figure.
    """
    clock = StageClock(progress)
    with clock("load", "Loading the case and its data"):
        data = load_dataset(case)
        dropped = {c: why for c, why in data.time_proxies.items() if c not in data.schema.features}
        if case.rules_path is not None and dropped:
            refuse_date_columns(case.rules_path, dropped)
    with clock("split", "Splitting 60/20/20"):
        plan = plan_refits(len(data.y), data.schema.time is not None, int(case.option("refits")))
        if plan.refits:
            split = split_dataset(data, case.seed)
        else:  # no refit reads the whole frame again: the split alone holds the rows
            data, split = split_releasing(data, case.seed)
    return analyse_split(case, data, split, clock, time_service=time_service)


Evaluator = Callable[..., Evaluation]
Fitter = Callable[[Case, Split, FeatureSpec], dict]
ShadowRunner = Callable[..., Shadow]
DriftTracker = Callable[..., Drift]


def analyse_split(
    case: Case,
    data: Dataset,
    split: Split,
    clock: StageClock,
    *,
    time_service: ServiceTimer | None = None,
    evaluator: Evaluator = evaluate,
    fitter: Fitter = fit_policies,
    shadow_runner: ShadowRunner = run_shadow,
    drift_tracker: DriftTracker = track_drift,
) -> Analysis:
    """Every stage after the split; `fitter` fits the policies, `evaluator` scores the test
    rows, and `shadow_runner` and
    `drift_tracker` read them (in memory by default, or from a cluster's per-partition sums
    for a partitioned data set, `advisor.analysis.partitioned`)."""
    with clock("features", "Fitting the feature definitions"):
        spec = FeatureSpec(data.schema).fit(split.train.frame)
        reference = training_reference(spec, split.train.frame)
    with clock("fit", "Fitting the policies"):
        policies = fitter(case, split, spec)
        resamples = case.option("bootstrap_resamples")
        valid_resampler = resampler_for(split.times(split.valid), resamples, case.seed)
        decided = decide_validation(policies, split.valid)
        roles = assign_roles(decided, split.valid, case.costs, valid_resampler)
    with clock("refits", "Refitting on other rows: cross-fitting or backtests"):
        # policies given ready-made (evaluated as they are, not refitted) go in `given`
        refits = cross_fit(case, data, lambda s, fs: fit_policies(case, s, fs), given={})
    if refits.active:
        with clock("ship", "Refitting what ships on every labelled row"):
            shipped = ship(case, data, policies, len(split.train), refits.fits, refits.raw)
            refits = replace(refits, shipped=shipped)
    with clock("evaluate", "Evaluating every policy on the test split"):
        resampler = resampler_for(split.times(split.test), resamples, case.seed)
        evaluation = evaluator(policies, split.test, case.costs, roles, resampler)
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
        shadow = shadow_runner(
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
            model_expected=_model_expected(evaluation, roles, case, split.test.frame),
            out_of_fold=refits.arms,
        )
    with clock("latency", "Measuring serving latency"):
        served = {n: p for n, p in policies.items() if timed(p)}
        latency = measure_latency(served, split.test.frame, case.decision, case.seed)
        if time_service is not None:
            latency = time_service(latency, served, split.test.frame, case.seed)
        latency = replace(latency, realtime_policy=roles.treatment)
    with clock("drift", "Checking drift and decay over time"):
        drift = drift_tracker(
            split,
            evaluation,
            roles,
            policies.get(roles.treatment),
            spec,
            case.seed,
            reference,
            valid_costs=validation_costs(decided, split.valid, case.costs),
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
        test_inputs = inputs  # the test split's series: paired with the incumbent's
        inputs = pooled_inputs(refits, inputs)
        baseline_decision = policies[roles.baseline].describe()["details"]["decision"]
        recommendation = recommend(
            inputs, roles, experiment, baseline_decision, case.currency, evaluation.n_test
        )
        refits = settle_refits(refits, inputs, recommendation.option, case.seed)
        recommendation = with_refits(recommendation, refits)
        incumbent = None
        if case.incumbent is not None:
            incumbent, recommendation = weigh_incumbent(
                recommendation, test_inputs, evaluation, case.incumbent, "incumbent", data.skipped
            )
    columns = list(dict.fromkeys([*spec.names_, *case.costs.columns]))
    return Analysis(
        case=case,
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
        refits=refits,
        data_sha256=data.sha256,
        timings=clock.seconds,
        policies=policies,
        reference=reference,
        examples=split.test.frame.head(EXAMPLE_ROWS)[columns],
        incumbent=incumbent,
        compared=compared_policies(policies, case, split.times(split.test)),
    )
