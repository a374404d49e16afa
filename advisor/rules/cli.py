"""`advisor rules ...`: learn, check and render rule files."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def rules() -> None:
    """Learn, check and render transparent rule lists."""


def _prepare(case_path: str):
    """Case, data, split and fitted features, as a run prepares them."""
    from advisor.data import load_dataset, split_dataset
    from advisor.features import FeatureSpec
    from advisor.pipeline import resolve_case

    case = resolve_case(case_path)
    data = load_dataset(case)
    split = split_dataset(data, case.seed)
    spec = FeatureSpec(data.schema).fit(split.train.frame)
    return case, data, split, spec


def _test_summary(case, split, spec, policy) -> tuple[dict, list[dict]]:
    from advisor.evaluate import bootstrap_means, interval

    test = split.test
    each = case.costs.cost_of_each_decision(test.y, test.frame)
    realised = each[range(len(test)), policy.decide_codes(test.frame)]
    reps = bootstrap_means(realised, case.option("bootstrap_resamples"), case.seed)[:, 0]
    overall = interval(float(realised.mean()), reps)
    return overall, policy.report(spec.clean(test.frame), each)["rules"]


def _print_table(case, overall: dict, rows: list[dict], n_test: int) -> None:
    cur = case.currency
    low, high = overall["low"], overall["high"]
    click.echo(
        f"Cost per decision on the {n_test:,} test rows: {overall['estimate']:.2f} {cur} "
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
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Rule file to write (default: <case name>.rules.yaml).",
)
def learn(case_file: str, max_rules: int | None, output: Path | None) -> None:
    """Learn a cost-aware rule list for a case, print it in English and write the rule file."""
    from advisor.cli import run_guarded

    def work() -> None:
        from dataclasses import replace

        from advisor.result import write_atomic
        from advisor.rules.policy import learn_rule_policy

        case, _data, split, spec = _prepare(case_file)
        policy = learn_rule_policy(case, split, spec, max_rules=max_rules)
        overall, rows = _test_summary(case, split, spec, policy)
        comment = (
            f"Learned by advisor from {Path(case_file).name} (seed {case.seed}): first match wins.\n"
            f"Test-split cost per decision: {overall['estimate']:.2f} {case.currency}."
        )
        learned = replace(policy.rules_, comment=comment)
        target = output or Path(f"{case.name}.rules.yaml")
        click.echo(learned.english())
        click.echo("")
        _print_table(case, overall, rows, len(split.test))
        write_atomic(target, str(learned))
        click.echo(f"\nRule file: {target}")

    run_guarded(work)


@rules.command()
@click.argument("rules_file", type=click.Path(dir_okay=False))
@click.argument("case_file", type=click.Path(dir_okay=False))
def check(rules_file: str, case_file: str) -> None:
    """Evaluate a rule file on a case's test split: cost with interval, coverage per rule."""
    from advisor.cli import run_guarded

    def work() -> None:
        from advisor.rules.policy import expert_rule_policy

        case, _data, split, spec = _prepare(case_file)
        policy = expert_rule_policy(case, split, spec, path=rules_file)
        overall, rows = _test_summary(case, split, spec, policy)
        click.echo(f"{policy.rules_.name}: {len(policy.rules_)} rules, version {policy.version}")
        _print_table(case, overall, rows, len(split.test))

    run_guarded(work)


@rules.command()
@click.argument("rules_file", type=click.Path(dir_okay=False))
def sql(rules_file: str) -> None:
    """Print a rule file as an SQL CASE WHEN expression."""
    from advisor.cli import run_guarded

    def work() -> None:
        from advisor.rules.parser import load_rules
        from advisor.rules.render import to_sql

        click.echo(to_sql(load_rules(rules_file)))

    run_guarded(work)
