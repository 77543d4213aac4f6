/* test_mustache: the official Mustache spec files, then our own table tests. */
#include "mustache.h"
#include "tap.h"
#include "util.h"
#include "value.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- a small strict JSON parser (RFC 8259) producing value trees ---- */

#define JSON_MAX_DEPTH	128

struct json {
	const char	*p;
	int		 depth;
	const char	*err;
};

static struct value *json_value(struct json *);

static void
json_ws(struct json *j)
{
	while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
		j->p++;
}

static int
json_hex4(struct json *j, unsigned *cp)
{
	int i;

	*cp = 0;
	for (i = 0; i < 4; i++) {
		char c = j->p[i];

		*cp <<= 4;
		if (c >= '0' && c <= '9')
			*cp |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*cp |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*cp |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	j->p += 4;
	return 0;
}

static void
utf8_put(struct buf *b, unsigned cp)
{
	if (cp < 0x80)
		buf_putc(b, (char)cp);
	else if (cp < 0x800) {
		buf_putc(b, (char)(0xc0 | (cp >> 6)));
		buf_putc(b, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		buf_putc(b, (char)(0xe0 | (cp >> 12)));
		buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
		buf_putc(b, (char)(0x80 | (cp & 0x3f)));
	} else {
		buf_putc(b, (char)(0xf0 | (cp >> 18)));
		buf_putc(b, (char)(0x80 | ((cp >> 12) & 0x3f)));
		buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
		buf_putc(b, (char)(0x80 | (cp & 0x3f)));
	}
}

/* A string after its opening quote, into b. */
static int
json_string(struct json *j, struct buf *b)
{
	unsigned cp, lo;

	for (;;) {
		unsigned char c = (unsigned char)*j->p++;

		if (c == '"')
			return 0;
		if (c < 0x20) {
			j->err = c ? "control character in string" : "unterminated string";
			return -1;
		}
		if (c != '\\') {
			buf_putc(b, (char)c);
			continue;
		}
		switch (*j->p++) {
		case '"': buf_putc(b, '"'); break;
		case '\\': buf_putc(b, '\\'); break;
		case '/': buf_putc(b, '/'); break;
		case 'b': buf_putc(b, '\b'); break;
		case 'f': buf_putc(b, '\f'); break;
		case 'n': buf_putc(b, '\n'); break;
		case 'r': buf_putc(b, '\r'); break;
		case 't': buf_putc(b, '\t'); break;
		case 'u':
			if (json_hex4(j, &cp) == -1)
				goto bad;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				goto bad;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (j->p[0] != '\\' || j->p[1] != 'u')
					goto bad;
				j->p += 2;
				if (json_hex4(j, &lo) == -1 || lo < 0xdc00 || lo > 0xdfff)
					goto bad;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			utf8_put(b, cp);
			break;
		default:
			goto bad;
		}
	}
bad:
	j->err = "bad escape";
	return -1;
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static struct value *
json_number(struct json *j)
{
	const char *s = j->p;

	if (*j->p == '-')
		j->p++;
	if (*j->p == '0')
		j->p++;
	else if (is_digit(*j->p))
		while (is_digit(*j->p))
			j->p++;
	else
		goto bad;
	if (*j->p == '.') {
		j->p++;
		if (!is_digit(*j->p))
			goto bad;
		while (is_digit(*j->p))
			j->p++;
	}
	if (*j->p == 'e' || *j->p == 'E') {
		j->p++;
		if (*j->p == '+' || *j->p == '-')
			j->p++;
		if (!is_digit(*j->p))
			goto bad;
		while (is_digit(*j->p))
			j->p++;
	}
	return value_number(strtod(s, NULL));	/* the grammar above is a subset of strtod's */
bad:
	j->err = "bad number";
	return NULL;
}

static struct value *
json_container(struct json *j, char close)
{
	struct value *v = close == '}' ? value_map() : value_list(), *item;
	struct buf key = { 0 };

	if (++j->depth > JSON_MAX_DEPTH) {
		j->err = "nested too deep";
		goto fail;
	}
	json_ws(j);
	if (*j->p == close) {
		j->p++;
		j->depth--;
		return v;
	}
	for (;;) {
		json_ws(j);
		if (close == '}') {
			buf_reset(&key);
			if (*j->p++ != '"' || json_string(j, &key) == -1) {
				if (j->err == NULL)
					j->err = "expected a key";
				goto fail;
			}
			json_ws(j);
			if (*j->p++ != ':') {
				j->err = "expected ':'";
				goto fail;
			}
		}
		if ((item = json_value(j)) == NULL)
			goto fail;
		if (close == '}')
			value_map_set(v, buf_cstr(&key), item);
		else
			value_list_append(v, item);
		json_ws(j);
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		if (*j->p++ == close)
			break;
		j->err = "expected ',' or a closing bracket";
		goto fail;
	}
	buf_free(&key);
	j->depth--;
	return v;
fail:
	buf_free(&key);
	value_free(v);
	return NULL;
}

static struct value *
json_value(struct json *j)
{
	struct buf b = { 0 };
	struct value *v;

	json_ws(j);
	switch (*j->p) {
	case '{':
	case '[':
		return json_container(j, *j->p++ == '{' ? '}' : ']');
	case '"':
		j->p++;
		if (json_string(j, &b) == -1) {
			buf_free(&b);
			return NULL;
		}
		v = value_stringn(buf_cstr(&b), b.len);
		buf_free(&b);
		return v;
	case 't':
		if (strncmp(j->p, "true", 4) == 0) {
			j->p += 4;
			return value_bool(1);
		}
		break;
	case 'f':
		if (strncmp(j->p, "false", 5) == 0) {
			j->p += 5;
			return value_bool(0);
		}
		break;
	case 'n':
		if (strncmp(j->p, "null", 4) == 0) {
			j->p += 4;
			return value_null();
		}
		break;
	default:
		if (*j->p == '-' || is_digit(*j->p))
			return json_number(j);
		break;
	}
	j->err = "unexpected character";
	return NULL;
}

static struct value *
json_parse(const char *s, const char **err)
{
	struct json j = { s, 0, NULL };
	struct value *v = json_value(&j);

	if (v != NULL) {
		json_ws(&j);
		if (*j.p != '\0') {
			j.err = "trailing characters";
			value_free(v);
			v = NULL;
		}
	}
	*err = j.err;
	return v;
}

/* ---- helpers ---- */

struct loader_ctx {
	const struct value	*partials;	/* name → source */
	int			 calls;
};

static char *
map_loader(const char *name, void *arg)
{
	struct loader_ctx *lc = arg;
	const char *s;
	size_t len;

	lc->calls++;
	s = value_as_string(value_map_get(lc->partials, name), &len);
	return s != NULL ? xstrndup(s, len) : NULL;
}

/* Render src with partials (a JSON object of name → source) and data (JSON). */
static int
render_json(const char *src, const char *partials_json, const char *data_json,
    enum mustache_escape esc, struct buf *out, mustache_missing_cb cb,
    void *cb_arg, char **err)
{
	const char *jerr;
	struct value *partials = json_parse(partials_json, &jerr);
	struct value *data = json_parse(data_json, &jerr);
	struct loader_ctx lc = { partials, 0 };
	struct mustache_cache *c = mustache_cache_new(map_loader, &lc);
	const struct mustache_template *t = mustache_parse(c, "t", src, err);
	int rc = FU_PERMFAIL;

	if (t != NULL)
		rc = mustache_render(c, t, data, esc, out, cb, cb_arg, err);
	mustache_cache_free(c);
	value_free(partials);
	value_free(data);
	return rc;
}

/* A template as a one-line test name. */
static const char *
oneline(const char *s)
{
	static char out[256];
	size_t n = 0;

	for (; *s && n + 3 < sizeof(out); s++) {
		if (*s == '\n' || *s == '\r') {
			out[n++] = '\\';
			out[n++] = *s == '\n' ? 'n' : 'r';
		} else
			out[n++] = *s;
	}
	out[n] = '\0';
	return out;
}

/* ---- the spec ---- */

static const char *spec_modules[] = {
	"comments", "delimiters", "interpolation", "inverted", "partials",
	"sections", "~inheritance",
};

static const char *
spec_dir(void)
{
	static const char *dirs[] = {
		NULL, "../shared/mustache-spec", "../../shared/mustache-spec",
	};
	static char path[4096];
	size_t i;

	dirs[0] = getenv("MUSTACHE_SPEC_DIR");
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (dirs[i] == NULL)
			continue;
		snprintf(path, sizeof(path), "%s/comments.json", dirs[i]);
		if (access(path, R_OK) == 0)
			return dirs[i];
	}
	return NULL;
}

static void
spec_module(const char *dir, const char *module)
{
	char path[4096], *err = NULL;
	struct buf file = { 0 }, out = { 0 };
	struct value *doc;
	const struct value *tests;
	const char *jerr;
	size_t i, pass = 0;

	snprintf(path, sizeof(path), "%s/%s.json", dir, module);
	if (read_file(path, &file, &err) != FU_OK) {
		tap_ok(0, "%s: read: %s", module, err);
		free(err);
		return;
	}
	if ((doc = json_parse(buf_cstr(&file), &jerr)) == NULL) {
		tap_ok(0, "%s: JSON: %s", module, jerr);
		buf_free(&file);
		return;
	}
	tests = value_map_get(doc, "tests");
	for (i = 0; i < value_list_len(tests); i++) {
		const struct value *tc = value_list_at(tests, i);
		const char *name = value_as_string(value_map_get(tc, "name"), NULL);
		const char *tmpl = value_as_string(value_map_get(tc, "template"), NULL);
		const char *want = value_as_string(value_map_get(tc, "expected"), NULL);
		struct loader_ctx lc = { value_map_get(tc, "partials"), 0 };
		struct mustache_cache *c = mustache_cache_new(map_loader, &lc);
		const struct mustache_template *t;
		int rc = FU_PERMFAIL;

		buf_reset(&out);
		t = mustache_parse(c, "(spec)", tmpl ? tmpl : "", &err);
		if (t != NULL)
			rc = mustache_render(c, t, value_map_get(tc, "data"),
			    MUSTACHE_ESCAPE_HTML, &out, NULL, NULL, &err);
		if (rc != FU_OK) {
			tap_ok(0, "%s: %s", module, name ? name : "?");
			tap_diag("error: %s", err ? err : "?");
		} else if (tap_str(buf_cstr(&out), want, "%s: %s", module,
		    name ? name : "?"))
			pass++;
		free(err);
		err = NULL;
		mustache_cache_free(c);
	}
	tap_diag("spec %s: %zu/%zu", module, pass, value_list_len(tests));
	value_free(doc);
	buf_free(&file);
	buf_free(&out);
}

static void
test_spec(void)
{
	const char *dir = spec_dir();
	size_t i;

	for (i = 0; i < sizeof(spec_modules) / sizeof(spec_modules[0]); i++) {
		if (dir == NULL)
			tap_skip(spec_modules[i], "spec files not found (set "
			    "MUSTACHE_SPEC_DIR or put them in ../shared/mustache-spec)");
		else
			spec_module(dir, spec_modules[i]);
	}
	tap_skip("~lambdas", "optional module: lambdas need host-language code");
	tap_skip("~dynamic-names", "optional module: not implemented");
}

/* ---- our own tables ---- */

static void
test_syntax_errors(void)
{
	static const struct {
		const char *src, *err;
	} cases[] = {
		{ "a\n{{#x}}\nb", "t:2: section \"x\" is not closed" },
		{ "{{^x}}{{#y}}{{/y}}", "t:1: section \"x\" is not closed" },
		{ "{{#x}}\n{{/y}}", "t:2: closing tag \"y\" does not match "
		    "section \"x\" opened on line 1" },
		{ "\n\n{{/x}}", "t:3: closing tag \"x\" without an opening tag" },
		{ "{{=<% %>}}", "t:1: unclosed tag" },
		{ "{{=<%%>=}}", "t:1: bad delimiter change \"<%%>\"" },
		{ "{{= <% = %> =}}", "t:1: bad delimiter change \"<% = %>\"" },
		{ "{{=<% a %>=}}", "t:1: bad delimiter change \"<% a %>\"" },
		{ "ok\nx {{name", "t:2: unclosed tag" },
		{ "{{{name}}", "t:1: unclosed tag" },
		{ "{{=<% %>=}}\n<%name}}", "t:2: unclosed tag" },
		{ "{{}}", "t:1: empty tag" },
		{ "{{# }}{{/ }}", "t:1: empty tag" },
		{ "{{a b}}", "t:1: bad name \"a b\"" },
		{ "{{a..b}}", "t:1: bad name \"a..b\"" },
		{ "{{#.a}}{{/.a}}", "t:1: bad name \".a\"" },
		{ "{{<p}}{{$b}}x{{/p}}", "t:1: closing tag \"p\" does not match "
		    "block \"b\" opened on line 1" },
		{ "{{<p}}\n{{$b}}x{{/b}}", "t:1: parent \"p\" is not closed" },
		{ "{{$b}}", "t:1: block \"b\" is not closed" },
	};
	struct mustache_cache *c = mustache_cache_new(NULL, NULL);
	const struct mustache_template *t;
	struct buf deep = { 0 };
	char *err = NULL;
	size_t i;
	int k;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tap_ok(mustache_parse(c, "t", cases[i].src, &err) == NULL,
		    "syntax error rejected: %s", oneline(cases[i].src));
		tap_str(err, cases[i].err, "syntax error message: %s",
		    oneline(cases[i].src));
		free(err);
		err = NULL;
	}
	for (k = 0; k < 101; k++)
		buf_puts(&deep, "{{#a}}");
	t = mustache_parse(c, "t", buf_cstr(&deep), &err);
	tap_ok(t == NULL && err != NULL &&
	    strstr(err, "nested deeper than 100") != NULL,
	    "section nesting is bounded: %s", err ? err : "(none)");
	free(err);
	buf_free(&deep);
	mustache_cache_free(c);
}

static void
test_escaping(void)
{
	struct buf out = { 0 };
	char *err = NULL;

	render_json("{{x}}|{{{x}}}|{{&x}}", "{}", "{\"x\": \"& < > \\\" '\"}",
	    MUSTACHE_ESCAPE_NONE, &out, NULL, NULL, &err);
	tap_str(buf_cstr(&out), "& < > \" '|& < > \" '|& < > \" '",
	    "MUSTACHE_ESCAPE_NONE leaves & < > \" ' alone");
	buf_reset(&out);
	render_json("{{x}}|{{{x}}}", "{}", "{\"x\": \"a&b<c>d\\\"e'f\"}",
	    MUSTACHE_ESCAPE_HTML, &out, NULL, NULL, &err);
	tap_str(buf_cstr(&out), "a&amp;b&lt;c&gt;d&quot;e&#39;f|a&b<c>d\"e'f",
	    "MUSTACHE_ESCAPE_HTML escapes & < > \" '");
	buf_reset(&out);
	render_json("{{n}} {{f}} {{t}} {{z}} {{big}}", "{}",
	    "{\"n\": 1.210, \"f\": false, \"t\": true, \"z\": -0, \"big\": 1e21}",
	    MUSTACHE_ESCAPE_HTML, &out, NULL, NULL, &err);
	tap_str(buf_cstr(&out), "1.21 false true 0 1e+21",
	    "numbers and booleans interpolate as text");
	buf_free(&out);
	free(err);
}

static void
record_missing(const char *name, void *arg)
{
	struct buf *b = arg;

	buf_printf(b, "[%s]", name);
}

static void
test_missing(void)
{
	static const struct {
		const char *src, *data, *want;
	} cases[] = {
		{ "{{name}}", "{}", "[name]" },
		{ "{{a.b}}", "{\"a\": {\"c\": 1}}", "[a.b]" },
		{ "{{a.b.c}}", "{\"a\": {\"b\": 1}}", "[a.b.c]" },
		{ "{{a.c}}{{x.y}}", "{\"a\": {\"c\": 1}}", "[x.y]" },
		{ "{{e}}{{n}}{{z}}{{f}}", "{\"e\": \"\", \"n\": null, \"z\": 0, "
		    "\"f\": false}", "[e][n]" },
		{ "{{#s}}x{{/s}}{{^t}}y{{/t}}{{#l}}{{/l}}", "{\"l\": []}",
		    "[s][t]" },
		{ "{{#l}}{{v}}{{/l}}", "{\"l\": [{\"v\": 1}, {}, {\"v\": 2}]}",
		    "[v]" },
		{ "{{.}}{{present}}", "{\"present\": \"y\"}", "" },
	};
	struct buf out = { 0 }, got = { 0 };
	char *err = NULL;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&got);
		buf_reset(&out);
		render_json(cases[i].src, "{}", cases[i].data,
		    MUSTACHE_ESCAPE_HTML, &out, record_missing, &got, &err);
		tap_str(buf_cstr(&got), cases[i].want, "missing callback: %s",
		    oneline(cases[i].src));
	}
	buf_free(&out);
	buf_free(&got);
	free(err);
}

