#!/usr/bin/python3
"""test_birthday: birthday notes end to end, every message parsed back with
Python's email package.

- 29 February across 2027 (a common year: the 28th with feb29 = feb28, the
  1st of March with feb29 = mar1) and 2028 (the 29th): exactly one message
  a year, never twice, never skipped, even with a tick every few hours and
  a daemon that was down on the day;
- a birthday without a year ('--MM-DD') at send_at in the customer's zone;
- per-locale templates: de (a whole set), fr (text only), pt-BR (no folder:
  the default English), with locale dates;
- every message: List-Unsubscribe (https URL with a token + mailto) and
  List-Unsubscribe-Post (RFC 8058), and a visible unsubscribe link in both
  parts.
"""

import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

UNSUB = "https://unsub.acme.example/unsubscribe"
CUSTOMERS = [
    # 09:00 Berlin = 08:00 UTC in winter
    dict(id=1, email="lea@example.de", name="Lea Wolf", first_name="Lea",
         locale="de-DE", timezone="Europe/Berlin", birthday="1996-02-29",
         customer_since="2020-01-01 10:00:00"),
    # no year: 09:00 New York = 13:00 UTC in July
    dict(id=2, email="sam@example.com", name="Sam Reed", first_name="Sam",
         locale="en-US", timezone="America/New_York", birthday="--07-14"),
    dict(id=3, email="zoe@example.fr", name="Zoë Lefèvre", first_name="Zoë",
         locale="fr-FR", timezone="Europe/Paris", birthday="1990-03-10"),
    dict(id=4, email="joao@example.br", name="João Silva", first_name="João",
         locale="pt-BR", timezone="America/Sao_Paulo",
         birthday="1985-03-10"),
    # not a date: skipped, never fatal
    dict(id=5, email="bad@example.com", name="Bad Date", birthday="14/03"),
]


def config(env, srv, feb29, extra=None):
    rule = {"kind": "birthday", "template": "birthday", "send_at": "09:00",
            "feb29": feb29}
    rule.update(extra or {})
    env.write_config(port=srv.port, rule_checkin=None, rule_birthday=rule,
                     unsubscribe={"url": UNSUB,
                                  "mailto": "unsubscribe@acme.example"})


def ticks(env, days, hours=("07:30:00", "08:30:00", "14:00:00")):
    for d in days:
        for h in hours:
            r = env.once("%s %s" % (d, h))
            if r.rc != 0:
                return r
    return None


def days(year, month_from, day_from, n):
    import datetime
    d0 = datetime.date(year, month_from, day_from)
    return [(d0 + datetime.timedelta(days=i)).isoformat() for i in range(n)]


def sent_to(env, addr):
    return [j for j in env.jobs("birthday")
            if (j["recipient"] or j["email"]) == addr]


def check_unsubscribe(t, msg, who):
    lu = msg["List-Unsubscribe"]
    t.ok(lu is not None, "%s: List-Unsubscribe present" % who)
    if lu is None:
        return None
    urls = re.findall(r"<([^>]*)>", str(lu))
    https = [u for u in urls if u.startswith("https://")]
    mailto = [u for u in urls if u.startswith("mailto:")]
    t.eq(len(https), 1, "%s: one https URL" % who, lu)
    t.eq(len(mailto), 1, "%s: one mailto" % who, lu)
    t.eq(str(msg["List-Unsubscribe-Post"]), "List-Unsubscribe=One-Click",
         "%s: List-Unsubscribe-Post: List-Unsubscribe=One-Click" % who)
    if not https:
        return None
    u = urllib.parse.urlsplit(https[0])
    t.eq("%s://%s%s" % (u.scheme, u.netloc, u.path), UNSUB,
         "%s: the URL is [unsubscribe] url" % who)
    token = urllib.parse.parse_qs(u.query).get("t", [""])[0]
    t.ok(re.fullmatch(r"[A-Za-z0-9_-]+\.marketing\.[A-Za-z0-9_-]{43}", token),
         "%s: a signed marketing token" % who, token)
    t.ok(mailto and mailto[0].startswith("mailto:unsubscribe@acme.example"),
         "%s: mailto is [unsubscribe] mailto" % who, mailto)
    text = fx.body(msg, "plain")
    t.ok(https[0] in text, "%s: the text part shows the link" % who)
    if msg.get_body(preferencelist=("html",)) is not None:
        html = fx.body(msg, "html")
        t.ok(('href="%s"' % https[0]) in html,
             "%s: the HTML part links it" % who)
    return https[0]


