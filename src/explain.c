/* explain: which source queries read a whole table, and the index that would help. */
#include "explain.h"
#include "log.h"
#include "rules.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the SQL, as tokens: enough to see what is compared with what ---- */

enum tok_kind { T_ID, T_PARAM, T_OP, T_DOT, T_OTHER };

struct tok {
	enum tok_kind	 kind;
	char		 text[64];	/* identifiers unquoted; longer: cut */
};

struct toks {
	struct tok	*v;
	size_t		 n;
};

static void
tok_add(struct toks *t, enum tok_kind kind, const char *s, size_t len)
{
	struct tok *k;

	t->v = xrealloc(t->v, (t->n + 1) * sizeof(*t->v));
	k = &t->v[t->n++];
	k->kind = kind;
	if (len >= sizeof(k->text))
		len = sizeof(k->text) - 1;
	memcpy(k->text, s, len);
	k->text[len] = '\0';
}

static int
id_char(int c)
{
	return isalnum(c) || c == '_';
}

static void
tokenize(const char *sql, struct toks *t)
{
	const char *p = sql, *q;

	while (*p) {
		unsigned char c = (unsigned char)*p;

		if (isspace(c)) {
			p++;
		} else if (c == '-' && p[1] == '-') {		/* comment */
			p += strcspn(p, "\n");
		} else if (c == '\'') {				/* a string */
			for (p++; *p && !(*p == '\'' && p[1] != '\''); p++)
				if (*p == '\'')
					p++;
			if (*p)
				p++;
			tok_add(t, T_OTHER, "'", 1);
		} else if (c == '"' || c == '`' || c == '[') {	/* quoted name */
			char end = c == '[' ? ']' : (char)c;

			q = strchr(p + 1, end);
			q = q ? q : p + strlen(p);
			tok_add(t, T_ID, p + 1, (size_t)(q - p - 1));
			p = *q ? q + 1 : q;
		} else if (c == ':' && id_char((unsigned char)p[1])) {
			for (q = p + 1; id_char((unsigned char)*q); q++)
				;
			tok_add(t, T_PARAM, p + 1, (size_t)(q - p - 1));
			p = q;
		} else if (isalpha(c) || c == '_') {
			for (q = p; id_char((unsigned char)*q); q++)
				;
			tok_add(t, T_ID, p, (size_t)(q - p));
			p = q;
		} else if (strchr("=<>!", c)) {
			for (q = p; *q && strchr("=<>!", *q); q++)
				;
			tok_add(t, T_OP, p, (size_t)(q - p));
			p = q;
		} else if (c == '.') {
			tok_add(t, T_DOT, ".", 1);
			p++;
		} else {
			tok_add(t, T_OTHER, p, 1);
			p++;
		}
	}
}

static int
is_id(const struct toks *t, size_t i, const char *word)
{
	return i < t->n && t->v[i].kind == T_ID &&
	    (word == NULL || strcasecmp(t->v[i].text, word) == 0);
}

/* Does `name` (a SCAN's name) stand for `table` in this SQL? */
static int
names_table(const struct toks *t, const char *name, const char *table)
{
	if (strcasecmp(name, table) == 0)
		return 1;
	for (size_t i = 0; i + 2 < t->n; i++)
		if ((is_id(t, i, "FROM") || is_id(t, i, "JOIN")) &&
		    is_id(t, i + 1, table) && (is_id(t, i + 2, name) ||
		    (is_id(t, i + 2, "AS") && is_id(t, i + 3, name))))
			return 1;
	return 0;
}

/* The table a SCAN names: itself, or the table it is an alias of. */
static const char *
scanned_table(const struct toks *t, struct source *src, const char *name)
{
	if (source_has_table(src, name))
		return name;
	for (size_t i = 0; i + 2 < t->n; i++)
		if ((is_id(t, i, "FROM") || is_id(t, i, "JOIN")) &&
		    is_id(t, i + 1, NULL) && (is_id(t, i + 2, name) ||
		    (is_id(t, i + 2, "AS") && is_id(t, i + 3, name))) &&
		    source_has_table(src, t->v[i + 1].text))
			return t->v[i + 1].text;
	return NULL;		/* a CTE or a subquery: not the desk's */
}

static int
is_cmp(const struct tok *k, int *eq)
{
	if (k->kind == T_OP) {
		*eq = strcmp(k->text, "=") == 0 || strcmp(k->text, "==") == 0;
		return strcmp(k->text, "!=") != 0 && strcmp(k->text, "<>") != 0;
	}
	*eq = 1;
	return k->kind == T_ID && strcasecmp(k->text, "IS") == 0;
}

/*
 * A column reference ending at token i ("t.col" or "col", not part of a
 * longer dotted name): its qualifier (or NULL) and name; 0 if none.
 */
static int
column_at(const struct toks *t, size_t i, const char **qual,
    const char **col)
{
	if (i >= t->n || t->v[i].kind != T_ID ||
	    (i + 1 < t->n && t->v[i + 1].kind == T_DOT))
		return 0;
	*col = t->v[i].text;
	*qual = i >= 2 && t->v[i - 1].kind == T_DOT &&
	    t->v[i - 2].kind == T_ID ? t->v[i - 2].text : NULL;
	return 1;
}

/* "x.c AS key": what a result column's alias stands for. */
static void
unalias(const struct toks *t, const char **qual, const char **col)
{
	for (size_t i = 1; i + 1 < t->n; i++)
		if (is_id(t, i, "AS") && is_id(t, i + 1, *col) &&
		    column_at(t, i - 1, qual, col))
			return;
}