static void
test_check_refs(void)
{
	const char *jerr;
	struct value *partials = json_parse("{\"header\": \"H {{>footer}}\", "
	    "\"footer\": \"F {{>header}}\", \"broken\": \"ok\\n{{#x}}\", "
	    "\"uses_missing\": \"{{<nothere}}{{/nothere}}\"}", &jerr);
	struct loader_ctx lc = { partials, 0 };
	struct mustache_cache *c = mustache_cache_new(map_loader, &lc);
	const struct mustache_template *t;
	struct buf out = { 0 };
	char *err = NULL;

	t = mustache_parse(c, "main", "{{>header}}\n", &err);
	tap_ok(mustache_check_refs(c, t, &err) == FU_OK,
	    "check_refs: recursive partials are fine");
	t = mustache_parse(c, "main", "{{>header}}\n{{>nope}}\n", &err);
	tap_ok(mustache_check_refs(c, t, &err) == FU_PERMFAIL,
	    "check_refs: missing partial fails");
	tap_str(err, "main:2: partial \"nope\" not found",
	    "check_refs: missing partial message");
	t = mustache_parse(c, "main2", "x\n\n{{>uses_missing}}", &err);
	tap_ok(mustache_check_refs(c, t, &err) == FU_PERMFAIL,
	    "check_refs: missing parent, one level down, fails");
	tap_str(err, "uses_missing:1: parent \"nothere\" not found",
	    "check_refs: missing parent message");
	t = mustache_parse(c, "main3", "{{#a}}\n{{>broken}}{{/a}}", &err);
	tap_ok(mustache_check_refs(c, t, &err) == FU_PERMFAIL,
	    "check_refs: partial with a syntax error fails");
	tap_str(err, "broken:2: section \"x\" is not closed",
	    "check_refs: syntax error message names the partial");

	/* At render time a missing partial is "", a broken one an error. */
	free(err);
	err = NULL;
	t = mustache_parse(c, "main4", "a{{>nope}}b{{>broken}}c", &err);
	tap_ok(mustache_render(c, t, NULL, MUSTACHE_ESCAPE_HTML, &out, NULL,
	    NULL, &err) == FU_PERMFAIL, "render: broken partial fails");
	tap_str(buf_cstr(&out), "abc", "render: broken partial renders empty");
	tap_str(err, "broken:2: section \"x\" is not closed",
	    "render: broken partial reported");
	free(err);
	err = NULL;
	buf_reset(&out);
	t = mustache_parse(c, "main5", "a{{>nope}}b", &err);
	tap_ok(mustache_render(c, t, NULL, MUSTACHE_ESCAPE_HTML, &out, NULL,
	    NULL, &err) == FU_OK && err == NULL, "render: missing partial is fine");
	tap_ok(mustache_get(c, "nope", &err) == NULL,
	    "get: missing template fails");
	tap_str(err, "nope: no such template", "get: missing template message");
	free(err);
	buf_free(&out);
	mustache_cache_free(c);
	value_free(partials);
}

