"""``python -m ferroq_core.cli``: the ``ferroq`` command without its console script."""

from __future__ import annotations

from ferroq_core.cli import main

if __name__ == "__main__":
    main()
