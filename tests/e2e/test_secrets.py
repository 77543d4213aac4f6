#!/usr/bin/python3
"""test_secrets: secrets stay secret; no message body reaches a log.

- password_file readable by others (0644, 0640, 0604) or not a regular
  file: `check`, `once` and `run` refuse to start (EX_CONFIG) with a clear
  message naming the file and its mode, and never print the password; 0600
  and 0400 are accepted.
- A whole scenario (check, plan, a tick through STARTTLS + AUTH with a
  delivery, a 451 deferral and a 550 rejection, a refused login, status,
  queue list/show), each command once plainly and once with -v (debug):
  the stderr of every run and the stdout of every command that does not
  print a message on purpose (preview and queue show do) are searched for
  the password (as is, and base64 as AUTH PLAIN/LOGIN would send it), for
  text that only the message bodies hold, and (without -v) for the
  recipients' local parts (decision logs name the domain only).
- When started as root with [queue] user = NAME, the daemon drops to that
  user after opening what it needs (checked in /proc), and the queue it
  creates belongs to that user.
"""

import base64
import os
import pwd
import re
import signal
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

R = "2026-11-02 10:00:00"
PLAN = "2026-11-02 12:00:00"
DUE = "2026-11-05 10:00:00"
USER = "relay-user"
PASSWORD = "Pw-9f3K-unique-secret-7Q"
BODY_TOKEN = "Zyxquv"          # a first name: only in message bodies
AGENT_TOKEN = "Okafor-Quibble"  # the agent's name: only in bodies
LOCAL_PARTS = ("ana.secret", "deferred.local", "rejected.local")
EX_CONFIG = 78


def secret_forms():
    plain = base64.b64encode(("\0%s\0%s" % (USER, PASSWORD)).encode()).decode()
    login = base64.b64encode(PASSWORD.encode()).decode()
    return [PASSWORD, plain, login]


def setup(env):
    env.make_source(
        customers=[dict(id=1, email="ana.secret@example.com", name="Ana Sol",
                        first_name=BODY_TOKEN),
                   dict(id=2, email="deferred.local@example.org",
                        name="Dee Ferred", first_name=BODY_TOKEN),
                   dict(id=3, email="rejected.local@example.net",
                        name="Rey Jected", first_name=BODY_TOKEN)],
        agents=[dict(id=1, email="agent@acme.example", name=AGENT_TOKEN)],
        tickets=[dict(id=i, customer_id=i, agent_id=1,
                      subject="Ticket %d" % i, status="resolved",
                      created_at="2026-11-01 09:00:00", resolved_at=R,
                      updated_at=R) for i in (1, 2, 3)])


def write_password(env, mode, name="password"):
    path = os.path.join(env.dir, name)
    if os.path.exists(path):
        os.chmod(path, 0o600)
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, (PASSWORD + "\n").encode())
    os.close(fd)
    os.chmod(path, mode)
    return path


def smtp_conf(srv, pwfile, **extra):
    s = {"starttls": "required", "ca_file": srv.cert, "username": USER,
         "password_file": pwfile, "timeout": "5s"}
    s.update(extra)
    return s


def permissions(t, env, srv):
    for mode, ok in ((0o600, True), (0o400, True), (0o644, False),
                     (0o640, False), (0o604, False), (0o660, False)):
        pw = write_password(env, mode)
        conf = env.write_config(port=srv.port, smtp=smtp_conf(srv, pw))
        for cmd in (["check"], ["once", "--now", PLAN]):
            r = env.run(*cmd, conf=conf)
            out = r.stdout + r.stderr
            if ok:
                t.eq(r.rc, 0, "password_file %04o: %s accepts it" % (
                    mode, cmd[0]), r)
            else:
                t.eq(r.rc, EX_CONFIG, "password_file %04o: %s refuses to "
                     "start (EX_CONFIG)" % (mode, cmd[0]), r)
                t.ok("password_file" in out and "%04o" % mode in out,
                     "password_file %04o: the message names the file and "
                     "its mode" % mode, r)
            t.ok(not any(s in out for s in secret_forms()),
                 "password_file %04o: %s never prints the password" % (
                     mode, cmd[0]))
    # `run` refuses as well, at once.
    pw = write_password(env, 0o644)
    conf = env.write_config(port=srv.port, smtp=smtp_conf(srv, pw))
    r = env.run("run", conf=conf, timeout=20)
    t.eq(r.rc, EX_CONFIG, "password_file 0644: run refuses to start", r)
    # A directory or a FIFO is not a password file.
    fifo = os.path.join(env.dir, "pwfifo")
    os.mkfifo(fifo, 0o600)
    conf = env.write_config(port=srv.port, smtp=smtp_conf(srv, fifo))
    r = env.run("check", conf=conf, timeout=20)
    t.ok(r.rc == EX_CONFIG and "regular file" in r.stderr, "a FIFO as "
         "password_file is refused without blocking", r)


