"""Fleet jobs: operations on one device or a hundred thousand, schedules, and the health poller.

Layout::

    operations.py  each operation a plain async function over an AmtClient, with its permission and params
    execute.py     one attempt on one device and what its failure means (retry or not): the shared task body
    devicelogs.py  audit/event log reading and idempotent storing        locks.py  one conversation per device
    store.py       job and per-device rows (create, claim, record, resume) writer.py  group commit
    runner.py      the JobRunner seam and LocalRunner (asyncio, in process) events.py  progress pub/sub
    procrastinate.py  ProcrastinateRunner (PostgreSQL queue, many worker processes; optional)
    cron.py / scheduler.py  recurring operations on five-field cron expressions
    health.py      keeps each device's reachability and power state fresh
    services.py    job_services(): the runner, scheduler and poller a console starts (OUTBAND_JOB_* settings)
    schemas.py     API shapes of jobs, operations and schedules
"""