/*
 * The column of `table` that the SQL compares with a parameter (an
 * equality first, else a range), for CREATE INDEX; NULL when none.
 */
static const char *
compared_column(const struct toks *t, struct source *src, const char *table)
{
	const char *best = NULL;

	for (size_t i = 0; i < t->n; i++) {
		const char *qual = NULL, *col = NULL;
		int eq = 0, found = 0;

		if (i + 2 < t->n && t->v[i + 2].kind == T_PARAM &&
		    is_cmp(&t->v[i + 1], &eq))
			found = column_at(t, i, &qual, &col);
		else if (t->v[i].kind == T_PARAM && i + 2 < t->n &&
		    is_cmp(&t->v[i + 1], &eq) && (i + 3 >= t->n ||
		    t->v[i + 3].kind != T_DOT))
			found = column_at(t, i + 2, &qual, &col);
		if (!found)
			continue;
		if (!source_has_column(src, table, col))
			unalias(t, &qual, &col);
		if ((qual != NULL && !names_table(t, qual, table)) ||
		    !source_has_column(src, table, col))
			continue;
		if (eq)
			return col;
		if (best == NULL)
			best = col;
	}
	return best;
}

/* ---- the plans ---- */

struct details {
	char	**v;
	size_t	  n;
};

static int
detail_row(struct value *row, void *arg)
{
	struct details *d = arg;
	const char *s = value_as_string(value_map_get(row, "detail"), NULL);

	if (s != NULL && strncmp(s, "SCAN ", 5) == 0 &&
	    strncmp(s, "SCAN CONSTANT ROW", 17) != 0) {
		d->v = xrealloc(d->v, (d->n + 1) * sizeof(*d->v));
		d->v[d->n++] = xstrdup(s);
	}
	value_free(row);
	return FU_OK;
}

/* One query: its findings appended to out; -1 when the desk is busy. */
static int
explain_one(struct source *src, const char *label, const char *sql,
    int per_job, struct buf *out, char **err)
{
	struct details d = { NULL, 0 };
	struct toks t = { NULL, 0 };
	char *eqp = xasprintf("EXPLAIN QUERY PLAN %s", sql), *e = NULL;
	const char *reported[8];
	int r, n = 0, nrep = 0;

	r = source_select(src, eqp, NULL, detail_row, &d, &e);
	free(eqp);
	if (r == FU_TEMPFAIL) {
		set_err(err, "%s", e);
		n = -1;
	}
	free(e);		/* a query that does not prepare: check says so */
	tokenize(sql, &t);
	for (size_t i = 0; i < d.n && n >= 0; i++) {
		char name[64];
		const char *table, *col;
		int seen = 0;

		snprintf(name, sizeof(name), "%.*s", (int)strcspn(d.v[i] + 5,
		    " "), d.v[i] + 5);
		if ((table = scanned_table(&t, src, name)) == NULL)
			continue;
		for (int k = 0; k < nrep; k++)
			seen |= strcasecmp(reported[k], table) == 0;
		col = compared_column(&t, src, table);
		if (seen || (!per_job && col == NULL) || nrep == 8)
			continue;
		reported[nrep++] = table;
		buf_printf(out, "%s (%s): reads all of table %s (%s); ", label,
		    per_job ? "per message" : "each tick", table, d.v[i]);
		if (col != NULL)
			buf_printf(out, "CREATE INDEX %s_%s ON %s(%s);\n", table,
			    col, table, col);
		else
			buf_puts(out, "no index on one column would serve it\n");
		n++;
	}
	for (size_t i = 0; i < d.n; i++)
		free(d.v[i]);
	free(d.v);
	free(t.v);
	return n;
}

int
explain_source(const struct config *cfg, struct source *src, struct buf *out,
    char **err)
{
	const char *table, *sql;
	struct buf label = { 0 };
	int total = 0, n, history = 0;

	for (int i = 0; i < cfg->nrules && total >= 0; i++) {
		const struct rule_config *r = &cfg->rules[i];
		char *recheck;

		if (!r->enabled)
			continue;
		history |= r->history;
		buf_reset(&label);
		buf_printf(&label, "[rule %s] planning query", r->name);
		if ((n = explain_one(src, label.data, rules_query(r), 0, out,
		    err)) < 0)
			total = -1;
		else
			total += n;
		buf_reset(&label);
		buf_printf(&label, "[rule %s] re-check", r->name);
		recheck = rules_recheck_query(r);
		if (total >= 0 && (n = explain_one(src, label.data, recheck, 1,
		    out, err)) < 0)
			total = -1;
		else if (total >= 0)
			total += n;
		free(recheck);
	}
	for (size_t i = 0; history && total >= 0 &&
	    (sql = rules_history_query(i, &table)) != NULL; i++) {
		if (!source_has_table(src, table))
			continue;
		if ((n = explain_one(src, "history.*", sql, 1, out, err)) < 0)
			total = -1;
		else
			total += n;
	}
	buf_free(&label);
	return total;
}

void
explain_log(const struct config *cfg, struct source *src)
{
	struct buf out = { 0 };
	char *err = NULL, *line, *next;

	if (explain_source(cfg, src, &out, &err) < 0)
		log_info("source: query plans not checked: %s", err);
	for (line = out.data; line != NULL && *line; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		log_warnx("source: %s", line);
	}
	buf_free(&out);
	free(err);
}
