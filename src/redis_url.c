/*
 * redis_url.c -- parse the Redis address of the config (see redis_url.h).
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "num.h"
#include "redis_url.h"
#include "xalloc.h"

/*
 * Percent-decodes n bytes of s.  Returns an owned string, or NULL when an
 * escape is malformed or decodes to NUL.
 */
static char *
pct_decode(const char *s, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t i, j = 0;
	int c, hi, lo;

	for (i = 0; i < n; i++) {
		if (s[i] != '%') {
			out[j++] = s[i];
			continue;
		}
		if (i + 2 >= n ||
		    (hi = num_hex_val((unsigned char)s[i + 1])) < 0 ||
		    (lo = num_hex_val((unsigned char)s[i + 2])) < 0) {
			free(out);
			return NULL;
		}
		c = hi * 16 + lo;
		if (c == 0) {
			free(out);
			return NULL;
		}
		out[j++] = (char)c;
		i += 2;
	}
	out[j] = '\0';
	return out;
}

void
redis_url_cleanup(struct redis_url *u)
{
	if (u == NULL)
		return;
	free(u->host);
	free(u->unix_path);
	free(u->user);
	free(u->password);
	u->host = u->unix_path = u->user = u->password = NULL;
}

/* Parses "unix:///path.sock[?db=N&password=P&user=U]" after "unix://". */
static int
redis_url_parse_unix(const char *p, struct redis_url *out, const char **why)
{
	const char *q, *param, *end, *eq;
	size_t plen;
	long v;

	if (*p != '/') {
		*why = "unix socket path must be absolute (unix:///path.sock)";
		return -1;
	}
	q = strchr(p, '?');
	plen = q != NULL ? (size_t)(q - p) : strlen(p);
	if (plen < 2) {
		*why = "missing unix socket path";
		return -1;
	}
	if (plen >= 108) {
		*why = "unix socket path too long";
		return -1;
	}
	if ((out->unix_path = pct_decode(p, plen)) == NULL) {
		*why = "bad percent-encoding";
		return -1;
	}
	for (param = q != NULL ? q + 1 : NULL; param != NULL && *param != '\0';
	     param = *end == '&' ? end + 1 : end) {
		end = param + strcspn(param, "&#");
		if (*end == '#') {
			*why = "fragment not allowed in a redis URL";
			return -1;
		}
		eq = memchr(param, '=', (size_t)(end - param));
		if (eq == NULL) {
			*why =
			    "unix:// parameters are db=, user= and password=";
			return -1;
		}
		if (eq - param == 2 && strncmp(param, "db", 2) == 0) {
			if (num_parse_digits(eq + 1, (size_t)(end - eq - 1),
			        INT_MAX, &v) == -1) {
				*why = "bad database number";
				return -1;
			}
			out->db = (int)v;
		} else if (eq - param == 8 &&
		    strncmp(param, "password", 8) == 0) {
			free(out->password);
			out->password =
			    pct_decode(eq + 1, (size_t)(end - eq - 1));
			if (out->password == NULL || *out->password == '\0') {
				*why = "bad or empty password";
				return -1;
			}
		} else if (eq - param == 4 && strncmp(param, "user", 4) == 0) {
			free(out->user);
			out->user = pct_decode(eq + 1, (size_t)(end - eq - 1));
			if (out->user == NULL || *out->user == '\0') {
				*why = "bad or empty user";
				return -1;
			}
		} else {
			*why =
			    "unix:// parameters are db=, user= and password=";
			return -1;
		}
	}
	if (out->user != NULL && out->password == NULL) {
		*why = "a user needs a password";
		return -1;
	}
	return 0;
}

