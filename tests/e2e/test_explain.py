#!/usr/bin/python3
"""test_explain: `followupd check` reads the desk's query plans.

On the reference schema with its indexes: no warning. Without the index on
tickets(customer_id), the history queries read the whole tickets table for
every message: check warns, naming the query, the table and the CREATE
INDEX that fixes it (a warning: it still exits 0), and the daemon logs the
same warning once at start. A custom rule keyed by an unindexed column gets
a re-check warning of its own.
"""

import os
import signal
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

FIX = "CREATE INDEX tickets_customer_id ON tickets(customer_id);"
CUSTOM = ("SELECT t.subject AS key, t.resolved_at AS at, c.email AS "
          "email, c.id AS \"customer.id\" FROM tickets t JOIN customers c ON "
          "c.id = t.customer_id WHERE t.resolved_at >= :since AND "
          "t.resolved_at < :until")


def body(t):
    fx.require_binary(t)
    with fx.Env("explain") as env:
        env.make_source()
        env.write_config(port=fx.closed_port(),
                         rule_birthday={"kind": "birthday"},
                         unsubscribe={"url": "https://u.example/unsub"},
                         queue={"tick": "1h"})
        r = env.run("check")
        t.ok(r.rc == 0 and "reads all of table" not in r.stderr,
             "reference schema with its indexes: no plan warning", r)

        db = sqlite3.connect(env.source)
        db.execute("DROP INDEX tickets_customer")
        db.commit()
        db.close()
        r = env.run("check")
        t.eq(r.rc, 0, "a missing index is a warning: check exits 0", r)
        lines = [x for x in r.stderr.splitlines() if "reads all of" in x]
        t.ok(any("history.* (per message): reads all of table tickets" in x
                 and FIX in x for x in lines),
             "check names the history query, the table and " + FIX, r)
        t.eq(len([x for x in lines if "history.*" in x]), 1,
             "one warning per query and table")

        # The daemon: the same warning once in its log at start.
        p = env.spawn("-d", "run")
        err = os.path.join(env.dir, "spawned.stderr")

        def log():
            with open(err, encoding="utf-8", errors="replace") as f:
                return f.read()
        try:
            ok = fx.wait_for(lambda: "tick " in log() or p.poll() is not None,
                             timeout=60)
            t.ok(ok and p.poll() is None, "the daemon runs", log())
            got = [x for x in log().splitlines() if FIX in x]
            t.eq(len(got), 1, "the daemon logs the warning once", log())
        finally:
            fx.kill(p, signal.SIGTERM)

        # A custom rule keyed by an unindexed column, on a desk without
        # the resolved_at index either.
        db = sqlite3.connect(env.source)
        db.execute("DROP INDEX tickets_resolved_at")
        db.commit()
        db.close()
        env.write_config(port=fx.closed_port(), rule_checkin={
            "query": CUSTOM, "history": "no"})
        r = env.run("check")
        t.ok("[rule checkin] re-check (per message): reads all of table "
             "tickets" in r.stderr and
             "CREATE INDEX tickets_subject ON tickets(subject);" in r.stderr,
             "a rule keyed by an unindexed column: its re-check is named, "
             "with the index on its key", r)
        t.ok("[rule checkin] planning query (each tick): reads all of table "
             "tickets" in r.stderr and "CREATE INDEX tickets_resolved_at ON "
             "tickets(resolved_at);" in r.stderr,
             "its planning query, with the index on its time column", r)


if __name__ == "__main__":
    fx.main(body)
