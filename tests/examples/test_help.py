"""The example scripts as a newcomer meets them: --help shows every default, and nothing is written
into docs/ unless asked (the shipped figures stay as they are)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted(Path(__file__).resolve().parents[2].joinpath("examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_help_shows_the_defaults_and_outputs_go_to_out(script):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60,
                          env=env, check=False)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    usage = text.split(" options: ")[0]
    options = set(re.findall(r"\[(--[a-z][-a-z]*) [^]]+\]", usage))   # the options that take a value
    assert options and text.count("(default: ") >= len(options), text
    assert "(default: docs" not in text and "/docs)" not in text
