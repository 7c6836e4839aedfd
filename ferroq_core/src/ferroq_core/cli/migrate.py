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

    Tables that another tool made from ferroq_core.schema.metadata (Alembic) are
    adopted: checked, given their settings and recorded, never created again.

    \b
    Example:
      FERROQ_DATABASE_URL=postgresql://app@db/app ferroq migrate
    """
    backend = obj.runtime().backend
    recorded = backend.migrate()
    if not recorded:
        click.echo(f"up to date (schema version {SCHEMA_VERSION})")
        return
    applied = [a.name for a in recorded if not a.adopted]
    adopted = [a.name for a in recorded if a.adopted]
    done = [f"applied: {', '.join(applied)}"] if applied else []
    if adopted:
        done.append(f"adopted: {', '.join(adopted)}, whose tables were there: nothing created")
    click.echo(f"{'; '.join(done)} (schema version {SCHEMA_VERSION})")
