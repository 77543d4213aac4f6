#!/usr/bin/python3
"""test_custom_query: a desk with another schema maps it with a rule's own SQL; history.* variables.

The rule's `query` (continued over several lines) returns the contract's
columns (key, at, email, name) and others named "case.title" or "person.nick",
which become template variables. A second rule over the reference schema
renders history.* (ticket count, recent purchases, years as a customer).
"""

import hashlib
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

R = "2026-11-02 10:00:00"


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def make_other_desk(path):
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE people (pid INTEGER PRIMARY KEY, mail TEXT, nick TEXT);
        CREATE TABLE cases (cid INTEGER PRIMARY KEY, owner INTEGER,
                            title TEXT, state TEXT, closed TEXT);
        INSERT INTO people VALUES (1, 'ana@example.com', 'Ani'),
                                  (2, 'bo@example.org', 'Bo');
        INSERT INTO cases VALUES
            (7, 1, 'Wi-Fi drops', 'done', '2026-11-02 10:00:00'),
            (8, 2, 'Late parcel', 'done', '2026-11-02T11:00:00Z'),
            (9, 2, 'Still open', 'open', NULL);
    """)
    db.commit()
    db.close()


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def body(t, env):
    fx.require_binary(t)
    other = os.path.join(env.dir, "otherdesk.db")
    make_other_desk(other)
    tdir = os.path.join(env.dir, "templates")
    write(os.path.join(tdir, "casedone", "subject.mustache"),
          "About case {{case.id}}: {{case.title}}")
    write(os.path.join(tdir, "casedone", "text.mustache"),
          "Hello {{person.nick}},\ncase {{case.id}} ({{case.title}}) is "
          "{{case.state}}.\n{{>sig}}")
    write(os.path.join(tdir, "partials", "sig.mustache"), "-- the desk\n")
    write(os.path.join(tdir, "hist", "subject.mustache"), "History")
    write(os.path.join(tdir, "hist", "text.mustache"),
          "tickets={{history.ticket_count}} purchases="
          "{{history.purchase_count}} years={{history.years}}\n"
          "{{#history.purchases}}- {{item}} {{amount}} {{currency}} "
          "{{purchased_at}}\n{{/history.purchases}}"
          "{{^history.has_purchases}}no purchases\n{{/history.has_purchases}}")
    srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail"),
                        lifetime=300).start()
    try:
        conf = env.write_config(
            srv.port, source={"database": "otherdesk.db"},
            templates={"dir": "templates"}, rule_checkin=None,
            extra_lines=[
                "",
                "[rule casedone]",
                "kind = after_resolution",
                "delay = 1d",
                "template = casedone",
                "query = SELECT c.cid AS key, c.closed AS at,",
                "        p.mail AS email, p.nick AS name,",
                "        c.cid AS \"case.id\", c.title AS \"case.title\",",
                "        c.state AS \"case.state\", p.nick AS \"person.nick\"",
                "    FROM cases c JOIN people p ON p.pid = c.owner",
                "    WHERE c.state = 'done'",
                "      AND c.closed >= :since AND c.closed < :until",
                "history = no",
            ])
        r = env.run("check", conf=conf)
        t.eq(r.rc, 0, "check accepts a rule's own query on another schema",
             r.describe())
        r = env.run("once", "--now", "2026-11-02 12:00:00", conf=conf)
        t.eq(r.rc, 0, "planning tick", r.describe())
        t.eq(sorted((j["subject"], j["occurrence"]) for j in env.jobs()),
             [("7", "2026-11-02 10:00:00"), ("8", "2026-11-02T11:00:00Z")],
             "one job per done case, both time spellings")
        r = env.run("once", "--now", "2026-11-03 12:00:00", conf=conf)
        t.eq(r.rc, 0, "delivering tick", r.describe())
        got = fx.by_recipient(srv)
        t.eq(sorted(got), ["ana@example.com", "bo@example.org"],
             "both people got their message")
        if "ana@example.com" in got:
            msg = got["ana@example.com"][0][1]
            t.eq(str(msg["Subject"]), "About case 7: Wi-Fi drops",
                 "subject from the query's columns")
            text = fx.body(msg, "plain")
            t.ok("Hello Ani," in text and "case 7 (Wi-Fi drops) is done."
                 in text and "-- the desk" in text,
                 "dotted column names are template variables", text)
            t.eq(msg.get_content_type(), "text/plain",
                 "no html template: a text/plain message")
            t.eq(str(msg["To"]), "Ani <ana@example.com>", "name column is "
                 "the display name")
        # The desk reopens case 7: the re-check through the rule's own
        # query no longer finds it.
        db = sqlite3.connect(other)
        db.execute("UPDATE cases SET state = 'open' WHERE cid = 7")
        db.commit()
        db.close()
        before = digest(other)
        r = env.run("preview", "casedone", "7", conf=conf)
        t.ok(r.rc != 0, "preview of a reopened case finds no row",
             r.describe())
        r = env.run("preview", "casedone", "8", conf=conf)
        t.ok(r.rc == 0 and "Late parcel" in r.stdout,
             "preview through the rule's own query", r.describe())
        t.eq(digest(other), before, "the other desk was never written")

        # history = yes on a desk whose purchases table lacks the columns:
        # check says so, naming the rule.
        db = sqlite3.connect(other)
        db.execute("CREATE TABLE purchases (id INTEGER PRIMARY KEY, "
                   "customer_id INTEGER)")
        db.commit()
        db.close()
        hy = env.write_config(
            srv.port, path=os.path.join(env.dir, "hy.conf"),
            source={"database": "otherdesk.db"},
            templates={"dir": "templates"},
            rule_checkin={"query": "SELECT cid AS key, closed AS at, "
                          "'x@example.com' AS email, cid AS \"customer.id\" "
                          "FROM cases WHERE closed >= :since AND "
                          "closed < :until", "template": "casedone"})
        r = env.run("check", conf=hy)
        t.ok(r.rc == 78 and "[rule checkin] history" in r.stderr and
             "history = no" in r.stderr,
             "check reports history.* that cannot work on this schema",
             r.describe())

        # A rule whose query fails at run time (the desk dropped its table)
        # does not stop the other rules from planning.
        two = env.write_config(
            srv.port, path=os.path.join(env.dir, "two.conf"),
            source={"database": "otherdesk.db"},
            templates={"dir": "templates"}, rule_checkin=None,
            extra_lines=[
                "", "[rule aaa]", "kind = after_resolution", "delay = 1d",
                "template = casedone", "history = no",
                "query = SELECT x AS key, y AS at, z AS email FROM gone "
                "WHERE y >= :since AND y < :until",
                "", "[rule zzz]", "kind = after_resolution", "delay = 1d",
                "template = casedone", "history = no",
                "query = SELECT cid AS key, closed AS at, 'p@example.com' AS "
                "email FROM cases WHERE closed >= :since AND closed < :until",
            ])
        db = sqlite3.connect(other)
        db.execute("CREATE TABLE gone (x, y, z)")
        db.commit()
        r = env.run("check", conf=two)
        t.eq(r.rc, 0, "both rules pass check", r.describe())
        db.execute("DROP TABLE gone")
        db.commit()
        db.close()
        r = env.run("once", "--now", "2026-11-02 12:00:00", conf=two)
        t.ok("[rule aaa] skipped" in r.stderr, "the failing rule is named",
             r.describe())
        t.ok(any(j["rule"] == "zzz" for j in env.jobs()),
             "the rule after it still planned")

        # history.* over the reference schema.
        env.make_source(
            customers=[dict(id=1, email="h@example.com", name="Hana Ito",
                            first_name="Hana",
                            customer_since="2020-06-01 00:00:00"),
                       dict(id=2, email="n@example.com", name="New Person",
                            customer_since="2026-10-01 00:00:00")],
            tickets=[dict(id=1, customer_id=1, subject="a", status="closed",
                          resolved_at="2026-01-01 10:00:00"),
                     dict(id=2, customer_id=1, subject="b", status="resolved",
                          resolved_at=R, updated_at=R),
                     dict(id=3, customer_id=2, subject="c", status="resolved",
                          resolved_at=R, updated_at=R)],
            purchases=[dict(id=i, customer_id=1, item="Item %d" % i,
                            amount_cents=1000 * i + 5, currency="EUR",
                            purchased_at="2026-0%d-01 10:00:00" % i)
                       for i in range(1, 6)])
        hconf = env.write_config(srv.port,
                                 path=os.path.join(env.dir, "hist.conf"),
                                 templates={"dir": "templates"},
                                 rule_checkin={"template": "hist"})
        r = env.run("preview", "checkin", "2", "--now", "2026-11-05 10:00:00",
                    conf=hconf)
        t.eq(r.rc, 0, "history preview", r.describe())
        text = fx.body(fx.parse(r.stdout.encode()), "plain")
        t.ok("tickets=2 purchases=5 years=6" in text,
             "history counts and whole years as a customer", text)
        t.ok(text.count("- Item") == 3 and "- Item 5 50.05 EUR" in text and
             text.index("Item 5") < text.index("Item 4"),
             "the three most recent purchases, newest first, amounts in units",
             text)
        r = env.run("preview", "checkin", "3", "--now", "2026-11-05 10:00:00",
                    conf=hconf)
        text = fx.body(fx.parse(r.stdout.encode()), "plain")
        t.ok("tickets=1 purchases=0 years=0" in text and "no purchases" in text,
             "a new customer without purchases", text)
    finally:
        srv.stop()


if __name__ == "__main__":
    env = fx.Env("custom")
    try:
        fx.main(lambda t: body(t, env))
    finally:
        env.cleanup()
