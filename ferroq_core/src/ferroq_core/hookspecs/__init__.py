"""Hook specifications for ferroq plugins.

A plugin is a module or object with functions marked ``@ferroq_core.hookimpl`` whose names
are those below. Installed plugins are found through the ``ferroq`` entry-point group::

    [project.entry-points.ferroq]
    mything = "mything.plugin"

Core's own defaults (the JSON serializer and full-jitter backoff) are registered through
these same hooks, so a plugin can replace any of them.

This package is the catalogue pluggy reads (:func:`ferroq_core.plugins.make_plugin_manager`
registers it whole); the hooks are written, grouped by phase, in three modules behind it:
registries (backends, serializers, backoff policies, job types), a job's life (tenancy and
scopes, dispatch, lifecycle events) and operations (the command line, worker processes,
pauses and cancellations, the worker registry). docs/plugins.md's hook reference is
generated from them, in that order.
"""

from __future__ import annotations

from ferroq_core.hookspecs._jobs import (
    ferroq_capture_tenants,
    ferroq_dispatch_requests,
    ferroq_dispatch_scope,
    ferroq_job_enqueued,
    ferroq_job_failed,
    ferroq_job_retrying,
    ferroq_job_scope,
    ferroq_job_started,
    ferroq_job_succeeded,
    ferroq_jobs_claimed,
    ferroq_jobs_enqueued,
    ferroq_jobs_succeeded,
    ferroq_tenant_scope,
)
from ferroq_core.hookspecs._operations import (
    ferroq_job_cancelled,
    ferroq_paused,
    ferroq_register_commands,
    ferroq_restart_requested,
    ferroq_resumed,
    ferroq_worker_deregistered,
    ferroq_worker_options,
    ferroq_worker_registered,
    ferroq_worker_scope,
)
from ferroq_core.hookspecs._registries import (
    ferroq_backends,
    ferroq_backoff_policies,
    ferroq_job_types,
    ferroq_serializers,
)
from ferroq_core.markers import hookspec

__all__ = [
    "ferroq_backends",
    "ferroq_backoff_policies",
    "ferroq_capture_tenants",
    "ferroq_dispatch_requests",
    "ferroq_dispatch_scope",
    "ferroq_job_cancelled",
    "ferroq_job_enqueued",
    "ferroq_job_failed",
    "ferroq_job_retrying",
    "ferroq_job_scope",
    "ferroq_job_started",
    "ferroq_job_succeeded",
    "ferroq_job_types",
    "ferroq_jobs_claimed",
    "ferroq_jobs_enqueued",
    "ferroq_jobs_succeeded",
    "ferroq_paused",
    "ferroq_register_commands",
    "ferroq_restart_requested",
    "ferroq_resumed",
    "ferroq_serializers",
    "ferroq_tenant_scope",
    "ferroq_worker_deregistered",
    "ferroq_worker_options",
    "ferroq_worker_registered",
    "ferroq_worker_scope",
    "hookspec",
]
