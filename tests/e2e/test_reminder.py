#!/usr/bin/python3
"""test_reminder: agent reminders end to end, every calendar parsed by
python3-icalendar.

One ticket's life: pending (REQUEST, SEQUENCE 0 to Sam in Europe/Berlin),
the customer writes again (moved: REQUEST, SEQUENCE 1, same UID),
reassigned to Riya in Asia/Kolkata (CANCEL to Sam and REQUEST to Riya,
SEQUENCE 2), closed (CANCEL to Riya, SEQUENCE 3). Then the per-agent feed.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

UID = "followupd-callback-7@acme.example"
AGENTS = [
    dict(id=1, email="sam@acme.example", name="Sam Okafor",
         timezone="Europe/Berlin"),
    dict(id=2, email="riya@acme.example", name="Riya Shah",
         timezone="Asia/Kolkata"),
]
CUSTOMERS = [
    dict(id=1, email="ana@example.com", name="Ana García", first_name="Ana",
         timezone="Europe/Madrid"),
]
TICKETS = [
    dict(id=7, customer_id=1, agent_id=1, subject="Printer offline; again",
         status="pending", created_at="2026-11-01 09:00:00",
         updated_at="2026-11-02 10:00:00"),
]


def calendars(t, srv, who):
    """[(method, VEVENT, zones, message)] of every message to `who`."""
    out = []
    for env, msg in fx.received(srv):
        if who not in env.get("rcpt_tos", []):
            continue
        t.eq(fx.defects(msg), [], "%s: no MIME defects" % who)
        t.eq(msg.get_content_type(), "multipart/mixed",
             "%s: multipart/mixed" % who)
        parts = fx.calendar_parts(msg)
        t.eq(len(parts), 1, "%s: one text/calendar part" % who)
        if not parts:
            continue
        method, raw = parts[0]
        cal, zones, events = fx.parse_ics(raw)
        t.eq(str(cal.get("METHOD")), method,
             "%s: Content-Type method= equals METHOD:%s" % (who, method))
        t.eq(str(cal.get("VERSION")), "2.0", "%s: VERSION 2.0" % who)
        t.ok(cal.get("PRODID"), "%s: PRODID" % who)
        t.eq(len(events), 1, "%s: one VEVENT" % who)
        t.ok(b"freeassociation" not in raw, "%s: plain IANA TZIDs" % who)
        out.append((method, events[0], zones, msg))
    return out


def scenario(t, env, srv):
    env.write_config(
        port=srv.port,
        defaults={"timezone": "Europe/Berlin", "quiet_hours": "20:00-08:00"},
        calendar={"feed": "feeds",
                  "link": "https://desk.example/tickets/{{ticket.id}}"},
        rule_callback={"kind": "agent_reminder",
                       "delay": "2 business days",
                       "send_window": "Mon-Fri 09:00-17:00",
                       "duration": "15m", "alarm": "10m",
                       "template": "reminder"})
    r = env.run("check")
    t.eq(r.rc, 0, "check accepts agent_reminder, [defaults], [calendar]", r)

    # Mon 2026-11-02 10:00Z = 11:00 Berlin; + 2 business days = Wed 11:00.
    r = env.once("2026-11-02 12:00:00", vg=True)
    t.eq(r.rc, 0, "tick 1 exits 0", r)
    sam = calendars(t, srv, "sam@acme.example")
    t.eq([(m, int(e["SEQUENCE"])) for m, e, _, _ in sam], [("REQUEST", 0)],
         "tick 1: one REQUEST, SEQUENCE 0, to Sam")
    if sam:
        m, ev, zones, msg = sam[0]
        t.eq(str(ev["UID"]), UID, "UID is stable for (rule, ticket)")
        start, tzid = fx.event_instant(ev, "DTSTART", zones)
        end, _ = fx.event_instant(ev, "DTEND", zones)
        t.eq(tzid, "Europe/Berlin", "DTSTART has TZID=Europe/Berlin")
        t.eq(fx.sqltime(start), "2026-11-04 10:00:00",
             "DTSTART is Wed 11:00 Berlin (2 business days, via VTIMEZONE)")
        t.eq(end - start, 15 * 60, "DTEND is 15 minutes later")
        t.eq(int(ev.decoded("DTSTART").timestamp()), start,
             "the parser's own zone agrees with our VTIMEZONE")
        t.ok("Ana García" in str(ev["SUMMARY"]) and "7" in str(ev["SUMMARY"]),
             "SUMMARY names the customer and the ticket", str(ev["SUMMARY"]))
        t.ok("Printer offline; again" in str(ev["DESCRIPTION"]) and
             "https://desk.example/tickets/7" in str(ev["DESCRIPTION"]),
             "DESCRIPTION: the ticket's subject and the link",
             str(ev["DESCRIPTION"]))
        t.eq(str(ev["ORGANIZER"]).lower(), "mailto:" + fx.SENDER,
             "ORGANIZER is the sender")
        t.eq(str(ev["ATTENDEE"]).lower(), "mailto:sam@acme.example",
             "ATTENDEE is the agent")
        alarms = [c for c in ev.walk() if c.name == "VALARM"]
        t.eq([(str(a["ACTION"]), a.decoded("TRIGGER").total_seconds())
              for a in alarms], [("DISPLAY", -600.0)],
             "a DISPLAY VALARM 10 minutes before")
        t.ok("DTSTAMP" in ev, "DTSTAMP present")
        text = fx.body(msg, "plain")
        t.ok("2026-11-04 11:00 +01:00" in text,
             "the text part shows the agent's local time", text)

    # Tue 09:00Z: the customer writes; the reminder moves to Thu 10:00 Berlin.
    env.desk("UPDATE tickets SET updated_at = '2026-11-03 09:00:00' "
             "WHERE id = 7")
    r = env.once("2026-11-03 09:30:00")
    t.eq(r.rc, 0, "tick 2 exits 0", r)

    # Reassigned to Riya (Kolkata), same moment of change.
    env.desk("UPDATE tickets SET agent_id = 2 WHERE id = 7")
    r = env.once("2026-11-03 10:00:00")
    t.eq(r.rc, 0, "tick 3 exits 0", r)

    feed_dir = os.path.join(env.dir, "feeds")
    riya_feed = os.path.join(feed_dir, "riya@acme.example.ics")
    t.ok(os.path.exists(riya_feed), "a feed file for Riya")
    if os.path.exists(riya_feed):
        with open(riya_feed, "rb") as f:
            _, fz, fev = fx.parse_ics(f.read())
        t.eq([str(e["UID"]) for e in fev], [UID], "Riya's feed: the reminder")
        if fev:
            s, tz = fx.event_instant(fev[0], "DTSTART", fz)
            t.eq((fx.sqltime(s), tz), ("2026-11-05 09:00:00", "Asia/Kolkata"),
                 "feed DTSTART: Thu 14:30 in Kolkata")
    sam_feed = os.path.join(feed_dir, "sam@acme.example.ics")
    if os.path.exists(sam_feed):
        with open(sam_feed, "rb") as f:
            _, _, sev = fx.parse_ics(f.read())
        t.eq(sev, [], "Sam's feed is empty after the reassignment")
    else:
        t.ok(False, "a feed file for Sam")

    # Closed by the customer's reply: cancelled for Riya.
    env.desk("UPDATE tickets SET status = 'closed', updated_at = "
             "'2026-11-03 11:00:00' WHERE id = 7")
    r = env.once("2026-11-03 11:30:00")
    t.eq(r.rc, 0, "tick 4 exits 0", r)
    r = env.once("2026-11-03 12:00:00")
    t.eq(r.rc, 0, "tick 5 (nothing changes) exits 0", r)

    sam = calendars(t, srv, "sam@acme.example")
    riya = calendars(t, srv, "riya@acme.example")
    t.eq([(m, int(e["SEQUENCE"]), str(e["UID"])) for m, e, _, _ in sam],
         [("REQUEST", 0, UID), ("REQUEST", 1, UID), ("CANCEL", 2, UID)],
         "Sam: REQUEST 0 → REQUEST 1 (moved) → CANCEL 2 (reassigned), in order")
    t.eq([(m, int(e["SEQUENCE"]), str(e["UID"])) for m, e, _, _ in riya],
         [("REQUEST", 2, UID), ("CANCEL", 3, UID)],
         "Riya: REQUEST 2 → CANCEL 3 (closed), in order")
    if len(sam) >= 2:
        s, tz = fx.event_instant(sam[1][1], "DTSTART", sam[1][2])
        t.eq((fx.sqltime(s), tz), ("2026-11-05 09:00:00", "Europe/Berlin"),
             "moved: Thu 10:00 Berlin")
    if len(sam) >= 3:
        ev = sam[2][1]
        t.eq(str(ev.get("STATUS")), "CANCELLED", "CANCEL has STATUS:CANCELLED")
        t.eq(str(ev["ATTENDEE"]).lower(), "mailto:sam@acme.example",
             "the CANCEL goes to the old agent as ATTENDEE")
        t.ok(str(sam[2][3]["Subject"]).startswith("Cancelled:"),
             "the CANCEL's subject says so", str(sam[2][3]["Subject"]))
    if riya:
        s, tz = fx.event_instant(riya[0][1], "DTSTART", riya[0][2])
        t.eq((fx.sqltime(s), tz), ("2026-11-05 09:00:00", "Asia/Kolkata"),
             "Riya's DTSTART: Thu 14:30 IST with TZID=Asia/Kolkata")
    if len(riya) >= 2:
        t.eq(str(riya[1][1].get("STATUS")), "CANCELLED",
             "Riya's CANCEL has STATUS:CANCELLED")
    rows = env.query("SELECT sequence, active, agent FROM reminders")
    t.eq(rows, [{"sequence": 3, "active": 0, "agent": "riya@acme.example"}],
         "state.db remembers the last version: SEQUENCE 3, inactive")
    t.ok(env.source_unchanged(), "the source database was not written")


def body(t):
    fx.require_binary(t)
    with fx.Env("reminder") as env:
        env.make_source(customers=CUSTOMERS, agents=AGENTS, tickets=TICKETS)
        srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail"),
                            lifetime=300).start()
        try:
            scenario(t, env, srv)
        finally:
            srv.stop()


if __name__ == "__main__":
    fx.main(body)
