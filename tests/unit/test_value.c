/* test_value: value trees: construction, lookup, truthiness, text. */
#include "tap.h"
#include "util.h"
#include "value.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct buf b;

static const char *
text(const struct value *v)
{
	buf_reset(&b);
	value_to_text(v, &b);
	return buf_cstr(&b);
}

static void
test_text(void)
{
	static const struct {
		double n;
		const char *want;
	} nums[] = {
		{ 85, "85" }, { 1.210, "1.21" }, { -3, "-3" }, { 0, "0" },
		{ -0.0, "0" }, { 0.1 + 0.2, "0.3" }, { 1e15, "1000000000000000" },
		{ 9007199254740992.0, "9007199254740992" }, { 1e21, "1e+21" },
		{ 2.5e-7, "2.5e-07" }, { 1234567.125, "1234567.125" },
		{ -9007199254740992.0, "-9007199254740992" },
		{ 9007199254740994.0, "9.00719925474099e+15" },
		{ -42, "-42" }, { 1e300, "1e+300" },
	};
	struct value *v;
	size_t i, len;

	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		v = value_number(nums[i].n);
		tap_str(text(v), nums[i].want, "number text %s", nums[i].want);
		value_free(v);
	}
	v = value_number(NAN);
	tap_str(text(v), "nan", "NaN text");
	value_free(v);
	v = value_bool(1);
	tap_str(text(v), "true", "true text");
	value_free(v);
	v = value_bool(0);
	tap_str(text(v), "false", "false text");
	value_free(v);
	v = value_null();
	tap_str(text(v), "", "null text");
	value_free(v);
	tap_str(text(NULL), "", "absent text");
	v = value_list();
	value_list_append(v, value_string("x"));
	tap_str(text(v), "", "list has no text");
	value_free(v);
	v = value_stringn("a\0b", 3);
	tap_ok(value_as_string(v, &len) != NULL && len == 3 &&
	    memcmp(value_as_string(v, NULL), "a\0b", 3) == 0,
	    "stringn keeps NUL bytes");
	value_free(v);
}

static void
test_truthy(void)
{
	struct value *empty_list = value_list(), *list = value_list();
	struct value *vals[] = {
		NULL, value_null(), value_bool(0), value_bool(1),
		value_string(""), value_string("0"), value_number(0),
		value_number(1), empty_list, list, value_map(),
	};
	static const int want[] = { 0, 0, 0, 1, 0, 1, 1, 1, 0, 1, 1 };
	static const char *what[] = { "absent", "null", "false", "true", "\"\"",
	    "\"0\"", "0", "1", "[]", "[x]", "{}" };
	size_t i;

	value_list_append(list, value_null());
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		tap_ok(value_truthy(vals[i]) == want[i], "truthy %s", what[i]);
		value_free(vals[i]);
	}
}

static void
test_map(void)
{
	struct value *m = value_map(), *c;
	char key[32];
	size_t i, len;
	int ok = 1;

	value_map_set(m, "b", value_number(1));
	value_map_set(m, "a", value_string("x"));
	value_map_set(m, "b", value_number(2));		/* replaces, keeps place */
	tap_ok(value_map_len(m) == 2, "set replaces an existing key");
	tap_str(value_map_key_at(m, 0), "b", "insertion order kept (0)");
	tap_str(value_map_key_at(m, 1), "a", "insertion order kept (1)");
	tap_ok(value_as_number(value_map_get(m, "b")) == 2, "replaced value");
	tap_ok(value_map_get(m, "zz") == NULL, "absent key");
	tap_ok(value_map_key_at(m, 2) == NULL && value_map_value_at(m, 2) == NULL,
	    "index past the end");

	/* Past the index threshold lookups still find every key. */
	for (i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "k%zu", i);
		value_map_set(m, key, value_number((double)i));
	}
	for (i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "k%zu", i);
		if (value_as_number(value_map_get(m, key)) != (double)i)
			ok = 0;
	}
	value_map_set(m, "k500", value_string("again"));
	tap_ok(ok && value_map_len(m) == 1002 &&
	    value_as_string(value_map_get(m, "k500"), &len) != NULL && len == 5,
	    "1000 keys: all found, replace through the index");
	tap_str(value_map_key_at(m, 502), "k500", "order kept past the index");

	c = value_copy(m);
	value_map_set(m, "a", value_string("changed"));
	tap_str(value_as_string(value_map_get(c, "a"), NULL), "x",
	    "copy is deep");
	tap_ok(value_as_number(value_map_get(c, "k999")) == 999,
	    "copy keeps all keys");
	value_free(c);
	value_free(m);
}

