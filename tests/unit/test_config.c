/* test_config: scheduler.conf parsing: values, defaults, paths, secrets, and every error with its line. */
#include "config.h"
#include "rating.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[] = "/tmp/test_config.XXXXXX";
static char rootreal[PATH_MAX];	/* what relative paths resolve against */

#define LIT(s)	s, sizeof(s) - 1

/* Building blocks with known line counts. */
#define SRC	"[source]\ndatabase = db\n"				/* 2 lines */
#define RULE	"[rule r]\nkind = after_resolution\ndelay = 1d\n"	/* 3 lines */
#define SMTP	"[smtp]\nfrom = a@b.example\n"				/* 2 lines */
#define ALL	SRC RULE SMTP	/* 7 lines: what follows is line 8, in [smtp] */
#define NOFROM	SRC RULE "[smtp]\n"	/* 6 lines: line 7 is in [smtp] */

static const struct {
	const char	*text;
	size_t		 len;
	const char	*want;	/* the whole of errs; @DIR@ is the temp dir */
} error_cases[] = {
	/* sections */
	{ LIT(ALL "[smpt]\nhost = x\n"),
	  "t.conf:8: unknown section [smpt] (did you mean [smtp]?)\n" },
	{ LIT(ALL "[Queue]\n"),
	  "t.conf:8: unknown section [Queue] (did you mean [queue]?)\n" },
	{ LIT(ALL "[frobnicate]\nx = 1\n  continued\n"),
	  "t.conf:8: unknown section [frobnicate] (known: source, queue, "
	  "templates, smtp, metrics, defaults, calendar, rule NAME)\n" },
	{ LIT(ALL "[rules x]\n"),
	  "t.conf:8: unknown section [rules x] (did you mean [rule x]?)\n" },
	{ LIT(ALL "[smtp extra]\n"),
	  "t.conf:8: unknown section [smtp extra] (known: source, queue, "
	  "templates, smtp, metrics, defaults, calendar, rule NAME)\n" },
	{ LIT(ALL "[queue] ; the queue\ntick = 0\n"),
	  "t.conf:8: text after ']' (comments go on a line of their own)\n" },
	{ LIT(ALL "[queue\n"),
	  "t.conf:8: section header without ']'\n" },
	{ LIT(ALL "[source]\ndatabase = other\n"),
	  "t.conf:8: duplicate section [source] (first at line 1)\n" },

	/* rules */
	{ LIT(ALL "[rule checkin]\nkind = after_resolution\ndealy = 3d\ndelay = 3d\n"),
	  "t.conf:10: unknown key 'dealy' in [rule checkin] (did you mean 'delay'?)\n" },
	{ LIT(ALL "[rule r]\nkind = after_resolution\ndelay = 2d\n"),
	  "t.conf:8: duplicate rule 'r' (first defined at line 3)\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\n"),
	  "t.conf:8: missing required key 'delay' in [rule x]\n" },
	{ LIT(ALL "[rule x]\n"),
	  "t.conf:8: missing required key 'kind' in [rule x]\n"
	  "t.conf:8: missing required key 'delay' in [rule x]\n" },
	{ LIT(ALL "[rule x]\nkind = bday\ndelay = 1d\n"),
	  "t.conf:9: kind: unknown rule kind 'bday' (allowed: after_resolution, agent_reminder, birthday, anniversary, loyalty)\n" },
	{ LIT(ALL "[rule check in]\nkind = after_resolution\n"),
	  "t.conf:8: rule name 'check in': use 1 to 64 letters, digits, '_' or '-'\n" },
	{ LIT(ALL "[rule ../x]\n"),
	  "t.conf:8: rule name '../x': use 1 to 64 letters, digits, '_' or '-'\n" },
	{ LIT(ALL "[rule]\n"),
	  "t.conf:8: [rule] needs a name: [rule NAME]\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 1d\ntemplate = ../etc\n"),
	  "t.conf:11: template: '../etc': use 1 to 64 letters, digits, '_' or '-'\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 1d\nlookback = 0\n"),
	  "t.conf:11: lookback: '0' is out of range (1s to 3660d)\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 1d\nhistory = perhaps\n"),
	  "t.conf:11: history: 'perhaps' is not yes or no (use yes, no, true, "
	  "false, 1 or 0)\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 1d\nenabled = yes # on\n"),
	  "t.conf:11: enabled: 'yes # on' is not yes or no (use yes, no, true, "
	  "false, 1 or 0) (comments go on a line of their own)\n" },

	/* keys and lines */
	{ LIT("database = x\n" ALL),
	  "t.conf:1: key 'database' outside any section (put it under a "
	  "[section] header)\n" },
	{ LIT(ALL "[queue]\nfoo = 1\n"),
	  "t.conf:9: unknown key 'foo' in [queue]\n" },
	{ LIT(ALL "[queue]\nmax backoff = 1h\n"),
	  "t.conf:9: unknown key 'max backoff' in [queue] (did you mean "
	  "'max_backoff'?)\n" },
	{ LIT(ALL "[queue]\nTick = 1h\n"),
	  "t.conf:9: unknown key 'Tick' in [queue] (did you mean 'tick'?)\n" },
	{ LIT(ALL "[queue]\ntick = 5s\ntick = 6s\n"),
	  "t.conf:10: duplicate key 'tick' in [queue] (first set at line 9)\n" },
	{ LIT(ALL "[queue]\ntick 60s\n"),
	  "t.conf:9: expected 'key = value', a [section] header or a comment, "
	  "not 'tick 60s'\n" },
	{ LIT(ALL "= 5\n"),
	  "t.conf:8: missing key before '='\n" },
	{ LIT("[source]\ndatabase =\n" RULE SMTP),
	  "t.conf:2: empty value for 'database'\n" },
	{ LIT(ALL "[queue]\ntick =\n"),
	  "t.conf:9: empty value for 'tick' (remove the line to use the "
	  "default, 60s)\n" },
	{ LIT(ALL "[queue]\n  tick = 5s\n"),
	  "t.conf:9: continuation line with nothing to continue (remove the "
	  "leading white space)\n" },
	{ LIT(ALL "[queue]\ntick = 5s\n  batch = 3\n  more\n"),
	  "t.conf:10: this line begins with white space, so it continues 'tick' "
	  "(line 9), which takes one line: remove the leading white space\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 1d\nquery = SELECT 1\n"
	  "\n  FROM t\n  WHERE 1\n"),
	  "t.conf:13: continuation line with nothing to continue: the blank line "
	  "above ended 'query' (line 11); remove it or the leading white space\n" },

	/* ratings (issue 12) */
	{ LIT(ALL "[rule b]\nkind = agent_reminder\ndelay = 1h\nratings = yes\n"),
	  "t.conf:11: [rule b]: ratings = yes is for rules of kind "
	  "after_resolution (a check-in) only\n" },
	{ LIT(ALL "[rule c]\nkind = after_resolution\ndelay = 1d\nratings = yes\n"),
	  "t.conf:11: [rule c] asks for ratings: set [ratings] url (the https "
	  "address of the rating page that followupd serve answers)\n" },
	{ LIT(ALL "[ratings]\nscale = stars\n"),
	  "t.conf:9: scale: unknown value 'stars' (allowed: csat, good-bad, "
	  "nps)\n" },
	{ LIT(ALL "[ratings]\nlow = 6\n"),
	  "t.conf:9: low: '6' is not a score of the csat scale (1 to 5)\n" },
	{ LIT(ALL "[ratings]\nscale = good-bad\nlow = meh\n"),
	  "t.conf:10: low: 'meh' is not a score of the good-bad scale (0 to 1, "
	  "or bad)\n" },
	{ LIT(ALL "[ratings]\nscale = nps\nlow = 11\n"),
	  "t.conf:10: low: '11' is not a score of the nps scale (0 to 10)\n" },
	{ LIT(ALL "[ratings]\nsample = 150%\n"),
	  "t.conf:9: sample: '150%': a share of check-ins from 0% to 100%, "
	  "e.g. 25%\n" },
	{ LIT(ALL "[ratings]\nsample = half\n"),
	  "t.conf:9: sample: 'half': a share of check-ins from 0% to 100%, "
	  "e.g. 25%\n" },
	{ LIT(ALL "[ratings]\nurl = http://desk.example/rate\n"),
	  "t.conf:9: url: 'http://desk.example/rate': an https URL without "
	  "query or fragment, e.g. https://desk.example/rate\n" },
	{ LIT(ALL "[ratings]\nurl = https://desk.example/rate?x=1\n"),
	  "t.conf:9: url: 'https://desk.example/rate?x=1': an https URL without "
	  "query or fragment, e.g. https://desk.example/rate\n" },
	{ LIT(ALL "[ratings]\nnotify = lead\n"),
	  "t.conf:9: notify: 'lead': missing '@'\n" },
	{ LIT(ALL "[ratings]\nwindow = 0\n"),
	  "t.conf:9: window: '0' is out of range (1h to 366d)\n" },
	{ LIT(ALL "[unsubscribe]\nurl = https://a.example/go\n[ratings]\n"
	  "url = https://b.example/go\n"),
	  "t.conf:11: url: 'https://b.example/go' has the path of [unsubscribe] "
	  "url; give the rating page its own (e.g. /rate)\n" },

	/* durations and numbers */
	{ LIT(ALL "[queue]\ntick = 3x\n"),
	  "t.conf:9: tick: '3x': unknown unit 'x' (use s, m, h, d, w)\n" },
	{ LIT(ALL "[queue]\ntick = 0\n"),
	  "t.conf:9: tick: '0' is out of range (1s to 1d)\n" },
	{ LIT(ALL "[queue]\ntick = -5s\n"),
	  "t.conf:9: tick: '-5s': negative durations are not allowed\n" },
	{ LIT(ALL "[queue]\ntick = 60s ; one minute\n"),
	  "t.conf:9: tick: '60s ; one minute': unexpected ' ' (write e.g. 90, "
	  "30s, 15m, 2h, 3d, 1w or 1d12h) (comments go on a line of their own)\n" },
	{ LIT(ALL "[queue]\nmin_backoff = 1h\nmax_backoff = 10m\n"),
	  "t.conf:10: max_backoff (600s) is less than min_backoff (3600s)\n" },
	{ LIT(ALL "[queue]\nbatch = 0\n"),
	  "t.conf:9: batch: 0 is out of range (1 to 10000)\n" },
	{ LIT(ALL "port = 70000\n"),
	  "t.conf:8: port: 70000 is out of range (1 to 65535)\n" },
	{ LIT(ALL "connections = 0\nrate = -1\n"),
	  "t.conf:8: connections: 0 is out of range (1 to 64)\n"
	  "t.conf:9: rate: '-1' is not a whole number\n" },
	{ LIT(ALL "port = 25x\n"),
	  "t.conf:8: port: '25x' is not a whole number\n" },
	{ LIT(ALL "port = -25\n"),
	  "t.conf:8: port: '-25' is not a whole number\n" },
	{ LIT(ALL "port = 99999999999999999999999\n"),
	  "t.conf:8: port: '99999999999999999999999' is not a whole number\n" },
	{ LIT(ALL "starttls = maybe\n"),
	  "t.conf:8: starttls: unknown value 'maybe' (allowed: no, optional, "
	  "required)\n" },
	{ LIT(ALL "timeout = 2h\n"),
	  "t.conf:8: timeout: '2h' is out of range (1s to 1h)\n" },
	{ LIT(SRC RULE SMTP "[source]\n"),
	  "t.conf:8: duplicate section [source] (first at line 1)\n" },

	/* [smtp] values */
	{ LIT(ALL "host = mail example\n"),
	  "t.conf:8: host: 'mail example' contains white space\n" },
	{ LIT(NOFROM "host = x\n"),
	  "t.conf:6: missing required key 'from' in [smtp]\n" },
	{ LIT(NOFROM "from = support.acme.example\n"),
	  "t.conf:7: from: 'support.acme.example': missing '@' (use 'Name "
	  "<address@domain>' or 'address@domain')\n" },
	{ LIT(NOFROM "from = Acme <support@acme.example\n"),
	  "t.conf:7: from: 'Acme <support@acme.example': expected 'Display Name "
	  "<address@domain>' (use 'Name <address@domain>' or 'address@domain')\n" },
	{ LIT(NOFROM "from = Acme <a@b.example> x\n"),
	  "t.conf:7: from: 'Acme <a@b.example> x': expected 'Display Name "
	  "<address@domain>' (use 'Name <address@domain>' or 'address@domain')\n" },
	{ LIT(NOFROM "from = a@b@c\n"),
	  "t.conf:7: from: 'a@b@c': more than one '@' (use 'Name "
	  "<address@domain>' or 'address@domain')\n" },
	{ LIT(NOFROM "from = Acme <a b@c>\n"),
	  "t.conf:7: from: 'Acme <a b@c>': white space or a special character in "
	  "the address (use 'Name <address@domain>' or 'address@domain')\n" },
	{ LIT(NOFROM "from = a..b@c\n"),
	  "t.conf:7: from: 'a..b@c': misplaced '.' in the address (use 'Name "
	  "<address@domain>' or 'address@domain')\n" },
	{ LIT(NOFROM "from = Acme <>\n"),
	  "t.conf:7: from: 'Acme <>': empty address (use 'Name "
	  "<address@domain>' or 'address@domain')\n" },
	{ LIT(NOFROM "from = <@b>\n"),
	  "t.conf:7: from: '<@b>': the part before '@' must be 1 to 64 "
	  "characters (use 'Name <address@domain>' or 'address@domain')\n" },
	{ LIT(ALL "reply_to = nobody\n"),
	  "t.conf:8: reply_to: 'nobody': missing '@' (use 'Name "
	  "<address@domain>' or 'address@domain')\n" },
	{ LIT(ALL "username = bob\n"),
	  "t.conf:8: username is set but password_file is not: AUTH needs both\n" },

	/* bytes */
	{ LIT(ALL "[queue]\ntick = 6\0s\n"),
	  "t.conf:9: NUL byte in line (the file must be UTF-8 text)\n" },
	{ LIT(ALL "; caf\xe9\n"),
	  "t.conf:8: invalid UTF-8 in line (the file must be UTF-8 text)\n" },
	{ LIT(ALL "; overlong \xc0\xaf\n"),
	  "t.conf:8: invalid UTF-8 in line (the file must be UTF-8 text)\n" },
	{ LIT(ALL "host = a\001b\n"),
	  "t.conf:8: control character in line (the file must be UTF-8 text)\n" },
	{ LIT(ALL "host = a\rb\n"),
	  "t.conf:8: control character in line (the file must be UTF-8 text)\n" },

	/* whole file */
	{ LIT(RULE SMTP),
	  "t.conf: missing section [source] (it must set 'database')\n" },
	{ LIT(SRC SMTP),
	  "t.conf: no [rule NAME] section: nothing to do\n" },
	{ LIT(""),
	  "t.conf: missing section [source] (it must set 'database')\n"
	  "t.conf: missing section [smtp] (it must set 'from')\n"
	  "t.conf: no [rule NAME] section: nothing to do\n" },

	/* [defaults] timezone */
	{ LIT(ALL "[defaults]\ntimezone = Europe Berlin\n"),
	  "t.conf:9: timezone: 'Europe Berlin' is not a time zone name (e.g. "
	  "Europe/Berlin or UTC)\n" },
	{ LIT(ALL "[defaults]\ntimezone = ../../etc/passwd\n"),
	  "t.conf:9: timezone: '../../etc/passwd' is not a time zone name (e.g. "
	  "Europe/Berlin or UTC)\n" },
	{ LIT(ALL "[defaults]\ntimezone = /usr/share/zoneinfo/UTC\n"),
	  "t.conf:9: timezone: '/usr/share/zoneinfo/UTC' is not a time zone "
	  "name (e.g. Europe/Berlin or UTC)\n" },
	{ LIT(ALL "[defaults]\ntimezone = Europe/Berlin ; home\n"),
	  "t.conf:9: timezone: 'Europe/Berlin ; home' is not a time zone name "
	  "(e.g. Europe/Berlin or UTC) (comments go on a line of their own)\n" },
	{ LIT(ALL "[defaults]\ntimezone = UTC\ntimezone = CET\n"),
	  "t.conf:10: duplicate key 'timezone' in [defaults] (first set at "
	  "line 9)\n" },
	{ LIT(ALL "[defaults]\ntime_zone = UTC\n"),
	  "t.conf:9: unknown key 'time_zone' in [defaults] (did you mean "
	  "'timezone'?)\n" },

	/* quiet_hours, in [defaults] and in a rule */
	{ LIT(ALL "[defaults]\nquiet_hours = 8pm-8am\n"),
	  "t.conf:9: quiet_hours: '8pm-8am': write 'HH:MM-HH:MM' (e.g. "
	  "20:00-08:00) or 'none'\n" },
	{ LIT(ALL "[defaults]\nquiet_hours = 20:00-20:00\n"),
	  "t.conf:9: quiet_hours: '20:00-20:00': write 'HH:MM-HH:MM' (e.g. "
	  "20:00-08:00) or 'none'\n" },
	{ LIT(ALL "[defaults]\nquiet_hours = 25:00-08:00\n"),
	  "t.conf:9: quiet_hours: '25:00-08:00': write 'HH:MM-HH:MM' (e.g. "
	  "20:00-08:00) or 'none'\n" },
	{ LIT(ALL "[defaults]\nquiet_hours = 20:00-24:01\n"),
	  "t.conf:9: quiet_hours: '20:00-24:01': write 'HH:MM-HH:MM' (e.g. "
	  "20:00-08:00) or 'none'\n" },
	{ LIT(ALL "[defaults]\nquiet_hours = 20:00\n"),
	  "t.conf:9: quiet_hours: '20:00': write 'HH:MM-HH:MM' (e.g. "
	  "20:00-08:00) or 'none'\n" },
	{ LIT(ALL "[defaults]\nquiet_hours = 20:00 - 08:00\n"),
	  "t.conf:9: quiet_hours: '20:00 - 08:00': write 'HH:MM-HH:MM' (e.g. "
	  "20:00-08:00) or 'none'\n" },
	{ LIT(ALL "[defaults]\nquiet_hours = 8:00-20:00\n"),
	  "t.conf:9: quiet_hours: '8:00-20:00': write 'HH:MM-HH:MM' (e.g. "
	  "20:00-08:00) or 'none'\n" },
	{ LIT(ALL "[defaults]\nquiet_hours = 20:00-08:00 # nights\n"),
	  "t.conf:9: quiet_hours: '20:00-08:00 # nights': write 'HH:MM-HH:MM' "
	  "(e.g. 20:00-08:00) or 'none' (comments go on a line of their own)\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 1d\n"
	  "quiet_hours = never\n"),
	  "t.conf:11: quiet_hours: 'never': write 'HH:MM-HH:MM' (e.g. "
	  "20:00-08:00) or 'none'\n" },

	/* send_window */
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 1d\n"
	  "send_window = Mon-Fry 09:00-17:00\n"),
	  "t.conf:11: send_window: 'Mon-Fry 09:00-17:00': write days and hours, "
	  "e.g. 'Mon-Fri 09:00-17:00' or 'Mon,Wed 08:30-12:00'\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 1d\n"
	  "send_window = Monday-Friday 09:00-17:00\n"),
	  "t.conf:11: send_window: 'Monday-Friday 09:00-17:00': write days and "
	  "hours, e.g. 'Mon-Fri 09:00-17:00' or 'Mon,Wed 08:30-12:00'\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 1d\n"
	  "send_window = Mon-Wed-Fri 09:00-17:00\n"),
	  "t.conf:11: send_window: 'Mon-Wed-Fri 09:00-17:00': write days and "
	  "hours, e.g. 'Mon-Fri 09:00-17:00' or 'Mon,Wed 08:30-12:00'\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 1d\n"
	  "send_window = Mon,,Fri 09:00-17:00\n"),
	  "t.conf:11: send_window: 'Mon,,Fri 09:00-17:00': write days and "
	  "hours, e.g. 'Mon-Fri 09:00-17:00' or 'Mon,Wed 08:30-12:00'\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 1d\n"
	  "send_window = Mon, 09:00-17:00\n"),
	  "t.conf:11: send_window: 'Mon, 09:00-17:00': write days and "
	  "hours, e.g. 'Mon-Fri 09:00-17:00' or 'Mon,Wed 08:30-12:00'\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 1d\n"
	  "send_window = Mon-Fri\n"),
	  "t.conf:11: send_window: 'Mon-Fri': write days and "
	  "hours, e.g. 'Mon-Fri 09:00-17:00' or 'Mon,Wed 08:30-12:00'\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 1d\n"
	  "send_window = 09:00-17:00\n"),
	  "t.conf:11: send_window: '09:00-17:00': write days and "
	  "hours, e.g. 'Mon-Fri 09:00-17:00' or 'Mon,Wed 08:30-12:00'\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 1d\n"
	  "send_window = Mon-Fri 9:00-17:00\n"),
	  "t.conf:11: send_window: 'Mon-Fri 9:00-17:00': write days and "
	  "hours, e.g. 'Mon-Fri 09:00-17:00' or 'Mon,Wed 08:30-12:00'\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 1d\n"
	  "send_window = Mon-Fri 09:00-17:60\n"),
	  "t.conf:11: send_window: 'Mon-Fri 09:00-17:60': write days and "
	  "hours, e.g. 'Mon-Fri 09:00-17:00' or 'Mon,Wed 08:30-12:00'\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 1d\n"
	  "send_window = Mon-Fri 09:00-24:30\n"),
	  "t.conf:11: send_window: 'Mon-Fri 09:00-24:30': write days and "
	  "hours, e.g. 'Mon-Fri 09:00-17:00' or 'Mon,Wed 08:30-12:00'\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 1d\n"
	  "send_window = Mon-Fri 09:00-17:00 ; office\n"),
	  "t.conf:11: send_window: 'Mon-Fri 09:00-17:00 ; office': write days "
	  "and hours, e.g. 'Mon-Fri 09:00-17:00' or 'Mon,Wed 08:30-12:00' "
	  "(comments go on a line of their own)\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 1d\n"
	  "send_window = Mon-Fri 17:00-09:00\n"),
	  "t.conf:11: send_window: 'Mon-Fri 17:00-09:00': the window must end "
	  "after it starts on the same day\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 1d\n"
	  "send_window = daily 09:00-09:00\n"),
	  "t.conf:11: send_window: 'daily 09:00-09:00': the window must end "
	  "after it starts on the same day\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 1d\n"
	  "send_window = daily 24:00-24:00\n"),
	  "t.conf:11: send_window: 'daily 24:00-24:00': the window must end "
	  "after it starts on the same day\n" },

	/* delay: durations and business days */
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 3 working days\n"),
	  "t.conf:10: delay: '3 working days': write 'N business days'\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 3 business\n"),
	  "t.conf:10: delay: '3 business': write 'N business days'\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 0 business days\n"),
	  "t.conf:10: delay: '0 business days': 1 to 365 business days\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 366 business days\n"),
	  "t.conf:10: delay: '366 business days': 1 to 365 business days\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = -2 business days\n"),
	  "t.conf:10: delay: '-2 business days': 1 to 365 business days\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\n"
	  "delay = three business days\n"),
	  "t.conf:10: delay: 'three business days': missing number before 't' "
	  "(or 'N business days')\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\n"
	  "delay = 3 business days please\n"),
	  "t.conf:10: delay: '3 business days please': write 'N business "
	  "days'\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\n"
	  "delay = 2 Business Days\n"),
	  "t.conf:10: delay: '2 Business Days': write 'N business days'\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\n"
	  "delay = 2.5 business days\n"),
	  "t.conf:10: delay: '2.5 business days': unexpected '.' (write e.g. "
	  "90, 30s, 15m, 2h, 3d, 1w or 1d12h) (or 'N business days')\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 3 days\n"),
	  "t.conf:10: delay: '3 days': unexpected ' ' (write e.g. 90, 30s, 15m, "
	  "2h, 3d, 1w or 1d12h) (or 'N business days')\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 3x\n"),
	  "t.conf:10: delay: '3x': unknown unit 'x' (use s, m, h, d, w) (or "
	  "'N business days')\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\ndelay = 3661d\n"),
	  "t.conf:10: delay: '3661d' is out of range (0 to 3660d)\n" },
	{ LIT(ALL "[rule x]\nkind = after_resolution\n"
	  "delay = 2 business days ; callback\n"),
	  "t.conf:10: delay: '2 business days ; callback': write 'N business "
	  "days' (comments go on a line of their own)\n" },

	/* agent_reminder: duration, alarm */
	{ LIT(ALL "[rule cb]\nkind = agent_reminder\ndelay = 1d\nduration = 30s\n"),
	  "t.conf:11: duration: '30s' is out of range (1m to 1d)\n" },
	{ LIT(ALL "[rule cb]\nkind = agent_reminder\ndelay = 1d\nduration = 2d\n"),
	  "t.conf:11: duration: '2d' is out of range (1m to 1d)\n" },
	{ LIT(ALL "[rule cb]\nkind = agent_reminder\ndelay = 1d\nduration = 0\n"),
	  "t.conf:11: duration: '0' is out of range (1m to 1d)\n" },
	{ LIT(ALL "[rule cb]\nkind = agent_reminder\ndelay = 1d\n"
	  "duration = quarter hour\n"),
	  "t.conf:11: duration: 'quarter hour': missing number before 'q'\n" },
	{ LIT(ALL "[rule cb]\nkind = agent_reminder\ndelay = 1d\nalarm = 8d\n"),
	  "t.conf:11: alarm: '8d' is out of range (0 to 7d)\n" },
	{ LIT(ALL "[rule cb]\nkind = agent_reminder\ndelay = 1d\nalarm = -10m\n"),
	  "t.conf:11: alarm: '-10m': negative durations are not allowed\n" },
	{ LIT(ALL "[rule cb]\nkind = agent_reminder\ndelay = 1d\nalarm = 10 min\n"),
	  "t.conf:11: alarm: '10 min': unexpected ' ' (write e.g. 90, 30s, 15m, "
	  "2h, 3d, 1w or 1d12h)\n" },
	{ LIT(ALL "[rule cb]\nkind = agent_reminder\ndelay = 1d\nalarms = 5m\n"),
	  "t.conf:11: unknown key 'alarms' in [rule cb] (did you mean "
	  "'alarm'?)\n" },

	/* [calendar] */
	{ LIT(ALL "[calendar]\nfeeds = feeds\n"),
	  "t.conf:9: unknown key 'feeds' in [calendar] (did you mean "
	  "'feed'?)\n" },
	{ LIT(ALL "[calendar]\nurl = https://desk.example/{{ticket.id}}\n"),
	  "t.conf:9: unknown key 'url' in [calendar]\n" },
	{ LIT(ALL "[calendar]\nlink = a\nlink = b\n"),
	  "t.conf:10: duplicate key 'link' in [calendar] (first set at line "
	  "9)\n" },
	{ LIT(ALL "[calendar feeds]\n"),
	  "t.conf:8: unknown section [calendar feeds] (known: source, queue, "
	  "templates, smtp, metrics, defaults, calendar, rule NAME)\n" },

	/* all errors, not only the first */
	{ LIT(ALL "[queue]\ntick = 3x\nbatch = 0\nfoo = 1\n[nope]\n[rule y]\n"),
	  "t.conf:9: tick: '3x': unknown unit 'x' (use s, m, h, d, w)\n"
	  "t.conf:10: batch: 0 is out of range (1 to 10000)\n"
	  "t.conf:11: unknown key 'foo' in [queue]\n"
	  "t.conf:12: unknown section [nope] (known: source, queue, templates, "
	  "smtp, metrics, defaults, calendar, rule NAME)\n"
	  "t.conf:13: missing required key 'kind' in [rule y]\n"
	  "t.conf:13: missing required key 'delay' in [rule y]\n" },
};

