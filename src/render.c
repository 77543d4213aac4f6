/* render: tick step 2: due jobs re-checked against the source, then template → MIME → spool. */
#include "render.h"
#include "clock.h"
#include "log.h"
#include "mime.h"
#include "mustache.h"
#include "rules.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* Longest value from the database we put in a body (bytes). */
#define RENDER_VALUE_MAX	(16 * 1024)
/* Planned jobs looked at per tick step; the rest wait for the next tick. */
#define RENDER_BATCH		1000

struct templates {
	const struct mustache_template *subject, *text, *html;
};

struct render {
	const struct config	*cfg;
	struct mustache_cache	*cache;
	struct templates	*sets;		/* one per cfg->rules[i] */
	char			*partials_dir;
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

struct render *
render_open(const struct config *cfg, struct buf *errs)
{
	struct render *rd = xcalloc(1, sizeof(*rd));
	size_t before = errs->len;

	rd->cfg = cfg;
	rd->partials_dir = xasprintf("%s/partials", cfg->templates_dir);
	rd->cache = mustache_cache_new(load_partial, rd);
	rd->sets = xcalloc((size_t)cfg->nrules, sizeof(*rd->sets));
	for (int i = 0; i < cfg->nrules; i++) {
		char *dir = xasprintf("%s/%s", cfg->templates_dir,
		    cfg->rules[i].template_name);

		rd->sets[i].subject = load_one(rd, dir, "subject.mustache", 0,
		    errs);
		rd->sets[i].text = load_one(rd, dir, "text.mustache", 0, errs);
		rd->sets[i].html = load_one(rd, dir, "html.mustache", 1, errs);
		free(dir);
	}
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
	free(rd->sets);
	free(rd->partials_dir);
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
			const char *k = value_map_key_at(v, i);
			const struct value *c = value_map_value_at(v, i);
			const char *s = value_as_string(c, &len);

			if (s != NULL) {
				struct buf b = { 0 };

				utf8_sanitize(s, len, RENDER_VALUE_MAX, &b);
				if (b.len != len || memcmp(b.data, s, len) != 0)
					value_map_set(v, k,
					    value_stringn(buf_cstr(&b), b.len));
				buf_free(&b);
			} else
				sanitize_tree((struct value *)(uintptr_t)c);
		}
		break;
	default:
		break;
	}
}