static void
test_recursion(void)
{
	static const struct {
		const char *what, *partials, *data;
	} cases[] = {
		{ "partial including itself", "{\"p\": \"x{{>p}}\"}", "{}" },
		{ "partial including itself through a section",
		    "{\"p\": \"{{#a}}x{{>p}}{{/a}}\"}", "{\"a\": {\"b\": 1}}" },
		{ "partial including itself twice",
		    "{\"p\": \"{{>p}}{{>p}}\"}", "{}" },
		{ "parent extending itself",
		    "{\"p\": \"{{<p}}{{/p}}\"}", "{}" },
		{ "block overridden by itself",
		    "{\"p\": \"{{<q}}{{$a}}{{$a}}x{{/a}}{{/a}}{{/q}}\", "
		    "\"q\": \"{{$a}}d{{/a}}\"}", "{}" },
	};
	struct buf out = { 0 };
	char *err = NULL, *src;
	size_t i;
	int rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&out);
		rc = render_json("{{>p}}", cases[i].partials, cases[i].data,
		    MUSTACHE_ESCAPE_HTML, &out, NULL, NULL, &err);
		tap_ok(rc == FU_PERMFAIL && err != NULL &&
		    strstr(err, "nested deeper than 100") != NULL,
		    "recursion stops: %s (%s)", cases[i].what, err ? err : "no error");
		free(err);
		err = NULL;
	}
	/* Work and output are bounded even when the nesting is legal. */
	buf_reset(&out);
	for (i = 0; i < 30; i++)
		buf_puts(&out, "{{#l}}");
	for (i = 0; i < 30; i++)
		buf_puts(&out, "{{/l}}");
	src = buf_steal(&out);
	rc = render_json(src, "{}", "{\"l\": [1, 2]}", MUSTACHE_ESCAPE_HTML,
	    &out, NULL, NULL, &err);
	tap_ok(rc == FU_PERMFAIL && err != NULL && strstr(err, "steps") != NULL,
	    "2^30 empty iterations stop (%s)", err ? err : "no error");
	free(src);
	free(err);
	err = NULL;
	buf_reset(&out);
	rc = render_json("{{#l}}{{#l}}{{#l}}{{#l}}{{{x}}}{{/l}}{{/l}}{{/l}}{{/l}}",
	    "{}", "{\"x\": \"0123456789abcdef0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	    "0123456789abcdef\", \"l\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, "
	    "13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, "
	    "30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, "
	    "47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60]}",
	    MUSTACHE_ESCAPE_HTML, &out, NULL, NULL, &err);
	tap_ok(rc == FU_PERMFAIL && err != NULL &&
	    strstr(err, "output larger") != NULL && out.len <= ((size_t)64 << 20),
	    "output is bounded (%s, %zu bytes)", err ? err : "no error", out.len);
	free(err);
	err = NULL;
	buf_reset(&out);
	rc = render_json("{{>p}}", "{\"p\": \"{{#next}}<{{>p}}>{{/next}}\"}",
	    "{\"next\": {\"next\": {\"next\": false}}}", MUSTACHE_ESCAPE_HTML,
	    &out, NULL, NULL, &err);
	tap_ok(rc == FU_OK, "finite recursion through data renders");
	tap_str(buf_cstr(&out), "<<>>", "finite recursion output");
	buf_free(&out);
	free(err);
}