static const struct {
	const char	*in;
	long		 want;		/* when err is NULL */
	const char	*err;
} duration_cases[] = {
	{ "90", 90, NULL },
	{ "0", 0, NULL },
	{ "007", 7, NULL },
	{ "30s", 30, NULL },
	{ "0s", 0, NULL },
	{ "15m", 900, NULL },
	{ "2h", 7200, NULL },
	{ "3d", 259200, NULL },
	{ "1w", 604800, NULL },
	{ "1d12h", 129600, NULL },
	{ "1w2d3h4m5s", 788645, NULL },
	{ "4000s", 4000, NULL },
	{ "9223372036854775807", LONG_MAX, NULL },
	{ "9223372036854775807s", LONG_MAX, NULL },
	{ "", 0, "empty duration" },
	{ NULL, 0, "empty duration" },
	{ "-5", 0, "'-5': negative durations are not allowed" },
	{ "-1d", 0, "'-1d': negative durations are not allowed" },
	{ "3x", 0, "'3x': unknown unit 'x' (use s, m, h, d, w)" },
	{ "5ms", 0, "'5ms': unknown unit 'ms' (use s, m, h, d, w)" },
	{ "2days", 0, "'2days': unknown unit 'days' (use s, m, h, d, w)" },
	{ "30S", 0, "'30S': unknown unit 'S' (use s, m, h, d, w)" },
	{ "1h1d", 0, "'1h1d': units go from largest to smallest, each once (w, d, h, m, s)" },
	{ "1d1d", 0, "'1d1d': units go from largest to smallest, each once (w, d, h, m, s)" },
	{ "1d12", 0, "'1d12': missing unit after 12 (use s, m, h, d, w)" },
	{ "d", 0, "'d': missing number before 'd'" },
	{ "1d h", 0, "'1d h': unexpected ' ' (write e.g. 90, 30s, 15m, 2h, 3d, 1w or 1d12h)" },
	{ "1.5h", 0, "'1.5h': unexpected '.' (write e.g. 90, 30s, 15m, 2h, 3d, 1w or 1d12h)" },
	{ " 5s", 0, "' 5s': unexpected ' ' (write e.g. 90, 30s, 15m, 2h, 3d, 1w or 1d12h)" },
	{ "+5s", 0, "'+5s': unexpected '+' (write e.g. 90, 30s, 15m, 2h, 3d, 1w or 1d12h)" },
	{ "9223372036854775808", 0, "'9223372036854775808': too large" },
	{ "99999999999999999999s", 0, "'99999999999999999999s': too large" },
	{ "9223372036854775807m", 0, "'9223372036854775807m': too large" },
	{ "15250284452471w", 9223372036854460800L, NULL },
	{ "15250284452472w", 0, "'15250284452472w': too large" },
	{ "15250284452470w5000000d", 0, "'15250284452470w5000000d': too large" },
};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
write_file(const char *path, const char *data, size_t len, mode_t mode)
{
	int fd;

	unlink(path);
	if ((fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, mode)) == -1) {
		tap_diag("create %s: %s", path, strerror(errno));
		return;
	}
	if (write(fd, data, len) != (ssize_t)len)
		tap_diag("write %s: %s", path, strerror(errno));
	fchmod(fd, mode);	/* not narrowed by the umask */
	close(fd);
}