/* Weekday and date of an instant in a zone ("Tuesday", "3 November 2026"). */
static void
add_local_dates(struct value *ctx, const char *prefix, time_t t,
    const char *zone)
{
	static const char *const days[] = { "Sunday", "Monday", "Tuesday",
	    "Wednesday", "Thursday", "Friday", "Saturday" };
	static const char *const months[] = { "January", "February", "March",
	    "April", "May", "June", "July", "August", "September", "October",
	    "November", "December" };
	GTimeZone *tz = zone ? g_time_zone_new_identifier(zone) : NULL;
	GDateTime *dt;
	char path[160], text[64];

	if (tz == NULL)
		tz = g_time_zone_new_utc();
	dt = g_date_time_new_from_unix_utc((gint64)t);
	if (dt != NULL) {
		GDateTime *local = g_date_time_to_timezone(dt, tz);

		snprintf(path, sizeof(path), "%s_weekday", prefix);
		value_map_set_path(ctx, path, value_string(
		    days[g_date_time_get_day_of_week(local) % 7]));
		snprintf(text, sizeof(text), "%d %s %d",
		    g_date_time_get_day_of_month(local),
		    months[g_date_time_get_month(local) - 1],
		    g_date_time_get_year(local));
		snprintf(path, sizeof(path), "%s_date", prefix);
		value_map_set_path(ctx, path, value_string(text));
		g_date_time_unref(local);
		g_date_time_unref(dt);
	}
	g_time_zone_unref(tz);
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

static char *
new_message_id(int64_t job_id, const char *from_addr)
{
	unsigned char rnd[8];
	char hex[17];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		fatal("render: getrandom");
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	return xasprintf("followupd.%lld.%s@%s", (long long)job_id, hex,
	    mime_address_domain(from_addr));
}

/*
 * Build the whole message for one source row. The row is consumed (it
 * becomes the template context). FU_PERMFAIL for a template or data
 * problem, with *err.
 */
static int
build_message(struct render *rd, struct source *src, int ri, struct value *ctx,
    const char *message_id, time_t now, struct buf *out, char **err)
{
	const struct rule_config *rule = &rd->cfg->rules[ri];
	const struct templates *t = &rd->sets[ri];
	struct buf subject = { 0 }, text = { 0 }, html = { 0 };
	char *sender_name;
	const char *at, *cid;
	time_t at_t;
	int r;

	/* history.* comes from the reference schema's tables, when present. */
	if (rule->history && (cid = row_str(ctx, "customer.id")) != NULL &&
	    (r = rules_history(src, cid, now, ctx, err)) != FU_OK)
		return r;
	sender_name = from_display_name(rd->cfg->from);
	sanitize_tree(ctx);
	value_map_set_path(ctx, "sender.name", value_string(sender_name));
	value_map_set_path(ctx, "sender.address",
	    value_string(rd->cfg->from_addr));
	value_map_set_path(ctx, "message.id", value_string(message_id));
	add_greeting_name(ctx);
	if ((at = row_str(ctx, "at")) != NULL && clock_parse(at, &at_t) == FU_OK &&
	    rule->kind == RULE_AFTER_RESOLUTION)
		add_local_dates(ctx, "ticket.resolved", at_t,
		    row_str(ctx, "customer.timezone"));
	free(sender_name);

	if ((r = mustache_render(rd->cache, t->subject, ctx,
	    MUSTACHE_ESCAPE_NONE, &subject, NULL, NULL, err)) != FU_OK ||
	    (r = mustache_render(rd->cache, t->text, ctx, MUSTACHE_ESCAPE_NONE,
	    &text, NULL, NULL, err)) != FU_OK ||
	    (t->html && (r = mustache_render(rd->cache, t->html, ctx,
	    MUSTACHE_ESCAPE_HTML, &html, NULL, NULL, err)) != FU_OK))
		goto done;
	{
		struct mime_spec m = {
			.from = rd->cfg->from,
			.reply_to = rd->cfg->reply_to,
			.to_name = row_str(ctx, "name"),
			.to_addr = row_str(ctx, "email"),
			.subject = buf_cstr(&subject),
			.message_id = message_id,
			.date = now,
			.text = buf_cstr(&text),
			.html = t->html ? buf_cstr(&html) : NULL,
		};

		r = mime_build(&m, out, err);
	}
done:
	buf_free(&subject);
	buf_free(&text);
	buf_free(&html);
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
	char *sql = rules_recheck_query(&rd->cfg->rules[ri]);
	struct source_params p = { .since = RULES_TIME_MIN,
	    .until = RULES_TIME_MAX, .key = key };
	int r = source_select(src, sql, &p, recheck_cb, rc, err);

	free(sql);
	return r;
}

/*
 * Why this row must not be mailed, or NULL. *detail gets an allocated
 * explanation for the history.
 */
static const char *
row_block_reason(struct store *st, const struct value *row, char **detail,
    int *tempfail, char **err)
{
	const char *email = row_str(row, "email"), *why;
	int yes;

	*tempfail = 0;
	if (email == NULL || *email == '\0') {
		*detail = xstrdup("the recipient has no email address");
		return "no-address";
	}
	if (!mime_address_ok(email, &why)) {
		struct buf b = { 0 };

		buf_puts(&b, "invalid address '");
		utf8_sanitize(email, strlen(email), 80, &b);
		buf_printf(&b, "': %s", why);
		*detail = buf_steal(&b);
		return "bad-address";
	}
	if (st == NULL)
		return NULL;
	if (store_suppressed(st, email, &yes, err) != FU_OK) {
		*tempfail = 1;
		return NULL;
	}
	if (yes) {
		*detail = xstrdup("the address is suppressed after a "
		    "permanent failure");
		return "suppressed";
	}
	if (store_opted_out(st, email, "transactional", &yes, err) != FU_OK) {
		*tempfail = 1;
		return NULL;
	}
	if (yes) {
		*detail = xstrdup("the recipient opted out");
		return "opted-out";
	}
	return NULL;
}

/* Decide and, when it is to be sent, spool one planned job. */
static int
render_job(struct render *rd, struct store *st, struct source *src,
    struct spool *sp, const struct job *job, time_t now,
    struct render_stats *stats, char **err)
{
	int ri = rule_index(rd, job->rule);
	struct recheck rc = { .occurrence = job->occurrence };
	struct buf msg = { 0 };
	char *detail = NULL, *mid = NULL, *spool_name = NULL, *e = NULL;
	const char *reason;
	int r, tempfail;

	if (ri < 0) {
		stats->held++;
		log_warnx("render: job %lld: rule '%s' is no longer in the "
		    "configuration: left planned", (long long)job->id, job->rule);
		return FU_OK;
	}
	if ((r = recheck(rd, src, ri, job->subject, &rc, err)) != FU_OK)
		return r;
	if (rc.row == NULL) {
		detail = xasprintf("%s %s is no longer resolved at %s",
		    job->rule, job->subject, job->occurrence);
		reason = "reopened";
	} else
		reason = row_block_reason(st, rc.row, &detail, &tempfail, err);
	if (reason == NULL && tempfail) {
		value_free(rc.row);
		return FU_TEMPFAIL;
	}
	if (reason != NULL) {
		r = store_job_cancel(st, job->id, reason, detail, now, err);
		if (r == FU_OK) {
			stats->cancelled++;
			log_info("render: job %lld (%s %s): cancelled: %s (%s)",
			    (long long)job->id, job->rule, job->subject, reason,
			    detail);
		}
		goto done;
	}

	mid = job->message_id ? xstrdup(job->message_id) :
	    new_message_id(job->id, rd->cfg->from_addr);
	{
		char *email = xstrdup(row_str(rc.row, "email"));
		struct value *row = rc.row;

		rc.row = NULL;
		r = build_message(rd, src, ri, row, mid, now, &msg, &e);
		value_free(row);
		if (r == FU_TEMPFAIL) {
			/* The source is busy: the job stays planned. */
			set_err(err, "%s", e);
			free(email);
			goto done;
		}
		if (r != FU_OK) {
			/* A template or data problem that `check` cannot see:
			 * this message can never be built as it stands. */
			r = store_job_failed(st, job->id, "render-error", e,
			    now, err);
			if (r == FU_OK) {
				stats->failed++;
				log_warnx("render: job %lld (%s %s): failed: %s",
				    (long long)job->id, job->rule, job->subject,
				    e);
			}
			free(email);
			goto done;
		}
		spool_name = xasprintf("%lld.eml", (long long)job->id);
		if ((r = spool_write(sp, spool_name, msg.data, msg.len, err)) !=
		    FU_OK) {
			free(email);
			goto done;
		}
		r = store_job_queued(st, job->id, email, mid, spool_name, now,
		    err);
		if (r == FU_OK) {
			stats->queued++;
			log_info("render: job %lld (%s %s): queued for @%s, "
			    "Message-ID <%s>", (long long)job->id, job->rule,
			    job->subject, mime_address_domain(email), mid);
		}
		free(email);
	}
done:
	value_free(rc.row);
	buf_free(&msg);
	free(detail);
	free(mid);
	free(spool_name);
	free(e);
	return r;
}

int
render_tick(struct render *rd, struct store *st, struct source *src,
    struct spool *sp, time_t now, struct render_stats *stats, char **err)
{
	struct job *jobs;
	int n, r;

	memset(stats, 0, sizeof(*stats));
	if ((r = store_jobs_due(st, JOB_PLANNED, now, RENDER_BATCH, &jobs, &n,
	    err)) != FU_OK)
		return r;
	for (int i = 0; i < n; i++) {
		if ((r = render_job(rd, st, src, sp, &jobs[i], now, stats,
		    err)) == FU_TEMPFAIL)
			break;	/* source busy or disk full: next tick */
		if (r != FU_OK) {
			/* This job only: the others may be fine. */
			log_warnx("render: job %lld: %s", (long long)jobs[i].id,
			    err && *err ? *err : "error");
			stats->held++;
			r = FU_OK;
		}
	}
	store_jobs_free(jobs, n);
	return r;
}

int
render_preview(struct render *rd, struct source *src, const char *rule,
    const char *key, time_t now, struct buf *out, char **err)
{
	int ri = rule_index(rd, rule);
	struct recheck rc = { .occurrence = NULL };
	char *detail = NULL, *mid;
	const char *reason;
	int r, tempfail;

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
	if ((reason = row_block_reason(NULL, rc.row, &detail, &tempfail,
	    err)) != NULL) {
		set_err(err, "%s %s would not be sent: %s (%s)", rule, key,
		    reason, detail);
		free(detail);
		value_free(rc.row);
		return FU_PERMFAIL;
	}
	mid = xasprintf("preview.%s.%s@%s", rule, key,
	    mime_address_domain(rd->cfg->from_addr));
	r = build_message(rd, src, ri, rc.row, mid, now, out, err);
	value_free(rc.row);
	free(mid);
	return r;
}
