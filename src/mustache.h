/* mustache: a Mustache template engine (spec core modules + inheritance). Pure: no I/O. */
#ifndef FOLLOWUPD_MUSTACHE_H
#define FOLLOWUPD_MUSTACHE_H

#include "util.h"
#include "value.h"

/*
 * Templates are parsed once and kept in a cache. Partials ({{>name}}) and
 * parents ({{<name}}) are fetched through the loader on first use, parsed and
 * cached too. The loader returns an allocated source string (caller of the
 * loader frees it) or NULL when there is no such template; a missing partial
 * renders as "" per the spec.
 */
typedef char *(*mustache_loader)(const char *name, void *arg);

struct mustache_cache;
struct mustache_template;

struct mustache_cache	*mustache_cache_new(mustache_loader, void *arg);
void			 mustache_cache_free(struct mustache_cache *);

/*
 * Parse src (NUL-terminated) under the name `name` (used in error messages)
 * and keep it in the cache. On a syntax error returns NULL and sets *err to
 * "NAME:LINE: what is wrong" (unclosed section, mismatched close tag, bad
 * delimiter change, empty tag name...). The template belongs to the cache.
 */
const struct mustache_template *mustache_parse(struct mustache_cache *,
    const char *name, const char *src, char **err);

/*
 * Look up a template by name in the cache, loading and parsing it through
 * the loader when not yet cached. NULL with *err set when missing or invalid.
 */
const struct mustache_template *mustache_get(struct mustache_cache *,
    const char *name, char **err);

/*
 * Parse every partial and parent the template refers to (transitively), so
 * `check` can report a typo in a partial before any message is rendered.
 * Missing partials are reported here (unlike at render time). FU_OK or
 * FU_PERMFAIL with *err.
 */
int	mustache_check_refs(struct mustache_cache *,
	    const struct mustache_template *, char **err);

enum mustache_escape {
	MUSTACHE_ESCAPE_HTML,	/* {{x}} escapes & < > " ' (spec behaviour) */
	MUSTACHE_ESCAPE_NONE,	/* plain text and header templates */
};

/*
 * Called once for every interpolation or section whose name resolves to
 * nothing (or to null / ""), so a preview can report template variables
 * missing from the data. May be NULL.
 */
typedef void (*mustache_missing_cb)(const char *name, void *arg);

/*
 * Render with the given context stack root. Appends to out. Rendering
 * cannot fail on data; a partial that fails to parse at render time renders
 * as "" and is reported through *err (when err is not NULL) with FU_PERMFAIL,
 * the output still complete otherwise.
 */
int	mustache_render(struct mustache_cache *, const struct mustache_template *,
	    const struct value *ctx, enum mustache_escape, struct buf *out,
	    mustache_missing_cb, void *cb_arg, char **err);

#endif
