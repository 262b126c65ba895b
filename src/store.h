/*
 * store -- the process's one Redis connection (the only module that
 * includes hiredis; a redisReply never leaves store.c).
 *
 * Connection: lazily opened from cfg->redis (TCP or unix socket, AUTH with
 * user+password or password, SELECT db), connect_timeout_ms to connect,
 * command_timeout_ms for every command.  After any error or timeout the
 * connection is discarded (a late reply can never be read as the answer to
 * a later command) and no new connect is tried before a backoff that grows
 * from 100 ms to 5 s; while backing off, calls fail at once.
 *
 * Scripts: the Lua sources embedded from src/lua/ are run with EVALSHA
 * (their SHA-1 is computed locally); a NOSCRIPT answer (Redis restarted,
 * SCRIPT FLUSH) loads the script and retries once, invisibly.
 *
 * Batches: store_exec() writes every command of a batch before reading any
 * reply, so a batch costs one round trip.
 */
#ifndef APIGW_STORE_H
#define APIGW_STORE_H

#include <stddef.h>

struct config;
struct store;

enum store_script {
	STORE_SCRIPT_RATELIMIT = 0, /* src/lua/ratelimit.lua */
	STORE_NSCRIPTS
};

enum store_type {
	STORE_NIL = 0,
	STORE_INT,
	STORE_STR, /* bulk or status string */
	STORE_ARR,
	STORE_ERR, /* an error reply: str holds the message */
};

/* A reply, deep-copied out of hiredis.  Owned by whoever filled it. */
struct store_val {
	enum store_type type;
	long long i;
	char *str; /* NUL-terminated, len bytes */
	size_t len;
	struct store_val *elem;
	size_t n;
};

void store_val_cleanup(struct store_val *v);

/* One command of a batch: a script (argv are its KEYS then ARGV) or argv. */
struct store_cmd {
	int script; /* enum store_script, or -1 for a plain command */
	int nkeys;  /* scripts only */
	int argc;
	const char **argv;     /* borrowed */
	const size_t *argvlen; /* borrowed; NULL: use strlen */
};

/* Returns a new, unconnected store for cfg's redis section. Never NULL. */
struct store *store_new(const struct config *cfg);
void store_free(struct store *s);
/* Adopts a reloaded config: reconnects only if the redis section changed. */
void store_reconfigure(struct store *s, const struct config *cfg);

/*
 * Runs n commands as one pipelined round trip; replies[i] receives the
 * answer to cmds[i] (caller cleans each up).  Returns 0 when every reply
 * arrived (a reply may still be STORE_ERR), -1 when Redis is unreachable,
 * timed out or the connection broke (replies then all STORE_NIL), with a
 * reason in *why (static string) when why is not NULL.
 */
int store_exec(struct store *s, const struct store_cmd *cmds, size_t n,
    struct store_val *replies, const char **why);

/* One plain command: a convenience over store_exec. */
int store_command(struct store *s, struct store_val *reply, const char **why,
    int argc, const char **argv);

/* Returns 1 when a PING succeeds now (used by /_health), else 0. */
int store_ping(struct store *s);

/* Counts since the process started (for metrics and tests). */
unsigned long store_error_count(const struct store *s);

#endif
