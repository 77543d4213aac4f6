#!/usr/bin/python3
"""run: followupd's benchmark (`make bench`). Prints one table, writes bench/README.md's.

Needs Debian's postfix package for /usr/sbin/smtp-sink and smtp-source (used
as standalone programs on 127.0.0.1; the Postfix daemon is never started),
and the binary and render driver built by `make bench` in BUILD (default
build-bench). Synthetic databases are built once into bench/data/.

Every figure is the median of RUNS runs (default 3; env RUNS); every ratio
is taken between figures of this same run. Nothing but 127.0.0.1 is used.
"""

import atexit
import os
import platform
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(HERE, "data")
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build-bench"))
BIN = os.path.join(BUILD, "followupd")
RENDER = os.path.join(BUILD, "render_bench")
RUNS = int(os.environ.get("RUNS", "3"))
SINK = "/usr/sbin/smtp-sink"
SOURCE = "/usr/sbin/smtp-source"
END = "2026-11-02 00:00:00"          # the synthetic desks' last resolution
DUE = "2026-11-05 01:00:00"          # every d20k check-in is due (delay 3d)
N_DELIVER = 20000
N_BEFORE = 200                       # without TCP_NODELAY: ~23 msgs/s


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def gendb(name, *args):
    path = os.path.join(DATA, name)
    if not os.path.exists(path):
        log("building %s (once; cached in bench/data/)" % name)
        subprocess.run([sys.executable, os.path.join(HERE, "gendb.py"), path,
                        *args], check=True)
    return path


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Sink:
    """smtp-sink on a free 127.0.0.1 port (it drops root for nobody)."""

    def __enter__(self):
        self.port = free_port()
        argv = [SINK, "-u", "nobody", "127.0.0.1:%d" % self.port, "1000"]
        if os.getuid() != 0:
            argv[1:3] = []
        self.p = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                break
            except OSError:
                time.sleep(0.05)
        return self

    def __exit__(self, *a):
        self.p.terminate()
        self.p.wait()


def config(d, db, port, conns=4, lookback=None, templates=None):
    path = os.path.join(d, "scheduler.conf")
    with open(path, "w") as f:
        f.write("[source]\ndatabase = %s\n[queue]\ndir = %s\n"
                "[templates]\ndir = %s\n[smtp]\nhost = 127.0.0.1\n"
                "port = %d\nfrom = Acme Support <support@acme.example>\n"
                "reply_to = help@acme.example\nconnections = %d\n"
                "[rule checkin]\nkind = after_resolution\ndelay = 3d\n"
                "template = checkin\n%s" % (
                    db, os.path.join(d, "queue"),
                    templates or os.path.join(HERE, "templates"), port,
                    conns, "lookback = %s\n" % lookback if lookback else ""))
    return path


def once(conf, now, env=None, timed=None):
    argv = [BIN, "-c", conf, "once", "--now", now]
    if timed:
        argv = ["/usr/bin/time", "-f", "%e %M", "-o", timed] + argv
    t = time.monotonic()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, env=env, text=True)
    dt = time.monotonic() - t
    if r.returncode != 0:
        sys.exit("bench: followupd failed (%d):\n%s" % (r.returncode,
                                                        r.stderr[-2000:]))
    return dt, r.stderr


def states(d):
    db = sqlite3.connect(os.path.join(d, "queue", "state.db"))
    try:
        return dict(db.execute("SELECT state, count(*) FROM jobs GROUP BY 1"))
    finally:
        db.close()


KEEP = []                            # work directories removed at the end


def workdir():
    # Under bench/data (the disk the spool would be on), not a tmpfs /tmp.
    return tempfile.mkdtemp(prefix="run-", dir=DATA)


def done_with(d):
    """Remove a run's directory later, not between runs: right after many
    files are unlinked, ext4 allocates new inodes slowly for up to a few
    minutes (find_inode_bit skips recently deleted ones), which would make
    each run pay for the previous run's clean-up."""
    KEEP.append(d)


def cleanup():
    for d in KEEP:
        shutil.rmtree(d, ignore_errors=True)
    KEEP.clear()


def deliver_e2e(db, conns, n, env=None):
    """Seconds from plan to the last 250 for n due check-ins."""
    d = workdir()
    try:
        with Sink() as sink:
            conf = config(d, db, sink.port, conns)
            dt, err = once(conf, DUE, env)
        st = states(d)
        if st.get("sent") != n:
            sys.exit("bench: expected %d sent, got %r\n%s" % (n, st,
                                                              err[-2000:]))
        return dt
    finally:
        done_with(d)


def ceiling(conns, n, size):
    with Sink() as sink:
        t = time.monotonic()
        subprocess.run([SOURCE, "-d", "-s", str(conns), "-m", str(n), "-l",
                        str(size), "-f", "support@acme.example", "-t",
                        "customer@example.com", "127.0.0.1:%d" % sink.port],
                       check=True, stdout=subprocess.DEVNULL)
        return time.monotonic() - t


