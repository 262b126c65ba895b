/*
 * store_probe -- exercises src/store.c against a real redis-server that it
 * starts itself in a temporary directory.  Built by `make check` (a
 * check_PROGRAMS entry) and run by tests/integration/test_store_probe.py;
 * by hand: `make tests/integration/store_probe && ./tests/integration/
 * store_probe` in the build directory.
 *
 * Checks: pipelined batches, EVALSHA with NOSCRIPT reload (first use and
 * after SCRIPT FLUSH), reconnect after a Redis restart without an error,
 * fast failure and backoff while Redis is down, a command timeout while
 * Redis is paused with DEBUG SLEEP (and no late reply read afterwards),
 * AUTH + SELECT, store_reconfigure and store_ping; and ratelimit_build ->
 * store_exec -> ratelimit_parse -> ratelimit_headers against the real
 * script (anonymous, key lookup, unknown key); replies as views that live
 * until the batch is reused; deferred commands (sent with the next batch
 * or at store_flush/store_send, their replies and errors dropped, lost
 * and counted when the connection breaks, never a cause of a failed
 * batch on an idle connection that Redis closed).
 *
 * A connection used within the last 250 ms is reused without polling for
 * a server-side close (store.c, STORE_FRESH_MS): the tests that restart or
 * reconfigure Redis wait that long first, as an idle gateway would have.
 * Prints "N passed, M failed"; exits 1 on any failure.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "hdrs.h"
#include "ratelimit.h"
#include "store.h"

static char tmpdir[64];
static struct store_batch B; /* the replies of the last exec */
static char sockpath[128];
static pid_t redis_pid = -1;
static int passed, failed;

