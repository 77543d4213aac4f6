#!/usr/bin/python3
"""test_time: check-ins keep the customer's wall clock across DST, quiet
hours postpone (never drop) at render time, unknown zones fall back and are
reported once by `check`; queue show, queue list and status (text and
--json) print the recipient's local time next to UTC, on both sides of a
daylight-saving change."""

import datetime
import json
import os
import sqlite3
import sys
import zoneinfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

CUSTOMERS = [
    dict(id=1, email="ana@example.com", name="Ana", first_name="Ana",
         timezone="Europe/Berlin"),
    dict(id=2, email="bob@example.net", name="Bob", first_name="Bob",
         timezone="America/New_York"),
    dict(id=3, email="zed@example.org", name="Zed", first_name="Zed",
         timezone="Mars/Base"),
    dict(id=4, email="zoe@example.org", name="Zoe", first_name="Zoe",
         timezone="Mars/Base"),
]


def ticket(tid, cid, resolved):
    return dict(id=tid, customer_id=cid, subject="Ticket %d" % tid,
                status="resolved", created_at="2026-10-01 08:00:00",
                resolved_at=resolved, updated_at=resolved)


TICKETS = [
    # Thu 10:00 CEST + 3d = Sun 10:00 CET (after the fall-back night)
    ticket(101, 1, "2026-10-22 08:00:00"),
    # Thu 10:00 EDT + 3d = Sun 10:00 EST (after the fall-back night)
    ticket(102, 2, "2026-10-29 14:00:00"),
    # unknown zone → [defaults] timezone Europe/Berlin
    ticket(103, 3, "2026-10-22 08:00:00"),
    # Fri 19:30 CEST + 3d = Mon 19:30 CET, outside quiet hours when planned
    ticket(104, 1, "2026-10-23 17:30:00"),
    ticket(105, 4, "2026-10-22 09:00:00"),
]


def scenario(t, env, srv):
    env.write_config(port=srv.port, defaults={
        "timezone": "Europe/Berlin", "quiet_hours": "20:00-08:00"})
    r = env.run("check")
    t.eq(r.rc, 0, "check passes (unknown zones in the data are warnings)", r)
    t.eq(r.stderr.count("unknown time zone 'Mars/Base'"), 1,
         "check reports the unknown zone once (two rows use it)", r)
    t.ok("2 row(s)" in r.stderr and "using Europe/Berlin" in r.stderr,
         "…with the row count and the fallback", r)

    r = env.once("2026-10-24 12:00:00")
    t.eq(r.rc, 0, "tick 1 plans", r)
    due = {int(j["subject"]): fx.sqltime(j["due_at"]) for j in env.jobs()}
    t.eq(due.get(101), "2026-10-25 09:00:00",
         "Berlin: 10:00 local on both sides of the change (09:00Z after)")
    t.eq(due.get(103), "2026-10-25 09:00:00",
         "unknown zone: planned in [defaults] timezone")
    t.eq(due.get(104), "2026-10-26 18:30:00", "Mon 19:30 CET")
    j101 = env.job(101)
    r = env.run("queue", "show", j101["id"])
    t.ok("2026-10-25 09:00:00 UTC" in r.stdout and
         "2026-10-25 10:00 +01:00 Europe/Berlin" in r.stdout,
         "queue show: UTC and the recipient's local time", r)

    # The daemon was down; the next tick is at 22:30 Berlin: quiet hours.
    r = env.once("2026-10-26 21:30:00")
    t.eq(r.rc, 0, "tick 2 exits 0", r)
    t.eq(len(srv.messages()), 0, "nothing is sent in quiet hours")
    for sid in (101, 103, 104):
        j = env.job(sid)
        t.eq((j["state"], fx.sqltime(j["due_at"])),
             ("planned", "2026-10-27 07:00:00"),
             "job %d postponed to 08:00 Berlin, still planned" % sid)
    ev = [e for e in env.events(env.job(104)["id"])
          if e["event"] == "postponed"]
    t.ok(ev and ev[0]["detail"].startswith(
        "quiet hours until 2026-10-27 08:00 +01:00"),
        "history: postponed: quiet hours until 08:00 local",
        repr(ev))

    r = env.once("2026-10-27 07:30:00")
    t.eq(r.rc, 0, "tick 3 exits 0", r)
    got = sorted(m["rcpt_tos"][0] for m in srv.messages())
    t.eq(got, ["ana@example.com", "ana@example.com", "zed@example.org",
               "zoe@example.org"],
         "after quiet hours: the postponed check-ins are sent")

    r = env.once("2026-10-30 12:00:00")
    t.eq(fx.sqltime(env.job(102)["due_at"]), "2026-11-01 15:00:00",
         "New York: 10:00 EST after the fall-back night")
    r = env.once("2026-11-01 15:00:00")
    bob = fx.by_recipient(srv).get("bob@example.net", [])
    t.eq(len(bob), 1, "Bob's check-in is sent at 10:00 his time")
    t.ok(env.source_unchanged(), "the source database was not written")


