"""Shared test setup.

ArviZ writes a daily warning file under ``$XDG_CACHE_HOME`` and matplotlib its font cache under
``$MPLCONFIGDIR``: both point at a temporary folder, set here at import time so that they are in
place before any test module imports those libraries. The folder is removed when the session
ends. The tests keep to one torch thread, in each pytest-xdist worker (``addopts`` in
``pyproject.toml``) or in pytest's own process.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

_TMP_HOME = Path(tempfile.mkdtemp(prefix="scai-tests-"))
os.environ["XDG_CACHE_HOME"] = str(_TMP_HOME / "cache")
os.environ["MPLCONFIGDIR"] = str(_TMP_HOME / "matplotlib")
(_TMP_HOME / "cache").mkdir()
(_TMP_HOME / "matplotlib").mkdir()

# pytest-xdist runs the tests in one process per core: each keeps to one torch thread, or
# their intra-op threads would fight over the same cores; so do the tests in pytest's own
# process (`-n 0`), so that a failure there is the one the workers saw.
import torch  # noqa: E402

torch.set_num_threads(1)

#: Real human ultimatum-game data, read in place beside the project (see ../shared/data).
STUDY1_UG = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "study1_ug.csv"
#: The original study's GPT-4 logs (two archives), read in place beside the project.
ORIGINAL_SCAI = STUDY1_UG.parent / "original-scai"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_TMP_HOME, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def isolated_cache_dirs() -> Path:
    """The temporary folder holding ``XDG_CACHE_HOME`` and ``MPLCONFIGDIR`` (checked here so a
    test that changed them by accident fails loudly)."""
    assert os.environ["XDG_CACHE_HOME"].startswith(str(_TMP_HOME))
    assert os.environ["MPLCONFIGDIR"].startswith(str(_TMP_HOME))
    return _TMP_HOME


@pytest.fixture(scope="session")
def study1_ug_path() -> Path:
    """Path of the shared human ultimatum-game data (``../shared/data/study1_ug.csv``)."""
    return STUDY1_UG


@pytest.fixture(scope="session")
def original_scai_path() -> Path:
    """The original study's GPT-4 logs (``../shared/data/original-scai``); skips without them."""
    if not ORIGINAL_SCAI.is_dir():
        pytest.skip(f"the original study's logs are not at {ORIGINAL_SCAI}")
    return ORIGINAL_SCAI


@pytest.fixture
def float64():
    """Run a test with torch's default dtype at float64, restoring the old default after."""
    from scai.inference.svi import float64_default

    with float64_default():
        yield


@pytest.fixture(scope="session")
def human_synthetic_run(tmp_path_factory) -> tuple[Path, Path]:
    """``scai run human-data --quick --data synthetic`` with no data folder named (the run must
    not need ``../shared``), once per test session: the registry test and the human-data tests
    read the same run (they copy it to change it). pytest-xdist's workers share it: the first to
    take its lock makes it in the session's folder, above each worker's own. Returns
    ``(OUT/human-data, figures)``."""
    from scai.experiments.cli import main
    from scai.experiments.locking import locked

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    out = base / "human-synthetic"
    figures = out / "figs"
    with locked(base, name="human-synthetic.lock", what="the tests' human-data run", wait=True):
        done = base / "human-synthetic.done"
        if not done.exists():
            argv = ["run", "human-data", "--quick", "--data", "synthetic", "--seed", "1"]
            with pytest.MonkeyPatch.context() as patch:
                patch.delenv("SCAI_DATA_DIR", raising=False)
                code = main([*argv, "--out", str(out), "--figures", str(figures), "--workers", "2"])
            assert code == 0
            done.touch()
    return out / "human-data", figures
