"""ferroq's reliability suite: real worker processes, real databases, injected faults.

Every chaos job appends what it did to an effects ledger kept outside the queue's tables
(:mod:`reliability.ledger`); the database itself records every accepted state change of a job
in an audit table filled by triggers (:mod:`reliability.audit`); the checker
(:mod:`reliability.checker`) joins the two with the log of injected faults. Run it with
``python -m reliability.run`` (see docs/reliability.md).
"""