/* want with every "@DIR@" replaced by the temp dir's real path. */
static char *
expand(const char *want)
{
	struct buf b = { 0 };
	const char *p;

	while ((p = strstr(want, "@DIR@")) != NULL) {
		buf_append(&b, want, (size_t)(p - want));
		buf_puts(&b, rootreal);
		want = p + 5;
	}
	buf_puts(&b, want);
	return buf_steal(&b);
}

/* Loads text as t.conf; returns the config (or NULL) and the errors. */
static struct config *
load(const char *text, size_t len, struct buf *errs)
{
	write_file("t.conf", text, len, 0644);
	buf_reset(errs);
	return config_load("t.conf", errs);
}

static void
test_errors(void)
{
	struct buf errs = { 0 };

	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
		struct config *c = load(error_cases[i].text, error_cases[i].len,
		    &errs);
		char *want = expand(error_cases[i].want);
		const char *first = strchr(want, '\n') ? want : "";

		tap_ok(c == NULL, "error case %zu refused", i);
		tap_str(buf_cstr(&errs), want, "error case %zu: %.*s", i,
		    (int)strcspn(first, "\n"), first);
		config_free(c);
		free(want);
	}
	buf_free(&errs);
}

static void
test_full(void)
{
	static const char text[] =
	    "; followupd test configuration\n"
	    "# both comment styles\n"
	    "\n"
	    "[source]\n"
	    "database = demo/helpdesk.db\n"
	    "busy_timeout = 2s\n"
	    "\n"
	    "[queue]\n"
	    "dir = /var/spool/followupd\n"
	    "tick = 1m\n"
	    "min_backoff = 10m\n"
	    "max_backoff = 2h\n"
	    "queue_lifetime = 3d\n"
	    "sent_retention = 1w\n"
	    "batch = 50\n"
	    "recycle = no\n"
	    "\n"
	    "[templates]\n"
	    "dir = tpl\n"
	    "\n"
	    "[smtp]\n"
	    "host = mail.acme.example\n"
	    "port = 587\n"
	    "starttls = Required\n"
	    "ca_file = ca.pem\n"
	    "username = support\n"
	    "password_file = pw\n"
	    "from = Acme Support <support@acme.example>\n"
	    "reply_to = help@acme.example\n"
	    "helo = relay.acme.example\n"
	    "timeout = 45s\n"
	    "\n"
	    "[rule checkin]\n"			/* line 32 */
	    "kind = after_resolution\n"
	    "delay = 3d\n"
	    "lookback = 10d\n"
	    "template = checkin_v2\n"
	    "history = no\n"
	    "enabled = FALSE\n"
	    "query = SELECT t.id, c.email\n"	/* line 39 */
	    "    FROM tickets t   \n"
	    "\t  JOIN customers c ON c.id = t.customer_id\n"
	    "  ; a comment inside the value is skipped\n"
	    "    WHERE t.note = 'a ; b # c'\n"
	    "\n"
	    "[rule thanks]\n"			/* line 45 */
	    "kind = after_resolution\n"
	    "delay = 0\n";
	struct buf errs = { 0 };
	struct config *c;
	const struct rule_config *r;
	char *want;

	write_file("pw", LIT("s3cret word\nsecond line\n"), 0600);
	c = load(LIT(text), &errs);
	tap_ok(c != NULL, "full config loads (%s)", buf_cstr(&errs));
	if (c == NULL) {
		buf_free(&errs);
		return;
	}
	tap_str(c->path, "t.conf", "path as given");
	tap_str(c->dir, rootreal, "dir is the config's real directory");
	want = expand("@DIR@/demo/helpdesk.db");
	tap_str(c->database, want, "database resolved");
	free(want);
	tap_ok(c->busy_timeout_ms == 2000, "busy_timeout 2s = 2000 ms");
	tap_str(c->queue_dir, "/var/spool/followupd", "absolute queue dir kept");
	tap_ok(c->tick == 60, "tick 1m");
	tap_ok(c->min_backoff == 600 && c->max_backoff == 7200, "backoffs");
	tap_ok(c->queue_lifetime == 3 * 86400, "queue_lifetime 3d");
	tap_ok(c->sent_retention == 7 * 86400, "sent_retention 1w");
	tap_ok(c->batch == 50, "batch");
	tap_ok(c->recycle == 0, "recycle = no");
	want = expand("@DIR@/tpl");
	tap_str(c->templates_dir, want, "templates dir resolved");
	free(want);
	tap_str(c->smtp.host, "mail.acme.example", "host");
	tap_ok(c->smtp.port == 587, "port");
	tap_ok(c->smtp.starttls == SMTP_STARTTLS_REQUIRED, "starttls, any case");
	want = expand("@DIR@/ca.pem");
	tap_str(c->smtp.ca_file, want, "ca_file resolved");
	free(want);
	tap_str(c->smtp.username, "support", "username");
	want = expand("@DIR@/pw");
	tap_str(c->password_file, want, "password_file resolved");
	free(want);
	tap_str(c->smtp.password, "s3cret word", "password: first line, no newline");
	tap_str(c->from, "Acme Support <support@acme.example>", "from");
	tap_str(c->from_addr, "support@acme.example", "from_addr");
	tap_str(c->reply_to, "help@acme.example", "reply_to");
	tap_str(c->smtp.helo, "relay.acme.example", "helo");
	tap_ok(c->smtp.timeout_ms == 45000, "timeout 45s");
	tap_ok(c->nrules == 2, "two rules");

	r = config_rule(c, "checkin");
	tap_ok(r != NULL && r->line == 33, "rule checkin at line 33");
	if (r != NULL) {
		tap_ok(r->kind == RULE_AFTER_RESOLUTION, "kind");
		tap_ok(r->delay == 3 * 86400 && r->lookback == 10 * 86400,
		    "delay 3d, lookback 10d");
		tap_str(r->template_name, "checkin_v2", "template");
		tap_ok(r->history == 0 && r->enabled == 0, "history no, enabled FALSE");
		tap_str(r->query, "SELECT t.id, c.email\n"
		    "FROM tickets t\n"
		    "JOIN customers c ON c.id = t.customer_id\n"
		    "WHERE t.note = 'a ; b # c'",
		    "query: continuation lines trimmed, joined by \\n, ';' and '#' kept");
		tap_ok(r->query_line == 40, "query_line 40 (%d)", r->query_line);
	}
	r = config_rule(c, "thanks");
	tap_ok(r != NULL && r->line == 46, "rule thanks at line 46");
	if (r != NULL) {
		tap_ok(r->delay == 0 && r->lookback == 7 * 86400,
		    "delay 0, lookback defaults to delay + 7d");
		tap_str(r->template_name, "thanks", "template defaults to the rule name");
		tap_ok(r->history == 1 && r->enabled == 1, "history, enabled default yes");
		tap_ok(r->query == NULL && r->query_line == 0, "no query: NULL");
	}
	tap_ok(config_rule(c, "nope") == NULL, "config_rule: unknown name is NULL");
	config_free(c);
	buf_free(&errs);
}

