"""What a job row may hold: the queue-name grammar, the size of every stored text and how far
ahead a job may be delayed. Checked at dispatch, the same for every backend.

Each limit is in characters (a character is at most 4 bytes of UTF-8): the Postgres index on
(``job_type``, ``idempotency_key``) takes at most about 2,700 bytes per entry, which
:data:`MAX_JOB_TYPE_CHARS` and :data:`MAX_IDEMPOTENCY_KEY_CHARS` together stay under.
"""

from __future__ import annotations

import re

from ferroq_core.errors import InvalidDispatch

__all__ = [
    "MAX_DELAY_SECONDS",
    "MAX_ERROR_CHARS",
    "MAX_IDEMPOTENCY_KEY_CHARS",
    "MAX_JOB_TYPE_CHARS",
    "MAX_LIMIT_KEY_CHARS",
    "MAX_QUEUE_NAME_CHARS",
    "MAX_RESULT_TTL_SECONDS",
    "MAX_TENANT_ID_CHARS",
    "check_delay",
    "check_limit_key",
    "check_queue_name",
    "check_result_ttl",
    "check_text",
    "queue_name_problem",
]

#: Longest queue name.
MAX_QUEUE_NAME_CHARS = 200
#: Longest job type name (``job_name``, or ``module:QualName``).
MAX_JOB_TYPE_CHARS = 255
#: Longest tenant id (as text).
MAX_TENANT_ID_CHARS = 255
#: Longest limit key (as text).
MAX_LIMIT_KEY_CHARS = 255
#: Longest idempotency key.
MAX_IDEMPOTENCY_KEY_CHARS = 255
#: Longest error text stored with a job; a longer one keeps its start and its end.
MAX_ERROR_CHARS = 16_000
#: Longest delay at dispatch: 100 years (of 365.25 days), so every stored time stays a
#: date both databases and Python's ``datetime`` can represent.
MAX_DELAY_SECONDS = 100 * 365.25 * 86_400
#: Longest a dispatch may ask its result to be kept: the same 100 years, so its expiry is a
#: date both databases can hold.
MAX_RESULT_TTL_SECONDS = MAX_DELAY_SECONDS

# Commas separate the names of a worker's --queue list; control characters (C0, DEL, C1)
# cannot be typed on a command line nor shown safely.
_FORBIDDEN = re.compile(r"[,\x00-\x1f\x7f-\x9f]")

#: Queue names already found valid: a dispatch checks its queue once, not once per job.
_valid_queues: set[str] = set()


def queue_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a queue name, or None when it can.

    A queue name is a non-empty string of at most :data:`MAX_QUEUE_NAME_CHARS` characters,
    without commas, control characters or leading or trailing whitespace: every name a job
    can be dispatched to is one a worker's ``--queue`` list can name.
    """
    if not isinstance(name, str) or not name:
        return "a queue name must be a non-empty string"
    if name in _valid_queues:
        return None
    if len(name) > MAX_QUEUE_NAME_CHARS:
        return (
            f"a queue name is at most {MAX_QUEUE_NAME_CHARS} characters, this one has {len(name)}"
        )
    if name != name.strip():
        return f"queue name {name!r} has leading or trailing whitespace"
    found = _FORBIDDEN.search(name)
    if found:
        if found.group() == ",":
            return f"queue name {name!r} holds a comma (commas separate a worker's --queue list)"
        return f"queue name {name!r} holds a control character"
    if len(_valid_queues) < 10_000:
        _valid_queues.add(name)
    return None


def check_queue_name(name: str) -> str:
    """``name`` when it is a valid queue name (see :func:`queue_name_problem`).

    :raises InvalidDispatch: it is not.
    """
    # Checked for every dispatched job: a name seen before costs one set lookup.
    try:
        if name in _valid_queues:
            return name
    except TypeError:  # unhashable: not a str, which queue_name_problem says
        pass
    problem = queue_name_problem(name)
    if problem is not None:
        raise InvalidDispatch(problem)
    return name


def check_text(what: str, value: str, limit: int) -> str:
    """``value`` when it has at most ``limit`` characters.

    :param what: the field's name in the message (``tenant id``).
    :raises InvalidDispatch: it is longer.
    """
    if len(value) > limit:
        raise InvalidDispatch(f"{what} is {len(value)} characters, over the {limit} allowed")
    return value


def check_limit_key(value: object, where: str = "") -> str:
    """``value`` as a limit key: a str or int (not a bool), as text of 1 to
    :data:`MAX_LIMIT_KEY_CHARS` characters.

    :param where: what the message starts with (``job T, field f: ``).
    :raises InvalidDispatch: it is none of those.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidDispatch(f"{where}limit key must be a str or int, got {type(value).__name__}")
    text = str(value)
    if not text:
        raise InvalidDispatch(f"{where}limit key must not be empty")
    return check_text(f"{where}limit key", text, MAX_LIMIT_KEY_CHARS)


def check_delay(delay: float) -> float:
    """``delay`` (seconds) when it is a number from 0 to :data:`MAX_DELAY_SECONDS`.

    :raises InvalidDispatch: it is negative, not a number, infinite or too far ahead.
    """
    if 0 <= delay <= MAX_DELAY_SECONDS:
        return delay
    if delay != delay:  # NaN (math.isnan would overflow on a huge int)
        raise InvalidDispatch("delay must be a number of seconds, got NaN")
    if delay < 0:
        raise InvalidDispatch(f"delay must not be negative, got {delay!r}")
    raise InvalidDispatch(
        f"delay of {delay!r:.20} seconds is over the limit of {MAX_DELAY_SECONDS:.0f} (100 years)"
    )


def check_result_ttl(ttl: object) -> float:
    """``ttl`` (seconds a stored result is kept) as a float when it is a number above 0 and
    at most :data:`MAX_RESULT_TTL_SECONDS`.

    :raises InvalidDispatch: it is not a number (a bool is not), not above 0, NaN or too long.
    """
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise InvalidDispatch(f"result ttl must be a number of seconds, got {type(ttl).__name__}")
    if not ttl > 0:  # NaN is not above 0 either
        raise InvalidDispatch(f"result ttl must be a number of seconds > 0, got {ttl!r}")
    if ttl > MAX_RESULT_TTL_SECONDS:
        raise InvalidDispatch(
            f"result ttl of {ttl!r:.20} seconds is over the limit of "
            f"{MAX_RESULT_TTL_SECONDS:.0f} (100 years)"
        )
    return float(ttl)