static void
test_parse_once(void)
{
	const char *jerr;
	struct value *partials = json_parse("{\"p\": \"[{{x}}]\", "
	    "\"q\": \"{{>p}}{{>p}}\"}", &jerr);
	struct value *data = json_parse("{\"x\": 1}", &jerr);
	struct loader_ctx lc = { partials, 0 };
	struct mustache_cache *c = mustache_cache_new(map_loader, &lc);
	const struct mustache_template *a, *b, *t, *old;
	struct buf out = { 0 };
	char *err = NULL;
	int i;

	a = mustache_get(c, "p", &err);
	b = mustache_get(c, "p", &err);
	tap_ok(a != NULL && a == b, "get twice returns the same template");
	tap_ok(lc.calls == 1, "loader called once for p (%d)", lc.calls);
	t = mustache_parse(c, "main", "{{>q}}{{>p}}{{>none}}{{>none}}", &err);
	for (i = 0; i < 3; i++)
		mustache_render(c, t, data, MUSTACHE_ESCAPE_HTML, &out, NULL,
		    NULL, &err);
	tap_str(buf_cstr(&out), "[1][1][1][1][1][1][1][1][1]",
	    "partials render from the cache");
	tap_ok(lc.calls == 3, "loader called once per name: p, q, none (%d)",
	    lc.calls);
	/* Re-parsing a name replaces it; holders of the old one keep it. */
	old = mustache_get(c, "p", &err);
	t = mustache_parse(c, "p", "new", &err);
	tap_ok(t != old && mustache_get(c, "p", &err) == t,
	    "parse replaces a cached name");
	buf_reset(&out);
	mustache_render(c, old, data, MUSTACHE_ESCAPE_HTML, &out, NULL, NULL,
	    &err);
	tap_str(buf_cstr(&out), "[1]", "the replaced template still renders");
	/*
	 * A template finds its partials once and keeps them: a partial
	 * parsed again under its name is what renders next time, and a
	 * template rendered with another cache uses that cache's.
	 */
	t = mustache_parse(c, "main2", "{{>p}}|{{>q}}", &err);
	buf_reset(&out);
	mustache_render(c, t, data, MUSTACHE_ESCAPE_HTML, &out, NULL, NULL,
	    &err);
	mustache_parse(c, "p", "newer {{x}}", &err);
	buf_putc(&out, '/');
	mustache_render(c, t, data, MUSTACHE_ESCAPE_HTML, &out, NULL, NULL,
	    &err);
	tap_str(buf_cstr(&out), "new|newnew/newer 1|newer 1newer 1",
	    "a partial parsed again renders in templates that used it");
	{
		struct loader_ctx lc2 = { partials, 0 };
		struct mustache_cache *c2 = mustache_cache_new(map_loader, &lc2);

		buf_reset(&out);
		mustache_render(c2, t, data, MUSTACHE_ESCAPE_HTML, &out, NULL,
		    NULL, &err);
		mustache_render(c, t, data, MUSTACHE_ESCAPE_HTML, &out, NULL,
		    NULL, &err);
		tap_str(buf_cstr(&out), "[1]|[1][1]newer 1|newer 1newer 1",
		    "rendered with another cache, its partials come from it");
		tap_ok(lc2.calls == 2, "the other cache loaded p and q (%d)",
		    lc2.calls);
		mustache_cache_free(c2);
	}
	buf_free(&out);
	mustache_cache_free(c);
	value_free(partials);
	value_free(data);
	free(err);
}

