"""``ferroq dispatch``: enqueue a job from the shell, validated against its job type."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import attrs
import click

from ferroq_core.bounds import (
    MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_TENANT_ID_CHARS,
    check_delay,
    check_limit_key,
    check_queue_name,
    check_result_ttl,
    check_text,
)
from ferroq_core.cli.base import CliContext, pass_context
from ferroq_core.cli.imports import import_app_modules, import_option
from ferroq_core.cli.output import DB_EPILOG, checked, echo_json, json_option, ready_backend
from ferroq_core.dispatching import PendingDispatch, enqueue_pending
from ferroq_core.errors import ConfigError, InvalidDispatch, JobDecodeError
from ferroq_core.unique import OnConflict, Unique, UniqueMode

if TYPE_CHECKING:
    from ferroq_core.job import Job

__all__ = ["register"]


def register(cli: click.Group) -> None:
    cli.add_command(dispatch)


def _tenant(value: str) -> str:
    if not value:
        raise InvalidDispatch("tenant id must not be empty")
    return check_text("tenant id", value, MAX_TENANT_ID_CHARS)


def _unique(
    cls: type[Job],
    mode: str | None,
    period: float | None,
    fields: tuple[str, ...],
    on_conflict: str | None,
) -> Unique:
    """The rule the options give, over the job type's (a usage error when it is invalid)."""
    base = cls.unique or Unique()
    try:
        if period is not None and mode is None:
            mode = UniqueMode.FOR_PERIOD.value
        rule = Unique(
            mode or base.mode,
            period=period if period is not None else base.period if mode is None else None,
            fields=fields or base.fields,
            on_conflict=on_conflict or base.on_conflict,
        )
    except InvalidDispatch as exc:
        raise click.UsageError(str(exc)) from None
    return rule


def _read_payload(text: str) -> str:
    """The payload text: inline JSON, ``@path`` for a file, or ``-`` for standard input."""
    if text == "-":
        return sys.stdin.read()
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as fh:
                return fh.read()
        except OSError as exc:
            raise ConfigError(f"cannot read payload file {text[1:]!r}: {exc.strerror}") from exc
    return text


def _check_fields(cls: type, name: str, payload: str) -> None:
    """Refuse payload keys the job type has no field for.

    The decoder ignores unknown keys, so a misspelt field name would otherwise be dropped
    silently and the job would run with the field's default.
    """
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return  # the serializer reports bad JSON with its own message
    if not (isinstance(data, dict) and attrs.has(cls)):
        return
    known = {f.name for f in attrs.fields(cls)} | {f.alias for f in attrs.fields(cls)}
    unknown = sorted(k for k in data if k not in known)
    if unknown:
        fields = ", ".join(sorted(f.name for f in attrs.fields(cls))) or "none"
        raise JobDecodeError(
            f"payload does not fit job type {name}: unknown field "
            f"{', '.join(map(repr, unknown))} (its fields: {fields})"
        )


