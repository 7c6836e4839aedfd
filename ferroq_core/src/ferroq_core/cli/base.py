"""The top-level group, its global options and the shared command context."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs
import click

from ferroq_core.config import DEFAULT_DATABASE_URL, QueueConfig, hide_password
from ferroq_core.errors import FerroqError
from ferroq_core.runtime import Runtime

if TYPE_CHECKING:
    import pluggy

__all__ = ["CliContext", "FerroqGroup", "make_group", "pass_context"]


@attrs.define
class CliContext:
    """What every command gets: the plugin manager and a lazily built runtime."""

    pm: pluggy.PluginManager
    database_url: str = attrs.field(repr=lambda url: repr(hide_password(url)))
    #: The log level ``--log-level``/``FERROQ_LOG_LEVEL``, ``-q`` or ``-v`` asked for; None:
    #: each command's default (WARNING; INFO for a worker, which logs a line per job).
    log_level: int | None = None
    _runtime: Runtime | None = None

    def runtime(self) -> Runtime:
        """The runtime for ``--database-url``; the CLI always acts on the database."""
        if self._runtime is None:
            config = attrs.evolve(
                QueueConfig.from_env(), connection="db", database_url=self.database_url
            )
            self._runtime = Runtime.build(self.database_url, config, self.pm)
        return self._runtime

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None


pass_context = click.make_pass_decorator(CliContext)


class FerroqGroup(click.Group):
    """Turns every :class:`FerroqError` into a one-line message and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FerroqError as exc:
            # Driver messages can span lines (psycopg adds hints); keep the promised one line.
            text = "; ".join(part.strip() for part in str(exc).splitlines() if part.strip())
            raise click.ClickException(text) from None


#: The levels ``--log-level`` takes.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _chosen_level(verbose: int, quiet: bool, log_level: str | None) -> int | None:
    """The level the options ask for (``--log-level`` first, then ``-q``, then ``-v``), or
    None for the command's default."""
    if log_level:
        return int(logging.getLevelName(log_level.upper()))
    if quiet:
        return logging.WARNING
    if verbose:
        return logging.INFO if verbose == 1 else logging.DEBUG
    return None


def make_group(pm: pluggy.PluginManager) -> click.Group:
    @click.group(cls=FerroqGroup, context_settings={"help_option_names": ["-h", "--help"]})
    @click.option(
        "--database-url",
        envvar="FERROQ_DATABASE_URL",
        default=DEFAULT_DATABASE_URL,
        show_default=True,
        show_envvar=True,
        help="Database holding the jobs (sqlite:///path.db or postgresql://user@host/db).",
    )
    @click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
    @click.option(
        "-q",
        "--quiet",
        is_flag=True,
        help="Warnings and errors only: a worker logs no line per job (faster drains).",
    )
    @click.option(
        "--log-level",
        type=click.Choice(LOG_LEVELS, case_sensitive=False),
        envvar="FERROQ_LOG_LEVEL",
        show_envvar=True,
        help="Log level on stderr; wins over -v and -q. [default: WARNING; for a worker INFO, "
        "one line per job]",
    )
    @click.version_option(package_name="ferroq-core", prog_name="ferroq")
    @click.pass_context
    def cli(
        ctx: click.Context, database_url: str, verbose: int, quiet: bool, log_level: str | None
    ) -> None:
        """ferroq: background jobs kept in your SQL database.

        \b
        Examples:
          ferroq migrate                      create or upgrade the jobs table
          ferroq worker --queue high,default  run a worker
          ferroq plugins --json               list loaded plugins
        """
        if quiet and verbose:
            raise click.UsageError("-q and -v contradict each other: give one of them")
        level = _chosen_level(verbose, quiet, log_level)
        logging.basicConfig(
            level=logging.WARNING if level is None else level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        obj = CliContext(pm=pm, database_url=database_url, log_level=level)
        ctx.obj = obj
        ctx.call_on_close(obj.close)

    return cli
