"""``for_tenant`` rejects ids that cannot be a tenant, at dispatch time."""

from __future__ import annotations

import attrs
import pytest

from ferroq_core import Job


@attrs.define
class Noop(Job):
    job_name = "tests.core.tenant_option.Noop"

    def handle(self) -> None:
        pass


@pytest.mark.parametrize("bad", ["", True, False, 1.5, None])
def test_for_tenant_rejects_bad_ids(bad: object) -> None:
    with pytest.raises(ValueError, match="tenant id"):
        Noop().for_tenant(bad)  # type: ignore[arg-type]


def test_for_tenant_stores_text() -> None:
    assert Noop().for_tenant(7).tenant_id == "7"
    assert Noop().for_tenant("acme").tenant_id == "acme"
