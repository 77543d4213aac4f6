#!/usr/bin/python3
"""test_cli: the command line: run (lock, signals), preview, status, queue, check, help, exit codes."""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

EX_USAGE, EX_NOINPUT, EX_TEMPFAIL, EX_CONFIG = 64, 66, 75, 78
R = "2026-11-02 10:00:00"


def rows():
    return dict(
        customers=[
            dict(id=1, email="ana@example.com", name="Ana García",
                 first_name="Ana", timezone="Europe/Madrid"),
            dict(id=2, email="bob@example.org", name="Bob Stone",
                 first_name="Bob"),
            dict(id=3, email=None, name="No Mail"),
        ],
        agents=[dict(id=1, email="sam@acme.example", name="Sam Okafor")],
        tickets=[
            dict(id=10, customer_id=1, agent_id=1, subject="Printer offline",
                 status="resolved", created_at="2026-11-01 09:00:00",
                 resolved_at=R, updated_at=R),
            dict(id=11, customer_id=2, agent_id=1, subject="Refund",
                 status="resolved", created_at="2026-11-01 09:00:00",
                 resolved_at=R, updated_at=R),
            dict(id=12, customer_id=3, agent_id=1, subject="No mail",
                 status="resolved", created_at="2026-11-01 09:00:00",
                 resolved_at=R, updated_at=R),
            dict(id=13, customer_id=1, agent_id=1, subject="Still open",
                 status="open", created_at="2026-11-01 09:00:00"),
        ])


def test_help(t, env):
    r = env.run("--help")
    t.ok(r.rc == 0 and "once" in r.stdout and "queue" in r.stdout,
         "--help lists the commands", r.describe())
    for cmd in ("run", "once", "check", "preview", "status", "queue"):
        r = env.run(cmd, "--help")
        t.ok(r.rc == 0 and ("usage: followupd " + cmd) in r.stdout,
             "%s --help" % cmd, r.describe())
    r = env.run("frobnicate")
    t.eq(r.rc, EX_USAGE, "an unknown command is a usage error (64)")
    r = env.run("once", "--now", "yesterday")
    t.ok(r.rc == EX_USAGE and "--now" in r.stderr,
         "a bad --now names the option", r.describe())
    r = env.run("check", conf=os.path.join(env.dir, "missing.conf"))
    t.ok(r.rc == EX_CONFIG and "missing.conf" in r.stderr,
         "a missing config is EX_CONFIG and named", r.describe())


def test_check(t, env, port):
    r = env.run("check")
    t.ok(r.rc == 0 and "OK" in r.stdout, "check passes on a good setup",
         r.describe())
    # A template typo is reported with its file and line.
    tdir = os.path.join(env.dir, "templates")
    os.makedirs(os.path.join(tdir, "checkin"))
    os.makedirs(os.path.join(tdir, "partials"))
    for name, text in (("subject", "Hi {{customer.name}}"),
                       ("text", "line one\n{{#ticket}}\nno close\n")):
        with open(os.path.join(tdir, "checkin", name + ".mustache"), "w") as f:
            f.write(text)
    bad = env.write_config(port, path=os.path.join(env.dir, "bad.conf"),
                           templates={"dir": "templates"},
                           rule_checkin={"dealy": "3d"})
    r = env.run("check", conf=bad)
    t.eq(r.rc, EX_CONFIG, "check with problems exits 78", r.describe())
    t.ok("bad.conf:" in r.stderr and "dealy" in r.stderr and
         "did you mean 'delay'" in r.stderr,
         "unknown key named with file:line and a suggestion", r.describe())
    # Unknown key stops before templates are read; fix it, see the template.
    bad = env.write_config(port, path=os.path.join(env.dir, "bad.conf"),
                           templates={"dir": "templates"})
    r = env.run("check", conf=bad)
    t.ok(r.rc == EX_CONFIG and "text.mustache:2:" in r.stderr,
         "an unclosed section is reported as text.mustache:2", r.describe())
    # A rule query that writes, or two statements, is refused.
    bad = env.write_config(port, path=os.path.join(env.dir, "bad.conf"),
                           rule_checkin={"query": "DELETE FROM tickets"})
    r = env.run("check", conf=bad)
    t.ok(r.rc == EX_CONFIG and "SELECT" in r.stderr and
         "[rule checkin]" in r.stderr,
         "a query that writes is refused by check", r.describe())
    bad = env.write_config(port, path=os.path.join(env.dir, "bad.conf"),
                           rule_checkin={"query": "SELECT 1 AS key, 2 AS at, "
                                         "3 AS email; SELECT 2"})
    r = env.run("check", conf=bad)
    t.ok(r.rc == EX_CONFIG and "single SELECT" in r.stderr,
         "two statements are refused by check", r.describe())
    bad = env.write_config(port, path=os.path.join(env.dir, "bad.conf"),
                           rule_checkin={"query": "SELECT id AS key FROM "
                                         "tickets"})
    r = env.run("check", conf=bad)
    t.ok(r.rc == EX_CONFIG and "'at'" in r.stderr,
         "a query without the required columns is refused", r.describe())
    t.ok(env.source_unchanged(), "check never writes the source")


