"""The one error hierarchy of ferroq.

Every error ferroq raises on purpose derives from :class:`FerroqError`. The docstring of each
class is its default message, and every message says what to do next. Driver exceptions never
leave a backend: they are translated into one of these with ``raise ... from exc``.
"""

from __future__ import annotations

__all__ = [
    "BackendBusy",
    "BackendUnavailable",
    "ConfigError",
    "DatabaseError",
    "DuplicateJob",
    "FerroqError",
    "InvalidDispatch",
    "InvalidLimit",
    "InvalidSchedule",
    "JobCancelled",
    "JobDecodeError",
    "JobFailed",
    "JobGivenUp",
    "JobNotFound",
    "JobReleased",
    "JobTimeout",
    "LeaseExpired",
    "NotInitialized",
    "PayloadTooLarge",
    "ResultMissing",
    "ScheduleNotFound",
    "SchemaMismatch",
    "SchemaMissing",
    "SchemaOutdated",
    "SerializationError",
    "TenantNotFound",
    "UnknownBackend",
    "UnknownJobType",
]


class FerroqError(Exception):
    """ferroq failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message if message is not None else (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigError(FerroqError):
    """Invalid ferroq configuration: check the environment variables and options you set."""


class NotInitialized(FerroqError):
    """The queue is not initialised: call `Queue.init(url)` (or set FERROQ_DATABASE_URL and
    call `Queue.init()`) before dispatching jobs or starting a worker."""


class UnknownBackend(FerroqError):
    """No installed backend serves this database URL: pip install ferroq-sqlite or
    ferroq-postgres."""


class DatabaseError(FerroqError):
    """The database refused the operation: check the database URL and that the server is up."""


class BackendUnavailable(DatabaseError):
    """The database cannot be reached: check the URL, the server and the network."""


class BackendBusy(DatabaseError):
    """The database stayed locked by another writer past every retry: raise the busy timeout
    or reduce the number of writers."""


class SchemaMissing(DatabaseError):
    """The ferroq_jobs table does not exist in this database: run `ferroq migrate`."""


class SchemaOutdated(DatabaseError):
    """The ferroq schema in this database is older than this ferroq: run `ferroq migrate`."""


class SchemaMismatch(DatabaseError):
    """Tables of the ferroq schema exist in another shape than this ferroq gives them: make
    them match `ferroq_core.schema.metadata`, then run `ferroq migrate` again."""


class SerializationError(FerroqError):
    """A job's payload could not be encoded: use JSON-friendly field types (str, int, float,
    bool, datetime, date, UUID, Decimal, Enum, attrs classes, lists and dicts of them)."""


class InvalidDispatch(FerroqError, ValueError):
    """A dispatch option is out of bounds (queue name, delay, tenant id, idempotency key or
    job type name): fix the value; the limits are listed in docs/guarantees.md. Also a
    :class:`ValueError`."""


class InvalidLimit(FerroqError, ValueError):
    """A concurrency or rate limit is out of bounds: a limit is an int >= 1 and a rate's
    window a positive number of seconds (or a timedelta)."""


class PayloadTooLarge(SerializationError):
    """The job's encoded payload is larger than the configured limit: store large data
    elsewhere and pass a reference, or raise FERROQ_MAX_PAYLOAD_BYTES."""


class JobDecodeError(FerroqError):
    """A stored payload could not be decoded into its job type: inspect it with
    `ferroq show ID`, fix the job type, then `ferroq retry ID`."""


class UnknownJobType(FerroqError):
    """No job type is registered under this name: install the package that defines it, add it
    to the `ferroq.jobs` entry points, or pass `--import MODULE` to the worker."""


class InvalidSchedule(FerroqError, ValueError):
    """A schedule is invalid (its cron expression, timezone or catch-up policy): fix it as the
    message says; nothing was stored."""


class ScheduleNotFound(FerroqError):
    """No schedule by this name: list them with `ferroq schedules list`."""


class JobNotFound(FerroqError):
    """No job with this id: list jobs with `ferroq jobs`."""


class JobFailed(FerroqError):
    """The job failed (its attempts are spent, or its error is permanent): see its error with
    `ferroq show ID`, fix the cause, then `ferroq retry ID`."""

    def __init__(self, job_id: int, error: str | None) -> None:
        headline = (error or "no error recorded").splitlines()[0] if error else "no error recorded"
        super().__init__(f"job {job_id} failed: {headline}")
        #: The failed job's id.
        self.job_id = int(job_id)
        #: The error stored with the job (``Type: message`` and the traceback), or None.
        self.error = error


class ResultMissing(FerroqError):
    """No job and no stored result has this id: the job succeeded without a stored result
    (`store_result`, `.with_stored_result()`), its result was pruned after its `result_ttl`,
    it was cancelled or deleted, or it never existed."""


class NoCurrentJob(FerroqError):
    """`current_job()` was called outside a job: it answers only inside a job's `handle()`
    (or `failed()`), on a worker, in `drain()`, `run_job()` or sync mode."""


class DuplicateJob(FerroqError):
    """A job with this idempotency key is already pending or running."""

    def __init__(self, message: str | None = None, *, job_id: int | None = None) -> None:
        super().__init__(message)
        #: The id of the job that holds the key, when known.
        self.job_id = job_id


class JobTimeout(FerroqError):
    """The job ran past its timeout: raise `timeout` on the job type or make it faster."""


class JobCancelled(FerroqError):
    """The job was cancelled (`ferroq cancel`, `Queue.cancel()`): it is removed, not retried,
    and its `cancelled()` runs instead of `failed()`."""


class LeaseExpired(FerroqError):
    """The job's worker stopped heartbeating (killed, frozen or cut off from the database) and
    the job's lease expired: check the worker's logs; raise the visibility timeout if the worker
    was only slow."""


class TenantNotFound(FerroqError):
    """The job's tenant could not be resolved: check that the tenant still exists."""


class JobReleased(FerroqError):
    """The handler released its job with `ctx.release()`: it runs again later, and this
    attempt counts neither as a failure nor as an attempt."""

    def __init__(self, delay: float = 0.0, message: str | None = None) -> None:
        super().__init__(message or f"released by its handler, to run again in {delay:g}s")
        #: Seconds until the job may run again.
        self.delay = delay


class JobGivenUp(FerroqError):
    """The handler gave its job up with `ctx.fail()`: it is parked as failed at once,
    without the retries it had left; fix the cause and `ferroq retry` it."""
