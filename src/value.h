/* value: the data tree templates are rendered from (null, bool, number, string, list, map). */
#ifndef FOLLOWUPD_VALUE_H
#define FOLLOWUPD_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

enum value_type {
	VALUE_NULL,
	VALUE_BOOL,
	VALUE_NUMBER,
	VALUE_STRING,
	VALUE_LIST,
	VALUE_MAP,
};

struct value;

/* Constructors return a new value owned by the caller (or by the container it is added to). */
struct value	*value_null(void);
struct value	*value_bool(int);
struct value	*value_number(double);
struct value	*value_string(const char *);		/* copies */
struct value	*value_stringn(const char *, size_t);	/* copies, may hold any bytes */
struct value	*value_list(void);
struct value	*value_map(void);
void		 value_free(struct value *);		/* recursive; NULL is fine */

/* Containers take ownership of the added value. map_set replaces an existing key. */
void		 value_list_append(struct value *list, struct value *);
void		 value_map_set(struct value *map, const char *key, struct value *);
/*
 * Set by dotted path ("customer.first_name"), creating intermediate maps;
 * an intermediate that is not a map is replaced by one.
 */
void		 value_map_set_path(struct value *map, const char *path, struct value *);

enum value_type	 value_type(const struct value *);
int		 value_as_bool(const struct value *);
double		 value_as_number(const struct value *);
const char	*value_as_string(const struct value *, size_t *len); /* NULL unless STRING */
size_t		 value_list_len(const struct value *);		/* 0 unless LIST */
const struct value *value_list_at(const struct value *, size_t);
const struct value *value_map_get(const struct value *, const char *key); /* NULL if absent */
/* The string at a dotted path ("customer.first_name"); NULL when missing, null or not a string. */
const char	*value_path_string(const struct value *, const char *path);
/*
 * Lookups and paths with each key's length and hash (value_key_hash)
 * known in advance: templates hash their names once, at parse time, and
 * the source its column names once per statement.
 */
struct value_key {
	const char	*s;	/* need not be NUL-terminated; no NUL inside */
	size_t		 len;
	uint32_t	 hash;	/* value_key_hash(s, len) */
};
uint32_t	 value_key_hash(const char *key, size_t len);
const struct value *value_map_get_hashed(const struct value *,
		    const char *key, size_t len, uint32_t hash);
/* value_map_set_path with the path split into n > 0 keys. */
void		 value_map_set_keys(struct value *map,
		    const struct value_key *path, size_t n, struct value *);
size_t		 value_map_len(const struct value *);
/* Insertion order. A key is valid until the map gets another entry. */
const char	*value_map_key_at(const struct value *, size_t);
const struct value *value_map_value_at(const struct value *, size_t);

/* Mustache truthiness: null, false, "" and the empty list are false; all else true. */
int		 value_truthy(const struct value *);
/* Text for interpolation: null → "", numbers as %.15g, bools "true"/"false". */
void		 value_to_text(const struct value *, struct buf *out);
struct value	*value_copy(const struct value *);

#endif
