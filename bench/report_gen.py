#!/usr/bin/env python3
"""report_gen: turns one run of the benchmark tools into docs/benchmarks.md.

    python3 bench/report_gen.py --run-dir DIR --template bench/report_template.md \\
        --out docs/benchmarks.md --img-dir docs/img [--gnuplot auto|off]

DIR is what bench/report.sh leaves behind:
    meta.txt             key=value lines: the machine, load averages, commit, mode
    commands.txt         the exact commands, one per line
    echo.jsonl           bench/run_echo_bench.sh --json lines (load and idle)
    rpc.jsonl            bench/run_rpc_bench.sh --json lines (rpc_bench and grpc_bench)
    conn_TYPE.jsonl      rpc_bench alone with --connection_type=TYPE
    compress_ALGO.jsonl  rpc_bench alone with --compress=ALGO
    roundN_echo.jsonl    round N (1, 2, ...) of the target points, interleaved:
    roundN_rpc.jsonl     the verdicts use the median over the rounds

The template's {{section}} markers are replaced by the generated sections
(SECTIONS below); every other line is kept as written. Each section and each
chart comes from a small pure function of the parsed run, so the output only
depends on the input files (bench/report_test.sh compares it with a golden
file). Charts are gnuplot scripts; with --gnuplot auto they are rendered to
IMG_DIR/bench_*.png when gnuplot is on PATH, with --gnuplot off never (the
page links them either way).

Python 3 standard library only.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ECHO_SERVERS = ["netpoll", "epoll", "threaded"]
CONN_TYPES = ["single", "pooled", "short"]
COMPRESS_ALGOS = ["none", "snappy", "gzip", "zlib"]
PERCENTILES = [("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9")]
# A row measured while the rest of the machine took more than this (percent of
# one core) is marked as disturbed.
NOISY_OTHERS_PCT = 50.0


# --- Reading the run --------------------------------------------------------


def read_jsonl(path):
    """The JSON objects of a file, one per line; [] when the file is absent."""
    if not os.path.exists(path):
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise SystemExit(f"report_gen: {path}:{number}: not JSON: {e}")
    return rows


def read_meta(path):
    meta = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.rstrip("\n").partition("=")
                if sep:
                    meta[key] = value
    return meta


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def echo_rows(path):
    """(server, payload, connections) -> row, and server -> idle row."""
    echo, idle = {}, {}
    for row in read_jsonl(path):
        if row.get("mode") == "idle":
            idle[row["name"]] = row
        else:
            echo[(row["name"], row["payload"], row["connections"])] = row
    return echo, idle


def rpc_rows(path):
    """(pair, payload, concurrency) -> row. pair: "nprpc" (rpc_bench against the
    server run with the run script's --nprpc-flags) and "grpc"; with the run
    script's --brpc-dir also "brpc" (the brpc pair), "brpc_to_nprpc" (the brpc
    client against the default nprpc server) and "nprpc_default" (rpc_bench
    against the default server: the "nprpc" row itself when it ran with no
    server flags)."""
    rpc = {}
    for row in read_jsonl(path):
        side = row.get("pair")
        if side is None:
            side = {"grpc_bench": "grpc", "brpc_bench": "brpc"}.get(row["tool"], "nprpc")
        rpc[(side, row["payload"], row["concurrency"])] = row
        if side == "nprpc" and row.get("server_flags") == "":
            rpc[("nprpc_default", row["payload"], row["concurrency"])] = row
    return rpc


class Round:
    """One interleaved round of the target points."""

    def __init__(self, echo, rpc):
        self.echo = echo
        self.rpc = rpc


class Run:
    """One benchmark run, indexed by point. A point measured twice keeps the
    later row."""

    def __init__(self, run_dir):
        self.meta = read_meta(os.path.join(run_dir, "meta.txt"))
        self.commands = read_lines(os.path.join(run_dir, "commands.txt"))
        self.echo, self.idle = echo_rows(os.path.join(run_dir, "echo.jsonl"))
        self.rpc = rpc_rows(os.path.join(run_dir, "rpc.jsonl"))
        self.rounds = []
        n = 1
        while True:
            echo_path = os.path.join(run_dir, f"round{n}_echo.jsonl")
            rpc_path = os.path.join(run_dir, f"round{n}_rpc.jsonl")
            if not (os.path.exists(echo_path) or os.path.exists(rpc_path)):
                break
            self.rounds.append(Round(echo_rows(echo_path)[0], rpc_rows(rpc_path)))
            n += 1
        self.conn = {}  # (type, payload, concurrency) -> row
        for t in CONN_TYPES:
            for row in read_jsonl(os.path.join(run_dir, f"conn_{t}.jsonl")):
                self.conn[(t, row["payload"], row["concurrency"])] = row
        self.compress = {}  # (algo, payload, concurrency) -> row
        for a in COMPRESS_ALGOS:
            for row in read_jsonl(os.path.join(run_dir, f"compress_{a}.jsonl")):
                self.compress[(a, row["payload"], row["concurrency"])] = row

    def echo_payloads(self):
        return sorted({k[1] for k in self.echo})

    def echo_conns(self):
        return sorted({k[2] for k in self.echo})

    def rpc_payloads(self):
        return sorted({k[1] for k in self.rpc})

    def rpc_conns(self):
        return sorted({k[2] for k in self.rpc})


# --- Numbers ----------------------------------------------------------------


def num(row, key):
    """row[key] as a float, or None when the row or the value is absent."""
    if row is None:
        return None
    value = row.get(key)
    return float(value) if isinstance(value, (int, float)) else None


def cpu_us_per_call(row, who):
    """CPU microseconds per call of the server or the client: pct * 1e4 / qps."""
    pct, qps = num(row, f"{who}_cpu_pct"), num(row, "qps")
    if pct is None or not qps:
        return None
    return pct * 1e4 / qps


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def valid(row):
    """A row that is a measurement: present, calls succeeded, no errors."""
    return row is not None and row.get("errors", 1) == 0 and (num(row, "qps") or 0) > 0


def fmt_int(v):
    return "–" if v is None else f"{v:,.0f}"


def fmt_us(v):
    if v is None:
        return "–"
    return f"{v:,.1f}" if v < 1000 else f"{v:,.0f}"


def fmt_1(v):
    return "–" if v is None else f"{v:,.1f}"


def fmt_ratio(v):
    return "–" if v is None else f"{v:.2f}"


def fmt_size(payload):
    if payload >= 1024 and payload % 1024 == 0:
        return f"{payload // 1024} KiB"
    return f"{payload} B"


def fmt_mib(kib):
    return "–" if kib is None else f"{kib / 1024:.1f}"


def fmt_errors(row):
    return "–" if row is None else f"{row.get('errors', 0):,}"


def fmt_others(*rows):
    """The busiest 'rest of the machine' figure of the rows, marked when noisy."""
    values = [num(r, "others_cpu_pct") for r in rows]
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    worst = max(values)
    return f"{worst:.0f}" + (" ⚠" if worst > NOISY_OTHERS_PCT else "")


def pair(a, b, fmt):
    return f"{fmt(a)} / {fmt(b)}"


def table(header, align, rows):
    """A markdown table; align is a string of 'l' and 'r', one per column."""
    out = ["| " + " | ".join(header) + " |"]
    out.append("|" + "|".join("---" if a == "l" else "---:" for a in align) + "|")
    for r in rows:
        out.append("| " + " | ".join(r) + " |")
    return "\n".join(out)


# --- Sections ---------------------------------------------------------------


def section_header(run):
    m = run.meta
    command = m.get("command", "bench/report.sh")
    lines = [
        "<!-- Generated by bench/report.sh from bench/report_template.md and one run of the",
        "     benchmark tools: edit the template or bench/report_gen.py, not this file. -->",
        "",
        f"> **Generated** by `{command}` on {m.get('started_utc', '?')} "
        f"({m.get('mode', '?')} mode) at commit `{m.get('commit', '?')}`. "
        "Regenerate with `bench/report.sh` (about 25 minutes; `--quick` for a try-out; "
        "`BAZEL_OUTPUT_BASE=dir` for your own Bazel output base). The prose comes from "
        "`bench/report_template.md`; the tables, verdicts and charts from the run.",
    ]
    return "\n".join(lines)


def section_machine(run):
    m = run.meta
    dirty = m.get("dirty_files", "0")
    tree = f"commit `{m.get('commit', '?')}` ({m.get('commit_date', '?')}: {m.get('commit_subject', '?')})"
    if dirty not in ("", "0"):
        tree += (
            f", plus {dirty} file(s) with uncommitted edits in the shared checkout at the time of "
            "the run (other engineers' work in progress; the benchmarked binaries may include them)"
        )
    waited = m.get("waited_s", "0")
    wait_note = f" after waiting {waited} s for the machine to quieten" if waited not in ("", "0") else ""
    lines = [
        f"- Run: {m.get('started_utc', '?')} to {m.get('finished_utc', '?')}{wait_note}, "
        f"{m.get('mode', '?')} mode: {m.get('duration_s', '?')} s measured after "
        f"{m.get('warmup_s', '?')} s of warm-up per point, a freshly started server per point.",
        f"- Code: {tree}.",
        f"- Machine: {m.get('nproc', '?')} CPUs ({m.get('cpu_model', '?')}), {m.get('mem', '?')} RAM, "
        f"{m.get('kernel', '?')}, {m.get('os', '?')}, {m.get('compiler', '?')}, `--config=opt` "
        "(`-O2 -DNDEBUG`).",
        f"- Load average (1, 5, 15 min): before {m.get('load_before', '?')}; "
        f"at the start of the echo runs {m.get('load_echo', '?')}, of nprpc vs gRPC "
        f"{m.get('load_rpc', '?')}, of the connection types {m.get('load_conn', '?')}, "
        f"of compression {m.get('load_compress', '?')}; after {m.get('load_after', '?')}. "
        + noise_summary(run),
    ]
    return "\n".join(lines)


def all_rows(run):
    return [*run.echo.values(), *run.rpc.values(), *run.conn.values(), *run.compress.values()]


def noise_summary(run):
    """One sentence on how much the rest of the machine took during the windows."""
    values = sorted(v for v in (num(r, "others_cpu_pct") for r in all_rows(run)) if v is not None)
    if not values:
        return "No row recorded the rest of the machine's CPU."
    noisy = sum(1 for v in values if v > NOISY_OTHERS_PCT)
    median = values[len(values) // 2]
    return (
        f"Other processes used {values[0]:.0f}-{values[-1]:.0f} % CPU (median {median:.0f} %, of "
        f"200 %) during the measured windows; {noisy} of {len(values)} rows are marked ⚠ "
        f"(> {NOISY_OTHERS_PCT:.0f} %)."
    )


def section_commands(run):
    if not run.commands:
        return "(no commands recorded)"
    return "```sh\n" + "\n".join(run.commands) + "\n```"


def verdict(value, op, limit):
    if value is None:
        return "not measured"
    ok = value >= limit if op == ">=" else value <= limit
    return "**met**" if ok else "**missed**"


def echo_target_conns(view):
    """The concurrency standing for '1,000 connections': the smallest >= 1000."""
    big = [k[2] for k in view.echo if k[2] >= 1000]
    return min(big) if big else None


def median(values):
    v = sorted(values)
    if not v:
        return None
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


def echo_ratio(view, base):
    """(netpoll / base QPS at 16 B and ~1,000 connections or None, the rows)."""
    c = echo_target_conns(view)
    np_row = view.echo.get(("netpoll", 16, c)) if c else None
    other = view.echo.get((base, 16, c)) if c else None
    r = ratio(num(np_row, "qps"), num(other, "qps")) if valid(np_row) and valid(other) else None
    return r, [np_row, other]


def rpc_ratio(view, key, payload, conc):
    """(nprpc / gRPC ratio of `key` or None, the rows)."""
    np_, gr = view.rpc.get(("nprpc", payload, conc)), view.rpc.get(("grpc", payload, conc))
    if not (valid(np_) and valid(gr)):
        return None, [np_, gr]
    return ratio(num(np_, key), num(gr, key)), [np_, gr]


# The ratio targets: (name, where, limit, op, function of a Run or Round).
RATIO_TARGETS = [
    ("transport: netpoll QPS ≥ 0.9× the minimal epoll loop", "16 B, C = 1,024", 0.9, ">=",
     lambda v: echo_ratio(v, "epoll")),
    ("transport: netpoll QPS ≥ 2× thread-per-connection", "16 B, C = 1,024", 2.0, ">=",
     lambda v: echo_ratio(v, "threaded")),
    ("RPC: nprpc QPS ≥ 4× gRPC", "16 B, C = 128", 4.0, ">=", lambda v: rpc_ratio(v, "qps", 16, 128)),
    ("RPC: nprpc QPS ≥ 1.7× gRPC", "16 B, C = 16", 1.7, ">=", lambda v: rpc_ratio(v, "qps", 16, 16)),
    ("RPC: nprpc QPS ≥ 2× gRPC", "4 KiB, C = 128", 2.0, ">=",
     lambda v: rpc_ratio(v, "qps", 4096, 128)),
    ("RPC: nprpc QPS ≥ 1.4× gRPC", "16 B, C = 1", 1.4, ">=", lambda v: rpc_ratio(v, "qps", 16, 1)),
    ("RPC: nprpc p50 ≤ 0.7× gRPC's", "16 B, C = 1", 0.7, "<=", lambda v: rpc_ratio(v, "p50_us", 16, 1)),
]


def round_values(run, fn):
    """fn over every round: ([ratio or None per round], every row involved)."""
    values, rows = [], []
    for rnd in run.rounds:
        r, rr = fn(rnd)
        values.append(r)
        rows += rr
    return values, rows


def section_targets(run):
    rows = []

    def add(target, at, value_text, value, op, limit, others, rows_present=False):
        decided = verdict(value, op, limit)
        if value is None and rows_present:
            decided = "no verdict (failed calls)"
        sign = "≥" if op == ">=" else "≤"
        rows.append([target, at, value_text, f"{sign} {limit:g}", decided, others])

    def add_ratio(name, at, limit, op, fn, extra=None):
        single, single_rows = fn(run)
        present = any(r is not None for r in single_rows)
        if run.rounds:
            values, round_rows = round_values(run, fn)
            measured = [v for v in values if v is not None]
            value = median(measured)
            text = fmt_ratio(value)
            if measured:
                text += (
                    f" (median of {len(measured)} rounds, {fmt_ratio(min(measured))}–"
                    f"{fmt_ratio(max(measured))}; sweep {fmt_ratio(single)})"
                )
            add(name, at, text, value, op, limit, fmt_others(*round_rows),
                present or any(r is not None for r in round_rows))
        else:
            text = fmt_ratio(single)
            if single is not None and extra:
                text += extra(single_rows)
            add(name, at, text, single, op, limit, fmt_others(*single_rows), present)

    def echo_cpu(rows):
        np_row, other = rows
        return (
            f" (server µs CPU / echo {fmt_1(cpu_us_per_call(np_row, 'server'))} vs "
            f"{fmt_1(cpu_us_per_call(other, 'server'))})"
        )

    for name, at, limit, op, fn in RATIO_TARGETS[:2]:
        add_ratio(name, at, limit, op, fn, echo_cpu)
    idle = run.idle.get("netpoll")
    per_conn = num(idle, "rss_per_conn_bytes")
    add(
        "transport: netpoll user-space RSS per idle connection (bytes)",
        f"{fmt_int(num(idle, 'connected'))} idle" if idle else "10,000 idle",
        fmt_int(per_conn),
        per_conn,
        "<=",
        4096,
        "–",
    )
    for name, at, limit, op, fn in RATIO_TARGETS[2:]:
        add_ratio(name, at, limit, op, fn)
    # Peak RSS: the largest of every C = 128 nprpc row, sweep and rounds.
    views = [run] + run.rounds
    peak_rows = [v.rpc.get(("nprpc", p, 128)) for v in views for p in (16, 4096)]
    peaks = [num(r, "server_peak_rss_kib") for r in peak_rows]
    peaks = [p for p in peaks if p is not None]
    peak_mib = max(peaks) / 1024 if peaks else None
    add(
        "RPC: nprpc server peak RSS (MiB)",
        "C = 128, 16 B and 4 KiB (the largest" + (" of sweep and rounds)" if run.rounds else ")"),
        fmt_1(peak_mib),
        peak_mib,
        "<=",
        12,
        fmt_others(*peak_rows),
    )
    return table(["target", "at", "measured", "limit", "verdict", "others' CPU %"], "llrrll", rows)


def section_target_rounds(run):
    """Every round's ratio per target, and the median the verdicts use."""
    if not run.rounds:
        return "No rounds in this run: the verdicts above use the sweep's single points."
    n = len(run.rounds)
    rows = []
    for name, at, limit, op, fn in RATIO_TARGETS:
        values, _ = round_values(run, fn)
        measured = [v for v in values if v is not None]
        rows.append([f"{name} ({at})"] + [fmt_ratio(v) for v in values] + [fmt_ratio(median(measured))])

    # References, not targets: how far the bound of any one-loop reactor is.
    def epoll_vs_threaded(view):
        c = echo_target_conns(view)
        e, t = (view.echo.get((s, 16, c)) if c else None for s in ("epoll", "threaded"))
        return ratio(num(e, "qps"), num(t, "qps")) if valid(e) and valid(t) else None

    values = [epoll_vs_threaded(r) for r in run.rounds]
    rows.append(
        ["reference: the minimal epoll loop's QPS / thread-per-connection's (16 B, C = 1,024)"]
        + [fmt_ratio(v) for v in values]
        + [fmt_ratio(median([v for v in values if v is not None]))]
    )
    for server in ECHO_SERVERS:
        values = []
        for r in run.rounds:
            c = echo_target_conns(r)
            row = r.echo.get((server, 16, c)) if c else None
            values.append(cpu_us_per_call(row, "server") if valid(row) else None)
        rows.append(
            [f"reference: {server} server µs CPU per echo (16 B, C = 1,024)"]
            + [fmt_1(v) for v in values]
            + [fmt_1(median([v for v in values if v is not None]))]
        )
    header = ["target"] + [f"round {i}" for i in range(1, n + 1)] + ["median"]
    return table(header, "l" + "r" * (n + 1), rows)