/* Dotted names: each part is looked up on its own, hashed at parse time. */
static void
test_dotted(void)
{
	struct buf out = { 0 };
	char *err = NULL;

	render_json("{{a.b.c}}|{{#a}}{{b.c}}{{/a}}|{{#a.b}}{{c}}{{d}}{{/a.b}}|"
	    "{{a.bc}}|{{ab.c}}|{{#list}}{{v}}{{a.b.c}},{{/list}}|"
	    "{{a_rather_long_key_name_past_inline.x}}", "{}",
	    "{\"a\": {\"b\": {\"c\": \"C\"}, \"bc\": \"BC\"}, "
	    "\"d\": \"D\", \"ab\": {\"c\": \"ABC\"}, "
	    "\"list\": [{\"v\": 1}, {\"v\": 2, \"a\": {\"b\": {}}}], "
	    "\"a_rather_long_key_name_past_inline\": {\"x\": \"L\"}}",
	    MUSTACHE_ESCAPE_HTML, &out, NULL, NULL, &err);
	tap_str(buf_cstr(&out), "C|C|CD|BC|ABC|1C,2,|L",
	    "dotted names resolve part by part through the context stack");
	buf_reset(&out);
	render_json("{{x}}", "{}", "{\"x\": \"&&<<>>\\\"\\\"''a\"}",
	    MUSTACHE_ESCAPE_HTML, &out, NULL, NULL, &err);
	tap_str(buf_cstr(&out), "&amp;&amp;&lt;&lt;&gt;&gt;&quot;&quot;"
	    "&#39;&#39;a", "escapes next to each other");
	buf_free(&out);
	free(err);
}

