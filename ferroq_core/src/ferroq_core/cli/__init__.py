"""The ``ferroq`` command line: ``make_cli(pm)`` builds it, ``main()`` wires and runs it.

One module per command group; each exposes ``register(cli)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_core.cli import (
    bench,
    controls,
    dispatch,
    failed,
    health,
    jobs,
    limits,
    migrate,
    plugins,
    results,
    schedules,
    stats,
    worker,
    workers,
)
from ferroq_core.cli.base import make_group
from ferroq_core.plugins import make_plugin_manager

if TYPE_CHECKING:
    import click
    import pluggy

__all__ = ["main", "make_cli"]

#: Modules whose ``register(cli)`` adds core commands, in ``--help`` order.
COMMAND_MODULES = (
    migrate,
    plugins,
    stats,
    limits,
    jobs,
    failed,
    results,
    dispatch,
    schedules,
    controls,
    health,
    worker,
    workers,
    bench,
)


def make_cli(pm: pluggy.PluginManager | None = None) -> click.Group:
    """The ``ferroq`` click group with core commands and every plugin's commands.

    Core's commands are added first, then each plugin's ``ferroq_register_commands(cli=...)``
    hook is called with the group (see :mod:`ferroq_core.hookspecs`).

    :param pm: the plugin manager; default a new one with every installed plugin.
    """
    pm = pm or make_plugin_manager()
    cli = make_group(pm)
    for module in COMMAND_MODULES:
        module.register(cli)
    pm.hook.ferroq_register_commands(cli=cli)
    worker.add_plugin_options(cli, pm)
    return cli


def main() -> None:
    """Entry point of the ``ferroq`` executable."""
    make_cli()(prog_name="ferroq")
