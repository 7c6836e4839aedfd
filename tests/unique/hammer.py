"""One dispatching process of the unique-jobs concurrency tests.

``python -m tests.unique.hammer URL WRITER ROUNDS KEYS GO_FILE COMBOS [batch]`` creates
``GO_FILE.ready-WRITER`` once imported and connected, waits for ``GO_FILE`` (so every process
starts together), then for each round dispatches one ``Hammer``
per key of each combination (``mode/policy``, comma-separated), one ``dispatch`` each or, with
``batch``, the keys of a combination in one ``dispatch_many``; it prints one JSON line per
dispatch: ``[combo, key, round, id, duplicate, replaced, raised]``.
"""

from __future__ import annotations

import json
import os
import sys
import time

from ferroq_core import DuplicateJob, Queue, QueueConfig, Unique, dispatch_many
from tests.unique.jobs import Hammer

#: The period of ``for_period`` combinations: longer than any run.
PERIOD = 3600.0


def rule(combo: str) -> Unique:
    """The unique rule of a ``mode/policy`` combination."""
    mode, policy = combo.split("/")
    period = PERIOD if mode == "for_period" else None
    return Unique(mode, period=period, on_conflict=policy)


def main() -> None:
    url, writer, rounds, keys, go, combos = sys.argv[1:7]
    batch = sys.argv[7:] == ["batch"]
    Queue.init(url, QueueConfig(connection="db", database_url=url))
    rules = {combo: rule(combo) for combo in combos.split(",")}
    Queue.runtime().backend.now()  # connected: the first dispatch does not wait for it
    with open(f"{go}.ready-{writer}", "w"):
        pass
    deadline = time.monotonic() + 60
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            sys.exit("no go file within 60s")
        time.sleep(0.005)
    out = []
    for seq in range(int(rounds)):
        for combo, unique in rules.items():
            if batch:
                names = [f"{combo}/{k}" for k in range(int(keys))]
                ids = dispatch_many(
                    Hammer(key=key, writer=int(writer), seq=seq)
                    .with_unique(unique)
                    .with_idempotency_key(key)
                    for key in names
                )
                out += [
                    [combo, key, seq, int(i), i.duplicate, i.replaced, False]
                    for key, i in zip(names, ids, strict=True)
                ]
                continue
            for k in range(int(keys)):
                key = f"{combo}/{k}"
                pending = Hammer(key=key, writer=int(writer), seq=seq).with_unique(unique)
                try:
                    job_id = pending.with_idempotency_key(key).dispatch()
                except DuplicateJob as exc:
                    out.append([combo, key, seq, exc.job_id, True, False, True])
                    continue
                out.append([combo, key, seq, int(job_id), job_id.duplicate, job_id.replaced, False])
    Queue.reset()
    sys.stdout.write("".join(json.dumps(line) + "\n" for line in out))


if __name__ == "__main__":
    main()