static void
test_defaults(void)
{
	/* BOM, CRLF, tabs, no final newline, optional keys left empty. */
	static const char text[] =
	    "\xef\xbb\xbf[source]\r\n"
	    "database\t=\t/srv/desk.db\r\n"
	    "[smtp]\r\n"
	    "from = support@acme.example\r\n"
	    "reply_to =\r\n"
	    "[rule r]\r\n"
	    "kind = after_resolution\r\n"
	    "delay = 2d\r\n"
	    "query =\r\n"
	    "  SELECT 1\r\n"
	    "template =";
	struct buf errs = { 0 };
	struct config *c = load(LIT(text), &errs);
	char *want;

	tap_ok(c != NULL, "BOM, CRLF, tabs, no final newline (%s)", buf_cstr(&errs));
	if (c == NULL) {
		buf_free(&errs);
		return;
	}
	tap_str(c->database, "/srv/desk.db", "database");
	tap_ok(c->busy_timeout_ms == 5000, "default busy_timeout 5s");
	want = expand("@DIR@/queue");
	tap_str(c->queue_dir, want, "default queue dir");
	free(want);
	tap_ok(c->tick == 60 && c->min_backoff == 300 && c->max_backoff == 4000 &&
	    c->queue_lifetime == 432000 && c->sent_retention == 0 &&
	    c->batch == 100 && c->recycle == 1,
	    "default tick, backoffs, lifetime, retention, batch, recycle");
	want = expand("@DIR@/templates");
	tap_str(c->templates_dir, want, "default templates dir");
	free(want);
	tap_str(c->smtp.host, "127.0.0.1", "default host");
	tap_ok(c->smtp.port == 25 && c->smtp.starttls == SMTP_STARTTLS_NO &&
	    c->smtp.timeout_ms == 30000, "default port, starttls, timeout");
	tap_ok(c->connections == 4 && c->rate == 0,
	    "default connections 4, no rate limit");
	tap_ok(c->smtp.ca_file == NULL && c->smtp.username == NULL &&
	    c->smtp.password == NULL && c->password_file == NULL &&
	    c->smtp.helo == NULL && c->reply_to == NULL,
	    "unset optional strings are NULL (an empty value is unset)");
	tap_str(c->from, "support@acme.example", "bare from");
	tap_str(c->from_addr, "support@acme.example", "from_addr of a bare from");
	tap_ok(c->nrules == 1 && c->rules[0].lookback == 9 * 86400,
	    "lookback = delay + 7d");
	if (c->nrules == 1) {
		tap_str(c->rules[0].query, "SELECT 1", "query starting on the next line");
		tap_str(c->rules[0].template_name, "r", "empty template: the rule name");
	}
	config_free(c);
	buf_free(&errs);
}

