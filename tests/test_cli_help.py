"""Every command's --help, rendered at a fixed width without color, against tests/help.txt; and
every `logroll COMMAND --option` that README.md and docs/*.md show exists in that help.

Refresh the snapshot after changing an option: `LOGROLL_REFRESH_HELP=1 pytest tests/test_cli_help.py`
(then read the diff of tests/help.txt like any other change).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

SNAPSHOT = Path(__file__).parent / "help.txt"
COMMANDS = [
    "run",
    "status",
    "schedule",
    "report",
    "validate",
    "demo",
    "impressions",
    "scan",
    "work",
    "retry",
    "stream",
]
# Fixed width, no color, no logroll.yaml or LOGROLL_* settings from the machine that renders it.
HELP_ENV = {"COLUMNS": "100", "TERMINAL_WIDTH": "100", "NO_COLOR": "1", "TERM": "dumb"}


def render_help(tmp_path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGROLL_")}
    env.update(HELP_ENV)
    out = []
    for command in ["", *COMMANDS]:
        r = run_cli(*([command] if command else []), "--help", cwd=tmp_path, env=env)
        assert r.code == 0, r.err
        out.append(f"$ logroll {command} --help".replace("  ", " ") + "\n" + r.out)
    return "\n".join(out)


@pytest.fixture(scope="module")
def help_text(tmp_path_factory) -> str:
    return render_help(tmp_path_factory.mktemp("help"))


def test_help_matches_the_snapshot(help_text):
    if os.environ.get("LOGROLL_REFRESH_HELP"):
        SNAPSHOT.write_text(help_text)
    assert help_text == SNAPSHOT.read_text(), (
        "the CLI's help changed: check it, then LOGROLL_REFRESH_HELP=1 pytest tests/test_cli_help.py"
    )


def test_help_shows_defaults_flags_and_exit_codes(help_text):
    assert "<bool>" not in help_text  # flags take no value
    assert "pip install 'logroll[spark]'" in help_text  # not eaten as markup
    assert not re.search(r"\w \.(\s|$)", help_text)  # an eaten "[default: ...]" leaves "disk ."
    assert "[default: 1]" in help_text and "[default: 800MB, 2GB for spark]" in help_text
    assert "Exit codes: 0 done; 1 failed" in help_text
    for command in ("run", "schedule", "stream", "scan", "work"):
        section = help_text.split(f"$ logroll {command} --help")[1].split("$ logroll")[0]
        assert "--log-format" in section, command
    run_section = help_text.split("$ logroll run --help")[1]
    assert "One of impressions, consolidate, weblogs, ingest" in run_section


def test_pipeline_argument_lists_declared_pipelines(tmp_path):
    (tmp_path / "logroll.yaml").write_text((ROOT / "examples" / "logroll.yaml").read_text())
    r = run_cli("run", "--help", cwd=tmp_path, env=HELP_ENV)
    assert r.code == 0
    assert "declared in logroll.yaml: device_users" in " ".join(r.out.split())


def test_version(cli):
    from logroll import __version__

    r = cli("--version")
    assert (r.code, r.out.strip()) == (0, f"logroll {__version__}")


# ---- the README and docs against the help ------------------------------------------------------
def documented_commands() -> list[tuple[str, str, str]]:
    """(file, command, --option) for every `logroll COMMAND ... --option` in a doc's code."""
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text()
        blocks = re.findall(r"```(?:bash|sh|console)[^\n]*\n(.*?)```", text, re.S)
        inline = re.findall(r"`(logroll [^`]+)`", text)
        lines = [ln for b in blocks for ln in b.replace("\\\n", " ").splitlines()] + inline
        for line in lines:
            for m in re.finditer(r"(?:^|[|;&(]\s*|\s)logroll\s+(.*)", line):
                words = m.group(1).split("#")[0].split()
                if not words or not re.fullmatch(r"[a-z]+", words[0]):
                    continue
                command = words[0]
                options = [w.split("=")[0] for w in words[1:] if re.fullmatch(r"--[a-z][a-z_-]*(=.*)?", w)]
                found.append((doc.name, command, ""))
                found.extend((doc.name, command, o) for o in options)
    return found


def test_every_documented_command_and_option_exists(help_text):
    sections = {
        block.split("\n", 1)[0].split()[0]: block
        for block in help_text.split("$ logroll ")[1:]
        if block.split("\n", 1)[0].split()[0] != "--help"
    }
    documented = documented_commands()
    assert len(documented) > 50  # the extraction finds the docs' commands
    wrong = []
    for doc, command, option in documented:
        if command not in sections:
            wrong.append(f"{doc}: logroll {command} (no such command)")
        elif option and not re.search(rf"(^|[\s,/]){re.escape(option)}([\s,/=]|$)", sections[command], re.M):
            wrong.append(f"{doc}: logroll {command} {option} (no such option)")
    assert not sorted(set(wrong))
