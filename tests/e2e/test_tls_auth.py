#!/usr/bin/python3
"""test_tls_auth: one check-in over STARTTLS (required) with AUTH.

The capture server has a self-signed certificate (its CA file is the
config's ca_file), requires STARTTLS and knows one user. The message must
arrive over TLS, authenticated as that user, and the password must never
appear in anything followupd prints. A second run with a wrong password
must not deliver anything unauthenticated.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

USER = "followupd"
PASSWORD = "s3cret-Pa55word-do-not-log"


def body(t, env):
    fx.require_binary(t)
    env.make_source(
        customers=[dict(id=1, email="ana@example.com", name="Ana García",
                        first_name="Ana"),
                   dict(id=2, email="zoe@example.org", name="Zoë Lefèvre",
                        first_name="Zoë")],
        agents=[dict(id=1, email="sam@acme.example", name="Sam Okafor")],
        tickets=[dict(id=1, customer_id=1, agent_id=1,
                      subject="Cannot log in", status="resolved",
                      created_at="2026-11-01 09:00:00",
                      resolved_at="2026-11-02 10:00:00",
                      updated_at="2026-11-02 10:00:00"),
                 dict(id=2, customer_id=2, agent_id=1,
                      subject="Wrong invoice", status="resolved",
                      created_at="2026-11-01 09:00:00",
                      resolved_at="2026-11-06 10:00:00",
                      updated_at="2026-11-06 10:00:00")])
    pwfile = os.path.join(env.dir, "smtp.password")
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, (PASSWORD + "\n").encode())
    os.close(fd)

    srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail"), tls=True,
                        require_starttls=True, auth=(USER, PASSWORD),
                        lifetime=300).start()
    try:
        smtp = {"starttls": "required", "ca_file": srv.cert,
                "username": USER, "password_file": pwfile,
                "helo": "followupd.test"}
        env.write_config(port=srv.port, smtp=smtp)
        r = env.run("check")
        t.eq(r.rc, 0, "check accepts starttls/ca_file/username/"
             "password_file", r)
        t.ok(PASSWORD not in r.stdout + r.stderr, "check does not print "
             "the password")

        r = env.run("-v", "once", "--now", "2026-11-05 10:00:00", vg=True)
        t.eq(r.rc, 0, "once over STARTTLS + AUTH exits 0", r)
        msgs = srv.wait_messages(1, timeout=60)
        t.eq(len(msgs), 1, "the check-in arrives", r)
        if msgs:
            m = msgs[0]
            t.eq(m.get("tls"), True, "envelope: delivered over TLS")
            t.eq(m.get("auth_user"), USER, "envelope: authenticated as %s"
                 % USER)
            t.eq(m.get("rcpt_tos"), ["ana@example.com"], "envelope: the "
                 "customer is the only recipient")
            msg = fx.parse(m["eml"])
            t.eq(fx.defects(msg), [], "the message parses without defects")
            t.ok("Hi Ana," in fx.body(msg, "plain"), "the text part greets "
                 "Ana")
        job = env.job(1) or {}
        t.eq(job.get("state"), "sent", "job sent", "job: %r" % job)
        t.ok(PASSWORD not in r.stdout + r.stderr, "the password never "
             "appears in followupd's output (even with -v)")
        sess = srv.sessions()
        t.ok(sess and all(s.get("tls") for s in sess if "MAIL" in
                          s.get("verbs", [])), "no MAIL was sent before "
             "STARTTLS", "sessions: %r" % sess)

        # A wrong password: nothing may go out unauthenticated.
        bad = os.path.join(env.dir, "bad.password")
        fd = os.open(bad, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, b"wrong-password\n")
        os.close(fd)
        conf = env.write_config(port=srv.port, path=os.path.join(
            env.dir, "badpw.conf"), smtp=dict(smtp, password_file=bad))
        before = len(srv.messages())
        r = env.run("-v", "once", "--now", "2026-11-09 10:00:00", conf=conf)
        t.ok(r.rc is not None, "once with a refused login finishes", r)
        job = env.job(2) or {}
        t.ok(job.get("state") in ("deferred", "failed"), "refused login: "
             "job deferred or failed, not sent", "job: %r" % job)
        t.eq(len(srv.messages()), before, "refused login: nothing "
             "delivered")
        t.ok("wrong-password" not in r.stdout + r.stderr, "the wrong "
             "password is not printed either")

        # A password file others can read is refused.
        os.chmod(pwfile, 0o644)
        r = env.run("check")
        t.ok(r.rc not in (0, None), "check refuses a password_file with "
             "mode 0644", r)
        t.ok(PASSWORD not in r.stdout + r.stderr, "… without printing it")
    finally:
        srv.stop()


if __name__ == "__main__":
    env = fx.Env("tls")
    try:
        fx.main(lambda t: body(t, env))
    finally:
        env.cleanup()
