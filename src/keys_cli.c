/*
 * apigw-keys -- manage API keys in the gateway's Redis.
 *
 * The secret is printed once, on stdout, by "create", and nowhere else;
 * Redis holds only its SHA-256.  Everything else a person reads (details,
 * errors) goes to stderr, and every error is one line "apigw-keys: ...".
 *
 * Exit status: 0 success; 1 usage error, invalid value, unknown key id or
 * config error; 2 Redis unreachable or failing.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "buf.h"
#include "cli.h"
#include "config.h"
#include "keys.h"
#include "keys_args.h"
#include "store.h"
#include "xalloc.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

#define PROG "apigw-keys"

static const char cli_usage[] =
    "usage: apigw-keys [--config FILE] COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  create NAME [POLICY] [--expires-in DURATION]\n"
    "                      create a key; prints the key (only) on stdout, "
    "once\n"
    "  list [--json]       list every key (the secret is never shown)\n"
    "  show ID [--json]    show one key\n"
    "  update ID [POLICY] [--no-policy] [--expires-in DURATION] [--no-expiry]\n"
    "                      change only what is given; --no-policy removes the\n"
    "                      key's own policy, --no-expiry makes it never "
    "expire\n"
    "  revoke ID           revoke a key (it stops working within\n"
    "                      api_keys.cache_ttl_s seconds)\n"
    "  delete ID           delete a key and its rate-limit counters\n"
    "\n"
    "POLICY (the key's own rate limit, counted across all routes):\n"
    "  --requests-per-second N  --requests-per-minute N\n"
    "  --requests-per-hour N    --requests-per-day N        (N: "
    "1..1000000000)\n"
    "  --burst N                token_bucket/gcra capacity of the shortest "
    "window\n"
    "  --algorithm A            sliding_window, token_bucket, fixed_window or "
    "gcra\n"
    "                           (default: the gateway's rate_limit.algorithm)\n"
    "\n"
    "DURATION: N seconds, or N followed by s, m, h or d (90s, 12h, 30d);\n"
    "          1s to 36500d.\n"
    "\n"
    "Options:\n"
    "  --config FILE   gateway config (else $APIGW_CONFIG, else\n"
    "                  " SYSCONFDIR "/apigw/apigw.conf)\n"
    "  --help          show this help\n"
    "  --version       show the version\n"
    "\n"
    "Exit status: 0 ok; 1 usage error, bad value, unknown id or bad config;\n"
    "2 Redis unreachable.\n";

/* Reports an unknown id without ever echoing raw control characters. */
static int
cli_not_found(const char *id)
{
	if (keys_id_ok(id))
		cli_error(PROG, "no key with id %s", id);
	else
		cli_error(PROG,
		    "no key with id '%.40s' (an id is %d lower-case hex "
		    "digits)",
		    id, KEYS_ID_LEN);
	return CLI_USAGE;
}

/* Where Redis is, for error messages (never the URL: it may hold a password).
 */
static char cli_redis_where[160];

/* Maps a keys_* return code to the exit status, reporting failures. */
static int
cli_result(int rc, const char *id, const char *why)
{
	if (rc == 0)
		return CLI_OK;
	if (rc == 1)
		return cli_not_found(id);
	cli_error(PROG, "%s (%s)", why != NULL ? why : "redis: failed",
	    cli_redis_where);
	return CLI_REDIS;
}

/* Returns name with control characters as '?' (for a terminal), in out. */
static const char *
cli_safe(const char *name, struct buf *out)
{
	size_t i;

	buf_reset(out);
	for (i = 0; name[i] != '\0'; i++)
		buf_putc(out,
		    ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
		        ? '?'
		        : name[i]);
	return buf_cstr(out);
}

/* Formats t as "2024-05-01T12:00:00Z" into out. */
static const char *
cli_time(long long t, char *out, size_t outlen)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outlen, "%lld", t);
	return out;
}

static const char *
cli_status(const struct key_record *r, time_t now)
{
	if (r->revoked)
		return "revoked";
	if (r->expires != 0 && r->expires <= (long long)now)
		return "expired";
	return "active";
}

