"""The example scripts run as a user would run them."""

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_convert_and_inspect_example(tmp_path):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "convert_and_inspect.py")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "DMVs" in result.stdout and "2 levels; level 1 is (32, 160, 160)" in result.stdout
