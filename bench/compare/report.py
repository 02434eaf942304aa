#!/usr/bin/env python3
"""Turns the Google Benchmark JSON of the comparison programs into evflow's bench report.

    report.py --out bench/results build/release/bench/results/round*/<library>.json \
        [build/release/bench/micro/task_bench.json] [build/release/bench/net/net.json]

Each comparison file is one program's run (one library, one round). Counters are named
<metric>_<unit>; a figure measured in several rounds is reported as the median of its
rounds. A task_bench file (bench/task_bench.cpp: every library in one program, rows named
BM_Task<Operation>_<library>, /manual_time after the name for a row timed by hand) gives
the `tasks` workload: the median of its repetitions when it ran with several, its
counters ns/op and allocs/op. A file holding a JSON list is bench/net/run.py's: records
already (the `echo` and `http` workloads, one per figure and round).

Writes <out>/latest.json (one record per figure: workload, library, params, metric, value,
unit), one SVG chart per workload drawn by gnuplot, and prints a table per workload with
the ratios evflow/reference peer (libev; Asio for the tasks) and evflow/best peer, then
the targets of the comparison (ratios, and a few absolute limits for rows evflow runs
alone) and whether this run met them.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

LIBRARIES = ["kernel", "evflow", "evflow_io_uring", "libev", "libuv", "libevent", "asio", "boost_fiber"]
PEERS = ["libev", "libuv", "libevent", "asio", "boost_fiber"]
# The peer of the first ratio column and of the targets, per workload (libev otherwise).
REFERENCE = {"tasks": "asio", "http": "asio"}
UNITS = {"ns": "ns", "us": "us", "bytes": "bytes", "per_s": "1/s", "count": "count", "x": "x"}
HIGHER_IS_BETTER = {"round_trips_per_s", "round_trips", "requests"}
# Figures that describe the run rather than rank the libraries: no ratio.
NOT_RANKED = {"events", "fired", "expire_extra_iterations", "callbacks", "floor_per_event", "floor_loop",
              "overhead_samples", "cold_loop", "cold_total"}
# bench.c figures whose ratios between libraries are taken from each library's paired
# ratio to the floor measured in its own process (see bench/README.md).
NORMALISED_BY = {"loop": "loop_vs_floor", "per_event": "loop_vs_floor", "total": "total_vs_floor"}
WORKLOAD_ORDER = ["syscall_floor", "benchc", "timer_churn", "timer_lateness", "wakeup_pingpong",
                  "wakeup_burst", "idle_iteration", "memory", "tasks", "echo", "http"]
TITLES = {
    "syscall_floor": "Syscall floor (kernel only)",
    "benchc": "bench.c: re-register every watcher, then A active clients pass W=1000 bytes around N socketpairs",
    "timer_churn": "Timer churn: ns per operation",
    "timer_lateness": "Timer lateness: callback time - deadline, 10 rounds of 1000 timers at U(0.1, 5) ms",
    "wakeup_pingpong": "Cross-thread wake-up: ping-pong between two loops",
    "wakeup_burst": "Cross-thread wake-up: a burst of sends from another thread",
    "idle_iteration": "Idle iteration: one non-blocking iteration, one quiet descriptor + N far timers",
    "memory": "Memory: watcher sizes and resident bytes per active timer",
    "tasks": "Coroutine tasks: evflow, Asio C++20 coroutines, Boost.Fiber; per operation "
             "(group_cancel_thousand: per cancel of 1,000; call_soon also against libuv)",
    "echo": "Loopback TCP echo: N connections, each sending a message and waiting for its echo",
    "http": "HTTP/1.1 keep-alive responder under wrk (kernel: the epoll floor)",
}
# Workloads whose kernel row is a server of its own (the floor), drawn in the chart and
# given a column evflow/kernel.
FLOOR_IN_CHART = {"echo", "http"}

# task_bench's rows: BM_Task<Operation>_<library>. The failure rows pair evflow's failure
# as a value with Asio's exception, under one operation. The gather and group rows other
# than gather_two have no peer; group_cancel_thousand is one cancel of 1,000 children.
# generator_value is one value from a generator (Asio: experimental::coro); handoff_notification
# one value between two tasks through Notifications, lock_handoff one hand-off of a Lock between
# two tasks (evflow alone); channel_ping_pong one round trip over two rendezvous channels;
# to_thread one round trip of work to a pool of one thread and back (evflow, Asio, libuv).
# call_soon one callback scheduled soon and run by the loop (BM_CallSoon_<library>: evflow and
# Asio from task_bench, libuv from the comparison's libuv program, which links libuv).
# process_round_trip one frame to a forked worker and back (BM_ProcessRoundTrip, evflow alone).
TASK_ROW = re.compile(r"^BM_(?:Task)?([A-Za-z]+)_([a-z_]+)(?:/manual_time|/real_time)?$")
TASK_OPERATIONS = {"SpawnJoin": "spawn_join", "AwaitReady": "await_ready", "Yield": "yield",
                   "SleepZero": "sleep_zero", "FailureAsValue": "failure_value_vs_exception",
                   "FailureAsException": "failure_value_vs_exception", "GatherTwo": "gather_two",
                   "GatherHundred": "gather_hundred", "GroupThousand": "group_thousand",
                   "GroupCancelThousand": "group_cancel_thousand", "GeneratorValue": "generator_value",
                   "HandoffNotification": "handoff_notification", "LockHandoff": "lock_handoff",
                   "ChannelPingPong": "channel_ping_pong", "CallSoon": "call_soon",
                   "ToThread": "to_thread", "ThreadChannel": "thread_channel",
                   "ProcessRoundTrip": "process_round_trip"}


def task_operation(match):
    """The operation's name in a TASK_ROW match (BM_Task<Operation>, BM_CallSoon, BM_ProcessRoundTrip)."""
    return match.group(1)