# Local time in status / queue list: Berlin leaves summer time in the night
# of 2026-10-25 (01:00Z), New York on 2026-11-01; Kolkata has none.
SHOW_CUSTOMERS = [
    dict(id=1, email="ana@example.com", name="Ana", timezone="Europe/Berlin"),
    dict(id=2, email="bob@example.net", name="Bob",
         timezone="America/New_York"),
    dict(id=3, email="dev@example.in", name="Dev", timezone="Asia/Kolkata"),
    dict(id=4, email="cy@example.org", name="Cy", timezone=None),
]
SHOW_TICKETS = [
    # Wed 15:00 CEST + 3d = Sat 15:00 CEST (+02:00, before the change)
    ticket(201, 1, "2026-10-21 13:00:00"),
    # Thu 15:00 CEST + 3d = Sun 15:00 CET (+01:00, after the change)
    ticket(202, 1, "2026-10-22 13:00:00"),
    # Thu 10:00 EDT + 3d = Sun 10:00 EDT (-04:00)
    ticket(203, 2, "2026-10-22 14:00:00"),
    # Thu 18:30 IST + 3d = Sun 18:30 IST (+05:30)
    ticket(204, 3, "2026-10-22 13:00:00"),
    # no zone: [defaults] timezone
    ticket(205, 4, "2026-10-22 13:00:00"),
]
SHOW_WANT = {   # subject → (due UTC, local text, ISO local, zone)
    201: ("2026-10-24 13:00:00", "2026-10-24 15:00 +02:00",
          "2026-10-24T15:00:00+02:00", "Europe/Berlin"),
    202: ("2026-10-25 14:00:00", "2026-10-25 15:00 +01:00",
          "2026-10-25T15:00:00+01:00", "Europe/Berlin"),
    203: ("2026-10-25 14:00:00", "2026-10-25 10:00 -04:00",
          "2026-10-25T10:00:00-04:00", "America/New_York"),
    204: ("2026-10-25 13:00:00", "2026-10-25 18:30 +05:30",
          "2026-10-25T18:30:00+05:30", "Asia/Kolkata"),
    205: ("2026-10-25 14:00:00", "2026-10-25 15:00 +01:00",
          "2026-10-25T15:00:00+01:00", "Europe/Berlin"),
}


def local(t, zone):
    """Unix time t in zone as ("YYYY-MM-DD HH:MM +HH:MM", ISO 8601 with
    offset), by Python's own zoneinfo: an independent reference."""
    d = datetime.datetime.fromtimestamp(t, zoneinfo.ZoneInfo(zone))
    off = d.strftime("%z")
    off = off[:3] + ":" + off[3:]
    return d.strftime("%Y-%m-%d %H:%M ") + off, \
        d.strftime("%Y-%m-%dT%H:%M:%S") + off


def line_of(text, needle):
    """The first line of text containing needle ("" when none)."""
    return next((ln for ln in text.splitlines() if needle in ln), "")


