/*
 * redis_url -- the address of the Redis server as written in the config:
 *
 *	redis://[user:password@]host[:port][/db]
 *	unix:///path/to/redis.sock[?db=N&user=U&password=P]
 *
 * Port 6379 and db 0 unless given; "redis://:pass@host" gives a password
 * without a user (AUTH pass).  Reserved characters in the user or password
 * are percent-encoded ("p%40ss" for "p@ss").  rediss:// (TLS), a query on a
 * redis:// URL and fragments are refused, so nothing written is ignored.
 * Only store.c connects; this module only parses.
 */
#ifndef APIGW_REDIS_URL_H
#define APIGW_REDIS_URL_H

struct redis_url {
	char *host; /* owned; NULL for a unix socket */
	int port;
	char *unix_path; /* owned; NULL for TCP */
	char *user;      /* owned; NULL when absent (AUTH pass only) */
	char *password;  /* owned; NULL when absent */
	int db;
};

/*
 * Parses s into *out.  Returns 0 (the caller frees with redis_url_cleanup)
 * or -1 with a reason in *why (a static string; why may be NULL) and *out
 * holding nothing to free.
 */
int redis_url_parse(const char *s, struct redis_url *out, const char **why);
/* Frees what *u owns and NULLs its pointers; u may be NULL. */
void redis_url_cleanup(struct redis_url *u);

#endif
