/*
 * config_keys_redis.c -- the keys of the `redis` section (struct
 * redis_conf), which store.c connects with.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "config_keys.h"
#include "xalloc.h"

static char *
check_redis_url(const char *s, char *why, size_t whylen)
{
	struct redis_url u;
	const char *reason;

	if (redis_url_parse(s, &u, &reason) == -1) {
		snprintf(why, whylen, "%s", reason);
		return NULL;
	}
	redis_url_cleanup(&u);
	return xstrdup(s);
}

static char *
check_key_prefix(const char *s, char *why, size_t whylen)
{
	size_t len = strlen(s), i;

	if (len < 1 || len > 64) {
		snprintf(why, whylen, "must be 1 to 64 characters");
		return NULL;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '{' || c == '}' || c == ' ' || config_is_ctl(c)) {
			snprintf(why, whylen,
			    "must not contain '{', '}', "
			    "spaces or control characters");
			return NULL;
		}
	}
	return xstrdup(s);
}

#define RO(m) offsetof(struct redis_conf, m)

/* clang-format off */
/* In the order of enum redis_on_failure. */
static const char *const on_failure_names[] = { "open", "closed", "local",
	NULL };

const struct config_key config_keys_redis[] = {
	{ .name = "url", .type = CK_STRING, .flags = CKF_REQUIRED,
	  .check = check_redis_url, .off = RO(url),
	  .help = "redis://[user:pass@]host[:port][/db] or "
	  "unix:///path.sock[?db=N]" },
	{ .name = "connect_timeout_ms", .type = CK_LONG, .min = 1,
	  .max = CONFIG_TIMEOUT_MAX_MS, .def = 200,
	  .off = RO(connect_timeout_ms), .help = "milliseconds to connect" },
	{ .name = "command_timeout_ms", .type = CK_LONG, .min = 1,
	  .max = CONFIG_TIMEOUT_MAX_MS, .def = 100,
	  .off = RO(command_timeout_ms), .help = "milliseconds per command" },
	{ .name = "key_prefix", .type = CK_STRING, .def_s = "apigw:",
	  .check = check_key_prefix, .off = RO(key_prefix),
	  .help = "prefix of every Redis key" },
	{ .name = "on_failure", .type = CK_ENUM, .names = on_failure_names,
	  .def = REDIS_FAIL_OPEN, .off = RO(on_failure),
	  .help = "open: serve without limits; closed: 503; "
	  "local: each process limits alone" },
	{ .name = "local_share", .type = CK_LONG, .min = 1, .max = 100000,
	  .def = 4, .off = RO(local_share),
	  .help = "on_failure local: processes sharing Redis; each takes "
	  "limit / local_share" },
	{ .name = NULL },
};
/* clang-format on */
