#!/usr/bin/python3
"""test_ops_progress: a long `once` shows a progress line (count, rate, ETA) on a
terminal (a pty), and nothing extra when stderr is not a terminal."""

import os
import pty
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

N = 260         # above progress.c's PROGRESS_MIN (200)
R = "2026-11-02 10:00:00"


def source(n):
    customers = [dict(id=i, email="c%d@example.com" % i, name="C %d" % i,
                      first_name="C%d" % i) for i in range(1, n + 1)]
    tickets = [dict(id=i, customer_id=i, subject="Ticket %d" % i,
                    status="resolved", created_at="2026-11-01 09:00:00",
                    resolved_at=R, updated_at=R) for i in range(1, n + 1)]
    return dict(customers=customers, tickets=tickets)


def run_pty(argv, timeout=120):
    """Run argv with stdout and stderr on a pty; return (rc, bytes seen)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave,
                         stderr=slave, close_fds=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                data = os.read(master, 65536)
            except OSError:     # EIO: the child closed the pty
                break
            if not data:
                break
            out += data
        elif p.poll() is not None:
            break
    os.close(master)
    try:
        rc = p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    return rc, out


def body(t, env):
    fx.require_binary(t)
    env.make_source(**source(N))
    srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail"),
                        lifetime=300).start()
    try:
        # Plan everything (nothing due yet), then one tick does it all.
        env.write_config(srv.port)
        r = env.once("2026-11-02 12:00:00")
        t.eq(r.rc, 0, "planning tick", r)
        t.eq(len(env.jobs()), N, "%d jobs planned" % N)
        t.ok("ETA" not in r.stderr and "\r" not in r.stderr,
             "a small tick shows no progress", r)
        rc, out = run_pty([fx.BIN, "-c", env.conf, "once", "--now",
                           "2026-11-05 10:00:00"])
        text = out.decode("utf-8", "replace")
        t.eq(rc, 0, "once on a pty exits 0", text[-2000:])
        t.ok("rendering " in text and "delivering " in text,
             "progress lines for rendering and delivering", text[-2000:])
        t.ok(("/%d (" % N) in text and "/s, ETA " in text,
             "the line shows count/total, rate and ETA", text[-2000:])
        t.ok("\r" in text and "\x1b[K" in text,
             "the line is redrawn in place (CR, erase to end of line)")
        t.ok(("sent %d" % N) in text, "the tick's summary follows",
             text[-500:])
        t.eq(len(srv.messages()), N, "all %d messages delivered" % N)

        # The same work without a terminal: the log only.
        env2 = fx.Env("progress2")
        try:
            env2.make_source(**source(N))
            env2.write_config(srv.port)
            env2.once("2026-11-02 12:00:00")
            r = env2.once("2026-11-05 10:00:00")
            t.eq(r.rc, 0, "once without a terminal exits 0", r)
            t.ok("ETA" not in r.stderr and "\r" not in r.stderr and
                 "\x1b" not in r.stderr, "no progress line when stderr is "
                 "not a terminal", r.stderr[-500:])
            t.ok(all(ln.startswith("followupd: ") for ln in
                     r.stderr.splitlines()),
                 "every stderr line is a log line")
        finally:
            env2.cleanup()
    finally:
        srv.stop()


if __name__ == "__main__":
    env = fx.Env("progress")
    try:
        fx.main(lambda t: body(t, env))
    finally:
        env.cleanup()