/* [bounces]: defaults, every key, and what check refuses. */
static void
test_bounces(void)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
		{ ALL "[bounces]\nreturn_path = not an address\n",
		  "t.conf:9: return_path: 'not an address': " },
		{ ALL "[bounces]\nreturn_path = a-very-long-bounce-mailbox@desk.example\n",
		  "t.conf:9: return_path: 'a-very-long-bounce-mailbox@desk.example': "
		  "its local part is too long for a per-message address (e.g. "
		  "bounces@desk.example, a local part of at most 22 octets)\n" },
		{ ALL "[bounces]\ndelimiter = ++\n",
		  "t.conf:9: delimiter: '++': want one of + - = _" },
		{ ALL "[bounces]\ndelimiter = .\n",
		  "t.conf:9: delimiter: '.': want one of + - = _" },
		{ ALL "[bounces]\ncomplaint = everything\n",
		  "t.conf:9: complaint: unknown value 'everything' (allowed: "
		  "marketing, all)" },
		{ ALL "[bounces]\nsoft_limit = 0\n", "t.conf:9: soft_limit: " },
		{ ALL "[bounces]\nsoft_window = 10m\n", "t.conf:9: soft_window: " },
		{ ALL "[bounces]\nsoft_windw = 1d\n", "t.conf:9: unknown key "
		  "'soft_windw' in [bounces] (did you mean 'soft_window'?)" },
	};
	struct buf errs = { 0 };
	struct config *c;
	char *want;

	c = load(LIT(ALL), &errs);
	tap_ok(c != NULL && c->bounces_return_path == NULL &&
	    c->bounces_maildir == NULL && strcmp(c->bounces_delimiter, "+") == 0 &&
	    c->bounces_soft_limit == 5 && c->bounces_soft_window == 30 * 86400 &&
	    c->bounces_complaint == CONFIG_COMPLAINT_MARKETING,
	    "[bounces] defaults: no VERP, +, 5 in 30 days, complaint marketing "
	    "(%s)", buf_cstr(&errs));
	config_free(c);
	c = load(LIT(ALL "[bounces]\nreturn_path = bounces@desk.example\n"
	    "delimiter = -\nmaildir = mail/bounces\nsoft_limit = 3\n"
	    "soft_window = 2w\ncomplaint = all\n"), &errs);
	tap_ok(c != NULL, "[bounces] with every key loads (%s)", buf_cstr(&errs));
	if (c != NULL) {
		tap_str(c->bounces_return_path, "bounces@desk.example",
		    "return_path");
		tap_str(c->bounces_delimiter, "-", "delimiter");
		want = expand("@DIR@/mail/bounces");
		tap_str(c->bounces_maildir, want, "maildir, relative to the file");
		free(want);
		tap_ok(c->bounces_soft_limit == 3 &&
		    c->bounces_soft_window == 14 * 86400 &&
		    c->bounces_complaint == CONFIG_COMPLAINT_ALL,
		    "soft_limit, soft_window, complaint");
	}
	config_free(c);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = load(bad[i].text, strlen(bad[i].text), &errs);
		tap_ok(c == NULL && strncmp(buf_cstr(&errs), bad[i].want,
		    strlen(bad[i].want)) == 0, "[bounces] refused %zu: %s", i,
		    buf_cstr(&errs));
		config_free(c);
	}
	buf_free(&errs);
}

