/* render: tick step 2: due jobs re-checked against the source, then template → MIME → spool. */
#include "render.h"
#include "clock.h"
#include "codes.h"
#include "consent.h"
#include "ical.h"
#include "log.h"
#include "mime.h"
#include "mustache.h"
#include "progress.h"
#include "rules.h"
#include "survey.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* ASCII only, whatever the locale. */
static int
ascii_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char
ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Longest value from the database we put in a body (bytes). */
#define RENDER_VALUE_MAX	(16 * 1024)
/* Planned jobs per page: rendered, spooled and recorded together. */
#define RENDER_BATCH		250
#define RENDER_FIRST_PAGE	125

struct templates {
	const struct mustache_template *subject, *text, *html;
	/* agent_reminder: the calendar item's SUMMARY and DESCRIPTION */
	const struct mustache_template *summary, *description;
};

/* templates/NAME/LOCALE/: per-file overrides of the rule's templates. */
struct locale_set {
	char			*locale;	/* the folder's name, lower case: "de", "pt-br" */
	struct templates	 t;		/* missing files are the default's */
};

struct locale_sets {
	struct locale_set	*v;
	int			 n;
};

/* Marketing messages queued on the current page, not yet in state.db (caps). */
struct pending {
	char	*email;
	int	 rule;
};

/*
 * What a message's dates depend on besides the row: the recipient's zone
 * and the time of writing. Formatted once per zone and `now`, not per
 * message (a direct-mapped memo; a miss just formats again).
 */
#define RENDER_ZONE_MEMO	32
#define RENDER_LANGS		4	/* rules_locale_lang's: en de fr es */
struct zone_memo {
	const struct clock_zone	*zone;		/* NULL: empty slot */
	time_t			 now;
	struct clock_local	 lt;		/* now, in the zone */
	char			 date_local[32];	/* clock_format_local */
	const char		*lang[RENDER_LANGS];	/* rules_locale_lang's pointers */
	char			 date_text[RENDER_LANGS][64];
};

/* Scratch buffers kept between messages up to this size (bytes). */
#define RENDER_SCRATCH_KEEP	(256 * 1024)

struct render {
	const struct config	*cfg;
	struct mustache_cache	*cache;
	struct templates	*sets;		/* one per cfg->rules[i] */
	struct locale_sets	*locales;	/* one per cfg->rules[i] */
	const struct mustache_template **codes;	/* `code` per rule; may be NULL */
	struct consent		*consent;	/* unsubscribe tokens; NULL: no marketing */
	struct pending		*pending;
	int			 npending;
	const struct mustache_template *link;	/* [calendar] link; may be NULL */
	char			*partials_dir;
	struct render_parts	*capture;	/* preview: keep the parts here */
	int			 preview;	/* nothing rendered is sent */
	char			*sender_name;	/* [smtp] from's display name */
	char			**recheck_sql;	/* per rule, built on first use */
	char			*unsub_mailto;	/* the same for every recipient */
	struct buf		 subject, text, html;	/* per message, reused */
	struct zone_memo	 memo[RENDER_ZONE_MEMO];
};

/* Partials and parents live in templates/partials/NAME.mustache. */
static char *
load_partial(const char *name, void *arg)
{
	struct render *rd = arg;
	struct buf b = { 0 };
	char *path;

	if (name[0] == '\0' || name[0] == '.' || strchr(name, '/'))
		return NULL;
	path = xasprintf("%s/%s.mustache", rd->partials_dir, name);
	if (read_file(path, &b, NULL) != FU_OK) {
		buf_free(&b);
		free(path);
		return NULL;
	}
	free(path);
	return buf_steal(&b);
}

static const struct mustache_template *
load_one(struct render *rd, const char *dir, const char *file, int optional,
    struct buf *errs)
{
	const struct mustache_template *t = NULL;
	struct buf src = { 0 };
	char *path = xasprintf("%s/%s", dir, file), *err = NULL;

	if (read_file(path, &src, &err) != FU_OK) {
		if (!optional || errno != ENOENT)
			buf_printf(errs, "%s: cannot read template: %s\n",
			    path, err);
	} else if (!utf8_valid(src.data, src.len))
		buf_printf(errs, "%s:1: template is not valid UTF-8\n", path);
	else if ((t = mustache_parse(rd->cache, path, src.data, &err)) == NULL)
		buf_printf(errs, "%s\n", err);
	else if (mustache_check_refs(rd->cache, t, &err) != FU_OK) {
		buf_printf(errs, "%s\n", err);	/* already NAME:LINE: */
		t = NULL;
	}
	free(err);
	free(path);
	buf_free(&src);
	return t;
}

/* A locale folder's name: "de", "de-at", "pt_BR" (compared without case). */
static int
locale_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 2 || n > 16 || !ascii_alpha(s[0]) || !ascii_alpha(s[1]))
		return 0;
	if (n == 2)
		return 1;
	if (s[2] != '-' && s[2] != '_')
		return 0;
	for (size_t i = 3; i < n; i++)
		if (!(ascii_alpha(s[i]) || (s[i] >= '0' && s[i] <= '9')))
			return 0;
	return n > 3;
}

/*
 * templates/NAME/LOCALE/{subject,text,html}.mustache: the message for
 * customers of that locale ("de" for de-DE and de-AT unless a "de-at"
 * folder exists), a whole set like the default's (html optional); the
 * calendar templates of a reminder stay the default's.
 */
static void
load_locales(struct render *rd, int ri, const char *dir, struct buf *errs)
{
	struct locale_sets *ls;
	struct dirent *de;
	DIR *d;

	if (rd->locales == NULL)
		rd->locales = xcalloc((size_t)rd->cfg->nrules,
		    sizeof(*rd->locales));
	ls = &rd->locales[ri];
	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char *sub;
		struct stat sb;
		struct locale_set *l;

		if (!locale_name_ok(de->d_name))
			continue;
		sub = xasprintf("%s/%s", dir, de->d_name);
		if (stat(sub, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
			free(sub);
			continue;
		}
		ls->v = xrealloc(ls->v, (size_t)(ls->n + 1) * sizeof(*ls->v));
		l = &ls->v[ls->n++];
		l->locale = xstrdup(de->d_name);
		for (char *p = l->locale; *p; p++)
			*p = *p == '_' ? '-' : ascii_lower(*p);
		/* A locale's set is whole: its own subject and text (both
		 * required) and html (optional: text only without it). */
		l->t = rd->sets[ri];
		l->t.subject = load_one(rd, sub, "subject.mustache", 0, errs);
		l->t.text = load_one(rd, sub, "text.mustache", 0, errs);
		l->t.html = load_one(rd, sub, "html.mustache", 1, errs);
		free(sub);
	}
	closedir(d);
}

/*
 * Marketing: each rule's `code` text, and the secret unsubscribe tokens
 * are signed with (created on first use in the queue directory). Before
 * the queue exists (`check` or `preview` on a fresh install) an ephemeral
 * secret stands in: those messages are never sent.
 */
static void
render_open_consent(struct render *rd, struct buf *errs)
{
	const struct config *cfg = rd->cfg;
	char *err = NULL;

	rd->codes = xcalloc((size_t)cfg->nrules + 1, sizeof(*rd->codes));
	for (int i = 0; i < cfg->nrules; i++) {
		const struct rule_config *r = &cfg->rules[i];
		char *name;

		if (r->code == NULL)
			continue;
		name = xasprintf("%s: [rule %s] code", cfg->path, r->name);
		if ((rd->codes[i] = mustache_parse(rd->cache, name,
		    strcmp(r->code, "random") == 0 ? "{{code.random}}" : r->code,
		    &err)) == NULL)
			buf_printf(errs, "%s\n", err);
		free(err);
		err = NULL;
		free(name);
	}
	/* Rating links are signed with the same secret (survey.c). */
	if (!config_has_marketing(cfg) && !config_has_ratings(cfg))
		return;
	{
		struct stat sb;
		char *path = consent_secret_path(cfg);
		char *dir = xstrdup(path), *slash = strrchr(dir, '/');

		/* The directory part, as dirname(3) gives it. */
		if (slash == NULL)
			strcpy(dir, ".");
		else if (slash == dir)
			dir[1] = '\0';
		else
			*slash = '\0';
		if (stat(path, &sb) == -1 && stat(dir, &sb) == -1) {
			/*
			 * Only a preview may stand in a throwaway secret: a
			 * sent token must verify later. The queue directory
			 * itself is created by the daemon before it sends.
			 */
			if (rd->preview || strcmp(dir, cfg->queue_dir) == 0)
				rd->consent = consent_ephemeral();
			else
				buf_printf(errs, "%s: [unsubscribe] secret_file: "
				    "the directory %s does not exist: create it "
				    "(mode 0700) so that unsubscribe links can be "
				    "verified\n", cfg->path, dir);
		} else if (consent_open(cfg, 1, &rd->consent, &err) != FU_OK)
			buf_printf(errs, "%s: [unsubscribe] secret_file: %s\n",
			    cfg->path, err);
		free(err);
		free(path);
		free(dir);
	}
}