def section_echo(run):
    out = []
    for payload in run.echo_payloads():
        rows = []
        for server in ECHO_SERVERS:
            for c in run.echo_conns():
                r = run.echo.get((server, payload, c))
                if r is None:
                    continue
                rows.append(
                    [
                        server,
                        f"{c:,}",
                        fmt_int(num(r, "qps")),
                        fmt_us(num(r, "p50_us")),
                        fmt_us(num(r, "p99_us")),
                        fmt_us(num(r, "p999_us")),
                        fmt_1(cpu_us_per_call(r, "server")),
                        fmt_1(cpu_us_per_call(r, "client")),
                        fmt_int(num(r, "server_peak_rss_kib")),
                        fmt_errors(r),
                        fmt_others(r),
                    ]
                )
        out.append(f"#### {fmt_size(payload)} payload\n")
        out.append(
            table(
                ["server", "C", "QPS", "p50 µs", "p99 µs", "p99.9 µs", "server µs CPU / echo",
                 "client µs CPU / echo", "server peak RSS KiB", "errors", "others' CPU %"],
                "lrrrrrrrrrr",
                rows,
            )
        )
        out.append("")
    return "\n".join(out).rstrip()


def section_echo_idle(run):
    rows = []
    for server in ECHO_SERVERS:
        r = run.idle.get(server)
        if r is None:
            continue
        rows.append(
            [
                server,
                fmt_int(num(r, "connections")),
                fmt_int(num(r, "connected")),
                fmt_errors(r),
                fmt_int(num(r, "server_rss_before_kib")),
                fmt_int(num(r, "server_rss_after_kib")),
                fmt_int(num(r, "rss_per_conn_bytes")),
            ]
        )
    if not rows:
        return "(not measured in this run)"
    return table(
        ["server", "idle connections", "connected", "errors", "RSS before KiB", "RSS with them KiB",
         "user-space bytes / idle connection"],
        "lrrrrrr",
        rows,
    )


