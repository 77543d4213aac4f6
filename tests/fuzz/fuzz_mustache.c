/*
 * fuzz_mustache: the Mustache parser and renderer with hostile templates
 * and partials.
 *
 * Input: NUL-separated parts: the template, then the partials "p" and
 * "layout" (what {{>p}} and {{<layout}} load). The template is parsed,
 * its references checked, and rendered with both escapes against a fixed
 * context holding every value type (nested maps, lists, empty and hostile
 * strings). Beyond "no crash, no leak, bounded time", HTML rendering of a
 * template without triple mustaches or '&' tags must never let a context
 * value's '<' through.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mustache.h"
#include "util.h"
#include "value.h"

struct parts {
	const char *p, *layout;
};

static char *
loader(const char *name, void *arg)
{
	const struct parts *pt = arg;

	if (strcmp(name, "p") == 0 && pt->p != NULL)
		return xstrdup(pt->p);
	if (strcmp(name, "layout") == 0 && pt->layout != NULL)
		return xstrdup(pt->layout);
	return NULL;
}

static struct value *
context(void)
{
	struct value *root = value_map(), *list = value_list(), *item;

	value_map_set_path(root, "customer.name", value_string("<b>Ana</b>"));
	value_map_set_path(root, "customer.first_name", value_string("Ana"));
	value_map_set_path(root, "ticket.subject",
	    value_string("a\r\nBcc: evil@example.com <script>"));
	value_map_set_path(root, "ticket.id", value_number(42));
	value_map_set_path(root, "empty", value_string(""));
	value_map_set_path(root, "yes", value_bool(1));
	value_map_set_path(root, "no", value_bool(0));
	value_map_set_path(root, "nothing", value_null());
	value_map_set_path(root, "nul", value_stringn("a\0b", 3));
	for (int i = 0; i < 3; i++) {
		item = value_map();
		value_map_set(item, "item", value_string("<i>"));
		value_map_set(item, "n", value_number(i));
		value_list_append(list, item);
	}
	value_map_set(root, "list", list);
	value_map_set(root, "none", value_list());
	return root;
}

static int
no_raw_tags(const char *t)
{
	/* {{{x}}}, {{&x}} and changed delimiters may output raw values. */
	return strstr(t, "{{{") == NULL && strstr(t, "{{&") == NULL &&
	    strchr(t, '=') == NULL && strchr(t, '<') == NULL &&
	    strchr(t, '>') == NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = xmalloc(size + 1), *p, *end;
	const char *part[3] = { NULL, NULL, NULL };
	struct parts pt;
	struct mustache_cache *c;
	const struct mustache_template *t;
	struct value *ctx;
	char *err = NULL;
	int n = 0;

	memcpy(copy, data, size);
	copy[size] = '\0';
	for (p = copy, end = copy + size; n < 3 && p <= end; n++) {
		part[n] = p;
		p += strlen(p) + 1;
	}
	pt.p = part[1];
	pt.layout = part[2];
	c = mustache_cache_new(loader, &pt);
	if ((t = mustache_parse(c, "fuzz", part[0], &err)) == NULL) {
		FUZZ_ASSERT(err != NULL, "a parse error says why");
		free(err);
		goto out;
	}
	if (mustache_check_refs(c, t, &err) != FU_OK) {
		FUZZ_ASSERT(err != NULL, "a reference error says why");
		free(err);
		err = NULL;
	}
	ctx = context();
	for (int esc = 0; esc < 2; esc++) {
		struct buf out = { 0 };

		(void)mustache_render(c, t, ctx, esc ? MUSTACHE_ESCAPE_NONE :
		    MUSTACHE_ESCAPE_HTML, &out, NULL, NULL, &err);
		free(err);
		err = NULL;
		if (!esc && no_raw_tags(copy) && part[1] == NULL &&
		    out.len > 0)
			FUZZ_ASSERT(memchr(out.data, '<', out.len) == NULL,
			    "HTML escaping lets no '<' of a value through");
		buf_free(&out);
	}
	value_free(ctx);
out:
	mustache_cache_free(c);
	free(copy);
	return 0;
}
