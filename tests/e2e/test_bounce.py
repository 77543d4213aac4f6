#!/usr/bin/python3
"""test_bounce: returned mail through the real binary, with VERP.

Check-ins go through the real binary to tests/smtp_server.py with
[bounces] return_path set: each envelope sender is the job's own return
path, its token the HMAC this test computes itself from the secret. DSNs,
an ARF report and an auto-reply are then built from the messages as the
server received them and fed to `followupd bounce`:

- a hard bounce (VERP token, on stdin as from a pipe, the token in
  ORIGINAL_RECIPIENT): the job is `bounced`, the address suppressed, and
  the next check-in to it is cancelled `suppressed`; `why` names the bounce;
- the same DSN with a wrong token and no Message-ID of ours changes nothing;
- soft bounces matched by the quoted Message-ID alone suppress at
  [bounces] soft_limit;
- an ARF complaint opts the recipient out of marketing;
- an auto-reply changes nothing;
- --explain prints one JSON object per recipient and writes nothing;
- --maildir (and the daemon's [bounces] maildir) moves what it handled to
  cur/ with the S flag; exit 65 for input that is no mail, 75 while
  state.db is locked.
"""

import hashlib
import hmac
import json
import os
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

R1 = "2026-11-02 10:00:00"
PEOPLE = ["ana@example.com", "bea@example.com", "cara@example.com",
          "dan@example.com", "erin@example.com"]
RETURN = "bounces@desk.example"


def token(env, job_id):
    """The VERP token of a job, computed here from the secret (verp.h)."""
    with open(os.path.join(env.queue, "unsubscribe.key"), "rb") as f:
        key = f.read().split(b"\n")[0]
    mac = hmac.new(key, b"followupd-verp-v1\0" + str(job_id).encode(),
                   hashlib.sha256).hexdigest()[:20]
    return "%d.%s" % (job_id, mac)


def headers_of(raw):
    return fx.header_block(raw).replace(b"\r\n", b"\n").decode()


def dsn(verp, rcpt, status, diag, returned_headers, action="failed"):
    """An RFC 3464 DSN as a relay writes it, to the VERP address."""
    return ("Return-Path: <>\n"
            "Delivered-To: %s\n"
            "From: MAILER-DAEMON@relay.example (Mail Delivery System)\n"
            "To: %s\n"
            "Subject: Undelivered Mail Returned to Sender\n"
            "Auto-Submitted: auto-replied\n"
            "MIME-Version: 1.0\n"
            "Content-Type: multipart/report; report-type=delivery-status;"
            " boundary=\"B0UND\"\n\n"
            "--B0UND\nContent-Type: text/plain\n\n"
            "I'm sorry to have to inform you that your message could not\n"
            "be delivered to one or more recipients.\n\n"
            "--B0UND\nContent-Type: message/delivery-status\n\n"
            "Reporting-MTA: dns; relay.example\n\n"
            "Final-Recipient: rfc822; %s\nAction: %s\nStatus: %s\n"
            "Diagnostic-Code: smtp; %s\n\n"
            "--B0UND\nContent-Type: text/rfc822-headers\n\n%s\n"
            "--B0UND--\n" % (verp, verp, rcpt, action, status, diag,
                             returned_headers)).encode()


def arf(verp, rcpt, returned_headers):
    return ("From: fbl@isp.example\nTo: %s\nSubject: complaint\n"
            "MIME-Version: 1.0\nContent-Type: multipart/report; "
            "report-type=feedback-report; boundary=\"F\"\n\n"
            "--F\nContent-Type: text/plain\n\nAn abuse report.\n\n"
            "--F\nContent-Type: message/feedback-report\n\n"
            "Feedback-Type: abuse\nUser-Agent: isp/1.0\nVersion: 1\n"
            "Original-Mail-From: <%s>\nOriginal-Rcpt-To: <%s>\n\n"
            "--F\nContent-Type: text/rfc822-headers\n\n%s\n--F--\n"
            % (RETURN, verp, rcpt, returned_headers)).encode()