def baseline(db, n):
    with Sink() as sink:
        r = subprocess.run([sys.executable, os.path.join(HERE, "baseline.py"),
                            db, "127.0.0.1", str(sink.port), DUE],
                           check=True, capture_output=True, text=True)
    sent, secs = r.stdout.split()
    if int(sent) != n:
        sys.exit("bench: baseline sent %s of %d" % (sent, n))
    return float(secs)


def plan_time(db):
    """One tick that only plans one day of resolutions (~2,000 tickets)."""
    d = workdir()
    try:
        conf = config(d, db, free_port(), 1, lookback="1d")
        dt, err = once(conf, END)
        planned = int(re.search(r"planned (\d+)", err).group(1))
        return dt, planned
    finally:
        done_with(d)


def c_string(src, name):
    m = re.search(r"static const char %s\[\] =\s*(.*?);" % name, src, re.S)
    return "".join(bytes(s, "utf-8").decode("unicode_escape")
                   for s in re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1)))


def query_plans(db):
    src = open(os.path.join(ROOT, "src", "rules.c"), encoding="utf-8").read()
    q = c_string(src, "after_resolution_sql")
    recheck = 'SELECT * FROM (\n%s\n) WHERE "key" = :key' % q
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    out = {}
    for name, sql in (("plan", q), ("re-check", recheck)):
        rows = con.execute("EXPLAIN QUERY PLAN " + sql,
                           dict(since="x", until="y", key=1, now="z"))
        out[name] = [r[3] for r in rows]
    con.close()
    return out


def rss_5m(db):
    """Peak RSS of one full tick on the 5M desk: ten days planned, seven
    days' check-ins (about 14,000) rendered and delivered."""
    d = workdir()
    try:
        with Sink() as sink:
            conf = config(d, db, sink.port, 4)
            timed = os.path.join(d, "time.txt")
            once(conf, END, timed=timed)
        secs, kb = open(timed).read().split()[-2:]
        return int(kb), states(d)
    finally:
        done_with(d)


