/* mustache: parse templates once into a flat node array; render it against a value tree. */
#include "mustache.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MUSTACHE_MAX_NEST	100	/* sections open at once in one template */
#define MUSTACHE_MAX_DEPTH	100	/* partials, parents and blocks expanded in each other */
#define MUSTACHE_MAX_CALLS	500	/* nested render calls of all kinds: ~150 KB of C stack */
#define MUSTACHE_MAX_OUTPUT	((size_t)64 << 20)	/* bytes one render may append */
#define MUSTACHE_MAX_STEPS	((unsigned long)1 << 22)	/* nodes one render may visit */

enum node_type {
	N_TEXT,
	N_VAR,		/* {{x}}: escaped unless MUSTACHE_ESCAPE_NONE */
	N_RAW,		/* {{{x}}}, {{&x}} */
	N_SECTION,
	N_INVERTED,
	N_PARTIAL,
	N_PARENT,	/* {{<x}}: children hold the argument blocks */
	N_BLOCK,	/* {{$x}}: a parameter, or an argument when its container is a parent */
};

/*
 * Nodes sit in pre-order in one array; a container's descendants are the
 * nodes up to its `end`, so rendering walks ranges and never allocates.
 * Text, names and indentation are offsets into the template's src and pool.
 */
struct node {
	unsigned char	 type;
	unsigned char	 bol;	/* TEXT: starts a source line, indentation goes before it */
	unsigned char	 fresh;	/* BLOCK: the open tag stood alone; an override starts a line */
	unsigned char	 cut;	/* BLOCK: indentation was cut from the line; defaults re-emit it */
	unsigned char	 eol;	/* BLOCK: fills whole lines; the expansion must end one */
	unsigned char	 elen;	/* BLOCK: bytes of the line end (eoff) that closed it */
	unsigned	 nparts;	/* VAR, RAW, SECTION, INVERTED: dotted parts, 0 for "." */
	unsigned	 aux;		/* VAR...INVERTED: its first part in parts; PARTIAL,
				 * PARENT: its slot in refs */
	unsigned	 line;
	unsigned	 end;		/* containers: index past the last descendant */
	size_t		 off, len;	/* TEXT: bytes in src; others: name in pool */
	size_t		 ioff, ilen;	/* PARTIAL, PARENT, BLOCK: indentation in src */
	size_t		 eoff;
};

/* One part of a dotted name, hashed once for value_map_get_hashed. */
struct part {
	size_t		 off, len;	/* in pool */
	uint32_t	 hash;
};

struct entry;

struct mustache_template {
	char		*name;
	char		*src;
	char		*pool;		/* names: "a.b\0a\0b\0" for a dotted name */
	struct node	*nodes;
	unsigned	 nnodes;
	struct part	*parts;
	/*
	 * The cache entry of each partial and parent, found on first use
	 * (entries live as long as their cache; a template parsed again
	 * under the same name keeps its entry).
	 */
	struct entry	**refs;
	struct mustache_cache *owner;	/* whose entries refs holds */
	struct mustache_template *older;	/* replaced under the same name, still owned */
};

struct entry {
	char		*name;
	struct mustache_template *t;
	char		*err;		/* why t is NULL */
	int		 missing;	/* the loader had no such template */
	unsigned	 mark;		/* last check_refs pass that walked it */
};

struct mustache_cache {
	mustache_loader	  loader;
	void		 *arg;
	struct entry	**slots;	/* open addressing, power-of-two size */
	size_t		  nslots, nused;
	unsigned	  gen;
};

/* ---- cache ---- */

static size_t
name_hash(const char *s)
{
	size_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static struct entry **
cache_slot(struct mustache_cache *c, const char *name)
{
	size_t mask = c->nslots - 1, i = name_hash(name) & mask;

	while (c->slots[i] != NULL && strcmp(c->slots[i]->name, name) != 0)
		i = (i + 1) & mask;
	return &c->slots[i];
}

static struct entry *
cache_find(struct mustache_cache *c, const char *name)
{
	return *cache_slot(c, name);
}

static struct entry *
cache_add(struct mustache_cache *c, const char *name)
{
	struct entry **old, **slot, *e;
	size_t i, n;

	if ((c->nused + 1) * 2 > c->nslots) {
		old = c->slots;
		n = c->nslots;
		c->nslots = n ? n * 2 : 32;
		c->slots = xcalloc(c->nslots, sizeof(*c->slots));
		for (i = 0; i < n; i++)
			if (old[i] != NULL)
				*cache_slot(c, old[i]->name) = old[i];
		free(old);
	}
	slot = cache_slot(c, name);
	if (*slot != NULL)
		return *slot;
	e = xcalloc(1, sizeof(*e));
	e->name = xstrdup(name);
	*slot = e;
	c->nused++;
	return e;
}

struct mustache_cache *
mustache_cache_new(mustache_loader loader, void *arg)
{
	struct mustache_cache *c = xcalloc(1, sizeof(*c));

	c->loader = loader;
	c->arg = arg;
	c->nslots = 32;
	c->slots = xcalloc(c->nslots, sizeof(*c->slots));
	return c;
}

static void
template_free(struct mustache_template *t)
{
	struct mustache_template *older;

	for (; t != NULL; t = older) {
		older = t->older;
		free(t->name);
		free(t->src);
		free(t->pool);
		free(t->nodes);
		free(t->parts);
		free(t->refs);
		free(t);
	}
}

void
mustache_cache_free(struct mustache_cache *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nslots; i++) {
		struct entry *e = c->slots[i];

		if (e == NULL)
			continue;
		template_free(e->t);
		free(e->err);
		free(e->name);
		free(e);
	}
	free(c->slots);
	free(c);
}

