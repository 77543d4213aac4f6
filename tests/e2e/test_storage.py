#!/usr/bin/python3
"""test_storage: the disk fills, the help desk holds a lock, spool files rot.

- Disk full: the queue lives on a 2 MB tmpfs the test mounts (root only;
  skipped politely otherwise) and fills. The tick stops rendering, says so
  once (not once per message), exits EX_TEMPFAIL, loses nothing; when space
  returns, everything is sent exactly once and queue/tmp/ is empty.
- A locked source: a thread holds BEGIN EXCLUSIVE on the help desk's
  database for longer than busy_timeout. Planning, then rendering, are
  skipped with a warning and retried at the next tick; nothing is half-done
  (no job, no spool file, no state change for what was skipped).
- Rotten spool files: a queued message that is empty, garbage, truncated
  (half a multipart message) or not a file at all is moved to
  queue/corrupt/ with a log line, never deleted, never sent (not even half):
  the job is rendered again with the same Message-ID and sent whole.
"""

import os
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

R = "2026-11-02 10:00:00"
PLAN = "2026-11-02 12:00:00"
DUE = "2026-11-05 10:00:00"
EX_TEMPFAIL = 75


def setup(env, n, prefix="user"):
    env.make_source(
        customers=[dict(id=i, email="%s%d@example.com" % (prefix, i),
                        name="Customer %d" % i, first_name="C%d" % i)
                   for i in range(1, n + 1)],
        agents=[dict(id=1, email="sam@acme.example", name="Sam Okafor")],
        tickets=[dict(id=i, customer_id=i, agent_id=1,
                      subject="Ticket %d" % i, status="resolved",
                      created_at="2026-11-01 09:00:00", resolved_at=R,
                      updated_at=R) for i in range(1, n + 1)])


def per_rcpt(srv):
    out = {}
    for m in srv.messages():
        for r in m.get("rcpt_tos", []):
            out.setdefault(r, []).append(m)
    return out


# ---------------------------------------------------------------- disk full

def disk_full(t):
    if os.geteuid() != 0:
        t.ok(True, "disk full # SKIP needs root to mount a tmpfs")
        return
    env = fx.Env("storage-full")
    mounted = False
    srv = None
    try:
        os.makedirs(env.queue)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700",
                            "tmpfs", env.queue], capture_output=True)
        if p.returncode != 0:
            t.ok(True, "disk full # SKIP cannot mount a tmpfs: %s" %
                 p.stderr.decode(errors="replace").strip())
            return
        mounted = True
        n = 30
        setup(env, n)
        srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail")).start()
        env.write_config(port=srv.port)
        r = env.once(PLAN)
        t.eq(r.rc, 0, "disk full: planning on the tmpfs exits 0", r)
        # Fill what is left (state.db and its WAL stay as they are).
        filler = os.path.join(env.queue, "filler")

        def fill(leave):
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                while True:
                    os.write(fd, b"\0" * 4096)
            except OSError:
                pass
            os.close(fd)
            if leave:
                os.truncate(filler, max(os.path.getsize(filler) - leave, 0))

        # a. Nothing left at all: not even state.db can be written.
        fill(0)
        r = env.once(DUE)
        t.eq(r.rc, EX_TEMPFAIL, "disk full: the tick exits EX_TEMPFAIL (75)",
             r)
        t.ok(0 < len(r.stderr.splitlines()) <= 3, "disk full: a short "
             "complaint, not one per message", r)
        os.unlink(filler)
        jobs = env.jobs()
        t.eq(sorted({j["state"] for j in jobs}), ["planned"],
             "disk full: every job still planned")
        t.eq(len(srv.messages()), 0, "disk full: nothing sent")
        # b. 40 KB left: room for the database, not for 30 messages.
        fill(40 * 1024)
        r = env.once(DUE)
        t.eq(r.rc, EX_TEMPFAIL, "nearly full: the tick exits EX_TEMPFAIL "
             "(75)", r)
        full_lines = [ln for ln in r.stderr.splitlines()
                      if "space" in ln.lower() or "full" in ln.lower()]
        t.ok(1 <= len(full_lines) <= 2, "nearly full: said once, not once "
             "per message (%d lines)" % len(full_lines), r)
        os.unlink(filler)
        jobs = env.jobs()
        t.ok(all(j["state"] in ("planned", "queued", "sent") for j in jobs),
             "nearly full: every job planned, queued or sent",
             sorted({j["state"] for j in jobs}))
        sent = [j for j in jobs if j["state"] == "sent"]
        t.note("nearly full: %d of %d rendered and sent before the disk "
               "filled" % (len(sent), n))
        t.eq(env.spool_files("tmp"), [], "nearly full: nothing left in tmp/")
        t.eq(len(srv.messages()), len(sent), "nearly full: only what was "
             "queued was sent")
        # Space returns.
        r = env.once(fx.sqltime(fx.unix(DUE) + 60))
        t.eq(r.rc, 0, "space back: the tick exits 0", r)
        r = env.once(fx.sqltime(fx.unix(DUE) + 120))
        jobs = env.jobs()
        t.eq(sorted({j["state"] for j in jobs}), ["sent"],
             "space back: every job sent")
        got = per_rcpt(srv)
        t.eq(len(got), n, "space back: all %d recipients got theirs" % n)
        t.ok(all(len(v) == 1 for v in got.values()), "space back: each "
             "exactly once")
        t.eq(env.spool_files("tmp"), [], "space back: tmp/ is empty")
        for m in srv.messages():
            if fx.defects(fx.parse(m["eml"])):
                t.ok(False, "space back: a message has parser defects")
                break
    finally:
        if srv is not None:
            srv.stop()
        if mounted:
            subprocess.run(["umount", "-l", env.queue], capture_output=True)
        env.cleanup()