# counter: metric, unit, scale (ns/op is an inverted rate: Google Benchmark writes seconds per item).
TASK_COUNTERS = {"ns/op": ("time_per_op", "ns", 1e9), "allocs/op": ("allocations_per_op", "count", 1)}


def split_counter(name):
    for suffix, unit in UNITS.items():
        if name.endswith("_" + suffix):
            return name[: -len(suffix) - 1], unit
    return name, "count"


def parse_name(name):
    parts = [p for p in name.split("/") if not p.startswith("iterations:") and p != "manual_time"]
    params = {}
    for p in parts[1:]:
        key, _, value = p.partition(":")
        params[key] = int(value) if value.lstrip("-").isdigit() else value
    return parts[0], params


def is_task_bench(data):
    """task_bench's output; a comparison program's names its library in the context."""
    if "library" in data.get("context", {}):
        return False
    return any(TASK_ROW.match(b.get("run_name", b["name"])) for b in data.get("benchmarks", []))


def load_tasks(data, figures, errors):
    """task_bench's rows into figures: each row's median over its repetitions (Google
    Benchmark's median aggregate), or its one run."""
    rows = data.get("benchmarks", [])
    medians = [b for b in rows if b.get("aggregate_name") == "median"]
    runs = medians or [b for b in rows if b.get("run_type", "iteration") == "iteration"]
    for b in runs:
        match = TASK_ROW.match(b.get("run_name", b["name"]))
        if not match or task_operation(match) not in TASK_OPERATIONS:
            continue
        library = match.group(2)
        if b.get("error_occurred"):
            errors.append((library, b["name"], b.get("error_message", "")))
            continue
        params = json.dumps({"op": TASK_OPERATIONS[task_operation(match)]}, sort_keys=True)
        for counter, (metric, unit, scale) in TASK_COUNTERS.items():
            if counter in b:
                figures.setdefault(("tasks", params, metric, unit), {}).setdefault(library, []).append(
                    float(b[counter]) * scale)


