/*
 * store -- the process's one Redis connection (the only module that
 * includes hiredis; a redisReply never leaves store.c).
 *
 * Connection: lazily opened from cfg->redis (TCP or unix socket, AUTH with
 * user+password or password, SELECT db), connect_timeout_ms to connect,
 * command_timeout_ms for every command.  After any error or timeout the
 * connection is discarded (a late reply can never be read as the answer to
 * a later command) and no new connect is tried before a backoff that grows
 * from 100 ms to 0.5 s; while backing off, calls fail at once.
 *
 * Scripts: the Lua sources embedded from src/lua/ are run with EVALSHA
 * (their SHA-1 is computed locally); a NOSCRIPT answer (Redis restarted,
 * SCRIPT FLUSH) loads the script and retries once, invisibly.
 *
 * Batches: store_exec() writes every command of a batch before reading any
 * reply, so a batch costs one round trip.  Its replies stay in a struct
 * store_batch, which hands out views into them (no string is copied, so a
 * large cached body is read once, by hiredis, and never again) until the
 * batch is used for the next store_exec() or reset.
 *
 *	struct store_batch b;
 *	const struct store_val *v;
 *
 *	store_batch_init(&b);
 *	if (store_exec(s, cmds, 2, &b, &why) == 0) {
 *		v = store_batch_reply(&b, 1);    // the answer to cmds[1]
 *		...                              // v->str valid until:
 *	}
 *	store_batch_cleanup(&b);                 // (or _reset for reuse)
 *
 * Deferred commands: store_defer() queues fire-and-forget writes (breaker
 * outcomes, metric counters) in the connection's output buffer.  They
 * travel with the next store_exec() (no round trip of their own) or at
 * store_flush(), and their replies are read and dropped before that
 * batch's own: error replies are counted and logged (rate-limited), and
 * when the connection breaks the commands still waiting are dropped and
 * counted.  They never make a batch fail that would not fail anyway.
 * A deferred script is loaded (SCRIPT LOAD, pipelined) before its first
 * use on a connection; only after a SCRIPT FLUSH that the store did not
 * see does one deferred call get NOSCRIPT (counted as an error, as its
 * arguments are not kept for a retry).
 */
#ifndef APIGW_STORE_H
#define APIGW_STORE_H

#include <stddef.h>

#include "lua_scripts.h" /* enum store_script, generated from src/lua */

struct config;
struct store;

enum store_type {
	STORE_NIL = 0,
	STORE_INT,
	STORE_STR, /* bulk or status string */
	STORE_ARR,
	STORE_ERR, /* an error reply: str holds the message */
};

/*
 * A view of one reply.  Everything it points to belongs to the batch that
 * produced it and stays valid until that batch is next used or reset.
 */
struct store_val {
	enum store_type type;
	long long i;
	const char *str; /* NUL-terminated, len bytes (may hold NULs) */
	size_t len;
	const struct store_val *elem; /* n elements */
	size_t n;
};

/*
 * The replies of one store_exec(), owned by the batch.  Embedded in the
 * caller's struct; its fields are store.c's own.
 */
struct store_batch {
	void **raw;             /* the replies as hiredis gave them */
	size_t n;               /* replies held */
	size_t raw_cap;         /* raw's allocation */
	struct store_val *vals; /* the views: n top-level, then the arrays */
	size_t vals_cap;
};

void store_batch_init(struct store_batch *b);
/* Drops the replies (their views die), keeping the allocations. */
void store_batch_reset(struct store_batch *b);
/* Frees everything; the batch may be initialized again. */
void store_batch_cleanup(struct store_batch *b);
/*
 * The reply to cmds[i] of the last store_exec() on b: never NULL; a
 * STORE_NIL view when i is out of range or that exec failed.  Owned by b.
 */
const struct store_val *store_batch_reply(
    const struct store_batch *b, size_t i);

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
 * Runs n commands as one pipelined round trip, after any deferred ones;
 * store_batch_reply(b, i) is then the answer to cmds[i] (b first drops
 * what it held).  Returns 0 when every reply arrived (a reply may still be
 * STORE_ERR), -1 when Redis is unreachable, timed out or the connection
 * broke (the replies then all STORE_NIL), with a reason in *why (static
 * string) when why is not NULL.
 */
int store_exec(struct store *s, const struct store_cmd *cmds, size_t n,
    struct store_batch *b, const char **why);

/* One plain command: a convenience over store_exec. */
int store_command(struct store *s, struct store_batch *b, const char **why,
    int argc, const char **argv);

/*
 * Queues n commands whose replies nobody wants (see the top).  They are
 * encoded now (argv may be freed on return) and sent with the next
 * store_exec() or store_flush().  Never waits for Redis unless a
 * connection must be opened (only when none is open and no backoff runs).
 * Returns 0 when queued, -1 when they were dropped (Redis unavailable,
 * invalid command: counted, see store_defer_dropped_count).
 */
int store_defer(struct store *s, const struct store_cmd *cmds, size_t n);

/*
 * Sends what store_defer() queued and reads (and drops) every reply
 * still owed, e.g. before the process goes idle or exits.  Returns 0, or
 * -1 when the connection broke (the rest was dropped and counted).
 */
int store_flush(struct store *s);

/*
 * Writes what store_defer() queued now, without waiting: the replies are
 * read by the next store_exec() or store_flush().  For after a response,
 * so that deferred writes reach Redis before the next request.  Returns
 * 0, or -1 when the connection broke (dropped and counted).
 */
int store_send(struct store *s);

/* Returns 1 when a PING succeeds now (used by /_health), else 0. */
int store_ping(struct store *s);

/* Counts since the process started (for metrics and tests). */
unsigned long store_error_count(const struct store *s);
/* Deferred commands answered with an error reply. */
unsigned long store_defer_error_count(const struct store *s);
/* Deferred commands dropped unsent or unanswered (Redis down, broken). */
unsigned long store_defer_dropped_count(const struct store *s);
/* Deferred commands whose reply is still owed (tests). */
size_t store_defer_pending(const struct store *s);

#endif