/* ---- parser ---- */

#define NO_NODE	((unsigned)-1)

struct open {			/* a container whose closing tag is still to come */
	unsigned	 node;
	unsigned	 ws;	/* TEXT node holding the whitespace before the open tag */
	size_t		 ls, t;	/* its line start and position */
	int		 cs;	/* only whitespace before it on its line */
	int		 alone;	/* standalone: its line was removed */
	size_t		 ioff, ilen;	/* indentation of the line after it */
};

struct parser {
	const char	*name;
	const char	*src;
	size_t		 len;
	struct node	*nodes;
	unsigned	 nnodes, cap;
	struct part	*parts;
	unsigned	 nparts, pcap;
	unsigned	 nrefs;
	struct buf	 pool;
	const char	*otag, *ctag;
	size_t		 olen, clen;
	size_t		 lpos;		/* line counting is incremental: tags come in order */
	unsigned	 line;
	struct open	 stack[MUSTACHE_MAX_NEST];
	int		 depth;
	int		 in_arg;	/* argument blocks open: their text is split per line */
	char		**err;
};

static int
perr(struct parser *ps, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
perr(struct parser *ps, unsigned line, const char *fmt, ...)
{
	struct buf b = { 0 };
	va_list ap;

	buf_printf(&b, "%s:%u: ", ps->name, line);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (ps->err != NULL) {
		free(*ps->err);
		*ps->err = buf_steal(&b);
	} else
		buf_free(&b);
	return -1;
}

static unsigned
line_at(struct parser *ps, size_t pos)
{
	const char *nl;

	while ((nl = memchr(ps->src + ps->lpos, '\n', pos - ps->lpos)) != NULL) {
		ps->line++;
		ps->lpos = (size_t)(nl - ps->src) + 1;
	}
	ps->lpos = pos;
	return ps->line;
}

static int
is_ws(char c)
{
	return c == ' ' || c == '\t';
}

static size_t
ws_run(const struct parser *ps, size_t p)
{
	size_t q = p;

	while (q < ps->len && is_ws(ps->src[q]))
		q++;
	return q - p;
}

static int
at_bol(const struct parser *ps, size_t p)
{
	return p == 0 || ps->src[p - 1] == '\n';
}

/* Only blanks between the line start (*ls) and the tag at t? */
static int
clear_before(const struct parser *ps, size_t t, size_t *ls)
{
	while (t > 0 && is_ws(ps->src[t - 1]))
		t--;
	*ls = t;
	return at_bol(ps, t);
}

/* Only blanks from e to the end of the line? *nl is past the line end. */
static int
clear_after(const struct parser *ps, size_t e, size_t *nl)
{
	*nl = e;
	e += ws_run(ps, e);
	if (e == ps->len)
		*nl = e;
	else if (ps->src[e] == '\n')
		*nl = e + 1;
	else if (ps->src[e] == '\r' && e + 1 < ps->len && ps->src[e + 1] == '\n')
		*nl = e + 2;
	else
		return 0;
	return 1;
}

static struct node *
add_node(struct parser *ps, int type, unsigned line)
{
	struct node *n;

	if (ps->nnodes == ps->cap) {
		ps->cap = ps->cap ? ps->cap * 2 : 32;
		ps->nodes = xrealloc(ps->nodes, ps->cap * sizeof(*ps->nodes));
	}
	n = &ps->nodes[ps->nnodes++];
	memset(n, 0, sizeof(*n));
	n->type = (unsigned char)type;
	n->line = line;
	return n;
}

/* Is the container `up` levels below the top of the stack of this type? */
static int
open_is(const struct parser *ps, int up, int type)
{
	return ps->depth > up &&
	    ps->nodes[ps->stack[ps->depth - 1 - up].node].type == type;
}

static int
in_parent(const struct parser *ps)
{
	return open_is(ps, 0, N_PARENT);
}

/*
 * Text [a, b). A node starts at every source line start that the
 * indentation of a standalone partial must reach: the last line is split
 * off (and made even when empty, before a tag) so a tag on it can be
 * indented, and inside argument blocks every line is its own node so
 * their indentation can be cut. Rendering splits the rest when indenting.
 */
static void
emit_text(struct parser *ps, size_t a, size_t b, int before_tag)
{
	const char *nl;
	struct node *n;
	size_t cut;

	if (in_parent(ps))	/* text between a parent's blocks is ignored */
		return;
	while (a < b) {
		nl = ps->in_arg ? memchr(ps->src + a, '\n', b - a) :
		    memrchr(ps->src + a, '\n', b - a);
		cut = nl != NULL ? (size_t)(nl - ps->src) + 1 : b;
		n = add_node(ps, N_TEXT, ps->line);
		n->bol = (unsigned char)at_bol(ps, a);
		n->off = a;
		n->len = cut - a;
		a = cut;
	}
	if (before_tag && at_bol(ps, b)) {
		n = add_node(ps, N_TEXT, ps->line);
		n->bol = 1;
		n->off = b;
	}
}

static size_t
common_prefix(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i = 0;

	while (i < alen && i < blen && a[i] == b[i])
		i++;
	return i;
}

/*
 * An argument block's content lost its first line's indentation where it
 * was written; it gets the parameter's indentation where it is expanded.
 */
static void
cut_indent(struct parser *ps, unsigned from, size_t ioff, size_t ilen)
{
	const char *ind = ps->src + ioff;
	unsigned i;
	size_t k;

	if (ilen == 0)
		return;
	for (i = from; i < ps->nnodes; i++) {
		struct node *n = &ps->nodes[i];

		if (n->type == N_TEXT && n->bol) {
			k = common_prefix(ps->src + n->off, n->len, ind, ilen);
			n->off += k;
			n->len -= k;
		} else if (n->ilen > 0) {
			k = common_prefix(ps->src + n->ioff, n->ilen, ind, ilen);
			n->ioff += k;
			n->ilen -= k;
		}
	}
}

static int
has_ws(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (is_ws(s[i]) || s[i] == '\n' || s[i] == '\r')
			return 1;
	return 0;
}

/* Store a name in the pool; dotted names also as their parts. */
static int
add_name(struct parser *ps, struct node *n, const char *s, size_t len,
    int dotted)
{
	size_t i, start;

	n->off = ps->pool.len;
	n->len = len;
	buf_append(&ps->pool, s, len);
	buf_putc(&ps->pool, '\0');
	if (!dotted)
		return 0;
	if (len == 1 && s[0] == '.') {
		n->nparts = 0;
		return 0;
	}
	n->nparts = 1;
	start = ps->pool.len;
	buf_append(&ps->pool, s, len);
	buf_putc(&ps->pool, '\0');
	for (i = 0; i < len; i++) {
		if (s[i] != '.')
			continue;
		if (i == 0 || i + 1 == len || s[i + 1] == '.')
			return -1;
		ps->pool.data[start + i] = '\0';
		n->nparts++;
	}
	n->aux = ps->nparts;
	for (i = 0; i < len; ) {
		struct part *pt;
		size_t k = i;

		while (k < len && s[k] != '.')
			k++;
		if (ps->nparts == ps->pcap) {
			ps->pcap = ps->pcap ? ps->pcap * 2 : 16;
			ps->parts = xrealloc(ps->parts, ps->pcap *
			    sizeof(*ps->parts));
		}
		pt = &ps->parts[ps->nparts++];
		pt->off = start + i;
		pt->len = k - i;
		pt->hash = value_key_hash(s + i, k - i);
		i = k + 1;
	}
	return 0;
}

static const char *
find_close(const struct parser *ps, size_t from, char c)
{
	const char *p, *end = ps->src + ps->len;

	if (c == '\0')
		return memmem(ps->src + from, ps->len - from, ps->ctag, ps->clen);
	for (p = ps->src + from; (p = memchr(p, c, (size_t)(end - p))) != NULL; p++)
		if ((size_t)(end - p - 1) >= ps->clen &&
		    memcmp(p + 1, ps->ctag, ps->clen) == 0)
			return p;
	return NULL;
}

/* {{=<% %>=}}: two delimiters, neither empty nor holding blanks or '='. */
static int
set_delims(struct parser *ps, const char *s, size_t len)
{
	size_t a = 0, b;

	while (a < len && !is_ws(s[a]))
		a++;
	b = a;
	while (b < len && is_ws(s[b]))
		b++;
	if (a == 0 || b == a || b == len || has_ws(s + b, len - b) ||
	    memchr(s, '=', len) != NULL)
		return -1;
	ps->otag = s;
	ps->olen = a;
	ps->ctag = s + b;
	ps->clen = len - b;
	return 0;
}

static const char *
kind_word(int type)
{
	switch (type) {
	case N_PARENT:
		return "parent";
	case N_BLOCK:
		return "block";
	default:
		return "section";
	}
}

static int
open_container(struct parser *ps, int type, unsigned line, const char *name,
    size_t nlen, int cs, int alone, size_t ls, size_t t)
{
	struct open *op;
	struct node *n;

	if (ps->depth == MUSTACHE_MAX_NEST)
		return perr(ps, line, "sections nested deeper than %d",
		    MUSTACHE_MAX_NEST);
	op = &ps->stack[ps->depth++];
	memset(op, 0, sizeof(*op));
	op->ws = NO_NODE;
	/* The whitespace before a pair on one line is cut if the pair is standalone. */
	if (cs && !alone && ps->nnodes > 0 &&
	    ps->nodes[ps->nnodes - 1].type == N_TEXT &&
	    ps->nodes[ps->nnodes - 1].off == ls &&
	    ps->nodes[ps->nnodes - 1].len == t - ls)
		op->ws = ps->nnodes - 1;
	op->node = ps->nnodes;
	op->ls = ls;
	op->t = t;
	op->cs = cs;
	op->alone = alone;
	n = add_node(ps, type, line);
	if (type == N_PARENT)
		n->aux = ps->nrefs++;
	if (add_name(ps, n, name, nlen, type == N_SECTION ||
	    type == N_INVERTED) == -1)
		return perr(ps, line, "bad name \"%.*s\"", (int)nlen, name);
	return 0;
}

/*
 * A closing tag. Blocks and parents follow the inheritance spec's
 * standalone rules: an open tag at a line start and a close tag at a
 * line end make a standalone pair even on one line.
 */
static int
close_container(struct parser *ps, unsigned line, const char *name,
    size_t nlen, int ce, size_t nl, size_t *p)
{
	struct open *op;
	struct node *n;

	if (ps->depth == 0)
		return perr(ps, line, "closing tag \"%.*s\" without an opening tag",
		    (int)nlen, name);
	op = &ps->stack[ps->depth - 1];
	n = &ps->nodes[op->node];
	if (n->len != nlen || memcmp(ps->pool.data + n->off, name, nlen) != 0)
		return perr(ps, line, "closing tag \"%.*s\" does not match %s "
		    "\"%s\" opened on line %u", (int)nlen, name,
		    kind_word(n->type), ps->pool.data + n->off, n->line);
	ps->depth--;
	n->end = ps->nnodes;
	if (n->type != N_PARENT && n->type != N_BLOCK)
		return 0;
	if (n->type == N_BLOCK && op->alone) {
		/* The expansion starts a line, indented like the first default line. */
		n->fresh = 1;
		if (ce) {
			n->ioff = op->ioff;
			n->ilen = op->ilen;
		} else {
			n->ioff = op->ls;
			n->ilen = op->t - op->ls;
		}
	} else if (!op->alone && op->cs && ce) {
		if (op->ws != NO_NODE)
			ps->nodes[op->ws].len = 0;
		n->ioff = op->ls;
		n->ilen = op->t - op->ls;
		n->cut = 1;
	}
	/*
	 * A pair filling whole lines eats its line end like a partial. A block
	 * keeps it to end its expansion's last line if that does not.
	 */
	if (op->cs && ce) {
		*p = nl;
		if (n->type == N_BLOCK) {
			n->eol = 1;
			if (nl > 0 && ps->src[nl - 1] == '\n')
				n->elen = nl > 1 && ps->src[nl - 2] == '\r' ? 2 : 1;
			n->eoff = nl - n->elen;
		}
	}
	return 0;
}

/*
 * Long (about 170 lines) on purpose: the one scanning loop of the parser.
 * Each tag is found, classified by its sigil, checked for standalone
 * lines and handled in place; the cases share the loop's position,
 * line-end and indentation state, which helpers would have to take and
 * return by pointer. The pieces that stand alone (open_container,
 * close_container, emit_text, set_delims) are functions already.
 */
static struct mustache_template *
parse(const char *name, const char *src, char **err)
{
	struct parser ps;
	struct mustache_template *tmpl;
	const char *cl, *s;
	size_t p = 0, c, e, ls, nl = 0, nb, ne;
	unsigned line;
	int kind, cs, ce, alone;

	memset(&ps, 0, sizeof(ps));
	ps.name = name;
	ps.src = src;
	ps.len = strlen(src);
	ps.otag = "{{";
	ps.ctag = "}}";
	ps.olen = ps.clen = 2;
	ps.line = 1;
	ps.err = err;

	for (;;) {
		s = memmem(src + p, ps.len - p, ps.otag, ps.olen);
		if (s == NULL)
			break;
		size_t t = (size_t)(s - src);

		line = line_at(&ps, t);
		c = t + ps.olen;
		kind = c < ps.len ? src[c] : '\0';
		switch (kind) {
		case '{':
		case '=':
			cl = find_close(&ps, c + 1, kind == '{' ? '}' : '=');
			break;
		case '#': case '^': case '/': case '>': case '<': case '$':
		case '&': case '!':
			cl = find_close(&ps, c + 1, '\0');
			break;
		default:
			kind = '\0';
			cl = find_close(&ps, c, '\0');
			break;
		}
		if (cl == NULL) {
			perr(&ps, line, "unclosed tag");
			goto fail;
		}
		nb = kind ? c + 1 : c;
		ne = (size_t)(cl - src);
		e = ne + (kind == '{' || kind == '=' ? 1 : 0) + ps.clen;
		while (nb < ne && (is_ws(src[nb]) || src[nb] == '\n' || src[nb] == '\r'))
			nb++;
		while (ne > nb && (is_ws(src[ne - 1]) || src[ne - 1] == '\n' ||
		    src[ne - 1] == '\r'))
			ne--;
		s = src + nb;
		if (kind != '!' && kind != '=' && (ne == nb || has_ws(s, ne - nb))) {
			perr(&ps, line, ne == nb ? "empty tag" : "bad name \"%.*s\"",
			    (int)(ne - nb), s);
			goto fail;
		}
		cs = clear_before(&ps, t, &ls);
		ce = clear_after(&ps, e, &nl);
		alone = kind != '\0' && kind != '{' && kind != '&' && cs && ce;

		/* Argument blocks: only their content counts, cut on line bounds. */
		if (kind == '$' && in_parent(&ps)) {
			if (open_container(&ps, N_BLOCK, line, s, ne - nb, 0, 0,
			    ls, t) == -1)
				goto fail;
			p = ce ? nl : e;
			ps.stack[ps.depth - 1].ioff = p;
			ps.stack[ps.depth - 1].ilen = ce ? ws_run(&ps, p) : 0;
			ps.in_arg++;
			continue;
		}
		if (kind == '/' && open_is(&ps, 0, N_BLOCK) &&
		    open_is(&ps, 1, N_PARENT)) {
			struct open *op = &ps.stack[ps.depth - 1];

			emit_text(&ps, p, cs ? ls : t, !cs);
			if (close_container(&ps, line, s, ne - nb, 0, nl, &p) == -1)
				goto fail;
			ps.in_arg--;
			cut_indent(&ps, op->node + 1, op->ioff, op->ilen);
			p = e;
			continue;
		}

		if (alone) {
			emit_text(&ps, p, ls, 0);
			p = nl;
		} else {
			emit_text(&ps, p, t, 1);
			p = e;
		}
		switch (kind) {
		case '!':
			break;
		case '=':
			if (set_delims(&ps, s, ne - nb) == -1) {
				perr(&ps, line, "bad delimiter change \"%.*s\"",
				    (int)(ne - nb), s);
				goto fail;
			}
			break;
		case '#':
		case '^':
			if (open_container(&ps, kind == '#' ? N_SECTION :
			    N_INVERTED, line, s, ne - nb, cs, alone, ls, t) == -1)
				goto fail;
			break;
		case '$':
		case '<':
			if (open_container(&ps, kind == '$' ? N_BLOCK : N_PARENT,
			    line, s, ne - nb, cs, alone, ls, t) == -1)
				goto fail;
			if (alone && kind == '$') {
				ps.stack[ps.depth - 1].ioff = p;
				ps.stack[ps.depth - 1].ilen = ws_run(&ps, p);
			} else if (alone) {
				ps.nodes[ps.nnodes - 1].ioff = ls;
				ps.nodes[ps.nnodes - 1].ilen = t - ls;
			}
			break;
		case '/':
			if (close_container(&ps, line, s, ne - nb, ce, nl, &p) == -1)
				goto fail;
			break;
		case '>': {
			struct node *n = add_node(&ps, N_PARTIAL, line);

			n->aux = ps.nrefs++;
			add_name(&ps, n, s, ne - nb, 0);
			if (alone) {
				n->ioff = ls;
				n->ilen = t - ls;
			}
			break;
		}
		default: {
			struct node *n = add_node(&ps, kind ? N_RAW : N_VAR, line);

			if (add_name(&ps, n, s, ne - nb, 1) == -1) {
				perr(&ps, line, "bad name \"%.*s\"", (int)(ne - nb), s);
				goto fail;
			}
			break;
		}
		}
	}
	emit_text(&ps, p, ps.len, 0);
	if (ps.depth > 0) {
		struct node *n = &ps.nodes[ps.stack[ps.depth - 1].node];

		perr(&ps, n->line, "%s \"%s\" is not closed", kind_word(n->type),
		    ps.pool.data + n->off);
		goto fail;
	}

	tmpl = xcalloc(1, sizeof(*tmpl));
	tmpl->name = xstrdup(name);
	tmpl->src = xstrndup(src, ps.len);
	tmpl->nodes = ps.nodes;
	tmpl->nnodes = ps.nnodes;
	tmpl->pool = buf_steal(&ps.pool);
	tmpl->parts = ps.parts;
	tmpl->refs = xcalloc(ps.nrefs ? ps.nrefs : 1, sizeof(*tmpl->refs));
	return tmpl;

fail:
	free(ps.nodes);
	free(ps.parts);
	buf_free(&ps.pool);
	return NULL;
}

/* ---- loading ---- */

/* The entry for name, loading and parsing it on first use. */
static struct entry *
cache_load(struct mustache_cache *c, const char *name)
{
	struct entry *e;
	char *src;

	if ((e = cache_find(c, name)) != NULL)
		return e;
	e = cache_add(c, name);
	src = c->loader != NULL ? c->loader(name, c->arg) : NULL;
	if (src == NULL) {
		e->missing = 1;
		e->err = xasprintf("%s: no such template", name);
		return e;
	}
	if ((e->t = parse(name, src, &e->err)) != NULL)
		e->t->owner = c;
	free(src);
	return e;
}

const struct mustache_template *
mustache_parse(struct mustache_cache *c, const char *name, const char *src,
    char **err)
{
	struct mustache_template *t;
	struct entry *e;

	if ((t = parse(name, src, err)) == NULL)
		return NULL;
	t->owner = c;
	e = cache_add(c, name);
	t->older = e->t;	/* callers may still hold the old one */
	e->t = t;
	e->missing = 0;
	free(e->err);
	e->err = NULL;
	return t;
}

const struct mustache_template *
mustache_get(struct mustache_cache *c, const char *name, char **err)
{
	struct entry *e = cache_load(c, name);

	if (e->t == NULL)
		set_err(err, "%s", e->err);
	return e->t;
}

static int
check_refs(struct mustache_cache *c, const struct mustache_template *t,
    int depth, char **err)
{
	unsigned i;
	int rc;

	for (i = 0; i < t->nnodes; i++) {
		const struct node *n = &t->nodes[i];
		const char *name = t->pool + n->off;
		struct entry *e;

		if (n->type != N_PARTIAL && n->type != N_PARENT)
			continue;
		e = cache_load(c, name);
		if (e->t == NULL && e->missing) {
			set_err(err, "%s:%u: %s \"%s\" not found", t->name, n->line,
			    n->type == N_PARENT ? "parent" : "partial", name);
			return FU_PERMFAIL;
		}
		if (e->t == NULL) {
			set_err(err, "%s", e->err);
			return FU_PERMFAIL;
		}
		if (e->mark == c->gen)
			continue;
		e->mark = c->gen;
		if (depth == MUSTACHE_MAX_DEPTH) {
			set_err(err, "%s:%u: partials nested deeper than %d",
			    t->name, n->line, MUSTACHE_MAX_DEPTH);
			return FU_PERMFAIL;
		}
		if ((rc = check_refs(c, e->t, depth + 1, err)) != FU_OK)
			return rc;
	}
	return FU_OK;
}

int
mustache_check_refs(struct mustache_cache *c, const struct mustache_template *t,
    char **err)
{
	struct entry *e;

	if (t == NULL) {
		set_err(err, "mustache: no template");
		return FU_PERMFAIL;
	}
	c->gen++;
	if ((e = cache_find(c, t->name)) != NULL && e->t == t)
		e->mark = c->gen;
	return check_refs(c, t, 0, err);
}

/* ---- rendering ---- */

struct ctx {			/* the context stack, linked through the C stack */
	const struct value	*v;
	const struct ctx	*up;
};

struct ovr {			/* parents being expanded, innermost first */
	const struct mustache_template	*t;
	const struct node		*parent;
	const struct ovr		*up;
};

struct ind {			/* indentation in effect, innermost first */
	const char		*s;
	size_t			 len;
	const struct ind	*up;
};

struct rs {
	struct mustache_cache	*cache;
	enum mustache_escape	 esc;
	struct buf		*out;
	size_t			 start;
	mustache_missing_cb	 cb;
	void			*cb_arg;
	char			**err;
	int			 rc;
	int			 stop;
	int			 pending;	/* at a line start: indent before the next byte */
	int			 depth, calls;
	unsigned long		 steps;
	const struct ind	*ind;
};

static void
fail(struct rs *rs, int stop, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Keep the first error: later ones are usually its consequences. */
static void
fail(struct rs *rs, int stop, const char *fmt, ...)
{
	struct buf b = { 0 };
	va_list ap;

	if (stop)
		rs->stop = 1;
	if (rs->rc != FU_OK)
		return;
	rs->rc = FU_PERMFAIL;
	if (rs->err == NULL)
		return;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	free(*rs->err);
	*rs->err = buf_steal(&b);
}

static void
put_indent(struct rs *rs, const struct ind *ind)
{
	if (ind == NULL)
		return;
	put_indent(rs, ind->up);
	buf_append(rs->out, ind->s, ind->len);
}

/* Bound the output: nested partials and lists can multiply it without limit. */
static int
room(struct rs *rs, size_t len)
{
	if (rs->stop)
		return 0;
	if (rs->out->len - rs->start + len > MUSTACHE_MAX_OUTPUT) {
		fail(rs, 1, "rendered output larger than %zu bytes",
		    MUSTACHE_MAX_OUTPUT);
		return 0;
	}
	if (rs->pending) {
		rs->pending = 0;
		put_indent(rs, rs->ind);
	}
	return 1;
}

static void
emit(struct rs *rs, const char *s, size_t len)
{
	struct buf *b = rs->out;

	if (len == 0 || !room(rs, len))
		return;
	/* buf_append, without its calls when the room is there (most times) */
	if (b->cap - b->len <= len)
		buf_reserve(b, len);
	memcpy(b->data + b->len, s, len);
	b->len += len;
	b->data[b->len] = '\0';
}

/* Template text under indentation: every line it starts gets indented. */
static void
emit_lines(struct rs *rs, const char *s, size_t len)
{
	const char *nl;
	size_t n;

	while (len > 0) {
		nl = memchr(s, '\n', len);
		n = nl != NULL ? (size_t)(nl - s) + 1 : len;
		emit(rs, s, n);
		s += n;
		len -= n;
		if (len > 0)
			rs->pending = 1;
	}
}

/* {{x}}: runs that need no escape are copied whole (util_html_span). */
static void
emit_html(struct rs *rs, const char *s, size_t len)
{
	size_t run, n = 0;
	const char *ent;

	while (len > 0) {
		run = util_html_span(s, len);
		emit(rs, s, run);
		if (run == len)
			break;
		ent = util_html_entity((unsigned char)s[run], &n);
		emit(rs, ent, n);
		s += run + 1;
		len -= run + 1;
	}
}

/*
 * The first part of a dotted name is looked up through the context stack,
 * the rest only inside what it found (spec: no masking by outer contexts).
 */
static const struct value *
lookup(const struct mustache_template *t, const struct node *n,
    const struct ctx *c)
{
	const struct part *pt;
	const struct value *v = NULL;
	unsigned i;

	/* "." has no parts (and a template with no dotted name no table). */
	if (n->nparts == 0)
		return c->v;
	pt = &t->parts[n->aux];
	for (; c != NULL; c = c->up)
		if ((v = value_map_get_hashed(c->v, t->pool + pt->off, pt->len,
		    pt->hash)) != NULL)
			break;
	for (i = 1; i < n->nparts && v != NULL; i++) {
		pt++;
		v = value_map_get_hashed(v, t->pool + pt->off, pt->len,
		    pt->hash);
	}
	return v;
}

static void
report_missing(struct rs *rs, const struct mustache_template *t,
    const struct node *n, const struct value *v)
{
	size_t len;

	if (rs->cb == NULL)
		return;
	if (value_type(v) == VALUE_NULL ||
	    (value_as_string(v, &len) != NULL && len == 0))
		rs->cb(t->pool + n->off, rs->cb_arg);
}

static void
interpolate(struct rs *rs, const struct value *v, int raw)
{
	const char *s;
	size_t len;

	switch (value_type(v)) {
	case VALUE_STRING:
		s = value_as_string(v, &len);
		if (raw || rs->esc == MUSTACHE_ESCAPE_NONE)
			emit(rs, s, len);
		else
			emit_html(rs, s, len);
		break;
	case VALUE_NUMBER:
	case VALUE_BOOL:	/* digits, signs, "e", "inf", "true": nothing to escape */
		if (room(rs, 32))
			value_to_text(v, rs->out);
		break;
	default:
		break;
	}
}

static void render(struct rs *, const struct mustache_template *, unsigned,
    unsigned, const struct ctx *, const struct ovr *);

static const struct mustache_template *
resolve(struct rs *rs, const struct mustache_template *t, const struct node *n)
{
	struct entry *e;

	/* Found once per template and name, not hashed per message. */
	if (t->owner != rs->cache)
		e = cache_load(rs->cache, t->pool + n->off);
	else if ((e = t->refs[n->aux]) == NULL)
		e = t->refs[n->aux] = cache_load(rs->cache, t->pool + n->off);

	/* A missing partial is "" by the spec; a broken one is our error. */
	if (e->t == NULL && !e->missing)
		fail(rs, 0, "%s", e->err);
	return e->t;
}

/* Expand t's nodes [from, to) under extra indentation and nesting depth. */
static void
expand(struct rs *rs, const struct mustache_template *t, const struct node *at,
    const struct mustache_template *body, unsigned from, unsigned to,
    const struct ctx *c, const struct ovr *o)
{
	struct ind ind;
	const struct ind *saved = rs->ind;

	if (rs->depth == MUSTACHE_MAX_DEPTH) {
		fail(rs, 1, "%s:%u: partials nested deeper than %d", t->name,
		    at->line, MUSTACHE_MAX_DEPTH);
		return;
	}
	rs->depth++;
	if (at->ilen > 0) {
		ind.s = t->src + at->ioff;
		ind.len = at->ilen;
		ind.up = rs->ind;
		rs->ind = &ind;
	}
	render(rs, body, from, to, c, o);
	if (at->ilen > 0) {
		rs->ind = saved;
		rs->pending = 0;	/* no trailing blanks from an empty last line */
	}
	rs->depth--;
}

static int
is_container(const struct node *n)
{
	return n->type == N_SECTION || n->type == N_INVERTED ||
	    n->type == N_PARENT || n->type == N_BLOCK;
}

/* The outermost argument for a block wins: it is the most specific. */
static int
find_override(const struct mustache_template *t, const struct node *n,
    const struct ovr *o, const struct mustache_template **bt)
{
	const char *name = t->pool + n->off;
	unsigned i, found = NO_NODE;

	*bt = NULL;
	for (; o != NULL; o = o->up) {
		const struct node *nodes = o->t->nodes;
		unsigned p = (unsigned)(o->parent - nodes);

		for (i = p + 1; i < o->parent->end; ) {
			if (nodes[i].type == N_BLOCK &&
			    strcmp(o->t->pool + nodes[i].off, name) == 0) {
				found = i;
				*bt = o->t;
			}
			i = is_container(&nodes[i]) ? nodes[i].end : i + 1;
		}
	}
	return (int)found;
}

/*
 * A block on lines of its own expands to whole lines: its line end comes
 * back when the expansion does not end with one, and the line vanishes
 * when it expands to nothing, as a standalone tag's would.
 */
static void
render_block(struct rs *rs, const struct mustache_template *t,
    const struct node *n, const struct ctx *c, const struct ovr *o)
{
	const struct mustache_template *bt;
	size_t mark = rs->out->len, body;
	int b, pending = rs->pending;

	if ((b = find_override(t, n, o, &bt)) >= 0) {
		if (n->fresh)
			rs->pending = 1;
		expand(rs, t, n, bt, (unsigned)b + 1, bt->nodes[b].end, c, o);
		body = mark;
	} else {
		if (n->cut)
			emit(rs, t->src + n->ioff, n->ilen);
		body = rs->out->len;
		render(rs, t, (unsigned)(n - t->nodes) + 1, n->end, c, o);
	}
	if (!n->eol || rs->stop)
		return;
	if (rs->out->len == body) {
		rs->out->len = mark;
		if (rs->out->data != NULL)
			rs->out->data[mark] = '\0';
		rs->pending = pending;
	} else if (rs->out->data[rs->out->len - 1] != '\n')
		emit(rs, t->src + n->eoff, n->elen);
}

static void
render(struct rs *rs, const struct mustache_template *t, unsigned from,
    unsigned to, const struct ctx *c, const struct ovr *o)
{
	const struct mustache_template *pt = NULL;
	const struct value *v;
	struct ctx frame;
	struct ovr ov;
	unsigned i, k;

	if (rs->calls == MUSTACHE_MAX_CALLS) {
		fail(rs, 1, "%s: sections and partials nested deeper than %d",
		    t->name, MUSTACHE_MAX_CALLS);
		return;
	}
	rs->calls++;
	for (i = from; i < to && !rs->stop; ) {
		const struct node *n = &t->nodes[i];

		/* Nested lists can loop without output: bound the work too. */
		if (++rs->steps > MUSTACHE_MAX_STEPS) {
			fail(rs, 1, "%s: rendering takes more than %lu steps",
			    t->name, MUSTACHE_MAX_STEPS);
			break;
		}

		switch (n->type) {
		case N_TEXT:
			if (n->bol)
				rs->pending = 1;
			if (rs->ind == NULL)
				emit(rs, t->src + n->off, n->len);
			else
				emit_lines(rs, t->src + n->off, n->len);
			i++;
			break;
		case N_VAR:
		case N_RAW:
			v = lookup(t, n, c);
			report_missing(rs, t, n, v);
			interpolate(rs, v, n->type == N_RAW);
			i++;
			break;
		case N_SECTION:
			v = lookup(t, n, c);
			frame.up = c;
			if (!value_truthy(v))
				report_missing(rs, t, n, v);
			else if (value_type(v) == VALUE_LIST) {
				for (k = 0; k < value_list_len(v) && !rs->stop; k++) {
					frame.v = value_list_at(v, k);
					render(rs, t, i + 1, n->end, &frame, o);
				}
			} else {
				frame.v = v;
				render(rs, t, i + 1, n->end, &frame, o);
			}
			i = n->end;
			break;
		case N_INVERTED:
			v = lookup(t, n, c);
			if (!value_truthy(v)) {
				report_missing(rs, t, n, v);
				render(rs, t, i + 1, n->end, c, o);
			}
			i = n->end;
			break;
		case N_PARTIAL:
			if ((pt = resolve(rs, t, n)) != NULL)
				expand(rs, t, n, pt, 0, pt->nnodes, c, o);
			i++;
			break;
		case N_PARENT:
			if ((pt = resolve(rs, t, n)) != NULL) {
				ov.t = t;
				ov.parent = n;
				ov.up = o;
				expand(rs, t, n, pt, 0, pt->nnodes, c, &ov);
			}
			i = n->end;
			break;
		case N_BLOCK:
			render_block(rs, t, n, c, o);
			i = n->end;
			break;
		default:
			i++;
			break;
		}
	}
	rs->calls--;
}

int
mustache_render(struct mustache_cache *c, const struct mustache_template *t,
    const struct value *ctx, enum mustache_escape esc, struct buf *out,
    mustache_missing_cb cb, void *cb_arg, char **err)
{
	struct rs rs;
	struct ctx root = { ctx, NULL };

	if (t == NULL) {
		set_err(err, "mustache: no template");
		return FU_PERMFAIL;
	}
	memset(&rs, 0, sizeof(rs));
	rs.cache = c;
	rs.esc = esc;
	rs.out = out;
	rs.start = out->len;
	rs.cb = cb;
	rs.cb_arg = cb_arg;
	rs.err = err;
	render(&rs, t, 0, t->nnodes, &root, NULL);
	return rs.rc;
}
