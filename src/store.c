/*
 * store -- the process's one Redis connection; the contract is in store.h.
 *
 * One blocking hiredis context, opened on first use.  Any I/O error or
 * timeout frees the context at once: hiredis would otherwise hand the late
 * reply of a timed-out command to the next caller.  A failure also starts
 * a backoff (100 ms, doubling to 0.5 s, reset by the first batch that
 * succeeds) during which calls fail without touching the network, so a dead
 * Redis costs a request nothing but a clock read.
 *
 * Before an idle connection is reused it is polled: if Redis has closed it
 * (restart, `timeout` config, CLIENT KILL) or sent anything unasked, it is
 * replaced right away.  Redis only closes an idle connection, so no command
 * of ours was lost and the request need not fail.
 *
 * Scripts go by EVALSHA with the SHA-1 computed here from the embedded
 * source; NOSCRIPT makes one more round trip that loads the scripts that
 * were missing and re-runs the commands that got it (after the rest of
 * their batch, which is fine for independent commands).
 *
 * Replies are kept as hiredis built them, in the caller's store_batch, and
 * the store_val views point into them.  Writes and reads are separate
 * steps here (redisBufferWrite, then the reader) rather than
 * redisGetReply(), which writes only when no reply is buffered: the
 * deferred-command bookkeeping needs to know exactly what has been sent.
 *
 * Deferred commands (store_defer) only ever sit in the output buffer
 * between calls, or have been sent by store_send() and owe replies.  A
 * batch sends everything queued, reads those owed replies first, then its
 * own.  Before reuse of an idle connection the owed replies (sent long
 * enough ago to be here) are read, so that the poll for a server-side
 * close sees only what nobody asked for.  A deferred script is preceded
 * by SCRIPT LOAD once per connection: its arguments are not kept, so a
 * NOSCRIPT could not be retried.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "clock.h"
#include "config.h"
#include "log.h"
#include "lua_scripts.h"
#include "store.h"
#include "xalloc.h"

#define STORE_BACKOFF_MIN_MS 100
/* At most 1 s: Redis back, every process uses it again within a second
 * (exact limits again after on_failure local), for one failed connect per
 * second and process while it is down. */
#define STORE_BACKOFF_MAX_MS 500
/* Deferred commands queued before a store_flush() is forced: a bound on
 * the output buffer and on the replies owed, never reached in practice. */
#define STORE_DEFER_MAX 1024

#define store_sources lua_scripts

struct store {
	redisContext *c; /* NULL when not connected */

	/* A copy of the redis section: the config may be freed by a reload. */
	char *url;
	struct redis_url addr;
	long connect_timeout_ms;
	long command_timeout_ms;

	char sha[STORE_NSCRIPTS][41]; /* lower-case hex SHA-1 of each source */

	long backoff_ms;       /* 0: no failure since the last success */
	long long retry_at_ms; /* monotonic: no connect before this */
	long long used_ms;     /* monotonic: the last complete exchange */
	unsigned long errors;

	/* Deferred commands on c (see the top). */
	size_t pending; /* replies owed, unsent included */
	size_t unsent;  /* still in c's output buffer */
	unsigned char loaded[STORE_NSCRIPTS]; /* SCRIPT LOAD sent on c */
	unsigned long defer_errors;
	unsigned long defer_dropped;
};

/*
 * A connection used this recently is not polled for a server-side close
 * before reuse: under load that poll would be one syscall per request for
 * nothing.  A server restarted within this window costs one failed call.
 */
#define STORE_FRESH_MS 250

