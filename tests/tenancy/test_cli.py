"""`ferroq plugins` lists the tenancy plugin with its hooks."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from click.testing import CliRunner

from ferroq_core import make_plugin_manager
from ferroq_core.cli import make_cli

if TYPE_CHECKING:
    import pytest

TENANCY_HOOKS = ["ferroq_capture_tenants", "ferroq_tenant_scope"]


def test_plugins_lists_tenancy_with_its_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FERROQ_LOAD_PLUGINS", raising=False)
    result = CliRunner().invoke(make_cli(make_plugin_manager()), ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    [tenancy] = [p for p in json.loads(result.output) if p["name"] == "tenancy"]
    assert tenancy["distribution"] == "ferroq-tenancy"
    assert tenancy["hooks"] == TENANCY_HOOKS

    table = CliRunner().invoke(make_cli(make_plugin_manager()), ["plugins"])
    assert table.exit_code == 0, table.output
    assert "tenancy  (ferroq-tenancy " in table.output
    assert f"hooks:    {', '.join(TENANCY_HOOKS)}" in table.output


def test_tenancy_can_be_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERROQ_LOAD_PLUGINS", "sqlite")
    result = CliRunner().invoke(make_cli(make_plugin_manager()), ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    assert "tenancy" not in {p["name"] for p in json.loads(result.output)}