def section_rpc(run):
    out = []
    for payload in run.rpc_payloads():
        rows = []
        for c in run.rpc_conns():
            n, g = run.rpc.get(("nprpc", payload, c)), run.rpc.get(("grpc", payload, c))
            if n is None and g is None:
                continue
            both = valid(n) and valid(g)
            rows.append(
                [
                    f"{c:,}",
                    fmt_int(num(n, "qps")),
                    fmt_int(num(g, "qps")),
                    fmt_ratio(ratio(num(n, "qps"), num(g, "qps")) if both else None),
                    pair(num(n, "p50_us"), num(g, "p50_us"), fmt_us),
                    pair(num(n, "p99_us"), num(g, "p99_us"), fmt_us),
                    pair(num(n, "p999_us"), num(g, "p999_us"), fmt_us),
                    pair(cpu_us_per_call(n, "server"), cpu_us_per_call(g, "server"), fmt_1),
                    pair(cpu_us_per_call(n, "client"), cpu_us_per_call(g, "client"), fmt_1),
                    pair(num(n, "server_peak_rss_kib"), num(g, "server_peak_rss_kib"), fmt_mib),
                    f"{fmt_errors(n)} / {fmt_errors(g)}",
                    fmt_others(n, g),
                ]
            )
        out.append(f"#### {fmt_size(payload)} payload (nprpc / gRPC)\n")
        out.append(
            table(
                ["C", "nprpc QPS", "gRPC QPS", "QPS ratio", "p50 µs", "p99 µs", "p99.9 µs",
                 "server µs CPU / call", "client µs CPU / call", "server peak RSS MiB", "errors",
                 "others' CPU %"],
                "rrrrrrrrrrrr",
                rows,
            )
        )
        out.append("")
    return "\n".join(out).rstrip()


