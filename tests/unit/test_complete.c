/* test_complete: mime_message_complete tells whole spooled messages from cut ones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"
#include "tap.h"
#include "util.h"

static const struct mime_part_calendar invitation = {
	.method = "REQUEST",
	.ics = "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n",
};

/*
 * A message as the GMime writer spooled it before the direct writer
 * replaced it ("=-" boundaries): files queued before an upgrade are sent
 * after it.
 */
static const char gmime_era[] =
    "Date: Tue, 25 Nov 2025 11:22:00 +0000\r\n"
    "Message-ID: <calendar.4@followupd.example>\r\n"
    "From: Followup Team <noreply@example.com>\r\n"
    "To: Ana Example <ana@example.com>\r\n"
    "Subject: Invitation: follow-up visit\r\n"
    "MIME-Version: 1.0\r\n"
    "Auto-Submitted: auto-generated\r\n"
    "Content-Type: multipart/mixed; boundary=\"=-la5FnIVKflPcErFA5rPm\"\r\n"
    "\r\n"
    "--=-la5FnIVKflPcErFA5rPm\r\n"
    "Content-Type: multipart/alternative; boundary=\"=-XO9941cGHjD7oVKlnRTZ\"\r\n"
    "\r\n"
    "--=-XO9941cGHjD7oVKlnRTZ\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "You are invited.\r\n"
    "\r\n"
    "--=-XO9941cGHjD7oVKlnRTZ--\r\n"
    "\r\n"
    "--=-la5FnIVKflPcErFA5rPm\r\n"
    "Content-Type: text/calendar; method=REQUEST; charset=UTF-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "BEGIN:VCALENDAR\r\n"
    "END:VCALENDAR\r\n"
    "\r\n"
    "--=-la5FnIVKflPcErFA5rPm--\r\n";

/* 1 when no prefix of msg (cut anywhere) passes as complete. */
static int
every_prefix_cut(const struct buf *msg)
{
	for (size_t cut = 0; cut < msg->len; cut++)
		if (mime_message_complete(msg->data, cut, NULL)) {
			tap_diag("a prefix of %zu of %zu bytes passes", cut,
			    msg->len);
			return 0;
		}
	return 1;
}

static void
build_full(struct buf *out, const char *html,
    const struct mime_part_calendar *cal, const char *text)
{
	struct mime_spec m = {
		.from = "Acme Support <support@acme.example>",
		.to_name = "Ana García",
		.to_addr = "ana@example.com",
		.subject = "Checking in: “Printer offline”",
		.message_id = "followupd.1.00ff@acme.example",
		.date = 1793872800,
		.text = text,
		.html = html,
		.calendar = cal,
	};
	char *err = NULL;

	if (mime_build(&m, out, &err) != FU_OK)
		fprintf(stderr, "mime_build: %s\n", err);
	free(err);
}

static void
build(struct buf *out, const char *html)
{
	build_full(out, html, NULL, "Hi Ana,\n\nis everything still working?\n");
}

int
main(void)
{
	struct buf multi = { 0 }, single = { 0 };
	const char *why;

	build(&multi, "<p>Hi Ana,</p>");
	build(&single, NULL);
	tap_ok(mime_message_complete(multi.data, multi.len, &why),
	    "a whole multipart message is complete");
	tap_ok(mime_message_complete(single.data, single.len, &why),
	    "a whole single-part message is complete");
	tap_ok(every_prefix_cut(&multi),
	    "every prefix of a multipart message is incomplete");
	{
		struct buf mixed = { 0 }, b64 = { 0 };

		build_full(&mixed, "<p>Hi</p>", &invitation, "Hi Ana,\n");
		tap_ok(mime_message_complete(mixed.data, mixed.len, &why),
		    "a whole text + html + calendar message is complete");
		tap_ok(every_prefix_cut(&mixed), "every prefix of a "
		    "multipart/mixed message is incomplete");
		buf_reset(&mixed);
		build_full(&mixed, NULL, &invitation, "no final line break");
		tap_ok(mime_message_complete(mixed.data, mixed.len, &why) &&
		    every_prefix_cut(&mixed), "text + calendar: complete, and "
		    "no prefix is");
		/* mostly 8-bit: base64 parts */
		build_full(&b64, "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d",
		    NULL, "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d\n");
		tap_ok(strstr(b64.data, "base64") != NULL &&
		    mime_message_complete(b64.data, b64.len, &why) &&
		    every_prefix_cut(&b64), "base64 parts: complete, and no "
		    "prefix is");
		buf_free(&mixed);
		buf_free(&b64);
	}
	{
		struct buf old = { 0 };

		buf_append(&old, gmime_era, sizeof(gmime_era) - 1);
		tap_ok(mime_message_complete(old.data, old.len, &why),
		    "a message spooled by the GMime writer is complete");
		tap_ok(every_prefix_cut(&old), "... and no prefix of it is");
		buf_free(&old);
	}
	tap_ok(!mime_message_complete(single.data, single.len - 1, &why) &&
	    strstr(why, "CRLF") != NULL, "a single part without its last LF: "
	    "cut short");
	tap_ok(!mime_message_complete("", 0, &why), "empty: incomplete");
	tap_ok(!mime_message_complete("Subject: x\r\n", 12, &why),
	    "no header/body separator: incomplete");
	tap_ok(!mime_message_complete("Subject: x\r\n\r\na\0b\r\n", 18, &why),
	    "a NUL byte: incomplete");
	{
		const char *m = "Content-Type: multipart/mixed\r\n\r\nx\r\n";

		tap_ok(!mime_message_complete(m, strlen(m), &why),
		    "multipart without a boundary: incomplete");
	}
	{
		const char *m = "Content-Type: multipart/alternative;\r\n"
		    " boundary=\"=-abc\"\r\n\r\n--=-abc\r\n\r\nx\r\n--=-abc--\r\n";

		tap_ok(mime_message_complete(m, strlen(m), &why),
		    "a folded Content-Type boundary is found");
		tap_ok(!mime_message_complete(m, strlen(m) - 11, &why),
		    "… and its closing delimiter required");
	}
	buf_free(&multi);
	buf_free(&single);
	return tap_done();
}
