#!/usr/bin/python3
"""test_feed_names: one calendar feed file per agent, whatever the address.

Agents a/b@acme.example and a_b@acme.example used to share one file (every
character outside [A-Za-z0-9@._-] became '_'), the second overwriting the
first. Names are now percent-encoded, one to one: each agent's file holds
that agent's reminder. The temporary file is created O_EXCL|O_NOFOLLOW: a
symlink planted at its name is not followed.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

AGENTS = [dict(id=1, email="a/b@acme.example", name="Slash",
               timezone="UTC"),
          dict(id=2, email="a_b@acme.example", name="Underscore",
               timezone="UTC")]
CUSTOMERS = [dict(id=1, email="ana@example.com", name="Ana",
                  first_name="Ana", timezone="UTC")]
TICKETS = [dict(id=7, customer_id=1, agent_id=1, subject="Seven",
                status="pending", created_at="2026-11-01 09:00:00",
                updated_at="2026-11-02 10:00:00"),
           dict(id=8, customer_id=1, agent_id=2, subject="Eight",
                status="pending", created_at="2026-11-01 09:00:00",
                updated_at="2026-11-02 10:00:00")]


def attendees(path):
    with open(path, "rb") as f:
        _, _, events = fx.parse_ics(f.read())
    return sorted(str(e["ATTENDEE"]).lower() for e in events)


def body(t):
    fx.require_binary(t)
    with fx.Env("feed-names") as env, fx.SmtpServer() as srv:
        env.make_source(agents=AGENTS, customers=CUSTOMERS, tickets=TICKETS)
        env.write_config(port=srv.port, rule_checkin=None,
                         calendar={"feed": "feeds"},
                         rule_callback={"kind": "agent_reminder",
                                        "delay": "1d",
                                        "template": "reminder"})
        feeds = os.path.join(env.dir, "feeds")
        os.makedirs(feeds, 0o750)
        # Planted where the temporary file of a_b's feed goes.
        victim = os.path.join(env.dir, "victim")
        with open(victim, "w") as f:
            f.write("untouched\n")
        os.symlink(victim, os.path.join(feeds, ".a_b@acme.example.ics.tmp"))

        r = env.once("2026-11-02 12:00:00")
        t.eq(r.rc, 0, "the tick exits 0", r)
        names = sorted(n for n in os.listdir(feeds) if n.endswith(".ics"))
        t.eq(names, ["a%2Fb@acme.example.ics", "a_b@acme.example.ics"],
             "two agents, two files (a/b percent-encoded)")
        for name, who in (("a%2Fb@acme.example.ics", "a/b@acme.example"),
                          ("a_b@acme.example.ics", "a_b@acme.example")):
            path = os.path.join(feeds, name)
            if os.path.exists(path):
                t.eq(attendees(path), ["mailto:" + who],
                     "%s holds %s's reminder only" % (name, who))
        with open(victim) as f:
            t.eq(f.read(), "untouched\n",
                 "the symlink at the temporary name was not followed")

        # The next tick rewrites both, and names no third agent.
        env.desk("UPDATE tickets SET status = 'resolved', resolved_at = "
                 "'2026-11-02 13:00:00', updated_at = '2026-11-02 13:00:00' "
                 "WHERE id = 7")
        r = env.once("2026-11-02 14:00:00")
        t.eq(r.rc, 0, "the next tick exits 0", r)
        names = sorted(n for n in os.listdir(feeds) if n.endswith(".ics"))
        t.eq(names, ["a%2Fb@acme.example.ics", "a_b@acme.example.ics"],
             "still the same two files")
        path = os.path.join(feeds, "a%2Fb@acme.example.ics")
        if os.path.exists(path):
            t.eq(attendees(path), [], "a/b's feed is empty once its ticket "
                 "is resolved")


if __name__ == "__main__":
    fx.main(body)