static void
pending_clear(struct render *rd)
{
	for (int i = 0; i < rd->npending; i++)
		free(rd->pending[i].email);
	free(rd->pending);
	rd->pending = NULL;
	rd->npending = 0;
}

/* "Name <addr>" → "Name"; "addr" → "". */
static char *
from_display_name(const char *from)
{
	const char *lt = strchr(from, '<');
	size_t n;

	if (lt == NULL)
		return xstrdup("");
	n = (size_t)(lt - from);
	while (n > 0 && (from[n - 1] == ' ' || from[n - 1] == '"'))
		n--;
	while (*from == '"' && n > 0) {
		from++;
		n--;
	}
	return xstrndup(from, n);
}

struct render *
render_open(const struct config *cfg, int preview, struct buf *errs)
{
	struct render *rd = xcalloc(1, sizeof(*rd));
	size_t before = errs->len;

	rd->cfg = cfg;
	rd->preview = preview;
	rd->partials_dir = xasprintf("%s/partials", cfg->templates_dir);
	rd->sender_name = from_display_name(cfg->from);
	rd->cache = mustache_cache_new(load_partial, rd);
	rd->sets = xcalloc((size_t)cfg->nrules, sizeof(*rd->sets));
	for (int i = 0; i < cfg->nrules; i++) {
		char *dir = xasprintf("%s/%s", cfg->templates_dir,
		    cfg->rules[i].template_name);

		rd->sets[i].subject = load_one(rd, dir, "subject.mustache", 0,
		    errs);
		rd->sets[i].text = load_one(rd, dir, "text.mustache", 0, errs);
		rd->sets[i].html = load_one(rd, dir, "html.mustache", 1, errs);
		if (cfg->rules[i].kind == RULE_AGENT_REMINDER) {
			rd->sets[i].summary = load_one(rd, dir,
			    "summary.mustache", 0, errs);
			rd->sets[i].description = load_one(rd, dir,
			    "description.mustache", 1, errs);
		}
		load_locales(rd, i, dir, errs);
		free(dir);
	}
	render_open_consent(rd, errs);
	if (cfg->calendar_link != NULL) {
		char *e = NULL;
		char *name = xasprintf("%s: [calendar] link", cfg->path);

		if ((rd->link = mustache_parse(rd->cache, name,
		    cfg->calendar_link, &e)) == NULL)
			buf_printf(errs, "%s\n", e);
		free(e);
		free(name);
	}
	/*
	 * Zones and holiday files: reported here, so `check`, start-up and a
	 * reload see them. Always rebuilt: a reloaded config may sit where
	 * the old one was freed.
	 */
	rules_time_free();
	rules_time_load(cfg, errs);
	if (errs->len != before) {
		render_close(rd);
		return NULL;
	}
	return rd;
}

void
render_close(struct render *rd)
{
	if (rd == NULL)
		return;
	mustache_cache_free(rd->cache);
	for (int i = 0; rd->locales && i < rd->cfg->nrules; i++) {
		for (int k = 0; k < rd->locales[i].n; k++)
			free(rd->locales[i].v[k].locale);
		free(rd->locales[i].v);
	}
	free(rd->locales);
	free(rd->codes);
	consent_free(rd->consent);
	pending_clear(rd);
	free(rd->sets);
	free(rd->partials_dir);
	free(rd->sender_name);
	free(rd->unsub_mailto);
	for (int i = 0; rd->recheck_sql && i < rd->cfg->nrules; i++)
		free(rd->recheck_sql[i]);
	free(rd->recheck_sql);
	buf_free(&rd->subject);
	buf_free(&rd->text);
	buf_free(&rd->html);
	free(rd);
}

static int
rule_index(const struct render *rd, const char *name)
{
	for (int i = 0; i < rd->cfg->nrules; i++)
		if (strcmp(rd->cfg->rules[i].name, name) == 0)
			return i;
	return -1;
}

/* The string at a path of the row ("customer.first_name"), or NULL. */
static const char *
row_str(const struct value *row, const char *path)
{
	char key[128];
	const char *dot;

	while ((dot = strchr(path, '.')) != NULL) {
		size_t n = (size_t)(dot - path);

		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		row = value_map_get(row, key);
		path = dot + 1;
	}
	row = value_map_get(row, path);
	if (row == NULL || value_type(row) == VALUE_NULL)
		return NULL;
	return value_as_string(row, NULL);
}

/*
 * 1 when utf8_sanitize would return s unchanged: valid UTF-8 no longer
 * than the bound, no control character but TAB and LF. Most values are
 * (one pass, no copy).
 */
static int
clean_text(const char *s, size_t len)
{
	int ascii = 1;

	if (len > RENDER_VALUE_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20) {
			if (c != '\t' && c != '\n')
				return 0;
		} else if (c == 0x7f)
			return 0;
		else if (c >= 0x80)
			ascii = 0;
	}
	return ascii || utf8_valid(s, len);
}

/*
 * Every string from the database is made safe for a body before it reaches
 * a template: valid UTF-8, no control characters, bounded length.
 */
static void
sanitize_tree(struct value *v)
{
	size_t len;

	switch (value_type(v)) {
	case VALUE_LIST:
		for (size_t i = 0; i < value_list_len(v); i++)
			sanitize_tree((struct value *)(uintptr_t)
			    value_list_at(v, i));
		break;
	case VALUE_MAP:
		for (size_t i = 0; i < value_map_len(v); i++) {
			const struct value *c = value_map_value_at(v, i);
			const char *s = value_as_string(c, &len);

			if (s != NULL && !clean_text(s, len)) {
				const char *k = value_map_key_at(v, i);
				struct buf b = { 0 };

				utf8_sanitize(s, len, RENDER_VALUE_MAX, &b);
				if (b.len != len || memcmp(b.data, s, len) != 0)
					value_map_set(v, k,
					    value_stringn(buf_cstr(&b), b.len));
				buf_free(&b);
			} else if (s == NULL)
				sanitize_tree((struct value *)(uintptr_t)c);
		}
		break;
	default:
		break;
	}
}

static const char *const render_days[] = { "Sunday", "Monday", "Tuesday",
    "Wednesday", "Thursday", "Friday", "Saturday" };
static const char *const render_months[] = { "January", "February", "March",
    "April", "May", "June", "July", "August", "September", "October",
    "November", "December" };

/* n as "%lld" writes it, at p (no NUL); how many bytes (at most 20). */
static size_t
put_ll(char *p, long long n)
{
	char tmp[20];
	unsigned long long u = n < 0 ? 0ull - (unsigned long long)n :
	    (unsigned long long)n;
	size_t k = 0, len = 0;

	do
		tmp[k++] = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (n < 0)
		p[len++] = '-';
	while (k > 0)
		p[len++] = tmp[--k];
	return len;
}

/*
 * Weekday and date of the resolution in the customer's zone ("Tuesday",
 * "3 November 2026"): ticket.resolved_weekday and ticket.resolved_date.
 */
static void
add_local_dates(struct value *ctx, time_t t, const char *zone)
{
	/* clock's zones are loaded once per process; parsing the zone file
	 * for every message (g_time_zone_new_identifier) was a third of the
	 * rendering time. Unknown or missing zone: UTC. */
	const struct clock_zone *tz = clock_zone_or(zone, NULL);
	struct clock_local lt;
	const char *mon;
	char text[64];
	size_t n, m;

	clock_to_local(tz, t, &lt);
	value_map_set_path(ctx, "ticket.resolved_weekday",
	    value_string(render_days[lt.wday % 7]));
	/* "%d %s %d", without printf */
	mon = render_months[lt.mon - 1];
	m = strlen(mon);
	n = put_ll(text, lt.day);
	text[n++] = ' ';
	memcpy(text + n, mon, m);
	n += m;
	text[n++] = ' ';
	n += put_ll(text + n, lt.year);
	value_map_set_path(ctx, "ticket.resolved_date", value_stringn(text, n));
}

/* The memo of (zone, now): now's local time and date_local in the zone. */
static struct zone_memo *
zone_memo(struct render *rd, const struct clock_zone *z, time_t now)
{
	/* Zones are kept for the process: the pointer names the zone. */
	struct zone_memo *m = &rd->memo[((uintptr_t)z >> 4) % RENDER_ZONE_MEMO];

	if (m->zone != z || m->now != now || z == NULL) {
		memset(m, 0, sizeof(*m));
		m->zone = z;
		m->now = now;
		clock_to_local(z, now, &m->lt);
		clock_format_local(z, now, m->date_local);
	}
	return m;
}

/* message.date_text: now's date in the zone as `lang` writes it. */
static const char *
memo_date_text(struct zone_memo *m, const char *lang, struct buf *b)
{
	buf_reset(b);
	for (int k = 0; k < RENDER_LANGS; k++) {
		if (m->lang[k] == lang)
			return m->date_text[k];
		if (m->lang[k] != NULL)
			continue;
		rules_format_date(lang, m->lt.year, m->lt.mon, m->lt.day, b);
		if (b->len >= sizeof(m->date_text[k]))
			return buf_cstr(b);
		memcpy(m->date_text[k], buf_cstr(b), b->len + 1);
		m->lang[k] = lang;
		return m->date_text[k];
	}
	rules_format_date(lang, m->lt.year, m->lt.mon, m->lt.day, b);
	return buf_cstr(b);
}