static struct timeval
store_tv(long ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

static char *
store_strdup(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static int
store_streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static void
store_take_config(struct store *s, const struct config *cfg)
{
	const struct redis_url *u = &cfg->redis.parsed;

	s->url = store_strdup(cfg->redis.url);
	s->addr.host = store_strdup(u->host);
	s->addr.port = u->port;
	s->addr.unix_path = store_strdup(u->unix_path);
	s->addr.user = store_strdup(u->user);
	s->addr.password = store_strdup(u->password);
	s->addr.db = u->db;
	s->connect_timeout_ms = cfg->redis.connect_timeout_ms;
	s->command_timeout_ms = cfg->redis.command_timeout_ms;
}

static void
store_drop_config(struct store *s)
{
	free(s->url);
	s->url = NULL;
	redis_url_cleanup(&s->addr);
}

/* Does cfg's redis section connect the same way as the one we hold? */
static int
store_same_config(const struct store *s, const struct config *cfg)
{
	const struct redis_url *u = &cfg->redis.parsed;

	return store_streq(s->url, cfg->redis.url) &&
	    store_streq(s->addr.host, u->host) && s->addr.port == u->port &&
	    store_streq(s->addr.unix_path, u->unix_path) &&
	    store_streq(s->addr.user, u->user) &&
	    store_streq(s->addr.password, u->password) && s->addr.db == u->db &&
	    s->connect_timeout_ms == cfg->redis.connect_timeout_ms &&
	    s->command_timeout_ms == cfg->redis.command_timeout_ms;
}

static void
store_sha1_hex(const char *src, char hex[41])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;

	if (EVP_Digest(src, strlen(src), md, &len, EVP_sha1(), NULL) != 1 ||
	    len != 20) {
		/* Only on a broken libcrypto; EVALSHA then gets NOSCRIPT. */
		log_error("redis: cannot compute a script's SHA-1");
		memset(hex, '0', 40);
		hex[40] = '\0';
		return;
	}
	for (i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

struct store *
store_new(const struct config *cfg)
{
	struct store *s;
	int i;

	s = xcalloc(1, sizeof *s);
	store_take_config(s, cfg);
	for (i = 0; i < STORE_NSCRIPTS; i++)
		store_sha1_hex(store_sources[i], s->sha[i]);
	return s;
}

/* Closes c; deferred commands still on it are lost, and counted. */
static void
store_disconnect(struct store *s)
{
	if (s->c != NULL) {
		redisFree(s->c);
		s->c = NULL;
	}
	s->defer_dropped += s->pending;
	s->pending = 0;
	s->unsent = 0;
	memset(s->loaded, 0, sizeof s->loaded);
}

void
store_free(struct store *s)
{
	if (s == NULL)
		return;
	store_disconnect(s);
	store_drop_config(s);
	free(s);
}

void
store_reconfigure(struct store *s, const struct config *cfg)
{
	if (store_same_config(s, cfg))
		return;
	store_disconnect(s);
	store_drop_config(s);
	store_take_config(s, cfg);
	/* A new address deserves a try now, not after the old one's backoff. */
	s->backoff_ms = 0;
	s->retry_at_ms = 0;
}

unsigned long
store_error_count(const struct store *s)
{
	return s->errors;
}

unsigned long
store_defer_error_count(const struct store *s)
{
	return s->defer_errors;
}

unsigned long
store_defer_dropped_count(const struct store *s)
{
	return s->defer_dropped;
}

size_t
store_defer_pending(const struct store *s)
{
	return s->pending;
}

/*
 * Drops the connection after a failure, counts it and schedules the next
 * connect attempt.  what is a static reason for the caller.
 */
static void
store_fail(struct store *s, const char *what, const char *detail)
{
	static time_t last;

	store_disconnect(s);
	s->errors++;
	if (s->backoff_ms == 0)
		s->backoff_ms = STORE_BACKOFF_MIN_MS;
	else if (s->backoff_ms < STORE_BACKOFF_MAX_MS) {
		s->backoff_ms *= 2;
		if (s->backoff_ms > STORE_BACKOFF_MAX_MS)
			s->backoff_ms = STORE_BACKOFF_MAX_MS;
	}
	s->retry_at_ms = clock_mono_ms() + s->backoff_ms;
	log_ratelimited(&last, LOG_LVL_WARN, "%s%s%s (retry in %ld ms)", what,
	    detail ? ": " : "", detail ? detail : "", s->backoff_ms);
}

/* Why a read or write on the context failed; errno_saved from just after. */
static const char *
store_io_reason(const redisContext *c, int errno_saved)
{
	if (c->err == REDIS_ERR_IO &&
	    (errno_saved == EAGAIN || errno_saved == EWOULDBLOCK))
		return "redis: timed out";
	if (c->err == REDIS_ERR_EOF)
		return "redis: connection closed";
	if (c->err == REDIS_ERR_PROTOCOL)
		return "redis: protocol error";
	return "redis: connection error";
}

/* ---- batches ---- */

static const struct store_val store_nil;

void
store_batch_init(struct store_batch *b)
{
	memset(b, 0, sizeof *b);
}

void
store_batch_reset(struct store_batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (b->raw[i] != NULL)
			freeReplyObject(b->raw[i]);
	b->n = 0;
}

void
store_batch_cleanup(struct store_batch *b)
{
	if (b == NULL)
		return;
	store_batch_reset(b);
	free(b->raw);
	free(b->vals);
	store_batch_init(b);
}

const struct store_val *
store_batch_reply(const struct store_batch *b, size_t i)
{
	if (b == NULL || i >= b->n || b->vals == NULL)
		return &store_nil;
	return &b->vals[i];
}

/* Makes room for n raw replies (all NULL). */
static void
store_batch_size(struct store_batch *b, size_t n)
{
	if (n > b->raw_cap) {
		b->raw = xrealloc(b->raw, n * sizeof *b->raw);
		b->raw_cap = n;
	}
	memset(b->raw, 0, n * sizeof *b->raw);
	b->n = n;
}

/* How many views the elements of r's arrays need, at every depth. */
static size_t
store_count_elems(const redisReply *r)
{
	size_t i, n = 0;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY)
		return 0;
	for (i = 0; i < r->elements; i++)
		n += 1 + store_count_elems(r->element[i]);
	return n;
}

/* Fills v as a view of r; arrays take their elements from *next. */
static void
store_view(const redisReply *r, struct store_val *v, struct store_val *vals,
    size_t *next)
{
	struct store_val *elem;
	size_t i;

	memset(v, 0, sizeof *v);
	if (r == NULL)
		return;
	switch (r->type) {
	case REDIS_REPLY_INTEGER:
		v->type = STORE_INT;
		v->i = r->integer;
		break;
	case REDIS_REPLY_STRING:
	case REDIS_REPLY_STATUS:
	case REDIS_REPLY_ERROR:
		/* hiredis NUL-terminates every string it builds. */
		v->type = r->type == REDIS_REPLY_ERROR ? STORE_ERR : STORE_STR;
		v->str = r->str != NULL ? r->str : "";
		v->len = r->str != NULL ? r->len : 0;
		break;
	case REDIS_REPLY_ARRAY:
		v->type = STORE_ARR;
		v->n = r->elements;
		if (v->n == 0)
			break;
		elem = &vals[*next];
		*next += v->n;
		v->elem = elem;
		for (i = 0; i < v->n; i++)
			store_view(r->element[i], &elem[i], vals, next);
		break;
	default: v->type = STORE_NIL; break;
	}
}

/* Builds the views of every raw reply of b. */
static void
store_batch_views(struct store_batch *b)
{
	/* Both start past the top-level views: one counts, one places. */
	/* cppcheck-suppress duplicateAssignExpression */
	size_t i, total = b->n, next = b->n;

	for (i = 0; i < b->n; i++)
		total += store_count_elems(b->raw[i]);
	if (total > b->vals_cap) {
		b->vals = xrealloc(b->vals, total * sizeof *b->vals);
		b->vals_cap = total;
	}
	for (i = 0; i < b->n; i++)
		store_view(b->raw[i], &b->vals[i], b->vals, &next);
}

/* ---- reading and writing ---- */

/* Writes everything in c's output buffer.  -1 (with *why) on failure. */
static int
store_send_all(struct store *s, const char **why)
{
	int done = 0, saved;

	do {
		if (redisBufferWrite(s->c, &done) != REDIS_OK) {
			saved = errno;
			*why = store_io_reason(s->c, saved);
			return -1;
		}
	} while (!done);
	s->unsent = 0;
	return 0;
}

/*
 * Reads the next reply (never writing: see the top).  -1 on a broken or
 * timed-out connection.  The caller frees *out.
 */
static int
store_read(struct store *s, redisReply **out, const char **why)
{
	void *r = NULL;
	int saved;

	*out = NULL;
	if (redisGetReplyFromReader(s->c, &r) != REDIS_OK)
		goto fail;
	while (r == NULL) {
		if (redisBufferRead(s->c) != REDIS_OK ||
		    redisGetReplyFromReader(s->c, &r) != REDIS_OK)
			goto fail;
	}
	*out = r;
	return 0;
fail:
	saved = errno;
	*why = store_io_reason(s->c, saved);
	if (r != NULL)
		freeReplyObject(r);
	return -1;
}

/*
 * Reads and drops the replies owed to the first n pending deferred
 * commands, counting (and logging) the errors.  -1 (with *why) when the
 * connection broke.
 */
static int
store_drain(struct store *s, size_t n, const char **why)
{
	static time_t last;
	redisReply *r;

	while (n > 0) {
		if (store_read(s, &r, why) == -1)
			return -1;
		n--;
		s->pending--;
		if (r->type == REDIS_REPLY_ERROR) {
			s->defer_errors++;
			/* Loaded again before the next deferred script. */
			if (r->str != NULL &&
			    strncmp(r->str, "NOSCRIPT", 8) == 0)
				memset(s->loaded, 0, sizeof s->loaded);
			log_ratelimited(&last, LOG_LVL_WARN,
			    "redis: a deferred command failed: %.200s",
			    r->str != NULL ? r->str : "?");
		}
		freeReplyObject(r);
	}
	return 0;
}

/* AUTH and SELECT, pipelined, on a fresh connection. */
static int
store_handshake(struct store *s, const char **why)
{
	const char *argv[3];
	char db[16];
	redisReply *v[2] = {NULL, NULL};
	int argc, nsent = 0, i, rc = -1;

	if (s->addr.password != NULL) {
		argc = 0;
		argv[argc++] = "AUTH";
		if (s->addr.user != NULL)
			argv[argc++] = s->addr.user;
		argv[argc++] = s->addr.password;
		redisAppendCommandArgv(s->c, argc, argv, NULL);
		nsent++;
	}
	if (s->addr.db != 0) {
		snprintf(db, sizeof db, "%d", s->addr.db);
		argv[0] = "SELECT";
		argv[1] = db;
		redisAppendCommandArgv(s->c, 2, argv, NULL);
		nsent++;
	}
	if (nsent > 0 && store_send_all(s, why) == -1)
		goto out;
	for (i = 0; i < nsent; i++)
		if (store_read(s, &v[i], why) == -1)
			goto out;
	for (i = 0; i < nsent; i++) {
		if (v[i]->type == REDIS_REPLY_ERROR) {
			/* Never echo the reply: it might quote the password. */
			*why = (i == 0 && s->addr.password != NULL)
			    ? "redis: AUTH failed"
			    : "redis: SELECT failed";
			goto out;
		}
	}
	rc = 0;
out:
	for (i = 0; i < 2; i++)
		if (v[i] != NULL)
			freeReplyObject(v[i]);
	return rc;
}

/* Has Redis closed an idle connection, or sent something unasked? */
static int
store_stale(const redisContext *c)
{
	struct pollfd pfd;
	int n;

	if (c->err != 0)
		return 1;
	pfd.fd = c->fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	n = poll(&pfd, 1, 0);
	if (n == -1)
		return errno != EINTR;
	return n > 0;
}

/* Makes sure s->c is usable.  -1 (with *why) when it is not, for now. */
static int
store_ready(struct store *s, const char **why)
{
	struct timeval tv;
	const char *what;
	char detail[160];
	int rc = -1;

	if (s->c != NULL) {
		if (s->c->err == 0 &&
		    clock_mono_ms() - s->used_ms < STORE_FRESH_MS) {
			rc = 0;
			goto out;
		}
		/*
		 * Replies owed to deferred commands sent a while ago are here
		 * by now: read them, or the poll would take them for a close.
		 */
		if (s->c->err == 0 &&
		    store_drain(s, s->pending - s->unsent, &what) == 0 &&
		    !store_stale(s->c)) {
			rc = 0;
			goto out;
		}
		log_info(
		    "redis: server closed an idle connection, reconnecting");
		store_disconnect(s);
	}
	if (s->retry_at_ms != 0 && clock_mono_ms() < s->retry_at_ms) {
		*why = "redis: unavailable (backing off after an error)";
		goto out;
	}
	tv = store_tv(s->connect_timeout_ms);
	if (s->addr.unix_path != NULL)
		s->c = redisConnectUnixWithTimeout(s->addr.unix_path, tv);
	else
		s->c = redisConnectWithTimeout(
		    s->addr.host ? s->addr.host : "127.0.0.1", s->addr.port,
		    tv);
	if (s->c == NULL || s->c->err != 0) {
		*why = "redis: cannot connect";
		if (s->addr.unix_path != NULL)
			snprintf(detail, sizeof detail, "%s: %s",
			    s->addr.unix_path,
			    s->c ? s->c->errstr : "no memory");
		else
			snprintf(detail, sizeof detail, "%s:%d: %s",
			    s->addr.host ? s->addr.host : "127.0.0.1",
			    s->addr.port, s->c ? s->c->errstr : "no memory");
		store_fail(s, *why, detail);
		goto out;
	}
	if (redisSetTimeout(s->c, store_tv(s->command_timeout_ms)) !=
	    REDIS_OK) {
		*why = "redis: cannot set the command timeout";
		store_fail(s, *why, NULL);
		goto out;
	}
	if (store_handshake(s, &what) == -1) {
		*why = what;
		store_fail(s, what, NULL);
		goto out;
	}
	rc = 0;
out:
	return rc;
}

/* Queues one command (EVALSHA for a script) in the context's buffer. */
static void
store_append(struct store *s, const struct store_cmd *cmd)
{
	const char **argv;
	size_t *lens;
	char nkeys[16];
	int argc, i, off = 0;

	if (cmd->script < 0) {
		redisAppendCommandArgv(
		    s->c, cmd->argc, cmd->argv, cmd->argvlen);
		return;
	}
	argc = cmd->argc + 3;
	argv = xcalloc((size_t)argc, sizeof *argv);
	lens = xcalloc((size_t)argc, sizeof *lens);
	snprintf(nkeys, sizeof nkeys, "%d", cmd->nkeys);
	argv[off] = "EVALSHA";
	lens[off++] = 7;
	argv[off] = s->sha[cmd->script];
	lens[off++] = 40;
	argv[off] = nkeys;
	lens[off++] = strlen(nkeys);
	for (i = 0; i < cmd->argc; i++, off++) {
		argv[off] = cmd->argv[i];
		lens[off] =
		    cmd->argvlen ? cmd->argvlen[i] : strlen(cmd->argv[i]);
	}
	redisAppendCommandArgv(s->c, argc, argv, lens);
	free(argv);
	free(lens);
}

static void
store_append_load(struct store *s, int script)
{
	const char *argv[3] = {"SCRIPT", "LOAD", store_sources[script]};

	redisAppendCommandArgv(s->c, 3, argv, NULL);
}

static int
store_noscript(const struct store_cmd *cmd, const redisReply *r)
{
	return cmd->script >= 0 && r != NULL && r->type == REDIS_REPLY_ERROR &&
	    r->str != NULL && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

static int
store_valid(const struct store_cmd *cmds, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (cmds[i].script < -1 || cmds[i].script >= STORE_NSCRIPTS ||
		    cmds[i].argc < 0 ||
		    (cmds[i].argc > 0 && cmds[i].argv == NULL))
			return 0;
		if (cmds[i].script == -1 && cmds[i].argc == 0)
			return 0;
		if (cmds[i].script >= 0 &&
		    (cmds[i].nkeys < 0 || cmds[i].nkeys > cmds[i].argc))
			return 0;
	}
	return 1;
}

/*
 * The NOSCRIPT round trip: SCRIPT LOAD for each script that was missing,
 * then every command that got NOSCRIPT again, in one pipeline.
 */
static int
store_reload(struct store *s, const struct store_cmd *cmds, size_t n,
    struct store_batch *b, const char **why)
{
	int missing[STORE_NSCRIPTS] = {0};
	redisReply *v;
	size_t i;
	int j;

	for (i = 0; i < n; i++)
		if (store_noscript(&cmds[i], b->raw[i]))
			missing[cmds[i].script] = 1;
	for (j = 0; j < STORE_NSCRIPTS; j++)
		if (missing[j])
			store_append_load(s, j);
	for (i = 0; i < n; i++)
		if (store_noscript(&cmds[i], b->raw[i]))
			store_append(s, &cmds[i]);
	if (store_send_all(s, why) == -1)
		return -1;
	for (j = 0; j < STORE_NSCRIPTS; j++) {
		if (!missing[j])
			continue;
		if (store_read(s, &v, why) == -1)
			return -1;
		if (v->type != REDIS_REPLY_STRING ||
		    strcmp(v->str, s->sha[j]) != 0)
			log_error("redis: SCRIPT LOAD of %s failed: %s",
			    lua_script_names[j],
			    v->str ? v->str : "unexpected reply");
		else
			s->loaded[j] = 1;
		freeReplyObject(v);
	}
	for (i = 0; i < n; i++) {
		if (!store_noscript(&cmds[i], b->raw[i]))
			continue;
		freeReplyObject(b->raw[i]);
		b->raw[i] = NULL;
		if (store_read(s, &v, why) == -1)
			return -1;
		b->raw[i] = v;
	}
	return 0;
}

int
store_exec(struct store *s, const struct store_cmd *cmds, size_t n,
    struct store_batch *b, const char **why)
{
	const char *reason = NULL;
	redisReply *r;
	size_t i;
	int noscript = 0, rc = -1;

	store_batch_reset(b);
	if (n == 0) {
		rc = 0;
		goto out;
	}
	if (!store_valid(cmds, n)) {
		reason = "redis: invalid command";
		goto out;
	}
	if (store_ready(s, &reason) == -1)
		goto out;
	for (i = 0; i < n; i++)
		store_append(s, &cmds[i]);
	/* One write: what was deferred, then the batch. */
	if (store_send_all(s, &reason) == -1)
		goto broken;
	if (store_drain(s, s->pending, &reason) == -1)
		goto broken;
	store_batch_size(b, n);
	for (i = 0; i < n; i++) {
		if (store_read(s, &r, &reason) == -1)
			goto broken;
		b->raw[i] = r;
		if (store_noscript(&cmds[i], r))
			noscript = 1;
		else if (cmds[i].script >= 0)
			s->loaded[cmds[i].script] = 1;
	}
	if (noscript && store_reload(s, cmds, n, b, &reason) == -1)
		goto broken;
	store_batch_views(b);
	s->used_ms = clock_mono_ms();
	s->backoff_ms = 0;
	s->retry_at_ms = 0;
	rc = 0;
	goto out;
broken:
	store_fail(s, reason, NULL);
	store_batch_reset(b);
out:
	if (rc == -1 && why != NULL)
		*why = reason;
	return rc;
}

int
store_command(struct store *s, struct store_batch *b, const char **why,
    int argc, const char **argv)
{
	struct store_cmd cmd;

	cmd.script = -1;
	cmd.nkeys = 0;
	cmd.argc = argc;
	cmd.argv = argv;
	cmd.argvlen = NULL;
	return store_exec(s, &cmd, 1, b, why);
}

int
store_flush(struct store *s)
{
	const char *reason = NULL;
	int rc = -1;

	if (s->c == NULL || s->pending == 0) {
		rc = 0;
		goto out;
	}
	if (store_send_all(s, &reason) == -1 ||
	    store_drain(s, s->pending, &reason) == -1) {
		store_fail(s, reason, NULL);
		goto out;
	}
	s->used_ms = clock_mono_ms();
	rc = 0;
out:
	return rc;
}

int
store_send(struct store *s)
{
	const char *reason = NULL;
	int rc = -1;

	if (s->c == NULL || s->unsent == 0) {
		rc = 0;
		goto out;
	}
	if (store_send_all(s, &reason) == -1) {
		store_fail(s, reason, NULL);
		goto out;
	}
	rc = 0;
out:
	return rc;
}

int
store_defer(struct store *s, const struct store_cmd *cmds, size_t n)
{
	static time_t last;
	const char *reason = NULL;
	size_t i;
	int rc = -1;

	if (n == 0) {
		rc = 0;
		goto out;
	}
	if (!store_valid(cmds, n)) {
		reason = "redis: invalid deferred command";
		goto drop;
	}
	/* Only when nothing read the replies for very long: bound them. */
	if (s->pending + n > STORE_DEFER_MAX)
		(void)store_flush(s);
	if (store_ready(s, &reason) == -1)
		goto drop;
	for (i = 0; i < n; i++) {
		if (cmds[i].script >= 0 && !s->loaded[cmds[i].script]) {
			store_append_load(s, cmds[i].script);
			s->loaded[cmds[i].script] = 1;
			s->pending++;
			s->unsent++;
		}
		store_append(s, &cmds[i]);
		s->pending++;
		s->unsent++;
	}
	rc = 0;
	goto out;
drop:
	s->defer_dropped += n;
	log_ratelimited(&last, LOG_LVL_WARN, "%s (%zu deferred dropped)",
	    reason ? reason : "redis: unavailable", n);
out:
	return rc;
}

int
store_ping(struct store *s)
{
	const char *argv[] = {"PING"};
	const struct store_val *v;
	struct store_batch b;
	int up = 0;

	store_batch_init(&b);
	if (store_command(s, &b, NULL, 1, argv) == 0) {
		v = store_batch_reply(&b, 0);
		up = v->type == STORE_STR && strcmp(v->str, "PONG") == 0;
	}
	store_batch_cleanup(&b);
	return up;
}
