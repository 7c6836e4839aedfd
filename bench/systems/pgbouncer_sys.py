"""ferroq through PgBouncer in transaction mode: the ferroq adapter on a URL that goes through
the pooler ``bench.run`` started in front of the server (its port in ``BENCH_PGBOUNCER_PORT``),
with ``pgbouncer=true`` and LISTEN on the direct URL (``listen_url``), as docs/postgres.md
recommends. The same workloads as ``ferroq`` on the same database, so the two compare."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from bench.common import NotInstalled
from bench.systems.ferroq_sys import FerroqSystem

#: The environment variable with the port (on 127.0.0.1) of the PgBouncer of this run.
PORT_ENV = "BENCH_PGBOUNCER_PORT"


def pooled_url(url: str, port: int) -> str:
    """``url``'s database through the PgBouncer on ``port``, LISTEN still direct."""
    pooled = sa.engine.make_url(url).set(host="127.0.0.1", port=port)
    direct = quote(url, safe="")
    return f"{pooled.render_as_string(hide_password=False)}?pgbouncer=true&listen_url={direct}"


class PgBouncerSystem(FerroqSystem):
    name = "ferroq-pgbouncer"


def make(backend: str, url: str, queue: str, **options: Any) -> PgBouncerSystem:
    port = os.environ.get(PORT_ENV)
    if not port:
        raise NotInstalled("pgbouncer not installed (apt-get install pgbouncer)")
    return PgBouncerSystem(backend, pooled_url(url, int(port)), queue, **options)
