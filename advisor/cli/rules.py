"""`advisor rules ...`: learn, check and render rule files."""

from __future__ import annotations

from pathlib import Path

import click

from advisor.cli import options
from advisor.cli.console import run_guarded


@click.group()
def rules() -> None:
    """Learn, check and render transparent rule lists."""


def _prepare(case_path: str, seed: int | None = None):
    """Case, split and fitted features, as a run prepares them (`--seed` overrides the case's)."""
    from advisor.core.case import resolve_case
    from advisor.core.data import load_dataset, split_dataset
    from advisor.core.features import FeatureSpec

    case = options.with_seed(resolve_case(case_path), seed)
    data = load_dataset(case)
    split = split_dataset(data, case.seed)
    spec = FeatureSpec(data.schema).fit(split.train.frame)
    return case, split, spec


def _validation_summary(case, split, policy) -> tuple:
    """Cost per decision with its interval, and per-rule coverage and cost, on the validation
    split: the test split is kept for the analysis, which scores it once."""
    from advisor.stats.bootstrap import interval, resampler_for

    valid = split.valid
    each = case.costs.cost_of_each_decision(valid.y, valid.frame)
    realised = each[range(len(valid)), policy.decide_codes(valid.frame)]
    resampler = resampler_for(split.times(valid), case.option("bootstrap_resamples"), case.seed)
    reps = resampler.means(realised)[:, 0]
    overall = interval(float(realised.mean()), reps)
    return overall, policy.report(policy.spec.clean(valid.frame), each)["rules"]


def _print_table(case, overall, rows: list[dict], n_rows: int) -> None:
    cur = case.currency
    low, high = overall.low, overall.high
    click.echo(
        f"Cost per decision on the {n_rows:,} validation rows: {overall.estimate:.2f} {cur} "
        f"(95% interval {low:.2f} to {high:.2f})"
    )
    click.echo(f"\n{'#':>3}  {'coverage':>8}  {'rows':>6}  {'cost/decision':>13}  rule")
    for i, row in enumerate(rows, start=1):
        cost = row["cost_per_decision"]
        cost_text = f"{cost:13.2f}" if cost is not None else f"{'–':>13}"
        number = str(i) if i < len(rows) else ""
        click.echo(
            f"{number:>3}  {row['coverage']:8.1%}  {row['rows']:6d}  {cost_text}  {row['english']}"
        )


@rules.command()
@click.argument("case_file", type=click.Path(dir_okay=False))
@click.option(
    "--max-rules", type=click.IntRange(0, 50), default=None, help="Default: the case's (8)."
)
@options.output_file("Rule file to write (default: <case name>.rules.yaml).")
@options.seed()
@options.quiet("Print only where the rule file went.")
def learn(
    case_file: str, max_rules: int | None, output: Path | None, seed: int | None, quiet: bool
) -> None:
    """Learn a cost-aware rule list for a case, print it in English and write the rule file."""

    def work() -> None:
        from dataclasses import replace

        from advisor.analysis.pipeline import rule_learner
        from advisor.core.atomic import write_atomic
        from advisor.policies.rules.policy import LearnedRulesPolicy

        case, split, spec = _prepare(case_file, seed)
        policy = LearnedRulesPolicy(
            case.costs, spec, rule_learner(case, max_rules), list_name=f"{case.name}-rules"
        ).fit(split.train, split.valid)
        overall, rows = _validation_summary(case, split, policy)
        comment = (
            f"Learned by advisor from {Path(case_file).name} (seed {case.seed}): first match wins.\n"
            f"Validation-split cost per decision: {overall.estimate:.2f} {case.currency}."
        )
        learned = replace(policy.rules_, comment=comment)
        target = output or Path(f"{case.name}.rules.yaml")
        if not quiet:
            click.echo(learned.english())
            click.echo("")
            _print_table(case, overall, rows, len(split.valid))
        write_atomic(target, str(learned))
        click.echo(f"\nRule file: {target}")

    run_guarded(work)


@rules.command()
@click.argument("rules_file", type=click.Path(dir_okay=False))
@click.argument("case_file", type=click.Path(dir_okay=False))
@options.seed()
def check(rules_file: str, case_file: str, seed: int | None) -> None:
    """Evaluate a rule file on a case's validation split: cost with interval, coverage per rule."""

    def work() -> None:
        from advisor.policies.rules.policy import ExpertRulesPolicy

        case, split, spec = _prepare(case_file, seed)
        policy = ExpertRulesPolicy(rules_file, case.costs, spec).fit(split.train, split.valid)
        overall, rows = _validation_summary(case, split, policy)
        click.echo(f"{policy.rules_.name}: {len(policy.rules_)} rules, version {policy.version}")
        _print_table(case, overall, rows, len(split.valid))

    run_guarded(work)


@rules.command()
@click.argument("rules_file", type=click.Path(dir_okay=False))
def sql(rules_file: str) -> None:
    """Print a rule file as an SQL CASE WHEN expression."""

    def work() -> None:
        from advisor.policies.rules.parser import load_rules
        from advisor.policies.rules.render import to_sql

        click.echo(to_sql(load_rules(rules_file)))

    run_guarded(work)
