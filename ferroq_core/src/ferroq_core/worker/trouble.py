"""One warning when a repeated operation starts failing and one when it works again.

The worker retries its heartbeats, reaper passes and claims on every turn; a database down for
a minute would otherwise log hundreds of identical lines.
"""

from __future__ import annotations

import logging

__all__ = ["Trouble"]

log = logging.getLogger("ferroq.worker")


class Trouble:
    """The failing state of one repeated operation, and its two log lines.

    :param failed: the warning when it starts failing, a %-format taking the error last.
    :param recovered: the warning when it works again.
    """

    def __init__(self, failed: str, recovered: str) -> None:
        self._failed = failed
        self._recovered = recovered
        #: Whether the last attempt failed.
        self.failing = False

    def failed(self, exc: BaseException, *args: object) -> None:
        """An attempt failed (``args`` go before the error into the message)."""
        if not self.failing:
            log.warning(self._failed, *args, exc)
        self.failing = True

    def worked(self) -> None:
        """An attempt worked."""
        if self.failing:
            log.warning(self._recovered)
        self.failing = False
