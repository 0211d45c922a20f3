// qbench's fidelity driver for graphile-worker (bench/libraries/README.md): the real
// library through its public API, with a no-op task, run by `qbench cost --driver`.
//
//   node driver.mjs setup     installs graphile-worker's schema (not measured)
//   node driver.mjs run N     adds N jobs with workerUtils.addJob, one call each, then
//                             works them with one WorkerPool at concurrency 1 until done
//   node driver.mjs burndown N W
//                             adds N jobs (addJobs, 1,000 a call), then times one
//                             WorkerPool at concurrency W (pool of 10, graphile-worker's
//                             default) draining them; prints {"jobs_s": …} as qbench's
//                             `work --burndown --json` does (completed / time to the last)
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

const letters = Array.from({ length: size }, (_, i) => String.fromCharCode(97 + (i % 26))).join("");
const job = (seq) => ({ seq, enqueued_at_us: Date.now() * 1000, payload: letters });

async function runJobs(n) {
  const utils = await makeWorkerUtils({ pgPool, schema, logger });
  for (let seq = 0; seq < n; seq++) {
    await utils.addJob("qbench", job(seq));
  }
  await utils.release();
  await work(n, 1);
  console.log(`graphile-worker: ${n} jobs added and completed`);
}

async function burndown(n, w) {
  const utils = await makeWorkerUtils({ pgPool, schema, logger });
  for (let first = 0; first < n; first += 1000) {
    const specs = [];
    for (let seq = first; seq < Math.min(n, first + 1000); seq++) {
      specs.push({ identifier: "qbench", payload: job(seq) });
    }
    await utils.addJobs(specs);
  }
  await utils.release();
  const t0 = performance.now();
  await work(n, w);
  const s = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ jobs: n, workers: w, seconds: s, jobs_s: n / s }));
}

// Works n jobs at concurrency w, until every completion is written.
async function work(n, w) {
  let done = 0;
  let finish;
  const all = new Promise((resolve) => (finish = resolve));
  const runner = await run({
    pgPool,
    schema,
    logger,
    concurrency: w,
    noHandleSignals: true,
    taskList: {
      qbench: async () => {
        done += 1;
        if (done === n) finish();
      },
    },
  });
  // A runner that dies before the last job is an error, not a hang.
  await Promise.race([
    all,
    runner.promise.then(() => {
      if (done < n) throw new Error(`the runner stopped after ${done} of ${n} jobs`);
    }),
  ]);
  await runner.stop();
  // The last completion is not awaited by the worker: wait until the pool is idle.
  while (pgPool.totalCount > pgPool.idleCount) await new Promise((r) => setTimeout(r, 10));
  const { rows } = await pgPool.query(`select count(*)::int as left from "${schema}"._private_jobs`);
  if (rows[0].left !== 0) throw new Error(`${rows[0].left} jobs left after the run`);
}

try {
  const [cmd, arg] = process.argv.slice(2);
  if (cmd === "setup") await setup();
  else if (cmd === "run" && Number(arg) > 0) await runJobs(Number(arg));
  else if (cmd === "burndown" && Number(arg) > 0 && Number(process.argv[4]) > 0)
    await burndown(Number(arg), Number(process.argv[4]));
  else throw new Error("usage: node driver.mjs setup | run N | burndown N W");
} catch (e) {
  console.error(`graphile-worker driver: ${e.message}`);
  process.exitCode = 1;
} finally {
  await pgPool.end();
}