/* First name, else the first word of the name, else nothing. */
static void
add_greeting_name(struct value *ctx)
{
	const char *first = row_str(ctx, "customer.first_name");
	const char *name = row_str(ctx, "customer.name");

	if (name == NULL)
		name = row_str(ctx, "name");
	while (first && (*first == ' ' || *first == '\t'))
		first++;
	if (first && *first) {
		value_map_set_path(ctx, "customer.greeting_name",
		    value_string(first));
		return;
	}
	while (name && (*name == ' ' || *name == '\t'))
		name++;
	if (name && *name) {
		size_t n = strcspn(name, " \t,");

		value_map_set_path(ctx, "customer.greeting_name",
		    value_stringn(name, n));
	}
}

/* "followupd.JOBID.RANDOM@DOMAIN", RANDOM 16 hex digits: no printf. */
static char *
new_message_id(int64_t job_id, const char *from_addr)
{
	static const char hexd[] = "0123456789abcdef";
	const char *domain = mime_address_domain(from_addr);
	unsigned char rnd[8];
	char head[64];
	size_t n;
	struct buf b = { 0 };

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		fatal("render: getrandom");
	memcpy(head, "followupd.", 10);
	n = 10;
	n += put_ll(head + n, (long long)job_id);
	head[n++] = '.';
	for (size_t i = 0; i < sizeof(rnd); i++) {
		head[n++] = hexd[rnd[i] >> 4];
		head[n++] = hexd[rnd[i] & 15];
	}
	head[n++] = '@';
	buf_reserve(&b, n + strlen(domain));
	buf_append(&b, head, n);
	buf_puts(&b, domain);
	return buf_steal(&b);
}

/* preview: note a variable that rendered as nothing (mustache's missing callback). */
struct capture_arg {
	struct render_parts	*parts;
	const struct value	*ctx;
	const char		*template;	/* "subject", "text", "html" */
};

static void
note_missing(const char *name, void *arg)
{
	struct capture_arg *ca = arg;
	const struct value *v = ca->ctx;
	char line[300], *seg, *save = NULL, copy[256];
	const char *p;
	size_t n;

	/* rating.* is ours, set only when a check-in asks (survey.c). */
	if (strcmp(name, ".") == 0 || strncmp(name, "rating.", 7) == 0)
		return;
	snprintf(copy, sizeof(copy), "%s", name);
	for (seg = strtok_r(copy, ".", &save); seg && v; seg = strtok_r(NULL,
	    ".", &save))
		v = value_map_get(v, seg);
	snprintf(line, sizeof(line), "%s\t%s\t", name, v ? "empty" :
	    "missing");
	/* Once per variable: a line starting "NAME\t" means it is known. */
	n = strlen(name) + 1;
	for (p = buf_cstr(&ca->parts->missing); *p; p = strchr(p, '\n') + 1)
		if (strncmp(p, line, n) == 0)
			return;
	buf_printf(&ca->parts->missing, "%s%s\n", line, ca->template);
}

/*
 * The calendar item of an agent reminder, as template variables and as
 * what build_message gives ical_build: calendar.method, .uid, .sequence,
 * .request / .cancel / .update (booleans), .start / .end (Unix times), .start_local
 * and .end_local ("2026-11-05 10:00 +01:00", the agent's zone), .start_utc,
 * .timezone. The recipient (email, name, tz) is the reminder's agent,
 * which for a CANCEL may no longer be the ticket's.
 */
static void
set_calendar_ctx(struct render *rd, struct value *ctx, const struct reminder *rm,
    const char *method)
{
	const struct clock_zone *z = rules_zone(rd->cfg, rm->tz);
	char a[32], b[32], c[20];

	value_map_set(ctx, "email", value_string(rm->agent));
	value_map_set(ctx, "name", rm->agent_name ?
	    value_string(rm->agent_name) : value_null());
	value_map_set(ctx, "tz", value_string(clock_zone_name(z)));
	value_map_set_path(ctx, "calendar.method", value_string(method));
	value_map_set_path(ctx, "calendar.uid", value_string(rm->uid));
	value_map_set_path(ctx, "calendar.sequence",
	    value_number(rm->sequence));
	value_map_set_path(ctx, "calendar.request",
	    value_bool(strcmp(method, "REQUEST") == 0));
	value_map_set_path(ctx, "calendar.cancel",
	    value_bool(strcmp(method, "CANCEL") == 0));
	/* Mustache's 0 is true: templates test update, not sequence. */
	value_map_set_path(ctx, "calendar.update", value_bool(rm->sequence > 0));
	value_map_set_path(ctx, "calendar.start", value_number((double)rm->dtstart));
	value_map_set_path(ctx, "calendar.end", value_number((double)rm->dtend));
	value_map_set_path(ctx, "calendar.start_local",
	    value_string(clock_format_local(z, rm->dtstart, a)));
	value_map_set_path(ctx, "calendar.end_local",
	    value_string(clock_format_local(z, rm->dtend, b)));
	value_map_set_path(ctx, "calendar.start_utc",
	    value_string(clock_format_sql(rm->dtstart, c)));
	value_map_set_path(ctx, "calendar.timezone",
	    value_string(clock_zone_name(z)));
}

static double
ctx_number(const struct value *ctx, const char *a, const char *b)
{
	return value_as_number(value_map_get(value_map_get(ctx, a), b));
}

/* Render one optional template into out; NULL template: nothing. */
static int
render_part(struct render *rd, const struct mustache_template *t,
    struct value *ctx, struct buf *out, char **err)
{
	if (t == NULL)
		return FU_OK;
	return mustache_render(rd->cache, t, ctx, MUSTACHE_ESCAPE_NONE, out,
	    NULL, NULL, err);
}

/*
 * The rule's templates for the recipient's customer.locale: the folder of
 * the whole locale ("pt-br"), else of its language ("pt"), else the
 * default.
 */
static const struct templates *
pick_templates(const struct render *rd, int ri, const struct value *ctx)
{
	const struct locale_sets *ls = rd->locales ? &rd->locales[ri] : NULL;
	const char *loc;
	char want[17];
	size_t n;

	if (ls == NULL || ls->n == 0 ||
	    (loc = row_str(ctx, "customer.locale")) == NULL)
		return &rd->sets[ri];
	snprintf(want, sizeof(want), "%s", loc);
	for (char *p = want; *p; p++)
		*p = *p == '_' ? '-' : ascii_lower(*p);
	for (int pass = 0; pass < 2; pass++) {
		for (int k = 0; k < ls->n; k++)
			if (strcmp(ls->v[k].locale, want) == 0)
				return &ls->v[k].t;
		if ((n = strcspn(want, "-")) == strlen(want))
			break;
		want[n] = '\0';	/* de-AT → de */
	}
	return &rd->sets[ri];
}

/*
 * Dates and amounts as the customer's locale writes them (rules.h lists
 * the formats): locale.lang, message.date_text, history.total_local and
 * each history.purchases' amount_local and date_local, birthday.date_text.
 */
static void
add_locale_values(struct value *ctx, struct zone_memo *zm)
{
	const char *lang = rules_locale_lang(row_str(ctx, "customer.locale"));
	const struct clock_zone *tz = zm->zone;
	const struct value *list;
	struct buf b = { 0 };

	value_map_set_path(ctx, "locale.lang", value_string(lang));
	value_map_set_path(ctx, "message.date_text",
	    value_string(memo_date_text(zm, lang, &b)));
	buf_reset(&b);
	if (value_map_get(value_map_get(ctx, "history"), "total_cents")) {
		rules_format_amount(lang, (long long)ctx_number(ctx, "history",
		    "total_cents"), row_str(ctx, "history.currency"), &b);
		value_map_set_path(ctx, "history.total_local",
		    value_string(buf_cstr(&b)));
		buf_reset(&b);
	}
	list = value_map_get(value_map_get(ctx, "history"), "purchases");
	for (size_t i = 0; i < value_list_len(list); i++) {
		struct value *p = (struct value *)(uintptr_t)value_list_at(list,
		    i);
		const char *cents = row_str(p, "amount_cents");
		const char *at = row_str(p, "purchased_at");
		time_t t;

		if (cents != NULL) {
			rules_format_amount(lang, strtoll(cents, NULL, 10),
			    row_str(p, "currency"), &b);
			value_map_set(p, "amount_local", value_string(buf_cstr(&b)));
			buf_reset(&b);
		}
		if (at != NULL && clock_parse(at, &t) == FU_OK) {
			struct clock_local pl;

			clock_to_local(tz, t, &pl);
			rules_format_date(lang, pl.year, pl.mon, pl.day, &b);
			value_map_set(p, "date_local", value_string(buf_cstr(&b)));
			buf_reset(&b);
		}
	}
	buf_free(&b);
}

