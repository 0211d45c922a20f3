// qbench's fidelity driver for graphile-worker (bench/libraries/README.md): the real
// library through its public API, with a no-op task, run by `qbench cost --driver`.
//
//   node driver.mjs setup     installs graphile-worker's schema (not measured)
//   node driver.mjs run N     adds N jobs with workerUtils.addJob, one call each, then
//                             works them with one WorkerPool at concurrency 1 until done
//
// The connection comes from the PG* environment (qbench sets it; the password never
// appears on a command line). QBENCH_SCHEMA names graphile-worker's schema and
// QBENCH_PAYLOAD_BYTES the payload's size, as qbench's jobs carry it.
import pg from "pg";
import { run, runMigrations, makeWorkerUtils } from "graphile-worker";

const schema = process.env.QBENCH_SCHEMA || "graphile_worker";
const size = Number(process.env.QBENCH_PAYLOAD_BYTES || 512);
// graphile-worker's own default pool size.
const pgPool = new pg.Pool({ max: 10 });
pgPool.on("error", (e) => console.error(`graphile-worker driver: pool: ${e.message}`));
pgPool.on("connect", (client) =>
  client.on("error", (e) => console.error(`graphile-worker driver: client: ${e.message}`)),
);
// Quiet: the library logs each job at info level.
const logFactory = () => (level, message) => {
  if (level === "error" || level === "warning") console.error(`graphile-worker: ${message}`);
};
const { Logger } = await import("graphile-worker");
const logger = new Logger(logFactory);

async function setup() {
  await runMigrations({ pgPool, schema, logger });
}

async function runJobs(n) {
  const letters = Array.from({ length: size }, (_, i) => String.fromCharCode(97 + (i % 26))).join("");
  const utils = await makeWorkerUtils({ pgPool, schema, logger });
  for (let seq = 0; seq < n; seq++) {
    await utils.addJob("qbench", { seq, enqueued_at_us: Date.now() * 1000, payload: letters });
  }
  await utils.release();
  let done = 0;
  let finish;
  const all = new Promise((resolve) => (finish = resolve));
  const runner = await run({
    pgPool,
    schema,
    logger,
    concurrency: 1,
    noHandleSignals: true,
    taskList: {
      qbench: async () => {
        done += 1;
        if (done === n) finish();
      },
    },
  });
  await all;
  await runner.stop();
  // The last completion is not awaited by the worker: wait until the pool is idle.
  while (pgPool.totalCount > pgPool.idleCount) await new Promise((r) => setTimeout(r, 10));
  const { rows } = await pgPool.query(`select count(*)::int as left from "${schema}"._private_jobs`);
  if (rows[0].left !== 0) throw new Error(`${rows[0].left} jobs left after the run`);
  console.log(`graphile-worker: ${done} jobs added and completed`);
}

try {
  const [cmd, arg] = process.argv.slice(2);
  if (cmd === "setup") await setup();
  else if (cmd === "run" && Number(arg) > 0) await runJobs(Number(arg));
  else throw new Error("usage: node driver.mjs setup | run N");
} catch (e) {
  console.error(`graphile-worker driver: ${e.message}`);
  process.exitCode = 1;
} finally {
  await pgPool.end();
}
