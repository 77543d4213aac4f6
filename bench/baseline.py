#!/usr/bin/python3
"""baseline: the script a help desk would write instead of followupd.

    baseline.py DB HOST PORT NOW [--delay-days 3] [--lookback-days 10]

Debian's python3 only: sqlite3 for the tickets resolved `delay` ago,
string.Template for the text and HTML (the same wording and data as
bench/templates/checkin, history included), the email package for the
multipart/alternative message, smtplib over one connection. No spool, no
state, no retries: every message is built and sent straight away, which is
the most favourable case for it. Prints "messages seconds".
"""

import argparse
import calendar
import html
import smtplib
import sqlite3
import sys
import time
import uuid
from email.message import EmailMessage
from email.utils import formatdate
from string import Template

FROM = "Acme Support <support@acme.example>"
SENDER = "support@acme.example"

TEXT = Template("""Hi $greeting,

we solved "$subject" on $weekday; is everything still working?

If anything is still not right, just reply to this message:
it goes straight back to $agent (ticket #$ticket),
so you won't have to explain it all again.

If all is well, there is no need to answer. Thank you for your patience!

Your recent orders with us:
$purchases
A few things that often help after a fix like this one: restart the device
once, check that the latest update is installed, and keep the reference
#$ticket at hand if you call us. Our help centre has step-by-step
guides for the most common questions, and our team answers by mail on
working days within a few hours.

Warm regards,
$agent
Acme Support
""")

HTML = Template("""<!DOCTYPE html>
<html lang="$locale">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Checking in on ticket #$ticket</title>
</head>
<body style="margin:0; padding:0; background-color:#f4f5f7;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="background-color:#f4f5f7;">
<tr>
<td align="center" style="padding:24px 12px;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="max-width:560px; background-color:#ffffff; border:1px solid #e3e5e8; border-radius:6px;">
<tr>
<td style="padding:18px 28px; border-bottom:3px solid #2f6fde; font-family:Helvetica, Arial, sans-serif; font-size:17px; font-weight:bold; color:#1f2933;">Acme Support</td>
</tr>
<tr>
<td dir="auto" style="padding:24px 28px; font-family:Helvetica, Arial, sans-serif; font-size:15px; line-height:1.55; color:#1f2933;">
<p style="margin:0 0 16px 0;">Hi $greeting,</p>
<p style="margin:0 0 16px 0;">we solved <strong>&ldquo;$subject&rdquo;</strong> on $weekday; is everything still working?</p>
<p style="margin:0 0 16px 0;">If anything is still not right, just reply to this message. It goes straight back to $agent (ticket #$ticket), so you won&rsquo;t have to explain it all again.</p>
<p style="margin:0 0 16px 0;">If all is well, there is no need to answer. Thank you for your patience!</p>
<p style="margin:0 0 16px 0;">Your recent orders with us:</p>
<ul style="margin:0 0 16px 0; padding-left:20px;">
$purchases</ul>
<p style="margin:0 0 16px 0;">A few things that often help after a fix like this one: restart the device once, check that the latest update is installed, and keep the reference <strong>#$ticket</strong> at hand if you call us. Our <a href="https://help.acme.example/" style="color:#2f6fde;">help centre</a> has step-by-step guides for the most common questions, and our team answers by mail on working days within a few hours.</p>
<p style="margin:0 0 16px 0; color:#4b5563;">We read every reply. If you would rather not receive check-ins like this one after a ticket is closed, answer with the word <em>stop</em> and Acme Support will not send you another; this does not change anything else about your account or your orders.</p>
<p style="margin:0;">Warm regards,<br>
$agent<br>
<span style="color:#6b7280;">Acme Support</span></p>
</td>
</tr>
<tr>
<td style="padding:14px 28px; border-top:1px solid #e3e5e8; font-family:Helvetica, Arial, sans-serif; font-size:12px; line-height:1.5; color:#6b7280;">
You are receiving this because you contacted Acme Support. Reply to this message to reach a person.
</td>
</tr>
</table>
</td>
</tr>
</table>
</body>
</html>
""")

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
        "Sunday"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("db")
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("now")
    ap.add_argument("--delay-days", type=int, default=3)
    ap.add_argument("--lookback-days", type=int, default=10)
    a = ap.parse_args()
    now = calendar.timegm(time.strptime(a.now, "%Y-%m-%d %H:%M:%S"))
    fmt = lambda t: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
    t0 = time.monotonic()
    db = sqlite3.connect("file:%s?mode=ro" % a.db, uri=True)
    db.row_factory = sqlite3.Row
    rows = db.execute("""
        SELECT t.id, t.subject, t.resolved_at, c.id AS cid, c.email, c.name,
               c.first_name, c.locale, a.name AS agent
        FROM tickets t JOIN customers c ON c.id = t.customer_id
        LEFT JOIN agents a ON a.id = t.agent_id
        WHERE t.status IN ('resolved', 'closed')
          AND t.resolved_at >= ? AND t.resolved_at < ?""",
                      (fmt(now - a.lookback_days * 86400),
                       fmt(now - a.delay_days * 86400))).fetchall()
    smtp = smtplib.SMTP(a.host, a.port)
    sent = 0
    for r in rows:
        buys = db.execute("""SELECT item, amount_cents, currency, purchased_at
            FROM purchases WHERE customer_id = ?
            ORDER BY purchased_at DESC LIMIT 3""", (r["cid"],)).fetchall()
        resolved = time.strptime(r["resolved_at"], "%Y-%m-%d %H:%M:%S")
        v = dict(greeting=r["first_name"] or (r["name"] or "there").split()[0],
                 subject=r["subject"], weekday=DAYS[resolved.tm_wday],
                 agent=r["agent"] or "our team", ticket=r["id"],
                 locale=r["locale"] or "en")
        text = TEXT.substitute(v, purchases="".join(
            "  - %s: %d.%02d %s (%s)\n" % (b[0], b[1] // 100, b[1] % 100,
                                           b[2], b[3]) for b in buys)
            or "  (none yet)\n")
        hv = {k: html.escape(str(x)) for k, x in v.items()}
        page = HTML.substitute(hv, purchases="".join(
            "<li>%s: <strong>%d.%02d %s</strong> (%s)</li>\n" % (
                html.escape(b[0]), b[1] // 100, b[1] % 100, b[2], b[3])
            for b in buys) or "<li>none yet</li>\n")
        m = EmailMessage()
        m["From"] = FROM
        m["To"] = "%s <%s>" % (r["name"], r["email"]) if r["name"] else r["email"]
        m["Reply-To"] = "help@acme.example"
        m["Subject"] = "Checking in: \u201c%s\u201d" % r["subject"]
        m["Date"] = formatdate(now)
        m["Message-ID"] = "<%s@acme.example>" % uuid.uuid4()
        m["Auto-Submitted"] = "auto-generated"
        m.set_content(text)
        m.add_alternative(page, subtype="html")
        smtp.send_message(m, from_addr=SENDER, to_addrs=[r["email"]])
        sent += 1
    smtp.quit()
    print("%d %.3f" % (sent, time.monotonic() - t0))


if __name__ == "__main__":
    sys.exit(main())
