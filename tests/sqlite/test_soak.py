"""Two worker processes and a dispatching process on one SQLite file under sustained load:
no lock error ever reaches a caller, and every committed job completes exactly once.

``FERROQ_SOAK_SECONDS`` sets the length (default 5 s here; ``python -m tests.sqlite.soak``
runs the full 20 s).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from tests.sqlite.soak import run

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.slow
def test_sustained_load_without_lock_errors(tmp_path: Path) -> None:
    seconds = float(os.environ.get("FERROQ_SOAK_SECONDS", "5"))
    result = run(seconds, tmp_path)
    print(result.summary())
    assert result.errors == (), "\n".join(result.errors[:10])
    assert result.lock_errors == 0
    assert result.enqueued > 0
    assert result.completed_twice == ()
    assert result.never_completed == ()
    assert result.left_in_table == 0
    assert all(n > 0 for n in result.per_worker), "both workers took part"
    assert result.ok