def render_rate(db):
    """render_bench prints "templates+mime N SECONDS BYTES" (the rows
    fetched before the clock starts) and "with-queries N SECONDS BYTES"
    (the re-check and history queries included, as render does at due
    time). Returns (templates+mime rate, with-queries rate, bytes each)."""
    d = workdir()
    try:
        conf = config(d, db, free_port(), 1)
        r = subprocess.run([RENDER, conf, "checkin", "1", "20000", DUE],
                           check=True, capture_output=True, text=True)
        got = {}
        for line in r.stdout.splitlines():
            what, n, secs, nbytes = line.split()
            got[what] = (int(n) / float(secs), int(nbytes) // int(n))
        return got["templates+mime"][0], got["with-queries"][0], \
            got["templates+mime"][1]
    finally:
        done_with(d)


def med(f, runs=RUNS):
    vals = [f() for _ in range(runs)]
    return statistics.median(vals), vals


def machine():
    cpu = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    fs = subprocess.run(["df", "-T", DATA], capture_output=True,
                        text=True).stdout.splitlines()[-1].split()[1]
    return "%d cores (nproc), %s, %.0f GiB RAM, Linux %s, %s spool on %s" % (
        os.cpu_count(), cpu, mem, platform.release(),
        platform.freedesktop_os_release().get("PRETTY_NAME", "?"), fs)


def main():
    atexit.register(cleanup)
    for p in (BIN, RENDER, SINK, SOURCE):
        if not os.access(p, os.X_OK):
            sys.exit("bench: %s missing (make deps; make bench)" % p)
    os.makedirs(DATA, exist_ok=True)
    d20k = gendb("d20k.db", "--tickets", str(N_DELIVER), "--customers",
                 str(N_DELIVER), "--per-day", str(N_DELIVER),
                 "--open-every", "0", "--end", END)
    dsmall = gendb("d200.db", "--tickets", str(N_BEFORE), "--customers",
                   str(N_BEFORE), "--per-day", str(N_BEFORE),
                   "--open-every", "0", "--end", END)
    t50k = gendb("t50k.db", "--tickets", "50000", "--customers", "10000",
                 "--end", END)
    t5m = gendb("t5m.db", "--tickets", "5000000", "--customers", "1000000",
                "--end", END)
    rows = []

    log("rendering (one core, templates parsed once)")
    got = [render_rate(d20k) for _ in range(RUNS)]
    rate = statistics.median(g[0] for g in got)
    rate_q = statistics.median(g[1] for g in got)
    size = got[0][2]
    rows.append(("Rendering: check-ins per second, one core (templates + "
                 "MIME; %d B each)" % size, "%.0f/s" % rate,
                 ">= 50000/s", rate >= 50000))
    rows.append(("  with the re-check and history queries of each job",
                 "%.0f/s" % rate_q, "", None))
    cleanup()

    # Each run: ours, then the ceiling (and the baseline) right after it,
    # so that a ratio compares figures taken under the same load; the
    # ratio reported is the median of the runs' ratios.
    res = {}
    base_runs = []
    for conns in (1, 4):
        runs = []
        for i in range(RUNS):
            log("run %d/%d: end to end, %d connection(s), %d messages; "
                "smtp-source ceiling%s" % (i + 1, RUNS, conns, N_DELIVER,
                                            "; baseline.py" if conns == 4
                                            else ""))
            e2e = N_DELIVER / deliver_e2e(d20k, conns, N_DELIVER)
            ceil = N_DELIVER / ceiling(conns, N_DELIVER, size)
            base = N_DELIVER / baseline(d20k, N_DELIVER) if conns == 4 \
                else None
            runs.append((e2e, ceil, base))
            cleanup()
        res[conns] = runs
    for conns, want in ((1, 0.5), (4, 0.3)):
        runs = res[conns]
        r = statistics.median(x[0] for x in runs)
        c = statistics.median(x[1] for x in runs)
        ratio = statistics.median(x[0] / x[1] for x in runs)
        rows.append(("Delivery end to end, %d connection%s (plan → 250, "
                     "durable spool)" % (conns, "s" if conns > 1 else ""),
                     "%.0f/s" % r, "", None))
        rows.append(("  smtp-source ceiling, %d session%s, same size" % (
            conns, "s" if conns > 1 else ""), "%.0f/s" % c, "", None))
        rows.append(("  ratio to the ceiling", "%.2f×" % ratio,
                     ">= %.1f×" % want, ratio >= want))
    base = statistics.median(x[2] for x in res[4])
    vs = statistics.median(x[0] / x[2] for x in res[4])
    rows.append(("Baseline: bench/baseline.py (python3 smtplib, 1 conn, "
                 "no spool)", "%.0f/s" % base, "", None))
    rows.append(("  4 connections vs baseline", "%.1f×" % vs, ">= 5×",
                 vs >= 5))

    log("TCP_NODELAY before/after, 1 connection, %d messages" % N_BEFORE)
    off = dict(os.environ, FOLLOWUPD_BENCH_NO_NODELAY="1")
    before = N_BEFORE / med(lambda: deliver_e2e(dsmall, 1, N_BEFORE, off))[0]
    after = N_BEFORE / med(lambda: deliver_e2e(dsmall, 1, N_BEFORE))[0]
    rows.append(("TCP_NODELAY off (libesmtp as is), 1 conn, %d msgs" %
                 N_BEFORE, "%.0f/s" % before, "", None))
    rows.append(("TCP_NODELAY on (our connect()), 1 conn, %d msgs" %
                 N_BEFORE, "%.0f/s" % after, "", None))
    cleanup()

    log("planning one day of resolutions, 50k and 5M tickets")
    p50 = med(lambda: plan_time(t50k), RUNS + 2)[0]
    p5m = med(lambda: plan_time(t5m), RUNS + 2)[0]
    rows.append(("Planning one day (%d tickets), 50,000-ticket desk" % p50[1],
                 "%.3f s" % p50[0], "", None))
    rows.append(("Planning one day (%d tickets), 5,000,000-ticket desk" %
                 p5m[1], "%.3f s" % p5m[0], "", None))
    rows.append(("  5M / 50k", "%.2f×" % (p5m[0] / p50[0]), "<= 1.5×",
                 p5m[0] / p50[0] <= 1.5))
    plans = query_plans(t5m)
    full = [l for v in plans.values() for l in v
            if l.startswith("SCAN") and "USING" not in l]
    rows.append(("  full scans in the plan and re-check queries",
                 str(len(full)), "0", not full))
    cleanup()

    log("peak RSS of followupd once on the 5M desk")
    kb, st = rss_5m(t5m)
    rows.append(("Peak RSS, followupd once, 5M desk (%s)" % ", ".join(
        "%d %s" % (v, k) for k, v in sorted(st.items())),
        "%.1f MB" % (kb / 1024), "<= 32 MB", kb / 1024 <= 32))
    cleanup()

    w = max(len(r[0]) for r in rows)
    lines = ["| %-*s | %10s | %9s | %s |" % (w, "measure", "value", "target",
                                               "met"),
             "|%s|%s|%s|%s|" % ("-" * (w + 2), "-" * 12, "-" * 11, "-----")]
    for name, val, target, ok in rows:
        lines.append("| %-*s | %10s | %9s | %s |" % (
            w, name, val, target, "" if ok is None else ("yes" if ok
                                                         else "**no**")))
    table = "\n".join(lines)
    plan_text = "\n".join("%s query:\n%s" % (k, "\n".join("    " + l for l in v))
                          for k, v in plans.items())
    print(table)
    print()
    print("EXPLAIN QUERY PLAN on the 5M desk:\n" + plan_text)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    readme = os.path.join(HERE, "README.md")
    text = open(readme, encoding="utf-8").read()
    block = ("<!-- bench:begin -->\nLatest run: %s, median of %d runs, on: "
             "%s.\n\n%s\n\nEXPLAIN QUERY PLAN (5,000,000 tickets):\n\n```\n%s\n"
             "```\n<!-- bench:end -->" % (stamp, RUNS, machine(), table,
                                          plan_text))
    text = re.sub(r"<!-- bench:begin -->.*<!-- bench:end -->", block, text,
                  flags=re.S)
    open(readme, "w", encoding="utf-8").write(text)
    log("table written to bench/README.md")


if __name__ == "__main__":
    main()
