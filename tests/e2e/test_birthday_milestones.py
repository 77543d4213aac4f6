#!/usr/bin/python3
"""test_birthday_milestones: anniversaries and loyalty milestones, once each.

- anniversary, years = 1, 5, 10: one message in the 1st and the 5th year
  after customer_since, none in between, {{years}} in the subject; `every
  year` sends one a year; a customer who joined on 29 February;
- loyalty: min_purchases = 3 and min_total = 100.00 EUR rules: one message
  when the purchase that reaches the milestone is made, none after more
  purchases; the customer's history in the message with amounts and dates
  in the customer's locale (en, de); a milestone reached long before
  (beyond lookback) sends nothing.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

UNSUB = {"url": "https://unsub.acme.example/unsubscribe"}


def occ(env, rule, cid):
    return [(j["occurrence"], j["state"]) for j in env.jobs(rule)
            if j["subject"] == str(cid)]


def scenario_anniversary(t):
    customers = [
        dict(id=1, email="ana@example.com", name="Ana", first_name="Ana",
             timezone="UTC", customer_since="2022-03-10 12:00:00"),
        # joined on 29 Feb: 28 Feb in common years (feb29 = feb28)
        dict(id=2, email="kai@example.com", name="Kai", first_name="Kai",
             timezone="Asia/Tokyo", customer_since="2024-02-28 20:00:00"),
    ]
    with fx.Env("anniversary") as env, fx.SmtpServer() as srv:
        env.make_source(customers=customers)
        env.write_config(
            port=srv.port, unsubscribe=UNSUB, rule_checkin=None,
            rule_milestones={"kind": "anniversary", "years": "1, 5, 10",
                             "template": "anniversary", "send_at": "09:00"},
            rule_yearly={"kind": "anniversary", "years": "every year",
                         "template": "anniversary", "send_at": "10:00"})
        r = env.run("check")
        t.eq(r.rc, 0, "check accepts two anniversary rules", r)
        for y in range(2023, 2029):
            for when in ("%d-02-27 12:00:00", "%d-02-28 12:00:00",
                         "%d-02-29 12:00:00", "%d-03-09 12:00:00",
                         "%d-03-10 12:00:00", "%d-03-11 12:00:00"):
                if when.startswith("%d-02-29") and y % 4:
                    continue
                r = env.once(when % y)
                if r.rc != 0:
                    t.ok(False, "tick %s exits 0" % (when % y), r)
        t.eq(occ(env, "milestones", 1), [("2023", "sent"), ("2027", "sent")],
             "years = 1, 5, 10: the 1st and the 5th anniversary, once each")
        t.eq(occ(env, "yearly", 1),
             [(str(y), "sent") for y in range(2023, 2029)],
             "every year: one a year")
        # Kai joined 2024-02-29 05:00 in Tokyo (28 Feb 20:00 UTC).
        t.eq(occ(env, "yearly", 2),
             [(str(y), "sent") for y in range(2025, 2029)],
             "joined on 29 Feb: one a year from 2025")
        due = [fx.sqltime(j["due_at"]) for j in env.jobs("yearly")
               if j["subject"] == "2"]
        t.eq(due, ["2025-02-28 01:00:00", "2026-02-28 01:00:00",
                   "2027-02-28 01:00:00", "2028-02-29 01:00:00"],
             "on 28 Feb in common years, 29 Feb in 2028, 10:00 Tokyo")
        subjects = sorted(str(m["Subject"]) for rc, ms in
                          fx.by_recipient(srv).items() if rc ==
                          "ana@example.com" for _, m in ms)
        t.ok("5 years with Acme Support: thank you, Ana!" in subjects,
             "{{years}} in the subject", subjects)
        for _, ms in fx.by_recipient(srv).items():
            for _, m in ms:
                t.eq(fx.defects(m), [], "no MIME defects: %s" % m["Subject"])
                break


def scenario_loyalty(t):
    customers = [
        dict(id=1, email="ana@example.com", name="Ana", first_name="Ana",
             locale="en-GB", timezone="UTC",
             customer_since="2020-05-02 10:00:00"),
        dict(id=2, email="lea@example.de", name="Lea", first_name="Lea",
             locale="de-DE", timezone="Europe/Berlin",
             customer_since="2021-01-01 10:00:00"),
        # reached both milestones in 2020: before lookback, nothing sent
        dict(id=3, email="old@example.com", name="Old", timezone="UTC"),
    ]
    purchases = [
        dict(id=1, customer_id=1, item="Kettle", amount_cents=3450,
             currency="EUR", purchased_at="2027-01-10 10:00:00"),
        dict(id=2, customer_id=1, item="Teapot", amount_cents=4550,
             currency="EUR", purchased_at="2027-02-10 10:00:00"),
        dict(id=3, customer_id=2, item="Mühle", amount_cents=123456,
             currency="EUR", purchased_at="2027-02-11 10:00:00"),
    ] + [dict(id=10 + i, customer_id=3, item="Old %d" % i,
              amount_cents=9000, currency="EUR",
              purchased_at="2020-01-0%d 10:00:00" % (i + 1))
         for i in range(3)]
    with fx.Env("loyalty") as env, fx.SmtpServer() as srv:
        env.make_source(customers=customers, purchases=purchases)
        env.write_config(
            port=srv.port, unsubscribe=UNSUB, rule_checkin=None,
            rule_third={"kind": "loyalty", "min_purchases": "3",
                        "template": "loyalty", "code": "random",
                        "code_length": "10"},
            rule_hundred={"kind": "loyalty", "min_total": "10000",
                          "currency": "EUR", "template": "loyalty"})
        r = env.run("check")
        t.eq(r.rc, 0, "check accepts loyalty rules", r)
        r = env.once("2027-02-15 12:00:00")
        t.eq(r.rc, 0, "tick exits 0", r)
        t.eq(occ(env, "third", 1), [], "two purchases: no milestone yet")
        t.eq(occ(env, "hundred", 2), [("10000 EUR", "sent")],
             "Lea's 1234.56 EUR: the 100.00 EUR milestone, sent")
        t.eq(occ(env, "hundred", 1), [], "Ana's 80.00 EUR: not yet")
        # The third purchase reaches both milestones.
        env.desk("INSERT INTO purchases (id, customer_id, item, amount_cents, "
                 "currency, purchased_at) VALUES (4, 1, 'Cups', 2500, 'EUR', "
                 "'2027-03-01 10:00:00')")
        env.once("2027-03-01 12:00:00")
        t.eq(occ(env, "third", 1), [("3 purchases", "sent")],
             "the third purchase: 3 purchases milestone sent")
        t.eq(occ(env, "hundred", 1), [("10000 EUR", "sent")],
             "and the 100.00 EUR one (105.00 EUR in all)")
        # More purchases: nothing more.
        env.desk("INSERT INTO purchases (id, customer_id, item, amount_cents, "
                 "currency, purchased_at) VALUES (5, 1, 'Tray', 1000, 'EUR', "
                 "'2027-03-05 10:00:00')")
        env.once("2027-03-05 12:00:00")
        env.once("2027-03-20 12:00:00")
        t.eq(len(env.jobs("third")) + len(env.jobs("hundred")), 3,
             "a milestone is sent once per customer, whatever comes after")
        t.eq(occ(env, "third", 3) + occ(env, "hundred", 3), [],
             "a milestone reached years ago (beyond lookback): nothing")
        by = fx.by_recipient(srv)
        ana = [m for _, m in by.get("ana@example.com", [])]
        t.eq(len(ana), 2, "Ana got two loyalty notes")
        texts = "\n".join(fx.body(m, "plain") for m in ana)
        t.ok("€105.00" in texts and "€25.00" in texts and
             "1 March 2027" in texts,
             "en: the history with €1,234.50-style amounts and dates", texts)
        lea = [m for _, m in by.get("lea@example.de", [])]
        if lea:
            text = fx.body(lea[0], "plain")
            t.ok("1.234,56\u00a0€" in text and "11. Februar 2027" in text,
                 "de: 1.234,56 € and 11. Februar 2027", text)
            t.ok(str(lea[0]["Subject"]).startswith("Danke für Ihre Treue"),
                 "de: templates/loyalty/de", lea[0]["Subject"])
        r = env.run("codes", "third")
        lines = r.stdout.strip().splitlines()
        t.ok(r.rc == 0 and len(lines) == 2 and
             lines[0].startswith("code\tsubject"),
             "codes third: a header and one code", r)
        if len(lines) == 2:
            code = lines[1].split("\t")[0]
            t.ok(len(code) == 10 and code in texts,
                 "the random code is in Ana's message", (code, texts))
            t.ok("ana@example.com" in lines[1] and "\tsent\t" in lines[1],
                 "codes lists recipient and state", lines[1])


def body(t):
    fx.require_binary(t)
    scenario_anniversary(t)
    scenario_loyalty(t)


if __name__ == "__main__":
    fx.main(body)
