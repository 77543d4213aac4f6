/* compose: one message from its context: templates → MIME, with the iCalendar item of a reminder. */
#include "compose.h"
#include "clock.h"
#include "consent.h"
#include "format.h"
#include "ical.h"
#include "log.h"
#include "mime.h"
#include "mustache.h"
#include "rules.h"

#include <dirent.h>
#include <errno.h>
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
#define COMPOSE_VALUE_MAX	(16 * 1024)
/* Scratch buffers kept between messages up to this size (bytes). */
#define COMPOSE_SCRATCH_KEEP	(256 * 1024)

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

struct compose {
	const struct config	*cfg;
	struct mustache_cache	*cache;
	struct templates	*sets;		/* one per cfg->rules[i] */
	struct locale_sets	*locales;	/* one per cfg->rules[i] */
	const struct mustache_template **codes;	/* `code` per rule; may be NULL */
	struct consent		*consent;	/* unsubscribe tokens; NULL: no marketing */
	const struct mustache_template *link;	/* [calendar] link; may be NULL */
	char			*partials_dir;
	int			 preview;	/* nothing composed is sent */
	char			*sender_name;	/* [smtp] from's display name */
	char			*unsub_mailto;	/* the same for every recipient */
	struct format_memo	*memo;		/* dates per (zone, now) */
	/* The message being composed: compose_parts → compose_mime. */
	const struct templates	*t;
	const struct clock_zone	*tz;
	char			*unsub_url, *unsub_header;
	struct buf		 subject, text, html;	/* reused */
	struct buf		 summary, desc, linkbuf, ics;
};

/* Partials and parents live in templates/partials/NAME.mustache. */
static char *
load_partial(const char *name, void *arg)
{
	struct compose *c = arg;
	struct buf b = { 0 };
	char *path;

	if (name[0] == '\0' || name[0] == '.' || strchr(name, '/'))
		return NULL;
	path = xasprintf("%s/%s.mustache", c->partials_dir, name);
	if (read_file(path, &b, NULL) != FU_OK) {
		buf_free(&b);
		free(path);
		return NULL;
	}
	free(path);
	return buf_steal(&b);
}