/*
 * Marketing mail shows how to stop it in both parts: a template that does
 * not print {{unsubscribe.url}} gets a line added (text) or a paragraph
 * before </body> (HTML). The URL is base64url and '.', nothing to escape.
 */
static void
ensure_unsubscribe_link(const char *url, struct buf *text, struct buf *html)
{
	static const char text_pre[] = "\n--\nTo stop these messages: ";
	static const char html_pre[] = "<p style=\"font-size:12px;"
	    "color:#6b7280;\">To stop these messages: <a href=\"";
	static const char html_post[] = "\">unsubscribe</a></p>\n";
	size_t ulen = strlen(url);

	/* Appended and inserted in place: the buffers are kept between
	 * messages, and a printf or a copy of the part per message is not
	 * needed for three pieces of text. */
	if (strstr(buf_cstr(text), url) == NULL) {
		if (!(text->len && text->data[text->len - 1] == '\n'))
			buf_putc(text, '\n');
		buf_append(text, text_pre, sizeof(text_pre) - 1);
		buf_append(text, url, ulen);
		buf_putc(text, '\n');
	}
	if (html != NULL && strstr(buf_cstr(html), url) == NULL) {
		const char *body = strstr(buf_cstr(html), "</body>");
		size_t at = body ? (size_t)(body - html->data) : html->len;
		size_t n = sizeof(html_pre) - 1 + ulen + sizeof(html_post) - 1;

		buf_reserve(html, n);
		memmove(html->data + at + n, html->data + at,
		    html->len - at + 1);	/* with the NUL */
		memcpy(html->data + at, html_pre, sizeof(html_pre) - 1);
		memcpy(html->data + at + sizeof(html_pre) - 1, url, ulen);
		memcpy(html->data + at + sizeof(html_pre) - 1 + ulen, html_post,
		    sizeof(html_post) - 1);
		html->len += n;
		html->data[html->len] = '\0';
	}
}

/*
 * history.* from the reference schema's tables, when the rule wants it:
 * the last thing a message needs from the source. FU_TEMPFAIL when busy;
 * without the tables the message goes out without it (`check` says so).
 */
static int
render_history(struct render *rd, struct source *src, int ri,
    struct value *ctx, time_t now, char **err)
{
	const struct rule_config *rule = &rd->cfg->rules[ri];
	const char *cid;
	int r;

	if (!rule->history || (cid = row_str(ctx, "customer.id")) == NULL ||
	    (r = rules_history(src, cid, now, ctx, err)) == FU_OK)
		return FU_OK;
	if (r != FU_PERMFAIL)
		return r;
	log_warnx("render: [rule %s] history.* unavailable (%s): set "
	    "history = no for a desk without the reference schema",
	    rule->name, err && *err ? *err : "error");
	if (err != NULL) {
		free(*err);
		*err = NULL;
	}
	return FU_OK;
}

/*
 * Build the whole message for one source row, its history loaded: no
 * query from here on. The row is consumed (it becomes the template
 * context). FU_PERMFAIL for a template or data problem, with *err.
 */
static int
build_message(struct render *rd, int ri, struct value *ctx,
    const char *message_id, time_t now, struct buf *out, char **err)
{
	const struct rule_config *rule = &rd->cfg->rules[ri];
	const struct templates *t = pick_templates(rd, ri, ctx);
	/* Kept between messages: no growth from scratch each time. */
	struct buf *subject = &rd->subject, *text = &rd->text,
	    *html = &rd->html;
	char *unsub_url = NULL, *unsub_header = NULL;
	const char *unsub_mailto;
	const char *extra[5] = { NULL };
	struct buf summary = { 0 }, desc = { 0 }, link = { 0 }, ics = { 0 };
	struct mime_part_calendar cal = { NULL, NULL };
	const struct clock_zone *tz;
	struct zone_memo *zm;
	const char *at;
	time_t at_t;
	int r;

	buf_reset(subject);
	buf_reset(text);
	buf_reset(html);
	sanitize_tree(ctx);
	value_map_set_path(ctx, "sender.name", value_string(rd->sender_name));
	value_map_set_path(ctx, "sender.address",
	    value_string(rd->cfg->from_addr));
	value_map_set_path(ctx, "message.id", value_string(message_id));
	add_greeting_name(ctx);
	if ((at = row_str(ctx, "at")) != NULL && clock_parse(at, &at_t) == FU_OK &&
	    rule->kind == RULE_AFTER_RESOLUTION)
		add_local_dates(ctx, at_t, row_str(ctx, "customer.timezone"));
	/* The recipient's zone and the time of writing there. */
	tz = rules_zone(rd->cfg, row_str(ctx, "tz"));
	value_map_set_path(ctx, "recipient.timezone",
	    value_string(clock_zone_name(tz)));
	zm = zone_memo(rd, tz, now);
	value_map_set_path(ctx, "message.date_local",
	    value_string(zm->date_local));
	add_locale_values(ctx, zm);
	if (rule->cls == RULE_CLASS_MARKETING && rd->consent != NULL &&
	    row_str(ctx, "email") != NULL) {
		struct buf h = { 0 };

		/* RFC 2369 / RFC 8058: one-click https URL and a mailto. */
		unsub_url = consent_unsubscribe_url(rd->cfg, rd->consent,
		    row_str(ctx, "email"), "marketing");
		/* The mailto names the desk, not the recipient (consent.h). */
		if (rd->unsub_mailto == NULL)
			rd->unsub_mailto = consent_mailto(rd->cfg,
			    row_str(ctx, "email"), "marketing");
		unsub_mailto = rd->unsub_mailto;
		buf_reserve(&h, strlen(unsub_url) + strlen(unsub_mailto) + 6);
		buf_putc(&h, '<');
		buf_puts(&h, unsub_url);
		buf_append(&h, ">, <", 4);
		buf_puts(&h, unsub_mailto);
		buf_putc(&h, '>');
		unsub_header = buf_steal(&h);
		value_map_set_path(ctx, "unsubscribe.url",
		    value_string(unsub_url));
		value_map_set_path(ctx, "unsubscribe.mailto",
		    value_string(unsub_mailto));
		extra[0] = "List-Unsubscribe";
		extra[1] = unsub_header;
		extra[2] = "List-Unsubscribe-Post";
		extra[3] = "List-Unsubscribe=One-Click";
	}
	if (rule->kind == RULE_AGENT_REMINDER) {
		/* The link first: subject, text and description may use it. */
		if ((r = render_part(rd, rd->link, ctx, &link, err)) != FU_OK)
			goto done;
		if (link.len > 0)
			value_map_set_path(ctx, "calendar.link",
			    value_string(buf_cstr(&link)));
		if ((r = render_part(rd, t->summary, ctx, &summary, err)) !=
		    FU_OK || (r = render_part(rd, t->description, ctx, &desc,
		    err)) != FU_OK)
			goto done;
	}

	{
		/* preview only: the callback and its argument, else NULL. */
		struct capture_arg ca[3] = { { rd->capture, ctx, "subject" },
		    { rd->capture, ctx, "text" }, { rd->capture, ctx, "html" } };
		mustache_missing_cb cb = rd->capture ? note_missing : NULL;

		if ((r = mustache_render(rd->cache, t->subject, ctx,
		    MUSTACHE_ESCAPE_NONE, subject, cb, cb ? &ca[0] : NULL,
		    err)) != FU_OK ||
		    (r = mustache_render(rd->cache, t->text, ctx,
		    MUSTACHE_ESCAPE_NONE, text, cb, cb ? &ca[1] : NULL,
		    err)) != FU_OK ||
		    (t->html && (r = mustache_render(rd->cache, t->html, ctx,
		    MUSTACHE_ESCAPE_HTML, html, cb, cb ? &ca[2] : NULL,
		    err)) != FU_OK))
			goto done;
	}
	if (unsub_url != NULL)
		ensure_unsubscribe_link(unsub_url, text, t->html ? html : NULL);
	if (rd->capture != NULL) {
		struct render_parts *pp = rd->capture;
		const char *to_name = row_str(ctx, "name");

		pp->subject = xstrdup(buf_cstr(subject));
		pp->text = xstrdup(buf_cstr(text));
		pp->html = t->html ? xstrdup(buf_cstr(html)) : NULL;
		pp->to_addr = xstrdup(row_str(ctx, "email") ?
		    row_str(ctx, "email") : "");
		pp->to_name = to_name ? xstrdup(to_name) : NULL;
		pp->from = xstrdup(rd->cfg->from);
		pp->message_id = xstrdup(message_id);
		pp->date = now;
	}
	if (rule->kind == RULE_AGENT_REMINDER) {
		const char *method = row_str(ctx, "calendar.method");
		struct ical_event ev = {
			.method = method,
			.uid = row_str(ctx, "calendar.uid"),
			.sequence = (int)ctx_number(ctx, "calendar", "sequence"),
			.dtstamp = now,
			.start = (time_t)ctx_number(ctx, "calendar", "start"),
			.end = (time_t)ctx_number(ctx, "calendar", "end"),
			.zone = tz,
			.summary = buf_cstr(&summary),
			.description = desc.len ? buf_cstr(&desc) : NULL,
			.url = link.len ? buf_cstr(&link) : NULL,
			.organizer_addr = rd->cfg->from_addr,
			.organizer_name = row_str(ctx, "sender.name"),
			.attendee_addr = row_str(ctx, "email"),
			.attendee_name = row_str(ctx, "name"),
			.alarm = rule->alarm,
		};

		if (method == NULL || ev.uid == NULL) {
			set_err(err, "render: a reminder without its calendar "
			    "item");
			r = FU_PERMFAIL;
			goto done;
		}
		if ((r = ical_build(&ev, &ics, err)) != FU_OK)
			goto done;
		cal.method = method;
		cal.ics = buf_cstr(&ics);
	}
	{
		struct mime_spec m = {
			.from = rd->cfg->from,
			.reply_to = rd->cfg->reply_to,
			.to_name = row_str(ctx, "name"),
			.to_addr = row_str(ctx, "email"),
			.subject = buf_cstr(subject),
			.message_id = message_id,
			.date = now,
			.text = buf_cstr(text),
			.html = t->html ? buf_cstr(html) : NULL,
			.calendar = cal.ics ? &cal : NULL,
			.extra_headers = extra[0] ? extra : NULL,
		};

		r = mime_build(&m, out, err);
	}
done:
	free(unsub_url);
	free(unsub_header);
	/* A huge message's buffers are not kept. */
	if (subject->cap > RENDER_SCRATCH_KEEP)
		buf_free(subject);
	if (text->cap > RENDER_SCRATCH_KEEP)
		buf_free(text);
	if (html->cap > RENDER_SCRATCH_KEEP)
		buf_free(html);
	buf_free(&summary);
	buf_free(&desc);
	buf_free(&link);
	buf_free(&ics);
	return r;
}