# ---------------------------------------------------------------- lock

class DeskLock(threading.Thread):
    """The help desk holds an exclusive lock until release() (not for a
    fixed time: on a busy machine the tick may start late)."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.locked = threading.Event()
        self.done = threading.Event()

    def run(self):
        db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        db.execute("BEGIN EXCLUSIVE")
        db.execute("UPDATE agents SET name = name WHERE id = 1")
        self.locked.set()
        self.done.wait(600)
        db.execute("ROLLBACK")
        db.close()

    def release(self):
        self.done.set()
        self.join()


def locked_source(t):
    env = fx.Env("storage-lock")
    srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail")).start()
    try:
        setup(env, 5)
        env.write_config(port=srv.port,
                         source={"database": "helpdesk.db",
                                 "busy_timeout": "1s"})
        # 1. Planning while the desk holds the lock.
        lock = DeskLock(env.source)
        lock.start()
        lock.locked.wait(60)
        start = time.monotonic()
        r = env.once(PLAN)
        took = time.monotonic() - start
        lock.release()
        t.eq(r.rc, EX_TEMPFAIL, "locked source: planning tick exits "
             "EX_TEMPFAIL (75)", r)
        # The lock is held until the tick ends: exiting at all proves it
        # gave up; the bound only catches a wait far beyond busy_timeout.
        t.ok(took < 30, "locked source: gives up after busy_timeout, not "
             "after the lock (%.1f s)" % took)
        t.ok("plan" in r.stderr and ("busy" in r.stderr.lower() or "locked"
                                    in r.stderr.lower()),
             "locked source: a warning names the plan step and the lock", r)
        t.eq(env.jobs(), [], "locked source: nothing planned, nothing half")
        # 2. The lock is gone: the next tick plans.
        r = env.once(PLAN)
        t.eq(r.rc, 0, "lock released: planning exits 0", r)
        t.eq(len(env.jobs()), 5, "lock released: 5 jobs planned")
        # 3. Rendering while the desk holds the lock.
        lock = DeskLock(env.source)
        lock.start()
        lock.locked.wait(60)
        r = env.once(DUE)
        lock.release()
        t.eq(r.rc, EX_TEMPFAIL, "locked at due time: the tick exits 75", r)
        t.ok("render" in r.stderr or "plan" in r.stderr, "locked at due "
             "time: a warning says which step was skipped", r)
        jobs = env.jobs()
        t.eq(sorted({j["state"] for j in jobs}), ["planned"],
             "locked at due time: every job still planned")
        t.eq(len(srv.messages()), 0, "locked at due time: nothing sent")
        t.eq(env.spool_files("tmp"), [], "locked at due time: tmp/ empty")
        # 4. Released: everything goes, once.
        r = env.once(fx.sqltime(fx.unix(DUE) + 60))
        t.eq(r.rc, 0, "released at due time: the tick exits 0", r)
        t.eq(sorted({j["state"] for j in env.jobs()}), ["sent"],
             "released: every job sent")
        got = per_rcpt(srv)
        t.ok(len(got) == 5 and all(len(v) == 1 for v in got.values()),
             "released: 5 recipients, one message each")
        t.ok(env.source_unchanged(), "the source was never written")
    finally:
        srv.stop()
        env.cleanup()


# ---------------------------------------------------------------- rot

def rotten_spool(t):
    env = fx.Env("storage-rot")
    srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail"),
                        faults=["greeting:421"]).start()
    try:
        setup(env, 6)
        env.write_config(port=srv.port)
        env.once(PLAN)
        # Rendered and queued, but the relay is down: the files wait.
        r = env.once(DUE)
        jobs = {j["recipient"]: j for j in env.jobs()}
        t.eq(sorted({j["state"] for j in jobs.values()}), ["deferred"],
             "rot: 6 messages waiting in the spool")
        path = {a: os.path.join(env.queue, "new", j["spool_name"])
                for a, j in jobs.items()}
        mids = {a: j["message_id"] for a, j in jobs.items()}
        whole = open(path["user4@example.com"], "rb").read()
        # user1: empty; user2: garbage; user3: a symbolic link to a file
        # that looks like a message (never followed: it could point at
        # anything); user4: the first 60 % of the message (headers and
        # part of the body); user5: left alone.
        open(path["user1@example.com"], "wb").close()
        with open(path["user2@example.com"], "wb") as f:
            f.write(os.urandom(3000).replace(b"\r\n\r\n", b"xxxx"))
        bait = os.path.join(env.dir, "bait.eml")
        with open(bait, "wb") as f:
            f.write(b"From: x@example.com\r\nTo: user3@example.com\r\n"
                    b"Subject: bait\r\n\r\nSECRET-BAIT\r\n")
        os.unlink(path["user3@example.com"])
        os.symlink(bait, path["user3@example.com"])
        with open(path["user4@example.com"], "wb") as f:
            f.write(whole[:int(len(whole) * 0.6)])
        # user6: only the last line end is missing: it still parses, but
        # it is not the size it was written with.
        whole6 = open(path["user6@example.com"], "rb").read()
        with open(path["user6@example.com"], "wb") as f:
            f.write(whole6[:-2])
        srv.restart(faults=[])
        later = max(j["next_attempt_at"] for j in jobs.values())
        r = env.once(fx.sqltime(later))
        t.eq(r.rc, 0, "rot: the tick exits 0", r)
        corrupt = sorted(os.path.basename(p) for p in
                         env.spool_files("corrupt"))
        want = sorted(os.path.basename(path[a]) for a in (
            "user1@example.com", "user2@example.com", "user3@example.com",
            "user4@example.com", "user6@example.com"))
        t.eq(corrupt, want, "rot: the five bad files are in queue/corrupt/")
        t.ok(os.path.getsize(os.path.join(env.queue, "corrupt", os.path.
                                          basename(path["user4@example.com"])))
             == int(len(whole) * 0.6), "rot: kept as found (never deleted)")
        lines = [ln for ln in r.stderr.splitlines() if "corrupt" in ln or
                 "unusable" in ln or "truncated" in ln]
        t.ok(len(lines) >= 5, "rot: a log line for each (%d)" % len(lines),
             r)
        # Rendered again, then sent whole, with the same Message-ID.
        r = env.once(fx.sqltime(later + 60))
        got = per_rcpt(srv)
        for a in sorted(path):
            msgs = got.get(a, [])
            t.eq(len(msgs), 1, "rot: %s gets exactly one message" % a)
            if not msgs:
                continue
            m = fx.parse(msgs[0]["eml"])
            t.eq(str(m["Message-ID"]).strip("<>"), (mids[a] or "").strip(
                "<>"), "rot: %s: the same Message-ID" % a)
            t.eq(fx.defects(m), [], "rot: %s: whole (no parser defects)" % a)
            t.ok("Hi C" in fx.body(m, "plain"), "rot: %s: the body is "
                 "there" % a)
        t.ok(not any(b"SECRET-BAIT" in m["eml"] for m in srv.messages()),
             "rot: a symbolic link in the spool is never followed")
        t.eq(sorted({j["state"] for j in env.jobs()}), ["sent"],
             "rot: every job sent in the end")
    finally:
        srv.stop()
        env.cleanup()


# ---------------------------------------------------------------- recycle

def recycling(t):
    env = fx.Env("storage-recycle")
    srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail")).start()
    try:
        setup(env, 4)
        env.write_config(port=srv.port)
        env.once(PLAN)
        r = env.once(DUE)
        t.eq(r.rc, 0, "recycle: the tick exits 0", r)
        t.eq(len(srv.messages()), 4, "recycle: 4 messages sent")
        free = os.path.join(env.queue, "free")
        t.eq(env.spool_files("new"), [], "recycle: new/ is empty")
        t.eq(len(os.listdir(free)) if os.path.isdir(free) else 0, 4,
             "recycle: the 4 files wait in free/ for the next messages")
        for f in os.listdir(free):
            st = os.stat(os.path.join(free, f))
            t.eq(st.st_mode & 0o777, 0o600, "recycle: free/%s is 0600" % f)
        # recycle = no: spare files go at start-up, sent ones at once.
        env.write_config(port=srv.port, queue={"recycle": "no"})
        # Two tickets resolved again: two more check-ins.
        env.desk("UPDATE tickets SET resolved_at = ?, updated_at = ? "
                 "WHERE id <= 2", (DUE, DUE))
        env.once(fx.sqltime(fx.unix(DUE) + 60))
        r = env.once(fx.sqltime(fx.unix(DUE) + 7 * 86400))
        t.eq(r.rc, 0, "recycle = no: the tick exits 0", r)
        t.eq(len(srv.messages()), 6, "recycle = no: 2 more messages sent")
        t.eq(os.listdir(free) if os.path.isdir(free) else [], [],
             "recycle = no: nothing left in free/")
        t.eq(env.spool_files("new"), [], "recycle = no: new/ is empty")
    finally:
        srv.stop()
        env.cleanup()


def body(t):
    fx.require_binary(t)
    for row in (disk_full, locked_source, rotten_spool, recycling):
        try:
            row(t)
        except Exception:
            import traceback
            t.ok(False, "no unexpected exception", traceback.format_exc())


if __name__ == "__main__":
    fx.main(body)
