"""The policy kinds advisor knows, each declared in one place: its class, its bundle files,
what its decisions output, what loading it needs and what its bundle's README adds.

Scoring, serving, the MLflow model, tracking, bundles, export and the monitor read these
declarations instead of branching on a policy's kind; a new kind is one `PolicyPlugin` here
and its class (which `check_policy` then checks). Classes are imported on first use, so
reading the registry costs nothing at start-up.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from advisor.policies.base import Policy

# What a decision can carry besides its label (see `advisor.policies.output`).
RULE, PROBABILITIES, EXPECTED_COSTS = "rule", "probabilities", "expected_costs"
BASE_REQUIREMENTS = ("numpy", "pandas", "pyyaml")

RULES_WITHOUT_ADVISOR = (
    "Without advisor: `rules.sql` is one SQL `CASE` expression in a `SELECT` (replace "
    "`input_rows` with your table), and `rules.py` needs only the Python standard library "
    "(`from rules import decide` or `python rules.py < rows.csv > decided.csv`)."
)

ESTIMATOR_README = (
    "The estimator is stored with `skops.io` (`estimator.skops.b64` is its base64 text), not "
    "pickle: loading it trusts only scikit-learn, NumPy and SciPy types and refuses any other."
)

MLFLOW_README = (
    "The model stays in your MLflow registry: `mlflow.json` pins its URI (an alias resolved to "
    "a version when the run fitted), a copy of its signature and a sha256 of its files, which "
    "loading checks first. Loading runs `mlflow.pyfunc.load_model`, which may unpickle: the one "
    "exception to advisor's no-pickle rule, because you name a registry you trust."
)


@dataclass(frozen=True)
class PolicyPlugin:
    """One policy kind as the rest of advisor sees it."""

    name: str  # the policy's name in bundles, logs and results
    kind: str  # how it decides: baseline, rules or ml (bundle.json's `kind`)
    locator: str  # "module:Class", imported on first use
    files: tuple[str, ...]  # the bundle files the policy writes besides bundle.json and README
    outputs: tuple[str, ...]  # what each decision carries: RULE, PROBABILITIES, EXPECTED_COSTS
    requirements: tuple[str, ...]  # the packages loading its bundle imports
    readme: str = ""  # the bundle README's paragraph on using it without advisor
    transparent: bool = False  # a rule list: every column it reads is a condition a person reads
    evaluated_only: bool = False  # compared, never bundled, exported, scored or served
    named_by_user: bool = False  # its policies carry the names the user gave them

    def policy_class(self) -> type[Policy]:
        """The policy's class, imported now."""
        module, _, name = self.locator.partition(":")
        return getattr(importlib.import_module(module), name)


def rule_list(name: str, locator: str) -> PolicyPlugin:
    """A rule-list kind: the rule file with its SQL and Python renderings, decisions with the
    rule's number and class frequencies, loadable without scikit-learn or LightGBM."""
    return PolicyPlugin(
        name,
        "rules",
        locator,
        files=("rules.yaml", "rules.sql", "rules.py"),
        outputs=(RULE, PROBABILITIES),
        requirements=BASE_REQUIREMENTS,
        readme=RULES_WITHOUT_ADVISOR,
        transparent=True,
    )


PLUGINS: dict[str, PolicyPlugin] = {
    p.name: p
    for p in (
        PolicyPlugin(
            "baseline",
            "baseline",
            "advisor.policies.base:BaselinePolicy",
            files=(),
            outputs=(),
            requirements=BASE_REQUIREMENTS,
        ),
        rule_list("rules", "advisor.policies.rules.policy:LearnedRulesPolicy"),
        rule_list("expert-rules", "advisor.policies.rules.policy:ExpertRulesPolicy"),
        PolicyPlugin(
            "ml",
            "ml",
            "advisor.policies.ml:MLPolicy",
            files=("model.txt", "calibration.json"),
            outputs=(PROBABILITIES, EXPECTED_COSTS),
            requirements=(*BASE_REQUIREMENTS, "lightgbm", "scikit-learn", "scipy"),
        ),
        PolicyPlugin(
            "incumbent",
            "incumbent",
            "advisor.policies.incumbent:IncumbentPolicy",
            files=(),
            outputs=(),
            requirements=BASE_REQUIREMENTS,
            evaluated_only=True,
        ),
        PolicyPlugin(
            "estimator",
            "estimator",
            "advisor.policies.estimator:EstimatorPolicy",
            files=("estimator.skops.b64", "calibration.json"),
            outputs=(PROBABILITIES, EXPECTED_COSTS),
            requirements=(*BASE_REQUIREMENTS, "scikit-learn", "scipy", "skops"),
            readme=ESTIMATOR_README,
            named_by_user=True,
        ),
        PolicyPlugin(
            "mlflow",
            "mlflow",
            "advisor.policies.registered:RegisteredPolicy",
            files=("mlflow.json",),
            outputs=(PROBABILITIES, EXPECTED_COSTS),
            requirements=(*BASE_REQUIREMENTS, "mlflow", "scikit-learn", "scipy"),
            readme=MLFLOW_README,
            named_by_user=True,
        ),
    )
}
USER_KINDS = {p.kind: p for p in PLUGINS.values() if p.named_by_user}


def plugin_named(name: str, kind: str | None = None) -> PolicyPlugin | None:
    """The plugin of a policy name (and kind, when given, which must agree), or of a kind whose
    policies the user names (an estimator); None if unknown."""
    plugin = PLUGINS.get(name)
    if plugin is not None and kind in (None, plugin.kind):
        return plugin
    if plugin is None and kind in USER_KINDS:
        return USER_KINDS[kind]
    return None


def plugin_of(policy: Policy) -> PolicyPlugin:
    """A policy object's plugin: by its name, else (a policy class of a user) by its kind."""
    found = plugin_named(policy.name, policy.kind)
    if found is not None:
        return found
    by_kind = next((p for p in PLUGINS.values() if p.kind == policy.kind), None)
    if by_kind is None:
        raise KeyError(f"no policy plugin for {policy.name!r} of kind {policy.kind!r}")
    return by_kind
