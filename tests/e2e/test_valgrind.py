#!/usr/bin/python3
"""test_valgrind: one end-to-end scenario with every followupd run under valgrind.

check, a planning tick, a delivering tick through the real SMTP server (one
message deferred by a 451 first), preview, status and queue show: any
memory error or definite leak makes valgrind exit 99 and the test fail.
"""

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

R = "2026-11-02 10:00:00"


def body(t, env):
    fx.require_binary(t)
    if shutil.which("valgrind") is None:
        print("ok 1 - valgrind scenario # SKIP valgrind is not installed")
        return
    if os.environ.get("SANITIZE") == "1":
        print("ok 1 - valgrind scenario # SKIP ASan build (SANITIZE=1): "
              "valgrind cannot run it")
        return
    fx.VALGRIND = True
    env.make_source(
        customers=[dict(id=1, email="ana@example.com", name="Ana García",
                        first_name="Ana"),
                   dict(id=2, email="later@example.org", name="Bo <b>&",
                        first_name=None),
                   dict(id=3, email=None, name="Nobody")],
        agents=[dict(id=1, email="sam@acme.example", name="Sam Okafor")],
        tickets=[dict(id=i, customer_id=i, agent_id=1,
                      subject="Issue \r\nBcc: x@evil.example %d" % i,
                      status="resolved", created_at=R, resolved_at=R,
                      updated_at=R) for i in (1, 2, 3)],
        purchases=[dict(id=1, customer_id=1, item="Kettle", amount_cents=1250,
                        currency="EUR", purchased_at="2026-10-01 10:00:00")])
    srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail"),
                        faults=["rcpt:later@:451"], lifetime=600).start()
    try:
        env.write_config(srv.port)
        steps = [("check",), ("once", "--now", "2026-11-02 12:00:00"),
                 ("once", "--now", "2026-11-05 10:00:00"),
                 ("preview", "checkin", "1", "--now", "2026-11-05 10:00:00"),
                 ("status",), ("queue", "show", "2"), ("queue", "list")]
        for args in steps:
            r = env.run(*args, vg=True, timeout=60)
            t.eq(r.rc, 0, "valgrind clean: followupd %s" % " ".join(args),
                 r.describe(40))
        t.eq(len(srv.messages()), 1, "one message delivered, one deferred")
        j = env.job(2)
        t.eq(j and j["state"], "deferred", "the 451 job is deferred")
    finally:
        srv.stop()


if __name__ == "__main__":
    env = fx.Env("valgrind")
    try:
        fx.main(lambda t: body(t, env))
    finally:
        env.cleanup()