static void
test_indentation(void)
{
	static const struct {
		const char *what, *src, *partials, *data, *want;
	} cases[] = {
		{ "nested standalone partials add up",
		    "  {{>a}}\n", "{\"a\": \"x\\n  {{>b}}\\ny\\n\", "
		    "\"b\": \"1\\n2\\n\"}", "{}", "  x\n    1\n    2\n  y\n" },
		{ "indentation does not reach data",
		    "\t{{>a}}\n", "{\"a\": \"<{{v}}>\\n\"}", "{\"v\": \"a\\nb\"}",
		    "\t<a\nb>\n" },
		{ "indented list partial",
		    "<ul>\n  {{#l}}\n  {{>li}}\n  {{/l}}\n</ul>\n",
		    "{\"li\": \"<li>{{.}}</li>\\n\"}", "{\"l\": [1, 2]}",
		    "<ul>\n  <li>1</li>\n  <li>2</li>\n</ul>\n" },
		{ "inline partial is not indented",
		    "  {{>a}} x\n", "{\"a\": \"1\\n2\"}", "{}", "  1\n2 x\n" },
		{ "CRLF standalone lines",
		    "a\r\n  {{#t}}\r\n  b\r\n  {{/t}}\r\nc", "{}", "{\"t\": 1}",
		    "a\r\n  b\r\nc" },
		{ "parent indentation",
		    "x\n  {{<p}}\n  {{$b}}B1\nB2\n{{/b}}\n  {{/p}}\n",
		    "{\"p\": \"<\\n{{$b}}{{/b}}\\n>\\n\"}", "{}",
		    "x\n  <\n  B1\n  B2\n  >\n" },
		{ "layout block gets multi-line content without a blank line",
		    "{{<layout}}\n{{$content}}\n<p>Hi</p>\n{{/content}}\n{{/layout}}\n",
		    "{\"layout\": \"<body>\\n  {{$content}}{{/content}}\\n</body>\\n\"}",
		    "{}", "<body>\n  <p>Hi</p>\n</body>\n" },
		{ "block line expanding to nothing vanishes",
		    "{{<layout}}{{$content}}{{/content}}{{/layout}}",
		    "{\"layout\": \"<body>\\n  {{$content}}{{/content}}\\n</body>\\n\"}",
		    "{}", "<body>\n</body>\n" },
		{ "block default on its own line",
		    "<body>\n  {{$content}}{{x}}{{/content}}\n</body>\n", "{}",
		    "{\"x\": \"hi\"}", "<body>\n  hi\n</body>\n" },
		{ "empty block default line vanishes",
		    "<body>\n  {{$content}}{{x}}{{/content}}\n</body>\n", "{}",
		    "{}", "<body>\n</body>\n" },
		{ "standalone block override ends its line",
		    "{{<p}}{{$b}}hammer{{/b}}{{/p}}", "{\"p\": \"Hi,\\n  {{$b}}\\n  "
		    "{{/b}}\\nBye\\n\"}", "{}", "Hi,\n  hammer\nBye\n" },
	};
	struct buf out = { 0 };
	char *err = NULL;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&out);
		render_json(cases[i].src, cases[i].partials, cases[i].data,
		    MUSTACHE_ESCAPE_HTML, &out, NULL, NULL, &err);
		tap_str(buf_cstr(&out), cases[i].want, "indentation: %s",
		    cases[i].what);
	}
	buf_free(&out);
	free(err);
}

