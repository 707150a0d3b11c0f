"""The code the README shows is code that runs."""

from __future__ import annotations

import json
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


def test_readme_pyro_example_runs(capsys):
    """The second block (the model with Pyro's tools) runs after the first, and does what its
    comments say: Pyro's enumerated density is the engines' log joint, and the replicates
    are drawn for every event of the layout."""
    blocks = python_blocks()
    namespace: dict = {}
    for block in blocks[:2]:
        exec(compile(block, str(README), "exec"), namespace)
    want = float(namespace["posterior"].log_joint()[0, 0])
    assert abs(namespace["log_joint"] - want) <= 1e-5 * abs(want)
    data, replicates = namespace["data"], namespace["replicates"]
    assert replicates["offer"].shape == (200, *data.shape)
    offers = replicates["offer"][:, data.is_proposer & data.event_mask]
    assert bool((offers <= data.pots.max()).all()) and bool((offers >= 0).all())


def test_readme_names_the_two_commands_ci_runs():
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    test_command = ".venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest -q"
    assert test_command in text
    assert test_command in ci
    assert "scai run all" in text
    # The main command installs in place too: after a plain `pip install .`, the test command's
    # editable install left numba's caches in site-packages/scai, whose folder then hid scai.
    assert ".venv/bin/pip install -e . && .venv/bin/scai run everything" in text


# -- the README's numbers are the committed results ---------------------------------------------
#: A quoted number is written ``1.52<!-- experiment: key -->``: the key names an entry of
#: figures/numbers.json, which `scai run ... --figures figures` writes.
#: A minus sign counts only after a space, "(" or "|" (in "1.40-1.59" the dash is a range).
MARK = re.compile(r"((?:(?<![^\s(|])-)?\d[\d,]*(?:\.\d+)?)%?\s*<!--\s*([a-z-]+): (.+?)\s*-->")
FIGURES = README.parent / "figures"


def quoted_numbers() -> list[tuple[str, str, str]]:
    return MARK.findall(README.read_text())


def test_every_number_the_readme_marks_is_the_committed_result():
    numbers = json.loads((FIGURES / "numbers.json").read_text())
    quoted = quoted_numbers()
    assert len(quoted) >= 20, "the README quotes its results with marks"
    for text, experiment, key in quoted:
        assert experiment in numbers, f"{experiment}: no results in figures/numbers.json"
        assert key in numbers[experiment], f"{experiment}: {key}: not in figures/numbers.json"
        value = numbers[experiment][key]
        shown = float(text.replace(",", ""))
        decimals = len(text.split(".")[1]) if "." in text else 0
        assert abs(value - shown) <= 0.5 * 10**-decimals + 1e-9, (experiment, key, text, value)


def test_the_readme_comparison_table_is_the_committed_one():
    table = (FIGURES / "comparison.md").read_text().strip()
    text = README.read_text()
    block = text.split("<!-- comparison.md -->")[1].split("<!-- /comparison.md -->")[0]
    assert block.strip() == table


def test_the_readme_shows_the_hypothesis_template_verbatim_and_it_loads():
    from scai.models.hypotheses import TEMPLATE_PATH, Hypothesis

    text = README.read_text()
    block = text.split("<!-- hypothesis_template.toml -->")[1].split(
        "<!-- /hypothesis_template.toml -->"
    )[0]
    shown = block.strip().removeprefix("```toml").removesuffix("```").strip()
    assert shown == TEMPLATE_PATH.read_text().strip()
    hypothesis = Hypothesis.load(TEMPLATE_PATH)
    assert "spiteful" in hypothesis.policy_names and hypothesis.clones


def test_the_readme_original_logs_table_is_the_committed_one():
    table = (FIGURES / "original_logs_comparison.md").read_text().strip()
    text = README.read_text()
    block = text.split("<!-- original_logs_comparison.md -->")[1]
    assert block.split("<!-- /original_logs_comparison.md -->")[0].strip() == table


def test_the_readme_sweep_spec_loads(tmp_path):
    from scai.experiments.sweep.spec import load_spec

    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)
    sweep = [block for block in blocks if block.startswith('base = "')]
    assert len(sweep) == 1, "the README shows one sweep spec"
    path = tmp_path / "sweep.toml"
    path.write_text(sweep[0])
    spec = load_spec(path)
    assert spec.measure == "slowdown" and spec.cells == 16


def test_the_readme_names_every_scai_warning_with_its_module():
    """The README's list of warning classes is each of scai's (every ``ScaiWarning``
    subclass its packages define), under the module that defines it (a newcomer could not
    find where to import ``TableWarning`` from to filter it, a review)."""
    import importlib
    import inspect
    import pkgutil

    import scai
    from scai.models.errors import ScaiWarning

    root = Path(scai.__file__).parent
    for package in ("models", "inference", "experiments"):
        for info in pkgutil.walk_packages([str(root / package)], f"scai.{package}."):
            importlib.import_module(info.name)
    found: dict[str, str] = {}
    pending = [ScaiWarning]
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if cls.__module__.startswith("scai.") and "tests" not in cls.__module__:
            path = Path(inspect.getfile(cls)).relative_to(root).as_posix()
            found[cls.__name__] = path
    bullet = re.search(r"\*\*Warnings are typed too\.\*\*(.*?)\n- \*\*", README.read_text(), re.S)
    assert bullet, "the README's bullet of warning classes"
    text = " ".join(bullet.group(1).split())
    listed = set(re.findall(r"`(\w+Warning)`", text)) - {"UserWarning"}
    assert listed == set(found), listed ^ set(found)
    sections = dict(re.findall(r"`([\w/]+\.py)`: (.*?)(?=; `[\w/]+\.py`:|\. A posterior|$)", text))
    for name, path in found.items():
        assert f"`{name}`" in sections.get(path, ""), (name, path)
