/*
 * config_keys -- the config schema as data: each module declares the keys
 * of its section in a table of struct config_key, and config.c walks the
 * tables (defaults, validation with "file:line: key: reason" errors,
 * storing, freeing).  A key added to a table is defaulted, validated,
 * stored and freed with no code in config.c.
 *
 * An entry says what the key is (name, type), what it accepts (bounds,
 * lengths, a check for strings), what it is when absent (def, def_s, ...),
 * where its value goes (off, off_n: offsets into the struct the table
 * describes) and what it means (help, with the unit).  A table ends with
 * an entry whose name is NULL.  For example the cache section, whose
 * struct is struct cache_conf:
 *
 *	const struct config_key config_keys_cache[] = {
 *		{ .name = "max_object_bytes", .type = CK_LONG, .min = 0,
 *		  .max = 536870912, .def = 1048576,
 *		  .off = offsetof(struct cache_conf, max_object_bytes),
 *		  .help = "bytes; larger responses are not cached" },
 *		{ .name = NULL },
 *	};
 *
 * The tables, and the module each belongs to:
 *
 *	config_keys_root	config.c		the sections, struct
 *config config_keys_redis	config_keys_redis.c	redis, store.c
 *	config_keys_gateway	config_keys_gateway.c	gateway, gateway.c
 *	config_keys_policy	config_keys_ratelimit.c	a policy, ratelimit.c
 *	config_keys_api_keys	config_keys_auth.c	api_keys, auth.c
 *	config_keys_breaker	config_keys_breaker.c	circuit_breaker
 *	config_keys_cache	config_keys_cache.c	cache
 *	config_keys_cors	config_keys_mw.c	cors, mw.c
 *	config_keys_log		config_keys_mw.c	log, mw.c
 *	config_keys_listen	config_keys_listen.c	listen, listener.c
 *	config_keys_plugin	config_keys_plugin.c	a plugins entry,
 *plugin.c config_keys_route	config_keys_router.c	a routes entry, router.c
 *
 * The tables live next to their module rather than in it so that a
 * runtime module does not link the validators, and only config.c
 * includes libconfig.  conf/apigw.conf documents every key of every table
 * with its default; tests/unit/test_config_doc checks that it does.
 *
 * This header also declares the string checks that several tables share.
 */
#ifndef APIGW_CONFIG_KEYS_H
#define APIGW_CONFIG_KEYS_H

#include <stddef.h>

enum config_ktype {
	CK_LONG,    /* integer into a long */
	CK_INT,     /* integer into an int */
	CK_BOOL,    /* boolean into an int */
	CK_STRING,  /* string into a char *, normalized by ->check */
	CK_ENUM,    /* one of ->names; its index into an int */
	CK_STRLIST, /* array of strings into char ** and a size_t */
	CK_JOINED,  /* array of strings joined with ", " into a char * */
	CK_INTLIST, /* array of integers into int * and a size_t */
	CK_CIDRS,   /* array of CIDRs into struct cidr * and a size_t */
	CK_METHODS, /* array of method names into an unsigned mask */
	CK_GROUP,   /* nested group: ->sub, into the struct at ->off */
	CK_POLICY, /* rate-limit policy group (->sub) into a struct rl_policy */
	CK_LIST,   /* list of groups into an array of ->elem_size */
	CK_SETTING, /* free-form group kept as an opaque pointer */
};

#define CKF_REQUIRED 0x1       /* missing is an error */
#define CKF_DEFAULT_POLICY 0x2 /* CK_POLICY: always present, 60/min */
#define CKF_NO_DEFAULT 0x4     /* absent means unset (integers: 0) */

/*
 * A string check: returns an owned, possibly normalized copy of s, or NULL
 * with a reason (no key name, no line) written into why.
 */
typedef char *(*config_check_fn)(const char *s, char *why, size_t whylen);

struct config_key {
	const char *name;
	enum config_ktype type;
	int flags;                    /* CKF_* */
	long long min, max;           /* integer bounds (of each element) */
	long long min_n, max_n;       /* array and list lengths */
	long long def;                /* integer, boolean, enum or mask */
	const char *def_s;            /* CK_STRING; CK_POLICY: its name */
	const char *const *def_list;  /* CK_STRLIST, CK_JOINED, CK_CIDRS */
	const int *def_ints;          /* CK_INTLIST, 0-terminated */
	const char *def_doc;          /* a default no literal can show, as
	                                 conf/apigw.conf words it */
	const char *const *names;     /* CK_ENUM choices, NULL-terminated */
	config_check_fn check;        /* CK_STRING and string elements */
	size_t off;                   /* where the value is stored */
	size_t off_n;                 /* where an array's length is stored */
	const struct config_key *sub; /* CK_GROUP, CK_POLICY, CK_LIST keys */
	size_t elem_size;             /* CK_LIST element size */
	size_t off_line;              /* CK_LIST: element's line */
	const char *help;             /* unit and meaning */
};

/* Bounds several tables share. */
#define CONFIG_TIMEOUT_MAX_MS 600000
#define CONFIG_RATE_MAX 1000000000

extern const struct config_key config_keys_root[];
extern const struct config_key config_keys_redis[];
extern const struct config_key config_keys_gateway[];
extern const struct config_key config_keys_policy[];
extern const struct config_key config_keys_api_keys[];
extern const struct config_key config_keys_breaker[];
extern const struct config_key config_keys_cache[];
extern const struct config_key config_keys_cors[];
extern const struct config_key config_keys_log[];
extern const struct config_key config_keys_listen[];
extern const struct config_key config_keys_plugin[];
extern const struct config_key config_keys_route[];

/* ---- checks and helpers shared by the tables (config_keys.c) ---- */

#define CONFIG_WHY_MAX 160  /* longest reason a check writes */
#define CONFIG_QUOTE_MAX 72 /* longest quoted user value in a message */

/* Returns 1 for a control character (below 0x20, or 0x7f). */
int config_is_ctl(unsigned char c);
/*
 * Writes s into out as a double-quoted string, non-printable bytes as
 * \xNN, cut to about CONFIG_QUOTE_MAX characters with "...".  For
 * messages; outlen must be at least CONFIG_QUOTE_MAX + 8.
 */
void config_quote(const char *s, char *out, size_t outlen);
/* A header name: an RFC 9110 token of 1 to 128 characters. */
char *config_check_token(const char *s, char *why, size_t whylen);
/* An upper-case method name known to http_method_bit. */
char *config_check_method(const char *s, char *why, size_t whylen);
/*
 * Checks "http[s]://host[:port][/path]": host a name or [IPv6], port
 * 1..65535, no user info, query or fragment.  Returns 0 and the offset of
 * the path (possibly the end of s) in *path_off, or -1 with a reason.
 */
int config_check_http_url(
    const char *s, size_t *path_off, char *why, size_t whylen);

#endif