# The brpc baseline's columns: (pair, label).
BRPC_PAIRS = [("brpc", "brpc"), ("nprpc_default", "default"), ("nprpc", "inline"),
              ("brpc_to_nprpc", "brpc client → default")]


def has_brpc(view):
    return any(k[0] == "brpc" for k in view.rpc)


def nprpc_flags_text(run):
    """The nprpc pair's server flags, as a table heading says them."""
    views = [run] + list(run.rounds)
    for view in views:
        for k, row in view.rpc.items():
            if k[0] == "nprpc" and "server_flags" in row:
                return f"`{row['server_flags']}`" if row["server_flags"] else "no flags"
    return "`--handler_threads=loop`"


def brpc_ratio(view, payload, conc):
    """(nprpc default / brpc QPS or None, the rows)."""
    d, b = view.rpc.get(("nprpc_default", payload, conc)), view.rpc.get(("brpc", payload, conc))
    if not (valid(d) and valid(b)):
        return None, [d, b]
    return ratio(num(d, "qps"), num(b, "qps")), [d, b]


def section_brpc(run):
    views = [run] + list(run.rounds)
    if not any(has_brpc(v) for v in views):
        return ("No brpc baseline in this run (`bench/report.sh --brpc-dir DIR` adds one: a brpc echo "
                "server and load client, which the project does not depend on).")
    out = [
        f"`default` = `rpc_echo_server` with no flags, `inline` = `rpc_echo_server` with "
        f"{nprpc_flags_text(run)}, both loaded by `rpc_bench`; `brpc` = `brpc_echo_server` loaded by "
        "`brpc_bench_client`; `brpc client → default` = `brpc_bench_client` against the default "
        "server. Four figures in a cell: brpc / default / inline / brpc client → default.",
        "",
    ]
    def qps(r):
        return num(r, "qps") if valid(r) else None
    if has_brpc(run):
        for payload in run.rpc_payloads():
            rows = []
            for c in run.rpc_conns():
                cells = [run.rpc.get((k, payload, c)) for k, _ in BRPC_PAIRS]
                if cells[0] is None:
                    continue
                rows.append(
                    [
                        f"{c:,}",
                        fmt_int(qps(cells[0])),
                        fmt_int(qps(cells[1])),
                        fmt_ratio(brpc_ratio(run, payload, c)[0]),
                        fmt_int(qps(cells[2])),
                        fmt_int(qps(cells[3])),
                        " / ".join(fmt_us(num(r, "p50_us")) for r in cells),
                        " / ".join(fmt_us(num(r, "p99_us")) for r in cells),
                        " / ".join(fmt_1(cpu_us_per_call(r, "server")) for r in cells),
                        " / ".join(fmt_mib(num(r, "server_peak_rss_kib")) for r in cells),
                        " / ".join(fmt_errors(r) for r in cells),
                        fmt_others(*cells),
                    ]
                )
            out.append(f"#### {fmt_size(payload)} payload (brpc / nprpc)\n")
            out.append(
                table(
                    ["C", "brpc QPS", "default QPS", "default / brpc", "inline QPS",
                     "brpc client → default QPS", "p50 µs", "p99 µs", "server µs CPU / call",
                     "server peak RSS MiB", "errors", "others' CPU %"],
                    "rrrrrrrrrrrr",
                    rows,
                )
            )
            out.append("")
    rounds = [r for r in run.rounds if has_brpc(r)]
    if rounds:
        points = sorted({(k[1], k[2]) for r in rounds for k in r.rpc if k[0] == "brpc"})
        rows = []
        for payload, c in points:
            def med(pair_key, fn):
                return median([v for v in (fn(r.rpc.get((pair_key, payload, c))) for r in rounds)
                               if v is not None])
            ratios = [v for v in (brpc_ratio(r, payload, c)[0] for r in rounds) if v is not None]
            cpu = lambda r: cpu_us_per_call(r, "server") if valid(r) else None
            rss = lambda r: num(r, "server_peak_rss_kib")
            rows.append(
                [
                    fmt_size(payload),
                    f"{c:,}",
                    fmt_int(med("brpc", qps)),
                    fmt_int(med("nprpc_default", qps)),
                    fmt_ratio(median(ratios)),
                    fmt_int(med("nprpc", qps)),
                    fmt_int(med("brpc_to_nprpc", qps)),
                    " / ".join(fmt_1(med(k, cpu)) for k, _ in BRPC_PAIRS),
                    " / ".join(fmt_mib(med(k, rss)) for k, _ in BRPC_PAIRS),
                    f"{len(ratios)} of {len(rounds)}",
                ]
            )
        out.append(f"#### Median of {len(rounds)} interleaved rounds\n")
        out.append(
            table(
                ["payload", "C", "brpc QPS", "default QPS", "default / brpc", "inline QPS",
                 "brpc client → default QPS", "server µs CPU / call", "server peak RSS MiB",
                 "rounds with a ratio"],
                "lrrrrrrrrr",
                rows,
            )
        )
        out.append("")
        out.append("The ratio is the median of the rounds' ratios, not the ratio of the medians.")
    return "\n".join(out).rstrip()


