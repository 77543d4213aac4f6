#!/usr/bin/python3
"""test_suppress: which permanent failures suppress the address, and which do not.

A 550 5.1.1 to RCPT says the mailbox does not exist: failed, and the address
suppressed for every class. A 550 5.7.1 (relaying denied: policy, our side),
a 554 after DATA (the content) fail the message but leave the address alone.
A 5xx to MAIL FROM is about our sender: every message is deferred, none
failed, nobody suppressed.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

R = "2026-11-02 10:00:00"
PEOPLE = ["gone@example.com", "policy@example.com", "content@example.com",
          "fine@example.com"]


def body(t, env):
    fx.require_binary(t)
    env.make_source(
        customers=[dict(id=i + 1, email=a, name="P %d" % i, first_name="P")
                   for i, a in enumerate(PEOPLE)],
        tickets=[dict(id=i + 1, customer_id=i + 1, subject="T %d" % i,
                      status="resolved", resolved_at=R, updated_at=R)
                 for i in range(len(PEOPLE))])
    srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail"), faults=[
        "rcpt:gone@:550:5.1.1 no such user",
        "rcpt:policy@:550:5.7.1 relaying denied",
        "data:content@:554:5.6.0 content rejected"], lifetime=300).start()
    try:
        env.write_config(srv.port)
        env.once("2026-11-02 12:00:00")
        r = env.once("2026-11-05 10:00:00")
        t.eq(r.rc, 0, "delivering tick", r.describe())
        states = {j["recipient"]: (j["state"], j["reason"])
                  for j in env.jobs()}
        t.eq(states.get("gone@example.com"), ("failed", "rejected"),
             "550 5.1.1: failed")
        t.eq(states.get("policy@example.com"), ("failed", "rejected"),
             "550 5.7.1: failed")
        t.eq(states.get("content@example.com"), ("failed", "rejected"),
             "554 after DATA: failed")
        t.eq(states.get("fine@example.com"), ("sent", None), "others sent")
        supp = sorted(s["address"] for s in env.suppressions())
        t.eq(supp, ["gone@example.com"],
             "only the mailbox that does not exist is suppressed")
    finally:
        srv.stop()

    # A relay that refuses our sender: defer everything, suppress nobody.
    env2 = fx.Env("suppress-mail")
    try:
        env2.make_source(
            customers=[dict(id=1, email="a@example.com", name="A")],
            tickets=[dict(id=1, customer_id=1, subject="x", status="resolved",
                          resolved_at=R, updated_at=R)])
        srv = fx.SmtpServer(maildir=os.path.join(env2.dir, "mail"), faults=[
            "mail:*:553:5.7.1 sender address rejected"], lifetime=300).start()
        try:
            env2.write_config(srv.port)
            env2.once("2026-11-02 12:00:00")
            r = env2.once("2026-11-05 10:00:00")
            j = env2.job(1)
            t.eq(j and j["state"], "deferred",
                 "a 5xx to MAIL FROM defers the message")
            t.ok(j and "refused our sender" in (j["last_reply"] or ""),
                 "… and says the sender was refused", repr(j))
            t.eq(env2.suppressions(), [], "… and suppresses nobody")
            t.ok("refused our sender" in r.stderr, "the log says so",
                 r.describe())
        finally:
            srv.stop()
    finally:
        env2.cleanup()


if __name__ == "__main__":
    env = fx.Env("suppress")
    try:
        fx.main(lambda t: body(t, env))
    finally:
        env.cleanup()
