"""The pluggy project name and its two markers, below everything that uses them.

``hookspecs`` marks the specifications, core's default plugin and every third-party plugin
mark implementations; :mod:`ferroq_core.plugins` re-exports ``hookimpl``.
"""

from __future__ import annotations

import pluggy

__all__ = ["PROJECT", "hookimpl", "hookspec"]

#: The pluggy project name, the hook marker name and the entry-point group.
PROJECT = "ferroq"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
