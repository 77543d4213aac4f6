#!/usr/bin/python3
"""crash test (`make crash-test`): SIGKILL at random and at every state transition.

2,000 check-ins fall due at once. followupd (`once`, the same instant each
time) is killed with SIGKILL

  - once at each state transition, through FOLLOWUPD_CRASHPOINT
    (util_crashpoint in the C code): `render` (a message built, not yet in
    the spool), `spool` (messages in queue/new/, jobs still planned),
    `sending` (jobs marked sending, nothing sent), `reply` (the relay's 250
    read, the outcome not yet recorded), `recorded` (outcome committed, the
    spool file not yet removed); a point the binary does not have is
    reported as "not reached" and skipped;
  - once inside the end-of-data window: the relay has the whole message
    and delays its reply; followupd is killed as soon as the message is
    stored (the relay keeps it: a duplicate is expected, same Message-ID);
  - at --kills (default 50) random instants (seeded: --seed) while it runs,

and restarted each time, then run without interruption until nothing is
left. The report: kills, delivered, duplicates, lost; then the checks:
every message delivered, none lost; a duplicate only for a job some kill
left `sending` (handed to the relay, its outcome not yet recorded: the
end-of-data window) and no more of them than such kills times the
parallel SMTP connections; each duplicate with one Message-ID; PRAGMA
integrity_check ok; nothing left in queue/tmp/ or queue/new/; the source
never written.
Output is TAP; the last line is the report. Exit 1 on any failure.
"""

import argparse
import collections
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
import fixture as fx  # noqa: E402

R = "2026-11-02 10:00:00"
DUE = "2026-11-05 10:00:00"
UNFINISHED = ("planned", "queued", "sending", "deferred")
POINTS = ("render", "spool", "sending", "reply", "recorded")


def count_received(maildir):
    try:
        return sum(1 for n in os.listdir(maildir) if n.endswith(".json") and
                   not n.startswith("."))
    except FileNotFoundError:
        return 0


class Runner:
    def __init__(self, env, maildir, log):
        self.env = env
        self.maildir = maildir
        self.log = log
        self.kills = collections.Counter()
        self.inflight = set()

    def start(self, crashpoint=None):
        env = dict(os.environ)
        env.pop("FOLLOWUPD_CRASHPOINT", None)
        if crashpoint:
            env["FOLLOWUPD_CRASHPOINT"] = crashpoint
        argv = [fx.BIN, "-c", self.env.conf, "once", "--now", DUE]
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=self.log,
                                env=env)

    def note_inflight(self):
        """After a kill: the jobs it left `sending` (handed to the relay,
        outcome not recorded). Only these may be delivered twice."""
        for j in self.env.jobs():
            if j["state"] == "sending":
                self.inflight.add(j["recipient"])

    def unfinished(self):
        return sum(1 for j in self.env.jobs() if j["state"] in UNFINISHED)


def build(env, n):
    db = sqlite3.connect(env.source)
    with open(fx.SEED, encoding="utf-8") as f:
        db.executescript(f.read())
    for table in ("purchases", "tickets", "agents", "customers"):
        db.execute("DELETE FROM " + table)
    db.execute("INSERT INTO agents (id, email, name) VALUES "
               "(1, 'sam@acme.example', 'Sam Okafor')")
    db.executemany(
        "INSERT INTO customers (id, email, name, first_name) "
        "VALUES (?, ?, ?, ?)",
        [(i, "user%05d@example.com" % i, "User %05d" % i, "User")
         for i in range(1, n + 1)])
    db.executemany(
        "INSERT INTO tickets (id, customer_id, agent_id, subject, status, "
        "created_at, resolved_at, updated_at) "
        "VALUES (?, ?, 1, ?, 'resolved', ?, ?, ?)",
        [(i, i, "Ticket number %d" % i, "2026-11-01 09:00:00", R, R)
         for i in range(1, n + 1)])
    db.commit()
    db.close()
    env._fingerprint = env.source_fingerprint()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--max-delay", type=float, default=0.8,
                    help="random kills fall in (0.02, MAX) s after a start")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    t = fx.Tap()
    fx.require_binary(t)
    env = fx.Env("crashtest")
    srv = None
    try:
        build(env, args.messages)
        maildir = os.path.join(env.dir, "mail")
        fault_file = os.path.join(env.dir, "faults")
        srv = fx.SmtpServer(maildir=maildir, fault_file=fault_file,
                            lifetime=3600).start()
        run(t, env, srv, maildir, fault_file, rng, args)
    except Exception:
        import traceback
        t.ok(False, "no unexpected exception", traceback.format_exc())
    finally:
        if srv is not None:
            srv.stop()
        env.cleanup()
    sys.exit(t.done())


