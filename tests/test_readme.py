"""The README's Python example runs, and its CI command blocks are where .ci/run looks."""

import re
import subprocess
import sys
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_python_example_runs(tmp_path):
    (code,) = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "(900.0, 3840.0, 3840.0) nm" in result.stdout
    assert "equivalent_diameter_nm" in result.stdout and "sphericity" in result.stdout
    assert (tmp_path / "cell.ome.zarr" / "labels" / "classes").is_dir()


def test_readme_has_the_two_ci_commands():
    for marker in ("<!-- ci: main-command -->", "<!-- ci: test-command -->"):
        block = README.split(marker, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0].strip()
        assert block.startswith("python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0")
    assert "python -m pytest" in README.split("<!-- ci: test-command -->", 1)[1].split("```", 2)[1]
    assert README.split("<!-- ci: main-command -->", 1)[1].split("```", 2)[1].strip().endswith("sxtseg demo")
