# Hookspecs are documentation-only bodies; pluggy never calls them.
# mypy: disable-error-code="empty-body"
"""Registry hookspecs: what plugins contribute to ferroq as typed records.

Storage backends, payload serializers, retry-delay policies and job types: each hook returns
a sequence of what the plugin provides. Import the hooks from :mod:`ferroq_core.hookspecs`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_core.markers import hookspec

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ferroq_core.job import Job
    from ferroq_core.plugin_records import BackendSpec, BackoffPolicy
    from ferroq_core.serialization import Serializer

__all__ = [
    "ferroq_backends",
    "ferroq_backoff_policies",
    "ferroq_job_types",
    "ferroq_serializers",
]

# ---------------------------------------------------------------------------------------------
# registries: plugins contribute typed records
# ---------------------------------------------------------------------------------------------


@hookspec
def ferroq_backends() -> Sequence[BackendSpec]:
    """Storage backends this plugin provides.

    Each :class:`~ferroq_core.plugin_records.BackendSpec` names the URL schemes it serves
    (``sqlite``, ``postgresql``...) and a factory that builds the backend from a URL or a
    SQLAlchemy engine. When two plugins serve one scheme, the later-registered wins.

    :return: a sequence of ``BackendSpec`` records (empty when none).

    Example::

        @hookimpl
        def ferroq_backends():
            return [BackendSpec(name="sqlite", schemes=("sqlite",), factory=make_backend,
                                distribution="ferroq-sqlite")]
    """


@hookspec
def ferroq_serializers() -> Sequence[Serializer]:
    """Payload serializers this plugin provides.

    The queue uses the serializer whose ``name`` matches ``FERROQ_SERIALIZER`` (default
    ``json``). Never provide one that can execute code on decode (such as pickle).

    :return: a sequence of :class:`~ferroq_core.serialization.Serializer` instances.

    Example::

        @hookimpl
        def ferroq_serializers():
            return [MsgpackSerializer()]
    """


@hookspec
def ferroq_backoff_policies() -> Sequence[BackoffPolicy]:
    """Retry-delay policies this plugin provides.

    The worker uses the policy whose ``name`` matches ``FERROQ_BACKOFF`` (default
    ``full-jitter``) for jobs whose ``retry_delay()`` returns None.

    :return: a sequence of :class:`~ferroq_core.plugin_records.BackoffPolicy` records.

    Example::

        @hookimpl
        def ferroq_backoff_policies():
            return [BackoffPolicy(name="fixed-10s", delay=lambda job, attempt: 10.0)]
    """


@hookspec
def ferroq_job_types() -> Sequence[type[Job]]:
    """Job types this plugin registers (besides the ``ferroq.jobs`` entry points).

    Called when the worker meets a job type name it does not know yet; every type returned
    is registered under its stable name (:meth:`~ferroq_core.Job.type_name`).

    :return: a sequence of ``Job`` subclasses.

    Example::

        @hookimpl
        def ferroq_job_types():
            return [SendEmail, ResizeImage]
    """