struct recheck {
	const char	*occurrence;	/* NULL: any (preview) */
	struct value	*row;		/* the matching row */
	int		 moved;		/* the subject exists with another `at` */
};

static int
recheck_cb(struct value *row, void *arg)
{
	struct recheck *rc = arg;
	const char *at = row_str(row, "at");

	if (rc->row == NULL && (rc->occurrence == NULL ||
	    (at && strcmp(at, rc->occurrence) == 0))) {
		rc->row = row;
		return FU_OK;
	}
	if (rc->row == NULL)
		rc->moved = 1;
	value_free(row);
	return FU_OK;
}

/* Fetch the rule's row for one subject again. */
static int
recheck(struct render *rd, struct source *src, int ri, const char *key,
    struct recheck *rc, char **err)
{
	struct source_params p = { .since = RULES_TIME_MIN,
	    .until = RULES_TIME_MAX, .key = key };

	/* The SQL is the same for every job of the rule: built once. */
	if (rd->recheck_sql == NULL)
		rd->recheck_sql = xcalloc((size_t)rd->cfg->nrules,
		    sizeof(*rd->recheck_sql));
	if (rd->recheck_sql[ri] == NULL)
		rd->recheck_sql[ri] = rules_recheck_query(&rd->cfg->rules[ri]);
	return source_select(src, rd->recheck_sql[ri], &p, recheck_cb, rc,
	    err);
}

/*
 * Why this row must not be mailed, or NULL. *detail gets an allocated
 * explanation for the history.
 */
static const char *
row_block_reason(struct store *st, const struct value *row, const char *cls,
    char **detail, int *tempfail, char **err)
{
	const char *email = row_str(row, "email"), *why;
	int yes;

	*tempfail = 0;
	if (email == NULL || *email == '\0') {
		*detail = xstrdup("the recipient has no email address");
		return "no-address";
	}
	{
		/* A NUL inside the value would hide what follows it from
		 * mime_address_ok: "a@example.com\0b@evil.example". */
		size_t elen = 0;

		(void)value_as_string(value_map_get(row, "email"), &elen);
		if (elen != strlen(email))
			why = "NUL byte in address";
		else if (mime_address_ok(email, &why))
			why = NULL;
	}
	if (why != NULL) {
		struct buf b = { 0 };

		buf_puts(&b, "invalid address '");
		utf8_sanitize(email, strlen(email), 80, &b);
		buf_printf(&b, "': %s", why);
		*detail = buf_steal(&b);
		return "bad-address";
	}
	if (st == NULL)
		return NULL;
	/* Suppressed: every class; opted out: the rule's class or all. */
	(void)yes;
	return consent_blocked(st, email, cls, detail, tempfail, err);
}

/*
 * What render_job decided for one job. The decisions of a page of jobs are
 * written to state.db together, in one transaction, after the page's
 * messages are durably in the spool (spool_batch_commit): a job becomes
 * `queued` only once its message is on disk, and a crash in between leaves
 * planned jobs whose files in new/ are simply replaced when they are
 * rendered again.
 */
enum render_fate {
	FATE_NONE,		/* left planned (held, or the batch failed) */
	FATE_QUEUE,
	FATE_CANCEL,
	FATE_FAIL,
};

struct render_out {
	const struct job *job;
	enum render_fate fate;
	const char	*reason;	/* static: cancel/fail reason */
	char		*detail;	/* why, for the history */
	char		*email, *mid, *spool_name;
};

static void
render_out_clear(struct render_out *o)
{
	free(o->detail);
	free(o->email);
	free(o->mid);
	free(o->spool_name);
	memset(o, 0, sizeof(*o));
}

/*
 * An agent reminder's job: its snapshot (method, UID, SEQUENCE, agent,
 * times) from state.db, the ticket's current row for the rest of the
 * context (a minimal one when the source no longer has it).
 */
static int
reminder_context(struct render *rd, struct store *st, struct source *src,
    int ri, const struct job *job, struct value **row, char **err)
{
	struct recheck rc = { .occurrence = NULL };
	struct reminder rm;
	char *method = NULL;
	int found, r;

	*row = NULL;
	if ((r = store_reminder_message_get(st, job->id, &rm, &method, &found,
	    err)) != FU_OK)
		return r;
	if (!found) {
		set_err(err, "no calendar item recorded for this reminder job");
		return FU_PERMFAIL;
	}
	if ((r = recheck(rd, src, ri, job->subject, &rc, err)) == FU_OK) {
		if (rc.row == NULL) {
			rc.row = value_map();
			value_map_set(rc.row, "key", value_string(job->subject));
			value_map_set_path(rc.row, "ticket.id",
			    value_string(job->subject));
		}
		set_calendar_ctx(rd, rc.row, &rm, method);
		*row = rc.row;
	}
	store_reminder_clear(&rm);
	free(method);
	return r;
}

/*
 * Quiet hours (and a check-in's send window) hold at render time too: a job
 * whose moment falls in them is postponed to the next opening in the
 * recipient's zone, stays planned, and the history says why. Never dropped.
 */
static int
render_postpone(struct render *rd, struct store *st, int ri,
    const struct job *job, const struct value *row, time_t now,
    int *postponed, char **err)
{
	const struct rule_config *rule = &rd->cfg->rules[ri];
	const struct clock_zone *z = rules_zone(rd->cfg, row_str(row, "tz"));
	struct clock_rule cr = *rules_clock(rd->cfg, rule);
	const char *why;
	char lbuf[32], *detail;
	time_t t;
	int r;

	*postponed = 0;
	if (rule->kind == RULE_AGENT_REMINDER)
		memset(&cr.window, 0, sizeof(cr.window));	/* DTSTART's, not the mail's */
	if ((t = clock_next_open(&cr, z, now, &why)) <= now)
		return FU_OK;
	detail = xasprintf("%s until %s (%s)", why, clock_format_local(z, t,
	    lbuf), clock_zone_name(z));
	if ((r = store_job_postpone(st, job->id, t, detail, now, err)) == FU_OK) {
		*postponed = 1;
		log_info("render: job %lld (%s %s): postponed: %s",
		    (long long)job->id, job->rule, job->subject, detail);
	}
	free(detail);
	return r;
}

/*
 * Frequency caps of marketing mail: [defaults] max_marketing over every
 * rule, the rule's own max_marketing over its messages, per recipient.
 * Messages queued earlier (state.db) and on this page count. Over a cap
 * the job is postponed until the oldest counted message leaves the window
 * (over_cap = postpone) or cancelled with reason over-cap (drop); either
 * way its history says which cap.
 */