def show_scenario(t, env, srv):
    env.write_config(port=srv.port, defaults={"timezone": "Europe/Berlin"})
    r = env.once("2026-10-24 12:00:00")
    t.eq(r.rc, 0, "show: planning tick", r)
    jobs = {int(j["subject"]): j for j in env.jobs()}
    t.eq(sorted(jobs), sorted(SHOW_WANT), "show: five check-ins planned")
    t.eq({k: fx.sqltime(j["due_at"]) for k, j in jobs.items()},
         {k: w[0] for k, w in SHOW_WANT.items()},
         "show: 15:00 Berlin is 13:00Z before the change, 14:00Z after")

    r = env.run("queue", "list")
    t.eq(r.rc, 0, "queue list exits 0", r)
    t.ok("due/next (UTC)" in r.stdout and
         "due/next (recipient's time)" in r.stdout,
         "queue list: a UTC column and a recipient's time column", r)
    for sid, (utc, loc, _, zone) in SHOW_WANT.items():
        ln = line_of(r.stdout, " %d " % sid)
        t.ok(utc + " UTC" in ln and "%s %s" % (loc, zone) in ln,
             "queue list, ticket %d: %s UTC and %s %s" % (sid, utc, loc,
                                                          zone), r.stdout)

    r = env.run("queue", "list", "--json")
    t.eq(r.rc, 0, "queue list --json exits 0", r)
    try:
        got = {int(j["subject"]): j for j in json.loads(r.stdout)}
        for sid, (utc, _, iso, zone) in SHOW_WANT.items():
            j = got[sid]
            t.eq((j["due_at"], j["due_at_local"], j["timezone"],
                  j["next_attempt_at"], j["next_attempt_at_local"]),
                 (utc.replace(" ", "T") + "Z", iso, zone, None, None),
                 "queue list --json, ticket %d: due_at_local %s (%s)" % (
                     sid, iso, zone))
    except (ValueError, KeyError, TypeError) as e:
        t.ok(False, "queue list --json has the local fields", repr(e),
             r.stdout)

    r = env.run("status", "--now", "2026-10-24 12:00:00")
    t.eq(r.rc, 0, "status exits 0", r)
    t.ok("2026-10-24 13:00:00 UTC (2026-10-24 15:00 +02:00 Europe/Berlin)"
         in line_of(r.stdout, "job %s " % jobs[201]["id"]),
         "status: next due in UTC and Berlin summer time", r.stdout)

    # Ana's relay refuses her for now: deferred, 5 min later, before the
    # change. Everyone else is sent.
    srv.restart(faults=["rcpt:ana:451"])
    env.write_config(port=srv.port, defaults={"timezone": "Europe/Berlin"})
    r = env.once("2026-10-24 13:00:00")
    t.eq(r.rc, 0, "show: delivery tick", r)
    t.eq(env.job(201)["state"], "deferred", "show: ticket 201 deferred")
    nxt = env.job(201)["next_attempt_at"]     # 5 min, with some jitter
    both = "%s UTC (%s Europe/Berlin)" % (fx.sqltime(nxt),
                                          local(nxt, "Europe/Berlin")[0])
    r = env.run("status", "--now", "2026-10-24 13:01:00")
    ln = line_of(r.stdout.split("\ndeferred:")[-1], "job %s " %
                 jobs[201]["id"])
    t.ok("next " + both in ln and "+02:00" in ln,
         "status: deferred, next attempt in UTC and local time", both,
         r.stdout)
    t.ok(both in line_of(r.stdout.split("\nnext due:")[-1], "job"),
         "status: next due with its local time", both, r.stdout)
    t.ok("(2026-10-24 15:00 +02:00 Europe/Berlin)" in line_of(
        r.stdout.split("\nlast delivery error:")[-1], "job"),
        "status: last delivery error with its local time", r.stdout)
    r = env.run("status", "--json", "--now", "2026-10-24 13:01:00")
    try:
        st = json.loads(r.stdout)
        d = st["deferred"][0]
        t.eq((d["next_attempt_at_local"], d["timezone"]),
             (local(nxt, "Europe/Berlin")[1], "Europe/Berlin"),
             "status --json: deferred next_attempt_at_local")
        o = st["oldest_queued"]
        t.eq((o["queued_at_local"], o["timezone"]),
             ("2026-10-24T15:00:00+02:00", "Europe/Berlin"),
             "status --json: oldest_queued queued_at_local")
        n = st["next_due"]
        t.ok(n["at_local"] is not None and n["at_local"].endswith(
            {"Europe/Berlin": "+02:00", "Asia/Kolkata": "+05:30",
             "America/New_York": "-04:00"}.get(n["timezone"], "?")),
             "status --json: next_due at_local with the zone's offset", n)
        e = st["last_delivery_error"]
        t.eq((e["at_local"], e["timezone"]),
             ("2026-10-24T15:00:00+02:00", "Europe/Berlin"),
             "status --json: last_delivery_error at_local")
    except (ValueError, KeyError, TypeError, IndexError) as e:
        t.ok(False, "status --json has the local fields", repr(e), r.stdout)

    # Across the change: each time shown carries the offset in effect at
    # that instant, not the one of the day the job was planned.
    srv.restart(faults=["rcpt:ana:451"])
    env.write_config(port=srv.port, defaults={"timezone": "Europe/Berlin"})
    # 02:55 CEST: the retry fails again; the next, 10 min ± 10% later, is
    # after 01:00Z (03:00 CEST became 02:00 CET).
    r = env.once("2026-10-25 00:55:00")
    t.eq(env.job(201)["state"], "deferred", "show: still deferred")
    nxt = env.job(201)["next_attempt_at"]
    r = env.run("queue", "list", "--json", "--state", "deferred")
    try:
        j = json.loads(r.stdout)[0]
        t.ok(nxt > fx.unix("2026-10-25 01:00:00") and
             j["next_attempt_at_local"] == local(nxt, "Europe/Berlin")[1] and
             j["next_attempt_at_local"].endswith("+01:00") and
             j["due_at_local"] == "2026-10-24T15:00:00+02:00",
             "queue list --json: the retry after the change is +01:00, "
             "its due time before it +02:00", j)
    except (ValueError, KeyError, TypeError, IndexError) as e:
        t.ok(False, "queue list --json --state deferred", repr(e), r.stdout)

    # A job planned before jobs.tz existed (schema 1) has no zone: shown in
    # [defaults] timezone, else UTC. The test plays the old schema's row.
    j205 = env.job(205)
    db = sqlite3.connect(env.state, timeout=10)
    db.execute("UPDATE jobs SET tz = NULL WHERE id = ?", (j205["id"],))
    db.commit()
    db.close()
    env.write_config(port=srv.port, defaults={"timezone": "Asia/Kolkata"})
    r = env.run("queue", "show", j205["id"])
    t.ok("due (local):  2026-10-25 19:30 +05:30 Asia/Kolkata" in r.stdout,
         "queue show: no zone on the job → [defaults] timezone", r.stdout)
    r = env.run("queue", "list")
    t.ok("2026-10-25 19:30 +05:30 Asia/Kolkata" in line_of(
        r.stdout, " 205 "), "queue list: no zone on the job → [defaults] "
         "timezone", r.stdout)
    env.write_config(port=srv.port)
    r = env.run("queue", "list", "--json")
    j = [x for x in json.loads(r.stdout) if x["subject"] == "205"]
    t.ok(j and (j[0]["due_at_local"], j[0]["timezone"]) ==
         ("2026-10-25T14:00:00+00:00", "UTC"),
         "queue list --json: no zone anywhere → UTC", j)
    t.ok(env.source_unchanged(), "show: the source database was not written")


def body(t):
    fx.require_binary(t)
    with fx.Env("time") as env:
        env.make_source(customers=CUSTOMERS, tickets=TICKETS)
        srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail"),
                            lifetime=300).start()
        try:
            scenario(t, env, srv)
        finally:
            srv.stop()
    with fx.Env("time-show") as env:
        env.make_source(customers=SHOW_CUSTOMERS, tickets=SHOW_TICKETS)
        srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail"),
                            lifetime=300).start()
        try:
            show_scenario(t, env, srv)
        finally:
            srv.stop()


if __name__ == "__main__":
    fx.main(body)