def section_conn_types(run):
    rows = []
    for t in CONN_TYPES:
        for (tt, payload, c), r in sorted(run.conn.items()):
            if tt != t:
                continue
            rows.append(
                [
                    t,
                    fmt_size(payload),
                    f"{c:,}",
                    fmt_int(num(r, "qps")),
                    fmt_us(num(r, "p50_us")),
                    fmt_us(num(r, "p99_us")),
                    fmt_us(num(r, "p999_us")),
                    fmt_1(cpu_us_per_call(r, "server")),
                    fmt_1(cpu_us_per_call(r, "client")),
                    fmt_mib(num(r, "server_peak_rss_kib")),
                    fmt_errors(r),
                    fmt_others(r),
                ]
            )
    if not rows:
        return "(not measured in this run)"
    return table(
        ["connection type", "payload", "C", "QPS", "p50 µs", "p99 µs", "p99.9 µs",
         "server µs CPU / call", "client µs CPU / call", "server peak RSS MiB", "errors",
         "others' CPU %"],
        "lrrrrrrrrrrr",
        rows,
    )


def section_compression(run):
    rows = []
    points = sorted({(p, c) for (_, p, c) in run.compress})
    for payload, c in points:
        base = run.compress.get(("none", payload, c))
        base_cpu = None
        if valid(base):
            base_cpu = (cpu_us_per_call(base, "server") or 0) + (cpu_us_per_call(base, "client") or 0)
        for algo in COMPRESS_ALGOS:
            r = run.compress.get((algo, payload, c))
            if r is None:
                continue
            srv, cli = cpu_us_per_call(r, "server"), cpu_us_per_call(r, "client")
            extra = None
            if valid(r) and base_cpu is not None and srv is not None and cli is not None:
                extra = srv + cli - base_cpu
            rows.append(
                [
                    fmt_size(payload),
                    f"{c:,}",
                    algo,
                    fmt_int(num(r, "qps")),
                    fmt_ratio(ratio(num(r, "qps"), num(base, "qps")) if valid(r) and valid(base) else None),
                    fmt_us(num(r, "p50_us")),
                    fmt_us(num(r, "p99_us")),
                    fmt_1(srv),
                    fmt_1(cli),
                    "–" if extra is None else f"{extra:+,.1f}",
                    fmt_errors(r),
                    fmt_others(r),
                ]
            )
    if not rows:
        return "(not measured in this run)"
    return table(
        ["payload", "C", "request compression", "QPS", "QPS vs none", "p50 µs", "p99 µs",
         "server µs CPU / call", "client µs CPU / call", "extra µs CPU / call (both)", "errors",
         "others' CPU %"],
        "rrlrrrrrrrrr",
        rows,
    )