def scenario_feb29(t, feb29, expect_2027):
    with fx.Env("birthday-" + feb29) as env, fx.SmtpServer() as srv:
        env.make_source(customers=CUSTOMERS)
        config(env, srv, feb29)
        r = env.run("check")
        t.eq(r.rc, 0, "[%s] check accepts the birthday rule" % feb29, r)
        # A tick every few hours around 29 Feb 2027 and 2028.
        r = ticks(env, days(2027, 2, 24, 9) + days(2028, 2, 24, 9))
        t.ok(r is None, "[%s] every tick exits 0" % feb29, r)
        lea = [j for j in sent_to(env, "lea@example.de")]
        got = [(j["occurrence"], fx.sqltime(j["due_at"]), j["state"])
               for j in lea]
        t.eq(got, [("2027", expect_2027 + " 08:00:00", "sent"),
                   ("2028", "2028-02-29 08:00:00", "sent")],
             "[%s] 29 Feb: one message in 2027 (%s) and one in 2028 (the "
             "29th), 09:00 Berlin" % (feb29, expect_2027))
        msgs = fx.by_recipient(srv).get("lea@example.de", [])
        t.eq(len(msgs), 2, "[%s] the relay got exactly two" % feb29)
        if msgs:
            _, m = msgs[0]
            t.eq(fx.defects(m), [], "[%s] no MIME defects" % feb29)
            t.ok(str(m["Subject"]).startswith("Alles Gute zum Geburtstag, "
                                              "Lea"),
                 "[%s] de-DE gets templates/birthday/de" % feb29, m["Subject"])
            check_unsubscribe(t, m, "[%s] lea" % feb29)
            t.ok("28. Februar 2027" in fx.body(m, "plain") or
                 "1. März 2027" in fx.body(m, "plain"),
                 "[%s] a German date in the text" % feb29,
                 fx.body(m, "plain"))
        # Down on the day: the next tick (within lookback) still sends it.
        return env


def scenario_down(t):
    with fx.Env("birthday-down") as env, fx.SmtpServer() as srv:
        env.make_source(customers=CUSTOMERS[:1])
        config(env, srv, "feb28")
        r = env.once("2027-03-02 12:00:00", vg=True)
        t.eq(r.rc, 0, "down over the birthday: the tick two days later "
             "exits 0", r)
        jobs = sent_to(env, "lea@example.de")
        t.eq([(j["occurrence"], j["state"]) for j in jobs], [("2027", "sent")],
             "down over the birthday: sent late, not skipped (lookback)")
        r = env.once("2027-03-03 12:00:00")
        t.eq(len(sent_to(env, "lea@example.de")), 1, "and only once")


def scenario_locales(t):
    with fx.Env("birthday-locale") as env, fx.SmtpServer() as srv:
        env.make_source(customers=CUSTOMERS)
        config(env, srv, "feb28", {"code": "BDAY-{{customer.id}}-"
                                           "{{code.random}}",
                                   "code_length": "6"})
        r = ticks(env, ["2027-03-09", "2027-03-10", "2027-07-13",
                        "2027-07-14"])
        t.ok(r is None, "locale ticks exit 0", r)
        by = fx.by_recipient(srv)
        # --MM-DD: 09:00 in New York, no age known.
        sam = [j for j in sent_to(env, "sam@example.com")]
        t.eq([(j["occurrence"], fx.sqltime(j["due_at"]), j["state"])
              for j in sam], [("2027", "2027-07-14 13:00:00", "sent")],
             "--07-14: sent on 14 July at 09:00 New York time")
        zoe = by.get("zoe@example.fr", [])
        t.eq(len(zoe), 1, "fr-FR: one message")
        if zoe:
            m = zoe[0][1]
            t.ok(str(m["Subject"]).startswith("Joyeux anniversaire, Zoë"),
                 "fr-FR gets templates/birthday/fr", m["Subject"])
            t.eq(m.get_content_type(), "text/plain",
                 "fr has no html.mustache: text only, no English HTML")
            t.ok("10 mars 2027" in fx.body(m, "plain"),
                 "a French date", fx.body(m, "plain"))
            check_unsubscribe(t, m, "zoe")
            code = re.search(r"BDAY-3-([A-Z2-9]{6})", fx.body(m, "plain"))
            t.ok(code, "the personal code in the text", fx.body(m, "plain"))
            r = env.run("codes", "birthday")
            t.eq(r.rc, 0, "codes birthday exits 0", r)
            t.ok(code and code.group(0) in r.stdout,
                 "`codes birthday` lists it", r.stdout)
            r = env.run("preview", "birthday", "3", "--now",
                        "2027-03-11 10:00:00", vg=True)
            t.ok(code and code.group(0) in r.stdout,
                 "preview shows the same stored code", r)
        joao = by.get("joao@example.br", [])
        t.eq(len(joao), 1, "pt-BR: one message")
        if joao:
            m = joao[0][1]
            t.ok(str(m["Subject"]).startswith("Happy birthday, João"),
                 "pt-BR (no folder) falls back to the default template",
                 m["Subject"])
            t.eq(m.get_content_type(), "multipart/alternative",
                 "the default set has html")
            check_unsubscribe(t, m, "joao")
        sm = by.get("sam@example.com", [])
        if sm:
            check_unsubscribe(t, sm[0][1], "sam")
        bad = env.jobs("birthday")
        t.ok(all(j["subject"] != "5" for j in bad),
             "a birthday that is not a date plans nothing")
        t.ok(env.source_unchanged(), "the source database was not written")


def body(t):
    fx.require_binary(t)
    scenario_feb29(t, "feb28", "2027-02-28")
    scenario_feb29(t, "mar1", "2027-03-01")
    scenario_down(t)
    scenario_locales(t)


if __name__ == "__main__":
    fx.main(body)