/* Parses "[user:pass@]host[:port][/db]" after "redis://". */
static int
redis_url_parse_tcp(const char *p, struct redis_url *out, const char **why)
{
	const char *auth_end, *at, *colon, *host, *host_end, *port;
	char addr[INET6_ADDRSTRLEN + 1];
	unsigned char bin[16];
	size_t alen, i;
	long v;

	alen = strcspn(p, "/?#");
	auth_end = p + alen;
	at = NULL;
	for (i = 0; i < alen; i++)
		if (p[i] == '@')
			at = p + i;
	host = p;
	if (at != NULL) {
		colon = memchr(p, ':', (size_t)(at - p));
		if (colon == NULL) {
			*why = "user info must be user:password or :password";
			return -1;
		}
		if (colon > p &&
		    (out->user = pct_decode(p, (size_t)(colon - p))) == NULL) {
			*why = "bad percent-encoding";
			return -1;
		}
		out->password = pct_decode(colon + 1, (size_t)(at - colon - 1));
		if (out->password == NULL) {
			*why = "bad percent-encoding";
			return -1;
		}
		if (*out->password == '\0') {
			*why = "empty password";
			return -1;
		}
		host = at + 1;
	}
	if (*host == '[') {
		host_end = memchr(host, ']', (size_t)(auth_end - host));
		if (host_end == NULL ||
		    (size_t)(host_end - host - 1) >= sizeof addr) {
			*why = "bad IPv6 address";
			return -1;
		}
		memcpy(addr, host + 1, (size_t)(host_end - host - 1));
		addr[host_end - host - 1] = '\0';
		if (inet_pton(AF_INET6, addr, bin) != 1) {
			*why = "bad IPv6 address";
			return -1;
		}
		out->host = xstrdup(addr);
		port = host_end + 1;
		if (port != auth_end && *port != ':') {
			*why = "bad host";
			return -1;
		}
	} else {
		host_end = memchr(host, ':', (size_t)(auth_end - host));
		if (host_end == NULL)
			host_end = auth_end;
		for (i = 0; host + i < host_end; i++) {
			unsigned char c = (unsigned char)host[i];

			if (!((c >= 'a' && c <= 'z') ||
			        (c >= 'A' && c <= 'Z') ||
			        (c >= '0' && c <= '9') || c == '-' ||
			        c == '.' || c == '_')) {
				*why = "bad host";
				return -1;
			}
		}
		out->host = xstrndup(host, (size_t)(host_end - host));
		port = host_end;
	}
	if (*out->host == '\0') {
		*why = "missing host";
		return -1;
	}
	if (port < auth_end) {
		/* *port == ':' */
		if (num_parse_port(port + 1, auth_end, &out->port) == -1) {
			*why = "bad port";
			return -1;
		}
	}
	if (*auth_end == '?' || *auth_end == '#') {
		*why = "query or fragment not allowed in a redis:// URL";
		return -1;
	}
	if (*auth_end == '/' && auth_end[1] != '\0') {
		if (num_parse_digits(auth_end + 1, strlen(auth_end + 1),
		        INT_MAX, &v) == -1) {
			*why = "bad database number";
			return -1;
		}
		out->db = (int)v;
	}
	return 0;
}

int
redis_url_parse(const char *s, struct redis_url *out, const char **why)
{
	const char *dummy;
	int rc = -1;

	if (why == NULL)
		why = &dummy;
	memset(out, 0, sizeof *out);
	out->port = 6379;
	*why = "not a redis:// or unix:// URL";
	if (s == NULL)
		goto out;
	if (strncasecmp(s, "redis://", 8) == 0) {
		if (redis_url_parse_tcp(s + 8, out, why) == -1)
			goto out;
	} else if (strncasecmp(s, "unix://", 7) == 0) {
		out->port = 0;
		if (redis_url_parse_unix(s + 7, out, why) == -1)
			goto out;
	} else {
		if (strncasecmp(s, "rediss://", 9) == 0)
			*why = "rediss:// (TLS) is not supported";
		goto out;
	}
	*why = NULL;
	rc = 0;
out:
	if (rc == -1) {
		redis_url_cleanup(out);
		out->port = 0;
		out->db = 0;
	}
	return rc;
}
