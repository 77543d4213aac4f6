/* value: the data tree templates are rendered from (null, bool, number, string, list, map). */
#include "value.h"
#include "log.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * Maps keep insertion order (a template preview lists keys as written) and
 * store each key's hash, so a lookup compares integers before strings.
 * Past MAP_INDEX_MIN entries an open-addressing index avoids the linear
 * scan; context maps are usually smaller than that.
 */
#define MAP_INDEX_MIN	16

struct map_ent {
	char		*key;
	uint32_t	 hash;
	struct value	*val;
};

struct value {
	enum value_type	 type;
	union {
		int	 b;
		double	 n;
		struct {
			char	*s;
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

static struct value *
value_new(enum value_type type)
{
	struct value *v = xcalloc(1, sizeof(*v));

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
	struct value *v = value_new(VALUE_STRING);

	v->u.str.s = xstrndup(s, len);
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
	case VALUE_STRING:
		free(v->u.str.s);
		break;
	case VALUE_LIST:
		for (i = 0; i < v->u.list.len; i++)
			value_free(v->u.list.items[i]);
		free(v->u.list.items);
		break;
	case VALUE_MAP:
		for (i = 0; i < v->u.map.len; i++) {
			free(v->u.map.ents[i].key);
			value_free(v->u.map.ents[i].val);
		}
		free(v->u.map.ents);
		free(v->u.map.index);
		break;
	default:
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
static uint32_t
key_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
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
	size_t i, n = 64;

	while (n < m->u.map.len * 2)
		n *= 2;
	free(m->u.map.index);
	m->u.map.index = xcalloc(n, sizeof(*m->u.map.index));
	m->u.map.nslots = n;
	for (i = 0; i < m->u.map.len; i++)
		map_index_insert(m, i);
}

static struct map_ent *
map_find(const struct value *m, const char *key)
{
	uint32_t h = key_hash(key);
	size_t i;

	if (m->u.map.index != NULL) {
		size_t mask = m->u.map.nslots - 1;

		for (i = h & mask; m->u.map.index[i] != 0; i = (i + 1) & mask) {
			struct map_ent *e = &m->u.map.ents[m->u.map.index[i] - 1];

			if (e->hash == h && strcmp(e->key, key) == 0)
				return e;
		}
		return NULL;
	}
	for (i = 0; i < m->u.map.len; i++) {
		struct map_ent *e = &m->u.map.ents[i];

		if (e->hash == h && strcmp(e->key, key) == 0)
			return e;
	}
	return NULL;
}

void
value_map_set(struct value *map, const char *key, struct value *v)
{
	struct map_ent *e;

	if (map == NULL || map->type != VALUE_MAP || key == NULL) {
		log_warnx("value: set on a non-map");
		value_free(v);
		return;
	}
	if ((e = map_find(map, key)) != NULL) {
		value_free(e->val);
		e->val = v;
		return;
	}
	if (map->u.map.len == map->u.map.cap) {
		map->u.map.cap = map->u.map.cap ? map->u.map.cap * 2 : 8;
		map->u.map.ents = xrealloc(map->u.map.ents,
		    map->u.map.cap * sizeof(*map->u.map.ents));
	}
	e = &map->u.map.ents[map->u.map.len++];
	e->key = xstrdup(key);
	e->hash = key_hash(key);
	e->val = v;
	if (map->u.map.len >= MAP_INDEX_MIN) {
		if (map->u.map.len * 2 > map->u.map.nslots)
			map_index_rebuild(map);
		else
			map_index_insert(map, map->u.map.len - 1);
	}
}

void
value_map_set_path(struct value *map, const char *path, struct value *v)
{
	const char *dot;
	char *part;
	struct map_ent *e;

	if (map == NULL || map->type != VALUE_MAP || path == NULL) {
		log_warnx("value: set path on a non-map");
		value_free(v);
		return;
	}
	while ((dot = strchr(path, '.')) != NULL) {
		part = xstrndup(path, (size_t)(dot - path));
		e = map_find(map, part);
		if (e == NULL || e->val == NULL || e->val->type != VALUE_MAP) {
			value_map_set(map, part, value_map());
			e = map_find(map, part);
		}
		free(part);
		map = e->val;
		path = dot + 1;
	}
	value_map_set(map, path, v);
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

	if (v == NULL || v->type != VALUE_MAP || key == NULL)
		return NULL;
	e = map_find(v, key);
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
	return v->u.map.ents[i].key;
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
		else if (n == floor(n) && fabs(n) <= 9007199254740992.0)
			buf_printf(out, "%.0f", n);
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
			value_map_set(c, v->u.map.ents[i].key,
			    value_copy(v->u.map.ents[i].val));
		return c;
	default:
		return value_null();
	}
}
