"""``--import MODULE`` and ``FERROQ_APP``: load an application's job types before a command.

Shared by ``ferroq worker`` and ``ferroq dispatch`` so both read the same names the same way.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from ferroq_core.errors import ConfigError

__all__ = ["APP_ENV", "app_modules", "import_app_modules", "import_option"]

#: Modules to import before a command runs (comma or space separated), like ``--import``.
APP_ENV = "FERROQ_APP"

F = TypeVar("F", bound=Callable[..., Any])


def import_option(fn: F) -> F:
    """``--import MODULE`` (repeatable), added to the modules ``FERROQ_APP`` names."""
    return click.option(
        "--import",
        "imports",
        metavar="MODULE",
        multiple=True,
        help=f"Import MODULE first so its job types register (repeatable; also "
        f"${APP_ENV}, comma-separated).",
    )(fn)


def app_modules(names: Iterable[str]) -> list[str]:
    """The modules ``FERROQ_APP`` names, then those given, without repeats, in order."""
    given = [os.environ.get(APP_ENV, ""), *names]
    return list(dict.fromkeys(n for name in given for n in name.replace(",", " ").split()))


def _verbosity() -> int:
    """How many ``-v`` the ``ferroq`` command line has (0 outside a command)."""
    ctx = click.get_current_context(silent=True)
    return int(ctx.find_root().params.get("verbose") or 0) if ctx is not None else 0


def import_app_modules(names: Iterable[str]) -> list[str]:
    """Import :func:`app_modules`, from the working directory too; return their names.

    The ``ferroq`` console script does not put the working directory on ``sys.path`` (unlike
    ``python -m``), so an application's own package would not import without this.
    """
    modules = app_modules(names)
    if modules and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:
            verbose = _verbosity() > 0
            if verbose:
                # The module's own traceback: where in the application the import failed.
                click.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)
            raise ConfigError(
                f"cannot import {module!r} (from --import or {APP_ENV}): "
                f"{type(exc).__name__}: {exc}"
                + ("" if verbose else " (`ferroq -v ...` shows its traceback)")
            ) from exc
    return modules