static int
render_cap(struct render *rd, struct store *st, int ri, const struct job *job,
    const struct value *row, time_t now, struct render_out *out,
    int *postponed, char **err)
{
	const struct rule_config *rule = &rd->cfg->rules[ri];
	const struct config_cap *caps[2] = { &rd->cfg->marketing_cap,
	    &rule->cap };
	const char *email = row_str(row, "email");

	*postponed = 0;
	if (rule->cls != RULE_CLASS_MARKETING || email == NULL)
		return FU_OK;
	for (int c = 0; c < 2; c++) {
		const struct config_cap *cap = caps[c];
		const char *text = c == 0 ? rd->cfg->max_marketing :
		    rule->max_marketing;
		time_t oldest, until;
		int count, r;

		if (cap->n == 0)
			continue;
		if ((r = consent_cap_count(st, email, c == 0 ? NULL : rule->name,
		    cap->window, now, &count, &oldest, err)) != FU_OK)
			return r;
		for (int i = 0; i < rd->npending; i++)
			if (strcasecmp(rd->pending[i].email, email) == 0 &&
			    (c == 0 || rd->pending[i].rule == ri)) {
				if (count == 0)
					oldest = now;
				count++;
			}
		if (count < cap->n)
			continue;
		until = (oldest ? oldest : now) + cap->window + 1;
		if (rule->over_cap == RULE_OVER_CAP_DROP) {
			out->fate = FATE_CANCEL;
			out->reason = "over-cap";
			out->detail = xasprintf("over cap: %d marketing "
			    "message%s to this recipient%s already in the window "
			    "of max_marketing = %s (%s)", count, count == 1 ? "" :
			    "s", c ? " from this rule" : "", text, c ?
			    "the rule's" : "[defaults]");
			return FU_OK;
		}
		{
			const struct clock_zone *z = rules_zone(rd->cfg,
			    row_str(row, "tz"));
			char lbuf[32], *detail;

			/* The next opening after the cap allows it again. */
			until = clock_next_open(rules_clock(rd->cfg, rule), z,
			    until, NULL);
			detail = xasprintf("over cap %s (%d marketing "
			    "message%s to this recipient%s) until %s (%s)", text,
			    count, count == 1 ? "" : "s", c ? " from this rule" :
			    "", clock_format_local(z, until, lbuf),
			    clock_zone_name(z));
			r = store_job_postpone(st, job->id, until, detail, now,
			    err);
			if (r == FU_OK) {
				*postponed = 1;
				log_info("render: job %lld (%s %s): postponed: %s",
				    (long long)job->id, job->rule, job->subject,
				    detail);
			}
			free(detail);
			return r;
		}
	}
	return FU_OK;
}

/* {{code.random}}: a fresh random part of the rule's length and alphabet. */
static int
make_code(struct render *rd, int ri, struct value *ctx, struct buf *out,
    char **err)
{
	const struct rule_config *rule = &rd->cfg->rules[ri];
	char rnd[65];

	codes_random(rule->code_alphabet, rule->code_length, rnd);
	value_map_set_path(ctx, "code.random", value_string(rnd));
	buf_reset(out);
	return mustache_render(rd->cache, rd->codes[ri], ctx,
	    MUSTACHE_ESCAPE_NONE, out, NULL, NULL, err);
}

/*
 * What is personal to this message besides the row: {{years}} of a yearly
 * note, and the rule's code, given once per job and stored with it (a
 * retry, a re-render or a preview shows the same code).
 */
static int
render_personal(struct render *rd, struct store *st, int ri,
    const struct job *job, struct value *ctx, time_t now, char **err)
{
	const struct rule_config *rule = &rd->cfg->rules[ri];
	char *code = NULL;
	int r;

	if (rules_kind_yearly(rule->kind)) {
		int years = rules_occurrence_years(rule, rules_zone(rd->cfg,
		    row_str(ctx, "tz")), row_str(ctx, "at"), job->occurrence);

		value_map_set(ctx, "years", years >= 0 ?
		    value_number(years) : value_null());
	}
	if (rd->codes == NULL || rd->codes[ri] == NULL)
		return FU_OK;
	if ((r = codes_get(st, job->id, &code, err)) != FU_OK)
		return r;
	for (int tries = 0; code == NULL && tries < 8; tries++) {
		struct buf b = { 0 };
		int clash;

		if ((r = make_code(rd, ri, ctx, &b, err)) == FU_OK && b.len > 0 &&
		    b.len <= CODES_MAX && strpbrk(b.data, "\r\n\t") == NULL &&
		    (r = codes_put(st, job->id, rule->name, job->subject, b.data,
		    now, &clash, err)) == FU_OK && !clash)
			code = buf_steal(&b);
		buf_free(&b);
		if (r != FU_OK)
			return r;
	}
	if (code == NULL) {
		/* This job can never get a code as the rule stands: fail it,
		 * do not stall the jobs behind it. */
		set_err(err, "rule %s: no unused code after 8 draws (a longer "
		    "code_length, or {{code.random}} in the code text)",
		    rule->name);
		return FU_PERMFAIL;
	}
	value_map_set(ctx, "code", value_string(code));
	free(code);
	return FU_OK;
}

/* Decide one planned job and, when it is to be sent, stage its message. */
static int
render_job(struct render *rd, struct store *st, struct source *src,
    struct spool_batch *batch, const struct job *job, time_t now,
    struct render_out *out, struct render_stats *stats, char **err)
{
	int ri = rule_index(rd, job->rule);
	struct recheck rc = { .occurrence = job->occurrence };
	struct buf msg = { 0 };
	char *detail = NULL, *e = NULL;
	const char *reason;
	int r, tempfail;

	out->job = job;
	out->fate = FATE_NONE;
	if (ri < 0) {
		stats->held++;
		log_warnx("render: job %lld: rule '%s' is no longer in the "
		    "configuration: left planned", (long long)job->id, job->rule);
		return FU_OK;
	}
	if (rd->cfg->rules[ri].kind == RULE_AFTER_RESOLUTION &&
	    survey_owns(job->occurrence)) {
		/* A call-back or note whose spooled message was lost: it was
		 * built from a rating, not from these templates. */
		out->fate = FATE_FAIL;
		out->reason = "render-error";
		out->detail = xstrdup("a rating's call-back or note lost its "
		    "spooled message; it is not built again");
		return FU_OK;
	}
	if (rd->cfg->rules[ri].kind == RULE_AGENT_REMINDER) {
		/* plan decided what this message is; only send it or not. */
		if ((r = reminder_context(rd, st, src, ri, job, &rc.row,
		    &e)) == FU_PERMFAIL) {
			out->fate = FATE_FAIL;
			out->reason = "render-error";
			out->detail = e;
			return FU_OK;
		}
		if (r != FU_OK) {
			set_err(err, "%s", e);
			free(e);
			return r;
		}
	} else {
		/* Yearly notes and milestones: the customer's row, whatever its
		 * date now (the job's occurrence is the year or milestone). */
		if (rules_kind_yearly(rd->cfg->rules[ri].kind) ||
		    rd->cfg->rules[ri].kind == RULE_LOYALTY)
			rc.occurrence = NULL;
		if ((r = recheck(rd, src, ri, job->subject, &rc, err)) != FU_OK)
			return r;
	}
	if (rc.row == NULL) {
		detail = xasprintf("%s %s is no longer resolved at %s",
		    job->rule, job->subject, job->occurrence);
		reason = "reopened";
	} else
		reason = row_block_reason(st, rc.row,
		    config_class_name(rd->cfg->rules[ri].cls), &detail,
		    &tempfail, err);
	if (reason == NULL && tempfail) {
		value_free(rc.row);
		return FU_TEMPFAIL;
	}
	if (reason != NULL) {
		out->fate = FATE_CANCEL;
		out->reason = reason;
		out->detail = detail;
		value_free(rc.row);
		return FU_OK;
	}
	{
		int postponed;

		if ((r = render_postpone(rd, st, ri, job, rc.row, now,
		    &postponed, err)) != FU_OK || postponed) {
			value_free(rc.row);
			return r;
		}
		if ((r = render_cap(rd, st, ri, job, rc.row, now, out,
		    &postponed, err)) != FU_OK || postponed ||
		    out->fate == FATE_CANCEL) {
			value_free(rc.row);
			return r;
		}
		if ((r = render_personal(rd, st, ri, job, rc.row, now, err)) !=
		    FU_OK) {
			value_free(rc.row);
			if (r != FU_PERMFAIL)
				return r;
			out->fate = FATE_FAIL;
			out->reason = "render-error";
			out->detail = xstrdup(err && *err ? *err : "code");
			return FU_OK;
		}
	}