/* Appends "token_bucket 10/minute 100/hour burst 20" (or "default"). */
static void
cli_policy_summary(const struct rl_policy *p, struct buf *out)
{
	int w;

	if (!p->present) {
		buf_puts(out, "default");
		return;
	}
	buf_puts(out,
	    p->algorithm_set ? rl_algorithm_names[p->algorithm]
	                     : "(default algorithm)");
	for (w = 0; w < RL_NWINDOWS; w++) {
		if (p->limit[w] > 0)
			buf_printf(
			    out, " %ld/%s", p->limit[w], rl_window_names[w]);
	}
	if (p->burst_size > 0)
		buf_printf(out, " burst %ld", p->burst_size);
}

static struct json_object *
cli_record_json(const struct key_record *r)
{
	static const char *const fields[RL_NWINDOWS] = {"requests_per_second",
	    "requests_per_minute", "requests_per_hour", "requests_per_day"};
	struct json_object *o, *p = NULL;
	int w;

	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(r->id));
	json_object_object_add(o, "name", json_object_new_string(r->name));
	json_object_object_add(o, "created", json_object_new_int64(r->created));
	json_object_object_add(o, "expires", json_object_new_int64(r->expires));
	json_object_object_add(
	    o, "revoked", json_object_new_boolean(r->revoked != 0));
	if (r->policy.present) {
		p = json_object_new_object();
		json_object_object_add(p, "algorithm",
		    r->policy.algorithm_set
		        ? json_object_new_string(
		              rl_algorithm_names[r->policy.algorithm])
		        : NULL);
		for (w = 0; w < RL_NWINDOWS; w++) {
			if (r->policy.limit[w] > 0)
				json_object_object_add(p, fields[w],
				    json_object_new_int64(r->policy.limit[w]));
		}
		json_object_object_add(p, "burst_size",
		    json_object_new_int64(r->policy.burst_size));
	}
	json_object_object_add(o, "policy", p);
	return o;
}

