#!/usr/bin/python3
"""test_privileges: what runs as [queue] user, and the secrets it needs.

As root only (each part says SKIP otherwise):
- SIGHUP after the drop to [queue] user: the root-owned 0600
  password_file is re-read through the descriptor opened at start, so the
  reload succeeds exactly as a start would, and a message that needs AUTH
  goes out after it.
- Every command that touches the queue drops to [queue] user before it
  creates anything: each one, run as root on a queue that does not exist
  yet, leaves only files owned by that user (unsubscribe-server's
  directories and unsubscribe.key included), and `run` can start on it.
- The unsubscribe secret is checked through the descriptor it is read
  from: a symlink to a good secret is refused (O_NOFOLLOW), a FIFO is
  refused without blocking, and (as root) a secret owned by another user
  is refused; the real file itself is accepted.
"""

import os
import pwd
import shutil
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture as fx  # noqa: E402

USER = "relay-user"
PASSWORD = "Pw-priv-4c1d-secret"


def readable_templates(env):
    """A copy of the templates that [queue] user can read (the checkout
    may sit in a private directory)."""
    dst = os.path.join(env.dir, "templates")
    shutil.copytree(fx.TEMPLATES, dst)
    for d, dirs, files in os.walk(dst):
        os.chmod(d, 0o755)
        for n in files:
            os.chmod(os.path.join(d, n), 0o644)
    return dst


def nobody():
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        return None


def reload_after_drop(t):
    if nobody() is None:
        t.ok(True, "reload after the drop # SKIP not root or no nobody")
        return
    env = fx.Env("priv-reload")
    os.chmod(env.dir, 0o755)
    srv = fx.SmtpServer(maildir=os.path.join(env.dir, "mail"), tls=True,
                        require_starttls=True, auth=(USER, PASSWORD)).start()
    p = None
    try:
        env.make_source(customers=[dict(id=1, email="ana@example.com",
                                        name="Ana", first_name="Ana")],
                        tickets=[dict(id=1, customer_id=1, subject="T",
                                      status="open",
                                      created_at="2026-11-01 09:00:00")])
        pw = os.path.join(env.dir, "password")
        fd = os.open(pw, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, (PASSWORD + "\n").encode())
        os.close(fd)
        t.eq((os.stat(pw).st_uid, fx.mode(pw)), (0, 0o600),
             "password_file: root's, 0600")
        # The CA certificate is public: readable by nobody (smtp_init runs
        # after the drop).
        ca = os.path.join(env.dir, "ca.pem")
        with open(srv.cert, "rb") as f, open(ca, "wb") as g:
            g.write(f.read())
        os.chmod(ca, 0o644)
        conf = env.write_config(
            port=srv.port, queue={"dir": "queue", "user": "nobody",
                                  "tick": "1s"},
            templates={"dir": readable_templates(env)},
            smtp={"starttls": "required", "ca_file": ca,
                  "username": USER, "password_file": pw, "timeout": "10s"})
        p = env.spawn("-d", "run", conf=conf)
        err = os.path.join(env.dir, "spawned.stderr")

        def log():
            with open(err, encoding="utf-8", errors="replace") as f:
                return f.read()
        t.ok(fx.wait_for(lambda: "tick " in log() or p.poll() is not None,
                         timeout=60) and p.poll() is None,
             "run starts as root and drops to nobody", log())
        p.send_signal(signal.SIGHUP)
        t.ok(fx.wait_for(lambda: "daemon: reloaded" in log() or
                         "reload failed" in log(), timeout=60) and
             "daemon: reloaded" in log() and "reload failed" not in log(),
             "SIGHUP after the drop: the reload reads the password_file "
             "(through the descriptor kept from the start)", log())
        env.desk("UPDATE tickets SET status = 'resolved', resolved_at = "
                 "datetime('now', '-4 days'), updated_at = datetime('now') "
                 "WHERE id = 1")
        t.ok(fx.wait_for(lambda: len(srv.messages()) >= 1, timeout=60),
             "after the reload a message goes out through AUTH", log())
    finally:
        if p is not None:
            fx.kill(p, signal.SIGTERM)
        srv.stop()
        env.cleanup()


COMMANDS = [
    ("optout", ["optout", "add", "zoe@example.com"]),
    ("why", ["why", "ana@example.com"]),
    ("queue-list", ["queue", "list"]),
    ("status", ["status"]),
    ("codes", ["codes", "checkin"]),
    ("preview", ["preview", "checkin", "1"]),
    ("report", ["report"]),
]


def owners(top):
    """{relative path: uid} of everything under top (top included)."""
    out = {".": os.lstat(top).st_uid}
    for d, dirs, files in os.walk(top):
        for n in dirs + files:
            p = os.path.join(d, n)
            out[os.path.relpath(p, top)] = os.lstat(p).st_uid
    return out


