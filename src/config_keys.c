/*
 * config_keys.c -- string checks shared by the key tables (see
 * config_keys.h).  Each check returns an owned, possibly normalized copy
 * or NULL with a reason.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_keys.h"
#include "http_method.h"
#include "num.h"
#include "xalloc.h"

static int
is_tchar(unsigned char c)
{
	/* RFC 9110 5.6.2 tchar. */
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int
config_is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

void
config_quote(const char *s, char *out, size_t outlen)
{
	size_t len = 0;
	unsigned char c;

	if (outlen < CONFIG_QUOTE_MAX + 8)
		abort();
	out[len++] = '"';
	for (; *s != '\0'; s++) {
		if (len >= CONFIG_QUOTE_MAX) {
			memcpy(out + len, "...", 3);
			len += 3;
			break;
		}
		c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[len++] = '\\';
			out[len++] = (char)c;
		} else if (config_is_ctl(c) || c >= 0x80) {
			snprintf(out + len, outlen - len, "\\x%02x", c);
			len += 4;
		} else
			out[len++] = (char)c;
	}
	out[len++] = '"';
	out[len] = '\0';
}

char *
config_check_token(const char *s, char *why, size_t whylen)
{
	size_t len = strlen(s), i;
	char q[CONFIG_QUOTE_MAX + 8];

	for (i = 0; i < len; i++)
		if (!is_tchar((unsigned char)s[i]))
			break;
	if (len == 0 || len > 128 || i < len) {
		config_quote(s, q, sizeof q);
		snprintf(why, whylen,
		    "%s is not a valid header name "
		    "(RFC 9110 token, 1 to 128 characters)",
		    q);
		return NULL;
	}
	return xstrdup(s);
}

char *
config_check_method(const char *s, char *why, size_t whylen)
{
	char q[CONFIG_QUOTE_MAX + 8], up[16];
	size_t i;

	if (http_method_bit(s) != 0)
		return xstrdup(s);
	config_quote(s, q, sizeof q);
	for (i = 0; i < sizeof up - 1 && s[i] != '\0'; i++)
		up[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 32) : s[i];
	up[i] = '\0';
	if (s[i] == '\0' && http_method_bit(up) != 0)
		snprintf(why, whylen,
		    "unknown method %s (methods are upper-case)", q);
	else
		snprintf(why, whylen, "unknown method %s", q);
	return NULL;
}

int
config_check_http_url(const char *s, size_t *path_off, char *why, size_t whylen)
{
	const char *p, *host_end, *auth_end, *port;
	char addr[INET6_ADDRSTRLEN + 1];
	unsigned char bin[16];
	size_t alen, i;
	int portnum;
	unsigned char c;

	if (strncasecmp(s, "http://", 7) == 0)
		p = s + 7;
	else if (strncasecmp(s, "https://", 8) == 0)
		p = s + 8;
	else {
		snprintf(why, whylen, "not an http:// or https:// URL");
		return -1;
	}
	alen = strcspn(p, "/?#");
	auth_end = p + alen;
	if (memchr(p, '@', alen) != NULL) {
		snprintf(why, whylen, "must not contain user info");
		return -1;
	}
	if (*p == '[') {
		host_end = memchr(p, ']', alen);
		if (host_end == NULL ||
		    (size_t)(host_end - p - 1) >= sizeof addr) {
			snprintf(why, whylen, "bad IPv6 address");
			return -1;
		}
		memcpy(addr, p + 1, (size_t)(host_end - p - 1));
		addr[host_end - p - 1] = '\0';
		if (inet_pton(AF_INET6, addr, bin) != 1) {
			snprintf(why, whylen, "bad IPv6 address");
			return -1;
		}
		port = host_end + 1;
		if (port != auth_end && *port != ':') {
			snprintf(why, whylen, "bad host");
			return -1;
		}
	} else {
		host_end = memchr(p, ':', alen);
		if (host_end == NULL)
			host_end = auth_end;
		if (host_end == p) {
			snprintf(why, whylen, "URL has no host");
			return -1;
		}
		for (i = 0; p + i < host_end; i++) {
			c = (unsigned char)p[i];
			if (!((c >= 'a' && c <= 'z') ||
			        (c >= 'A' && c <= 'Z') ||
			        (c >= '0' && c <= '9') || c == '-' ||
			        c == '.' || c == '_')) {
				snprintf(why, whylen, "bad host");
				return -1;
			}
		}
		port = host_end;
	}
	if (port < auth_end &&
	    num_parse_port(port + 1, auth_end, &portnum) == -1) {
		snprintf(why, whylen, "bad port (1 to 65535)");
		return -1;
	}
	for (p = auth_end; *p != '\0'; p++) {
		c = (unsigned char)*p;
		if (c == '?') {
			snprintf(why, whylen, "must not contain a query");
			return -1;
		}
		if (c == '#') {
			snprintf(why, whylen, "must not contain a fragment");
			return -1;
		}
		if (c == '%' && num_hex_val((unsigned char)p[1]) >= 0 &&
		    num_hex_val((unsigned char)p[2]) >= 0)
			continue;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') ||
		    (c != '\0' && strchr("/-._~!$&'()*+,;=:@", c) != NULL))
			continue;
		snprintf(why, whylen, "bad character in path");
		return -1;
	}
	*path_off = (size_t)(auth_end - s);
	return 0;
}
