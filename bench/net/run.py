#!/usr/bin/env python3
"""Runs the socket workloads: each server of bench/net/ against the same load generator,
and writes their figures as evflow's bench records.

    run.py --bin build/release/bench/net --grid full|quick|smoke --out net.json

echo  bench/net/echo_<library> under bench/net/echo_client: 1 and 100 connections, 64-byte
      and 4 KiB messages, a fixed number of round trips per connection; round trips per
      second, p50 and p99 of one round trip, and the server's CPU time per round trip.
http  bench/net/http_<library> under wrk (--latency), 1 and 2 loops; requests per second,
      wrk's latency percentiles, and the server's CPU time per request.

The server's CPU time is the sum over its threads of the time they ran on a CPU
(/proc/PID/task/*/schedstat) during the load: where the load generator, not the server, is
the limit, it tells what each request cost the server. evflow_io_uring is evflow's server
with its loops on io_uring, where the socket calls are submitted to the kernel as they are.

Pinning (taskset): with one loop the server runs on SERVER_CPU and the load generator on
CLIENT_CPU; with two loops the server's two threads and wrk's two threads share both CPUs.
Each round starts every server in turn (a fresh process, on a free port), waits until all
its listeners are up (/proc/net/tcp), runs the load, and kills it; each round begins
further down the list of libraries, so that the machine's drift during a round does not
always fall on the same one; the report takes each
figure's median over the rounds. The output is a JSON list of records, one per figure and
round: {"workload", "library", "params", "metric", "value", "unit"}.

--realtime runs the servers and load generators of the one-loop points under SCHED_FIFO
(chrt -f 1; root only), so that on a machine busy with other work they are woken at once
instead of waiting for the end of another process's time slice (a lower nice value does
not help when the other work is in another cgroup): the figures then describe the
libraries rather than the machine's load. The kernel's real-time throttling still leaves
other processes 5% of each second, which can stall a point that keeps a CPU busy for more
than 0.95 s. The two-loop HTTP points stay at the normal priority: there the server's and
wrk's threads share the CPUs, and SCHED_FIFO threads of one priority do not take turns.
"""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

