"""The plugin manager factory and the hook implementation marker.

Nothing is built at import time: :func:`make_plugin_manager` returns a fresh manager, so tests
and embedding applications can build their own.
"""

from __future__ import annotations

import os

import pluggy

from ferroq_core import builtin, hookspecs
from ferroq_core.markers import PROJECT, hookimpl

__all__ = ["PLUGINS_ENV", "PROJECT", "hookimpl", "make_plugin_manager"]

#: Comma-separated entry-point names to load (unset: all; empty: none but core's).
PLUGINS_ENV = "FERROQ_LOAD_PLUGINS"


def make_plugin_manager(load_entrypoints: bool = True) -> pluggy.PluginManager:
    """A new plugin manager with ferroq's hookspecs and core defaults registered.

    :param load_entrypoints: also load installed plugins from the ``ferroq`` entry-point
        group, limited to the names in ``FERROQ_LOAD_PLUGINS`` when that is set.
    """
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(builtin, name="ferroq.builtin")
    if load_entrypoints:
        wanted = os.environ.get(PLUGINS_ENV)
        if wanted is None:
            pm.load_setuptools_entrypoints(PROJECT)
        else:
            # pluggy's own loader (limited by name) records each plugin's distribution, which
            # `ferroq plugins` reports; registering ep.load() by hand would lose it.
            for name in sorted({n.strip() for n in wanted.split(",") if n.strip()}):
                pm.load_setuptools_entrypoints(PROJECT, name=name)
    pm.check_pending()
    return pm
