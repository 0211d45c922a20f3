"""The burn-down table bench scripts print: one line per run, its jobs/s in each round,
the median and the audits. Usage: burndown_table.py OUT ROUNDS NAME|… …, reading
OUT/burndown_NAME_R.json (qbench's `work --burndown --json`, or a library driver's, which
has no audit: the library counts its own jobs)."""
import json
import statistics
import sys

out, n, runs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print(f"{'run':<32} {'jobs/s per round':<28} {'median':>8} audit")
for run in runs:
    name = run.split("|")[0]
    xs = [json.load(open(f"{out}/burndown_{name}_{r}.json")) for r in range(1, n + 1)]
    rates = [x["jobs_s"] for x in xs]
    audits = {x.get("audit", "(the library's own count)") for x in xs}
    print(f"{name:<32} {' '.join(f'{v:,.0f}' for v in rates):<28} "
          f"{statistics.median(rates):>8,.0f} {','.join(sorted(audits))}")