# --- Charts -----------------------------------------------------------------
# Each chart function returns (file name, gnuplot script without a terminal).


def gp_value(v):
    return "NaN" if v is None else f"{v:.6g}"


def gp_block(name, rows):
    """An inline gnuplot data block; rows are lists of values."""
    lines = [f"${name} << EOD"]
    for r in rows:
        lines.append(" ".join(r[0:1] + [gp_value(v) for v in r[1:]]))
    lines.append("EOD")
    return "\n".join(lines)


def gp_headroom(rows):
    """A y range from 0 with room above the highest value for the key."""
    values = [v for r in rows for v in r[1:] if v is not None]
    return f"set yrange [0:{max(values) * 1.3:.4g}]" if values else "set yrange [0:*]"


def gp_conc_axis(conns):
    tics = ", ".join(f'"{c}" {c}' for c in conns)
    lo, hi = min(conns), max(conns)
    return "\n".join(
        [
            "set logscale x 2",
            f"set xrange [{lo / 1.6:g}:{hi * 1.6:g}]",
            f"set xtics ({tics})",
            'set xlabel "concurrency (connections / outstanding calls)"',
        ]
    )


def gp_common():
    return "\n".join(
        [
            "set grid lc rgb '#dddddd'",
            "set key top left box opaque width 2",
            "set style line 1 lc rgb '#1f77b4' lw 2 pt 7",
            "set style line 2 lc rgb '#ff7f0e' lw 2 pt 5",
            "set style line 3 lc rgb '#2ca02c' lw 2 pt 9",
            "set style line 4 lc rgb '#d62728' lw 2 pt 11",
        ]
    )


