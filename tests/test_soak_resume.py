"""The kill-and-resume soak's --quick mode (benchmarks/soak_resume.py; docs/reliability.md quotes the full one).

In a file of its own: at about a minute and a half it is the longest test, and pytest-xdist's
``--dist loadfile`` can then give it a worker of its own.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.slow
def test_soak_resume_quick(tmp_path):
    # 3 SIGKILLs of `sxtseg run` at random moments, resumed: bit-for-bit equal to an uninterrupted run
    try:
        result = subprocess.run([sys.executable, str(BENCH / "soak_resume.py"), "--quick", "--no-mirror", "--seed", "3",
                                 "--workdir", str(tmp_path)], capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired as error:  # its progress lines say where it stood
        progress = error.stderr.decode(errors="replace") if isinstance(error.stderr, bytes) else error.stderr
        pytest.fail(f"the soak did not end in 900 s; its progress:\n{(progress or '')[-3000:]}")
    record = json.loads(result.stdout)
    assert result.returncode == 0 and record["ok"], (record, result.stderr[-3000:])
    assert record["kills"] == 3 and record["mirror"] is False and record["episodes_completed"] == len(record["episodes"]) >= 1
    assert record["differences_after_resume"] == [] and record["differences_after_overwrite"] == []
    assert record["half_written_outputs"] == 0 and record["failed_resumes"] == []
    for refusal in record["refusals"].values():
        assert refusal["exit_code"] == 2 and "cannot be resumed" in refusal["message"]