/* The time keys ([defaults], per-rule windows, delays) and agent reminders. */
#define M(h, m)	((h) * 60 + (m))
#define DAYS(n)	((long)(n) * 86400)

static void
test_time_keys(void)
{
	static const char text[] =
	    SRC SMTP
	    "[rule checkin]\n"			/* line 5 */
	    "kind = after_resolution\n"
	    "delay = 3d\n"
	    "send_window = Mon-Fri 09:00-17:00\n"
	    "holidays = hol/de-be.ics\n"		/* line 9 */
	    "[rule callback]\n"
	    "kind = agent_reminder\n"
	    "delay = 2 business days\n"
	    "alarm = 0\n"
	    "[rule weekly]\n"
	    "kind = after_resolution\n"
	    "delay = 10 business days\n"
	    "send_window = Sun-Thu 08:00-16:00\n"
	    "quiet_hours = none\n"
	    "[rule wrap]\n"
	    "kind = agent_reminder\n"
	    "delay = 1 business day\n"
	    "send_window = Fri-Mon 00:00-24:00\n"
	    "quiet_hours = 21:00-07:30\n"
	    "duration = 1h\n"
	    "alarm = 1d\n"
	    "[rule list]\n"
	    "kind = after_resolution\n"
	    "delay = 1d12h\n"
	    "send_window = mon,wed,FRI  08:30-12:00\n"
	    "lookback = 30d\n"
	    "[rule daily]\n"
	    "kind = after_resolution\n"
	    "delay = 5 Business days\n"	/* refused below; replaced */
	    ;
	static const struct {
		const char	*name;
		enum rule_kind	 kind;
		long		 delay, lookback;
		int		 business_days;
		unsigned	 days;
		int		 wstart, wend, qstart, qend;
		long		 duration, alarm;
	} want[] = {
		/* quiet hours: the rule's, else [defaults] (set after the rules) */
		{ "checkin", RULE_AFTER_RESOLUTION, DAYS(3), DAYS(10), 0,
		  0x3e, M(9, 0), M(17, 0), M(20, 0), M(8, 0), 900, 600 },
		/* lookback = (N + N / 5 * 2 + 2) days + 7d */
		{ "callback", RULE_AGENT_REMINDER, DAYS(4), DAYS(11), 2,
		  0, 0, 0, M(20, 0), M(8, 0), 900, 0 },
		{ "weekly", RULE_AFTER_RESOLUTION, DAYS(16), DAYS(23), 10,
		  0x1f, M(8, 0), M(16, 0), 0, 0, 900, 600 },
		{ "wrap", RULE_AGENT_REMINDER, DAYS(3), DAYS(10), 1,
		  0x63, M(0, 0), M(24, 0), M(21, 0), M(7, 30), 3600, 86400 },
		{ "list", RULE_AFTER_RESOLUTION, DAYS(1) + 12 * 3600, DAYS(30), 0,
		  0x2a, M(8, 30), M(12, 0), M(20, 0), M(8, 0), 900, 600 },
		{ "daily", RULE_AFTER_RESOLUTION, DAYS(9), DAYS(16), 5,
		  0x7f, M(0, 0), M(24, 0), M(20, 0), M(8, 0), 900, 600 },
	};
	struct buf errs = { 0 }, conf = { 0 };
	struct config *c;
	char *wantp;

	/* One refused value: the rest of the file is still checked. */
	c = load(LIT(text), &errs);
	tap_ok(c == NULL, "'5 Business days' is refused");
	tap_str(buf_cstr(&errs), "t.conf:33: delay: '5 Business days': write "
	    "'N business days'\n", "…with its line and the form to write");
	config_free(c);

	buf_append(&conf, text, sizeof(text) - 1 - strlen("delay = 5 Business "
	    "days\n"));
	buf_puts(&conf, "delay = 5 business days\n"
	    "send_window = daily 00:00-24:00\n"
	    "[defaults]\n"
	    "timezone = America/New_York\n"
	    "quiet_hours = 20:00-08:00\n"
	    "[calendar]\n"
	    "feed = feeds\n"
	    "link = https://desk.example/t/{{ticket.id}}?a=1;b=2 #top\n");
	c = load(conf.data, conf.len, &errs);
	tap_ok(c != NULL, "time keys load (%s)", buf_cstr(&errs));
	if (c == NULL)
		goto out;
	tap_str(c->timezone, "America/New_York", "[defaults] timezone");
	tap_ok(c->timezone_line == 36, "timezone_line 36 (%d)",
	    c->timezone_line);
	tap_str(c->quiet_hours, "20:00-08:00", "[defaults] quiet_hours as written");
	tap_ok(c->quiet.start == M(20, 0) && c->quiet.end == M(8, 0),
	    "[defaults] quiet_hours 20:00-08:00 wraps midnight");
	wantp = expand("@DIR@/feeds");
	tap_str(c->calendar_feed, wantp, "[calendar] feed resolved");
	free(wantp);
	tap_str(c->calendar_link, "https://desk.example/t/{{ticket.id}}?a=1;b=2 "
	    "#top", "[calendar] link verbatim (';' and '#' are part of it)");
	tap_ok(c->nrules == 6, "six rules");
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct rule_config *r = config_rule(c, want[i].name);

		if (!tap_ok(r != NULL, "rule %s", want[i].name))
			continue;
		tap_ok(r->kind == want[i].kind, "%s: kind", r->name);
		tap_ok(r->delay == want[i].delay && r->business_days ==
		    want[i].business_days, "%s: delay %lds, %d business days "
		    "(got %lds, %d)", r->name, want[i].delay,
		    want[i].business_days, r->delay, r->business_days);
		tap_ok(r->lookback == want[i].lookback, "%s: lookback %ld days "
		    "(got %ld)", r->name, want[i].lookback / 86400,
		    r->lookback / 86400);
		tap_ok(r->window.days == want[i].days && (want[i].days == 0 ||
		    (r->window.start == want[i].wstart && r->window.end ==
		    want[i].wend)), "%s: send_window days %#x %d-%d (got %#x "
		    "%d-%d)", r->name, want[i].days, want[i].wstart,
		    want[i].wend, r->window.days, r->window.start,
		    r->window.end);
		tap_ok(r->quiet.start == want[i].qstart && r->quiet.end ==
		    want[i].qend, "%s: quiet hours %d-%d (got %d-%d)", r->name,
		    want[i].qstart, want[i].qend, r->quiet.start, r->quiet.end);
		tap_ok(r->duration == want[i].duration && r->alarm ==
		    want[i].alarm, "%s: duration %lds, alarm %lds (got %ld, "
		    "%ld)", r->name, want[i].duration, want[i].alarm,
		    r->duration, r->alarm);
	}
	{
		const struct rule_config *r = config_rule(c, "checkin");

		wantp = expand("@DIR@/hol/de-be.ics");
		tap_str(r ? r->holidays : NULL, wantp, "holidays resolved "
		    "next to the config (read by render_open, not here)");
		free(wantp);
		tap_ok(r && r->holidays_line == 9, "holidays_line 9");
		tap_str(r ? r->send_window : NULL, "Mon-Fri 09:00-17:00",
		    "send_window as written");
		tap_ok(r && r->quiet_hours == NULL, "no rule quiet_hours: NULL "
		    "(the [defaults] one applies)");
		r = config_rule(c, "callback");
		tap_str(r ? r->delay_text : NULL, "2 business days",
		    "delay as written");
		tap_ok(r && r->holidays == NULL && r->send_window == NULL,
		    "no holidays, no window: NULL");
	}
	config_free(c);

	/* Without [defaults] and [calendar]: UTC, no quiet hours, no feed. */
	c = load(LIT(ALL), &errs);
	tap_ok(c != NULL && c->timezone == NULL && c->quiet_hours == NULL &&
	    c->quiet.start == c->quiet.end && c->calendar_feed == NULL &&
	    c->calendar_link == NULL, "defaults: no zone (UTC), no quiet "
	    "hours, no calendar");
	tap_ok(c != NULL && c->rules[0].window.days == 0 &&
	    c->rules[0].quiet.start == c->rules[0].quiet.end &&
	    c->rules[0].duration == 900 && c->rules[0].alarm == 600 &&
	    c->rules[0].business_days == 0 && c->rules[0].holidays == NULL,
	    "rule defaults: always open, no quiet hours, 15m, alarm 10m");
	config_free(c);
