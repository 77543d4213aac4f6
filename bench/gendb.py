#!/usr/bin/python3
"""gendb: build a synthetic help-desk database with the reference schema.

    gendb.py OUT --tickets N --customers M --per-day P --end "YYYY-MM-DD HH:MM:SS"

Tickets are resolved at a steady P per day, the last one just before END, so
the ticket ids grow with resolved_at as in a real desk. by default 95 % are
resolved or closed, the rest open again (--open-every). Every customer has a valid address, a name, a
zone, a birthday; half of them have a purchase. Built in one transaction with
recursive CTEs (a 5,000,000-ticket database takes about a minute), written to
OUT.tmp and renamed, so an interrupted build never leaves a usable-looking
file behind. The schema is demo/seed.sql's (tables and indexes only).
"""

import argparse
import calendar
import os
import re
import sqlite3
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def schema():
    sql = open(os.path.join(ROOT, "demo", "seed.sql"), encoding="utf-8").read()
    return [m.group(0) for m in re.finditer(
        r"CREATE (TABLE|INDEX)[^;]*;", sql, re.S)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--tickets", type=int, required=True)
    ap.add_argument("--customers", type=int, required=True)
    ap.add_argument("--per-day", type=int, default=2000)
    ap.add_argument("--end", default="2026-11-02 00:00:00")
    ap.add_argument("--open-every", type=int, default=20,
                    help="every Nth ticket is open again (0: none)")
    a = ap.parse_args()
    end = calendar.timegm(time.strptime(a.end, "%Y-%m-%d %H:%M:%S"))
    step = 86400.0 / a.per_day
    tmp = a.out + ".tmp"
    if os.path.exists(tmp):
        os.unlink(tmp)
    t0 = time.time()
    db = sqlite3.connect(tmp, isolation_level=None)
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -400000")
    db.execute("BEGIN")
    indexes = []
    for stmt in schema():
        if stmt.startswith("CREATE INDEX"):
            indexes.append(stmt)     # after the rows: much faster
        else:
            db.execute(stmt)
    db.execute("""
        INSERT INTO agents (id, email, name, timezone)
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)
        SELECT i, 'agent' || i || '@acme.example', 'Agent ' || i, 'Europe/Madrid' FROM n""")
    db.execute("""
        INSERT INTO customers (id, email, name, first_name, locale, timezone,
                               birthday, customer_since)
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
        SELECT i, 'customer' || i || '@example.com',
               'Customer Number' || i || ' Example', 'Customer' || i,
               CASE i % 3 WHEN 0 THEN 'en-GB' WHEN 1 THEN 'es-ES' ELSE 'fr-FR' END,
               CASE i % 3 WHEN 0 THEN 'Europe/London' WHEN 1 THEN 'Europe/Madrid'
                          ELSE 'America/New_York' END,
               printf('19%02d-%02d-%02d', 50 + i % 50, 1 + i % 12, 1 + i % 28),
               datetime(?, '-' || (i % 3000) || ' days')
        FROM n""", (a.customers, a.end))
    db.execute("""
        INSERT INTO tickets (id, customer_id, agent_id, subject, status,
                             created_at, resolved_at, updated_at)
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :n)
        SELECT i, ((i * 7919) % :c) + 1, 1 + i % 50,
               'Order #' || (100000 + i) || ' arrived with a cracked lid',
               CASE WHEN :open > 0 AND i % :open = 0 THEN 'open'
                    WHEN i % 2 = 0 THEN 'closed'
                    ELSE 'resolved' END,
               datetime(:end - CAST((:n - i + 1) * :step AS INTEGER) - 86400, 'unixepoch'),
               datetime(:end - CAST((:n - i + 1) * :step AS INTEGER), 'unixepoch'),
               datetime(:end - CAST((:n - i + 1) * :step AS INTEGER), 'unixepoch')
        FROM n""", dict(n=a.tickets, c=a.customers, end=end, step=step,
                        open=a.open_every))
    db.execute("""
        INSERT INTO purchases (id, customer_id, item, amount_cents, currency,
                               purchased_at)
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
        SELECT i, ((i * 104729) % ?) + 1, 'Ceramic mug, set of ' || (1 + i % 6),
               500 + (i * 37) % 20000, 'EUR', datetime(?, '-' || (i % 900) || ' days')
        FROM n""", (max(1, a.customers // 2), a.customers, a.end))
    for stmt in indexes:
        db.execute(stmt)
    db.execute("COMMIT")
    db.close()
    os.rename(tmp, a.out)
    print("gendb: %s: %d tickets, %d customers in %.0f s" % (
        a.out, a.tickets, a.customers, time.time() - t0), file=sys.stderr)


if __name__ == "__main__":
    main()