def _kind(value: Any) -> str:
    """The JSON kind of a decoded JSON value (ints and floats are both numbers)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _mismatch(given: Any, stored: Any, path: str) -> str | None:
    """Where ``given`` (the operator's JSON) was coerced into another JSON kind, or None."""
    if isinstance(given, dict) and isinstance(stored, dict):
        for key, value in given.items():
            if key not in stored:
                return f"unknown field {(f'{path}.{key}' if path else key)!r}"
            found = _mismatch(value, stored.get(key), f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    if isinstance(given, list) and isinstance(stored, list) and len(given) == len(stored):
        for i, (g, s) in enumerate(zip(given, stored, strict=True)):
            found = _mismatch(g, s, f"{path}[{i}]")
            if found:
                return found
        return None
    # Strict on purpose: Decimals, datetimes and UUIDs are written as strings, as stored.
    want, got = _kind(stored), _kind(given)
    if want == got:
        return None
    return f"field {path!r} must be a {want}, got a {got}"


def _check_types(name: str, given_text: str, stored_text: str) -> None:
    """Refuse values the decoder would coerce (``1`` into ``"1"``, ``"false"`` into True).

    The worker decodes the stored payload, so compare what the operator typed with what
    would be stored, JSON kind by JSON kind.
    """
    try:
        given, stored = json.loads(given_text), json.loads(stored_text)
    except (ValueError, RecursionError):
        return  # a serializer that does not write JSON: its own decode is the check
    found = _mismatch(given, stored, "")
    if found:
        raise JobDecodeError(f"payload does not fit job type {name}: {found}")


@click.command(epilog=DB_EPILOG)
@click.argument("job_type", metavar="TYPE")
@click.option(
    "--payload",
    "-p",
    default="{}",
    show_default=True,
    help="The job's fields as a JSON object; @FILE reads a file, - reads standard input.",
)
@click.option(
    "--queue",
    "-q",
    callback=checked(check_queue_name),
    help="Queue (default: the job type's, else QUEUE_DEFAULT).",
)
@click.option(
    "--delay",
    type=float,
    default=0.0,
    callback=checked(check_delay),
    help="Seconds before it may run (at most 100 years).",
)
@click.option(
    "--idempotency-key",
    callback=checked(lambda key: check_text("idempotency key", key, MAX_IDEMPOTENCY_KEY_CHARS)),
    help="Skip the insert while a job with this key is active.",
)
@click.option(
    "--unique",
    "unique_mode",
    type=click.Choice([m.value for m in UniqueMode]),
    help="Unique mode (docs/unique-jobs.md); default the job type's rule, else none.",
)
@click.option(
    "--unique-for",
    type=float,
    help="Seconds the key is held, job finished or not (implies --unique for_period).",
)
@click.option(
    "--unique-field",
    "unique_fields",
    multiple=True,
    help="Payload field the key is a hash of (repeat for several; default the key given).",
)
@click.option(
    "--on-conflict",
    type=click.Choice([p.value for p in OnConflict]),
    help="What a dispatch whose key is held does (default skip).",
)
@click.option("--tenant", callback=checked(_tenant), help="Tenant id to store with the job.")
@click.option(
    "--limit-key",
    callback=checked(check_limit_key),
    help="Limit key its limits count it under (default: its type's limit_key field, else "
    "the tenant).",
)
@click.option("--priority", type=int, help="Lower runs first (default: the job type's).")
@click.option(
    "--store-result",
    is_flag=True,
    help="Store this job's result (read it with `ferroq result ID`), whatever its type says.",
)
@click.option(
    "--result-ttl",
    type=float,
    callback=checked(check_result_ttl),
    help="Seconds to keep the stored result (implies --store-result; default the type's).",
)
@import_option
@json_option
@pass_context
def dispatch(
    obj: CliContext,
    job_type: str,
    payload: str,
    queue: str | None,
    delay: float,
    idempotency_key: str | None,
    unique_mode: str | None,
    unique_for: float | None,
    unique_fields: tuple[str, ...],
    on_conflict: str | None,
    tenant: str | None,
    limit_key: str | None,
    priority: int | None,
    store_result: bool,
    result_ttl: float | None,
    imports: tuple[str, ...],
    as_json: bool,
) -> None:
    """Enqueue one job of TYPE (its stable name) into the jobs database, whatever
    QUEUE_CONNECTION says.

    The payload is decoded into the job type first: bad JSON, a missing or unknown field or a
    wrong value type is an error and nothing is inserted.

    \b
    Examples:
      ferroq dispatch send-email --payload '{"to": "a@example.com"}' --import app.jobs
      ferroq dispatch app.jobs:Report --payload @report.json --queue low --delay 600
      echo '{"user_id": 7}' | ferroq dispatch welcome --payload - --idempotency-key user-7
      ferroq dispatch refresh --payload '{"user_id": 7}' --unique until_started \\
          --unique-field user_id --on-conflict replace
      ferroq dispatch report --payload @report.json --result-ttl 3600
    """
    import_app_modules(imports)
    backend = ready_backend(obj)
    runtime = obj.runtime()
    cls = runtime.registry.get(job_type, runtime.pm)
    text = _read_payload(payload)
    _check_fields(cls, job_type, text)
    job = runtime.serializer.decode(cls, text)
    _check_types(job_type, text, runtime.serializer.encode(job))
    pending = PendingDispatch(job=job, delay_seconds=delay)
    if queue is not None:
        pending = pending.on_queue(queue)
    if idempotency_key is not None:
        pending = pending.with_idempotency_key(idempotency_key)
    if unique_mode or unique_for is not None or unique_fields or on_conflict:
        pending = pending.with_unique(
            _unique(cls, unique_mode, unique_for, unique_fields, on_conflict)
        )
    if tenant is not None:
        pending = pending.for_tenant(tenant)
    if limit_key is not None:
        pending = pending.with_limit_key(limit_key)
    if priority is not None:
        pending = pending.with_priority(priority)
    if store_result or result_ttl is not None:
        pending = pending.with_stored_result(result_ttl)
    (job_id,) = enqueue_pending([pending], runtime)  # DuplicateJob: one line, exit 1
    row = backend.get_job(int(job_id))
    if as_json:
        echo_json(
            {
                "id": int(job_id),
                "duplicate": job_id.duplicate,
                "replaced": job_id.replaced,
                "job_type": cls.type_name(),
                "queue": None if row is None else row.queue,
            }
        )
    elif job_id.replaced:
        click.echo(f"not inserted: pending job {int(job_id)} with this key took its payload")
    elif job_id.duplicate and (pending.unique or cls.unique):
        click.echo(f"not inserted: job {int(job_id)} holds this unique key")
    elif job_id.duplicate:
        click.echo(f"not inserted: job {int(job_id)} with this idempotency key is still active")
    else:
        where = "" if row is None else f" on queue {row.queue!r}"
        click.echo(f"dispatched job {int(job_id)}{where}")