def chart_echo_qps(run):
    payloads, conns = run.echo_payloads(), run.echo_conns()
    if not payloads:
        return None
    parts = [gp_common(), gp_conc_axis(conns), 'set ylabel "QPS"', "set format y '%.0s%c'"]
    parts.append(f'set multiplot layout 1,{len(payloads)} title "Transport echo: QPS vs concurrency (loopback, 2 shared cores)"')
    for p in payloads:
        rows = [[str(c)] + [num(run.echo.get((s, p, c)), "qps") for s in ECHO_SERVERS] for c in conns]
        parts.append(gp_block(f"q{p}", rows))
        parts.append(f'set title "{fmt_size(p)} payload"')
        plots = [f"$q{p} using 1:{i + 2} with linespoints ls {i + 1} title '{s}'" for i, s in enumerate(ECHO_SERVERS)]
        parts.append(gp_headroom(rows))
        parts.append("plot " + ", \\\n     ".join(plots))
    parts.append("unset multiplot")
    return "bench_echo_qps.png", "\n".join(parts), (400 * len(payloads) + 100, 450)


def latency_grid(title, rows_spec, cols_spec, lookup, conns):
    """A grid of latency panels: rows_spec x cols_spec, each with p50/p99/p99.9
    vs concurrency, log-log, one y range per grid row."""
    parts = [gp_common(), gp_conc_axis(conns), "set logscale y 10", 'set ylabel "latency µs"']
    parts.append(f'set multiplot layout {len(rows_spec)},{len(cols_spec)} title "{title}"')
    for rkey, rname in rows_spec:
        values = [num(lookup(rkey, ckey, c), k) for ckey, _ in cols_spec for c in conns for k, _ in PERCENTILES]
        values = [v for v in values if v]
        if values:
            parts.append(f"set yrange [{min(values) / 1.5:.4g}:{max(values) * 1.5:.4g}]")
        for ckey, cname in cols_spec:
            block = f"l_{rkey}_{ckey}".replace("-", "_")
            rows = [[str(c)] + [num(lookup(rkey, ckey, c), k) for k, _ in PERCENTILES] for c in conns]
            parts.append(gp_block(block, rows))
            parts.append(f'set title "{cname}, {rname}"')
            plots = [f"${block} using 1:{i + 2} with linespoints ls {i + 1} title '{label}'" for i, (_, label) in enumerate(PERCENTILES)]
            parts.append("plot " + ", \\\n     ".join(plots))
    parts.append("unset multiplot")
    return "\n".join(parts)


def chart_echo_latency(run):
    payloads, conns = run.echo_payloads(), run.echo_conns()
    if not payloads:
        return None
    script = latency_grid(
        "Transport echo: latency percentiles vs concurrency",
        [(p, fmt_size(p)) for p in payloads],
        [(s, s) for s in ECHO_SERVERS],
        lambda p, s, c: run.echo.get((s, p, c)),
        conns,
    )
    return "bench_echo_latency.png", script, (1200, 330 * len(payloads) + 60)


def chart_rpc_qps(run):
    payloads, conns = run.rpc_payloads(), run.rpc_conns()
    if not payloads:
        return None
    parts = [gp_common(), gp_conc_axis(conns), 'set ylabel "QPS"', "set format y '%.0s%c'"]
    parts.append(f'set multiplot layout 1,{len(payloads)} title "nprpc vs gRPC C++: QPS vs concurrency (loopback, 2 shared cores)"')
    for p in payloads:
        rows = [[str(c), num(run.rpc.get(("nprpc", p, c)), "qps"), num(run.rpc.get(("grpc", p, c)), "qps")] for c in conns]
        parts.append(gp_block(f"r{p}", rows))
        parts.append(f'set title "{fmt_size(p)} payload"')
        parts.append(gp_headroom(rows))
        parts.append(f"plot $r{p} using 1:2 with linespoints ls 1 title 'nprpc', \\\n     $r{p} using 1:3 with linespoints ls 2 title 'gRPC C++'")
    parts.append("unset multiplot")
    return "bench_rpc_qps.png", "\n".join(parts), (400 * len(payloads) + 100, 450)


def chart_rpc_latency(run):
    payloads, conns = run.rpc_payloads(), run.rpc_conns()
    if not payloads:
        return None
    script = latency_grid(
        "nprpc vs gRPC C++: latency percentiles vs concurrency",
        [(p, fmt_size(p)) for p in payloads],
        [("nprpc", "nprpc"), ("grpc", "gRPC C++")],
        lambda p, side, c: run.rpc.get((side, p, c)),
        conns,
    )
    return "bench_rpc_latency.png", script, (1000, 330 * len(payloads) + 60)


