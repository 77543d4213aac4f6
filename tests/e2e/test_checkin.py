#!/usr/bin/python3
"""test_checkin: issue 2's check-in scenario, end to end.

The real binary over simulated days (`once --now …`) against the real SMTP
capture server: which messages arrive and when, what they look like parsed
back with Python's email package, the jobs' states and reasons in
state.db, deferral and retry, a permanent failure, and that the help desk's
database is never written.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

R = "2026-11-02 10:00:00"          # a Monday; most tickets are resolved then
DUE = "2026-11-05 10:00:00"        # R + 3d

CUSTOMERS = [
    dict(id=1, email="ana@example.com", name="Ana García", first_name="Ana",
         timezone="Europe/Madrid", customer_since="2019-05-02 10:00:00"),
    dict(id=2, email="zoe@example.org", name="Zoë Lefèvre", first_name="Zoë",
         timezone="Europe/Paris"),
    dict(id=3, email="bob@example.net", name='<b>Bob & "Co"</b>',
         first_name='<b>Bob & "Co"</b>'),
    dict(id=4, email="nameless@example.com", name=None, first_name=None),
    dict(id=5, email="morgan@example.com", name="Morgan Lee", first_name=None),
    dict(id=6, email="ivan@example.com", name="Ivan Petrov", first_name="Ivan"),
    dict(id=7, email=None, name="Priya Raman", first_name="Priya"),
    dict(id=8, email="bob at example", name="Bob Stone", first_name="Bob"),
    dict(id=9, email="amelia@example.org", name="Amelia Hart",
         first_name="Amelia"),
    dict(id=10, email="kai@example.com", name="Kai Nakamura",
         first_name="Kai"),
    dict(id=11, email="dana@example.com", name="Dana Scully",
         first_name="Dana"),
    dict(id=12, email="reject@example.com", name="Rex Jected",
         first_name="Rex"),
]
AGENTS = [dict(id=1, email="sam@acme.example", name="Sam Okafor",
               timezone="Europe/London")]


def ticket(tid, cust, subject, resolved=R, status="resolved"):
    return dict(id=tid, customer_id=cust, agent_id=1, subject=subject,
                status=status, created_at="2026-11-01 09:00:00",
                resolved_at=resolved, updated_at=resolved)


TICKETS = [
    ticket(101, 1, "Order #1042 arrived with a cracked lid", status="closed"),
    ticket(102, 2, "Café grinder — clicking noise",
           resolved="2026-11-02T10:00:00Z"),
    ticket(103, 3, 'Refund <script>alert(1)</script> & "more"'),
    ticket(104, 4, "Bulk order discount"),
    ticket(105, 5, "Export to CSV drops accents"),
    ticket(106, 6, "Printer broken\r\nBcc: evil@x"),
    ticket(107, 7, "Shipping label printed twice"),
    ticket(108, 8, "Cannot update my billing address"),
    ticket(109, 9, "Dashboard shows yesterday's numbers"),
    ticket(110, 10, "Two-factor codes arrive late"),
    ticket(111, 11, "Password reset link expired",
           resolved="2026-11-10 10:00:00"),
    ticket(112, 12, "Lost access to old orders",
           resolved="2026-11-10 11:00:00"),
]
PURCHASES = [
    dict(id=1, customer_id=1, item="Pour-over set", amount_cents=3450,
         currency="EUR", purchased_at="2026-10-27 20:41:00"),
]
FIRST_WAVE = {"ana@example.com", "zoe@example.org", "bob@example.net",
              "nameless@example.com", "morgan@example.com", "ivan@example.com"}


def check_common(t, env, who, envelope, msg, raw, now):
    """What every delivered check-in must satisfy."""
    t.eq(defects(msg), [], "%s: the parser finds no defects" % who)
    t.eq(envelope.get("rcpt_tos"), [who], "%s: exactly one envelope "
         "recipient" % who)
    t.eq(envelope.get("mail_from"), fx.SENDER, "%s: envelope sender" % who)
    to = msg["To"].addresses if msg["To"] else ()
    t.eq([a.addr_spec for a in to], [who], "%s: To holds exactly the "
         "customer's address" % who)
    frm = msg["From"].addresses if msg["From"] else ()
    t.eq([(a.display_name, a.addr_spec) for a in frm],
         [("Acme Support", fx.SENDER)], "%s: From" % who)
    rt = msg["Reply-To"].addresses if msg["Reply-To"] else ()
    t.eq([a.addr_spec for a in rt], [fx.REPLY_TO], "%s: Reply-To" % who)
    t.eq(str(msg["Auto-Submitted"] or ""), "auto-generated",
         "%s: Auto-Submitted: auto-generated" % who)
    date = msg["Date"]
    t.ok(date is not None and date.datetime is not None and
         date.datetime.tzinfo is not None, "%s: Date is a valid RFC 5322 "
         "date" % who, "Date: %r" % (str(date),))
    if date is not None and date.datetime is not None:
        t.eq(int(date.datetime.timestamp()), fx.unix(now),
             "%s: Date is the (simulated) time of the tick" % who)
    mid = str(msg["Message-ID"] or "")
    t.ok(re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", mid), "%s: Message-ID is "
         "<id@domain>" % who, "Message-ID: %r" % mid)
    t.eq(msg.get_content_type(), "multipart/alternative",
         "%s: multipart/alternative" % who)
    parts = [p for p in msg.iter_parts()] if msg.is_multipart() else []
    t.eq([(p.get_content_type(), (p.get_content_charset() or "").lower())
          for p in parts],
         [("text/plain", "utf-8"), ("text/html", "utf-8")],
         "%s: text/plain then text/html, both utf-8" % who)
    head = fx.header_block(raw)
    t.ok(all(b < 128 for b in head), "%s: header section is 7-bit "
         "(RFC 2047 for non-ASCII)" % who)
    long_lines = [ln for ln in raw.split(b"\r\n") if len(ln) > 998]
    t.eq(len(long_lines), 0, "%s: no line over 998 octets" % who)
    t.ok(b"\n" not in raw.replace(b"\r\n", b""), "%s: CRLF line ends "
         "only" % who)


def defects(msg):
    return fx.defects(msg)


def body(t, env):
    fx.require_binary(t)
    env.make_source(customers=CUSTOMERS, agents=AGENTS, tickets=TICKETS,
                    purchases=PURCHASES)
    srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail"),
                        faults=["rcpt:reject@:550"], lifetime=300).start()
    try:
        scenario(t, env, srv)
    finally:
        srv.stop()


def scenario(t, env, srv):
    env.write_config(port=srv.port)

    r = env.run("check")
    t.eq(r.rc, 0, "followupd check accepts the test config", r)

    # ---- day 0: planning ------------------------------------------------
    r = env.once("2026-11-02 12:00:00")
    t.eq(r.rc, 0, "once at resolution day exits 0", r)
    t.eq(len(srv.messages()), 0, "nothing is sent on the day of resolution")
    jobs = env.jobs("checkin")
    t.eq(sorted(int(j["subject"]) for j in jobs), list(range(101, 111)),
         "one job per resolved ticket in the lookback window (101..110)",
         "jobs: %r" % [(j["subject"], j["state"], j["reason"])
                       for j in jobs])
    j101 = env.job(101)
    t.ok(j101 is not None and j101["occurrence"] == R and
         j101["due_at"] == fx.unix(DUE), "job key is (checkin, ticket id, "
         "resolved_at) and it is due 3 days later", "job: %r" % (j101,))
    j102 = env.job(102)
    t.ok(j102 is not None and j102["occurrence"] == "2026-11-02T10:00:00Z"
         and j102["due_at"] == fx.unix(DUE), "an ISO resolved_at is kept "
         "verbatim as the occurrence and parsed as UTC", "job: %r" % (j102,))
    t.ok(env.source_unchanged(), "planning does not write the source")

    r = env.once("2026-11-02 12:00:00")
    t.eq(len(env.jobs("checkin")), 10, "planning twice adds no job")

    # ---- the desk reopens tickets ---------------------------------------
    env.desk("UPDATE tickets SET status = 'open', resolved_at = NULL, "
             "updated_at = '2026-11-03 09:00:00' WHERE id IN (109, 110)")
    r = env.once("2026-11-03 12:00:00")
    t.eq(r.rc, 0, "once on day 1 exits 0", r)
    env.desk("UPDATE tickets SET status = 'resolved', resolved_at = "
             "'2026-11-04 12:00:00', updated_at = '2026-11-04 12:00:00' "
             "WHERE id = 110")
    r = env.once("2026-11-04 13:00:00")
    t.eq(r.rc, 0, "once on day 2 exits 0", r)
    t.ok(env.job(110, "2026-11-04 12:00:00") is not None,
         "resolved again: a new job for the new resolution")
    t.eq(len(srv.messages()), 0, "nothing sent before anything is due")

    # ---- due time -------------------------------------------------------
    r = env.once("2026-11-05 09:59:59")
    t.eq(r.rc, 0, "once one second before due exits 0", r)
    t.eq(len(srv.messages()), 0, "one second before due: nothing sent")

    r = env.once(DUE, vg=True)
    t.eq(r.rc, 0, "once at due time exits 0", r)
    got = fx.by_recipient(srv)
    t.eq(set(got), FIRST_WAVE, "at due time: exactly the six deliverable "
         "check-ins arrive", r)
    t.ok(all(len(v) == 1 for v in got.values()), "one message per "
         "resolution", "counts: %r" % {k: len(v) for k, v in got.items()})
    mids = set()
    for who in sorted(FIRST_WAVE & set(got)):
        envelope, msg = got[who][0]
        check_common(t, env, who, envelope, msg, envelope["eml"], DUE)
        mids.add(str(msg["Message-ID"]))
    t.eq(len(mids), len(FIRST_WAVE & set(got)), "Message-IDs are unique")

    def text_html(who):
        if who not in got:
            return "", ""
        m = got[who][0][1]
        return fx.body(m, "plain"), fx.body(m, "html")

    # The message itself.
    text, html = text_html("ana@example.com")
    t.ok("Hi Ana," in text and "Hi Ana," in html, "greets by first name")
    t.ok("we solved “Order #1042 arrived with a cracked lid” on Monday; is "
         "everything still working?" in text, "text names the ticket and "
         "the weekday of resolution", text)
    t.ok("Sam Okafor" in text, "text is signed by the agent", text)
    msg = got["ana@example.com"][0][1] if "ana@example.com" in got else None
    if msg is not None:
        t.ok("Order #1042 arrived with a cracked lid" in str(msg["Subject"]),
             "Subject names the ticket", str(msg["Subject"]))
        job = env.job(101)
        t.eq("<%s>" % (job["message_id"] or "").strip("<>"),
             str(msg["Message-ID"]), "Message-ID is the one kept in the job")
        t.eq((job["state"], job["recipient"]), ("sent", "ana@example.com"),
             "job 101 is sent, recipient recorded")

    msg = got["zoe@example.org"][0][1] if "zoe@example.org" in got else None
    if msg is not None:
        to = msg["To"].addresses
        t.eq(to[0].display_name if to else None, "Zoë Lefèvre",
             "To: a non-ASCII display name decodes back")
        t.ok("Café grinder — clicking noise" in str(msg["Subject"]),
             "Subject: non-ASCII decodes back", str(msg["Subject"]))
        t.ok("Hi Zoë," in fx.body(msg, "plain"), "non-ASCII first name in "
             "the text part")

    text, html = text_html("bob@example.net")
    t.ok('Hi <b>Bob & "Co"</b>,' in text, "text part is not HTML-escaped",
         text)
    t.ok("&lt;b&gt;Bob &amp; " in html and "<b>Bob" not in html,
         "HTML part escapes the customer's name", html)
    t.ok("<script>" not in html and "&lt;script&gt;" in html,
         "HTML part escapes the ticket subject", html)
    msg = got["bob@example.net"][0][1] if "bob@example.net" in got else None
    if msg is not None:
        to = msg["To"].addresses
        t.eq(to[0].display_name if to else None, '<b>Bob & "Co"</b>',
             "To: a display name with <, &, quotes survives intact")
        t.ok("&amp;" not in str(msg["Subject"]) and
             "&" in str(msg["Subject"]), "Subject is not HTML-escaped",
             str(msg["Subject"]))

    text, html = text_html("nameless@example.com")
    t.ok(text.startswith("Hi there,") and "Hi there," in html,
         "no name at all: 'Hi there,'", text[:80])
    text, html = text_html("morgan@example.com")
    t.ok(text.startswith("Hi Morgan,"), "no first name: the first word of "
         "the name", text[:80])

    # Header injection through the ticket subject.
    if "ivan@example.com" in got:
        envelope, msg = got["ivan@example.com"][0]
        raw = envelope["eml"]
        t.eq(msg["Bcc"], None, "injection: no Bcc header")
        t.eq(envelope.get("rcpt_tos"), ["ivan@example.com"],
             "injection: the only envelope recipient is the customer")
        t.ok(not re.search(rb"(?im)^bcc:", fx.header_block(raw)),
             "injection: no header line starts with Bcc:")
        subj = str(msg["Subject"])
        t.ok("Printer broken" in subj and "\r" not in subj and
             "\n" not in subj, "injection: Subject is one line", repr(subj))
    else:
        t.ok(False, "injection: the message to ivan@example.com arrived")
    t.ok(not any("evil" in r for e, _ in fx.received(srv)
                 for r in e.get("rcpt_tos", [])), "nobody at evil@x got mail")

    # Cancelled, with reasons.
    for tid, reason, what in ((107, "no-address", "NULL email"),
                              (108, "bad-address", "'bob at example'"),
                              (109, "reopened", "reopened ticket")):
        job = env.job(tid)
        t.eq((job or {}).get("state"), "cancelled", "%s: job cancelled" % what)
        t.eq((job or {}).get("reason"), reason, "%s: reason %s" % (what,
                                                                    reason))
    j1 = env.job(110, R)
    t.eq((j1 or {}).get("state"), "cancelled", "reopened then resolved "
         "again before due: the first resolution's job is cancelled")
    t.eq((j1 or {}).get("reason"), "reopened", "… with reason reopened")
    t.ok("amelia@example.org" not in got and "kai@example.com" not in got,
         "reopened tickets get nothing at the first due time")
    t.eq((env.job(110, "2026-11-04 12:00:00") or {}).get("state"), "planned",
         "the second resolution's job waits for its own due time")

    r = env.run("status")
    t.eq(r.rc, 0, "status exits 0", r)
    t.ok("no-address" in r.stdout + r.stderr, "status shows the no-address "
         "skip", r)

    # ---- the same instant again ----------------------------------------
    before = [(j["id"], j["state"], j["attempts"]) for j in env.jobs()]
    r = env.once(DUE)
    t.eq(r.rc, 0, "a second once at the same instant exits 0", r)
    t.eq(len(srv.messages()), len(FIRST_WAVE), "a second once at the same "
         "instant sends nothing twice")
    t.eq([(j["id"], j["state"], j["attempts"]) for j in env.jobs()], before,
         "… and changes no job")

    # ---- the second resolution of ticket 110 ----------------------------
    r = env.once("2026-11-07 11:59:59")
    t.eq(len(srv.messages()), len(FIRST_WAVE), "second resolution: nothing "
         "before its due time")
    r = env.once("2026-11-07 12:00:00")
    t.eq(r.rc, 0, "once at the second resolution's due time exits 0", r)
    got = fx.by_recipient(srv)
    t.eq(len(got.get("kai@example.com", [])), 1, "the second resolution "
         "gets exactly one check-in")
    t.eq(len(srv.messages()), len(FIRST_WAVE) + 1, "and nothing else is sent")
    all_mids = [str(m["Message-ID"]) for _, m in fx.received(srv)]
    t.eq(len(set(all_mids)), len(all_mids), "Message-IDs stay unique")

    # ---- server down: deferred, then delivered once ---------------------
    down = env.write_config(port=fx.closed_port(),
                            path=os.path.join(env.dir, "down.conf"))
    now = "2026-11-13 10:00:00"
    r = env.once(now, conf=down)
    t.eq(r.rc, 0, "once with the relay down exits 0 (a temporary failure)",
         r)
    job = env.job(111) or {}
    t.eq(job.get("state"), "deferred", "relay down: job deferred",
         "job: %r" % job)
    t.eq(job.get("attempts"), 1, "relay down: one attempt counted")
    nxt = job.get("next_attempt_at") or 0
    t.ok(nxt > fx.unix(now), "relay down: next attempt in the future",
         "next_attempt_at %r, now %d" % (nxt, fx.unix(now)))
    t.ok(240 <= nxt - fx.unix(now) <= 360, "relay down: the first backoff "
         "is min_backoff (5m, give or take jitter)",
         "next_attempt_at - now = %d" % (nxt - fx.unix(now)))
    t.ok(job.get("last_reply"), "relay down: the reason is kept",
         "job: %r" % job)
    spooled = os.path.join(env.queue, "new", job.get("spool_name") or "?")
    t.ok(os.path.isfile(spooled), "deferred message stays in queue/new/",
         "spool_name %r; new/: %r" % (job.get("spool_name"),
                                      env.spool_files("new")))
    modes = {os.path.basename(p): oct(fx.mode(p))
             for p in env.spool_files("new")}
    t.ok(modes and all(m == "0o600" for m in modes.values()),
         "spool files are mode 0600 while queued", "modes: %r" % modes)
    t.eq(len(fx.by_recipient(srv).get("dana@example.com", [])), 0,
         "relay down: nothing delivered")
    mid = job.get("message_id")

    early = fx.sqltime(fx.unix(now) + 30)
    if nxt > fx.unix(now) + 30:
        r = env.once(early)
        t.eq((env.job(111) or {}).get("state"), "deferred", "relay back "
             "but before next_attempt_at: still deferred (backoff kept)")
        t.eq(len(fx.by_recipient(srv).get("dana@example.com", [])), 0,
             "… and not delivered early")
    r = env.once(fx.sqltime(max(nxt, fx.unix(now) + 1)))
    t.eq(r.rc, 0, "once at next_attempt_at exits 0", r)
    job = env.job(111) or {}
    t.eq(job.get("state"), "sent", "relay back: job sent", "job: %r" % job)
    t.eq(job.get("attempts"), 2, "relay back: two attempts in all")
    dana = fx.by_recipient(srv).get("dana@example.com", [])
    t.eq(len(dana), 1, "relay back: delivered exactly once")
    if dana:
        t.eq(str(dana[0][1]["Message-ID"]).strip("<>"), (mid or "").strip(
            "<>"), "the retry keeps the Message-ID")
    r = env.once("2026-11-13 10:45:00")
    t.eq(len(fx.by_recipient(srv).get("dana@example.com", [])), 1,
         "a later tick does not send it again")

    # ---- 550: failed, reply kept, never retried -------------------------
    now = "2026-11-13 11:00:00"
    r = env.once(now)
    t.eq(r.rc, 0, "once with a 550 recipient exits 0", r)
    job = env.job(112) or {}
    t.eq(job.get("state"), "failed", "550: job failed", "job: %r" % job)
    t.ok("550" in (job.get("last_reply") or ""), "550: the server's reply "
         "is kept", "last_reply: %r" % job.get("last_reply"))
    t.eq(job.get("reason"), "rejected", "550: reason rejected")
    t.ok(any(s["address"].lower() == "reject@example.com"
             for s in env.suppressions()), "550: the address is suppressed",
         "suppressions: %r" % env.suppressions())
    t.eq(len(fx.by_recipient(srv).get("reject@example.com", [])), 0,
         "550: nothing delivered")
    attempts = job.get("attempts")
    # sessions.jsonl gets its line when the server sees the close.
    srv.settled()
    sessions = len(srv.sessions())
    r = env.once("2026-11-14 12:00:00")
    r = env.once("2026-11-20 12:00:00")
    srv.settled()
    job = env.job(112) or {}
    t.eq((job.get("state"), job.get("attempts")), ("failed", attempts),
         "550: later ticks do not retry")
    t.eq(len(srv.sessions()), sessions, "later ticks open no SMTP session "
         "(nothing left to send)")

    # ---- totals and the source ------------------------------------------
    per = fx.by_recipient(srv)
    t.ok(all(len(v) == 1 for v in per.values()), "over the whole run: one "
         "message per resolution", "counts: %r" % {k: len(v)
                                                    for k, v in per.items()})
    t.eq(len(srv.messages()), 8, "8 check-ins in all")
    t.ok(env.source_unchanged(), "the source database was never written "
         "(hash, mtime, no -journal/-wal)", "before/after: %r" % (
             env.source_fingerprint(),))

    # ---- preview and queue show: read-only views --------------------------
    jobs_before = env.jobs()
    n_before = len(srv.messages())
    r = env.run("preview", "checkin", "101", "--now", DUE)
    t.eq(r.rc, 0, "preview checkin 101 exits 0", r)
    pm = fx.parse(r.stdout.replace("\r\n", "\n").encode())
    t.ok("Order #1042" in str(pm["Subject"] or "") and
         "Hi Ana," in fx.body(pm, "plain"), "preview prints the complete "
         "message", r.stdout[:400])
    t.eq(fx.defects(pm), [], "the preview parses without defects")
    t.ok(env.jobs() == jobs_before and len(srv.messages()) == n_before,
         "preview writes no job and sends nothing")
    r = env.run("queue", "show", str((env.job(109) or {}).get("id")))
    t.eq(r.rc, 0, "queue show JOB exits 0", r)
    t.ok("reopened" in r.stdout, "queue show gives the job's reason", r)

    # ---- check: unknown key --------------------------------------------
    bad = os.path.join(env.dir, "bad.conf")
    env.write_config(port=srv.port, path=bad)
    with open(bad, encoding="utf-8") as f:
        lines = f.read().splitlines()
    at = lines.index("[queue]") + 2
    lines.insert(at - 1, "colour = blue")
    with open(bad, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    r = env.run("check", conf=bad)
    t.ok(r.rc not in (0, None), "check rejects an unknown key (non-zero "
         "exit)", r)
    t.ok("%s:%d:" % (bad, at) in r.stderr + r.stdout, "check names "
         "FILE:LINE: of the unknown key (%s:%d:)" % (os.path.basename(bad),
                                                     at), r)
    t.ok(env.source_unchanged(), "nor by preview, status, queue or check")


if __name__ == "__main__":
    env = fx.Env("checkin")
    try:
        fx.main(lambda t: body(t, env))
    finally:
        env.cleanup()
