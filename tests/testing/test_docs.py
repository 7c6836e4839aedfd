"""The example files in docs/testing.md run and pass, as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
BLOCK = re.compile(r"```python\n# (\w+\.py)\n(.*?)```", re.DOTALL)


@pytest.mark.slow
def test_the_testing_guide_examples_pass(pytester: pytest.Pytester) -> None:
    files = {name: body for name, body in BLOCK.findall(DOC.read_text(encoding="utf-8"))}
    assert {"shop.py", "test_fake.py", "test_drain.py", "test_run_job.py"} <= set(files)
    for name, body in files.items():
        pytester.path.joinpath(name).write_text(body, encoding="utf-8")
    tests = sum(len(re.findall(r"^def test_", body, re.MULTILINE)) for body in files.values())
    result = pytester.runpytest(
        "-p", "no:cacheprovider", *sorted(n for n in files if n != "shop.py")
    )
    result.assert_outcomes(passed=tests)