def chart_rpc_ratio(run):
    payloads, conns = run.rpc_payloads(), run.rpc_conns()
    if not payloads:
        return None

    def r(key, p, c):
        n, g = run.rpc.get(("nprpc", p, c)), run.rpc.get(("grpc", p, c))
        return ratio(num(n, key), num(g, key)) if valid(n) and valid(g) else None

    parts = [
        gp_common(),
        "set style data histograms",
        "set style histogram clustered gap 1",
        "set style fill solid 0.85 border -1",
        "set boxwidth 0.9",
        "set xlabel 'concurrency'",
        "set key top right box opaque",
        f"set multiplot layout 1,2 title \"nprpc / gRPC C++ ratios, same run\"",
    ]
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    for key, name, title in (("qps", "qps", "QPS ratio (higher is better for nprpc)"), ("p50_us", "p50", "p50 latency ratio (lower is better for nprpc)")):
        rows = [[f"C={c}"] + [r(key, p, c) for p in payloads] for c in conns]
        values = [v for row in rows for v in row[1:] if v is not None]
        # Room above the tallest bar and the parity line for the key.
        parts.append(f"set yrange [0:{max(values + [1]) * 1.25:.3g}]")
        parts.append(gp_block(f"ratio_{name}", rows))
        parts.append(f'set title "{title}"')
        plots = []
        for i, p in enumerate(payloads):
            src = f"$ratio_{name}" if i == 0 else "''"
            xtic = ":xtic(1)" if i == 0 else ""
            plots.append(f"{src} using {i + 2}{xtic} lc rgb '{colours[i % len(colours)]}' title '{fmt_size(p)}'")
        plots.append("1 with lines lc rgb 'black' dt 2 lw 1.5 title 'parity'")
        parts.append("plot " + ", \\\n     ".join(plots))
    parts.append("unset multiplot")
    return "bench_rpc_ratio.png", "\n".join(parts), (1200, 450)


CHARTS = [
    ("echo_qps", chart_echo_qps, "Transport echo, QPS vs concurrency"),
    ("echo_latency", chart_echo_latency, "Transport echo, latency percentiles vs concurrency"),
    ("rpc_qps", chart_rpc_qps, "nprpc vs gRPC C++, QPS vs concurrency"),
    ("rpc_latency", chart_rpc_latency, "nprpc vs gRPC C++, latency percentiles vs concurrency"),
    ("rpc_ratio", chart_rpc_ratio, "nprpc / gRPC C++ QPS and p50 ratios"),
]


def build_charts(run):
    """name -> (file name, script, (width, height)) for the charts the run has data for."""
    charts = {}
    for name, fn, _ in CHARTS:
        made = fn(run)
        if made is not None:
            charts[name] = made
    return charts


def chart_markdown(name, charts, img_rel):
    if name not in charts:
        return "(no data for this chart in this run)"
    alt = next(a for n, _, a in CHARTS if n == name)
    return f"![{alt}]({img_rel}/{charts[name][0]})"


def gnuplot_terminal(gnuplot):
    """pngcairo when this gnuplot has it (anti-aliased), else png."""
    probe = subprocess.run([gnuplot, "-e", "set terminal pngcairo"], capture_output=True, text=True)
    return "pngcairo" if probe.returncode == 0 and not probe.stderr.strip() else "png"


def render_charts(charts, img_dir, gnuplot):
    os.makedirs(img_dir, exist_ok=True)
    terminal = gnuplot_terminal(gnuplot)
    font = "font 'sans,10'" if terminal == "pngcairo" else ""
    for file_name, script, (width, height) in charts.values():
        target = os.path.join(img_dir, file_name)
        full = f"set terminal {terminal} size {width},{height} {font}\nset output '{target}'\n{script}\n"
        with tempfile.NamedTemporaryFile("w", suffix=".gp", delete=False, encoding="utf-8") as f:
            f.write(full)
            path = f.name
        try:
            done = subprocess.run([gnuplot, path], capture_output=True, text=True)
        finally:
            os.unlink(path)
        if done.returncode != 0:
            raise SystemExit(f"report_gen: gnuplot failed on {file_name}:\n{done.stderr}")


# --- The page ---------------------------------------------------------------


def sections(run, charts, img_rel):
    s = {
        "header": section_header(run),
        "machine": section_machine(run),
        "commands": section_commands(run),
        "targets": section_targets(run),
        "target_rounds": section_target_rounds(run),
        "echo_results": section_echo(run),
        "echo_idle": section_echo_idle(run),
        "rpc_results": section_rpc(run),
        "brpc_results": section_brpc(run),
        "conn_types": section_conn_types(run),
        "compression": section_compression(run),
    }
    for name, _, _ in CHARTS:
        s[f"chart_{name}"] = chart_markdown(name, charts, img_rel)
    return s


def fill_template(template, values):
    """Replaces every {{name}}; an unknown name is an error, so a typo in the
    template cannot silently drop a section."""
    unknown = sorted(set(re.findall(r"\{\{([a-z_]+)\}\}", template)) - set(values))
    if unknown:
        raise SystemExit(f"report_gen: unknown template section(s): {', '.join(unknown)}")
    return re.sub(r"\{\{([a-z_]+)\}\}", lambda m: values[m.group(1)], template)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--template", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--img-dir", required=True)
    parser.add_argument("--gnuplot", choices=["auto", "off"], default="auto")
    args = parser.parse_args(argv)

    run = Run(args.run_dir)
    if not run.echo and not run.rpc:
        raise SystemExit(f"report_gen: no echo.jsonl or rpc.jsonl data in {args.run_dir}")
    charts = build_charts(run)
    img_rel = os.path.relpath(args.img_dir, os.path.dirname(os.path.abspath(args.out)) or ".")
    with open(args.template, encoding="utf-8") as f:
        template = f.read()
    page = fill_template(template, sections(run, charts, img_rel))
    if args.gnuplot == "auto":
        gnuplot = shutil.which("gnuplot")
        if gnuplot:
            render_charts(charts, args.img_dir, gnuplot)
        else:
            print("report_gen: gnuplot not found, charts not rendered", file=sys.stderr)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
