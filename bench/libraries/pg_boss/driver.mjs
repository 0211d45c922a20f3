// qbench's fidelity driver for pg-boss (bench/libraries/README.md): the real library
// through its public API, with a no-op job, run by `qbench cost --driver`.
//
//   node driver.mjs setup     installs pg-boss's schema and creates the queue `qbench`
//                             (not measured)
//   node driver.mjs run N     sends N jobs with boss.send, one call each, then fetches and
//                             completes them one at a time (boss.fetch, boss.complete: the
//                             statements work()'s loop runs, without its sleep) until none
//                             is left
//   node driver.mjs burndown N W
//                             inserts N jobs (boss.insert, 1,000 a call), then times
//                             boss.work at localConcurrency W draining them, with the work
//                             options in PGBOSS_WORK (JSON; pg-boss's defaults if unset);
//                             prints {"jobs_s": …} as qbench's `work --burndown --json` does
//
// The connection comes from the PG* environment (qbench sets it; the password never
// appears on a command line): node-postgres reads it when pg-boss passes no host.
// QBENCH_SCHEMA names pg-boss's schema and QBENCH_PAYLOAD_BYTES the payload's size, as
// qbench's jobs carry it. The instance runs with pg-boss's defaults (supervise and
// schedule on), so its background loops run during the measurement, as in production.
import { PgBoss } from "pg-boss";

const schema = process.env.QBENCH_SCHEMA || "pgboss";
const size = Number(process.env.QBENCH_PAYLOAD_BYTES || 512);
const QUEUE = "qbench";

const boss = new PgBoss({ schema, max: 10 });
boss.on("error", (e) => console.error(`pg-boss driver: ${e.message}`));

const letters = Array.from({ length: size }, (_, i) => String.fromCharCode(97 + (i % 26))).join("");
const job = (seq) => ({ seq, enqueued_at_us: Date.now() * 1000, payload: letters });

// The jobs not finished, counted on the server (getQueueStats may answer from a cache up
// to 60 s old, which once held a drain's end for a minute).
async function left() {
  const db = await boss.getDb();
  const { rows } = await db.executeSql(
    `SELECT count(*)::int AS n FROM "${schema}".job WHERE name = $1 AND state < 'completed'`,
    [QUEUE],
  );
  return rows[0].n;
}

async function runJobs(n) {
  for (let seq = 0; seq < n; seq++) {
    await boss.send(QUEUE, job(seq));
  }
  let done = 0;
  for (;;) {
    const jobs = await boss.fetch(QUEUE);
    if (!jobs.length) break;
    await boss.complete(QUEUE, jobs[0].id);
    done += 1;
  }
  if (done !== n) throw new Error(`${done} of ${n} jobs fetched and completed`);
  console.log(`pg-boss: ${n} jobs sent, fetched and completed`);
}

async function burndown(n, w) {
  for (let first = 0; first < n; first += 1000) {
    const jobs = [];
    for (let seq = first; seq < Math.min(n, first + 1000); seq++) jobs.push({ data: job(seq) });
    await boss.insert(QUEUE, jobs);
  }
  const options = { ...JSON.parse(process.env.PGBOSS_WORK || "{}"), localConcurrency: w };
  let done = 0;
  let finish;
  const all = new Promise((resolve) => (finish = resolve));
  const t0 = performance.now();
  await boss.work(QUEUE, options, async (jobs) => {
    done += jobs.length;
    if (done >= n) finish();
  });
  await all;
  if (process.env.PGBOSS_DEBUG) console.error(`handled all at ${(performance.now() - t0) / 1000} s`);
  // The last batch's completion follows the handler: wait until none is left active.
  while ((await left()) > 0) await new Promise((r) => setTimeout(r, 10));
  const s = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ jobs: n, workers: w, seconds: s, jobs_s: n / s, options }));
}

try {
  const [cmd, arg] = process.argv.slice(2);
  await boss.start();
  if (cmd === "setup") await boss.createQueue(QUEUE);
  else if (cmd === "run" && Number(arg) > 0) await runJobs(Number(arg));
  else if (cmd === "burndown" && Number(arg) > 0 && Number(process.argv[4]) > 0)
    await burndown(Number(arg), Number(process.argv[4]));
  else throw new Error("usage: node driver.mjs setup | run N | burndown N W");
} catch (e) {
  console.error(`pg-boss driver: ${e.message}`);
  process.exitCode = 1;
} finally {
  await boss.stop({ graceful: false, wait: true, timeout: 1000 }).catch(() => {});
}
