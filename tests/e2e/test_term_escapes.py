#!/usr/bin/python3
"""test_term_escapes: a terminal escape stored in the help desk's database
(ESC[2J in a name, an email, a ticket subject; the C1 CSI U+009B) never
reaches the operator's terminal as itself: not in `why`, `queue list`,
`queue show`, `status`, `preview`, nor in a log line (tests/unit/test_log.c
for syslog's); it is shown as cat -v does ("^[[2J", "M-^[").
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

ESC = "\x1b[2J\x1b]0;owned\x07"
CSI = "\u009b2J"
CUSTOMERS = [
    dict(id=1, email="ana@example.com", name="Ana" + ESC, first_name="Ana",
         locale="en-US", timezone="UTC"),
    dict(id=2, email="bob" + ESC + CSI + "@example.com", name="Bob" + CSI,
         first_name="Bob", locale="en-US", timezone="UTC"),
]
TICKETS = [
    dict(id=10, customer_id=1, subject="Printer" + ESC, status="resolved",
         created_at="2026-11-01 09:00:00", resolved_at="2026-11-02 09:00:00",
         updated_at="2026-11-02 09:00:00"),
    dict(id=11, customer_id=2, subject="Refund" + CSI, status="resolved",
         created_at="2026-11-01 09:00:00", resolved_at="2026-11-02 09:00:00",
         updated_at="2026-11-02 09:00:00"),
]


def clean(t, r, what):
    text = r.stdout + r.stderr
    t.ok("\x1b" not in text and "\x07" not in text and "\u009b" not in text,
         "%s: no control character reaches the terminal" % what,
         repr(text[-1500:]))
    return text


def body(t):
    fx.require_binary(t)
    with fx.Env("term") as env, fx.SmtpServer() as srv:
        env.make_source(customers=CUSTOMERS, tickets=TICKETS)
        env.write_config(port=srv.port)
        r = env.once("2026-11-02 12:00:00")
        clean(t, r, "once (planning)")
        r = env.once("2026-11-05 12:00:00")
        clean(t, r, "once (delivery, with its log lines)")
        r = env.run("why", "1")
        clean(t, r, "why 1")
        r = env.run("why", "2")
        text = clean(t, r, "why 2")
        t.ok("bob^[[2J^[]0;owned^GM-^[2J@example.com" in text,
             "why shows ESC as ^[, BEL as ^G, U+009B as M-^[", text)
        r = env.run("queue", "list")
        clean(t, r, "queue list")
        for j in env.jobs():
            clean(t, env.run("queue", "show", j["id"]), "queue show %d" %
                  j["id"])
        clean(t, env.run("status"), "status")
        clean(t, env.run("preview", "checkin", "10", "--text"),
              "preview --text")
        r = env.run("preview", "checkin", "10")
        clean(t, r, "preview (the raw message)")
        t.ok("\r\n" in r.stdout, "preview: the message's CRLF line ends "
             "pass untouched", repr(r.stdout[:300]))


if __name__ == "__main__":
    fx.main(body)
