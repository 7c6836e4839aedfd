"""Plugin discovery: entry points, FERROQ_LOAD_PLUGINS, and ``ferroq plugins``."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ferroq_core import make_plugin_manager
from ferroq_core.cli import make_cli
from ferroq_core.plugins import PLUGINS_ENV


def _names(pm: object) -> set[str]:
    return {str(name) for name, plugin in pm.list_name_plugin() if plugin is not None}  # type: ignore[attr-defined]


def test_installed_plugins_load_from_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PLUGINS_ENV, raising=False)
    pm = make_plugin_manager()
    assert {"ferroq.builtin", "sqlite", "postgres", "tenancy"} <= _names(pm)
    schemes = {s for batch in pm.hook.ferroq_backends() for spec in batch for s in spec.schemes}
    assert {"sqlite", "postgresql"} <= schemes
    assert make_plugin_manager() is not pm, "a fresh manager per call, none at import time"


def test_core_defaults_register_through_the_same_hooks() -> None:
    pm = make_plugin_manager(load_entrypoints=False)
    assert _names(pm) == {"ferroq.builtin"}
    serializers = [s.name for batch in pm.hook.ferroq_serializers() for s in batch]
    policies = [p.name for batch in pm.hook.ferroq_backoff_policies() for p in batch]
    assert serializers == ["json"]
    assert {"full-jitter", "exponential"} <= set(policies)
    assert pm.hook.ferroq_backends() == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sqlite", {"sqlite"}),
        ("sqlite, tenancy", {"sqlite", "tenancy"}),
        ("", set()),
        ("not-installed", set()),
    ],
)
def test_load_plugins_env_limits_what_loads(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: set[str]
) -> None:
    monkeypatch.setenv(PLUGINS_ENV, value)
    assert _names(make_plugin_manager()) == {"ferroq.builtin"} | expected


def test_plugins_command_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PLUGINS_ENV, raising=False)
    result = CliRunner().invoke(make_cli(), ["plugins", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    sqlite = rows["sqlite"]
    assert sqlite["distribution"] == "ferroq-sqlite"
    assert sqlite["version"]
    assert "backend:sqlite" in sqlite["provides"]
    assert "ferroq_backends" in sqlite["hooks"]
    builtin = rows["ferroq.builtin"]
    assert builtin["distribution"] == "ferroq-core"
    assert {"serializer:json", "backoff:full-jitter"} <= set(builtin["provides"])
    assert rows["postgres"]["provides"] == ["backend:postgres"]
    assert "ferroq_tenant_scope" in rows["tenancy"]["hooks"]


def test_plugins_command_table_respects_the_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PLUGINS_ENV, "sqlite")
    result = CliRunner().invoke(make_cli(), ["plugins"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "sqlite  (ferroq-sqlite " in result.output
    assert "provides: backend:sqlite" in result.output
    assert "serializer:json, backoff:full-jitter" in result.output
    assert "postgres" not in result.output
