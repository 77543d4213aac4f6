#!/usr/bin/python3
"""test_crash: SIGKILL while delivering, restart, nothing lost.

200 check-ins fall due at once. The capture server answers each DATA after
a short delay so delivery takes a few seconds; followupd is killed with
SIGKILL once ~50 have arrived, then `once` is run again until nothing is
left to do. Every message must be delivered; a duplicate is allowed only
for a job that was in flight ('sending') at the kill, and must carry the
same Message-ID as the first copy.
"""

import collections
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

N = 200
KILL_AT = 50
R = "2026-11-02 10:00:00"
DUE = "2026-11-05 10:00:00"
UNFINISHED = ("planned", "queued", "sending", "deferred")


def count_received(maildir):
    try:
        return sum(1 for n in os.listdir(maildir) if n.endswith(".json") and
                   not n.startswith("."))
    except FileNotFoundError:
        return 0


def body(t, env):
    fx.require_binary(t)
    env.make_source(
        customers=[dict(id=i, email="user%03d@example.com" % i,
                        name="User %03d" % i, first_name="User")
                   for i in range(1, N + 1)],
        agents=[dict(id=1, email="sam@acme.example", name="Sam Okafor")],
        tickets=[dict(id=i, customer_id=i, agent_id=1,
                      subject="Ticket number %d" % i, status="resolved",
                      created_at="2026-11-01 09:00:00", resolved_at=R,
                      updated_at=R) for i in range(1, N + 1)])
    maildir = os.path.join(env.dir, "mail")
    srv = fx.SmtpServer(maildir=maildir, faults=["data-delay:0.02"],
                        lifetime=300).start()
    try:
        scenario(t, env, srv, maildir)
    finally:
        srv.stop()


def scenario(t, env, srv, maildir):
    env.write_config(port=srv.port, queue={"batch": 20})
    r = env.once("2026-11-02 12:00:00")
    t.eq(r.rc, 0, "planning tick exits 0", r)
    t.eq(len(env.jobs()), N, "%d jobs planned" % N)

    proc = env.spawn("once", "--now", DUE)
    got = fx.wait_for(lambda: count_received(maildir) >= KILL_AT or
                      proc.poll() is not None, timeout=120, step=0.01)
    alive = proc.poll() is None
    fx.kill(proc)
    at_kill = count_received(maildir)
    t.ok(got and alive and at_kill < N, "followupd killed with SIGKILL "
         "while delivering", "alive at kill: %s, received: %d, exit: %s" % (
             alive, at_kill, proc.returncode))
    time.sleep(0.3)   # let the server finish a transaction it had accepted
    after_kill = count_received(maildir)
    states = collections.Counter(j["state"] for j in env.jobs())
    inflight = {j["recipient"] for j in env.jobs() if j["state"] == "sending"}
    t.note("at the kill: %d received (%d a moment later); job states %s" % (
        at_kill, after_kill, dict(states)))
    t.ok(states["sent"] + states["sending"] + states["queued"] +
         states["planned"] + states["deferred"] == N,
         "after the kill every job is still accounted for",
         "states: %r" % dict(states))

    rounds = 0
    for rounds in range(1, 6):
        r = env.once(fx.sqltime(fx.unix(DUE) + 600 * rounds), timeout=120)
        t.eq(r.rc, 0, "restart %d: once exits 0" % rounds, r)
        if not any(j["state"] in UNFINISHED for j in env.jobs()):
            break
    states = collections.Counter(j["state"] for j in env.jobs())
    t.eq(dict(states), {"sent": N}, "after %d restart(s) all %d jobs are "
         "sent" % (rounds, N))

    srv.settled()
    msgs = srv.messages()
    per = collections.defaultdict(list)
    for m in msgs:
        msg = fx.parse(m["eml"])
        for rcpt in m.get("rcpt_tos", []):
            per[rcpt].append(str(msg["Message-ID"]))
    want = {"user%03d@example.com" % i for i in range(1, N + 1)}
    missing = sorted(want - set(per))
    t.eq(missing, [], "every message delivered, none lost")
    t.eq(sorted(set(per) - want), [], "nothing delivered to anyone else")
    dups = {r: ids for r, ids in per.items() if len(ids) > 1}
    t.ok(set(dups) <= inflight, "duplicates only for jobs in flight at "
         "the kill", "duplicated: %r; in flight: %r" % (sorted(dups),
                                                       sorted(inflight)))
    t.ok(all(len(set(ids)) == 1 for ids in dups.values()), "a duplicate "
         "carries the same Message-ID", "duplicates: %r" % dups)
    firsts = [ids[0] for ids in per.values()]
    t.eq(len(set(firsts)), len(firsts), "Message-IDs unique across jobs")
    recovered = [j for j in env.jobs() if j["recipient"] in inflight]
    logged = all(any("sending" in ((e["event"] or "") + (e["detail"] or ""))
                     or "recover" in (e["event"] or "") or "interrupt" in
                     ((e["event"] or "") + (e["detail"] or ""))
                     for e in env.events(j["id"])) for j in recovered)
    t.ok(logged, "each job found 'sending' at restart has the event "
         "logged", "events of one: %r" % (
             env.events(recovered[0]["id"]) if recovered else None))
    print("# crash: %d jobs, %d received before the kill, %d in flight, "
          "%d messages in all, %d duplicated, %d lost, %d restart(s)" % (
              N, at_kill, len(inflight), len(msgs), len(dups), len(missing),
              rounds))
    t.ok(env.source_unchanged(), "the source database was never written")


if __name__ == "__main__":
    env = fx.Env("crash")
    try:
        fx.main(lambda t: body(t, env))
    finally:
        env.cleanup()
