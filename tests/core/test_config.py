"""QueueConfig.from_env: every variable, defaults, and bad values."""

from __future__ import annotations

import pytest

from ferroq_core import ConfigError, QueueConfig, Runtime
from ferroq_core.config import DEFAULT_DATABASE_URL, hide_password

ALL = {
    "QUEUE_CONNECTION": "db",
    "FERROQ_DATABASE_URL": "postgresql://app@db/app",
    "QUEUE_DEFAULT": "main",
    "QUEUE_MAX_CONCURRENT": "32",
    "QUEUE_VISIBILITY_TIMEOUT_SECS": "45.5",
    "FERROQ_MAX_PAYLOAD_BYTES": "2048",
    "FERROQ_SERIALIZER": "msgpack",
    "FERROQ_BACKOFF": "exponential",
}


def test_defaults() -> None:
    config = QueueConfig.from_env({})
    assert config == QueueConfig()
    assert config.connection == "sync"
    assert config.database_url == DEFAULT_DATABASE_URL == "sqlite:///ferroq.sqlite3"
    assert (config.default_queue, config.max_concurrent, config.visibility_timeout) == (
        "default",
        10,
        300.0,
    )
    assert (config.max_payload_bytes, config.serializer, config.backoff) == (
        1024 * 1024,
        "json",
        "full-jitter",
    )


def test_every_variable_is_read() -> None:
    config = QueueConfig.from_env(ALL)
    assert config == QueueConfig(
        connection="db",
        database_url="postgresql://app@db/app",
        default_queue="main",
        max_concurrent=32,
        visibility_timeout=45.5,
        max_payload_bytes=2048,
        serializer="msgpack",
        backoff="exponential",
    )


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ALL.items():
        monkeypatch.setenv(name, value)
    assert QueueConfig.from_env() == QueueConfig.from_env(ALL)


def test_blank_values_mean_the_default_and_connection_is_forgiving() -> None:
    blank = dict.fromkeys(ALL, "")
    assert QueueConfig.from_env(blank) == QueueConfig()
    assert QueueConfig.from_env({"QUEUE_CONNECTION": "  DB "}).connection == "db"
    assert QueueConfig.from_env({"QUEUE_CONNECTION": "Sync"}).connection == "sync"


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("QUEUE_CONNECTION", "redis", "QUEUE_CONNECTION must be 'sync' or 'db'"),
        ("QUEUE_MAX_CONCURRENT", "many", "QUEUE_MAX_CONCURRENT must be a int"),
        ("QUEUE_MAX_CONCURRENT", "1.5", "QUEUE_MAX_CONCURRENT"),
        ("QUEUE_MAX_CONCURRENT", "0", "max_concurrent must be greater than 0"),
        ("QUEUE_MAX_CONCURRENT", "-3", "max_concurrent must be greater than 0"),
        ("QUEUE_VISIBILITY_TIMEOUT_SECS", "soon", "QUEUE_VISIBILITY_TIMEOUT_SECS must be a float"),
        ("QUEUE_VISIBILITY_TIMEOUT_SECS", "0", "visibility_timeout must be greater than 0"),
        ("QUEUE_VISIBILITY_TIMEOUT_SECS", "nan", "visibility_timeout must be greater than 0"),
        ("FERROQ_MAX_PAYLOAD_BYTES", "1MB", "FERROQ_MAX_PAYLOAD_BYTES"),
        ("FERROQ_MAX_PAYLOAD_BYTES", "-1", "max_payload_bytes must be greater than 0"),
    ],
)
def test_bad_values_raise_config_error(name: str, value: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        QueueConfig.from_env({name: value})
    assert needle in str(info.value)
    assert repr(value) in str(info.value) or value.strip() in str(info.value)


@pytest.mark.parametrize(
    ("field", "env"), [("serializer", "FERROQ_SERIALIZER"), ("backoff", "FERROQ_BACKOFF")]
)
def test_unknown_serializer_or_backoff_is_a_config_error(
    sqlite_url: str, field: str, env: str
) -> None:
    config = QueueConfig.from_env({env: "nope"})
    with pytest.raises(ConfigError, match=f"named 'nope' is installed.*set {env}; available: "):
        Runtime.build(sqlite_url, config)
    assert getattr(config, field) == "nope"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:pa/ss@h/db", "postgresql://u:***@h/db"),  # a '/' in the password
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),  # an unescaped '@'
        ("postgresql//u:pw@h/db", "postgresql//u:***@h/db"),  # no colon after the scheme
        ("u:pw@h/db", "u:***@h/db"),  # no scheme
        ("postgresql:/u:pw@h/db", "postgresql:***@h/db"),  # one slash: hide all after ':'
        (
            "postgresql://h/db?password=pw&sslmode=disable",
            "postgresql://h/db?password=***&sslmode=disable",
        ),
        ("postgresql://h/db?sslpassword=pw", "postgresql://h/db?sslpassword=***"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),  # no password to hide
        ("sqlite:///jobs.db", "sqlite:///jobs.db"),
    ],
)
def test_hide_password(url: str, shown: str) -> None:
    assert hide_password(url) == shown


def test_the_repr_of_a_config_hides_the_password() -> None:
    config = QueueConfig(database_url="postgresql://app:S3CRETPW@db/app")
    assert "S3CRETPW" not in repr(config)
    assert "postgresql://app:***@db/app" in repr(config)
    assert config.database_url == "postgresql://app:S3CRETPW@db/app"
