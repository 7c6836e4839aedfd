"""Backend options from a database URL's query string and from keyword options, checked by name.

Both backends read their options the same way: each value is checked against its field's type
on its own, so every error names the option it is about (``busy_timeout: expected a number,
got 'abc'``), and a query key that is neither the backend's option nor its driver's is an
error naming it, instead of being silently ignored.
"""

from __future__ import annotations

import difflib
import math
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from ferroq_core.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping

__all__ = ["build_options", "check_query_keys", "flag", "last_value", "option_names"]

T = TypeVar("T")

#: What a field's declared type expects, as an error message says it.
_EXPECTED = {
    "float": "a number",
    "float | None": "a number",
    "int": "a whole number",
    "int | None": "a whole number",
    "bool": "true or false",
}


def option_names(cls: type[Any]) -> tuple[str, ...]:
    """The option names of an attrs options class, in field order."""
    return tuple(a.name for a in attrs.fields(cls))


def last_value(value: Any) -> Any:
    """A query parameter given several times arrives as a tuple: the last one wins."""
    return value[-1] if isinstance(value, (tuple, list)) else value


def flag(value: Any) -> bool:
    """``true``/``false`` (also 1/0, yes/no, on/off, any case) as a bool.

    :raises ConfigError: anything else.
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"expected true or false, got {value!r}")


def _checked(name: str, kind: str, value: Any, what: str) -> Any:
    """``value`` as the type ``kind`` names, or :class:`ConfigError` naming the option."""
    expected = _EXPECTED.get(kind)
    if expected is None or value is None:
        return value
    if kind.endswith("| None") and isinstance(value, str) and value.strip().lower() in ("", "none"):
        return None  # ?poll_max=none
    bad = ConfigError(f"invalid {what} option {name}: expected {expected}, got {value!r}")
    if kind.startswith("float"):
        if isinstance(value, bool):
            raise bad
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise bad from None
        if not math.isfinite(number):
            raise ConfigError(
                f"invalid {what} option {name}: expected a finite number, got {value!r}"
            )
        return number
    if kind.startswith("int"):
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise bad
        try:
            return int(value)
        except (TypeError, ValueError, OverflowError):
            raise bad from None
    try:
        return flag(value)
    except ConfigError:
        raise bad from None


def build_options(cls: type[T], values: Mapping[str, Any], what: str) -> T:
    """``cls(**values)`` for an attrs options class whose fields all have defaults.

    Each value is first checked against its field's declared type, so a bad one is reported
    by name; the class's own converters and validators then run as usual.

    :param what: the backend's name in messages (``SQLite``, ``postgres``).
    :raises ConfigError: an unknown name, or a value its option does not accept.
    """
    fields = attrs.fields_dict(cls)  # type: ignore[arg-type]
    check_query_keys(values, fields, (), what, where="backend option")
    checked = {
        name: _checked(name, str(fields[name].type), value, what) for name, value in values.items()
    }
    try:
        return cls(**checked)
    except ConfigError:
        raise  # the validators name their option
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid {what} option: {exc}") from exc


def check_query_keys(
    given: Iterable[str],
    ours: Collection[str],
    drivers: Collection[str],
    what: str,
    *,
    where: str = "option in the database URL",
) -> None:
    """Refuse names that are neither ours nor the driver's, naming them (and the nearest
    known name, for a typo).

    :raises ConfigError: at least one unknown name.
    """
    unknown = sorted(set(given) - set(ours) - set(drivers))
    if not unknown:
        return
    known = sorted({*ours, *drivers})
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        hints.append(f"{name} (did you mean {close[0]}?)" if close else name)
    message = f"unknown {what} {where}: {', '.join(hints)}; ferroq's: {', '.join(sorted(ours))}"
    if drivers:
        message += " (and the driver's own parameters)"
    raise ConfigError(message)
