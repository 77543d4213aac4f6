/* unsubscribe: the one-click unsubscribe endpoint (RFC 8058) on http.c's routes. */
#ifndef FOLLOWUPD_UNSUBSCRIBE_H
#define FOLLOWUPD_UNSUBSCRIBE_H

#include "config.h"
#include "consent.h"
#include "http.h"

/*
 * Add the routes for the path of [unsubscribe] url ("/unsubscribe" for
 * https://desk.example/unsubscribe) to h:
 *   POST PATH?t=TOKEN with the form body List-Unsubscribe=One-Click: a
 *        valid token records the opt-out (its address and class) in
 *        QUEUE/state.db and answers 200; a bad or forged token, or a body
 *        without List-Unsubscribe=One-Click, gets 400 and records nothing;
 *        503 when state.db is busy.
 *   GET  PATH?t=TOKEN: a small confirmation page whose button POSTs the
 *        same; it never unsubscribes by itself (mail scanners follow
 *        links). 400 for a bad token.
 * cfg and c must outlive h. Each request opens state.db for itself (the
 * handlers run concurrently, each on its connection's thread).
 */
void	unsubscribe_routes(struct http *h, const struct config *cfg,
	    const struct consent *c);

/*
 * state.db meta key: how many requests came with a bad token (the server
 * adds to it when it logs them, at most once a minute, and when it stops).
 */
#define UNSUB_REJECTED_KEY	"unsubscribe_rejected_tokens"
/* At stop: log and store the bad tokens not yet counted. */
void	unsubscribe_flush(const struct config *);

/* The route's path: the path part of [unsubscribe] url, or "/unsubscribe". */
char	*unsubscribe_path(const struct config *);

#endif
