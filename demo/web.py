#!/usr/bin/python3
"""demo/web.py: what a customer does with the links in a delivered message.

    web.py MAILDIR PORT < ACTIONS

Each line of ACTIONS is "WHO unsubscribe EMAIL" or "WHO rate EMAIL SCORE
[COMMENT...]" (the comment is the rest of the line).

The link is taken from the newest message to EMAIL in MAILDIR (the capture
server's files); its https address is what the TLS proxy would forward, so
the request goes to `followupd serve` on 127.0.0.1:PORT with the same path
and query. Like a person: first a GET (the page; nothing changes), then the
form's POST. Prints what the customer sees. Talks to 127.0.0.1 only.
"""

import email
import email.policy
import glob
import html
import http.client
import os
import re
import sys
import urllib.parse


def newest_to(maildir, addr):
    found = None
    for path in sorted(glob.glob(os.path.join(maildir, "*.eml"))):
        with open(path, "rb") as f:
            msg = email.message_from_binary_file(f, policy=email.policy.default)
        if addr.lower() in str(msg["To"] or "").lower():
            found = msg
    return found


def request(port, method, url, body=None):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    c.request(method, "%s?%s" % (u.path, u.query), body=body, headers=headers)
    r = c.getresponse()
    text = r.read().decode("utf-8", "replace")
    c.close()
    return r.status, text


def title(page):
    m = re.search(r"<title>(.*?)</title>", page, re.S)
    return html.unescape(m.group(1)) if m else "?"


def main(maildir, port, action, addr, *rest):
    port = int(port)
    msg = newest_to(maildir, addr)
    if msg is None:
        print("no message to %s" % addr)
        return 1
    if action == "unsubscribe":
        m = re.search(r"<(https://[^>]+)>", str(msg["List-Unsubscribe"] or ""))
        if not m:
            print("the message to %s has no one-click link" % addr)
            return 1
        code, page = request(port, "GET", m.group(1))
        print("  GET  the link from \"%s\": %d %s" % (msg["Subject"], code,
                                                      title(page)))
        code, page = request(port, "POST", m.group(1),
                             "List-Unsubscribe=One-Click")
        print("  POST the page's button: %d %s" % (code, title(page)))
        return 0 if code == 200 else 1
    score = int(rest[0])
    comment = rest[1] if len(rest) > 1 else ""
    part = msg.get_body(preferencelist=("html",))
    links = re.findall(r'<a href="(https://[^"]+\?t=[^"]+)"[^>]*>([^<]+)</a>',
                       part.get_content() if part else "")
    url = next((u for u, _ in links
                if re.search(r"\.[a-z]%d\." % score, u)), None)
    if url is None:
        print("the check-in to %s has no rating link for %d" % (addr, score))
        return 1
    label = html.unescape(dict((u, l) for u, l in links)[url])
    code, page = request(port, "GET", html.unescape(url))
    print("  GET  \"%s\" in \"%s\": %d %s (nothing recorded yet)" % (
        label, msg["Subject"], code, title(page)))
    code, page = request(port, "POST", html.unescape(url),
                         urllib.parse.urlencode({"score": score,
                                                 "comment": comment}))
    print("  POST the form%s: %d %s" % (
        " with a comment" if comment else "", code, title(page)))
    return 0 if code == 200 else 1


def run(maildir, port):
    status = 0
    for line in sys.stdin:
        words = line.split(None, 5)
        if len(words) < 3:
            continue
        print("%s:" % words[0])
        sys.stdout.flush()
        args = words[1:3] + ([words[3]] if len(words) > 3 else [])
        if len(words) > 4:
            args.append(" ".join(words[4:]).strip())
        try:
            status |= main(maildir, port, *args)
        except OSError as e:
            print("  %s" % e)
            status = 1
    return status


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    sys.exit(run(*sys.argv[1:]))