def test_preview(t, env):
    before = env.jobs()
    r = env.run("preview", "checkin", "10", "--now", "2026-11-05 10:00:00",
                vg=True)
    t.eq(r.rc, 0, "preview exits 0", r.describe())
    msg = fx.parse(r.stdout.encode("utf-8"))
    t.eq(str(msg["To"]), "Ana García <ana@example.com>", "preview: To")
    t.ok("Printer offline" in str(msg["Subject"]), "preview: Subject")
    t.ok("Hi Ana," in fx.body(msg, "plain"), "preview: greeting")
    t.eq(fx.defects(msg), [], "preview parses without defects")
    t.eq(env.jobs(), before, "preview plans nothing")
    t.eq(env.spool_files(), [], "preview spools nothing")
    r = env.run("preview", "checkin", "13")
    t.ok(r.rc == EX_NOINPUT and "resolved" in r.stderr,
         "preview of an open ticket says why", r.describe())
    r = env.run("preview", "checkin", "12")
    t.ok(r.rc == EX_NOINPUT and "no-address" in r.stderr,
         "preview of a customer without email says no-address", r.describe())
    r = env.run("preview", "nosuchrule", "10")
    t.ok(r.rc != 0 and "nosuchrule" in r.stderr, "preview of an unknown rule",
         r.describe())


def test_queue(t, env, srv):
    r = env.once("2026-11-02 12:00:00")
    t.eq(r.rc, 0, "planning tick", r.describe())
    t.eq(len(env.jobs()), 3, "three jobs planned (open ticket ignored)")
    r = env.run("queue", "list")
    t.ok(r.rc == 0 and r.stdout.count("planned") == 3,
         "queue list shows the planned jobs", r.describe())
    j10 = env.job(10)
    r = env.run("queue", "cancel", j10["id"])
    t.ok(r.rc == 0 and "cancelled" in r.stdout, "queue cancel", r.describe())
    t.eq(env.job(10)["state"], "cancelled", "job cancelled by the operator")
    t.eq(env.job(10)["reason"], "operator", "reason operator")
    r = env.run("queue", "cancel", j10["id"])
    t.ok(r.rc != 0, "cancelling twice is refused", r.describe())
    r = env.run("queue", "list", "--state", "cancelled")
    t.ok(r.rc == 0 and "cancelled" in r.stdout and "planned" not in r.stdout,
         "queue list --state filters", r.describe())
    r = env.run("queue", "list", "--state", "nonsense")
    t.eq(r.rc, EX_USAGE, "queue list with an unknown state is a usage error")

    # Server down: deferred; queue retry makes it due at once.
    down = env.write_config(fx.closed_port(),
                            path=os.path.join(env.dir, "down.conf"))
    r = env.run("once", "--now", "2026-11-05 10:00:00", conf=down)
    t.eq(r.rc, 0, "a tick with the relay down still exits 0", r.describe())
    j11 = env.job(11)
    t.eq(j11["state"], "deferred", "job deferred while the relay is down")
    r = env.run("status")
    t.ok(r.rc == 0 and "deferred" in r.stdout and "no-address" in r.stdout
         and "Connection refused" in r.stdout,
         "status shows the deferred job, its reply and no-address",
         r.describe(40))
    t.ok("operator" in r.stdout, "status shows cancelled by reason")
    r = env.run("queue", "show", j11["id"])
    t.ok(r.rc == 0 and "deferred" in r.stdout and "history:" in r.stdout and
         "Message-ID:" in r.stdout and "queued" in r.stdout,
         "queue show: history and spooled message", r.describe(60))
    r = env.run("queue", "retry", j11["id"])
    t.ok(r.rc == 0, "queue retry", r.describe())
    t.eq(env.job(11)["state"], "queued", "retried job is queued")
    r = env.once("2026-11-05 10:00:05")
    t.eq(r.rc, 0, "tick after retry", r.describe())
    t.eq(env.job(11)["state"], "sent", "retried job sent at the next tick")
    got = fx.by_recipient(srv)
    t.eq(sorted(got), ["bob@example.org"], "only bob got mail")
    r = env.run("queue", "show", "99999")
    t.eq(r.rc, EX_NOINPUT, "queue show of an unknown job")
    r = env.run("queue", "show", "abc")
    t.eq(r.rc, EX_USAGE, "queue show of a non-number")


def test_run(t, env, srv):
    # The daemon: a tick a second; a second instance is refused; SIGTERM stops it.
    conf = env.write_config(srv.port, path=os.path.join(env.dir, "run.conf"),
                            queue={"tick": "1s"})
    env.desk("UPDATE tickets SET status = 'resolved', resolved_at = "
             "datetime('now', '-4 days'), updated_at = datetime('now') "
             "WHERE id = 13")
    p = env.spawn("-d", "run", conf=conf)
    try:
        ok = fx.wait_for(lambda: any(
            j["subject"] == "13" and j["state"] == "sent"
            for j in env.jobs()), timeout=30)
        t.ok(ok, "run plans, renders and delivers on its own")
        r = env.run("once", conf=conf)
        t.ok(r.rc == EX_TEMPFAIL and "another followupd" in r.stderr and
             str(p.pid) in r.stderr,
             "a second instance on the same queue is refused, naming the pid",
             r.describe())
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(15)
        except Exception:
            rc = None
        t.eq(rc, 0, "SIGTERM stops the daemon cleanly (exit 0)")
    finally:
        fx.kill(p)
    with open(os.path.join(env.dir, "spawned.stderr"), encoding="utf-8",
              errors="replace") as f:
        log = f.read()
    t.ok("stopping" in log, "the daemon logs its stop")
    r = env.run("once", conf=conf)
    t.eq(r.rc, 0, "after the daemon stopped, the lock is free")


def body(t, env):
    fx.require_binary(t)
    env.make_source(**rows())
    srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail"),
                        lifetime=300).start()
    try:
        env.write_config(srv.port)
        test_help(t, env)
        test_check(t, env, srv.port)
        test_preview(t, env)
        test_queue(t, env, srv)
        test_run(t, env, srv)
        t.ok(env.source_unchanged(), "the source database was never written")
    finally:
        srv.stop()


if __name__ == "__main__":
    env = fx.Env("cli")
    try:
        fx.main(lambda t: body(t, env))
    finally:
        env.cleanup()