def load_records(data, figures):
    """bench/net/run.py's records (one per figure and round) into figures."""
    for r in data:
        k = (r["workload"], json.dumps(r["params"], sort_keys=True), r["metric"], r["unit"])
        figures.setdefault(k, {}).setdefault(r["library"], []).append(float(r["value"]))


def load(files):
    """{(workload, params-json, metric, unit): {library: [values per round]}}, errors, grids."""
    figures, errors, grids = {}, [], set()
    for path in files:
        if os.path.getsize(path) == 0:
            continue  # a program whose benchmarks a --benchmark_filter all left out writes nothing
        with open(path) as f:
            data = json.load(f)
        if isinstance(data, list):
            load_records(data, figures)
            continue
        if is_task_bench(data):
            load_tasks(data, figures, errors)
            continue
        library = data["context"].get("library", os.path.basename(path).split(".")[0])
        grids.add(data["context"].get("grid", "full"))
        for b in data.get("benchmarks", []):
            if TASK_ROW.match(b["name"]):  # a row of the task table (BM_CallSoon_libuv)
                load_tasks({"benchmarks": [b]}, figures, errors)
                continue
            workload, params = parse_name(b["name"])
            if b.get("error_occurred"):
                errors.append((library, b["name"], b.get("error_message", "")))
                continue
            for key, value in b.items():
                if not isinstance(value, (int, float)) or key in (
                        "family_index", "per_family_instance_index", "repetitions", "repetition_index",
                        "threads", "iterations", "real_time", "cpu_time"):
                    continue
                metric, unit = split_counter(key)
                k = (workload, json.dumps(params, sort_keys=True), metric, unit)
                figures.setdefault(k, {}).setdefault(library, []).append(float(value))
    return figures, errors, grids


def fmt(value):
    if value is None:
        return "-"
    a = abs(value)
    if a >= 1e9:
        return "%.3gG" % (value / 1e9)
    if a >= 1e6:
        return "%.4gM" % (value / 1e6)
    if a >= 1e4:
        return "%.4gk" % (value / 1e3)
    if a >= 100 or value == int(value):
        return "%.0f" % value
    return "%.3g" % value


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def param_text(params):
    return " ".join("%s=%s" % kv for kv in json.loads(params).items()) or "-"


def ratio_values(fig, workload, params, metric, values):
    """What the ratio columns compare: the figure itself, or for bench.c its floor-paired form."""
    if workload == "benchc" and metric in NORMALISED_BY:
        for (w, p, m, _), v in fig.items():
            if w == workload and p == params and m == NORMALISED_BY[metric]:
                return v, True
    return values, False


