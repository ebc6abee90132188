"""README's two commands are the project's contract: CI must run the test command exactly as written."""
import os
import re

ROOT = os.path.join(os.path.dirname(__file__), "..")


def _readme_commands():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    return re.findall(r"```bash\n(.+?)\n```", text)


def test_readme_starts_with_demo_and_test_commands():
    cmds = _readme_commands()
    assert "-m reference demo" in cmds[0]
    assert "-m pytest" in cmds[1]


def test_ci_runs_the_readme_test_command():
    ci = open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read()
    assert _readme_commands()[1] in ci.splitlines()
