"""The code the README shows is code that runs."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_python_example_runs(capsys):
    blocks = python_blocks()
    assert blocks, "the README shows a Python example"
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    posterior = namespace["posterior"]
    mixture = posterior.pi_mean()[0]
    # 30 users drawn 70/30 selfish/altruistic: the posterior puts most mass on those two.
    assert float(mixture[0] + mixture[2]) > 0.9
    assert "pi" in capsys.readouterr().out


def test_readme_names_the_two_commands_ci_runs():
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    test_command = ".venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest -q"
    assert test_command in text
    assert test_command in ci
    assert "scai run all" in text