def bounce(env, *args, data=None, extra_env=None):
    """followupd bounce ARGS with data on stdin: (rc, stdout, stderr)."""
    e = dict(os.environ)
    e.update(extra_env or {})
    p = subprocess.run([fx.BIN, "-c", env.conf, "bounce"] + list(args),
                       input=data or b"", capture_output=True, timeout=60,
                       env=e)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def write(env, name, data):
    path = os.path.join(env.dir, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def body(t, env):
    fx.require_binary(t)
    env.make_source(
        customers=[dict(id=i + 1, email=a, name="P %d" % i, first_name="P")
                   for i, a in enumerate(PEOPLE)],
        tickets=[dict(id=i + 1, customer_id=i + 1, subject="T %d" % i,
                      status="resolved", resolved_at=R1, updated_at=R1)
                 for i in range(len(PEOPLE))])
    maildir = os.path.join(env.dir, "Maildir")
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(maildir, sub))
    srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail"),
                        lifetime=300).start()
    try:
        env.write_config(srv.port, source={"busy_timeout": "1s"},
                         bounces={"return_path": RETURN, "soft_limit": "2"})
        env.once("2026-11-02 12:00:00")
        r = env.once("2026-11-05 10:00:00")
        t.eq(r.rc, 0, "the check-ins go out", r.describe())
        got = fx.by_recipient(srv)
    finally:
        srv.stop()
    jobs = {j["recipient"]: j for j in env.jobs()}
    t.eq(sorted(got), PEOPLE, "one message to each")
    sent = {}
    for addr in PEOPLE:
        envelope, msg = got[addr][0]
        j = jobs[addr]
        want = "bounces+%s@desk.example" % token(env, j["id"])
        t.eq(envelope["mail_from"], want,
             "%s: the envelope sender is its job's return path" % addr)
        sent[addr] = (j, envelope["mail_from"], headers_of(envelope["eml"]))
    t.ok(all(j["state"] == "sent" for j in env.jobs()), "all sent")

    # A hard bounce on stdin, the token in the pipe's environment only.
    ana, ana_verp, ana_hdrs = sent["ana@example.com"]
    hard = dsn("bounces@desk.example", "ana@example.com", "5.1.1",
               "550 5.1.1 <ana@example.com>: Recipient address rejected: "
               "User unknown", ana_hdrs.replace(ana["message_id"], "gone"))
    rc, out, err = bounce(env, data=hard,
                          extra_env={"ORIGINAL_RECIPIENT": ana_verp})
    t.eq(rc, 0, "a hard bounce: exit 0", err)
    j = env.job(1)
    t.eq((j["state"], j["reason"]), ("bounced", "hard bounce 5.1.1"),
         "the job is bounced")
    supp = {s["address"]: s["reason"] for s in env.suppressions()}
    t.ok("ana@example.com" in supp and "job %d" % ana["id"] in
         supp["ana@example.com"] and "User unknown" in supp["ana@example.com"],
         "the address is suppressed, naming the job and the reply", supp)
    t.ok(any(e["event"] == "bounce" and "verp" in (e["detail"] or "")
             for e in env.events(ana["id"])), "an event on the job")

    # --explain: one JSON object per recipient, nothing written.
    path = write(env, "hard.eml", dsn(ana_verp, "ana@example.com", "5.1.1",
                                      "550 5.1.1 user unknown", ana_hdrs))
    before = env.query("SELECT count(*) AS n FROM bounces")[0]["n"]
    rc, out, err = bounce(env, "--explain", path)
    rows = [json.loads(line) for line in out.splitlines()]
    t.eq(rc, 0, "--explain: exit 0", err)
    t.eq(rows, [{"file": path, "recipient": "ana@example.com",
                 "status": "5.1.1", "kind": "hard",
                 "reason": "550 5.1.1 user unknown", "job": ana["id"],
                 "matched_by": "verp"}], "--explain shows the match")
    t.eq(env.query("SELECT count(*) AS n FROM bounces")[0]["n"], before,
         "--explain writes nothing")

    # Forged: a wrong token, no Message-ID of ours. Nothing changes.
    dan, dan_verp, dan_hdrs = sent["dan@example.com"]
    local, domain = dan_verp.split("@")
    bad = local[:-1] + ("1" if local[-1] == "0" else "0") + "@" + domain
    forged = dsn(bad, "dan@example.com", "5.1.1", "550 5.1.1 user unknown",
                 "Subject: hello\nMessage-ID: <forged@evil.example>\n")
    rc, out, err = bounce(env, data=forged)
    t.eq(rc, 0, "a forged DSN: exit 0 (never bounce a bounce)", err)
    t.eq(env.job(4)["state"], "sent", "… the job stays sent")
    t.ok("dan@example.com" not in
         [s["address"] for s in env.suppressions()], "… nobody suppressed")
    t.eq(env.query("SELECT decision, job_id FROM bounces ORDER BY id DESC "
                   "LIMIT 1"), [{"decision": "unmatched", "job_id": None}],
         "… kept as unmatched")
    rc, out, err = bounce(env, "--explain", write(env, "forged.eml", forged))
    t.eq([(x["job"], x["matched_by"], x["kind"]) for x in
          map(json.loads, out.splitlines())], [(None, None, "hard")],
         "--explain: a hard bounce that matches no job")

    # Soft bounces matched by the quoted Message-ID alone (no token).
    cara, _, cara_hdrs = sent["cara@example.com"]
    soft = dsn(RETURN, "cara@example.com", "4.2.2", "452 4.2.2 mailbox full",
               cara_hdrs)
    dup = soft.replace(b"Subject:", b"Message-ID: <dsn.77@relay.example>\n"
                       b"Subject:", 1)
    rc, out, err = bounce(env, data=dup)
    t.eq(rc, 0, "a soft bounce: exit 0", err)
    t.ok("cara@example.com" not in
         [s["address"] for s in env.suppressions()],
         "one soft bounce suppresses nothing")
    t.eq(env.query("SELECT matched_by, decision FROM bounces ORDER BY id "
                   "DESC LIMIT 1"),
         [{"matched_by": "message-id", "decision": "soft"}],
         "matched by its Message-ID")
    n = env.query("SELECT count(*) AS n FROM bounces")[0]["n"]
    rc, out, err = bounce(env, data=dup)
    t.ok(rc == 0 and "handled before" in err and env.query(
        "SELECT count(*) AS n FROM bounces")[0]["n"] == n and
        "cara@example.com" not in [s["address"] for s in env.suppressions()],
        "the same message again (its Message-ID) counts once", err)
    rc, out, err = bounce(env, data=soft)
    t.ok("cara@example.com" in [s["address"] for s in env.suppressions()],
         "soft_limit (2) soft bounces suppress the address")
    t.eq(env.job(3)["state"], "sent", "a soft bounce leaves the job sent")

    # An ARF complaint: opted out of marketing, reason complaint (ARF).
    bea, bea_verp, bea_hdrs = sent["bea@example.com"]
    rc, out, err = bounce(env, data=arf(bea_verp, "bea@example.com",
                                        bea_hdrs))
    t.eq(rc, 0, "an ARF report: exit 0", err)
    t.eq(env.query("SELECT address, class, reason FROM optouts"),
         [{"address": "bea@example.com", "class": "marketing",
           "reason": "complaint (ARF)"}], "the recipient opted out of "
         "marketing")

    # An auto-reply, through --maildir, with a message that is no mail.
    erin, _, erin_hdrs = sent["erin@example.com"]
    auto = ("From: erin@example.com\nTo: support@acme.example\n"
            "Subject: Out of office\nAuto-Submitted: auto-replied\n"
            "In-Reply-To: <%s>\n\nBack on Monday.\n" % erin["message_id"])
    write(env, "Maildir/new/1700000000.1.host", auto.encode())
    write(env, "Maildir/new/1700000001.2.host:2,F", b"no header at all\n")
    before = env.query("SELECT count(*) AS n FROM suppressions")[0]["n"]
    rc, out, err = bounce(env, "--maildir", maildir)
    t.eq(rc, 0, "--maildir: exit 0", err)
    t.eq(sorted(os.listdir(os.path.join(maildir, "new"))), [],
         "--maildir: new/ is empty")
    t.eq(sorted(os.listdir(os.path.join(maildir, "cur"))),
         ["1700000000.1.host:2,S", "1700000001.2.host:2,FS"],
         "--maildir: both moved to cur/ with the S flag (flags kept)")
    t.eq((env.job(5)["state"], env.query(
        "SELECT count(*) AS n FROM suppressions")[0]["n"], env.query(
        "SELECT decision FROM bounces WHERE job_id = ?", (erin["id"],))),
        ("sent", before, [{"decision": "auto-reply"}]),
        "an auto-reply changes nothing, and is counted")

    # Exit codes a pipe transport expects.
    rc, out, err = bounce(env, data=b"not a mail message\n")
    t.eq(rc, 65, "input that is no mail: 65", err)
    db = sqlite3.connect(env.state, timeout=5)
    db.execute("BEGIN EXCLUSIVE")
    try:
        rc, out, err = bounce(env, data=soft)
    finally:
        db.rollback()
        db.close()
    t.eq(rc, 75, "state.db locked: 75, the MTA tries again", err)

    # The daemon's own Maildir, at every tick: a hard bounce for dan.
    env.write_config(srv.port, source={"busy_timeout": "1s"},
                     bounces={"return_path": RETURN, "maildir": maildir})
    write(env, "Maildir/new/1700000002.3.host",
          dsn(dan_verp, "dan@example.com", "5.1.1", "550 5.1.1 unknown",
              dan_hdrs))
    r = env.once("2026-11-05 11:00:00")
    t.eq((r.rc, os.listdir(os.path.join(maildir, "new")),
          env.job(4)["state"]), (0, [], "bounced"),
         "the tick handles [bounces] maildir", r.describe())

    # The next check-in to ana is cancelled: suppressed.
    env.desk("INSERT INTO tickets (id, customer_id, subject, status, "
             "resolved_at, updated_at) VALUES (9, 1, 'again', 'resolved', "
             "'2026-11-06 10:00:00', '2026-11-06 10:00:00')")
    r1 = env.once("2026-11-06 12:00:00")
    r2 = env.once("2026-11-09 11:00:00")
    j = env.job(9)
    t.eq(j and (j["state"], j["reason"]), ("cancelled", "suppressed"),
         "the next check-in to a hard-bounced address is cancelled",
         r1.describe(), r2.describe())
    r = env.run("why", "ana@example.com")
    t.ok("hard bounce 5.1.1 (job %d, bounce" % ana["id"] in r.stdout,
         "why names the bounce that suppressed the address", r.describe())
    r = env.run("status")
    t.ok("hard 2/3 soft 2/2 policy 0/0 complaint 1/1 auto-reply 1/1 "
         "none 0/2" in r.stdout, "status shows bounces by kind (matched / "
         "all)", r.describe())
    r = env.run("queue", "show", ana["id"])
    t.ok("state:        bounced" in r.stdout and "bounce: hard 5.1.1, bounced "
         "(matched by verp" in r.stdout, "queue show: the bounce by kind",
         r.describe())
    r = env.run("status", "--json")
    t.eq(json.loads(r.stdout).get("bounces", {}).get("hard"),
         {"matched": 2, "all": 3}, "status --json: bounces by kind",
         r.describe())
    r = env.run("status")
    t.ok(any(line.startswith("rule ") and line.endswith("bounced")
             for line in r.stdout.splitlines()), "… and bounced jobs",
         r.describe())


if __name__ == "__main__":
    env = fx.Env("bounce")
    try:
        fx.main(lambda t: body(t, env))
    finally:
        env.cleanup()
