"""Reads qbench .hlog files with HdrHistogram's own Python reader (package `hdrhistogram`,
module `hdrh`) and prints the merged percentiles of one tag as JSON, in milliseconds.
Usage: python3 hdrh_check.py TAG FILE [FILE...]"""
import json
import sys

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

tag, paths = sys.argv[1], sys.argv[2:]
total = HdrHistogram(1, 3_600_000_000, 3)
intervals = 0
for path in paths:
    reader = HistogramLogReader(path, HdrHistogram(1, 3_600_000_000, 3))
    while True:
        h = reader.get_next_interval_histogram()
        if h is None:
            break
        if h.get_tag() == tag:
            total.add(h)
            intervals += 1
ms = lambda v: v / 1000.0
print(json.dumps({
    "intervals": intervals,
    "count": total.get_total_count(),
    "p50": ms(total.get_value_at_percentile(50)),
    "p99": ms(total.get_value_at_percentile(99)),
    "max": ms(total.get_max_value()),
}))
