"""One vocabulary for options: `-o/--output` a file, `--out` a folder, `-q/--quiet`, `--seed`,
the same on every command; old spellings still accepted but not shown."""

from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from advisor.cli.main import main


def _commands(group: click.Group = main, prefix: str = ""):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def test_every_command_spells_the_shared_options_the_same():
    seen = set()
    for name, command in _commands():
        for param in command.params:
            shown = [o for o in param.opts if o not in getattr(param, "hidden_aliases", ())]
            if param.name == "output":
                assert shown == ["-o", "--output"], name
                assert isinstance(param.type, click.Path) and param.type.file_okay, name
            elif param.name == "out":
                assert shown == ["--out"], name
                assert not param.type.file_okay, name
            elif param.name == "quiet":
                assert param.opts == ["-q", "--quiet"], name
            elif param.name == "seed":
                assert param.opts == ["--seed"], name
            else:
                assert not {"-o", "--output", "--out", "-q", "--quiet"} & set(param.opts), name
                continue
            seen.add((name, param.name))
    assert {("export", "out"), ("analyze", "out"), ("monitor", "out"), ("score", "output")} <= seen
    assert {("rules learn", "seed"), ("rules learn", "quiet"), ("render", "quiet")} <= seen


def test_export_takes_its_old_spellings_as_hidden_aliases():
    command = main.commands["export"]
    for spelling in ("--out", "-o", "--output"):
        ctx = command.make_context("export", ["run", spelling, "there"])
        assert ctx.params["out"] == Path("there"), spelling
    help_text = CliRunner().invoke(main, ["export", "--help"]).output
    assert "--out DIRECTORY" in help_text
    assert "--output" not in help_text and "-o," not in help_text


def test_a_negative_seed_is_one_line_on_every_seeded_command(small_case_file: Path):
    for args in (["analyze", str(small_case_file)], ["rules", "learn", str(small_case_file)]):
        done = CliRunner().invoke(main, [*args, "--seed", "-1"])
        assert done.exit_code == 2, done.output
        assert done.stderr.strip() == "advisor: error: --seed must be a non-negative whole number"