static void
cli_print_json(struct json_object *o)
{
	puts(json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
	        JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* Fills r->policy from the policy flags of a. */
static void
cli_apply_policy(const struct keys_args *a, struct rl_policy *p)
{
	int w;

	if (a->no_policy) {
		free(p->name);
		memset(p, 0, sizeof *p);
		return;
	}
	for (w = 0; w < RL_NWINDOWS; w++) {
		if (a->limit[w] > 0)
			p->limit[w] = a->limit[w];
	}
	if (a->burst > 0)
		p->burst_size = a->burst;
	if (a->algorithm_set) {
		p->algorithm_set = 1;
		p->algorithm = a->algorithm;
	}
	p->present = 0;
	for (w = 0; w < RL_NWINDOWS; w++) {
		if (p->limit[w] > 0)
			p->present = 1;
	}
}

static int
cli_create(struct store *s, const char *prefix, const struct keys_args *a)
{
	struct key_record r;
	struct buf pol;
	char secret[KEYS_SECRET_LEN + 1], when[64];
	const char *why = NULL, *ignored = NULL;
	int rc, werr;

	memset(&r, 0, sizeof r);
	buf_init(&pol);
	r.name = xstrdup(a->name);
	r.created = (long long)time(NULL);
	if (a->expires_in_s > 0)
		r.expires = r.created + a->expires_in_s;
	cli_apply_policy(a, &r.policy);

	rc = keys_create(s, prefix, &r, secret, &why);
	if (rc != 0) {
		rc = cli_result(rc == 1 ? 2 : rc, NULL, why);
		goto out;
	}

	/* A key nobody could read is useless: take it back. */
	signal(SIGPIPE, SIG_IGN);
	werr = printf("%s\n", secret) < 0 || fflush(stdout) == EOF;
	if (werr) {
		cli_error(PROG,
		    "cannot write the key to stdout: %s; key not kept",
		    strerror(errno));
		(void)keys_delete(s, prefix, r.id, &ignored);
		rc = CLI_USAGE;
		goto out;
	}
	cli_policy_summary(&r.policy, &pol);
	fprintf(stderr,
	    "created key id %s, name \"%s\", expires %s, "
	    "policy %s\n",
	    r.id, r.name,
	    r.expires == 0 ? "never" : cli_time(r.expires, when, sizeof when),
	    buf_cstr(&pol));
	fprintf(stderr, "the key is shown only this once: store it now\n");
	rc = CLI_OK;
out:
	explicit_bzero(secret, sizeof secret);
	buf_cleanup(&pol);
	key_record_cleanup(&r);
	return rc;
}

static int
cli_list(struct store *s, const char *prefix, const struct keys_args *a)
{
	struct key_record *recs = NULL;
	struct json_object *arr;
	struct buf pol, nm;
	char created[64], expires[64];
	const char *why = NULL;
	time_t now = time(NULL);
	size_t n = 0, i, len;
	int namew = 4, rc;

	buf_init(&pol);
	buf_init(&nm);
	rc = keys_list(s, prefix, &recs, &n, &why);
	if (rc != 0) {
		rc = cli_result(2, NULL, why);
		goto out;
	}
	if (a->json) {
		arr = json_object_new_array();
		for (i = 0; i < n; i++)
			json_object_array_add(arr, cli_record_json(&recs[i]));
		cli_print_json(arr);
		json_object_put(arr);
		rc = CLI_OK;
		goto out;
	}
	for (i = 0; i < n; i++) {
		len = strlen(recs[i].name);
		if (len > (size_t)namew)
			namew = len > KEYS_ARGS_NAME_MAX ? KEYS_ARGS_NAME_MAX
			                                 : (int)len;
	}
	printf("%-16s  %-*s  %-20s  %-20s  %-7s  %s\n", "ID", namew, "NAME",
	    "CREATED", "EXPIRES", "STATUS", "POLICY");
	for (i = 0; i < n; i++) {
		buf_reset(&pol);
		cli_policy_summary(&recs[i].policy, &pol);
		printf("%-16s  %-*.*s  %-20s  %-20s  %-7s  %s\n", recs[i].id,
		    namew, namew, cli_safe(recs[i].name, &nm),
		    cli_time(recs[i].created, created, sizeof created),
		    recs[i].expires == 0
		        ? "never"
		        : cli_time(recs[i].expires, expires, sizeof expires),
		    cli_status(&recs[i], now), buf_cstr(&pol));
	}
	rc = CLI_OK;
out:
	for (i = 0; i < n; i++)
		key_record_cleanup(&recs[i]);
	free(recs);
	buf_cleanup(&pol);
	buf_cleanup(&nm);
	return rc;
}

static int
cli_show(struct store *s, const char *prefix, const struct keys_args *a)
{
	struct key_record r;
	struct json_object *o;
	struct buf nm;
	char when[64];
	const char *why = NULL;
	int rc, w;

	rc = keys_get(s, prefix, a->id, &r, &why);
	if (rc != 0)
		return cli_result(rc, a->id, why);
	buf_init(&nm);
	if (a->json) {
		o = cli_record_json(&r);
		cli_print_json(o);
		json_object_put(o);
		goto out;
	}
	printf("id:       %s\n", r.id);
	printf("name:     %s\n", cli_safe(r.name, &nm));
	printf("created:  %s (%lld)\n", cli_time(r.created, when, sizeof when),
	    r.created);
	if (r.expires == 0)
		printf("expires:  never\n");
	else
		printf("expires:  %s (%lld)\n",
		    cli_time(r.expires, when, sizeof when), r.expires);
	printf("status:   %s\n", cli_status(&r, time(NULL)));
	if (!r.policy.present) {
		printf("policy:   none (the gateway's route or default policy "
		       "applies)\n");
		goto out;
	}
	printf("policy:   own (counted across all routes)\n");
	printf("  algorithm: %s\n",
	    r.policy.algorithm_set ? rl_algorithm_names[r.policy.algorithm]
	                           : "(the default policy's)");
	for (w = 0; w < RL_NWINDOWS; w++) {
		if (r.policy.limit[w] > 0)
			printf("  requests_per_%s: %ld\n", rl_window_names[w],
			    r.policy.limit[w]);
	}
	printf("  burst_size: %ld%s\n", r.policy.burst_size,
	    r.policy.burst_size == 0 ? " (the shortest window's limit)" : "");
out:
	buf_cleanup(&nm);
	key_record_cleanup(&r);
	return CLI_OK;
}

/* update and revoke: read, change, write back. */
static int
cli_update(
    struct store *s, const char *prefix, const struct keys_args *a, int revoke)
{
	struct key_record r;
	const char *why = NULL;
	int rc;

	rc = keys_get(s, prefix, a->id, &r, &why);
	if (rc != 0)
		return cli_result(rc, a->id, why);
	if (revoke) {
		r.revoked = 1;
	} else {
		if (keys_args_has_policy(a))
			cli_apply_policy(a, &r.policy);
		if (!r.policy.present && (a->burst > 0 || a->algorithm_set)) {
			cli_error(PROG,
			    "update: key %s has no own policy: give at "
			    "least one --requests-per-* flag",
			    r.id);
			rc = CLI_USAGE;
			goto out;
		}
		if (a->expires_in_s > 0)
			r.expires = (long long)time(NULL) + a->expires_in_s;
		if (a->no_expiry)
			r.expires = 0;
	}
	rc = cli_result(keys_put(s, prefix, &r, &why), a->id, why);
out:
	key_record_cleanup(&r);
	return rc;
}

static int
cli_delete(struct store *s, const char *prefix, const struct keys_args *a)
{
	const char *why = NULL;

	return cli_result(keys_delete(s, prefix, a->id, &why), a->id, why);
}

/*
 * Opens /dev/null on any of fds 0-2 that is closed, so that no file or
 * socket opened later (the Redis connection) can become stdout and receive
 * the key.  Returns a bitmask of the fds that were closed.
 */
static int
cli_std_fds(void)
{
	int fd, nfd, closed = 0;

	for (fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		closed |= 1 << fd;
		nfd = open("/dev/null", O_RDWR);
		if (nfd != fd) {
			/* cannot happen: fd was the lowest free descriptor */
			if (nfd != -1)
				close(nfd);
			abort();
		}
	}
	return closed;
}

int
main(int argc, char **argv)
{
	struct keys_args a;
	struct config *cfg = NULL;
	struct store *s = NULL;
	const char *prefix;
	int rc = CLI_USAGE, closed;

	closed = cli_std_fds();
	if (keys_args_parse(argc, argv, &a) == -1) {
		cli_error(PROG, "%s", a.err);
		goto out;
	}
	if (a.cmd == KEYS_CMD_HELP || a.cmd == KEYS_CMD_VERSION) {
		rc = cli_help(PROG, a.cmd == KEYS_CMD_HELP ? cli_usage : NULL);
		goto out;
	}

	if (a.cmd == KEYS_CMD_CREATE && (closed & 2)) {
		cli_error(PROG,
		    "standard output is closed: the new key would be lost");
		goto out;
	}

	cfg = cli_config_load(PROG, a.config);
	if (cfg == NULL)
		goto out;
	prefix = cfg->redis.key_prefix;
	s = cli_store_open(cfg, cli_redis_where, sizeof cli_redis_where);

	switch (a.cmd) {
	case KEYS_CMD_CREATE: rc = cli_create(s, prefix, &a); break;
	case KEYS_CMD_LIST: rc = cli_list(s, prefix, &a); break;
	case KEYS_CMD_SHOW: rc = cli_show(s, prefix, &a); break;
	case KEYS_CMD_REVOKE: rc = cli_update(s, prefix, &a, 1); break;
	case KEYS_CMD_UPDATE: rc = cli_update(s, prefix, &a, 0); break;
	case KEYS_CMD_DELETE: rc = cli_delete(s, prefix, &a); break;
	default: cli_error(PROG, "internal error: no command"); break;
	}
	rc = cli_flush(PROG, rc);
out:
	store_free(s);
	config_free(cfg);
	return rc;
}