def scenario_logs(t, env, srv):
    pw = write_password(env, 0o600)
    conf = env.write_config(port=srv.port, smtp=smtp_conf(srv, pw))
    outputs = []        # (label, text to search)

    def run(label, *args, verbose=False, search_stdout=True, **kw):
        argv = (["-v"] if verbose else []) + ["-d"] + list(args)
        r = env.run(*argv, conf=conf, **kw)
        lab = "%s%s" % (label, " -v" if verbose else "")
        outputs.append((lab, r.stderr, verbose))
        if search_stdout:
            outputs.append((lab + " (stdout)", r.stdout, verbose))
        return r

    for v in (False, True):
        r = run("check", "check", verbose=v)
        t.eq(r.rc, 0, "logs: check%s exits 0" % (" -v" if v else ""), r)
    r = run("plan", "once", "--now", PLAN)
    t.eq(r.rc, 0, "logs: planning exits 0", r)
    r = run("tick", "once", "--now", DUE, verbose=True)
    t.eq(r.rc, 0, "logs: the delivering tick (-v) exits 0", r)
    states = {j["recipient"]: j["state"] for j in env.jobs()}
    t.eq(states, {"ana.secret@example.com": "sent",
                  "deferred.local@example.org": "deferred",
                  "rejected.local@example.net": "failed"},
         "logs: one sent, one deferred, one rejected")
    for v in (False, True):
        run("status", "status", verbose=v)
        run("queue list", "queue", "list", verbose=v)
        run("queue show", "queue", "show", "1", verbose=v,
            search_stdout=False)
        run("preview", "preview", "checkin", "1", "--now", DUE, verbose=v,
            search_stdout=False)
    # A refused login: the wrong password goes nowhere either.
    srv.restart(faults=["auth:535"])
    later = fx.sqltime(fx.unix(DUE) + 7200)
    r = run("refused login", "once", "--now", later, verbose=True)
    t.ok(r.rc is not None, "logs: the tick with a refused login finishes", r)
    srv.restart(faults=[])
    spawned = os.path.join(env.dir, "spawned.stderr")
    if os.path.exists(spawned):
        outputs.append(("spawned", open(spawned, errors="replace").read(),
                        True))
    outputs.append(("all runs (followupd.log)",
                    open(os.path.join(env.dir, "followupd.log"),
                         errors="replace").read(), True))

    leaks = [(lab, s) for lab, text, _ in outputs for s in secret_forms()
             if s in text]
    t.eq(leaks, [], "logs: no password in any output (%d outputs searched, "
         "-v included)" % len(outputs))
    body_leaks = [(lab, tok) for lab, text, _ in outputs
                  if "all runs" not in lab
                  for tok in (BODY_TOKEN, AGENT_TOKEN) if tok in text]
    t.eq(body_leaks, [], "logs: no message body text in any log")
    local = [(lab, lp) for lab, text, verbose in outputs if not verbose
             and "stdout" not in lab for lp in LOCAL_PARTS if lp in text]
    t.eq(local, [], "logs: decision logs name the domain, not the "
         "recipient's address")
    tick = [x for x in outputs if x[0] == "tick -v"]
    t.ok(tick and "@example.com" in tick[0][1], "logs: (the tick's log does "
         "talk about the deliveries)", tick[0][1][-2000:] if tick else "")


