/*
 * config -- the gateway's configuration, read once from a libconfig file.
 *
 * config_load() parses and validates the whole schema and returns an
 * immutable struct config; nothing reads the file again on the
 * request path.  A reload builds a new struct and swaps it in only when it
 * is valid, so a request always sees one consistent config.
 *
 * Every error names "file:line: key: reason", e.g.
 *	apigw.conf:14: routes.[1].backend: not an http:// or https:// URL
 *
 * The schema is data: each section's keys are declared in a table by the
 * module the section belongs to (config_keys.h); config.c walks the tables.
 * Only config.c includes libconfig.
 */
#ifndef APIGW_CONFIG_H
#define APIGW_CONFIG_H

#include <stddef.h>
#include <time.h>

#include "cidr.h"
#include "http_method.h"
#include "redis_url.h"

/* ---- rate-limit policies (ratelimit.h applies them) ---- */

enum rl_algorithm {
	RL_SLIDING_WINDOW = 0,
	RL_TOKEN_BUCKET,
	RL_FIXED_WINDOW,
	RL_GCRA,
};

enum rl_window { RL_SECOND = 0, RL_MINUTE, RL_HOUR, RL_DAY, RL_NWINDOWS };

struct rl_policy {         /* config_keys_policy */
	int present;       /* 0: no policy configured */
	char *name;        /* owned; "default", "route" or "key" unless set */
	int shadow;        /* evaluated and reported, never rejects */
	int algorithm_set; /* 0: inherit the default policy's algorithm */
	enum rl_algorithm algorithm;
	long limit[RL_NWINDOWS]; /* requests per window; 0 = window unused */
	long burst_size;         /* 0 = the shortest window's limit */
	long lease_max_units;    /* 0 = no leases */
	long lease_ms;           /* a lease's longest life */
};

/* Seconds in each window: 1, 60, 3600, 86400. */
extern const long rl_window_seconds[RL_NWINDOWS];
/* "second", "minute", "hour", "day" (used in window names: "route-minute"). */
extern const char *const rl_window_names[RL_NWINDOWS];
/* "sliding_window", "token_bucket", "fixed_window", "gcra". */
extern const char *const rl_algorithm_names[];
/* Returns 0 and sets *out when name is a known algorithm, else -1. */
int rl_algorithm_parse(const char *name, enum rl_algorithm *out);

struct route {        /* config_keys_route */
	char *prefix; /* owned; starts with '/', no trailing '/' except "/" */
	size_t prefix_len;
	char *backend; /* owned; scheme://host[:port][/path], no trailing '/' */
	unsigned methods; /* bitmask of enum http_method; M_ALL when omitted */
	int require_auth;
	long cache_ttl_s;
	long cache_stale_if_error_s; /* default 0: off */
	int strip_prefix;
	long connect_timeout_ms;     /* default 2000 */
	long timeout_ms;             /* default 30000 */
	int retries;                 /* default 0 */
	long max_concurrent;         /* default 0: no bound */
	struct rl_policy rate_limit; /* name defaults to "route" */
	char route_id[17]; /* 16 hex chars of SHA-256(prefix): stable Redis name
	                      part */
	int line;          /* where the route was defined */
};

struct plugin_conf {   /* config_keys_plugin */
	char *path;    /* owned */
	void *setting; /* opaque: the libconfig "config" group, or NULL */
	int line;
};

enum log_format { LOG_FORMAT_COMBINED, LOG_FORMAT_JSON };

/*
 * One struct per section.  Each section's keys, with their defaults and
 * bounds, are declared in the table named after it (config_keys.h); the
 * defaults in the comments here are for the reader.
 */

/* What rate limiting does while Redis is unreachable (redis.on_failure). */
enum redis_on_failure {
	REDIS_FAIL_OPEN = 0, /* "open": no limits */
	REDIS_FAIL_CLOSED,   /* "closed": 503 */
	REDIS_FAIL_LOCAL,    /* "local": each process, limit / local_share */
};

struct redis_conf {              /* config_keys_redis */
	char *url;               /* as written */
	struct redis_url parsed; /* of url */
	long connect_timeout_ms; /* 200 */
	long command_timeout_ms; /* 100 */
	char *key_prefix;        /* "apigw:" */
	int on_failure;          /* enum redis_on_failure; "open" */
	long local_share;        /* 4: processes sharing Redis */
};

