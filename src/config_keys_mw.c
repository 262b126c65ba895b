/*
 * config_keys_mw.c -- the keys of the `cors` and `log` sections (struct
 * cors_conf, struct log_conf), read by the built-in middleware in mw.c.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "config_keys.h"
#include "xalloc.h"

/* Enum-valued keys are stored as int: make sure that is what they are. */
_Static_assert(sizeof(enum log_format) == sizeof(int), "enum size");

static char *
check_origin(const char *s, char *why, size_t whylen)
{
	size_t off;

	if (strcmp(s, "*") == 0)
		return xstrdup(s);
	if (config_check_http_url(s, &off, why, whylen) == -1 ||
	    s[off] != '\0') {
		snprintf(why, whylen,
		    "must be \"*\" or an origin like "
		    "\"https://example.com\" (no path)");
		return NULL;
	}
	return xstrdup(s);
}

static char *
check_log_access(const char *s, char *why, size_t whylen)
{
	size_t i;

	if (strcmp(s, "stderr") == 0 || strcmp(s, "off") == 0)
		return xstrdup(s);
	for (i = 0; s[i] != '\0'; i++)
		if (config_is_ctl((unsigned char)s[i]))
			break;
	if (s[0] != '/' || s[i] != '\0') {
		snprintf(why, whylen,
		    "must be \"stderr\", \"off\" or an absolute file path");
		return NULL;
	}
	return xstrdup(s);
}

#define CO(m) offsetof(struct cors_conf, m)
#define LO(m) offsetof(struct log_conf, m)

/* clang-format off */
static const char *const def_origins[] = { "*", NULL };
static const char *const def_cors_methods[] = {
	"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", NULL,
};
static const char *const def_cors_headers[] = {
	"Content-Type", "Authorization", "X-API-Key", NULL,
};
static const char *const log_format_names[] = { "combined", "json", NULL };
static const char *const log_level_names[] = {
	"debug", "info", "warn", "error", NULL,
};

const struct config_key config_keys_cors[] = {
	{ .name = "enabled", .type = CK_BOOL, .def = 0, .off = CO(enabled),
	  .help = "answer preflights and add CORS headers" },
	{ .name = "allow_origins", .type = CK_STRLIST, .max_n = 1024,
	  .def_list = def_origins, .check = check_origin,
	  .off = CO(allow_origins), .off_n = CO(n_allow_origins),
	  .help = "\"*\" or origins like \"https://app.example.com\"" },
	{ .name = "allow_methods", .type = CK_JOINED, .min_n = 1, .max_n = 16,
	  .def_list = def_cors_methods, .check = config_check_method,
	  .off = CO(allow_methods), .help = "Access-Control-Allow-Methods" },
	{ .name = "allow_headers", .type = CK_JOINED, .max_n = 256,
	  .def_list = def_cors_headers, .check = config_check_token,
	  .off = CO(allow_headers), .help = "Access-Control-Allow-Headers" },
	{ .name = "max_age_s", .type = CK_LONG, .min = 0, .max = 86400,
	  .def = 600, .off = CO(max_age_s),
	  .help = "seconds a preflight may be cached" },
	{ .name = NULL },
};

const struct config_key config_keys_log[] = {
	{ .name = "access", .type = CK_STRING, .def_s = "stderr",
	  .check = check_log_access, .off = LO(access),
	  .help = "\"stderr\", \"off\" or an absolute path" },
	{ .name = "format", .type = CK_ENUM, .names = log_format_names,
	  .def = LOG_FORMAT_COMBINED, .off = LO(format),
	  .help = "combined | json" },
	{ .name = "level", .type = CK_ENUM, .names = log_level_names,
	  .def = 1, .off = LO(level), .help = "debug | info | warn | error" },
	{ .name = NULL },
};
/* clang-format on */
