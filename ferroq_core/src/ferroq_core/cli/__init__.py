"""The ``ferroq`` command line: ``make_cli(pm)`` builds it, ``main()`` wires and runs it.

One module per command group; each exposes ``register(cli)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import click
    import pluggy

__all__ = ["main", "make_cli"]

#: Modules under ferroq_core.cli whose ``register(cli)`` adds core commands.
COMMAND_MODULES = (
    "migrate",
    "plugins",
    "stats",
    "jobs",
    "failed",
    "dispatch",
    "health",
    "worker",
    "bench",
)


def make_cli(pm: pluggy.PluginManager | None = None) -> click.Group:
    """The ``ferroq`` click group with core commands and every plugin's commands."""
    from importlib import import_module

    from ferroq_core.cli.base import make_group
    from ferroq_core.plugins import make_plugin_manager

    pm = pm or make_plugin_manager()
    cli = make_group(pm)
    for name in COMMAND_MODULES:
        import_module(f"ferroq_core.cli.{name}").register(cli)
    pm.hook.ferroq_register_commands(cli=cli)
    return cli


def main() -> None:
    """Entry point of the ``ferroq`` executable."""
    make_cli()(prog_name="ferroq")