struct gateway_conf {                 /* config_keys_gateway */
	struct cidr *trusted_proxies; /* default 127.0.0.1/32, ::1/128 */
	size_t n_trusted_proxies;
	struct cidr *internal_allow; /* default 127.0.0.0/8, ::1/128 */
	size_t n_internal_allow;
	long max_body_bytes;     /* 10485760 */
	char *request_id_header; /* "X-Request-ID" */
};

struct api_keys_conf {    /* config_keys_api_keys */
	char *header;     /* "X-API-Key" */
	long cache_ttl_s; /* 5 */
};

struct breaker_conf {            /* config_keys_breaker */
	long failure_threshold;  /* 5 */
	long recovery_timeout_s; /* 60 */
	long success_threshold;  /* 3 */
	int *failure_statuses;   /* 502, 503, 504 */
	size_t n_failure_statuses;
};

struct cache_conf {            /* config_keys_cache */
	long max_object_bytes; /* 1048576 */
	long local_bytes;      /* 1048576; 0 = no copies in the process */
};

struct cors_conf {            /* config_keys_cors */
	int enabled;          /* false */
	char **allow_origins; /* "*" */
	size_t n_allow_origins;
	char *allow_methods; /* joined: "GET, POST, ..." */
	char *allow_headers; /* joined: "Content-Type, Authorization,
	                        X-API-Key" */
	long max_age_s;      /* 600 */
};

struct log_conf {               /* config_keys_log */
	char *access;           /* "stderr", "off" or a path */
	enum log_format format; /* combined */
	int level;              /* enum log_level; "info" */
};

struct listen_conf {        /* config_keys_listen */
	char *socket_mode;  /* octal, e.g. "0660"; NULL: as bind() makes it */
	char *socket_owner; /* "USER[:GROUP]"; NULL: the master's */
};

struct config {
	char *path;   /* owned: the file it was read from */
	time_t mtime; /* the file's mtime when read */
	void *cf;     /* opaque: the libconfig tree (kept for plugins) */

	struct redis_conf redis;
	struct gateway_conf gateway;
	struct rl_policy rate_limit; /* the default policy; always present */
	struct api_keys_conf api_keys;
	struct breaker_conf circuit_breaker;
	struct cache_conf cache;
	struct cors_conf cors;
	struct log_conf log;
	struct listen_conf listen; /* only for --listen unix sockets */

	struct plugin_conf *plugins; /* config_keys_plugin */
	size_t n_plugins;

	struct route *routes; /* config_keys_route; sorted by prefix length,
	                         longest first */
	size_t n_routes;
};

/* Error messages collected while loading: each "file:line: key: reason". */
struct config_errors {
	char **msg; /* owned */
	size_t n;
};

/*
 * Reads and validates path.  Returns a new config (free with config_free)
 * or NULL, in which case errs holds at least one message.  errs may hold
 * messages only when NULL is returned.
 */
struct config *config_load(const char *path, struct config_errors *errs);
void config_free(struct config *cfg);
void config_errors_cleanup(struct config_errors *errs);

/*
 * Returns 1 when the file's mtime differs from cfg->mtime (stat is done at
 * most once a second per process; now is the caller's clock), else 0.
 */
int config_changed(const struct config *cfg, time_t now);
/*
 * Records that cfg, though valid, was not taken (its plugins failed to
 * load, say), so that config_changed ignores its file as it does a file
 * config_load refused, until the file changes again.
 */
void config_refuse(const struct config *cfg);

/*
 * Read a plugin's free-form `config` group (plugin_conf.setting, may be
 * NULL) by setting name, for the plugin host's config_string/config_int.
 * config_plugin_string returns the string (owned by the config, valid until
 * config_free) or NULL when absent or not a string.  config_plugin_int
 * returns 0 and sets *out for an integer (or a boolean, as 0 or 1), else -1.
 */
const char *config_plugin_string(const void *setting, const char *name);
int config_plugin_int(const void *setting, const char *name, long long *out);

#endif