def run(t, env, srv, maildir, fault_file, rng, args):
    n = args.messages
    env.write_config(port=srv.port, queue={"batch": 100})
    r = env.once("2026-11-02 12:00:00", timeout=300)
    t.eq(r.rc, 0, "planning tick exits 0", r)
    t.eq(len(env.jobs()), n, "%d jobs planned" % n)
    log = open(os.path.join(env.dir, "followupd.stderr"), "ab")
    run_ = Runner(env, maildir, log)
    started = time.monotonic()
    could_dup = 0       # kills that may leave an accepted message 'sending'
    not_reached = []

    # The relay takes 60 ms per message (4 connections: ~65 messages/s),
    # so the runs last long enough to be killed 50 times at random before
    # everything is out.
    slow = "data-delay:0.06\n"
    with open(fault_file, "w") as f:
        f.write(slow)

    # 1. Each state transition, in pipeline order so that each finds work
    # at its point; N picks a message or batch inside the run. A run still
    # alive after 5 s is killed anyway (a random kill); one that ends by
    # itself means the binary has no such point.
    def at_point(point):
        nonlocal could_dup
        nth = rng.randint(1, 40) if point == "render" else rng.randint(1, 2)
        p = run_.start("%s:%d" % (point, nth))
        try:
            rc = p.wait(5)
        except subprocess.TimeoutExpired:
            fx.kill(p)
            run_.note_inflight()
            run_.kills["random"] += 1
            could_dup += 1
            not_reached.append("%s (not within 5 s)" % point)
            return
        if rc == -signal.SIGKILL:
            run_.note_inflight()
            run_.kills["point " + point] += 1
            if point == "reply":
                could_dup += 1
        else:
            not_reached.append("%s (exit %s)" % (point, rc))

    at_point("render")
    at_point("spool")

    # 2. Inside the end-of-data window: the relay stores the message, then
    # waits before its 250; we kill followupd in between.
    with open(fault_file, "w") as f:
        f.write("data-delay:1.5\n")
    before = count_received(maildir)
    p = run_.start()
    stored = fx.wait_for(lambda: count_received(maildir) > before or
                         p.poll() is not None, timeout=120, step=0.005)
    alive = p.poll() is None
    fx.kill(p)
    run_.note_inflight()
    with open(fault_file, "w") as f:
        f.write(slow)
    if stored and alive:
        run_.kills["end-of-data window"] += 1
        could_dup += 1
    t.ok(stored and alive, "killed inside the end-of-data window")

    for point in POINTS[2:]:
        at_point(point)
    t.note("killed at the transitions: %s; not reached: %s" % (
        ", ".join(sorted(k for k in run_.kills if k.startswith("point"))),
        ", ".join(not_reached) or "none"))

    # 3. Random instants.
    for _ in range(args.kills):
        if run_.unfinished() == 0:
            break
        delay = rng.uniform(0.02, args.max_delay)
        p = run_.start()
        try:
            p.wait(delay)
        except subprocess.TimeoutExpired:
            pass
        if p.poll() is None:
            fx.kill(p)
            run_.note_inflight()
            run_.kills["random"] += 1
            # A random kill may land in the end-of-data window too.
            could_dup += 1
    t.ok(run_.kills["random"] >= args.kills, "%d random kills (wanted %d)" % (
        run_.kills["random"], args.kills))
    os.unlink(fault_file)
    # 4. Then to the end, uninterrupted.
    restarts = 0
    while run_.unfinished() and restarts < 20:
        restarts += 1
        p = run_.start()
        try:
            p.wait(600)
        except subprocess.TimeoutExpired:
            fx.kill(p)
    log.close()
    elapsed = time.monotonic() - started

    jobs = env.jobs()
    states = collections.Counter(j["state"] for j in jobs)
    t.eq(dict(states), {"sent": n}, "all %d jobs sent in the end" % n)
    time.sleep(0.3)
    per = collections.defaultdict(list)
    for m in srv.messages():
        msg = fx.parse(m["eml"])
        for rcpt in m.get("rcpt_tos", []):
            per[rcpt].append(str(msg["Message-ID"]))
    want = {"user%05d@example.com" % i for i in range(1, n + 1)}
    lost = sorted(want - set(per))
    delivered = len(set(per) & want)
    dups = {r: ids for r, ids in per.items() if len(ids) > 1}
    extra = sum(len(ids) - 1 for ids in dups.values())
    kills = sum(run_.kills.values())
    conns = 4
    t.eq(lost, [], "none lost")
    t.eq(sorted(set(per) - want), [], "nothing delivered to anyone else")
    t.ok(all(len(set(ids)) == 1 for ids in dups.values()),
         "each duplicate carries the same Message-ID",
         "duplicates: %r" % dict(list(dups.items())[:5]))
    t.ok(extra <= could_dup * conns, "duplicates (%d) only from kills that "
         "could leave an accepted message 'sending' (%d such kills, up to "
         "%d connections each)" % (extra, could_dup, conns))
    t.ok(set(dups) <= run_.inflight, "duplicates only for jobs a kill left "
         "'sending' (handed to the relay, outcome not yet recorded: the "
         "end-of-data window)", "duplicated but never in flight: %r" %
         sorted(set(dups) - run_.inflight)[:10])
    firsts = [ids[0] for ids in per.values()]
    t.eq(len(set(firsts)), len(firsts), "Message-IDs unique across jobs")
    db = sqlite3.connect(env.state)
    ic = db.execute("PRAGMA integrity_check").fetchall()
    db.close()
    t.eq(ic, [("ok",)], "PRAGMA integrity_check: ok")
    stray = env.spool_files("tmp")
    t.eq(stray, [], "no stray files in queue/tmp/")
    t.eq(env.spool_files("new"), [], "nothing left in queue/new/")
    t.eq(env.spool_files("corrupt"), [], "nothing in queue/corrupt/")
    t.ok(env.source_unchanged(), "the source database was never written")
    t.note("kills by kind: %s" % dict(run_.kills))
    t.note("%d restarts to finish, %.0f s in all, seed %d" % (
        restarts, elapsed, args.seed))
    print("# crash-test: kills %d, delivered %d, duplicates %d, lost %d" % (
        kills, delivered, extra, len(lost)))


if __name__ == "__main__":
    main()