	/* A check-in that may ask for a rating: cool-down, sample (survey.c). */
	if ((r = survey_checkin(st, rd->cfg, &rd->cfg->rules[ri], rd->consent,
	    job->id, rc.row, now, err)) != FU_OK) {
		value_free(rc.row);
		return r;
	}
	out->mid = job->message_id ? xstrdup(job->message_id) :
	    new_message_id(job->id, rd->cfg->from_addr);
	out->email = xstrdup(row_str(rc.row, "email"));
	if ((r = render_history(rd, src, ri, rc.row, now, &e)) == FU_OK)
		r = build_message(rd, ri, rc.row, out->mid, now, &msg, &e);
	value_free(rc.row);
	if (r == FU_TEMPFAIL) {
		/* The source is busy: the job stays planned. */
		set_err(err, "%s", e);
		free(e);
		buf_free(&msg);
		return r;
	}
	if (r != FU_OK) {
		/* A template or data problem that `check` cannot see: this
		 * message can never be built as it stands. */
		out->fate = FATE_FAIL;
		out->reason = "render-error";
		out->detail = e;
		buf_free(&msg);
		return FU_OK;
	}
	/* JOBID.SIZE.eml: deliver checks the size, so a file cut short at
	 * a line end (which still parses) is never sent half. */
	{
		char name[64];
		size_t n = put_ll(name, (long long)job->id);

		name[n++] = '.';
		n += put_ll(name + n, (long long)msg.len);
		memcpy(name + n, ".eml", 5);
		out->spool_name = xstrdup(name);
	}
	if ((r = spool_batch_add(batch, out->spool_name, msg.data, msg.len,
	    err)) == FU_OK)
		out->fate = FATE_QUEUE;
	if (r == FU_OK && rd->cfg->rules[ri].cls == RULE_CLASS_MARKETING) {
		rd->pending = xrealloc(rd->pending, (size_t)(rd->npending + 1) *
		    sizeof(*rd->pending));
		rd->pending[rd->npending].email = xstrdup(out->email);
		rd->pending[rd->npending++].rule = ri;
	}
	buf_free(&msg);
	return r;
}

/*
 * Write a page's decisions and commit the page's transaction (begun by
 * render_tick); log them once committed.
 */
static int
render_record(struct store *st, struct render_out *outs, int n, time_t now,
    struct render_stats *stats, char **err)
{
	int r = FU_OK;

	for (int i = 0; i < n; i++) {
		struct render_out *o = &outs[i];
		const struct job *job = o->job;

		switch (o->fate) {
		case FATE_QUEUE:
			r = store_job_queued(st, job->id, o->email, o->mid,
			    o->spool_name, now, err);
			break;
		case FATE_CANCEL:
			r = store_job_cancel(st, job->id, o->reason, o->detail,
			    now, err);
			break;
		case FATE_FAIL:
			r = store_job_failed(st, job->id, o->reason, o->detail,
			    now, err);
			break;
		case FATE_NONE:
			break;
		}
		if (r != FU_OK) {
			store_rollback(st);
			return r;
		}
	}
	if ((r = store_commit(st, err)) != FU_OK) {
		store_rollback(st);
		return r;
	}
	for (int i = 0; i < n; i++) {
		struct render_out *o = &outs[i];
		const struct job *job = o->job;

		switch (o->fate) {
		case FATE_QUEUE:
			stats->queued++;
			log_info("render: job %lld (%s %s): queued for @%s, "
			    "Message-ID <%s>", (long long)job->id, job->rule,
			    job->subject, mime_address_domain(o->email), o->mid);
			break;
		case FATE_CANCEL:
			stats->cancelled++;
			log_info("render: job %lld (%s %s): cancelled: %s (%s)",
			    (long long)job->id, job->rule, job->subject,
			    o->reason, o->detail);
			break;
		case FATE_FAIL:
			stats->failed++;
			log_warnx("render: job %lld (%s %s): failed: %s",
			    (long long)job->id, job->rule, job->subject,
			    o->detail);
			break;
		case FATE_NONE:
			break;
		}
	}
	return FU_OK;
}

/*
 * Pages of up to RENDER_BATCH due jobs, each: decide and render every job,
 * write the messages to the spool (unsynced), make them durable and move
 * them to new/ in one go, then record every decision, all in one
 * transaction. The first page holds RENDER_FIRST_PAGE jobs and each next
 * one twice as many: delivery (page_done) starts after a few milliseconds
 * instead of after a whole page. `cut` ends a page early (delivery has
 * accepted messages to record: their commit must not wait for a page). The cursor (due_at, id) walks past jobs
 * left planned, so the whole backlog is done in one tick and a held job
 * is looked at once per tick.
 */
int
render_tick(struct render *rd, struct store *st, struct source *src,
    struct spool *sp, time_t now, render_page_fn page_done,
    render_cut_fn cut, void *arg, struct render_stats *stats, char **err)
{
	time_t after_due = (time_t)LLONG_MIN;
	int64_t after_id = 0;
	int r = FU_OK, stop = 0, page = RENDER_FIRST_PAGE;

	memset(stats, 0, sizeof(*stats));
	while (!stop) {
		struct spool_batch *batch;
		struct render_out *outs;
		struct job *jobs;
		int n, done = 0, cut_short = 0;

		if ((r = store_jobs_due_after(st, now, after_due, after_id,
		    page, &jobs, &n, err)) != FU_OK || n == 0)
			break;
		/*
		 * One transaction per page, from the first look-up to the
		 * last decision: the suppression and opt-out checks then read
		 * without taking a lock each, and the decisions commit at once.
		 */
		if ((r = store_begin(st, err)) != FU_OK) {
			store_jobs_free(jobs, n);
			break;
		}
		/* Likewise one read transaction on the source per page. */
		if ((r = source_read_begin(src, err)) != FU_OK) {
			store_rollback(st);
			store_jobs_free(jobs, n);
			break;
		}
		batch = spool_batch_new(sp);
		pending_clear(rd);	/* caps: this page's messages so far */
		outs = xcalloc((size_t)n, sizeof(*outs));
		for (; done < n; done++) {
			if ((r = render_job(rd, st, src, batch, &jobs[done],
			    now, &outs[done], stats, err)) == FU_TEMPFAIL) {
				/* Source busy or disk full: the rest next tick. */
				render_out_clear(&outs[done]);
				stop = 1;
				break;
			}
			if (outs[done].fate == FATE_QUEUE)
				util_crashpoint("render");
			if (r != FU_OK) {
				/* This job only: the others may be fine. */
				log_warnx("render: job %lld: %s",
				    (long long)jobs[done].id,
				    err && *err ? *err : "error");
				render_out_clear(&outs[done]);
				stats->held++;
				r = FU_OK;
			}
			progress_step(1);
			/* Delivery has outcomes waiting to be recorded: end the
			 * page here (the rest comes in the next one). */
			if (cut != NULL && done + 1 < n && cut(arg)) {
				done++;
				cut_short = 1;
				break;
			}
		}
		/* The cursor: past the last job looked at. */
		if (done > 0) {
			after_due = jobs[done - 1].due_at;
			after_id = jobs[done - 1].id;
		}
		source_read_end(src);
		if (spool_batch_count(batch) > 0) {
			char *e = NULL;

			if (spool_batch_commit(batch, &e) != FU_OK) {
				/* Nothing of this page reached new/: its jobs
				 * stay planned; decisions without a message
				 * (cancellations) are still recorded. */
				for (int i = 0; i < done; i++)
					if (outs[i].fate == FATE_QUEUE) {
						outs[i].fate = FATE_NONE;
						stats->held++;
					}
				set_err(err, "%s", e);
				free(e);
				r = FU_TEMPFAIL;
				stop = 1;
			} else
				util_crashpoint("spool");
		}
		{
			char *e = NULL;
			int rr = render_record(st, outs, done, now, stats, &e);

			if (rr != FU_OK) {
				if (r == FU_OK) {
					set_err(err, "%s", e);
					r = rr;
				}
				stop = 1;
			}
			free(e);
			if (rr == FU_OK && page_done != NULL)
				page_done(arg);
		}
		for (int i = 0; i < n; i++)
			render_out_clear(&outs[i]);
		free(outs);
		spool_batch_free(batch);
		store_jobs_free(jobs, n);
		if (n < page && !cut_short)
			break;
		if (page < RENDER_BATCH)
			page = page * 2 < RENDER_BATCH ? page * 2 : RENDER_BATCH;
	}
	return r;
}

/* preview of a reminder: the first REQUEST plan would make for this row. */
static void
preview_calendar(struct render *rd, int ri, struct value *row, const char *key)
{
	const struct rule_config *rule = &rd->cfg->rules[ri];
	const char *at = row_str(row, "at");
	const struct clock_zone *z = rules_zone(rd->cfg, row_str(row, "tz"));
	struct reminder rm;
	time_t t = 0;

	memset(&rm, 0, sizeof(rm));
	if (at)
		clock_parse(at, &t);
	rm.uid = rules_reminder_uid(rd->cfg, rule->name, key);
	rm.agent = (char *)(uintptr_t)row_str(row, "email");
	rm.agent_name = (char *)(uintptr_t)row_str(row, "name");
	rm.agent = xstrdup(rm.agent ? rm.agent : "");
	rm.agent_name = rm.agent_name ? xstrdup(rm.agent_name) : NULL;
	rm.tz = xstrdup(clock_zone_name(z));
	rm.dtstart = rules_due(rd->cfg, rule, z, t);
	rm.dtend = rm.dtstart + rule->duration;
	set_calendar_ctx(rd, row, &rm, "REQUEST");
	store_reminder_clear(&rm);
}

/*
 * preview: {{years}} of the next occurrence, and the code the latest job
 * of (rule, key) was given (state.db, when there is one); a job not yet
 * rendered shows a sample code that is not kept.
 */
