"""Queue.init, NotInitialized, and URLs no backend serves."""

from __future__ import annotations

import attrs
import pytest
import sqlalchemy as sa

from ferroq_core import (
    ConfigError,
    FerroqError,
    Job,
    NotInitialized,
    Queue,
    QueueConfig,
    UnknownBackend,
    get_stats,
)
from ferroq_core.plugins import PLUGINS_ENV


@attrs.define
class Noop(Job):
    def handle(self) -> None:
        pass


def test_using_the_queue_before_init_says_what_to_call() -> None:
    assert not Queue.is_initialized()
    for use in (Queue.runtime, Queue.backend, Queue.config, Noop().dispatch, get_stats):
        with pytest.raises(NotInitialized) as info:
            use()
        assert isinstance(info.value, FerroqError)
        assert "call `Queue.init(url)`" in str(info.value)
        assert "FERROQ_DATABASE_URL" in str(info.value)
    with pytest.raises(TypeError, match=r"use Queue\.init"):
        Queue()


def test_init_replaces_and_reset_forgets(sqlite_url: str) -> None:
    first = Queue.init(sqlite_url, QueueConfig(connection="db"))
    assert Queue.is_initialized()
    assert Queue.runtime() is first
    assert Queue.config().connection == "db"
    engine = sa.create_engine(sqlite_url)
    second = Queue.init(engine)
    assert Queue.backend() is second.backend
    assert Queue.runtime() is not first
    Queue.reset()
    assert not Queue.is_initialized()


def test_init_reads_the_environment(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    monkeypatch.setenv("FERROQ_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("QUEUE_CONNECTION", "db")
    runtime = Queue.init()
    assert runtime.config.database_url == sqlite_url
    assert runtime.backend.name == "sqlite"


def test_a_scheme_nobody_serves_names_the_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PLUGINS_ENV, "sqlite")
    with pytest.raises(UnknownBackend) as info:
        Queue.init("postgresql://app:s3cret@db.example/app")
    text = str(info.value)
    assert "pip install ferroq-postgres" in text
    assert "'postgresql'" in text
    assert "s3cret" not in text, "the password is never shown"
    assert "installed backends serve: sqlite" in text
    assert not Queue.is_initialized()


def test_an_unknown_scheme_says_a_plugin_is_needed() -> None:
    with pytest.raises(UnknownBackend, match=r"'mysql'.*install a ferroq backend plugin"):
        Queue.init("mysql://app@db/app")


@pytest.mark.parametrize("bad", ["not a url", "://nothing", "", 42])
def test_a_bad_url_is_a_config_error(bad: object) -> None:
    with pytest.raises(ConfigError):
        Queue.init(bad)


def test_sqlite_in_memory_is_refused() -> None:
    with pytest.raises(ConfigError, match="needs a SQLite file"):
        Queue.init("sqlite://")
