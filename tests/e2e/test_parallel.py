#!/usr/bin/python3
"""test_parallel: several SMTP connections at once, each message exactly once.

240 check-ins fall due together; with connections = 4 and batch = 20 they go
out over several sessions in parallel (the capture server answers each DATA
after a short delay, so sessions overlap). Every job must end `sent`, every
recipient get exactly one message, every Message-ID be unique, and the
sessions must come from more than one connection. Then `rate`: 30 messages
at rate = 20 per second cannot take less than 1.45 s, whatever the number
of connections. And a refused connection defers what was in flight, once,
and opens no further session in that tick.
"""

import collections
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

R = "2026-11-02 10:00:00"
DUE = "2026-11-05 10:00:00"


def desk(env, n):
    env.make_source(
        customers=[dict(id=i, email="user%03d@example.com" % i,
                        name="User %03d" % i, first_name="User")
                   for i in range(1, n + 1)],
        agents=[dict(id=1, email="sam@acme.example", name="Sam Okafor")],
        tickets=[dict(id=i, customer_id=i, agent_id=1,
                      subject="Ticket number %d" % i, status="resolved",
                      created_at="2026-11-01 09:00:00", resolved_at=R,
                      updated_at=R) for i in range(1, n + 1)])


def exactly_once(t, env, srv, n, what):
    states = collections.Counter(j["state"] for j in env.jobs())
    t.eq(dict(states), {"sent": n}, "%s: all %d jobs sent" % (what, n))
    msgs = srv.wait_messages(n, timeout=60)
    per = collections.Counter()
    ids = []
    for m in msgs:
        ids.append(str(fx.parse(m["eml"])["Message-ID"]))
        for rcpt in m.get("rcpt_tos", []):
            per[rcpt] += 1
    want = {"user%03d@example.com" % i for i in range(1, n + 1)}
    t.eq(set(per), want, "%s: every recipient got mail" % what)
    t.eq(sorted(r for r, c in per.items() if c != 1), [],
         "%s: nobody got a message twice" % what)
    t.eq(len(set(ids)), len(ids), "%s: Message-IDs unique" % what)
    return msgs


def parallel(t):
    n = 240
    with fx.Env("parallel") as env:
        desk(env, n)
        srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail"),
                            faults=["data-delay:0.01"], lifetime=300).start()
        try:
            env.write_config(port=srv.port, queue={"batch": 20},
                             smtp={"connections": 4})
            r = env.once(DUE, timeout=120)
            t.eq(r.rc, 0, "4 connections: once exits 0", r)
            msgs = exactly_once(t, env, srv, n, "4 connections")
            peers = {tuple(m.get("peer") or ()) for m in msgs}
            t.ok(len(peers) >= 4, "4 connections: sessions came from several "
                 "connections", "peers: %d" % len(peers))
            t.ok(env.source_unchanged(), "the source database was never "
                 "written")
        finally:
            srv.stop()


def rate(t):
    n = 30
    with fx.Env("rate") as env:
        desk(env, n)
        srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail"),
                            lifetime=300).start()
        try:
            env.write_config(port=srv.port, queue={"batch": 5},
                             smtp={"connections": 3, "rate": 20})
            start = time.monotonic()
            r = env.once(DUE, timeout=120)
            took = time.monotonic() - start
            t.eq(r.rc, 0, "rate 20/s: once exits 0", r)
            exactly_once(t, env, srv, n, "rate 20/s")
            t.ok(took >= (n - 1) / 20.0, "rate 20/s: %d messages took at "
                 "least %.2f s" % (n, (n - 1) / 20.0), "took %.2f s" % took)
        finally:
            srv.stop()


def refused(t):
    n = 50
    with fx.Env("refused") as env:
        desk(env, n)
        env.write_config(port=fx.closed_port(), queue={"batch": 5},
                         smtp={"connections": 4})
        r = env.once(DUE, timeout=120)
        t.eq(r.rc, 0, "relay down: once exits 0 (deferral is normal)", r)
        jobs = env.jobs()
        states = collections.Counter(j["state"] for j in jobs)
        t.ok(states["deferred"] > 0 and states["deferred"] +
             states["queued"] == n, "relay down: what was tried is deferred, "
             "the rest waits queued (no new session once one is refused)",
             "states: %r" % dict(states))
        t.ok(all(j["attempts"] <= 1 for j in jobs), "relay down: no job "
             "tried twice within the tick",
             "attempts: %r" % sorted({j["attempts"] for j in jobs}))


def body(t):
    fx.require_binary(t)
    parallel(t)
    rate(t)
    refused(t)


if __name__ == "__main__":
    fx.main(body)
