"""The rows a dispatch writes: each pending dispatch as an :class:`EnqueueRequest`, its
options taken from the call, then the job type, then the configuration, its tenant from
the ``ferroq_capture_tenants`` hook, and its limit key from the call or the payload field its
type names (the backend stores the tenant when there is neither)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferroq_core.bounds import check_limit_key
from ferroq_core.errors import PayloadTooLarge, SerializationError
from ferroq_core.records import EnqueueRequest
from ferroq_core.unique import fields_key

if TYPE_CHECKING:
    import pluggy

    from ferroq_core.dispatching import PendingDispatch
    from ferroq_core.job import Job
    from ferroq_core.runtime import JobContext
    from ferroq_core.unique import Unique

__all__ = ["RequestBuilder", "build_request", "capture_tenants"]

#: What a dispatch looks up once per job class: type name, queue, priority, max_attempts,
#: unique rule, limit key field.
_ClassInfo = tuple[str, str, int, int, "Unique | None", "str | None"]


def build_request(pending: PendingDispatch, runtime: JobContext) -> EnqueueRequest:
    """The row a dispatch writes: options from the call, then the job type, then config."""
    return RequestBuilder(runtime).build_all([pending])[0]


class RequestBuilder:
    """Builds the rows of one dispatch; what does not depend on the job (configuration, each
    class's options) is looked up once per batch, and the tenants are captured in one hook
    call per batch."""

    def __init__(self, runtime: JobContext) -> None:
        self.encode = runtime.serializer.encode
        self.limit = runtime.config.max_payload_bytes
        self.default_queue = runtime.config.default_queue
        self.pm = runtime.pm
        #: job class -> (type name, queue, priority, max_attempts, unique rule, limit key
        #: field)
        self.by_class: dict[type, _ClassInfo] = {}

    def _class_info(self, cls: type[Job]) -> _ClassInfo:
        info = self.by_class.get(cls)
        if info is None:
            queue = cls.queue or self.default_queue
            unique = cls.unique
            name = cls.type_name()
            info = (name, queue, int(cls.priority), int(cls.max_attempts), unique, cls.limit_key)
            self.by_class[cls] = info
        return info

    def build_all(self, pendings: list[PendingDispatch]) -> list[EnqueueRequest]:
        """The rows of ``pendings``, in order."""
        untenanted = [p.job for p in pendings if p.tenant_id is None]
        captured = iter(capture_tenants(self.pm, untenanted))
        return [
            self.build(p, p.tenant_id if p.tenant_id is not None else next(captured))
            for p in pendings
        ]

    def build(self, pending: PendingDispatch, tenant: str | None) -> EnqueueRequest:
        job = pending.job
        payload = self.encode(job)
        type_name, queue, priority, max_attempts, unique, key_field = self._class_info(type(job))
        # len() of an ASCII str is its UTF-8 byte count: skip encoding a copy.
        size = len(payload) if payload.isascii() else _utf8_size(type_name, payload)
        limit = self.limit
        if size > limit:
            raise PayloadTooLarge(
                f"payload of job {type_name} is {size} bytes, over the {limit}-byte limit: "
                "store large data elsewhere and pass a reference, or raise "
                "FERROQ_MAX_PAYLOAD_BYTES"
            )
        key = pending.idempotency_key
        limit_key = pending.limit_key
        if limit_key is None and key_field is not None:
            limit_key = _field_key(job, type_name, key_field)
        unique = pending.unique or unique
        if unique is not None:
            return self._unique(pending, tenant, payload, type_name, queue, unique, limit_key)
        if key is None:
            key = job.idempotency_key()
        # Positional, in EnqueueRequest's field order: keywords cost more, once per job.
        return EnqueueRequest(
            pending.queue or queue,
            type_name,
            payload,
            priority if pending.priority is None else pending.priority,
            max_attempts,
            pending.delay_seconds,
            None if key is None else str(key),
            tenant,
            None,
            pending.result_ttl,
            limit_key,
        )

    def _unique(
        self,
        pending: PendingDispatch,
        tenant: str | None,
        payload: str,
        type_name: str,
        queue: str,
        unique: Unique,
        limit_key: str | None,
    ) -> EnqueueRequest:
        """The row of a dispatch under a unique rule: its key is the one given, else a hash of
        the rule's fields, else ``idempotency_key()``, else a hash of the whole payload."""
        job = pending.job
        key = pending.idempotency_key
        if key is None and not unique.fields:
            key = job.idempotency_key()
        if key is None:
            key = fields_key(type_name, payload, unique.fields)
        _, _, priority, max_attempts, _, _ = self._class_info(type(job))
        return EnqueueRequest(
            pending.queue or queue,
            type_name,
            payload,
            priority if pending.priority is None else pending.priority,
            max_attempts,
            pending.delay_seconds,
            str(key),
            tenant,
            # Exactly an idempotency key: the path every backend has.
            None if unique.is_idempotency else unique,
            pending.result_ttl,
            limit_key,
        )


def _field_key(job: Job, type_name: str, field: str) -> str | None:
    """The limit key in ``field`` of ``job`` (None when it holds None), as text."""
    value = getattr(job, field)
    if value is None:
        return None
    text = value if type(value) is str else str(value)
    return check_limit_key(text, f"job {type_name}, field {field}: ")


def _utf8_size(type_name: str, payload: str) -> int:
    """The UTF-8 size of a payload that is not ASCII; a lone surrogate cannot be stored."""
    try:
        return len(payload.encode("utf-8"))
    except UnicodeEncodeError:
        raise SerializationError(
            f"cannot encode job {type_name}: a string in its payload holds a lone surrogate "
            "(half of a UTF-16 pair), which is not valid UTF-8: repair the text before "
            "dispatching, e.g. with .encode('utf-8', 'replace').decode()"
        ) from None


def capture_tenants(pm: pluggy.PluginManager, jobs: list[Job]) -> list[str | None]:
    """The tenant of each of ``jobs`` from ``ferroq_capture_tenants``: one hook call for the
    batch, and for each job the first non-None entry among the plugins' results.

    :raises TypeError: a plugin returned a result of another length than ``jobs``.
    """
    if not jobs:
        return []
    hook = pm.hook.ferroq_capture_tenants
    # Skipped with no implementation: pluggy's own empty-hook check, once per batch.
    if not hook.get_hookimpls():
        return [None] * len(jobs)
    tenants: list[str | None] = [None] * len(jobs)
    for result in hook(jobs=jobs):
        if result is None:
            continue
        if len(result) != len(jobs):
            raise TypeError(
                f"a ferroq_capture_tenants implementation returned {len(result)} tenants for "
                f"{len(jobs)} jobs: return one entry per job, in order, or None"
            )
        tenants = [
            t if t is not None else (None if r is None else str(r))
            for t, r in zip(tenants, result, strict=True)
        ]
    return tenants
