"""qbench's fidelity driver for Procrastinate (bench/libraries/README.md): the real library
through its public API, with a no-op task, run by `qbench cost --driver`.

  driver.py setup          installs Procrastinate's schema (not measured)
  driver.py run N          defers N jobs with Task.defer_async, one call each, then runs
                           one worker at concurrency 1 until the queue is empty
  driver.py burndown N W   defers N jobs (batch_defer_async, 1,000 a call), then times one
                           worker at concurrency W draining them; prints {"jobs_s": …} as
                           qbench's `work --burndown --json` does

The connection comes from the PG* environment (qbench sets it; the password never appears
on a command line): psycopg reads it for an empty conninfo. QBENCH_SCHEMA is the schema
the library's tables live in (its search_path; Procrastinate qualifies nothing) and
QBENCH_PAYLOAD_BYTES the payload's size, as qbench's jobs carry it. The connector keeps
Procrastinate's defaults (psycopg_pool's 4 connections), and the worker its own (listen
and notify, a 5-s fetch poll, a heartbeat every 10 s).
"""

import asyncio
import json
import os
import sys
import time

import procrastinate

SCHEMA = os.environ.get("QBENCH_SCHEMA", "public")
SIZE = int(os.environ.get("QBENCH_PAYLOAD_BYTES", "512"))
LETTERS = "".join(chr(97 + i % 26) for i in range(SIZE))

# The tier's session settings (PGOPTIONS) kept, the schema added.
OPTIONS = f"{os.environ.get('PGOPTIONS', '')} -c search_path={SCHEMA}".strip()
app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo="", kwargs={"options": OPTIONS})
)


@app.task(name="qbench")
async def qbench(**_kwargs):
    """A no-op job."""


def job(seq):
    return {"seq": seq, "enqueued_at_us": time.time_ns() // 1000, "payload": LETTERS}


async def left():
    async with app.connector.pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
            )
        ).fetchone()
        return row[0]


async def setup():
    async with app.connector.pool.connection() as conn:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"')
    exists = await app.connector.execute_query_one_async(
        "SELECT to_regclass('procrastinate_jobs') AS t"
    )
    if exists["t"] is None:
        await app.schema_manager.apply_schema_async()


async def run(n):
    for seq in range(n):
        await qbench.defer_async(**job(seq))
    await app.run_worker_async(concurrency=1, wait=False, install_signal_handlers=False)
    if (n_left := await left()) != 0:
        raise RuntimeError(f"{n_left} jobs left after the run")
    print(f"procrastinate: {n} jobs deferred and worked")


async def burndown(n, w):
    async with app.connector.pool.connection() as conn:
        await conn.execute("TRUNCATE procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs")
    for first in range(0, n, 1000):
        await qbench.batch_defer_async(*(job(s) for s in range(first, min(n, first + 1000))))
    t0 = time.perf_counter()
    await app.run_worker_async(concurrency=w, wait=False, install_signal_handlers=False)
    s = time.perf_counter() - t0
    if (n_left := await left()) != 0:
        raise RuntimeError(f"{n_left} jobs left after the run")
    print(json.dumps({"jobs": n, "workers": w, "seconds": s, "jobs_s": n / s}))


async def main(argv):
    async with app.open_async():
        if argv[:1] == ["setup"]:
            await setup()
        elif argv[:1] == ["run"] and len(argv) == 2 and int(argv[1]) > 0:
            await run(int(argv[1]))
        elif argv[:1] == ["burndown"] and len(argv) == 3 and int(argv[1]) > 0 < int(argv[2]):
            await burndown(int(argv[1]), int(argv[2]))
        else:
            raise SystemExit("usage: driver.py setup | run N | burndown N W")


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1:]))
    except Exception as e:  # one line, as qbench reports a failed driver
        print(f"procrastinate driver: {e}", file=sys.stderr)
        sys.exit(1)
