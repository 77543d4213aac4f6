/* value: the data tree templates are rendered from (null, bool, number, string, list, map). */
#include "value.h"
#include "log.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * Maps keep insertion order (a template preview lists keys as written) and
 * store each key's hash and length, so a lookup compares integers before
 * bytes. From MAP_INDEX_MIN entries on (a row's top level, its customer)
 * an open-addressing index avoids the linear scan: templates look names
 * up through several maps, and a name a map lacks costs a whole scan.
 *
 * Allocation is what building a message's context costs most, so a value
 * is one block: a string's bytes follow its struct, and a key of up to
 * KEY_INLINE bytes lives in its entry (longer ones are allocated).
 */
#define MAP_INDEX_MIN	8
#define KEY_INLINE	23

struct map_ent {
	union {
		char	*p;			/* klen > KEY_INLINE */
		char	 in[KEY_INLINE + 1];
	} k;
	uint32_t	 hash;
	uint32_t	 klen;
	struct value	*val;
};

struct value {
	enum value_type	 type;
	union {
		int	 b;
		double	 n;
		struct {
			char	*s;		/* the bytes after the struct */
			size_t	 len;
		} str;
		struct {
			struct value	**items;
			size_t		  len, cap;
		} list;
		struct {
			struct map_ent	*ents;
			size_t		 len, cap;
			uint32_t	*index;		/* slot → entry + 1; 0 = empty */
			size_t		 nslots;	/* power of two, or 0 */
		} map;
	} u;
};

static const char *
ent_key(const struct map_ent *e)
{
	return e->klen > KEY_INLINE ? e->k.p : e->k.in;
}

static struct value *
value_new(enum value_type type)
{
	struct value *v = xmalloc(sizeof(*v));

	memset(v, 0, sizeof(*v));
	v->type = type;
	return v;
}

struct value *
value_null(void)
{
	return value_new(VALUE_NULL);
}

struct value *
value_bool(int b)
{
	struct value *v = value_new(VALUE_BOOL);

	v->u.b = b != 0;
	return v;
}

struct value *
value_number(double n)
{
	struct value *v = value_new(VALUE_NUMBER);

	v->u.n = n;
	return v;
}

struct value *
value_string(const char *s)
{
	return value_stringn(s, strlen(s));
}

struct value *
value_stringn(const char *s, size_t len)
{
	struct value *v;

	if (len > SIZE_MAX - sizeof(*v) - 1)
		fatalx("value: string too long");
	v = xmalloc(sizeof(*v) + len + 1);
	v->type = VALUE_STRING;
	v->u.str.s = (char *)(v + 1);
	if (len > 0)
		memcpy(v->u.str.s, s, len);
	v->u.str.s[len] = '\0';
	v->u.str.len = len;
	return v;
}

struct value *
value_list(void)
{
	return value_new(VALUE_LIST);
}

struct value *
value_map(void)
{
	return value_new(VALUE_MAP);
}

void
value_free(struct value *v)
{
	size_t i;

	if (v == NULL)
		return;
	switch (v->type) {
	case VALUE_LIST:
		for (i = 0; i < v->u.list.len; i++)
			value_free(v->u.list.items[i]);
		free(v->u.list.items);
		break;
	case VALUE_MAP:
		for (i = 0; i < v->u.map.len; i++) {
			if (v->u.map.ents[i].klen > KEY_INLINE)
				free(v->u.map.ents[i].k.p);
			value_free(v->u.map.ents[i].val);
		}
		free(v->u.map.ents);
		free(v->u.map.index);
		break;
	default:	/* a string's bytes are part of the value */
		break;
	}
	free(v);
}

void
value_list_append(struct value *list, struct value *v)
{
	if (list == NULL || list->type != VALUE_LIST) {
		log_warnx("value: append to a non-list");
		value_free(v);
		return;
	}
	if (list->u.list.len == list->u.list.cap) {
		list->u.list.cap = list->u.list.cap ? list->u.list.cap * 2 : 4;
		list->u.list.items = xrealloc(list->u.list.items,
		    list->u.list.cap * sizeof(*list->u.list.items));
	}
	list->u.list.items[list->u.list.len++] = v;
}

/* FNV-1a: short keys, no need for anything stronger. */
uint32_t
value_key_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static void
map_index_insert(struct value *m, size_t ent)
{
	size_t mask = m->u.map.nslots - 1;
	size_t i = m->u.map.ents[ent].hash & mask;

	while (m->u.map.index[i] != 0)
		i = (i + 1) & mask;
	m->u.map.index[i] = (uint32_t)ent + 1;
}

/* Keep the load factor at or below one half. */
static void
map_index_rebuild(struct value *m)
{
	size_t i, n = 4 * MAP_INDEX_MIN;

	while (n < m->u.map.len * 2)
		n *= 2;
	free(m->u.map.index);
	/* malloc, not calloc: calloc skips glibc's per-thread cache. */
	m->u.map.index = xmalloc(n * sizeof(*m->u.map.index));
	memset(m->u.map.index, 0, n * sizeof(*m->u.map.index));
	m->u.map.nslots = n;
	for (i = 0; i < m->u.map.len; i++)
		map_index_insert(m, i);
}

static int
ent_is(const struct map_ent *e, const char *key, size_t len, uint32_t h)
{
	const char *k;

	if (e->hash != h || e->klen != len)
		return 0;
	if (len > KEY_INLINE)
		return memcmp(e->k.p, key, len) == 0;
	/* Short keys: a loop beats a call to memcmp. */
	for (k = e->k.in; len > 0; len--)
		if (*k++ != *key++)
			return 0;
	return 1;
}

/* The entry for key[0..len) (no NUL inside), h its value_key_hash. */
static struct map_ent *
map_find(const struct value *m, const char *key, size_t len, uint32_t h)
{
	size_t i;

	if (m->u.map.index != NULL) {
		size_t mask = m->u.map.nslots - 1;

		for (i = h & mask; m->u.map.index[i] != 0; i = (i + 1) & mask) {
			struct map_ent *e = &m->u.map.ents[m->u.map.index[i] - 1];

			if (ent_is(e, key, len, h))
				return e;
		}
		return NULL;
	}
	for (i = 0; i < m->u.map.len; i++) {
		struct map_ent *e = &m->u.map.ents[i];

		if (ent_is(e, key, len, h))
			return e;
	}
	return NULL;
}

/* Set key[0..len) (hash h) in a map, replacing its value; the entry. */
static struct map_ent *
map_set(struct value *map, const char *key, size_t len, uint32_t h,
    struct value *v)
{
	struct map_ent *e;

	if ((e = map_find(map, key, len, h)) != NULL) {
		value_free(e->val);
		e->val = v;
		return e;
	}
	if (len > UINT32_MAX)
		fatalx("value: key too long");
	if (map->u.map.len == map->u.map.cap) {
		/* malloc and copy, not realloc: a context map grows past
		 * 8 entries for most messages, and glibc's realloc of a
		 * small block skips its per-thread cache. */
		struct map_ent *ents;

		map->u.map.cap = map->u.map.cap ? map->u.map.cap * 2 : 8;
		ents = xmalloc(map->u.map.cap * sizeof(*ents));
		if (map->u.map.len > 0)
			memcpy(ents, map->u.map.ents,
			    map->u.map.len * sizeof(*ents));
		free(map->u.map.ents);
		map->u.map.ents = ents;
	}
	e = &map->u.map.ents[map->u.map.len++];
	if (len > KEY_INLINE)
		e->k.p = xstrndup(key, len);
	else {
		memcpy(e->k.in, key, len);
		e->k.in[len] = '\0';
	}
	e->klen = (uint32_t)len;
	e->hash = h;
	e->val = v;
	if (map->u.map.len >= MAP_INDEX_MIN) {
		if (map->u.map.len * 2 > map->u.map.nslots)
			map_index_rebuild(map);
		else
			map_index_insert(map, map->u.map.len - 1);
	}
	return e;
}

void
value_map_set(struct value *map, const char *key, struct value *v)
{
	size_t len;

	if (map == NULL || map->type != VALUE_MAP || key == NULL) {
		log_warnx("value: set on a non-map");
		value_free(v);
		return;
	}
	len = strlen(key);
	map_set(map, key, len, value_key_hash(key, len), v);
}

void
value_map_set_path(struct value *map, const char *path, struct value *v)
{
	const char *dot;
	struct map_ent *e;
	size_t len;
	uint32_t h;

	if (map == NULL || map->type != VALUE_MAP || path == NULL) {
		log_warnx("value: set path on a non-map");
		value_free(v);
		return;
	}
	while ((dot = strchr(path, '.')) != NULL) {
		len = (size_t)(dot - path);
		h = value_key_hash(path, len);
		e = map_find(map, path, len, h);
		if (e == NULL || e->val == NULL || e->val->type != VALUE_MAP)
			e = map_set(map, path, len, h, value_map());
		map = e->val;
		path = dot + 1;
	}
	len = strlen(path);
	map_set(map, path, len, value_key_hash(path, len), v);
}

void
value_map_set_keys(struct value *map, const struct value_key *path, size_t n,
    struct value *v)
{
	struct map_ent *e;

	if (map == NULL || map->type != VALUE_MAP || path == NULL || n == 0) {
		log_warnx("value: set path on a non-map");
		value_free(v);
		return;
	}
	for (; n > 1; n--, path++) {
		e = map_find(map, path->s, path->len, path->hash);
		if (e == NULL || e->val == NULL || e->val->type != VALUE_MAP)
			e = map_set(map, path->s, path->len, path->hash,
			    value_map());
		map = e->val;
	}
	map_set(map, path->s, path->len, path->hash, v);
}

enum value_type
value_type(const struct value *v)
{
	return v ? v->type : VALUE_NULL;
}

int
value_as_bool(const struct value *v)
{
	if (v != NULL && v->type == VALUE_BOOL)
		return v->u.b;
	return value_truthy(v);
}

double
value_as_number(const struct value *v)
{
	if (v == NULL)
		return 0;
	if (v->type == VALUE_NUMBER)
		return v->u.n;
	if (v->type == VALUE_BOOL)
		return v->u.b;
	return 0;
}

const char *
value_as_string(const struct value *v, size_t *len)
{
	if (v == NULL || v->type != VALUE_STRING) {
		if (len)
			*len = 0;
		return NULL;
	}
	if (len)
		*len = v->u.str.len;
	return v->u.str.s;
}

size_t
value_list_len(const struct value *v)
{
	return v && v->type == VALUE_LIST ? v->u.list.len : 0;
}

const struct value *
value_list_at(const struct value *v, size_t i)
{
	if (v == NULL || v->type != VALUE_LIST || i >= v->u.list.len)
		return NULL;
	return v->u.list.items[i];
}

const struct value *
value_map_get(const struct value *v, const char *key)
{
	const struct map_ent *e;
	size_t len;

	if (v == NULL || v->type != VALUE_MAP || key == NULL)
		return NULL;
	len = strlen(key);
	e = map_find(v, key, len, value_key_hash(key, len));
	return e ? e->val : NULL;
}

const struct value *
value_map_get_hashed(const struct value *v, const char *key, size_t len,
    uint32_t hash)
{
	const struct map_ent *e;

	if (v == NULL || v->type != VALUE_MAP || key == NULL)
		return NULL;
	e = map_find(v, key, len, hash);
	return e ? e->val : NULL;
}

size_t
value_map_len(const struct value *v)
{
	return v && v->type == VALUE_MAP ? v->u.map.len : 0;
}

const char *
value_map_key_at(const struct value *v, size_t i)
{
	if (v == NULL || v->type != VALUE_MAP || i >= v->u.map.len)
		return NULL;
	return ent_key(&v->u.map.ents[i]);
}

const struct value *
value_map_value_at(const struct value *v, size_t i)
{
	if (v == NULL || v->type != VALUE_MAP || i >= v->u.map.len)
		return NULL;
	return v->u.map.ents[i].val;
}

int
value_truthy(const struct value *v)
{
	if (v == NULL)
		return 0;
	switch (v->type) {
	case VALUE_NULL:
		return 0;
	case VALUE_BOOL:
		return v->u.b;
	case VALUE_STRING:
		return v->u.str.len > 0;
	case VALUE_LIST:
		return v->u.list.len > 0;
	default:
		return 1;
	}
}

void
value_to_text(const struct value *v, struct buf *out)
{
	double n;

	if (v == NULL)
		return;
	switch (v->type) {
	case VALUE_BOOL:
		buf_puts(out, v->u.b ? "true" : "false");
		break;
	case VALUE_NUMBER:
		n = v->u.n;
		/* Whole numbers a double holds exactly print without exponent (ids, amounts). */
		if (n == 0)
			buf_putc(out, '0');	/* also -0 */
		else if (n == floor(n) && fabs(n) <= 9007199254740992.0) {
			/* What "%.0f" prints for these, without printf. */
			long long i = (long long)n;
			unsigned long long u = i < 0 ? 0ull -
			    (unsigned long long)i : (unsigned long long)i;
			char d[24], *p = d + sizeof(d);

			do
				*--p = (char)('0' + u % 10);
			while ((u /= 10) != 0);
			if (i < 0)
				*--p = '-';
			buf_append(out, p, (size_t)(d + sizeof(d) - p));
		}
		else
			buf_printf(out, "%.15g", n);
		break;
	case VALUE_STRING:
		buf_append(out, v->u.str.s, v->u.str.len);
		break;
	default:	/* null, lists and maps have no text */
		break;
	}
}

struct value *
value_copy(const struct value *v)
{
	struct value *c;
	size_t i;

	if (v == NULL)
		return NULL;
	switch (v->type) {
	case VALUE_BOOL:
		return value_bool(v->u.b);
	case VALUE_NUMBER:
		return value_number(v->u.n);
	case VALUE_STRING:
		return value_stringn(v->u.str.s, v->u.str.len);
	case VALUE_LIST:
		c = value_list();
		for (i = 0; i < v->u.list.len; i++)
			value_list_append(c, value_copy(v->u.list.items[i]));
		return c;
	case VALUE_MAP:
		c = value_map();
		for (i = 0; i < v->u.map.len; i++)
			map_set(c, ent_key(&v->u.map.ents[i]),
			    v->u.map.ents[i].klen, v->u.map.ents[i].hash,
			    value_copy(v->u.map.ents[i].val));
		return c;
	default:
		return value_null();
	}
}

const char *
value_path_string(const struct value *v, const char *path)
{
	char key[128];
	const char *dot;

	while ((dot = strchr(path, '.')) != NULL) {
		size_t n = (size_t)(dot - path);

		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		v = value_map_get(v, key);
		path = dot + 1;
	}
	v = value_map_get(v, path);
	if (v == NULL || value_type(v) == VALUE_NULL)
		return NULL;
	return value_as_string(v, NULL);
}