#define CHECK(cond) do {						\
	if (cond) {							\
		passed++;						\
	} else {							\
		failed++;						\
		fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__,	\
		    #cond);						\
	}								\
} while (0)

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void
redis_start(const char *extra)
{
	char log[160];
	struct stat st;
	int i;

	unlink(sockpath);
	snprintf(log, sizeof log, "%s/redis.log", tmpdir);
	redis_pid = fork();
	if (redis_pid == 0) {
		freopen(log, "a", stdout);
		freopen(log, "a", stderr);
		execlp("redis-server", "redis-server", "--port", "0",
		    "--unixsocket", sockpath, "--save", "", "--appendonly",
		    "no", "--dir", tmpdir, "--enable-debug-command", "local",
		    extra ? "--requirepass" : NULL, extra, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 200; i++) {
		if (stat(sockpath, &st) == 0)
			break;
		sleep_ms(10);
	}
	sleep_ms(20);
}

static void
redis_stop(void)
{
	int status;

	if (redis_pid <= 0)
		return;
	kill(redis_pid, SIGTERM);
	waitpid(redis_pid, &status, 0);
	redis_pid = -1;
}

/* Runs redis-cli in the background, e.g. to DEBUG SLEEP the server. */
static pid_t
cli_bg(const char *a1, const char *a2, const char *a3)
{
	pid_t pid = fork();

	if (pid == 0) {
		freopen("/dev/null", "w", stdout);
		execlp("redis-cli", "redis-cli", "-s", sockpath, a1, a2, a3,
		    (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int
reply_is(const struct store_val *v, const char *s)
{
	return v->type == STORE_STR && strcmp(v->str, s) == 0;
}

/* The reply to command i of the last exec on B. */
#define R(i) store_batch_reply(&B, (i))

/* Past STORE_FRESH_MS: the next call polls the connection first. */
static void
idle(void)
{
	sleep_ms(300);
}

static void
config_init(struct config *cfg, int db, const char *password)
{
	static char url[256];

	memset(cfg, 0, sizeof *cfg);
	snprintf(url, sizeof url, "unix://%s?db=%d%s", sockpath, db,
	    password ? "&password=..." : "");
	cfg->redis.url = url;
	cfg->redis.parsed.unix_path = sockpath;
	cfg->redis.parsed.db = db;
	cfg->redis.parsed.password = (char *)password;
	cfg->redis.connect_timeout_ms = 200;
	cfg->redis.command_timeout_ms = 100;
	cfg->redis.key_prefix = "t:";
}

static void
test_pipeline(struct store *s)
{
	const char *a0[] = { "SET", "k", "v" };
	const char *a1[] = { "INCR", "n" };
	const char *a2[] = { "GET", "k" };
	const char *a3[] = { "LPUSH", "k", "x" };	/* WRONGTYPE */
	size_t l2[] = { 3, 1 };
	struct store_cmd cmds[4] = {
		{ -1, 0, 3, a0, NULL }, { -1, 0, 2, a1, NULL },
		{ -1, 0, 2, a2, l2 }, { -1, 0, 3, a3, NULL },
	};
	const char *why = NULL;
	const struct store_val *v;

	CHECK(store_exec(s, cmds, 4, &B, &why) == 0);
	CHECK(reply_is(R(0), "OK"));
	CHECK(R(1)->type == STORE_INT && R(1)->i == 1);
	CHECK(reply_is(R(2), "v"));
	CHECK(R(3)->type == STORE_ERR && strncmp(R(3)->str, "WRONGTYPE", 9) == 0);
	CHECK(R(4)->type == STORE_NIL);
	/* Views into the batch: a reused batch answers for the new exec. */
	v = R(2);
	CHECK(store_exec(s, &cmds[1], 1, &B, &why) == 0);
	CHECK(R(0)->type == STORE_INT && R(0)->i == 2);
	CHECK(R(1)->type == STORE_NIL);
	(void)v;
}

/* A large value comes back whole, as a view (no copy to check, but the
 * bytes and the length must be right, NULs included). */
static void
test_large_value(struct store *s)
{
	size_t n = 1 << 20, i;
	char *big = malloc(n);
	const char *set[] = { "SET", "big", big };
	size_t setlen[] = { 3, 3, n };
	const char *get[] = { "GET", "big" };
	const char *del[] = { "DEL", "big" };
	struct store_cmd cmds[2] = {
		{ -1, 0, 3, set, setlen }, { -1, 0, 2, get, NULL },
	};
	const char *why = NULL;
	int same = 1;

	for (i = 0; i < n; i++)
		big[i] = (char)(i * 7);
	CHECK(store_exec(s, cmds, 2, &B, &why) == 0);
	CHECK(R(1)->type == STORE_STR && R(1)->len == n);
	if (R(1)->type == STORE_STR && R(1)->len == n) {
		same = memcmp(R(1)->str, big, n) == 0 && R(1)->str[n] == '\0';
		CHECK(same);
	}
	CHECK(store_command(s, &B, &why, 2, del) == 0);
	free(big);
}

/* A ratelimit.lua call: sliding window, limit 2 per minute. */
static int
rl_call(struct store *s, const char *counter, long long *status,
    const char **why)
{
	const char *argv[] = { "t:{x}:rec", counter, "1700000000000000", "0",
	    "sliding_window", "0", "1", "route", "0", "sliding_window", "1",
	    "60", "2", "0", "2" };
	struct store_cmd cmd = { STORE_SCRIPT_RATELIMIT, 2, 15, argv, NULL };
	const struct store_val *r;
	int rc;

	rc = store_exec(s, &cmd, 1, &B, why);
	r = R(0);
	*status = -1;
	if (rc == 0 && r->type == STORE_ARR && r->n == 14 &&
	    r->elem[0].type == STORE_INT)
		*status = r->elem[0].i;
	else if (rc == 0 && r->type == STORE_ERR)
		fprintf(stderr, "script error: %s\n", r->str);
	return rc;
}

static void
test_scripts(struct store *s)
{
	const char *flush[] = { "SCRIPT", "FLUSH" };
	const char *two[] = { "t:{x}:rec", "t:{x}:c2", "1700000000000000",
	    "0", "sliding_window", "0", "0" };
	struct store_cmd cmds[3] = {
		{ STORE_SCRIPT_RATELIMIT, 2, 7, two, NULL },
		{ -1, 0, 2, (const char *[]){ "ECHO", "mid" }, NULL },
		{ STORE_SCRIPT_RATELIMIT, 2, 7, two, NULL },
	};
	const char *why = NULL;
	long long st;
	unsigned long e0 = store_error_count(s);

	/* Empty script cache on first use: NOSCRIPT is invisible. */
	CHECK(rl_call(s, "t:{x}:c", &st, &why) == 0 && st == 0);
	CHECK(rl_call(s, "t:{x}:c", &st, &why) == 0 && st == 0);
	CHECK(rl_call(s, "t:{x}:c", &st, &why) == 0 && st == 1);
	CHECK(store_command(s, &B, &why, 2, flush) == 0 && reply_is(R(0), "OK"));
	CHECK(rl_call(s, "t:{x}:c", &st, &why) == 0 && st == 1);
	/* Two script calls in one batch after a flush: both retried. */
	CHECK(store_command(s, &B, &why, 2, flush) == 0);
	CHECK(store_exec(s, cmds, 3, &B, &why) == 0);
	CHECK(R(0)->type == STORE_ARR && R(0)->n == 5);
	CHECK(reply_is(R(1), "mid"));
	CHECK(R(2)->type == STORE_ARR && R(2)->n == 5);
	CHECK(store_error_count(s) == e0);
}

static void
test_restart(struct store *s)
{
	unsigned long e0 = store_error_count(s);
	const char *why = NULL;
	long long st;

	idle();
	redis_stop();
	redis_start(NULL);
	/* Idle connection closed by the restart, scripts gone: no error. */
	CHECK(rl_call(s, "t:{x}:c", &st, &why) == 0 && st == 0);
	CHECK(store_error_count(s) == e0);
	CHECK(store_ping(s) == 1);
}

static void
test_down_and_backoff(struct store *s)
{
	const char *why = NULL;
	unsigned long e0;
	long long t0, st;
	int n;

	redis_stop();
	e0 = store_error_count(s);
	CHECK(rl_call(s, "t:{x}:c", &st, &why) == -1);
	CHECK(why != NULL && strstr(why, "connect") != NULL);
	CHECK(store_error_count(s) == e0 + 1);
	/* Within the first 100 ms: refused at once, nothing counted. */
	t0 = now_ms();
	CHECK(rl_call(s, "t:{x}:c", &st, &why) == -1);
	CHECK(why != NULL && strstr(why, "backing off") != NULL);
	CHECK(now_ms() - t0 < 20);
	CHECK(store_error_count(s) == e0 + 1);
	CHECK(store_ping(s) == 0);
	/* Attempts are spaced 100, 200, 400 ms ...: few in 700 ms. */
	t0 = now_ms();
	n = 0;
	while (now_ms() - t0 < 700) {
		rl_call(s, "t:{x}:c", &st, &why);
		sleep_ms(5);
		n++;
	}
	CHECK(store_error_count(s) - e0 >= 3 && store_error_count(s) - e0 <= 4);
	fprintf(stderr, "  down: %d calls in 700 ms, %lu connect attempts\n",
	    n, store_error_count(s) - e0);
	redis_start(NULL);
	/* The next attempt is at most 800 ms away now. */
	t0 = now_ms();
	while (rl_call(s, "t:{x}:c", &st, &why) == -1 && now_ms() - t0 < 2000)
		sleep_ms(10);
	CHECK(st == 0);
	fprintf(stderr, "  up again after %lld ms\n", now_ms() - t0);
}

static void
test_timeout(struct store *s)
{
	const char *e1[] = { "ECHO", "first" };
	const char *e2[] = { "ECHO", "second" };
	const char *why = NULL;
	unsigned long e0 = store_error_count(s);
	long long t0;
	pid_t cli;
	int status;

	CHECK(store_ping(s) == 1);
	/* Redis sleeps well past the command timeout, and the probe asks
	 * only once it surely sleeps (a loaded machine may start redis-cli
	 * late): the bound checked is the timeout's, not the sleep's. */
	cli = cli_bg("DEBUG", "SLEEP", "1.5");
	sleep_ms(300);
	t0 = now_ms();
	CHECK(store_command(s, &B, &why, 2, e1) == -1);
	CHECK(why != NULL && strstr(why, "timed out") != NULL);
	CHECK(now_ms() - t0 < 800);
	CHECK(R(0)->type == STORE_NIL);
	CHECK(store_error_count(s) == e0 + 1);
	fprintf(stderr, "  timeout after %lld ms: %s\n", now_ms() - t0,
	    why ? why : "?");
	waitpid(cli, &status, 0);
	sleep_ms(150);
	/* A new connection: the late "first" is never read. */
	CHECK(store_command(s, &B, &why, 2, e2) == 0 && reply_is(R(0), "second"));
}

#define PHASH "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* One request through build, exec, parse; returns the status or -1. */
static int
rl_request(struct store *s, const struct rl_query *q, struct rl_result *res,
    struct hdrs *h)
{
	struct buf args;
	const char *argv[64];
	size_t argvlen[64];
	struct store_cmd cmd;
	const char *why = NULL;
	int argc, nkeys, rc = -1;

	buf_init(&args);
	nkeys = ratelimit_build(q, &args, argv, argvlen, 64, &argc);
	if (nkeys < 1)
		goto out;
	cmd.script = STORE_SCRIPT_RATELIMIT;
	cmd.nkeys = nkeys;
	cmd.argc = argc;
	cmd.argv = argv;
	cmd.argvlen = argvlen;
	if (store_exec(s, &cmd, 1, &B, &why) == -1)
		goto out;
	if (R(0)->type == STORE_ERR)
		fprintf(stderr, "script error: %s\n", R(0)->str);
	if (ratelimit_parse(R(0), res) == -1)
		goto out;
	ratelimit_headers(res, h);
	rc = (int)res->status;
out:
	buf_cleanup(&args);
	return rc;
}

static void
test_ratelimit_e2e(struct store *s, struct config *cfg)
{
	struct route route;
	struct rl_policy kp;
	struct rl_query q;
	struct rl_result res;
	struct hdrs h;
	const char *why = NULL;
	const char *hset[] = { "HSET", "t:{k:" PHASH "}:rec", "id",
	    "00000000deadbeef", "name", "probe", "expires", "0", "revoked",
	    "0", "alg", "", "rps", "0", "rpm", "1", "rph", "0", "rpd", "0",
	    "burst", "0" };

	memset(&route, 0, sizeof route);
	memcpy(route.route_id, "0011223344556677", 17);
	cfg->redis.key_prefix = "t:";
	cfg->rate_limit.present = 1;
	cfg->rate_limit.name = "default";
	cfg->rate_limit.algorithm = RL_GCRA;
	cfg->rate_limit.limit[RL_MINUTE] = 2;
	memset(&q, 0, sizeof q);
	q.cfg = cfg;
	q.route = &route;
	q.tag = "i:0123456789abcdef0123456789abcdef";

	hdrs_init(&h);
	CHECK(rl_request(s, &q, &res, &h) == RL_ADMITTED);
	CHECK(res.n == 1 && strcmp(res.win[0].policy, "default") == 0);
	CHECK(res.win[0].remaining == 1 && res.win[0].burst == 2);
	CHECK(rl_request(s, &q, &res, &h) == RL_ADMITTED);
	hdrs_reset(&h);
	CHECK(rl_request(s, &q, &res, &h) == RL_REJECTED);
	CHECK(hdrs_get(&h, "Retry-After") != NULL &&
	    strcmp(hdrs_get(&h, "Retry-After"), "30") == 0);
	CHECK(hdrs_get(&h, "RateLimit-Policy") != NULL && strcmp(hdrs_get(&h,
	    "RateLimit-Policy"), "\"default-minute\";q=2;w=60;apigw-burst=2")
	    == 0);
	fprintf(stderr, "  RateLimit: %s\n", hdrs_get(&h, "RateLimit"));
	ratelimit_result_cleanup(&res);

	/* Lookup mode: unknown key, then a key with its own policy. */
	q.tag = "k:" PHASH;
	q.key_hash = PHASH;
	q.lookup_key = 1;
	CHECK(rl_request(s, &q, &res, &h) == RL_KEY_UNKNOWN);
	CHECK(res.n == 0 && !res.have_record);
	CHECK(store_command(s, &B, &why, 22, hset) == 0 && R(0)->type == STORE_INT);
	CHECK(rl_request(s, &q, &res, &h) == RL_ADMITTED);
	CHECK(res.have_record && strcmp(res.record.id, "00000000deadbeef") == 0);
	CHECK(res.record.policy.present && res.record.policy.limit[RL_MINUTE] == 1);
	/* The key's own policy replaced the default (flag 2). */
	CHECK(res.n == 1 && strcmp(res.win[0].policy, "key") == 0 &&
	    res.win[0].algorithm == RL_GCRA);
	ratelimit_result_cleanup(&res);
	kp = res.record.policy;
	CHECK(rl_request(s, &q, &res, &h) == RL_REJECTED);
	ratelimit_result_cleanup(&res);
	/* A key-cache hit: the C side passes the key policy itself. */
	q.lookup_key = 0;
	q.key_policy = &kp;
	CHECK(rl_request(s, &q, &res, &h) == RL_REJECTED);
	CHECK(res.n == 1 && strcmp(res.win[0].policy, "key") == 0);
	hdrs_cleanup(&h);
}

/* CLIENT ID of the store's connection (-1 on failure). */
static long long
client_id(struct store *s)
{
	const char *cid[] = { "CLIENT", "ID" };
	const char *why = NULL;

	if (store_command(s, &B, &why, 2, cid) != 0 || R(0)->type != STORE_INT)
		return -1;
	return R(0)->i;
}

static void
test_defer(struct store *s)
{
	const char *incr[] = { "INCR", "d:n" };
	const char *set[] = { "SET", "d:s", "x" };
	const char *lpush[] = { "LPUSH", "d:s", "y" };	/* WRONGTYPE */
	const char *get[] = { "GET", "d:n" };
	const char *flush[] = { "SCRIPT", "FLUSH" };
	const char *exists[] = { "EXISTS", "t:{x}:dc" };
	const char *rl[] = { "t:{x}:rec", "t:{x}:dc", "1700000000000000", "0",
	    "sliding_window", "0", "1", "route", "0", "sliding_window", "1",
	    "60", "2", "0", "2" };
	struct store_cmd d[3] = {
		{ -1, 0, 2, incr, NULL }, { -1, 0, 3, set, NULL },
		{ -1, 0, 3, lpush, NULL },
	};
	struct store_cmd g = { -1, 0, 2, get, NULL };
	struct store_cmd script = { STORE_SCRIPT_RATELIMIT, 2, 15, rl, NULL };
	unsigned long e0 = store_error_count(s);
	unsigned long de0 = store_defer_error_count(s);
	unsigned long dd0 = store_defer_dropped_count(s);
	const char *why = NULL;
	long long id1, id2;
	char argbuf[8];
	const char *gone[] = { "INCR", argbuf };

	/* Queued, then sent ahead of the next batch: its GET sees them. */
	CHECK(store_ping(s) == 1);
	CHECK(store_defer(s, d, 2) == 0);
	CHECK(store_defer(s, d, 1) == 0);
	CHECK(store_defer_pending(s) == 3);
	CHECK(store_exec(s, &g, 1, &B, &why) == 0 && reply_is(R(0), "2"));
	CHECK(store_defer_pending(s) == 0);
	CHECK(store_defer_error_count(s) == de0);
	/* An error reply is counted; the batch's own replies stay in place. */
	CHECK(store_defer(s, &d[2], 1) == 0);
	CHECK(store_defer(s, d, 1) == 0);
	CHECK(store_exec(s, &g, 1, &B, &why) == 0 && reply_is(R(0), "3"));
	CHECK(store_defer_error_count(s) == de0 + 1);
	/* store_flush: sent and answered now. */
	CHECK(store_defer(s, d, 1) == 0);
	CHECK(store_flush(s) == 0);
	CHECK(store_defer_pending(s) == 0);
	CHECK(store_exec(s, &g, 1, &B, &why) == 0 && reply_is(R(0), "4"));
	/* argv may die once store_defer returns. */
	snprintf(argbuf, sizeof argbuf, "d:n");
	CHECK(store_defer(s, &(struct store_cmd){ -1, 0, 2, gone, NULL }, 1)
	    == 0);
	memset(argbuf, 'z', sizeof argbuf - 1);
	CHECK(store_exec(s, &g, 1, &B, &why) == 0 && reply_is(R(0), "5"));
	/*
	 * A deferred script after a SCRIPT FLUSH the store did not see: that
	 * one call gets NOSCRIPT (counted; its arguments are gone), the next
	 * is preceded by SCRIPT LOAD and runs.
	 */
	CHECK(store_command(s, &B, &why, 2, flush) == 0);
	CHECK(store_defer(s, &script, 1) == 0);
	CHECK(store_flush(s) == 0);
	CHECK(store_defer_error_count(s) == de0 + 2);
	CHECK(store_defer(s, &script, 1) == 0);
	CHECK(store_defer_pending(s) == 2);
	CHECK(store_flush(s) == 0);
	CHECK(store_defer_error_count(s) == de0 + 2);
	CHECK(store_command(s, &B, &why, 2, exists) == 0 &&
	    R(0)->type == STORE_INT && R(0)->i == 1);
	/* store_send: written now, answers read by the next batch even on
	 * an idle connection (not mistaken for a server-side close). */
	id1 = client_id(s);
	CHECK(store_defer(s, d, 1) == 0);
	CHECK(store_send(s) == 0);
	CHECK(store_defer_pending(s) == 1);
	idle();
	CHECK(store_exec(s, &g, 1, &B, &why) == 0 && reply_is(R(0), "6"));
	id2 = client_id(s);
	CHECK(id1 == id2 && id1 > 0);
	CHECK(store_defer_dropped_count(s) == dd0);
	CHECK(store_defer_error_count(s) == de0 + 2);
	CHECK(store_error_count(s) == e0);

	/* Redis restarted under queued commands: dropped and counted; the
	 * next batch reconnects without an error. */
	CHECK(store_defer(s, d, 2) == 0);
	idle();
	redis_stop();
	redis_start(NULL);
	CHECK(store_exec(s, &g, 1, &B, &why) == 0 && R(0)->type == STORE_NIL);
	CHECK(store_defer_dropped_count(s) == dd0 + 2);
	CHECK(store_error_count(s) == e0);
	/* Sent, then the restart: the batch still works. */
	CHECK(store_defer(s, d, 1) == 0);
	CHECK(store_send(s) == 0);
	idle();
	redis_stop();
	redis_start(NULL);
	CHECK(store_exec(s, &g, 1, &B, &why) == 0 && R(0)->type == STORE_NIL);
	CHECK(store_error_count(s) == e0);
	CHECK(store_defer_pending(s) == 0);
	/* Redis down: dropped at once, counted, never queued. */
	redis_stop();
	dd0 = store_defer_dropped_count(s);
	CHECK(store_defer(s, d, 2) == -1 || store_flush(s) == -1);
	CHECK(store_defer_dropped_count(s) == dd0 + 2);
	CHECK(store_defer_pending(s) == 0);
	CHECK(store_defer(s, d, 1) == -1);
	CHECK(store_defer_dropped_count(s) == dd0 + 3);
	redis_start(NULL);
	/* Past the backoff, the store comes back. */
	{
		long long t0 = now_ms();

		while (store_exec(s, &g, 1, &B, &why) == -1 &&
		    now_ms() - t0 < 2000)
			sleep_ms(10);
		CHECK(store_ping(s) == 1);
	}
}

static void
test_auth_select_reconfigure(struct store **sp)
{
	struct config cfg;
	const char *why = NULL;
	const char *set[] = { "SET", "where", "db3" };
	const char *get[] = { "GET", "where" };
	const char *cid[] = { "CLIENT", "ID" };
	long long id1, id2;
	struct store *s;

	idle();
	redis_stop();
	redis_start("s3cret");
	config_init(&cfg, 3, NULL);
	store_reconfigure(*sp, &cfg);
	s = *sp;
	CHECK(store_command(s, &B, &why, 3, set) == -1);
	CHECK(why != NULL && strstr(why, "AUTH") == NULL);	/* NOAUTH on SELECT */
	fprintf(stderr, "  without password: %s\n", why ? why : "?");
	config_init(&cfg, 3, "s3cret");
	store_reconfigure(s, &cfg);	/* new section: no backoff */
	CHECK(store_command(s, &B, &why, 3, set) == 0 && reply_is(R(0), "OK"));
	CHECK(store_command(s, &B, &why, 2, cid) == 0 && R(0)->type == STORE_INT);
	id1 = R(0)->i;
	/* The same section again: the connection stays. */
	store_reconfigure(s, &cfg);
	CHECK(store_command(s, &B, &why, 2, cid) == 0 && R(0)->type == STORE_INT);
	id2 = R(0)->i;
	CHECK(id1 == id2);
	/* Another db: a new connection, and the key is not there. */
	config_init(&cfg, 0, "s3cret");
	store_reconfigure(s, &cfg);
	CHECK(store_command(s, &B, &why, 2, get) == 0 && R(0)->type == STORE_NIL);
	config_init(&cfg, 3, "s3cret");
	store_reconfigure(s, &cfg);
	CHECK(store_command(s, &B, &why, 2, get) == 0 && reply_is(R(0), "db3"));
	/* A wrong password: AUTH failed, without echoing it. */
	config_init(&cfg, 3, "wrong");
	store_reconfigure(s, &cfg);
	CHECK(store_command(s, &B, &why, 2, get) == -1);
	CHECK(why != NULL && strcmp(why, "redis: AUTH failed") == 0);
}

int
main(void)
{
	struct config cfg;
	struct store *s;

	signal(SIGPIPE, SIG_IGN);
	snprintf(tmpdir, sizeof tmpdir, "/tmp/store_probe.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(sockpath, sizeof sockpath, "%s/redis.sock", tmpdir);
	store_batch_init(&B);
	redis_start(NULL);
	config_init(&cfg, 0, NULL);
	s = store_new(&cfg);

	fprintf(stderr, "pipeline\n");
	test_pipeline(s);
	fprintf(stderr, "scripts\n");
	test_scripts(s);
	fprintf(stderr, "restart\n");
	test_restart(s);
	fprintf(stderr, "down and backoff\n");
	test_down_and_backoff(s);
	fprintf(stderr, "timeout\n");
	test_timeout(s);
	fprintf(stderr, "ratelimit end to end\n");
	test_ratelimit_e2e(s, &cfg);
	fprintf(stderr, "large value\n");
	test_large_value(s);
	fprintf(stderr, "deferred commands\n");
	test_defer(s);
	fprintf(stderr, "auth, select, reconfigure\n");
	test_auth_select_reconfigure(&s);

	store_batch_cleanup(&B);
	store_free(s);
	store_free(NULL);
	redis_stop();
	{
		char cmd[128];

		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmpdir);
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