static const struct mustache_template *
load_one(struct compose *c, const char *dir, const char *file, int optional,
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
	else if ((t = mustache_parse(c->cache, path, src.data, &err)) == NULL)
		buf_printf(errs, "%s\n", err);
	else if (mustache_check_refs(c->cache, t, &err) != FU_OK) {
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
load_locales(struct compose *c, int ri, const char *dir, struct buf *errs)
{
	struct locale_sets *ls;
	struct dirent *de;
	DIR *d;

	if (c->locales == NULL)
		c->locales = xcalloc((size_t)c->cfg->nrules,
		    sizeof(*c->locales));
	ls = &c->locales[ri];
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
		l->t = c->sets[ri];
		l->t.subject = load_one(c, sub, "subject.mustache", 0, errs);
		l->t.text = load_one(c, sub, "text.mustache", 0, errs);
		l->t.html = load_one(c, sub, "html.mustache", 1, errs);
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
compose_open_consent(struct compose *c, struct buf *errs)
{
	const struct config *cfg = c->cfg;
	char *err = NULL;

	c->codes = xcalloc((size_t)cfg->nrules + 1, sizeof(*c->codes));
	for (int i = 0; i < cfg->nrules; i++) {
		const struct rule_config *r = &cfg->rules[i];
		char *name;

		if (r->code == NULL)
			continue;
		name = xasprintf("%s: [rule %s] code", cfg->path, r->name);
		if ((c->codes[i] = mustache_parse(c->cache, name,
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
			if (c->preview || strcmp(dir, cfg->queue_dir) == 0)
				c->consent = consent_ephemeral();
			else
				buf_printf(errs, "%s: [unsubscribe] secret_file: "
				    "the directory %s does not exist: create it "
				    "(mode 0700) so that unsubscribe links can be "
				    "verified\n", cfg->path, dir);
		} else if (consent_open(cfg, 1, &c->consent, &err) != FU_OK)
			buf_printf(errs, "%s: [unsubscribe] secret_file: %s\n",
			    cfg->path, err);
		free(err);
		free(path);
		free(dir);
	}
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

/*
 * 1 when utf8_sanitize would return s unchanged: valid UTF-8 no longer
 * than the bound, no control character but TAB and LF. Most values are
 * (one pass, no copy).
 */
static int
clean_text(const char *s, size_t len)
{
	int ascii = 1;

	if (len > COMPOSE_VALUE_MAX)
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

				utf8_sanitize(s, len, COMPOSE_VALUE_MAX, &b);
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

/* First name, else the first word of the name, else nothing. */
static void
add_greeting_name(struct value *ctx)
{
	const char *first = value_path_string(ctx, "customer.first_name");
	const char *name = value_path_string(ctx, "customer.name");

	if (name == NULL)
		name = value_path_string(ctx, "name");
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

/* No printf: this runs for every message. */
const struct consent *
compose_consent(const struct compose *c)
{
	return c->consent;
}

char *
compose_message_id(int64_t job_id, const char *from_addr)
{
	static const char hexd[] = "0123456789abcdef";
	const char *domain = mime_address_domain(from_addr);
	unsigned char rnd[8];
	char head[64];
	size_t n;
	struct buf b = { 0 };

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		fatal("compose: getrandom");
	memcpy(head, "followupd.", 10);
	n = 10;
	n += format_ll(head + n, (long long)job_id);
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

/* The reminder's agent is the recipient; for a CANCEL it may no longer be the ticket's. */
void
compose_calendar(const struct config *cfg, struct value *ctx,
    const struct reminder *rm, const char *method)
{
	const struct clock_zone *z = rules_zone(cfg, rm->tz);
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

/*
 * The rule's templates for the recipient's customer.locale: the folder of
 * the whole locale ("pt-br"), else of its language ("pt"), else the
 * default.
 */
static const struct templates *
pick_templates(const struct compose *c, int ri, const struct value *ctx)
{
	const struct locale_sets *ls = c->locales ? &c->locales[ri] : NULL;
	const char *loc;
	char want[17];
	size_t n;

	if (ls == NULL || ls->n == 0 ||
	    (loc = value_path_string(ctx, "customer.locale")) == NULL)
		return &c->sets[ri];
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
	return &c->sets[ri];
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

struct compose *
compose_open(const struct config *cfg, int preview, struct buf *errs)
{
	struct compose *c = xcalloc(1, sizeof(*c));
	size_t before = errs->len;

	c->cfg = cfg;
	c->preview = preview;
	c->partials_dir = xasprintf("%s/partials", cfg->templates_dir);
	c->sender_name = from_display_name(cfg->from);
	c->cache = mustache_cache_new(load_partial, c);
	c->memo = format_memo_new();
	c->sets = xcalloc((size_t)cfg->nrules, sizeof(*c->sets));
	for (int i = 0; i < cfg->nrules; i++) {
		char *dir = xasprintf("%s/%s", cfg->templates_dir,
		    cfg->rules[i].template_name);

		c->sets[i].subject = load_one(c, dir, "subject.mustache", 0,
		    errs);
		c->sets[i].text = load_one(c, dir, "text.mustache", 0, errs);
		c->sets[i].html = load_one(c, dir, "html.mustache", 1, errs);
		if (cfg->rules[i].kind == RULE_AGENT_REMINDER) {
			c->sets[i].summary = load_one(c, dir,
			    "summary.mustache", 0, errs);
			c->sets[i].description = load_one(c, dir,
			    "description.mustache", 1, errs);
		}
		load_locales(c, i, dir, errs);
		free(dir);
	}
	compose_open_consent(c, errs);
	if (cfg->calendar_link != NULL) {
		char *e = NULL;
		char *name = xasprintf("%s: [calendar] link", cfg->path);

		if ((c->link = mustache_parse(c->cache, name,
		    cfg->calendar_link, &e)) == NULL)
			buf_printf(errs, "%s\n", e);
		free(e);
		free(name);
	}
	if (errs->len != before) {
		compose_close(c);
		return NULL;
	}
	return c;
}

void
compose_close(struct compose *c)
{
	if (c == NULL)
		return;
	mustache_cache_free(c->cache);
	for (int i = 0; c->locales && i < c->cfg->nrules; i++) {
		for (int k = 0; k < c->locales[i].n; k++)
			free(c->locales[i].v[k].locale);
		free(c->locales[i].v);
	}
	free(c->locales);
	free(c->codes);
	consent_free(c->consent);
	free(c->sets);
	free(c->partials_dir);
	free(c->sender_name);
	free(c->unsub_mailto);
	free(c->unsub_url);
	free(c->unsub_header);
	format_memo_free(c->memo);
	buf_free(&c->subject);
	buf_free(&c->text);
	buf_free(&c->html);
	buf_free(&c->summary);
	buf_free(&c->desc);
	buf_free(&c->linkbuf);
	buf_free(&c->ics);
	free(c);
}

int
compose_has_code(const struct compose *c, int ri)
{
	return c->codes != NULL && c->codes[ri] != NULL;
}

int
compose_code(struct compose *c, int ri, struct value *ctx, const char *random,
    struct buf *out, char **err)
{
	value_map_set_path(ctx, "code.random", value_string(random));
	buf_reset(out);
	return mustache_render(c->cache, c->codes[ri], ctx,
	    MUSTACHE_ESCAPE_NONE, out, NULL, NULL, err);
}

static double
ctx_number(const struct value *ctx, const char *a, const char *b)
{
	return value_as_number(value_map_get(value_map_get(ctx, a), b));
}

/* Render one optional template into out; NULL template: nothing. */
static int
render_part(struct compose *c, const struct mustache_template *t,
    struct value *ctx, struct buf *out, char **err)
{
	if (t == NULL)
		return FU_OK;
	return mustache_render(c->cache, t, ctx, MUSTACHE_ESCAPE_NONE, out,
	    NULL, NULL, err);
}

/* The values every message derives from its row, the sender and the time. */
static void
compose_values(struct compose *c, const struct rule_config *rule,
    struct value *ctx, const char *message_id, time_t now)
{
	const char *at;
	time_t at_t;

	sanitize_tree(ctx);
	value_map_set_path(ctx, "sender.name", value_string(c->sender_name));
	value_map_set_path(ctx, "sender.address",
	    value_string(c->cfg->from_addr));
	value_map_set_path(ctx, "message.id", value_string(message_id));
	add_greeting_name(ctx);
	if ((at = value_path_string(ctx, "at")) != NULL &&
	    clock_parse(at, &at_t) == FU_OK &&
	    rule->kind == RULE_AFTER_RESOLUTION)
		format_resolved(ctx, at_t, value_path_string(ctx,
		    "customer.timezone"));
	/* The recipient's zone and the time of writing there. */
	c->tz = rules_zone(c->cfg, value_path_string(ctx, "tz"));
	value_map_set_path(ctx, "recipient.timezone",
	    value_string(clock_zone_name(c->tz)));
	format_message(c->memo, ctx, c->tz, now);
}

/* Marketing: RFC 2369 / RFC 8058 one-click https URL and a mailto. */
static void
compose_unsubscribe(struct compose *c, const struct rule_config *rule,
    struct value *ctx)
{
	const char *email = value_path_string(ctx, "email");
	struct buf h = { 0 };

	if (rule->cls != RULE_CLASS_MARKETING || c->consent == NULL ||
	    email == NULL)
		return;
	c->unsub_url = consent_unsubscribe_url(c->cfg, c->consent, email,
	    "marketing");
	/* The mailto names the desk, not the recipient (consent.h). */
	if (c->unsub_mailto == NULL)
		c->unsub_mailto = consent_mailto(c->cfg, email, "marketing");
	buf_reserve(&h, strlen(c->unsub_url) + strlen(c->unsub_mailto) + 6);
	buf_putc(&h, '<');
	buf_puts(&h, c->unsub_url);
	buf_append(&h, ">, <", 4);
	buf_puts(&h, c->unsub_mailto);
	buf_putc(&h, '>');
	c->unsub_header = buf_steal(&h);
	value_map_set_path(ctx, "unsubscribe.url", value_string(c->unsub_url));
	value_map_set_path(ctx, "unsubscribe.mailto",
	    value_string(c->unsub_mailto));
}

/* A reminder's link, SUMMARY and DESCRIPTION, before the other parts. */
static int
compose_reminder_text(struct compose *c, struct value *ctx, char **err)
{
	int r;

	/* The link first: subject, text and description may use it. */
	if ((r = render_part(c, c->link, ctx, &c->linkbuf, err)) != FU_OK)
		return r;
	if (c->linkbuf.len > 0)
		value_map_set_path(ctx, "calendar.link",
		    value_string(buf_cstr(&c->linkbuf)));
	if ((r = render_part(c, c->t->summary, ctx, &c->summary, err)) != FU_OK)
		return r;
	return render_part(c, c->t->description, ctx, &c->desc, err);
}

/* The calendar item of a reminder (iCalendar, RFC 5545) into c->ics. */
static int
compose_ics(struct compose *c, const struct rule_config *rule,
    const struct value *ctx, time_t now, char **err)
{
	const char *method = value_path_string(ctx, "calendar.method");
	struct ical_event ev = {
		.method = method,
		.uid = value_path_string(ctx, "calendar.uid"),
		.sequence = (int)ctx_number(ctx, "calendar", "sequence"),
		.dtstamp = now,
		.start = (time_t)ctx_number(ctx, "calendar", "start"),
		.end = (time_t)ctx_number(ctx, "calendar", "end"),
		.zone = c->tz,
		.summary = buf_cstr(&c->summary),
		.description = c->desc.len ? buf_cstr(&c->desc) : NULL,
		.url = c->linkbuf.len ? buf_cstr(&c->linkbuf) : NULL,
		.organizer_addr = c->cfg->from_addr,
		.organizer_name = value_path_string(ctx, "sender.name"),
		.attendee_addr = value_path_string(ctx, "email"),
		.attendee_name = value_path_string(ctx, "name"),
		.alarm = rule->alarm,
	};

	if (method == NULL || ev.uid == NULL) {
		set_err(err, "render: a reminder without its calendar item");
		return FU_PERMFAIL;
	}
	return ical_build(&ev, &c->ics, err);
}

/* Forget the last message; huge scratch buffers are not kept. */
static void
compose_reset(struct compose *c)
{
	struct buf *keep[] = { &c->subject, &c->text, &c->html };
	struct buf *drop[] = { &c->summary, &c->desc, &c->linkbuf, &c->ics };

	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		if (keep[i]->cap > COMPOSE_SCRATCH_KEEP)
			buf_free(keep[i]);
		buf_reset(keep[i]);
	}
	for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
		buf_free(drop[i]);
	free(c->unsub_url);
	free(c->unsub_header);
	c->unsub_url = c->unsub_header = NULL;
	c->t = NULL;
}

/* mustache's missing callback → compose's, with the context and part. */
struct missing_arg {
	compose_missing_fn	 fn;
	void			*arg;
	const struct value	*ctx;
	const char		*part;
};

static void
missing_cb(const char *name, void *arg)
{
	struct missing_arg *ma = arg;

	ma->fn(name, ma->ctx, ma->part, ma->arg);
}

int
compose_parts(struct compose *c, int ri, struct value *ctx,
    const char *message_id, time_t now, compose_missing_fn missing,
    void *arg, char **err)
{
	const struct rule_config *rule = &c->cfg->rules[ri];
	struct missing_arg ma[3] = { { missing, arg, ctx, "subject" },
	    { missing, arg, ctx, "text" }, { missing, arg, ctx, "html" } };
	mustache_missing_cb cb = missing ? missing_cb : NULL;
	int r;

	compose_reset(c);
	c->t = pick_templates(c, ri, ctx);
	compose_values(c, rule, ctx, message_id, now);
	compose_unsubscribe(c, rule, ctx);
	if (rule->kind == RULE_AGENT_REMINDER &&
	    (r = compose_reminder_text(c, ctx, err)) != FU_OK)
		return r;
	if ((r = mustache_render(c->cache, c->t->subject, ctx,
	    MUSTACHE_ESCAPE_NONE, &c->subject, cb, cb ? &ma[0] : NULL,
	    err)) != FU_OK ||
	    (r = mustache_render(c->cache, c->t->text, ctx,
	    MUSTACHE_ESCAPE_NONE, &c->text, cb, cb ? &ma[1] : NULL,
	    err)) != FU_OK ||
	    (c->t->html && (r = mustache_render(c->cache, c->t->html, ctx,
	    MUSTACHE_ESCAPE_HTML, &c->html, cb, cb ? &ma[2] : NULL,
	    err)) != FU_OK))
		return r;
	if (c->unsub_url != NULL)
		ensure_unsubscribe_link(c->unsub_url, &c->text,
		    c->t->html ? &c->html : NULL);
	if (rule->kind == RULE_AGENT_REMINDER)
		return compose_ics(c, rule, ctx, now, err);
	return FU_OK;
}

void
compose_parts_get(struct compose *c, struct compose_parts *p)
{
	p->subject = buf_cstr(&c->subject);
	p->text = buf_cstr(&c->text);
	p->html = c->t != NULL && c->t->html ? buf_cstr(&c->html) : NULL;
}

int
compose_mime(struct compose *c, int ri, const struct value *ctx,
    const char *message_id, time_t now, struct buf *out, char **err)
{
	const char *extra[5] = { NULL };
	struct mime_part_calendar cal = { NULL, NULL };
	int r;

	if (c->unsub_header != NULL) {
		extra[0] = "List-Unsubscribe";
		extra[1] = c->unsub_header;
		extra[2] = "List-Unsubscribe-Post";
		extra[3] = "List-Unsubscribe=One-Click";
	}
	if (c->cfg->rules[ri].kind == RULE_AGENT_REMINDER) {
		cal.method = value_path_string(ctx, "calendar.method");
		cal.ics = buf_cstr(&c->ics);
	}
	{
		struct mime_spec m = {
			.from = c->cfg->from,
			.reply_to = c->cfg->reply_to,
			.to_name = value_path_string(ctx, "name"),
			.to_addr = value_path_string(ctx, "email"),
			.subject = buf_cstr(&c->subject),
			.message_id = message_id,
			.date = now,
			.text = buf_cstr(&c->text),
			.html = c->t->html ? buf_cstr(&c->html) : NULL,
			.calendar = cal.ics ? &cal : NULL,
			.extra_headers = extra[0] ? extra : NULL,
		};

		r = mime_build(&m, out, err);
	}
	compose_reset(c);
	return r;
}

int
compose_message(struct compose *c, int ri, struct value *ctx,
    const char *message_id, time_t now, struct buf *out, char **err)
{
	int r;

	if ((r = compose_parts(c, ri, ctx, message_id, now, NULL, NULL,
	    err)) != FU_OK) {
		compose_reset(c);
		return r;
	}
	return compose_mime(c, ri, ctx, message_id, now, out, err);
}
