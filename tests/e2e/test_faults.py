#!/usr/bin/python3
"""test_faults: delivery faults injected by the test relay, one case per row.

Each row starts a relay with a fault (tests/smtp_server.py), lets one or
more check-ins fall due, runs one tick and checks the job states and what
the relay received: 421 at the greeting, 451/452 on RCPT, 450/554 after
DATA, 550 on RCPT, a refused connection, a relay that stalls past the
timeout, a connection dropped at the DATA command (not sent: retry) and
after the final dot without a reply (unknown outcome: retried with the
same Message-ID by default, held with unknown_outcome = hold), STARTTLS
required against a relay without it, an untrusted certificate, and the
queue lifetime. Deferred jobs are then delivered once the relay recovers,
with the backoff growing and jittered.
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

R = "2026-11-02 10:00:00"
DUE = "2026-11-05 10:00:00"
DUE_T = fx.unix(DUE)
MIN_BACKOFF = 300


def people(n, prefix="user"):
    return ["%s%d@example.com" % (prefix, i) for i in range(1, n + 1)]


def setup(env, addrs):
    env.make_source(
        customers=[dict(id=i, email=a, name="Customer %d" % i,
                        first_name="C%d" % i)
                   for i, a in enumerate(addrs, 1)],
        agents=[dict(id=1, email="sam@acme.example", name="Sam Okafor")],
        tickets=[dict(id=i, customer_id=i, agent_id=1,
                      subject="Ticket %d" % i, status="resolved",
                      created_at="2026-11-01 09:00:00", resolved_at=R,
                      updated_at=R) for i in range(1, len(addrs) + 1)])


def states(env):
    return {j["recipient"] or j["subject"]: j for j in env.jobs()}


def sessions_verbs(srv):
    return [s.get("verbs", []) for s in srv.sessions()]


class Case:
    """One relay + one environment; `tick(now)` runs once at now."""

    def __init__(self, t, name, addrs, faults=(), smtp=None, queue=None,
                 tls=False, fault_file=False):
        self.t = t
        self.env = fx.Env("faults-" + name)
        setup(self.env, addrs)
        self.fault_file = (os.path.join(self.env.dir, "faults")
                           if fault_file else None)
        if self.fault_file:
            # Faults the test changes later live in the file only.
            self.set_faults(faults)
            faults = ()
        self.srv = fx.SmtpServer(maildir=os.path.join(self.env.dir, "mail"),
                                 faults=list(faults), tls=tls,
                                 fault_file=self.fault_file,
                                 lifetime=300).start()
        s = {"timeout": "2s"}
        s.update(smtp or {})
        q = {"min_backoff": "%ds" % MIN_BACKOFF, "max_backoff": "1h"}
        q.update(queue or {})
        self.env.write_config(port=self.srv.port, smtp=s, queue=q)
        r = self.env.once("2026-11-02 12:00:00")
        t.eq(r.rc, 0, "%s: planning exits 0" % name, r)

    def tick(self, now=DUE, timeout=60):
        return self.env.once(now, timeout=timeout)

    def set_faults(self, lines):
        with open(self.fault_file, "w") as f:
            f.write("\n".join(lines) + "\n")

    def close(self):
        self.srv.stop()
        self.env.cleanup()


def check_state(t, case, addr, state, name, reason=None, code=None):
    j = states(case.env).get(addr) or {}
    t.eq(j.get("state"), state, "%s: %s is %s" % (name, addr, state),
         "job: %r" % j)
    if reason is not None:
        t.eq(j.get("reason"), reason, "%s: reason %s" % (name, reason))
    if code is not None:
        t.ok(str(code) in (j.get("last_reply") or ""), "%s: the reply %s is "
             "kept" % (name, code), "last_reply: %r" % j.get("last_reply"))
    return j


def received_by(srv, addr):
    return [m for m in srv.messages() if addr in m.get("rcpt_tos", [])]


# ---------------------------------------------------------------- rows

def reply_codes(t):
    """One relay, one recipient per fault; every code as RFC 5321 says."""
    addrs = ["rcpt451@example.com", "rcpt452@example.com",
             "data450@example.com", "data554@example.com",
             "rcpt550@example.com", "fine@example.com"]
    faults = ["rcpt:rcpt451:451", "rcpt:rcpt452:452", "data:data450:450",
              "data:data554:554", "rcpt:rcpt550:550"]
    c = Case(t, "codes", addrs, faults=faults, fault_file=True)
    try:
        r = c.tick()
        t.eq(r.rc, 0, "codes: the tick exits 0 (temporary failures are "
             "normal)", r)
        for a, st, reason, code in (
                ("rcpt451@example.com", "deferred", None, 451),
                ("rcpt452@example.com", "deferred", None, 452),
                ("data450@example.com", "deferred", None, 450),
                ("data554@example.com", "failed", "rejected", 554),
                ("rcpt550@example.com", "failed", "rejected", 550),
                ("fine@example.com", "sent", None, 250)):
            check_state(t, c, a, st, "codes", reason, code)
        sup = {s["address"].lower() for s in c.env.suppressions()}
        t.eq(sup, {"rcpt550@example.com"}, "codes: only the 550 address is "
             "suppressed (554 says nothing about the address)")
        t.eq([m["rcpt_tos"] for m in c.srv.messages()],
             [["fine@example.com"]], "codes: the relay kept only the "
             "accepted message")

        # Backoff: attempt 1 waits ~min_backoff (±10 %); jitter differs.
        d = [states(c.env)[a] for a in addrs[:3]]
        waits = [j["next_attempt_at"] - DUE_T for j in d]
        t.ok(all(0.9 * MIN_BACKOFF <= w <= 1.1 * MIN_BACKOFF for w in waits),
             "codes: first retry after min_backoff ±10 %", waits)
        # The relay recovers; the deferred jobs go at their next attempt,
        # those retried again wait about twice as long.
        c.set_faults(["rcpt:rcpt451:451"])
        now = max(j["next_attempt_at"] for j in d)
        r = c.tick(fx.sqltime(now))
        t.eq(r.rc, 0, "codes: second tick exits 0", r)
        for a in ("rcpt452@example.com", "data450@example.com"):
            check_state(t, c, a, "sent", "recovered")
            t.eq(len(received_by(c.srv, a)), 1, "recovered: %s received "
                 "once" % a)
        j = check_state(t, c, "rcpt451@example.com", "deferred", "still 451")
        w2 = j["next_attempt_at"] - now
        t.ok(1.8 * MIN_BACKOFF <= w2 <= 2.2 * MIN_BACKOFF, "backoff grows: "
             "attempt 2 waits ~2 × min_backoff", "waited %d s" % w2)
        t.eq(j["attempts"], 2, "still 451: two attempts counted")
        c.set_faults([])
        r = c.tick(fx.sqltime(j["next_attempt_at"]))
        check_state(t, c, "rcpt451@example.com", "sent", "451 recovered")
        # Jitter: many deferred jobs do not all come back the same second.
    finally:
        c.close()


def jitter(t):
    addrs = people(12, "j")
    c = Case(t, "jitter", addrs, faults=["rcpt:*:451"])
    try:
        c.tick()
        nxt = sorted(j["next_attempt_at"] for j in c.env.jobs())
        t.ok(len(set(nxt)) >= 4, "jitter: 12 deferred jobs retry at "
             "several different instants", nxt)
        t.ok(all(abs(n - DUE_T - MIN_BACKOFF) <= MIN_BACKOFF * 0.1 + 1
                 for n in nxt), "jitter: within ±10 %", nxt)
    finally:
        c.close()


def greeting_421(t):
    c = Case(t, "421", ["a@example.com", "b@example.com"],
             faults=["greeting:421"], fault_file=True)
    try:
        r = c.tick()
        t.eq(r.rc, 0, "421 at greeting: the tick exits 0", r)
        for a in ("a@example.com", "b@example.com"):
            check_state(t, c, a, "deferred", "421 at greeting", code=421)
        t.eq(len(c.srv.messages()), 0, "421 at greeting: nothing received")
    finally:
        c.close()


def refused(t):
    env = fx.Env("faults-refused")
    try:
        setup(env, ["a@example.com"])
        env.write_config(port=fx.closed_port(), smtp={"timeout": "2s"})
        env.once("2026-11-02 12:00:00")
        r = env.once(DUE)
        t.eq(r.rc, 0, "refused: the tick exits 0", r)
        j = env.jobs()[0]
        t.eq(j["state"], "deferred", "refused: deferred")
        t.ok("refused" in (j["last_reply"] or "").lower() or "connect" in
             (j["last_reply"] or "").lower(), "refused: the reason says so",
             j["last_reply"])
    finally:
        env.cleanup()


def stalls(t):
    for fault, what in (("greeting-stall", "no greeting"),
                        ("stall-data", "no reply after the final dot")):
        c = Case(t, fault, ["a@example.com"], faults=[fault])
        try:
            start = time.monotonic()
            r = c.tick(timeout=60)
            took = time.monotonic() - start
            t.eq(r.rc, 0, "%s: the tick exits 0" % what, r)
            t.ok(took < 15, "%s: gives up after the 2 s timeout (took "
                 "%.1f s)" % (what, took))
            j = check_state(t, c, "a@example.com", "deferred", what)
            t.ok("timeout" in (j.get("last_reply") or "").lower() or
                 "lost" in (j.get("last_reply") or "").lower(),
                 "%s: the reason names the timeout" % what,
                 j.get("last_reply"))
        finally:
            c.close()


def drop_at_data_command(t):
    c = Case(t, "data-cmd-drop", ["a@example.com"],
             faults=["data-cmd-drop"], fault_file=True)
    try:
        c.tick()
        j = check_state(t, c, "a@example.com", "deferred",
                        "dropped at DATA (nothing sent)")
        mid = j["message_id"]
        t.eq(len(c.srv.messages()), 0, "dropped at DATA: nothing received")
        os.unlink(c.fault_file) if os.path.exists(c.fault_file) else None
        c.srv.restart(faults=[])
        c.tick(fx.sqltime(j["next_attempt_at"]))
        check_state(t, c, "a@example.com", "sent", "dropped at DATA, retried")
        got = c.srv.messages()
        t.eq(len(got), 1, "dropped at DATA: delivered once on retry")
        if got:
            t.eq(str(fx.parse(got[0]["eml"])["Message-ID"]).strip("<>"),
                 (mid or "").strip("<>"), "dropped at DATA: same Message-ID")
    finally:
        c.close()


def unknown_outcome(t, policy):
    """The relay stores the message, then drops the connection before its
    250: followupd cannot know. retry: deferred, sent again with the same
    Message-ID (the recipient may get two copies, one id). hold: held for
    an operator; nothing is sent again by itself."""
    smtp = {} if policy is None else {"unknown_outcome": policy}
    name = "unknown outcome (%s)" % (policy or "default")
    c = Case(t, "unknown-%s" % policy, ["a@example.com", "b@example.com"],
             faults=["data-drop-stored:a@"], smtp=smtp)
    try:
        r = c.tick()
        t.eq(r.rc, 0, "%s: the tick exits 0" % name, r)
        first = received_by(c.srv, "a@example.com")
        t.eq(len(first), 1, "%s: the relay has the message" % name)
        ja = states(c.env)["a@example.com"]
        want = "held" if policy == "hold" else "deferred"
        t.eq(ja["state"], want, "%s: the job is %s" % (name, want),
             "job: %r" % ja)
        ev = [e["event"] for e in c.env.events(ja["id"])]
        t.ok("unknown-outcome" in ev, "%s: the event is recorded" % name, ev)
        st = c.env.run("status")
        t.ok(re.search(r"unknown outcome[^\n]*: 1, unknown_outcome = %s" % (
            policy or "retry"), st.stdout), "%s: status counts it (1) and "
             "names the policy" % name, st)
        c.srv.restart(faults=[])
        later = fx.sqltime(DUE_T + 7200)
        c.tick(later)
        all_a = received_by(c.srv, "a@example.com")
        mids = {str(fx.parse(m["eml"])["Message-ID"]) for m in all_a}
        if policy == "hold":
            t.eq(len(all_a), 1, "hold: not sent again by itself")
            t.eq(states(c.env)["a@example.com"]["state"], "held",
                 "hold: still held")
            # The operator decides: release, and it goes (same id).
            r = c.env.run("queue", "release", str(ja["id"]))
            t.eq(r.rc, 0, "hold: queue release exits 0", r)
            c.tick(fx.sqltime(DUE_T + 7300))
            all_a = received_by(c.srv, "a@example.com")
            mids = {str(fx.parse(m["eml"])["Message-ID"]) for m in all_a}
            t.ok(len(all_a) == 2 and len(mids) == 1, "hold: released, sent "
                 "again with the same Message-ID", mids)
            t.eq(states(c.env)["a@example.com"]["state"], "sent",
                 "hold: then sent")
        else:
            t.eq(len(all_a), 2, "retry: sent again once the relay is back")
            t.eq(len(mids), 1, "retry: both copies carry the same Message-ID",
                 mids)
            t.eq(states(c.env)["a@example.com"]["state"], "sent",
                 "retry: then sent")
    finally:
        c.close()


def starttls_required(t):
    c = Case(t, "starttls", ["a@example.com"],
             smtp={"starttls": "required"})
    try:
        r = c.tick()
        t.eq(r.rc, 0, "STARTTLS required, not offered: the tick exits 0", r)
        j = check_state(t, c, "a@example.com", "deferred",
                        "STARTTLS required, not offered")
        t.ok("starttls" in (j.get("last_reply") or "").lower(),
             "STARTTLS required: a clear error", j.get("last_reply"))
        verbs = sessions_verbs(c.srv)
        t.ok(all("MAIL" not in v and "DATA" not in v for v in verbs),
             "STARTTLS required: no MAIL or DATA in clear", verbs)
        t.eq(len(c.srv.messages()), 0, "STARTTLS required: nothing received")
    finally:
        c.close()


def untrusted_cert(t):
    c = Case(t, "selfsigned", ["a@example.com"], tls=True,
             smtp={"starttls": "required"})
    try:
        c.tick()
        j = check_state(t, c, "a@example.com", "deferred",
                        "self-signed certificate, no ca_file")
        t.ok("certificate" in (j.get("last_reply") or "").lower() or
             "tls" in (j.get("last_reply") or "").lower(),
             "self-signed: the reason names the certificate",
             j.get("last_reply"))
        verbs = sessions_verbs(c.srv)
        t.ok(all("MAIL" not in v for v in verbs), "self-signed: no MAIL sent",
             verbs)
        # With its CA configured, the same relay is trusted.
        c.env.write_config(port=c.srv.port, smtp={
            "starttls": "required", "timeout": "2s",
            "ca_file": c.srv.cert}, queue={"min_backoff": "300s"})
        c.tick(fx.sqltime(j["next_attempt_at"]))
        check_state(t, c, "a@example.com", "sent", "self-signed with ca_file")
        got = c.srv.messages()
        t.ok(len(got) == 1 and got[0].get("tls") is True,
             "with ca_file: delivered over TLS", got)
    finally:
        c.close()


def lifetime(t):
    c = Case(t, "lifetime", ["a@example.com"], faults=["rcpt:*:451"],
             queue={"queue_lifetime": "1h"})
    try:
        c.tick()
        now = DUE_T
        for _ in range(12):
            j = states(c.env)["a@example.com"]
            if j["state"] != "deferred":
                break
            now = j["next_attempt_at"]
            c.tick(fx.sqltime(now))
        j = check_state(t, c, "a@example.com", "failed", "queue lifetime",
                        reason="expired", code=451)
        t.ok(now - DUE_T >= 3600, "expired only after queue_lifetime",
             "after %d s" % (now - DUE_T))
    finally:
        c.close()


def body(t):
    fx.require_binary(t)
    rows = [reply_codes, jitter, greeting_421, refused, stalls,
            drop_at_data_command, lambda t: unknown_outcome(t, None),
            lambda t: unknown_outcome(t, "retry"),
            lambda t: unknown_outcome(t, "hold"), starttls_required,
            untrusted_cert, lifetime]
    for row in rows:
        # One row's surprise must not hide the others' results.
        try:
            row(t)
        except Exception:
            import traceback
            t.ok(False, "no unexpected exception", traceback.format_exc())


if __name__ == "__main__":
    fx.main(body)