static void
preview_personal(struct render *rd, int ri, struct value *row,
    const char *key, time_t now)
{
	const struct rule_config *rule = &rd->cfg->rules[ri];
	char *code = NULL, *path, *err = NULL;
	struct store *st;

	if (rules_kind_yearly(rule->kind)) {
		const struct clock_zone *z = rules_zone(rd->cfg, row_str(row,
		    "tz"));
		struct clock_local lt;
		char occ[16];
		int years;

		clock_to_local(z, now, &lt);
		snprintf(occ, sizeof(occ), "%d", lt.year);
		years = rules_occurrence_years(rule, z, row_str(row, "at"), occ);
		value_map_set(row, "years", years >= 0 ? value_number(years) :
		    value_null());
	}
	if (rd->codes == NULL || rd->codes[ri] == NULL)
		return;
	path = store_path(rd->cfg->queue_dir);
	if (access(path, F_OK) == 0 && store_open(path,
	    rd->cfg->busy_timeout_ms, &st, &err) == FU_OK) {
		codes_for_subject(st, rule->name, key, &code, NULL);
		store_close(st);
	}
	free(err);
	free(path);
	if (code == NULL) {
		struct buf b = { 0 };

		if (make_code(rd, ri, row, &b, NULL) == FU_OK)
			code = buf_steal(&b);
		buf_free(&b);
	}
	value_map_set(row, "code", code ? value_string(code) : value_null());
	free(code);
}

/* A row render_load fetched, to be built by render_loaded_build. */
struct render_loaded {
	int		 ri;
	char		*key;
	struct value	*row;	/* NULL once built */
	time_t		 now;
};

void
render_loaded_free(struct render_loaded *ld)
{
	if (ld == NULL)
		return;
	value_free(ld->row);
	free(ld->key);
	free(ld);
}

int
render_load(struct render *rd, struct source *src, const char *rule,
    const char *key, time_t now, struct render_loaded **out, char **err)
{
	int ri = rule_index(rd, rule);
	struct recheck rc = { .occurrence = NULL };
	char *detail = NULL;
	const char *reason;
	int r, tempfail;

	*out = NULL;
	if (ri < 0) {
		set_err(err, "no rule '%s' in the configuration", rule);
		return FU_PERMFAIL;
	}
	if ((r = recheck(rd, src, ri, key, &rc, err)) != FU_OK)
		return r;
	if (rc.row == NULL) {
		set_err(err, "rule '%s' has no source row with key '%s' (for "
		    "a check-in: is ticket %s resolved?)", rule, key, key);
		return FU_PERMFAIL;
	}
	if ((reason = row_block_reason(NULL, rc.row, NULL, &detail, &tempfail,
	    err)) != NULL) {
		set_err(err, "%s %s would not be sent: %s (%s)", rule, key,
		    reason, detail);
		free(detail);
		value_free(rc.row);
		return FU_PERMFAIL;
	}
	if (rd->cfg->rules[ri].kind == RULE_AGENT_REMINDER)
		preview_calendar(rd, ri, rc.row, key);
	preview_personal(rd, ri, rc.row, key, now);
	if ((r = render_history(rd, src, ri, rc.row, now, err)) != FU_OK) {
		value_free(rc.row);
		return r;
	}
	*out = xcalloc(1, sizeof(**out));
	(*out)->ri = ri;
	(*out)->key = xstrdup(key);
	(*out)->row = rc.row;
	(*out)->now = now;
	return FU_OK;
}

int
render_loaded_build(struct render *rd, struct render_loaded *ld,
    struct buf *out, char **err)
{
	const char *rule = rd->cfg->rules[ld->ri].name;
	const char *domain = mime_address_domain(rd->cfg->from_addr);
	struct buf mid = { 0 };
	int r;

	if (ld->row == NULL) {
		set_err(err, "render: this row was built already");
		return FU_PERMFAIL;
	}
	/* "preview.RULE.KEY@DOMAIN": no printf per message. */
	buf_reserve(&mid, strlen(rule) + strlen(ld->key) + strlen(domain) + 11);
	buf_append(&mid, "preview.", 8);
	buf_puts(&mid, rule);
	buf_putc(&mid, '.');
	buf_puts(&mid, ld->key);
	buf_putc(&mid, '@');
	buf_puts(&mid, domain);
	/* The rating block as a check-in would show it (job 0, nothing kept). */
	survey_checkin(NULL, rd->cfg, &rd->cfg->rules[ld->ri], rd->consent, 0,
	    ld->row, ld->now, NULL);
	r = build_message(rd, ld->ri, ld->row, buf_cstr(&mid), ld->now, out,
	    err);
	value_free(ld->row);
	ld->row = NULL;
	buf_free(&mid);
	return r;
}

int
render_preview(struct render *rd, struct source *src, const char *rule,
    const char *key, time_t now, struct buf *out, char **err)
{
	struct render_loaded *ld;
	int r;

	if ((r = render_load(rd, src, rule, key, now, &ld, err)) != FU_OK)
		return r;
	r = render_loaded_build(rd, ld, out, err);
	render_loaded_free(ld);
	return r;
}

void
render_parts_clear(struct render_parts *p)
{
	free(p->subject);
	free(p->text);
	free(p->html);
	free(p->to_addr);
	free(p->to_name);
	free(p->from);
	free(p->message_id);
	buf_free(&p->missing);
	buf_free(&p->message);
	memset(p, 0, sizeof(*p));
}

int
render_preview_parts(struct render *rd, struct source *src, const char *rule,
    const char *key, time_t now, struct render_parts *parts, char **err)
{
	int r;

	memset(parts, 0, sizeof(*parts));
	rd->capture = parts;
	r = render_preview(rd, src, rule, key, now, &parts->message, err);
	rd->capture = NULL;
	return r;
}

struct sample {
	int		 want;
	struct value	**rows;
	int		 n;
};

static int
sample_cb(struct value *row, void *arg)
{
	struct sample *sm = arg;

	if (sm->n >= sm->want) {
		value_free(row);
		return FU_PERMFAIL;	/* enough: stops the query */
	}
	sm->rows[sm->n++] = row;
	return FU_OK;
}

/* The row's key as text (numbers as the source gave them). */
static char *
row_key(const struct value *row)
{
	const struct value *v = value_map_get(row, "key");

	if (v != NULL && value_type(v) == VALUE_NUMBER)
		return xasprintf("%.15g", value_as_number(v));
	if (v != NULL && value_as_string(v, NULL) != NULL)
		return xstrdup(value_as_string(v, NULL));
	return xstrdup("?");
}

int
render_sample(struct render *rd, struct source *src, const char *rule,
    int n, time_t now, render_sample_cb cb, void *arg, char **err)
{
	int ri = rule_index(rd, rule), r;
	struct source_params p = { .since = RULES_TIME_MIN,
	    .until = RULES_TIME_MAX };
	struct sample sm = { .want = n };
	char nowtext[20];

	if (ri < 0) {
		set_err(err, "no rule '%s' in the configuration", rule);
		return FU_PERMFAIL;
	}
	p.now = clock_format_sql(now, nowtext);
	sm.rows = xcalloc((size_t)(n > 0 ? n : 1), sizeof(*sm.rows));
	r = source_select(src, rules_query(&rd->cfg->rules[ri]), &p, sample_cb,
	    &sm, err);
	if (r == FU_PERMFAIL && sm.n == sm.want) {	/* stopped on purpose */
		free(*err);
		*err = NULL;
		r = FU_OK;
	}
	for (int i = 0; i < sm.n; i++) {
		struct render_parts parts = { 0 };
		char *key = row_key(sm.rows[i]), *detail = NULL, *mid, *e = NULL;
		const char *reason;
		int tempfail, rr;

		if (r != FU_OK) {
			value_free(sm.rows[i]);
			free(key);
			continue;
		}
		reason = row_block_reason(NULL, sm.rows[i], NULL, &detail,
		    &tempfail,
		    NULL);
		if (reason != NULL) {
			char *why = xasprintf("would not be sent: %s (%s)",
			    reason, detail);

			cb(key, FU_PERMFAIL, NULL, why, arg);
			free(why);
			free(detail);
			value_free(sm.rows[i]);
			free(key);
			continue;
		}
		mid = xasprintf("preview.%s.%s@%s", rule, key,
		    mime_address_domain(rd->cfg->from_addr));
		preview_personal(rd, ri, sm.rows[i], key, now);
		rd->capture = &parts;
		if ((rr = render_history(rd, src, ri, sm.rows[i], now,
		    &e)) == FU_OK)
			rr = build_message(rd, ri, sm.rows[i], mid, now,
			    &parts.message, &e);
		rd->capture = NULL;
		if (rr == FU_TEMPFAIL) {
			set_err(err, "%s", e ? e : "the source is busy");
			r = rr;
		} else
			cb(key, rr, rr == FU_OK ? &parts : NULL, e, arg);
		render_parts_clear(&parts);
		value_free(sm.rows[i]);
		free(mid);
		free(key);
		free(e);
	}
	free(sm.rows);
	return r;
}