out:
	buf_free(&conf);
	buf_free(&errs);
}

/* A 10 KB query over continuation lines, and one 10 KB physical line. */
static void
test_long_query(void)
{
	struct buf text = { 0 }, want = { 0 }, errs = { 0 };
	const struct rule_config *r;
	struct config *c;
	int i;

	buf_puts(&text, SRC SMTP "[rule big]\nkind = after_resolution\n"
	    "delay = 1h\nquery = SELECT id\n");	/* query at line 8 */
	buf_puts(&want, "SELECT id");
	for (i = 0; want.len < 10 * 1024; i++) {
		buf_printf(&text, "    , CASE WHEN col_%d = 'x;#%d' THEN 1 ELSE 0 END "
		    "AS flag_%d\n", i, i, i);
		buf_printf(&want, "\n, CASE WHEN col_%d = 'x;#%d' THEN 1 ELSE 0 END "
		    "AS flag_%d", i, i, i);
	}
	buf_puts(&text, "    FROM tickets\n[rule wide]\nkind = after_resolution\n"
	    "delay = 1h\nquery = SELECT 1");
	buf_puts(&want, "\nFROM tickets");
	for (int k = 0; k < 1000; k++)
		buf_puts(&text, " + 1234567");	/* 10 000 bytes on one line */
	buf_puts(&text, "\n");

	c = load(text.data, text.len, &errs);
	tap_ok(c != NULL, "a %zu-byte file with a %zu-byte query loads (%s)",
	    text.len, want.len, buf_cstr(&errs));
	if (c != NULL) {
		r = config_rule(c, "big");
		tap_ok(r != NULL && r->query != NULL && strlen(r->query) == want.len,
		    "big query length %zu", r && r->query ? strlen(r->query) : 0);
		tap_ok(r != NULL && r->query != NULL &&
		    strcmp(r->query, want.data) == 0, "big query intact (%d lines)",
		    i + 2);
		tap_ok(r != NULL && r->query_line == 8, "big query_line 8");
		r = config_rule(c, "wide");
		tap_ok(r != NULL && r->query != NULL &&
		    strlen(r->query) == strlen("SELECT 1") + 10000,
		    "a 10 KB line is not truncated");
	}
	config_free(c);
	buf_free(&text);
	buf_free(&want);
	buf_free(&errs);
}

