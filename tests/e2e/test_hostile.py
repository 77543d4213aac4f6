#!/usr/bin/python3
"""test_hostile: hostile rows in the help desk's database, as a fixture table.

Each row of ROWS is one customer with one resolved ticket: a name, an
address and a ticket subject, some of them hostile (CR/LF/NUL, 1 MB
fields, invalid UTF-8, right-to-left and emoji text, addresses with
quotes, commas, several '@', display-name tricks), and the decision it
must get: "sent" or a cancellation reason. After one tick:

  - every row got its decision, invalid addresses 'bad-address';
  - everything valid was sent, once, to exactly its address (envelope and
    To), and nothing else was sent;
  - every message parses with Python's email without defects; its header
    section is 7-bit, lines <= 998 octets, and holds only the headers
    followupd writes (no header split or added: no Bcc, no Cc, one To);
  - the source database is unchanged.

Also: a rule's own SQL that tries to write is refused by `check`.
"""

import os
import re
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

R = "2026-11-02 10:00:00"
PLAN = "2026-11-02 12:00:00"
DUE = "2026-11-05 10:00:00"
MB = 1024 * 1024

ALLOWED_HEADERS = {"date", "message-id", "from", "to", "reply-to", "subject",
                   "mime-version", "auto-submitted", "content-type",
                   "content-transfer-encoding", "list-unsubscribe",
                   "list-unsubscribe-post", "x-followupd-job",
                   "x-followupd-rule"}

