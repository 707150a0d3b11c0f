"""The worker pool: starting it leaves no shared file for its workers to race on."""

from __future__ import annotations

import os
import subprocess
import sys


def test_the_pool_writes_arviz_stamp_before_workers_start(tmp_path):
    # ArviZ 0.23 writes a daily stamp file on import through one temporary name; workers that
    # import it together race on it. The parent imports ArviZ first, so no worker writes.
    cache = tmp_path / "fresh-cache"
    script = (
        "from scai.inference.workers import worker_pool, shutdown_workers\n"
        "worker_pool(1); shutdown_workers()\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
    assert (cache / "arviz" / "daily_warning").is_file()