def commands_drop(t):
    who = nobody()
    if who is None:
        t.ok(True, "commands drop privileges # SKIP not root or no nobody")
        return
    env = fx.Env("priv-cmds")
    os.chmod(env.dir, 0o755)
    try:
        env.make_source(customers=[dict(id=1, email="ana@example.com",
                                        name="Ana", first_name="Ana")],
                        tickets=[dict(id=1, customer_id=1, subject="T",
                                      status="resolved",
                                      created_at="2026-11-01 09:00:00",
                                      resolved_at="2026-11-02 09:00:00",
                                      updated_at="2026-11-02 09:00:00")])
        os.chmod(env.source, 0o600)     # root's only, as run allows
        templates = readable_templates(env)
        for name, argv in COMMANDS:
            queue = os.path.join(env.dir, "q-" + name)
            conf = env.write_config(
                port=fx.closed_port(), path=os.path.join(
                    env.dir, name + ".conf"),
                queue={"dir": queue, "user": "nobody"},
                templates={"dir": templates})
            r = env.run(*argv, conf=conf)
            t.ok(r.rc in (0, 65, 66, 69), "%s as root runs" % name, r)
            got = owners(queue) if os.path.exists(queue) else {}
            root = sorted(p for p, uid in got.items() if uid != who.pw_uid)
            t.eq(root, [], "%s: everything it created in the queue is "
                 "nobody's (%d entries)" % (name, len(got)), r)
        # unsubscribe-server: its directories and unsubscribe.key.
        queue = os.path.join(env.dir, "q-unsub")
        port = fx.closed_port()
        conf = env.write_config(
            port=fx.closed_port(), path=os.path.join(env.dir, "unsub.conf"),
            queue={"dir": queue, "user": "nobody"},
            templates={"dir": templates},
            unsubscribe={"url": "https://u.example/unsubscribe",
                         "listen": "127.0.0.1", "port": str(port)})
        p = env.spawn("unsubscribe-server", conf=conf)
        try:
            key = os.path.join(queue, "unsubscribe.key")
            t.ok(fx.wait_for(lambda: os.path.exists(key) or
                             p.poll() is not None, timeout=60) and
                 p.poll() is None, "unsubscribe-server as root starts")
            got = owners(queue) if os.path.exists(queue) else {}
            t.eq(sorted(p for p, uid in got.items() if uid != who.pw_uid),
                 [], "unsubscribe-server: the queue, its directories and "
                 "unsubscribe.key are nobody's", got)
        finally:
            fx.kill(p, signal.SIGTERM)
        r = env.run("once", "--now", "2026-11-05 12:00:00", conf=conf)
        t.eq(r.rc, 0, "run/once (as nobody) can use the queue that "
             "unsubscribe-server created", r)
    finally:
        env.cleanup()


def secret_checks(t):
    env = fx.Env("priv-secret")
    try:
        env.make_source()
        good = os.path.join(env.dir, "unsub.secret")
        fd = os.open(good, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, b"0123456789abcdef0123456789abcdef-secret\n")
        os.close(fd)
        link = os.path.join(env.dir, "unsub.link")
        os.symlink(good, link)
        fifo = os.path.join(env.dir, "unsub.fifo")
        os.mkfifo(fifo, 0o600)

        def serve(secret):
            conf = env.write_config(
                port=fx.closed_port(), unsubscribe={
                    "url": "https://u.example/unsubscribe",
                    "listen": "127.0.0.1", "port": str(fx.closed_port()),
                    "secret_file": secret})
            p = env.spawn("unsubscribe-server", conf=conf)
            try:
                p.wait(20)
            except Exception:
                pass
            rc = p.poll()
            fx.kill(p, signal.SIGTERM)
            with open(os.path.join(env.dir, "spawned.stderr"),
                      errors="replace") as f:
                return rc, f.read()
        rc, err = serve(link)
        t.ok(rc == 78 and "symbolic link" in err,
             "a symlink as the unsubscribe secret is refused", (rc, err))
        rc, err = serve(fifo)
        t.ok(rc == 78 and "regular file" in err,
             "a FIFO as the unsubscribe secret is refused without "
             "blocking", (rc, err))
        rc, _ = serve(good)
        t.eq(rc, None, "the file itself is accepted (the server runs)")
        who = nobody()
        if who is None:
            t.ok(True, "a secret owned by another user # SKIP not root")
        else:
            os.chown(good, who.pw_uid, who.pw_gid)
            rc, err = serve(good)
            t.ok(rc == 78 and "owned by uid %d" % who.pw_uid in err,
                 "a secret owned by another user is refused", (rc, err))
    finally:
        env.cleanup()


def body(t):
    fx.require_binary(t)
    reload_after_drop(t)
    commands_drop(t)
    secret_checks(t)


if __name__ == "__main__":
    fx.main(body)
