"""ferroq's benchmark driver (``python -m bench.run``); see docs/performance.md."""
