"""Flow control: ``ferroq limits`` (where every limit stands per key), ``limits set`` and
``limits delete``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ferroq_core.cli.base import CliContext, pass_context
from ferroq_core.cli.output import DB_EPILOG, echo_json, json_option, ready_backend, render_table
from ferroq_core.errors import InvalidLimit
from ferroq_core.flowlimits import LimitRule

if TYPE_CHECKING:
    from ferroq_core.flowlimits import LimitScope, LimitUsage

__all__ = ["rate_text", "register", "usage_to_dict"]


def register(cli: click.Group) -> None:
    cli.add_command(limits)


def rate_text(rule: LimitRule) -> str:
    return "-" if rule.rate is None else f"{rule.rate[0]}/{rule.rate[1]:g}s"


def rule_to_dict(rule: LimitRule) -> dict[str, Any]:
    return {
        "scope": rule.scope,
        "name": rule.name,
        "concurrency": rule.concurrency,
        "rate": None if rule.rate is None else {"n": rule.rate[0], "per": rule.rate[1]},
        "per_key": rule.per_key,
        # The old name of per_key (a --json key is never renamed: docs/cli.md).
        "per_tenant": rule.per_key,
        "fair": rule.fair,
    }


def usage_to_dict(u: LimitUsage) -> dict[str, Any]:
    return {
        **rule_to_dict(u.rule),
        "key": u.key,
        "running": u.running,
        "started": u.started,
        "waiting": u.waiting,
    }


def _scope(job_type: str | None, queue: str | None) -> tuple[LimitScope, str]:
    if (job_type is None) == (queue is None):
        raise click.UsageError("give exactly one of --type NAME or --queue NAME")
    return ("type", str(job_type)) if job_type is not None else ("queue", str(queue))


def _parse_rate(text: str | None) -> tuple[int, float] | None:
    if text is None:
        return None
    n, sep, per = text.partition("/")
    try:
        parsed = (int(n), float(per.rstrip("s")))
    except ValueError:
        parsed = None
    if not sep or parsed is None:
        raise InvalidLimit(f"--rate must be N/SECONDS (e.g. 100/60), got {text!r}")
    return parsed


@click.group(invoke_without_command=True, epilog=DB_EPILOG)
@click.option(
    "--key", default=None, help="Only this limit key ('' for the whole scope; docs/limits.md)."
)
@json_option
@pass_context
@click.pass_context
def limits(ctx: click.Context, obj: CliContext, key: str | None, as_json: bool) -> None:
    """Every declared limit and, per limit key, its jobs running now, its starts in the
    current rate window and its due jobs waiting. A job type's limits are declared by its
    class (``concurrency_limit``, ``rate_limit``, ``limit_key``, ``limit_per_key``) and
    written by each worker that starts with it; a queue's with ``ferroq limits set``. A job's
    limit key is the one its dispatch gave, else its type's ``limit_key`` field, else its
    tenant.

    \b
    Examples:
      ferroq limits
      ferroq limits --key acct-42 --json
      ferroq limits set --queue emails --concurrency 20 --rate 100/60 --per-key --fair
    """
    if ctx.invoked_subcommand is not None:
        return
    found = ready_backend(obj).limit_usage()
    if key is not None:
        found = [u for u in found if u.key == key]
    if as_json:
        echo_json({"limits": [usage_to_dict(u) for u in found]})
        return
    if not found:
        click.echo("no limits")
        return
    rows: list[list[object]] = [
        [
            u.rule.scope,
            u.rule.name,
            u.key or ("(each)" if u.rule.per_key else "(all)"),
            "-" if u.rule.concurrency is None else u.rule.concurrency,
            u.running,
            rate_text(u.rule),
            u.started,
            u.waiting,
            "yes" if u.rule.fair else "",
        ]
        for u in found
    ]
    headers = ["SCOPE", "NAME", "KEY", "LIMIT", "RUNNING", "RATE", "STARTED", "WAITING", "FAIR"]
    render_table(headers, rows)


@limits.command("set", epilog=DB_EPILOG)
@click.option("--type", "job_type", default=None, help="A job type's stable name.")
@click.option("--queue", default=None, help="A queue's name.")
@click.option("--concurrency", type=int, default=None, help="At most K running at once.")
@click.option("--rate", default=None, help="At most N starts per SECONDS: N/SECONDS.")
@click.option(
    "--per-key",
    "--per-tenant",
    "per_key",
    is_flag=True,
    help="Each limit key has the limits of its own (--per-tenant: the old name).",
)
@click.option("--fair", is_flag=True, help="Queues: limit keys take turns within a priority.")
@pass_context
def set_(
    obj: CliContext,
    job_type: str | None,
    queue: str | None,
    concurrency: int | None,
    rate: str | None,
    per_key: bool,
    fair: bool,
) -> None:
    """Declare (or replace) the limits of a job type or a queue; every worker follows them
    within a few seconds. A job type's class declaration, written when a worker starts,
    replaces what is set here for that type.

    \b
    Examples:
      ferroq limits set --queue emails --concurrency 20 --per-key
      ferroq limits set --queue reports --rate 10/1 --fair
    """
    scope, name = _scope(job_type, queue)
    rule = LimitRule(
        scope,
        name,
        concurrency=concurrency,
        rate=_parse_rate(rate),
        per_key=per_key,
        fair=fair,
    )
    if not (rule.limits or rule.fair):
        raise click.UsageError("give --concurrency, --rate or --fair")
    ready_backend(obj).set_limit(rule)
    click.echo(f"limits of {scope} {name} set")


@limits.command(epilog=DB_EPILOG)
@click.option("--type", "job_type", default=None, help="A job type's stable name.")
@click.option("--queue", default=None, help="A queue's name.")
@pass_context
def delete(obj: CliContext, job_type: str | None, queue: str | None) -> None:
    """Remove the limits of a job type or a queue (a job type's come back when a worker that
    declares them starts).

    \b
    Examples:
      ferroq limits delete --queue emails
    """
    scope, name = _scope(job_type, queue)
    if ready_backend(obj).delete_limit(scope, name):
        click.echo(f"limits of {scope} {name} deleted")
    else:
        click.echo(f"{scope} {name} has no limits")