def unsubscribe_tokens(t):
    """Marketing mail carries per-recipient unsubscribe tokens: they are
    secrets too (anyone holding one can opt the customer out). No log
    line, -v included, may show one. (The secret file's permissions are
    checked by test_consent.py.)"""
    env = fx.Env("secrets-tokens")
    srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail")).start()
    try:
        env.make_source(customers=[dict(
            id=1, email="birthday.local@example.com", name="Bea Day",
            first_name=BODY_TOKEN, timezone="UTC", birthday="1990-03-10")])
        env.write_config(port=srv.port, unsubscribe={
            "url": "https://unsub.acme.example/unsubscribe"},
            rule_birthday={"kind": "birthday", "template": "birthday",
                           "send_at": "09:00"})
        outs = []
        for now in ("2027-03-03 09:00:00", "2027-03-10 09:00:00",
                    "2027-03-10 10:00:00"):
            r = env.run("-v", "-d", "once", "--now", now)
            outs.append(r.stdout + r.stderr)
        for args in (["status"], ["queue", "list"], ["-v", "status"]):
            r = env.run(*args)
            outs.append(r.stdout + r.stderr)
        msgs = srv.messages()
        if not msgs:
            t.ok(True, "unsubscribe tokens # SKIP no birthday message was "
                 "sent (the rule kind may have changed)")
            return
        m = fx.parse(msgs[0]["eml"])
        lu = str(m["List-Unsubscribe"] or "")
        tokens = [x for x in re.findall(r"[A-Za-z0-9_-]{16,}", lu)
                  if "unsubscribe" not in x and "example" not in x]
        t.ok(tokens, "tokens: the message carries an unsubscribe token", lu)
        t.note("List-Unsubscribe: %s" % lu[:200])
        leaked = [tok for tok in tokens for o in outs if tok in o]
        t.eq(leaked, [], "tokens: no unsubscribe token in any log or "
             "status output (-v included)")
        t.ok(not any(BODY_TOKEN in o for o in outs), "tokens: no body text "
             "in the logs of a marketing run")
    finally:
        srv.stop()
        env.cleanup()


def privilege_drop(t, env):
    if os.geteuid() != 0:
        t.ok(True, "privilege drop # SKIP not root")
        return
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        t.ok(True, "privilege drop # SKIP no user 'nobody'")
        return
    srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail2")).start()
    try:
        # The source stays readable only by root: opened before the drop.
        os.chmod(env.source, 0o600)
        os.chmod(env.dir, 0o755)
        queue = os.path.join(env.dir, "queue-dropped")
        conf = env.write_config(port=srv.port, path=os.path.join(
            env.dir, "drop.conf"), queue={"dir": queue, "user": "nobody",
                                          "tick": "1h"})
        r = env.run("check", conf=conf)
        t.eq(r.rc, 0, "privilege drop: check accepts [queue] user", r)
        p = env.spawn("-d", "run", conf=conf)
        try:
            pid_file = os.path.join(queue, "followupd.pid")
            fx.wait_for(lambda: os.path.exists(pid_file) and
                        os.path.getsize(pid_file) > 0, timeout=60)

            def euid():
                try:
                    with open("/proc/%d/status" % p.pid) as f:
                        for ln in f:
                            if ln.startswith("Uid:"):
                                return int(ln.split()[2])
                except OSError:
                    return None
            # Wait for the drop itself, not for a guess of its time.
            fx.wait_for(lambda: p.poll() is not None or
                        euid() == nobody.pw_uid, timeout=60)
            alive = p.poll() is None
            uids = gids = None
            if alive:
                with open("/proc/%d/status" % p.pid) as f:
                    for ln in f:
                        if ln.startswith("Uid:"):
                            uids = [int(x) for x in ln.split()[1:]]
                        if ln.startswith("Gid:"):
                            gids = [int(x) for x in ln.split()[1:]]
            t.ok(alive, "privilege drop: run is up",
                 open(os.path.join(env.dir, "spawned.stderr"),
                      errors="replace").read()[-2000:])
            t.eq(uids, [nobody.pw_uid] * 4, "privilege drop: real, effective, "
                 "saved and fs uid are nobody's")
            t.eq(gids, [nobody.pw_gid] * 4, "privilege drop: and the gids")
            st = os.stat(os.path.join(queue, "tmp"))
            t.eq(st.st_uid, nobody.pw_uid, "privilege drop: the queue "
                 "belongs to nobody")
            t.eq(stat.S_IMODE(os.stat(queue).st_mode), 0o700,
                 "privilege drop: the queue is 0700")
        finally:
            fx.kill(p, signal.SIGTERM)
        t.ok(env.source_unchanged(), "privilege drop: the source unchanged")
    finally:
        srv.stop()
        os.chmod(env.source, 0o644)


def body(t):
    fx.require_binary(t)
    env = fx.Env("secrets")
    srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail"), tls=True,
                        require_starttls=True,
                        auth=(USER, PASSWORD),
                        faults=["rcpt:deferred.local:451",
                                "rcpt:rejected.local:550"]).start()
    try:
        setup(env)
        for row in (lambda t: permissions(t, env, srv),
                    lambda t: scenario_logs(t, env, srv),
                    unsubscribe_tokens,
                    lambda t: privilege_drop(t, env)):
            try:
                row(t)
            except Exception:
                import traceback
                t.ok(False, "no unexpected exception", traceback.format_exc())
    finally:
        srv.stop()
        env.cleanup()


if __name__ == "__main__":
    fx.main(body)
