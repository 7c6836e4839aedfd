"""``ferroq migrate``."""

from __future__ import annotations

import click

from ferroq_core.cli.base import CliContext, pass_context
from ferroq_core.schema import SCHEMA_VERSION


def register(cli: click.Group) -> None:
    cli.add_command(migrate)


@click.command()
@pass_context
def migrate(obj: CliContext) -> None:
    """Create or upgrade the ferroq tables (idempotent; safe to run from several processes).

    \b
    Example:
      FERROQ_DATABASE_URL=postgresql://app@db/app ferroq migrate
    """
    backend = obj.runtime().backend
    applied = backend.migrate()
    if applied:
        click.echo(f"applied: {', '.join(applied)} (schema version {SCHEMA_VERSION})")
    else:
        click.echo(f"up to date (schema version {SCHEMA_VERSION})")
