/*
 * config_keys_router.c -- the keys of one entry of the `routes` list
 * (struct route), which router.c matches and proxy.c forwards to.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "config_keys.h"
#include "xalloc.h"

/*
 * Route prefixes: '/' followed by RFC 3986 path characters, without '%'
 * (a prefix is matched against the normalized, decoded path), "//", or
 * "." and ".." segments.  A trailing '/' is removed, except for "/".
 */
static char *
check_prefix(const char *s, char *why, size_t whylen)
{
	size_t len = strlen(s), i, seg;
	unsigned char c;
	char *out;

	if (s[0] != '/') {
		snprintf(why, whylen, "must start with '/'");
		return NULL;
	}
	if (len > 1024) {
		snprintf(why, whylen, "must be at most 1024 characters");
		return NULL;
	}
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') ||
		    strchr("/-._~!$&'()*+,;=:@", c) != NULL)
			continue;
		if (c == ' ' || config_is_ctl(c) || c >= 0x80)
			snprintf(why, whylen,
			    "must not contain whitespace, "
			    "control characters or non-ASCII bytes");
		else
			snprintf(why, whylen, "must not contain '%c'", c);
		return NULL;
	}
	if (strstr(s, "//") != NULL) {
		snprintf(why, whylen, "must not contain \"//\"");
		return NULL;
	}
	for (i = 0; i < len; i += seg + 1) {
		seg = strcspn(s + i + 1, "/");
		if ((seg == 1 && s[i + 1] == '.') ||
		    (seg == 2 && s[i + 1] == '.' && s[i + 2] == '.')) {
			snprintf(why, whylen,
			    "must not contain \".\" or \"..\" segments");
			return NULL;
		}
	}
	out = xstrdup(s);
	if (len > 1 && out[len - 1] == '/')
		out[len - 1] = '\0';
	return out;
}

static char *
check_backend(const char *s, char *why, size_t whylen)
{
	size_t off, len;
	char *out;

	if (config_check_http_url(s, &off, why, whylen) == -1)
		return NULL;
	out = xstrdup(s);
	len = strlen(out);
	while (len > off && out[len - 1] == '/')
		out[--len] = '\0';
	return out;
}

#define RO(m) offsetof(struct route, m)

/* clang-format off */
const struct config_key config_keys_route[] = {
	{ .name = "prefix", .type = CK_STRING, .flags = CKF_REQUIRED,
	  .check = check_prefix, .off = RO(prefix),
	  .help = "path prefix, matched on segment boundaries" },
	{ .name = "backend", .type = CK_STRING, .flags = CKF_REQUIRED,
	  .check = check_backend, .off = RO(backend),
	  .help = "http[s]://host[:port][/path]" },
	{ .name = "methods", .type = CK_METHODS, .min_n = 1, .max_n = 16,
	  .def = M_ALL, .def_doc = "every method", .off = RO(methods),
	  .help = "allowed methods; omitted: all" },
	{ .name = "require_auth", .type = CK_BOOL, .def = 0,
	  .off = RO(require_auth), .help = "require an API key" },
	{ .name = "cache_ttl_s", .type = CK_LONG, .min = 0, .max = 31536000,
	  .def = 0, .off = RO(cache_ttl_s),
	  .help = "seconds; 0 = no response cache" },
	{ .name = "cache_stale_if_error_s", .type = CK_LONG, .min = 0,
	  .max = 31536000, .def = 0, .off = RO(cache_stale_if_error_s),
	  .help = "seconds an expired entry may stand in for a failed backend" },
	{ .name = "strip_prefix", .type = CK_BOOL, .def = 0,
	  .off = RO(strip_prefix), .help = "remove the prefix when forwarding" },
	{ .name = "connect_timeout_ms", .type = CK_LONG, .min = 1,
	  .max = CONFIG_TIMEOUT_MAX_MS, .def = 2000,
	  .off = RO(connect_timeout_ms),
	  .help = "milliseconds to connect to the backend" },
	{ .name = "timeout_ms", .type = CK_LONG, .min = 1,
	  .max = CONFIG_TIMEOUT_MAX_MS, .def = 30000, .off = RO(timeout_ms),
	  .help = "milliseconds for the whole backend exchange" },
	{ .name = "retries", .type = CK_INT, .min = 0, .max = 10, .def = 0,
	  .off = RO(retries), .help = "extra attempts for idempotent methods" },
	{ .name = "max_concurrent", .type = CK_LONG, .min = 0, .max = 100000,
	  .def = 0, .off = RO(max_concurrent),
	  .help = "in-flight requests of the route on one host; 0 = no bound" },
	{ .name = "rate_limit", .type = CK_POLICY, .def_s = "route",
	  .def_doc = "none", .sub = config_keys_policy, .off = RO(rate_limit),
	  .help = "the route's own policy" },
	{ .name = NULL },
};
/* clang-format on */
