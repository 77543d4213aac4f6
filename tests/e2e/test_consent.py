#!/usr/bin/python3
"""test_consent: opt-outs, frequency caps, hard bounces and `why`, end to end.

- an opt-out of marketing made before planning, after planning (at render)
  and after queueing (the relay was down: cancelled just before the
  retry), each cancelled with reason opted-out and never mailed; the same
  customer still gets transactional mail (a check-in);
- `optout add|remove|list`;
- [defaults] max_marketing = 2/7d: the third marketing message in a week
  is dropped (over_cap = drop) or postponed until the cap allows it
  (over_cap = postpone), the reason recorded;
- a hard bounce (550 on RCPT) suppresses the address for every class
  until `optout remove EMAIL --class suppressed`;
- `why EMAIL` and `why CUSTOMER_ID` explain each decision.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

UNSUB = {"url": "https://unsub.acme.example/unsubscribe"}


def birthday_rule(**kw):
    r = {"kind": "birthday", "template": "birthday", "send_at": "09:00"}
    r.update(kw)
    return r


def states(env, rule, addr):
    return [(j["state"], j["reason"]) for j in env.jobs(rule)
            if (j["recipient"] or j["email"]) == addr]


def scenario_optout(t):
    customers = [
        dict(id=1, email="before@example.com", name="Bea Fore",
             timezone="UTC", birthday="1990-03-10"),
        dict(id=2, email="planned@example.com", name="Pia Planned",
             timezone="UTC", birthday="1990-03-10"),
        dict(id=3, email="queued@example.com", name="Quinn Queued",
             timezone="UTC", birthday="1990-03-10"),
        dict(id=4, email="control@example.com", name="Cory Control",
             timezone="UTC", birthday="1990-03-10"),
    ]
    tickets = [dict(id=10, customer_id=1, subject="Printer", status="resolved",
                    created_at="2027-03-01 09:00:00",
                    resolved_at="2027-03-07 09:00:00")]
    with fx.Env("consent-optout") as env, fx.SmtpServer() as srv:
        env.make_source(customers=customers, tickets=tickets)
        env.write_config(port=srv.port, unsubscribe=UNSUB,
                         rule_birthday=birthday_rule())
        r = env.run("optout", "add", "BEFORE@example.com", "--reason",
                    "asked by phone")
        t.eq(r.rc, 0, "optout add exits 0", r)
        t.ok("opted out for marketing mail" in r.stdout,
             "optout add: marketing by default", r.stdout)
        r = env.run("optout", "list")
        t.ok("BEFORE@example.com\tmarketing" in r.stdout and
             "asked by phone" in r.stdout, "optout list shows it", r.stdout)

        # The day before: every birthday is planned.
        r = env.once("2027-03-09 10:00:00")
        t.eq(r.rc, 0, "planning tick exits 0", r)
        t.eq(len(env.jobs("birthday")), 4, "four birthday jobs planned "
             "(an opt-out does not hide the customer from `why`)")
        r = env.run("optout", "add", "planned@example.com")
        t.eq(r.rc, 0, "opt-out after planning", r)

        # The relay is down for Quinn only: Quinn's message is queued and
        # deferred; then Quinn opts out; the retry is cancelled.
        srv.restart(faults=["rcpt:queued:451"])
        r = env.once("2027-03-10 09:00:00")
        t.eq(r.rc, 0, "birthday tick exits 0", r)
        t.eq(states(env, "birthday", "before@example.com"),
             [("cancelled", "opted-out")],
             "opted out before planning: cancelled at render (opted-out)")
        t.eq(states(env, "birthday", "planned@example.com"),
             [("cancelled", "opted-out")],
             "opted out after planning: cancelled at render (opted-out)")
        t.eq(states(env, "birthday", "queued@example.com"),
             [("deferred", None)], "Quinn's message was queued, deferred")
        t.eq(states(env, "birthday", "control@example.com"),
             [("sent", None)], "the control customer got hers")
        r = env.run("optout", "add", "queued@example.com", "--class", "all")
        t.eq(r.rc, 0, "opt-out (all) after queueing", r)
        srv.restart(faults=[])
        r = env.once("2027-03-10 11:00:00")
        t.eq(states(env, "birthday", "queued@example.com"),
             [("cancelled", "opted-out")],
             "opted out after queueing: cancelled just before delivery")
        rcpts = set(r for r, ms in fx.by_recipient(srv).items()
                    for _, m in ms if "birthday" in str(m["Subject"]))
        t.eq(rcpts, {"control@example.com"},
             "no opted-out address ever got a birthday note")
        # Transactional mail still goes to a marketing opt-out.
        t.eq(states(env, "checkin", "before@example.com"), [("sent", None)],
             "a marketing opt-out still gets the (transactional) check-in")

        r = env.run("why", "planned@example.com")
        t.eq(r.rc, 0, "why EMAIL exits 0", r)
        t.ok("birthday (marketing)" in r.stdout and
             "cancelled because opted-out" in r.stdout and
             "opted out of marketing" in r.stdout,
             "why: the job, its decision and the opt-out", r.stdout)
        r = env.run("why", "1")
        t.ok("checkin (transactional)" in r.stdout and "sent at" in r.stdout
             and "birthday (marketing)" in r.stdout,
             "why CUSTOMER_ID: the check-in sent and the birthday cancelled",
             r.stdout)
        r = env.run("why", "nobody@example.com")
        t.eq(r.rc, 66, "why for an unknown address: 66", r)

        r = env.run("optout", "remove", "planned@example.com")
        t.ok(r.rc == 0 and "1 opt-out removed" in r.stdout,
             "optout remove", r)
        r = env.run("optout", "add", "x@example.com", "--class", "spam")
        t.eq(r.rc, 64, "optout add --class spam: usage error", r)
        t.ok(env.source_unchanged(), "the source database was not written")


def scenario_caps(t):
    customers = [
        # A: birthday, anniversary (5 years) and loyalty all on 10 March
        dict(id=1, email="ann@example.com", name="Ann", timezone="UTC",
             birthday="1990-03-10", customer_since="2022-03-10 12:00:00"),
        # B: loyalty on 9 March, then birthday and anniversary on the 10th
        dict(id=2, email="ben@example.com", name="Ben", timezone="UTC",
             birthday="1990-03-10", customer_since="2022-03-10 12:00:00"),
    ]
    purchases = [
        dict(id=1, customer_id=1, item="Kettle", amount_cents=3450,
             currency="EUR", purchased_at="2026-12-01 10:00:00"),
        dict(id=2, customer_id=1, item="Teapot", amount_cents=5000,
             currency="EUR", purchased_at="2027-03-10 09:30:00"),
        dict(id=3, customer_id=2, item="Mug", amount_cents=1200,
             currency="EUR", purchased_at="2027-01-05 10:00:00"),
        dict(id=4, customer_id=2, item="Cup", amount_cents=900,
             currency="EUR", purchased_at="2027-03-09 07:00:00"),
    ]
    with fx.Env("consent-caps") as env, fx.SmtpServer() as srv:
        env.make_source(customers=customers, purchases=purchases)
        env.write_config(
            port=srv.port, unsubscribe=UNSUB, rule_checkin=None,
            defaults={"max_marketing": "2/7d"},
            rule_birthday=birthday_rule(),
            rule_anniversary={"kind": "anniversary", "years": "1, 5, 10",
                              "send_at": "09:00", "over_cap": "postpone"},
            rule_loyalty={"kind": "loyalty", "min_purchases": "2",
                          "over_cap": "drop"})
        r = env.run("check")
        t.eq(r.rc, 0, "check accepts max_marketing and over_cap", r)
        for now in ("2027-03-09 08:00:00", "2027-03-09 10:00:00",
                    "2027-03-10 10:00:00"):
            r = env.once(now)
            t.eq(r.rc, 0, "tick %s exits 0" % now, r)
        t.eq(states(env, "loyalty", "ann@example.com"),
             [("cancelled", "over-cap")],
             "Ann's third marketing message (loyalty, drop) is dropped")
        lj = [j for j in env.jobs("loyalty") if j["email"] ==
              "ann@example.com"]
        ev = env.events(lj[0]["id"]) if lj else []
        t.ok(any("max_marketing = 2/7d" in (e["detail"] or "") for e in ev),
             "the drop names the cap", ev)
        ben = states(env, "anniversary", "ben@example.com")
        t.eq(ben, [("planned", None)],
             "Ben's third (anniversary, postpone) waits, still planned")
        aj = [j for j in env.jobs("anniversary")
              if j["email"] == "ben@example.com"]
        if aj:
            t.eq(fx.sqltime(aj[0]["due_at"]), "2027-03-16 08:00:01",
                 "postponed until the first of the two leaves the window")
            ev = env.events(aj[0]["id"])
            t.ok(any(e["event"] == "postponed" and "over cap 2/7d" in
                     (e["detail"] or "") for e in ev),
                 "the postponement names the cap", ev)
        r = env.once("2027-03-16 09:00:00")
        t.eq(states(env, "anniversary", "ben@example.com"), [("sent", None)],
             "sent once the cap allows it")
        msgs = fx.by_recipient(srv)
        t.eq(len(msgs.get("ann@example.com", [])), 2, "Ann got two")
        t.eq(len(msgs.get("ben@example.com", [])), 3, "Ben got three in all")
        for _, m in msgs.get("ben@example.com", []):
            if "years with" in str(m["Subject"]):
                t.ok(str(m["Subject"]).startswith("5 years with"),
                     "anniversary: {{years}} is 5", m["Subject"])
        r = env.run("why", "ann@example.com")
        t.ok("cancelled because over-cap" in r.stdout,
             "why shows the drop", r.stdout)
        r = env.run("why", "ben@example.com")
        t.ok("postponed: over cap 2/7d" in r.stdout,
             "why shows the postponement", r.stdout)


def scenario_bounce(t):
    customers = [dict(id=1, email="gone@example.com", name="Gone",
                      timezone="UTC", birthday="1990-03-10")]
    tickets = [dict(id=10, customer_id=1, subject="Printer", status="resolved",
                    created_at="2027-03-01 09:00:00",
                    resolved_at="2027-03-04 09:00:00")]
    with fx.Env("consent-bounce") as env, \
            fx.SmtpServer(faults=["rcpt:gone:550"]) as srv:
        env.make_source(customers=customers, tickets=tickets)
        env.write_config(port=srv.port, unsubscribe=UNSUB,
                         rule_birthday=birthday_rule())
        r = env.once("2027-03-07 10:00:00")
        t.eq(states(env, "checkin", "gone@example.com"),
             [("failed", "rejected")], "the check-in bounced (550 on RCPT)")
        r = env.run("optout", "list")
        t.ok("gone@example.com\tsuppressed" in r.stdout,
             "optout list shows the suppression", r.stdout)
        env.once("2027-03-09 10:00:00")
        env.once("2027-03-10 10:00:00")
        t.eq(states(env, "birthday", "gone@example.com"),
             [("cancelled", "suppressed")],
             "a hard bounce suppresses marketing mail too")
        r = env.run("optout", "remove", "gone@example.com", "--class",
                    "suppressed")
        t.ok(r.rc == 0 and "1 suppression removed" in r.stdout,
             "optout remove --class suppressed lifts it", r)
        srv.restart(faults=[])
        env.desk("INSERT INTO tickets (id, customer_id, subject, status, "
                 "created_at, resolved_at) VALUES (11, 1, 'Scanner', "
                 "'resolved', '2027-03-08 09:00:00', '2027-03-08 10:00:00')")
        env.once("2027-03-11 11:00:00")
        t.eq(states(env, "checkin", "gone@example.com")[-1], ("sent", None),
             "after removal mail goes again")


def scenario_config(t):
    """`check` names each bad consent or birthday key by file and line."""
    cases = [
        ({"rule_birthday": birthday_rule()}, None,
         "is marketing mail: set [unsubscribe] url"),
        ({"rule_birthday": birthday_rule(), "unsubscribe":
          {"url": "http://unsub.example/u"}}, None, "an https URL"),
        ({"rule_birthday": birthday_rule(send_at="9am"), "unsubscribe": UNSUB},
         None, "send_at: '9am': write a local time HH:MM"),
        ({"rule_birthday": birthday_rule(feb29="mar2"), "unsubscribe": UNSUB},
         None, "feb29: unknown value 'mar2' (allowed: feb28, mar1)"),
        ({"rule_a": {"kind": "anniversary", "years": "1, 1"},
          "unsubscribe": UNSUB}, None, "years: '1, 1'"),
        ({"rule_birthday": birthday_rule(), "unsubscribe": UNSUB,
          "defaults": {"max_marketing": "2 per week"}}, None,
         "max_marketing: '2 per week': write N/DURATION"),
        ({"rule_l": {"kind": "loyalty"}, "unsubscribe": UNSUB}, None,
         "a loyalty rule needs min_purchases, min_total or its own query"),
        ({"rule_l": {"kind": "loyalty", "min_total": "100",
                     "currency": "euro"}, "unsubscribe": UNSUB}, None,
         "currency: 'euro' is not an ISO 4217 code"),
        ({"rule_birthday": birthday_rule(code="{{#oops}}"),
          "unsubscribe": UNSUB}, None, "[rule birthday] code"),
        ({"rule_birthday": birthday_rule(code_alphabet="AA"),
          "unsubscribe": UNSUB}, None, "code_alphabet: 'AA'"),
        ({"rule_checkin": {"kind": "after_resolution", "delay": None}},
         None, "missing required key 'delay' in [rule checkin]"),
        ({"rule_checkin": {"kind": "after_resolution", "delay": "3d",
                           "class": "marketing"}}, None,
         "[rule checkin] is marketing mail"),
    ]
    with fx.Env("consent-config") as env:
        env.make_source()
        for sections, _, want in cases:
            env.write_config(port=25, **sections)
            r = env.run("check")
            t.ok(r.rc == 78 and want in r.stderr and "scheduler.conf:" in
                 r.stderr, "check: %s" % want, r)
        env.write_config(port=25, rule_birthday=birthday_rule(),
                         unsubscribe=UNSUB)
        os.makedirs(env.queue, mode=0o700)
        key = os.path.join(env.queue, "unsubscribe.key")
        with open(key, "w") as f:
            f.write("x" * 40 + "\n")
        os.chmod(key, 0o644)
        r = env.run("check")
        t.ok(r.rc == 78 and "chmod 600" in r.stderr,
             "check refuses a secret readable by others", r)
        os.chmod(key, 0o600)
        r = env.run("check")
        t.eq(r.rc, 0, "and accepts it at 0600", r)


def body(t):
    fx.require_binary(t)
    scenario_config(t)
    scenario_optout(t)
    scenario_caps(t)
    scenario_bounce(t)


if __name__ == "__main__":
    fx.main(body)