static void
test_path(void)
{
	struct value *m = value_map();
	const struct value *cust;

	value_map_set_path(m, "customer.first_name", value_string("Ada"));
	value_map_set_path(m, "customer.last_name", value_string("Lovelace"));
	value_map_set_path(m, "top", value_number(1));
	cust = value_map_get(m, "customer");
	tap_ok(value_type(cust) == VALUE_MAP && value_map_len(cust) == 2,
	    "set_path creates one intermediate map");
	tap_str(value_as_string(value_map_get(cust, "last_name"), NULL),
	    "Lovelace", "set_path value");
	value_map_set_path(m, "top.x.y", value_bool(1));
	tap_ok(value_type(value_map_get(m, "top")) == VALUE_MAP &&
	    value_as_bool(value_map_get(value_map_get(value_map_get(m, "top"),
	    "x"), "y")) == 1, "set_path replaces a non-map intermediate");
	value_free(m);
}

/* Keys past the inline length, hashed lookups, prefixes that are not keys. */
static void
test_keys(void)
{
	static const char *const keys[] = { "", "a", "ab", "abc",
	    "exactly_twenty_three_ch", "exactly_twenty_four_char",
	    "a rather long key, longer than any entry holds inline",
	    "customer.first_name" };
	struct value *m = value_map(), *c;
	size_t i, n = sizeof(keys) / sizeof(keys[0]);
	int ok = 1;

	for (i = 0; i < n; i++)
		value_map_set(m, keys[i], value_number((double)i));
	for (i = 0; i < n; i++) {
		size_t len = strlen(keys[i]);

		if (value_as_number(value_map_get(m, keys[i])) != (double)i ||
		    value_as_number(value_map_get_hashed(m, keys[i], len,
		    value_key_hash(keys[i], len))) != (double)i ||
		    strcmp(value_map_key_at(m, i), keys[i]) != 0)
			ok = 0;
	}
	tap_ok(ok && value_map_len(m) == n, "short, 23-, 24-byte and long "
	    "keys: found by name and by hash, listed as set");
	tap_ok(value_map_get(m, "abcd") == NULL && value_map_get(m, "exactly")
	    == NULL && value_map_get_hashed(m, "abc", 2,
	    value_key_hash("abc", 2)) != NULL &&
	    value_as_number(value_map_get_hashed(m, "abc", 2,
	    value_key_hash("abc", 2))) == 2, "lookups compare the whole key "
	    "and only len bytes of it");
	tap_ok(value_map_get_hashed(m, "a", 1, value_key_hash("b", 1)) == NULL,
	    "a wrong hash finds nothing");
	tap_ok(value_key_hash("x.y", 1) == value_key_hash("x", 1),
	    "value_key_hash reads len bytes only");
	c = value_copy(m);
	value_map_set(m, keys[6], value_string("changed"));
	tap_ok(value_as_number(value_map_get(c, keys[6])) == 6 &&
	    strcmp(value_map_key_at(c, 6), keys[6]) == 0,
	    "copy keeps long keys apart from the original");
	value_free(c);
	value_free(m);

	/* A dotted path reaches long keys and replaces values in place. */
	m = value_map();
	value_map_set_path(m, "a_long_intermediate_key_name.leaf",
	    value_string("v1"));
	value_map_set_path(m, "a_long_intermediate_key_name.leaf",
	    value_string("v2"));
	tap_str(value_as_string(value_map_get(value_map_get(m,
	    "a_long_intermediate_key_name"), "leaf"), NULL), "v2",
	    "set_path through a long key replaces the leaf");
	tap_ok(value_map_len(m) == 1, "set_path adds no second intermediate");
	value_free(m);
}

static void
test_list_and_misuse(void)
{
	struct value *l = value_list(), *s = value_string("s");

	value_list_append(l, value_number(1));
	value_list_append(l, value_string("two"));
	value_list_append(l, value_list());
	tap_ok(value_list_len(l) == 3, "list length");
	tap_ok(value_type(value_list_at(l, 2)) == VALUE_LIST, "list item type");
	tap_ok(value_list_at(l, 3) == NULL, "list index past the end");
	tap_ok(value_list_len(s) == 0 && value_map_len(s) == 0 &&
	    value_map_get(s, "x") == NULL && value_list_at(NULL, 0) == NULL,
	    "container accessors on a non-container");
	tap_ok(value_as_string(l, NULL) == NULL && value_as_number(s) == 0 &&
	    value_type(NULL) == VALUE_NULL, "scalar accessors on other types");
	/* Misuse is logged and the value freed, never a crash or a leak. */
	value_list_append(s, value_number(1));
	value_map_set(l, "k", value_number(1));
	value_map_set_path(s, "a.b", value_number(1));
	tap_ok(value_list_len(l) == 3, "misuse leaves values unchanged");
	value_free(l);
	value_free(s);
	value_free(NULL);
}

int
main(void)
{
	test_text();
	test_truthy();
	test_map();
	test_path();
	test_keys();
	test_list_and_misuse();
	buf_free(&b);
	return tap_done();
}
