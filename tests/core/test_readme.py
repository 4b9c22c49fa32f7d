"""The README's sample output and examples are produced by the code they describe: the demo's
job runs in a fresh project folder, then every `$ kataster …` line of the README's checked
examples runs there, and what they print must be what the README shows (`...` stands for
any text: times, ports)."""

import os
import re
import shlex

import pytest
from conftest import ROOT, kataster

MARK = "<!-- examples: checked by tests/core/test_readme.py -->"


def _block(text, start):
    """The lines of the fenced block that begins at or after ``start``."""
    begin = text.index("```", start)
    body = text.index("\n", begin) + 1
    return text[body:text.index("```", body)].splitlines()


def _matches(expected, actual):
    pattern = ".*".join(re.escape(part) for part in expected.rstrip().split("..."))
    return re.fullmatch(pattern, actual.rstrip()) is not None


def _compare(expected_lines, actual_lines, what):
    actual_lines = [line for line in actual_lines if line.strip()]
    assert len(actual_lines) >= len(expected_lines), (what, actual_lines)
    for expected, actual in zip(expected_lines, actual_lines, strict=False):
        assert _matches(expected, actual), f"{what}:\nREADME: {expected}\nactual: {actual}"


def examples(text):
    """[(command, [expected lines])] of the checked block."""
    out = []
    for line in _block(text, text.index(MARK)):
        if line.startswith("$ "):
            out.append((line[2:], []))
        else:
            out[-1][1].append(line)
    return out


@pytest.mark.slow
def test_readme_demo_output_and_examples(tmp_path):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    project = tmp_path / "projekt"
    project.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KATASTER_")}
    try:
        demo = kataster("demo", env=env, cwd=project, timeout=900)
        assert demo.returncode == 0, demo.stderr
        shown = _block(text, text.index("`make demo` does what"))
        _compare(shown, demo.stdout.splitlines(), "make demo")
        checked = examples(text)
        assert len(checked) >= 5
        for command, expected in checked:
            args = shlex.split(command)
            assert args[0] == "kataster", command
            proc = kataster(*args[1:], env=env, cwd=project)
            _compare(expected, (proc.stdout + proc.stderr).splitlines(), command)
    finally:
        kataster("db", "destroy", "--yes", env=env, cwd=project)


def test_the_comparison_can_fail():
    assert _matches("wrote ... features to x.gpkg", "wrote 177 features to x.gpkg")
    assert not _matches("wrote 177 features to x.gpkg", "wrote 176 features to x.gpkg")
    with pytest.raises(AssertionError):
        _compare(["a", "b"], ["a"], "too short")
