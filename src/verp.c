/* verp: per-message return paths (VERP) that name their job and cannot be forged. */
#include "verp.h"
#include "mime.h"
#include "util.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PURPOSE		"followupd-verp-v1"
#define LOCAL_MAX	64	/* RFC 5321 4.5.3.1.1 */

static void
mac_hex(const struct consent *c, const char *idtext,
    char out[2 * VERP_MAC_BYTES + 1])
{
	static const char hexd[] = "0123456789abcdef";
	unsigned char mac[CONSENT_MAC_LEN];

	consent_mac(c, PURPOSE, idtext, strlen(idtext), mac);
	for (int i = 0; i < VERP_MAC_BYTES; i++) {
		out[2 * i] = hexd[mac[i] >> 4];
		out[2 * i + 1] = hexd[mac[i] & 15];
	}
	out[2 * VERP_MAC_BYTES] = '\0';
}

char *
verp_token(const struct consent *c, int64_t id)
{
	char idtext[24], mac[2 * VERP_MAC_BYTES + 1];

	snprintf(idtext, sizeof(idtext), "%lld", (long long)id);
	mac_hex(c, idtext, mac);
	return xasprintf("%s.%s", idtext, mac);
}

char *
verp_address(const struct consent *c, const char *return_path, char delim,
    int64_t id)
{
	const char *at;
	char *tok, *addr;

	if (return_path == NULL || id < 1 ||
	    !mime_address_ok(return_path, NULL) ||
	    (at = strrchr(return_path, '@')) == NULL)
		return NULL;
	tok = verp_token(c, id);
	addr = xasprintf("%.*s%c%s%s", (int)(at - return_path), return_path,
	    delim, tok, at);
	free(tok);
	if ((size_t)(strchr(addr, '@') - addr) > LOCAL_MAX ||
	    !mime_address_ok(addr, NULL)) {
		free(addr);
		return NULL;
	}
	return addr;
}

int
verp_check(const struct consent *c, const char *token, int64_t *id)
{
	char idtext[24], got[2 * VERP_MAC_BYTES + 1], want[sizeof(got)];
	const char *dot;
	size_t n;
	long long v = 0;

	*id = 0;
	if (token == NULL || (dot = strchr(token, '.')) == NULL ||
	    (n = (size_t)(dot - token)) == 0 || n > 18 || token[0] == '0' ||
	    strlen(dot + 1) != 2 * VERP_MAC_BYTES)
		return FU_PERMFAIL;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)token[i]))
			return FU_PERMFAIL;
		v = v * 10 + (token[i] - '0');
	}
	for (size_t i = 0; i < 2 * VERP_MAC_BYTES; i++) {
		int ch = tolower((unsigned char)dot[1 + i]);

		if (!isxdigit(ch))
			return FU_PERMFAIL;
		got[i] = (char)ch;
	}
	got[2 * VERP_MAC_BYTES] = '\0';
	memcpy(idtext, token, n);
	idtext[n] = '\0';
	mac_hex(c, idtext, want);
	if (CRYPTO_memcmp(got, want, 2 * VERP_MAC_BYTES) != 0)
		return FU_PERMFAIL;
	*id = v;
	return FU_OK;
}
