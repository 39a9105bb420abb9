"""The README tells the truth: its code runs, and CI runs exactly its test command."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def python_blocks(after_heading: str) -> list[str]:
    section = README.split(after_heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_quick_start_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (block,) = python_blocks("## Quick start")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(block, "README quick start", "exec"), namespace)
    assert (tmp_path / "sessions.db").exists()
    from litesessions import SqliteUserSessionStore

    with SqliteUserSessionStore("sessions.db", partition_key="my-bff") as store:
        assert store.get_user_session("3f9a...cookie-key") is None  # alice was logged out everywhere


def test_the_two_set_up_commands_are_in_the_readme() -> None:
    commands = re.findall(r"```sh\n(.*?)\n```", README.split("## Set up", 1)[1].split("\n## ", 1)[0], flags=re.S)
    assert commands[0].endswith("litesessions demo")
    assert commands[1].startswith("python3 -m venv .venv") and commands[1].endswith("-m pytest")


def test_ci_runs_exactly_the_readme_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert os.access(ROOT / ".ci" / "run", os.X_OK)
    found = subprocess.run(
        ["bash", "-c", "grep -m1 -E '^python3 -m venv .*-m pytest' README.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert found in README.split("## Set up", 1)[1]
    assert 'bash -c "$test_command"' in script
