/* test_complete: mime_message_complete tells whole spooled messages from cut ones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"
#include "tap.h"
#include "util.h"

static void
build(struct buf *out, const char *html)
{
	struct mime_spec m = {
		.from = "Acme Support <support@acme.example>",
		.to_name = "Ana García",
		.to_addr = "ana@example.com",
		.subject = "Checking in: “Printer offline”",
		.message_id = "followupd.1.00ff@acme.example",
		.date = 1793872800,
		.text = "Hi Ana,\n\nis everything still working?\n",
		.html = html,
	};
	char *err = NULL;

	if (mime_build(&m, out, &err) != FU_OK)
		fprintf(stderr, "mime_build: %s\n", err);
	free(err);
}

int
main(void)
{
	struct buf multi = { 0 }, single = { 0 };
	const char *why;
	int all_cut = 1;

	mime_init();
	build(&multi, "<p>Hi Ana,</p>");
	build(&single, NULL);
	tap_ok(mime_message_complete(multi.data, multi.len, &why),
	    "a whole multipart message is complete");
	tap_ok(mime_message_complete(single.data, single.len, &why),
	    "a whole single-part message is complete");
	for (size_t cut = 0; cut < multi.len; cut++)
		if (mime_message_complete(multi.data, cut, NULL)) {
			all_cut = 0;
			tap_diag("a prefix of %zu of %zu bytes passes", cut, multi.len);
			break;
		}
	tap_ok(all_cut, "every prefix of a multipart message is incomplete");
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
