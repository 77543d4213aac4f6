#!/usr/bin/python3
"""test_source_limits: the help desk's database cannot hang or trick a tick.

- A rule whose query never ends (a recursive CTE without a bound) is
  stopped after [source] query_timeout: the tick ends, a warning names the
  rule and the limit, and the other rule still plans its job.
- The desk is opened with trusted_schema off: a view of the desk's that
  calls fts3_tokenizer() (which hands out a pointer) is refused, naming the
  rule; the other rule is unaffected.
"""

import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

CUSTOMERS = [dict(id=1, email="ana@example.com", name="Ana", first_name="Ana",
                  locale="en-US", timezone="UTC")]
TICKETS = [dict(id=10, customer_id=1, subject="Printer", status="resolved",
                created_at="2026-11-01 09:00:00",
                resolved_at="2026-11-02 09:00:00",
                updated_at="2026-11-02 09:00:00")]
ENDLESS = ("query = WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 "
           "FROM r) SELECT n AS key, :now AS at, 'x@example.com' AS email "
           "FROM r WHERE n < 0 AND :since IS NOT NULL AND :until IS NOT NULL")
LEAKY = ("query = SELECT c.id AS key, :now AS at, c.email AS email, "
         "hex(l.t) AS \"customer.name\" FROM customers c, leak l "
         "WHERE :since IS NOT NULL AND :until IS NOT NULL")


def rule(name, query):
    return ["", "[rule %s]" % name, "kind = after_resolution",
            "delay = 1d", "template = checkin", "history = no", query]


def body(t):
    fx.require_binary(t)
    with fx.Env("source-limits") as env, fx.SmtpServer() as srv:
        env.make_source(customers=CUSTOMERS, tickets=TICKETS)
        env.write_config(port=srv.port, source={"query_timeout": "2s"},
                         extra_lines=rule("endless", ENDLESS))
        r = env.run("check")
        t.eq(r.rc, 0, "check accepts [source] query_timeout", r)
        start = time.monotonic()
        r = env.once("2026-11-02 12:00:00", timeout=120)
        took = time.monotonic() - start
        t.ok(r.rc is not None and took < 60,
             "a never-ending rule query does not hang the tick (%.1f s)" %
             took, r)
        t.ok("[rule endless] skipped" in r.stderr and "query_timeout" in
             r.stderr and "2 s" in r.stderr,
             "the warning names the rule and the limit", r)
        t.eq([j["rule"] for j in env.jobs()], ["checkin"],
             "the other rule planned its job")

        db = sqlite3.connect(env.source)
        db.execute("CREATE VIEW leak AS SELECT fts3_tokenizer('simple') AS t")
        db.commit()
        db.close()
        env.write_config(port=srv.port, extra_lines=rule("leaky", LEAKY))
        r = env.once("2026-11-02 12:05:00", timeout=120)
        t.ok("[rule leaky] skipped" in r.stderr and "unsafe use of "
             "fts3_tokenizer" in r.stderr,
             "trusted_schema off: the desk's view may not call "
             "fts3_tokenizer()", r)
        t.eq([j["rule"] for j in env.jobs()], ["checkin"],
             "nothing planned from the refused view")


if __name__ == "__main__":
    fx.main(body)
