"""Fleet jobs: operations on one device or a hundred thousand, schedules, and the health poller.

Layout::

    operations.py  each operation a plain async function over an AmtClient, with its permission and params
    devicelogs.py  audit/event log reading and idempotent storing        locks.py  one conversation per device
    store.py       job and per-device rows (create, claim, record, resume) writer.py  group commit
    runner.py      the JobRunner seam and LocalRunner (asyncio, in process) events.py  progress pub/sub
    procrastinate.py  ProcrastinateRunner (PostgreSQL queue, many worker processes; optional)
    cron.py / scheduler.py  recurring operations on five-field cron expressions
    health.py      keeps each device's reachability and power state fresh
"""