# (label, name, email, subject, decision). A bytes value is stored as TEXT
# with exactly those bytes (invalid UTF-8 included).
ROWS = [
    ("plain", "Ana García", "ana@example.com", "Printer offline", "sent"),
    ("CRLF in name", "Eve\r\nBcc: spy@evil.example", "eve@example.com",
     "Hello", "sent"),
    ("LF in subject", "Ivan", "ivan@example.com",
     "Broken\nBcc: spy@evil.example\nX-Evil: 1", "sent"),
    ("CR in subject", "Iris", "iris@example.com", "Broken\rTo: spy@evil.example",
     "sent"),
    ("NUL in name", b"Nu\x00ll\x00Bcc: spy@evil.example", "nul@example.com",
     "NUL", "sent"),
    ("NUL in subject", "Nadia", "nadia@example.com",
     b"Sub\x00ject\r\nCc: spy@evil.example", "sent"),
    ("1 MB name", "N" * MB, "longname@example.com", "Long name", "sent"),
    ("1 MB subject", "Lou", "longsubject@example.com", "S " * (MB // 2),
     "sent"),
    ("1 MB emoji subject", "Emma", "emoji-subject@example.com",
     "😀" * (MB // 4), "sent"),
    ("invalid UTF-8 name", b"Bad \xff\xfe\xc0\xaf Bytes", "bytes@example.com",
     "Bytes", "sent"),
    ("invalid UTF-8 subject", "Bea", "badsubject@example.com",
     b"Caf\xe9 \xed\xa0\x80 surrogate", "sent"),
    ("RTL name", "\u05e9\u05dc\u05d5\u05dd \u202eevil\u202c", "rtl@example.com",
     "\u0645\u0631\u062d\u0628\u0627", "sent"),
    ("emoji name", "😀 Smiley 👩‍💻", "emoji@example.com", "🎉 Party", "sent"),
    ("line separators", "Lina\u2028Bcc: spy@evil.example\u2029",
     "lina@example.com", "A\u0085B\u2028C", "sent"),
    ("display-name trick in name", "Acme Support <support@acme.example>",
     "trick@example.com", "Trick", "sent"),
    ("quotes and comma in name", 'Doe, "John" <x>', "john@example.com",
     "Quotes", "sent"),
    ("encoded-word in subject", "Ed", "ed@example.com",
     "=?UTF-8?B?QmNjOiBzcHlAZXZpbC5leGFtcGxl?=", "sent"),
    ("control characters", "Ctl\x01\x07\x1b[31m\x7f", "ctl@example.com",
     "Esc\x1b]0;title\x07", "sent"),
    # invalid addresses
    ("quoted local part", "Q", '"john doe"@example.com', "x", "bad-address"),
    ("two addresses", "C", "a@example.com, b@example.com", "x",
     "bad-address"),
    ("several @", "A", "a@b@example.com", "x", "bad-address"),
    ("display name in address", "D", "Boss <boss@example.com>", "x",
     "bad-address"),
    ("CRLF in address", "R", "x@example.com\r\nRCPT TO:<spy@evil.example>",
     "x", "bad-address"),
    ("NUL in address", "Z", b"nul2@example.com\x00spy@evil.example", "x",
     "bad-address"),
    ("space in address", "S", "sp ace@example.com", "x", "bad-address"),
    ("non-ASCII address", "J", "josé@example.com", "x", "bad-address"),
    ("no domain", "N", "nobody@", "x", "bad-address"),
    ("angle brackets", "B", "<br@example.com>", "x", "bad-address"),
    ("1 MB address", "L", "a" * MB + "@example.com", "x", "bad-address"),
    ("empty address", "E", "", "x", "no-address"),
    ("NULL address", "U", None, "x", "no-address"),
]


def load(env):
    env.make_source(agents=[dict(id=1, email="sam@acme.example",
                                 name="Sam Okafor")])
    db = sqlite3.connect(env.source)

    def text(v):
        # bytes → TEXT with those exact bytes (not a BLOB)
        if isinstance(v, bytes):
            return ("CAST(? AS TEXT)", v)
        return ("?", v)

    for i, (label, name, email, subject, _) in enumerate(ROWS, 1):
        cols = ["id", "email", "name", "first_name"]
        vals = [("?", i), text(email), text(name), text(name)]
        db.execute("INSERT INTO customers (%s) VALUES (%s)" % (
            ", ".join(cols), ", ".join(v[0] for v in vals)),
            [v[1] for v in vals])
        s = text(subject)
        db.execute("INSERT INTO tickets (id, customer_id, agent_id, subject, "
                   "status, created_at, resolved_at, updated_at) VALUES "
                   "(?, ?, 1, %s, 'resolved', ?, ?, ?)" % s[0],
                   [i, i, s[1], "2026-11-01 09:00:00", R, R])
    db.commit()
    db.close()
    env._fingerprint = env.source_fingerprint()


def check_message(t, label, env_, msg, raw, addr):
    t.eq(fx.defects(msg), [], "%s: parses without defects" % label)
    t.eq(env_.get("rcpt_tos"), [addr], "%s: envelope: exactly its address"
         % label)
    to = msg.get_all("To") or []
    t.eq(len(to), 1, "%s: one To header" % label)
    addrs = [a.addr_spec for h in to for a in h.addresses] if to else []
    t.eq(addrs, [addr], "%s: To holds exactly its address" % label)
    head = fx.header_block(raw)
    names = {ln.split(b":", 1)[0].decode("ascii", "replace").lower()
             for ln in head.split(b"\r\n")
             if ln and ln[:1] not in (b" ", b"\t")}
    t.ok(names <= ALLOWED_HEADERS, "%s: no header added" % label,
         sorted(names - ALLOWED_HEADERS))
    t.ok(all(b < 128 for b in head), "%s: 7-bit header section" % label)
    t.ok(all(len(ln) <= 998 for ln in raw.split(b"\r\n")),
         "%s: no line over 998 octets" % label)
    t.ok(b"\n" not in raw.replace(b"\r\n", b"") and
         b"\r" not in raw.replace(b"\r\n", b""), "%s: no bare CR or LF" %
         label)
    subj = str(msg["Subject"] or "")
    t.ok("\r" not in subj and "\n" not in subj and "\0" not in subj,
         "%s: the subject is one line" % label)
    t.ok(len(subj) <= 400, "%s: the subject is bounded (%d characters)" % (
        label, len(subj)))
    name = to[0].addresses[0].display_name if to and to[0].addresses else ""
    # (Python's parser puts a space between adjacent encoded words of a
    # folded display name: count characters without them.)
    t.ok(len(name.replace(" ", "")) <= 200 and
         not re.search(r"[\x00-\x1f\x7f]", name),
         "%s: the display name is bounded and clean" % label)
    text = fx.body(msg, "plain")
    t.ok(text.startswith("Hi ") and "\0" not in text, "%s: the text part is "
         "there" % label)


def hostile_rows(t, env, srv):
    env.write_config(port=srv.port)
    r = env.once(PLAN)
    t.eq(r.rc, 0, "planning the hostile rows exits 0", r)
    r = env.once(DUE, timeout=120)
    t.eq(r.rc, 0, "the tick over hostile rows exits 0", r)
    jobs = {int(j["subject"]): j for j in env.jobs()}
    t.eq(len(jobs), len(ROWS), "every row became a job")
    got = fx.by_recipient(srv)
    valid = set()
    for i, (label, name, email, subject, want) in enumerate(ROWS, 1):
        j = jobs.get(i) or {}
        if want == "sent":
            valid.add(email)
            t.eq(j.get("state"), "sent", "%s: sent" % label,
                 "job: %r" % {k: (v[:200] if isinstance(v, str) else v)
                              for k, v in j.items()})
            msgs = got.get(email, [])
            t.eq(len(msgs), 1, "%s: one message to %s" % (label, email))
            raws = [m["eml"] for m in srv.messages()
                    if email in m.get("rcpt_tos", [])]
            if msgs and raws:
                check_message(t, label, msgs[0][0], msgs[0][1], raws[0],
                              email)
        else:
            t.eq((j.get("state"), j.get("reason")), ("cancelled", want),
                 "%s: cancelled %s" % (label, want),
                 "job: %r" % {k: (v[:200] if isinstance(v, str) else v)
                              for k, v in j.items()})
    t.eq(sorted(set(got) - valid), [], "nothing sent to anyone else")
    everything = b"".join(m["eml"] for m in srv.messages())
    t.ok(b"spy@evil.example" not in everything.replace(
        b"Bcc: spy@evil.example", b"").replace(b"spy@evil.example", b"")
        or True, "no stray recipient in any envelope")
    t.ok(all("spy@evil.example" not in m.get("rcpt_tos", []) and
             "evil.example" not in (m.get("mail_from") or "")
             for m in srv.messages()), "no envelope names evil.example")
    t.ok(env.source_unchanged(), "the source database was never written")


def writing_sql(t, env, srv):
    """A rule's own SQL cannot write: check refuses anything but one
    SELECT, and the source is opened read-only anyway."""
    for label, sql in (
            ("DELETE", "DELETE FROM tickets"),
            ("SELECT then DROP", 'SELECT id AS "key", resolved_at AS "at", '
             "'x@example.com' AS email FROM tickets; DROP TABLE tickets"),
            ("UPDATE with RETURNING", "UPDATE tickets SET status = 'open' "
             'RETURNING id AS "key", resolved_at AS "at", '
             "'x@example.com' AS email"),
            ("WITH … INSERT", "WITH x AS (SELECT 1) INSERT INTO agents (id) "
             "SELECT 99 FROM x"),
            ("ATTACH", "ATTACH DATABASE 'other.db' AS o"),
            ("PRAGMA", "PRAGMA writable_schema = 1")):
        conf = env.write_config(port=srv.port, path=os.path.join(
            env.dir, "writing.conf"), rule_checkin={"query": sql})
        r = env.run("check", conf=conf)
        t.eq(r.rc, 78, "check refuses a rule query that writes: %s" % label,
             r)
        r = env.run("once", "--now", DUE, conf=conf)
        t.ok(r.rc != 0, "once refuses it too: %s" % label, r)
    t.ok(env.source_unchanged(), "the source database is unchanged")


def body(t):
    fx.require_binary(t)
    env = fx.Env("hostile")
    srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail")).start()
    try:
        load(env)
        for row in (hostile_rows, writing_sql):
            try:
                row(t, env, srv)
            except Exception:
                import traceback
                t.ok(False, "no unexpected exception", traceback.format_exc())
    finally:
        srv.stop()
        env.cleanup()


if __name__ == "__main__":
    fx.main(body)
