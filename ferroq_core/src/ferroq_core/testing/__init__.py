"""Tools for testing applications that use ferroq, and for testing ferroq backends."""

from __future__ import annotations