def table(workload, rows, libraries, fig):
    reference = REFERENCE.get(workload, "libev")
    floor = workload in FLOOR_IN_CHART
    uring = "evflow_io_uring" in libraries
    heads = ["params", "metric"] + libraries + ["evflow/" + reference, "evflow/best peer"] + (
        ["evflow/kernel"] if floor else []) + (["io_uring/epoll"] if uring else []) + [""]
    lines = []
    for (params, metric, unit), values in rows:
        cells = [param_text(params), "%s [%s]" % (metric, unit)] + [fmt(values.get(l)) for l in libraries]
        ranked = metric not in NOT_RANKED and "evflow" in values
        compared, normalised = ratio_values(fig, workload, params, metric, values)
        ev = compared.get("evflow")
        peers = [compared[p] for p in PEERS if p in compared]
        note = ""
        if ranked and peers and ev is not None:
            higher = metric in HIGHER_IS_BETTER
            best = max(peers) if higher else min(peers)
            r_reference, r_best = ratio(ev, compared.get(reference)), ratio(ev, best)
            mark = "*" if normalised else ""
            cells += ["%.2fx%s" % (r_reference, mark) if r_reference is not None else "-",
                      "%.2fx%s" % (r_best, mark) if r_best is not None else "-"]
            if floor:
                r_floor = ratio(ev, compared.get("kernel"))
                cells.append("%.2fx" % r_floor if r_floor is not None else "-")
            if (ev < best) if higher else (ev > best):
                note = "<- evflow behind"
        else:
            cells += ["", ""] + ([""] if floor else [])
        if uring:  # evflow on io_uring / evflow on epoll, of the figures as they are
            r_uring = ratio(values.get("evflow_io_uring"), values.get("evflow")) if metric not in NOT_RANKED else None
            cells.append("%.2fx" % r_uring if r_uring is not None else "")
        cells.append(note)
        lines.append(cells)
    widths = [max(len(str(r[i])) for r in [heads] + lines) for i in range(len(heads))]
    out = ["## %s — %s" % (workload, TITLES.get(workload, ""))]
    if workload == "benchc":
        out.append("   * ratio of each library's median loop/floor (total/floor) over iteration pairs run back to "
                   "back in one process on the same sockets; the raw medians beside it drift between processes")
    out.append("  ".join(h.ljust(w) for h, w in zip(heads, widths)).rstrip())
    out.append("  ".join("-" * w for w in widths))
    for r in lines:
        out.append("  ".join(str(c).rjust(w) if 1 < i < len(heads) - 1 else str(c).ljust(w)
                             for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    return "\n".join(out)


# What each chart shows (every ranked metric when a workload is not listed).
CHART_METRICS = {"benchc": ["total", "loop", "overhead_per_event"], "wakeup_pingpong": ["round_trip"],
                 "tasks": ["time_per_op"], "echo": ["round_trips", "p99_latency"],
                 "http": ["requests", "p99_latency"]}


# Each library keeps its colour (gnuplot's default line colour of that index) in every chart.
CHART_COLOURS = {"evflow": 1, "evflow_io_uring": 8, "libev": 2, "libuv": 3, "libevent": 4, "asio": 5, "boost_fiber": 6, "kernel": 7}


def chart(out_dir, workload, rows, libraries, fmt="svg"):
    """A clustered bar chart per workload, one bar per library (log scale). With several
    parameter sets and metrics there is one panel per metric over the parameter sets;
    otherwise one panel over the metrics."""
    if workload not in FLOOR_IN_CHART:
        libraries = [l for l in libraries if l != "kernel"] or libraries
    wanted = CHART_METRICS.get(workload)
    rows = [r for r in rows if r[0][1] not in NOT_RANKED and (wanted is None or r[0][1] in wanted)
            and any(l in r[1] for l in libraries)]
    if not rows:
        return None
    metrics = []
    for (params, metric, unit), _ in rows:
        if (metric, unit) not in metrics:
            metrics.append((metric, unit))
    if wanted:
        metrics.sort(key=lambda mu: wanted.index(mu[0]))
    param_sets = sorted({r[0][0] for r in rows}, key=lambda p: [v for _, v in sorted(json.loads(p).items())])

    def block(name, entries):  # entries: [(label, values)]
        lines = ["$%s << EOD" % name, "label " + " ".join(libraries)]
        for label, values in entries:
            lines.append('"%s" ' % label.replace('"', "") + " ".join(
                "%g" % values[l] if values.get(l, 0) > 0 else "NaN" for l in libraries))
        return lines + ["EOD"]

    def plot(name):
        return "plot " + ", ".join("$%s using %d:xtic(1) title columnheader(%d) linecolor %d" % (
            name, i + 2, i + 2, CHART_COLOURS.get(library, i + 1)) for i, library in enumerate(libraries))

    panels = []
    if len(param_sets) > 1 and len(metrics) > 1:
        for k, (metric, unit) in enumerate(metrics):
            entries = [(param_text(p), v) for (p, m, u), v in rows if (m, u) == (metric, unit)]
            entries.sort(key=lambda e: param_sets.index(next(p for p in param_sets if param_text(p) == e[0])))
            panels.append(("%s [%s], %s is better" % (metric, unit, "higher" if metric in HIGHER_IS_BETTER else "lower"),
                           "d%d" % k, entries))
    else:
        entries = [("%s [%s]" % (m, u) if len(param_sets) == 1 else param_text(p), v) for (p, m, u), v in rows]
        title = param_text(param_sets[0]) if len(param_sets) == 1 else "%s [%s]" % metrics[0]
        panels.append((title, "d0", entries))
    width = max(900, 75 * max(len(e) for _, _, e in panels) + 200)
    height = 330 * len(panels) + 60
    path = os.path.join(out_dir, "%s.%s" % (workload, fmt))
    terminal = ("svg size %d,%d font 'sans,11' background '#ffffff'" if fmt == "svg" else
                "pngcairo size %d,%d font 'sans,10'") % (width, height)
    script = ["set terminal " + terminal, "set output '%s'" % path, "set termoption noenhanced",
              "set style data histograms", "set style histogram clustered gap 1",
              "set style fill solid 0.85 border -1", "set logscale y", "set grid ytics",
              "set key outside right top", "set xtics rotate by -25 left font ',9'", "set bmargin 7",
              "set rmargin 20"]
    for title, name, entries in panels:
        script += block(name, entries)
    mixed = len({m in HIGHER_IS_BETTER for m, _ in metrics}) > 1
    script.append("set multiplot layout %d,1 title \"%s\\n(%s; log scale)\"" % (
        len(panels), TITLES.get(workload, workload), "each panel says which way is better" if mixed else
        "higher is better" if metrics[0][0] in HIGHER_IS_BETTER else "lower is better"))
    for title, name, _ in panels:
        script += ["set title \"%s\"" % title, plot(name)]
    script.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(script).encode(), check=True)
    return path


def targets(fig):
    """The comparison's targets as measured in this run: (label, limit, measured, met), the
    measured figure a ratio evflow/peer, or for an absolute limit evflow's own figure."""
    def get(workload, params, metric, lib):
        for (w, p, m, _), values in fig.items():
            if w == workload and m == metric and json.loads(p) == params and lib in values:
                return values[lib]
        return None

    def point(workload, params, metric, limit, higher=False, label=None):
        source = NORMALISED_BY.get(metric, metric) if workload == "benchc" else metric
        reference = REFERENCE.get(workload, "libev")
        ev, peer = get(workload, params, source, "evflow"), get(workload, params, source, reference)
        r = ratio(ev, peer)
        met = r is not None and (r >= limit if higher else r <= limit)
        against = "" if reference == "libev" else " (/%s)" % reference
        return (label or "%s %s %s%s" % (workload, param_text(json.dumps(params, sort_keys=True)), metric, against),
                "%s %.2fx" % (">=" if higher else "<=", limit), None if r is None else "%.3fx" % r, met)

    def absolute(workload, params, metric, limit, unit, scale=1.0, strict=False):
        """evflow's figure against a limit of its own (no peer runs the operation): at most
        `limit` (below it when strict), shown in `unit`, the figure divided by `scale`."""
        ev = get(workload, params, metric, "evflow")
        met = ev is not None and (ev < limit * scale if strict else ev <= limit * scale)
        return ("%s %s %s" % (workload, param_text(json.dumps(params, sort_keys=True)), metric),
                "%s %g %s" % ("<" if strict else "<=", limit, unit),
                None if ev is None else "%.3g %s" % (ev / scale, unit), met)

    result = []
    benchc = sorted({json.dumps(json.loads(p), sort_keys=True) for (w, p, m, _) in fig if w == "benchc"})
    points = [json.loads(p) for p in benchc]
    if points:
        largest = max(p["fds"] for p in points)
        for active in (1, 100):
            result.append(point("benchc", {"active": active, "fds": largest, "timeouts": 0}, "total", 0.8))
        for p in points:
            result.append(point("benchc", p, "loop", 1.0))
        for fds in sorted({100, 1000, largest}):
            result.append(point("benchc", {"active": 1, "fds": fds, "timeouts": 0}, "overhead_per_event", 0.5))
    for (w, p, m, _) in fig:
        # The hot path's own limits: expiry under 150 ns a timer from the first burst on,
        # restarts to random deadlines under 20 ns (in order and shuffled), no more
        # resident memory per timer than libev.
        if w == "timer_churn" and m in ("expire", "expire_warm"):
            result.append(absolute(w, json.loads(p), m, 150, "ns", strict=True))
        if w == "timer_churn" and m in ("restart_random", "restart_shuffled"):
            row = absolute(w, json.loads(p), m, 20, "ns", strict=True)
            floor = get(w, json.loads(p), m, "kernel")  # the kernel program's memory floor
            if floor is not None and row[2] is not None:
                row = row[:2] + ("%s (floor %.3g ns)" % (row[2], floor),) + row[3:]
            result.append(row)
        if w == "memory" and m == "rss_per_timer":
            result.append(point(w, json.loads(p), m, 1.0))
        if w == "timer_churn" and m == "restart_fifo":
            result.append(point(w, json.loads(p), m, 0.2))
        if w == "timer_lateness" and m == "p99":
            result.append(point(w, json.loads(p), m, 0.1))
        if w == "wakeup_pingpong" and m == "round_trips":
            result.append(point(w, json.loads(p), m, 1.0, higher=True))
        if w == "tasks" and m == "time_per_op" and json.loads(p)["op"] in ("spawn_join", "yield", "gather_two"):
            result.append(point(w, json.loads(p), m, 0.1 if json.loads(p)["op"] == "yield" else 0.2))
    def against(workload, params, metric, limit, higher, peer=None):
        """evflow / the best peer (or / `peer`, e.g. the kernel floor), against `limit`."""
        values = fig.get(next((k for k in fig if k[0] == workload and k[2] == metric
                               and json.loads(k[1]) == params), None), {})
        if peer is None:
            others = [values[p] for p in PEERS if p in values]
            other = (max(others) if higher else min(others)) if others else None
        else:
            other = values.get(peer)
        r = ratio(values.get("evflow"), other)
        met = r is not None and (r >= limit if higher else r <= limit)
        return ("%s %s %s (/%s)" % (workload, param_text(json.dumps(params, sort_keys=True)), metric,
                                   peer or "best peer"),
                "%s %.2fx" % (">=" if higher else "<=", limit), None if r is None else "%.3fx" % r, met)

    for (w, p, m, _) in sorted(fig):
        if w == "wakeup_pingpong" and m == "round_trips":
            result.append(against(w, json.loads(p), m, 1.0, True))
        if w == "echo" and m == "round_trips":
            result.append(against(w, json.loads(p), m, 1.0, True))
        if w == "echo" and m == "p99_latency":
            result.append(against(w, json.loads(p), m, 1.0, False))
        if w == "http" and m == "requests":
            result.append(against(w, json.loads(p), m, 1.0, True))
            result.append(against(w, json.loads(p), m, 0.9, True, peer="kernel"))
    # io_uring against evflow's own epoll (issue targets): the echo at 100 connections, every
    # HTTP point, and bench.c's system calls per event.
    def uring(workload, params, metric, limit, higher):
        values = fig.get(next((k for k in fig if k[0] == workload and k[2] == metric
                               and json.loads(k[1]) == params), None), {})
        r = ratio(values.get("evflow_io_uring"), values.get("evflow"))
        met = r is not None and (r >= limit if higher else r < limit)
        return ("%s %s %s (io_uring/epoll)" % (workload, param_text(json.dumps(params, sort_keys=True)), metric),
                "%s %.2fx" % (">=" if higher else "<", limit), None if r is None else "%.3fx" % r, met)

    for (w, p, m, _) in sorted(fig):
        params = json.loads(p)
        if w == "echo" and m == "round_trips" and params.get("connections") == 100:
            result.append(uring(w, params, m, 1.3, True))
        if w == "http" and m == "requests":
            result.append(uring(w, params, m, 1.0, True))
        if w == "benchc" and m == "syscalls_per_event":
            result.append(uring(w, params, m, 1.0, False))
    result.append(absolute("tasks", {"op": "group_cancel_thousand"}, "time_per_op", 100, "us", 1e3, strict=True))
    result.append(absolute("tasks", {"op": "group_thousand"}, "allocations_per_op", 0, "per child"))
    return [r for r in result if r[2] is not None]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--format", choices=["svg", "png"], default="svg", help="chart format")
    ap.add_argument("--merge", action="store_true",
                    help="keep the records of <out>/latest.json of every workload the files do not measure "
                         "(to refresh one workload, e.g. the tasks from a task_bench run, without the rest)")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    raw, errors, grids = load(args.files)
    fig = {k: {lib: statistics.median(v) for lib, v in libs.items()} for k, libs in raw.items()}
    rounds = max((len(v) for libs in raw.values() for v in libs.values()), default=0)
    os.makedirs(args.out, exist_ok=True)

    records = []
    for (workload, params, metric, unit), values in fig.items():
        for lib, value in values.items():
            records.append({"workload": workload, "library": lib, "params": json.loads(params),
                            "metric": metric, "value": value, "unit": unit})
    latest = os.path.join(args.out, "latest.json")
    kept = []
    if args.merge and os.path.exists(latest):
        measured = {r["workload"] for r in records}
        with open(latest) as f:
            kept = [r for r in json.load(f) if r["workload"] not in measured]
        records += kept
    records.sort(key=lambda r: (WORKLOAD_ORDER.index(r["workload"]) if r["workload"] in WORKLOAD_ORDER else 99,
                                json.dumps(r["params"], sort_keys=True), r["metric"],
                                LIBRARIES.index(r["library"]) if r["library"] in LIBRARIES else 99))
    with open(latest, "w") as f:
        json.dump(records, f, indent=1)
        f.write("\n")

    present = [l for l in LIBRARIES if any(l in v for v in fig.values())]
    workloads = sorted({k[0] for k in fig}, key=lambda w: WORKLOAD_ORDER.index(w) if w in WORKLOAD_ORDER else 99)
    print("evflow side by side: medians of %d round(s) per figure" % rounds)
    charts = []
    for w in workloads:
        rows = sorted(((p, m, u), v) for (ww, p, m, u), v in fig.items() if ww == w)
        if w in FLOOR_IN_CHART:  # by the parameters' values: 64 before 4096
            rows.sort(key=lambda r: ([v for _, v in sorted(json.loads(r[0][0]).items())], r[0][1]))
        libs = [l for l in present if any(l in v for _, v in rows)]
        print()
        print(table(w, rows, libs, fig))
        svg = chart(args.out, w, rows, libs, args.format)
        if svg:
            charts.append(svg)
    print()
    print("## targets (ratio evflow/libev, for the tasks evflow/asio, for echo and http evflow/best peer and "
          "evflow/kernel, or evflow's own figure; this run)")
    if grids and grids != {"full"}:
        print("  (reduced grid: the targets are set for make bench's full grid: the largest ring, 1M timers)")
    failed = 0
    for label, limit, measured, met in targets(fig):
        failed += not met
        print("  %-70s %-14s %14s  %s" % (label, limit, measured, "met" if met else "NOT MET"))
    print()
    for lib, name, message in errors:
        print("error: %s %s: %s" % (lib, name, message))
    print("wrote %s (%d records%s) and %d charts" % (
        latest, len(records), ", %d kept from before" % len(kept) if kept else "", len(charts)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