/* Random templates from tag fragments: parse and render must never crash. */
static void
test_garbage(void)
{
	static const char *frag[] = {
		"{{", "}}", "{{{", "}}}", "{{#a}}", "{{/a}}", "{{^a}}", "{{>p}}",
		"{{<p}}", "{{/p}}", "{{$b}}", "{{/b}}", "{{=<% %>=}}", "<%", "%>",
		"<%={{ }}=%>", "{{&a}}", "{{!c}}", "{{.}}", "{{a.b}}", "\n", "\r\n",
		"  ", "x", "{{=", "=}}", "{{#l}}", "{{/l}}", "{{>q}}",
	};
	const char *jerr;
	struct value *data = json_parse("{\"a\": {\"b\": \"<&>\"}, "
	    "\"l\": [1, {\"a\": false}, \"s\"]}", &jerr);
	struct value *partials = value_map();
	struct loader_ctx lc = { partials, 0 };
	struct buf src = { 0 }, out = { 0 };
	unsigned seed = 12345, ok = 0, bad = 0;
	char *err = NULL;
	int i, k, n;

	for (i = 0; i < 3000; i++) {
		struct mustache_cache *c;
		const struct mustache_template *t;

		for (k = 0; k < 2; k++) {
			buf_reset(&src);
			seed = seed * 1103515245 + 12345;
			n = (int)((seed >> 16) % 12);
			while (n-- > 0) {
				seed = seed * 1103515245 + 12345;
				buf_puts(&src, frag[(seed >> 16) %
				    (sizeof(frag) / sizeof(frag[0]))]);
			}
			value_map_set(partials, k ? "q" : "p",
			    value_string(buf_cstr(&src)));
		}
		c = mustache_cache_new(map_loader, &lc);
		t = mustache_get(c, "p", &err);
		if (t == NULL) {
			bad += err != NULL && strncmp(err, "p:", 2) == 0;
		} else {
			buf_reset(&out);
			mustache_check_refs(c, t, &err);
			mustache_render(c, t, data, MUSTACHE_ESCAPE_HTML, &out,
			    NULL, NULL, &err);
			ok++;
		}
		free(err);
		err = NULL;
		mustache_cache_free(c);
	}
	tap_ok(ok + bad == 3000, "3000 random templates: %u parsed, %u "
	    "rejected with a NAME:LINE message", ok, bad);
	buf_free(&src);
	buf_free(&out);
	value_free(data);
	value_free(partials);
}

int
main(void)
{
	test_spec();
	test_syntax_errors();
	test_escaping();
	test_missing();
	test_check_refs();
	test_recursion();
	test_parse_once();
	test_dotted();
	test_indentation();
	test_garbage();
	return tap_done();
}
