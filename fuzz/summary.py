#!/usr/bin/env python3
"""Prints one line per fuzz target from libFuzzer logs (make fuzz / make fuzz-smoke).

For each log: seconds fuzzed, total executions, executions per second, the coverage
libFuzzer reached (cov: edges, ft: features), the corpus size, the inputs it added, and
the peak memory. Exits non-zero if a log shows a crash or ends without libFuzzer's
final statistics.
"""
import os
import re
import sys


def parse(path):
    text = open(path, errors="replace").read()
    row = {"target": os.path.basename(path)[: -len(".log")]}
    done = re.findall(r"#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+) .*?exec/s: (\d+)", text)
    if done:
        runs, cov, ft, units, size, _ = done[-1]
        row.update(runs=int(runs), cov=int(cov), ft=int(ft), corpus=f"{units} ({size})")
    stats = dict(re.findall(r"stat::(\w+):\s+(\d+)", text))
    if "number_of_executed_units" in stats:
        row["runs"] = int(stats["number_of_executed_units"])
        row["exec_s"] = int(stats["average_exec_per_sec"])
        row["new"] = int(stats["new_units_added"])
        row["rss_mb"] = int(stats["peak_rss_mb"])
    seconds = re.findall(r"Done (\d+) runs in (\d+) second", text)
    if seconds:
        row["seconds"] = int(seconds[-1][1])
    row["failed"] = bool(re.search(r"ERROR: libFuzzer|deadly signal|invariant broken|ERROR: AddressSanitizer|"
                                   r"runtime error:", text)) or "exec_s" not in row
    return row


def main(paths):
    rows = [parse(p) for p in sorted(paths)]
    columns = [("target", "target"), ("seconds", "s"), ("runs", "executions"), ("exec_s", "exec/s"),
               ("cov", "cov (edges)"), ("ft", "ft (features)"), ("corpus", "corpus"), ("new", "new inputs"),
               ("rss_mb", "peak MB")]
    table = [[h for _, h in columns]] + [[str(r.get(k, "-")) for k, _ in columns] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    print("\nfuzz summary")
    for i, line in enumerate(table):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    failed = [r["target"] for r in rows if r["failed"]]
    if failed:
        print("fuzz: FAILED: " + ", ".join(failed))
        return 1
    print(f"fuzz: {len(rows)} target(s) ran without a crash")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