ECHO_LIBRARIES = ["kernel", "evflow", "evflow_io_uring", "libev", "libuv", "libevent", "asio"]
HTTP_LIBRARIES = ["kernel", "evflow", "evflow_io_uring", "asio", "libuv"]
# Per grid: echo points (connections, size, round trips per connection), http loop
# counts, wrk's connections and seconds, rounds.
GRIDS = {
    "full": {"echo": [(1, 64, 10000), (1, 4096, 10000), (100, 64, 500), (100, 4096, 500)],
             "http_loops": [1, 2], "http_connections": 100, "http_seconds": 3, "rounds": 3},
    "quick": {"echo": [(1, 64, 2000), (1, 4096, 2000), (100, 64, 100), (100, 4096, 100)],
              "http_loops": [1, 2], "http_connections": 100, "http_seconds": 1, "rounds": 1},
    "smoke": {"echo": [(1, 64, 200), (100, 64, 20)],
              "http_loops": [1], "http_connections": 8, "http_seconds": 1, "rounds": 1},
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listeners(port):
    """How many sockets listen on `port` (IPv4), from /proc/net/tcp."""
    count = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":
                count += 1
    return count


# What every measured process is started under (chrt -f 1 with --realtime).
PRIORITY = []


def pinned(cpus, command, priority=True):
    return (PRIORITY if priority else []) + ["taskset", "-c", cpus] + command


UNAVAILABLE = 77  # a server that cannot run on this machine (bench/net/common.hpp)


class Unavailable(Exception):
    """A server that cannot run here, e.g. evflow_io_uring where the kernel refuses io_uring."""


class Server:
    """A server process pinned to `cpus`, up once `loops` listeners are on its port."""

    def __init__(self, binary, cpus, loops=1):
        self.port = free_port()
        self.process = subprocess.Popen(pinned(cpus, [binary, str(self.port), str(loops)], loops == 1))
        deadline = time.monotonic() + 10
        while listeners(self.port) < loops:
            if self.process.poll() is not None:
                if self.process.returncode == UNAVAILABLE:
                    raise Unavailable(binary)
                raise RuntimeError("%s exited with status %d" % (binary, self.process.returncode))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("%s did not listen on port %d" % (binary, self.port))
            time.sleep(0.02)

    def cpu_ns(self):
        """CPU time the server's threads have used so far (schedstat: ns on a CPU)."""
        total = 0
        task_dir = "/proc/%d/task" % self.process.pid
        for tid in os.listdir(task_dir):
            try:
                with open(os.path.join(task_dir, tid, "schedstat")) as f:
                    total += int(f.read().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                pass  # a thread that ended meanwhile
        return total

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()


def record(workload, library, params, metric, value, unit):
    return {"workload": workload, "library": library, "params": params, "metric": metric, "value": value,
            "unit": unit}


def run_echo(args, grid, library, records):
    server = Server(os.path.join(args.bin, "echo_" + library), args.server_cpu)
    try:
        for connections, size, round_trips in grid["echo"]:
            warmup = max(1, round_trips // 10)  # unmeasured round trips per connection, first
            cpu_before = server.cpu_ns()
            out = subprocess.run(pinned(args.client_cpu, [os.path.join(args.bin, "echo_client"), str(server.port),
                                                          str(connections), str(size), str(round_trips),
                                                          str(warmup)]),
                                 check=True, capture_output=True, text=True, timeout=120).stdout
            server_cpu_ns = server.cpu_ns() - cpu_before
            result = json.loads(out)
            params = {"connections": connections, "size": size}
            records.append(record("echo", library, params, "round_trips", result["round_trips_per_s"], "1/s"))
            # The server's CPU time per round trip, the warm-up's counted (and the connections'
            # setup and end, which the warm-up's round trips outnumber).
            served = result["round_trips"] + warmup * connections
            records.append(record("echo", library, params, "server_cpu", server_cpu_ns / 1e3 / served, "us"))
            records.append(record("echo", library, params, "p50_latency", result["p50_us"], "us"))
            records.append(record("echo", library, params, "p99_latency", result["p99_us"], "us"))
            print("  echo %-8s connections=%-3d size=%-4d %9.0f round trips/s  p50 %7.1f us  p99 %8.1f us" % (
                library, connections, size, result["round_trips_per_s"], result["p50_us"], result["p99_us"]),
                flush=True)
    finally:
        server.stop()


WRK_TIME = re.compile(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$")
SCALE_US = {"us": 1, "ms": 1e3, "s": 1e6}


def parse_wrk(text):
    """Requests per second and the latency percentiles (us) wrk --latency printed."""
    figures = {}
    for line in text.splitlines():
        m = WRK_TIME.match(line)
        if m:
            figures["p%s" % m.group(1)] = float(m.group(2)) * SCALE_US[m.group(3)]
        elif re.match(r"^\s*\d+ requests in ", line):
            figures["requests"] = int(line.split()[0])
        elif line.startswith("Requests/sec:"):
            figures["requests_per_s"] = float(line.split()[1])
        elif "Non-2xx" in line or "Socket errors" in line:
            figures.setdefault("errors", []).append(line.strip())
    if "requests_per_s" not in figures or "p99" not in figures:
        raise RuntimeError("could not read wrk's output:\n" + text)
    return figures


def run_http(args, grid, library, loops, records):
    # One loop: the server on its CPU, wrk on the other. Two: both share both CPUs.
    both = "%s,%s" % (args.client_cpu, args.server_cpu)
    server = Server(os.path.join(args.bin, "http_" + library), args.server_cpu if loops == 1 else both, loops)
    try:
        connections = grid["http_connections"]
        cpu_before = server.cpu_ns()
        out = subprocess.run(pinned(args.client_cpu if loops == 1 else both,
                                    [args.wrk, "-t%d" % loops, "-c%d" % connections, "-d%ds" % grid["http_seconds"],
                                     "--latency", "http://127.0.0.1:%d/" % server.port], loops == 1),
                             check=True, capture_output=True, text=True, timeout=60).stdout
        server_cpu_ns = server.cpu_ns() - cpu_before
        result = parse_wrk(out)
        if result.get("errors"):
            # Socket errors at the end of the run are wrk closing its connections; anything
            # else is a server that answered wrongly.
            print("  http %s loops=%d: %s" % (library, loops, "; ".join(result["errors"])), file=sys.stderr)
            if any("Non-2xx" in e for e in result["errors"]):
                raise RuntimeError("%s answered with a status other than 200" % library)
        params = {"loops": loops, "connections": connections}
        records.append(record("http", library, params, "requests", result["requests_per_s"], "1/s"))
        if result.get("requests"):  # the server's CPU time per request answered
            records.append(record("http", library, params, "server_cpu", server_cpu_ns / 1e3 / result["requests"], "us"))
        for p in ("p50", "p90", "p99"):
            records.append(record("http", library, params, p + "_latency", result[p], "us"))
        print("  http %-8s loops=%d connections=%d %9.0f requests/s  p50 %7.1f us  p99 %8.1f us" % (
            library, loops, connections, result["requests_per_s"], result["p50"], result["p99"]), flush=True)
    finally:
        server.stop()


def in_turn(libraries, round_number, rounds):
    """The order of round `round_number` (from 1): each round starts further down the list,
    so that a drift of the machine during a round does not always hit the same library."""
    shift = (round_number - 1) * len(libraries) // rounds
    return libraries[shift:] + libraries[:shift]


def skip_unavailable(missing, library, run):
    try:
        run()
    except Unavailable as e:
        missing.add(library)
        print("  %s cannot run here (%s): left out" % (library, e), file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/release/bench/net")
    ap.add_argument("--grid", choices=sorted(GRIDS), default="full")
    ap.add_argument("--rounds", type=int, help="rounds (default: the grid's)")
    ap.add_argument("--workloads", default="echo,http")
    ap.add_argument("--libraries", help="only these (comma-separated)")
    ap.add_argument("--server-cpu", default="1")
    ap.add_argument("--client-cpu", default="0")
    ap.add_argument("--wrk", default="wrk")
    ap.add_argument("--realtime", action="store_true", help="servers and load under SCHED_FIFO (chrt -f 1)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.realtime:
        PRIORITY.extend(["chrt", "-f", "1"])
    grid = GRIDS[args.grid]
    wanted = set(args.libraries.split(",")) if args.libraries else None
    workloads = args.workloads.split(",")
    records = []
    missing = set()  # servers that cannot run here
    rounds = args.rounds or grid["rounds"]
    for r in range(1, rounds + 1):
        print("== net round %d/%d (%s grid; server CPU %s, load CPU %s%s)" % (
            r, rounds, args.grid, args.server_cpu, args.client_cpu, "; SCHED_FIFO" if args.realtime else ""),
            flush=True)
        if "echo" in workloads:
            for library in in_turn(ECHO_LIBRARIES, r, rounds):
                if (wanted is None or library in wanted) and library not in missing:
                    skip_unavailable(missing, library, lambda: run_echo(args, grid, library, records))
        if "http" in workloads:
            for loops in grid["http_loops"]:
                for library in in_turn(HTTP_LIBRARIES, r, rounds):
                    if (wanted is None or library in wanted) and library not in missing:
                        skip_unavailable(missing, library, lambda: run_http(args, grid, library, loops, records))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(records, f, indent=1)
        f.write("\n")
    print("wrote %s (%d records)" % (args.out, len(records)))


if __name__ == "__main__":
    main()