static void
test_password_file(void)
{
	static const struct {
		const char	*file;		/* NULL: do not create */
		mode_t		 mode;
		const char	*content;
		const char	*want;		/* NULL: loads; else the errors */
		const char	*password;
	} cases[] = {
		{ "pw", 0600, "hunter2\n", NULL, "hunter2" },
		{ "pw", 0400, "hunter2", NULL, "hunter2" },
		{ "pw", 0600, "with spaces; and # signs \r\nnext\n", NULL,
		  "with spaces; and # signs " },
		{ "pw", 0644, "hunter2\n",
		  "t.conf:9: password_file @DIR@/pw is readable by others "
		  "(mode 0644): chmod 600 it\n", NULL },
		{ "pw", 0640, "hunter2\n",
		  "t.conf:9: password_file @DIR@/pw is readable by others "
		  "(mode 0640): chmod 600 it\n", NULL },
		{ "pw", 0602, "hunter2\n",
		  "t.conf:9: password_file @DIR@/pw is accessible by others "
		  "(mode 0602): chmod 600 it\n", NULL },
		{ "pw", 0600, "\nsecond\n",
		  "t.conf:9: password_file @DIR@/pw: the first line is empty\n",
		  NULL },
		{ "pw", 0600, "",
		  "t.conf:9: password_file @DIR@/pw: the first line is empty\n",
		  NULL },
		{ NULL, 0, NULL,
		  "t.conf:9: password_file @DIR@/pw: No such file or directory\n",
		  NULL },
	};
	struct buf errs = { 0 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config *c;

		unlink("pw");
		if (cases[i].file)
			write_file(cases[i].file, cases[i].content,
			    strlen(cases[i].content), cases[i].mode);
		c = load(LIT(ALL "username = bob\npassword_file = pw\n"), &errs);
		if (cases[i].want == NULL) {
			tap_ok(c != NULL, "password file mode %04o loads (%s)",
			    (unsigned)cases[i].mode, buf_cstr(&errs));
			tap_str(c ? c->smtp.password : NULL, cases[i].password,
			    "password read from a %04o file",
			    (unsigned)cases[i].mode);
		} else {
			char *want = expand(cases[i].want);

			tap_ok(c == NULL, "password file case %zu refused", i);
			tap_str(buf_cstr(&errs), want, "password file case %zu", i);
			free(want);
		}
		config_free(c);
	}

	/* A directory, a file of another user, a password without a user. */
	unlink("pw");
	mkdir("pw", 0700);
	config_free(load(LIT(ALL "username = bob\npassword_file = pw\n"), &errs));
	{
		char *want = expand("t.conf:9: password_file @DIR@/pw is not a "
		    "regular file\n");

		tap_str(buf_cstr(&errs), want, "password_file is a directory");
		free(want);
	}
	rmdir("pw");

	write_file("pw", LIT("hunter2\n"), 0600);
	if (geteuid() == 0 && chown("pw", 12345, 12345) == 0) {
		char *want = expand("t.conf:9: password_file @DIR@/pw is owned by "
		    "uid 12345, neither us (uid 0) nor root: chown it\n");

		config_free(load(LIT(ALL "username = bob\npassword_file = pw\n"),
		    &errs));
		tap_str(buf_cstr(&errs), want, "password_file owned by someone else");
		free(want);
	} else
		tap_skip("password_file owned by someone else", "needs root");

	write_file("pw", LIT("hunter2\n"), 0600);
	config_free(load(LIT(ALL "password_file = pw\n"), &errs));
	tap_str(buf_cstr(&errs), "t.conf:8: password_file is set but username is "
	    "not: AUTH needs both\n", "password_file without username");
	unlink("pw");
	buf_free(&errs);
}

static void
test_files(void)
{
	struct buf errs = { 0 };
	struct config *c;
	char *want;

	c = config_load("missing.conf", &errs);
	tap_ok(c == NULL, "a missing file is refused");
	tap_str(buf_cstr(&errs), "missing.conf: No such file or directory\n",
	    "missing file: FILE: message");

	/* errs may be NULL. */
	write_file("t.conf", LIT("[bogus]\n"), 0644);
	tap_ok(config_load("t.conf", NULL) == NULL, "errs NULL: still refused");

	/* A config in a subdirectory, named by a relative path. */
	mkdir("sub", 0700);
	write_file("sub/s.conf", LIT(ALL), 0644);
	buf_reset(&errs);
	c = config_load("sub/s.conf", &errs);
	tap_ok(c != NULL, "sub/s.conf loads (%s)", buf_cstr(&errs));
	if (c != NULL) {
		want = expand("@DIR@/sub");
		tap_str(c->dir, want, "dir of sub/s.conf is absolute");
		free(want);
		want = expand("@DIR@/sub/db");
		tap_str(c->database, want, "database next to sub/s.conf");
		free(want);
	}
	config_free(c);
	/* Errors name the file as given. */
	write_file("sub/s.conf", LIT(ALL "[queue]\ntick = 1y\n"), 0644);
	buf_reset(&errs);
	c = config_load("sub/s.conf", &errs);
	tap_str(buf_cstr(&errs), "sub/s.conf:9: tick: '1y': unknown unit 'y' "
	    "(use s, m, h, d, w)\n", "errors name the path as given");
	config_free(c);
	config_free(NULL);
	buf_free(&errs);
}

static void
test_durations(void)
{
	for (size_t i = 0; i < sizeof(duration_cases) / sizeof(duration_cases[0]); i++) {
		const char *in = duration_cases[i].in;
		char *err = NULL;
		long v = -1;
		int rc = config_parse_duration(in, &v, &err);

		if (duration_cases[i].err == NULL)
			tap_ok(rc == FU_OK && v == duration_cases[i].want && err == NULL,
			    "duration '%s' = %ld (got %ld)", in,
			    duration_cases[i].want, v);
		else {
			tap_ok(rc == FU_PERMFAIL && v == -1, "duration '%s' refused",
			    in ? in : "(null)");
			tap_str(err, duration_cases[i].err, "duration '%s' error",
			    in ? in : "(null)");
		}
		free(err);
	}
}

/* [ratings]: defaults, a scale's own low, sample, and the rule key. */
static void
test_ratings(void)
{
	static const char dflt[] = ALL;
	static const char nps[] = SRC SMTP
	    "[rule c]\nkind = after_resolution\ndelay = 3d\nratings = yes\n"
	    "[ratings]\nscale = NPS\nurl = https://desk.example/rate\n"
	    "notify = lead@desk.example\nwindow = 7d\ncooldown = 0\n"
	    "sample = 25%\nquestion = Would you recommend us?\n";
	static const char gb[] = ALL "[ratings]\nscale = good-bad\nlow = bad\n"
	    "sample = 0\n";
	struct buf errs = { 0 };
	struct config *c = load(LIT(dflt), &errs);

	tap_ok(c != NULL && c->ratings_scale == RATING_CSAT &&
	    c->ratings_url == NULL && c->ratings_window == 14 * 86400 &&
	    c->ratings_low == 2 && c->ratings_notify == NULL &&
	    c->ratings_cooldown == 30 * 86400 && c->ratings_sample == 100 &&
	    c->ratings_question == NULL && c->rules[0].ratings == 0 &&
	    !config_has_ratings(c), "[ratings] defaults: csat, 14d, low 2, "
	    "30d, 100%%, rules without ratings (%s)", buf_cstr(&errs));
	config_free(c);
	c = load(LIT(nps), &errs);
	tap_ok(c != NULL && c->ratings_scale == RATING_NPS &&
	    c->ratings_low == 6 && c->ratings_window == 7 * 86400 &&
	    c->ratings_cooldown == 0 && c->ratings_sample == 25 &&
	    c->rules[0].ratings == 1 && config_has_ratings(c),
	    "nps: low defaults to 6; window, cooldown, sample read (%s)",
	    buf_cstr(&errs));
	if (c != NULL) {
		tap_str(c->ratings_url, "https://desk.example/rate", "url");
		tap_str(c->ratings_notify, "lead@desk.example", "notify");
		tap_str(c->ratings_question, "Would you recommend us?",
		    "question");
	}
	config_free(c);
	c = load(LIT(gb), &errs);
	tap_ok(c != NULL && c->ratings_scale == RATING_GOOD_BAD &&
	    c->ratings_low == 0 && c->ratings_sample == 0,
	    "good-bad: low = bad is 0; sample 0 (%s)", buf_cstr(&errs));
	config_free(c);
	buf_free(&errs);
}

int
main(void)
{
	umask(022);
	if (mkdtemp(root) == NULL || chdir(root) == -1 ||
	    realpath(root, rootreal) == NULL) {
		perror(root);
		return 1;
	}
	test_durations();
	test_errors();
	test_full();
	test_defaults();
	test_bounces();
	test_time_keys();
	test_long_query();
	test_password_file();
	test_files();
	test_ratings();

	if (chdir("/") == 0)
		nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
