import subprocess
import sys

from tests.conftest import REPO
from tests.live.preflight import REQUIRED, SKIPPED


def test_without_live_variables_nothing_runs_and_one_line_says_what_is_missing():
    env = {"PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-m", "tests.live.preflight"], cwd=REPO, env=env, capture_output=True, text=True)
    assert r.returncode == SKIPPED
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1 and "nothing ran" in lines[0]
    assert all(name in lines[0] for name in REQUIRED)


def test_make_target_exits_zero_when_skipped():
    makefile = (REPO / "Makefile").read_text()
    assert "if [ $$rc -eq 10 ]; then exit 0" in makefile and "tests.live.preflight" in makefile
