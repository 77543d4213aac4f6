/* format: dates, amounts and numbers as a recipient's locale and zone write them. */
#ifndef FOLLOWUPD_FORMAT_H
#define FOLLOWUPD_FORMAT_H

#include <stddef.h>
#include <time.h>

#include "clock.h"
#include "util.h"
#include "value.h"

/*
 * format_lang: "en", "de", "fr" or "es" from a locale such as "de-AT" or
 * "fr_FR" (anything else, or NULL: "en"); the pointer is one of four
 * static strings. Dates: en "14 March 2027", de "14. März 2027", fr "14
 * mars 2027" ("1er" for the first), es "14 de marzo de 2027". Amounts in
 * minor units: en "€1,234.50", de "1.234,50 €", fr "1 234,50 €" (U+202F
 * between groups), es "1234,50 €" / "12.345,50 €"; U+00A0 before a
 * trailing symbol; € $ £ for EUR USD GBP, else the code. Both append.
 */
const char	*format_lang(const char *locale);
void		 format_date(const char *lang, int y, int m, int d,
		    struct buf *out);
void		 format_amount(const char *lang, long long cents,
		    const char *currency, struct buf *out);

/* n as "%lld" writes it, at p (no NUL); how many bytes (at most 20). */
size_t		 format_ll(char *p, long long n);

/*
 * ticket.resolved_weekday and ticket.resolved_date ("Tuesday", "3
 * November 2026"): the instant t in `zone` (unknown or NULL: UTC).
 */
void		 format_resolved(struct value *ctx, time_t t, const char *zone);

/*
 * What a message's dates depend on besides the row: the recipient's zone
 * and the time of writing, formatted once per (zone, now) and language,
 * not per message. format_message sets message.date_local, locale.lang
 * (from customer.locale), message.date_text, history.total_local and each
 * history.purchases' amount_local and date_local in ctx.
 */
struct format_memo;
struct format_memo *format_memo_new(void);
void		 format_memo_free(struct format_memo *);
void		 format_message(struct format_memo *, struct value *ctx,
		    const struct clock_zone *, time_t now);

#endif
