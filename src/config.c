/*
 * config.c -- read and validate the libconfig file (SPEC section 2).
 *
 * Every section's keys are declared in a static table of struct key: name,
 * type, bounds, default, where the value is stored (an offset into struct
 * config, struct route, struct rl_policy or struct plugin_conf) and a help
 * text.  Three walkers share the tables:
 *
 *	set_defaults()	fills a struct with every key's default;
 *	walk_group()	checks a libconfig group against a table: unknown keys,
 *			wrong types, out-of-range values and missing required
 *			keys become "file:line: key: reason" errors (all of
 *			them, not just the first) and valid values are stored;
 *	free_keys()	releases whatever the table's keys own.
 *
 * So a key added to a table is defaulted, validated, stored and freed with
 * no further code.  Checks that span keys (duplicate route prefixes, a
 * policy without any window, a route policy inheriting the default policy's
 * algorithm) run after the walk, in finish_routes() and walk_policy().
 *
 * The file is read into memory first and scanned for what libconfig 1.5
 * would accept silently but wrongly (NUL bytes, integer literals that wrap
 * around 32 bits) and for @include, which the one-file contract (and the
 * mtime check of config_changed) does not allow; then config_read_string()
 * parses it.  Only this file includes libconfig.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libconfig.h>
#include <openssl/evp.h>

#include "buf.h"
#include "config.h"
#include "xalloc.h"

#define CONFIG_MAX_BYTES (8 * 1024 * 1024) /* a bigger file is refused */
#define CONFIG_MAX_ERRORS 100 /* then "too many errors" and silence */
#define WHY_MAX 160           /* longest reason a check writes */
#define QUOTE_MAX 72          /* longest quoted user value in a message */

/* ---- public tables ---- */

/* clang-format off */
const long rl_window_seconds[RL_NWINDOWS] = { 1, 60, 3600, 86400 };
const char *const rl_window_names[RL_NWINDOWS] = {
	"second", "minute", "hour", "day",
};
const char *const rl_algorithm_names[] = {
	"sliding_window", "token_bucket", "fixed_window", "gcra", NULL,
};

static const struct {
	const char *name;
	unsigned bit;
} method_table[] = {
	{ "GET", M_GET }, { "HEAD", M_HEAD }, { "POST", M_POST },
	{ "PUT", M_PUT }, { "DELETE", M_DELETE }, { "PATCH", M_PATCH },
	{ "OPTIONS", M_OPTIONS }, { "TRACE", M_TRACE },
	{ "CONNECT", M_CONNECT },
};
#define N_METHODS (sizeof method_table / sizeof method_table[0])
/* clang-format on */

/* Enum-valued keys are stored as int: make sure that is what they are. */
_Static_assert(sizeof(enum rl_algorithm) == sizeof(int), "enum size");
_Static_assert(sizeof(enum log_format) == sizeof(int), "enum size");

/* What config_changed compares: struct config only has whole-second mtime. */
struct file_sig {
	struct timespec mtim;
	off_t size;
	ino_t ino;
	dev_t dev;
};

/* config_load returns &priv->pub. */
struct config_priv {
	struct config pub;   /* first: a struct config * is a priv * */
	struct file_sig sig; /* of the file it was read from */
};

/*
 * The last file that config_load refused, so that config_changed does not
 * report it again every second (a reload would only log the same errors).
 */
static struct file_sig failed_sig;
static int failed_sig_set;

static void
file_sig_of(const struct stat *st, struct file_sig *sig)
{
	memset(sig, 0, sizeof *sig);
	sig->mtim = st->st_mtim;
	sig->size = st->st_size;
	sig->ino = st->st_ino;
	sig->dev = st->st_dev;
}

static int
file_sig_equal(const struct file_sig *a, const struct file_sig *b)
{
	return a->mtim.tv_sec == b->mtim.tv_sec &&
	    a->mtim.tv_nsec == b->mtim.tv_nsec && a->size == b->size &&
	    a->ino == b->ino && a->dev == b->dev;
}

/* ---- small helpers ---- */

int
rl_algorithm_parse(const char *name, enum rl_algorithm *out)
{
	int i;

	if (name == NULL)
		return -1;
	for (i = 0; rl_algorithm_names[i] != NULL; i++) {
		if (strcmp(name, rl_algorithm_names[i]) == 0) {
			*out = (enum rl_algorithm)i;
			return 0;
		}
	}
	return -1;
}

unsigned
http_method_bit(const char *name)
{
	size_t i;

	if (name == NULL)
		return 0;
	for (i = 0; i < N_METHODS; i++)
		if (strcmp(name, method_table[i].name) == 0)
			return method_table[i].bit;
	return 0;
}

void
http_method_list(unsigned mask, char *out, size_t outlen)
{
	size_t i, len = 0, n;
	const char *sep = "";

	if (outlen == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < N_METHODS; i++) {
		if ((mask & method_table[i].bit) == 0)
			continue;
		n = strlen(sep) + strlen(method_table[i].name);
		if (len + n + 1 > outlen)
			break; /* truncate at a whole name */
		snprintf(
		    out + len, outlen - len, "%s%s", sep, method_table[i].name);
		len += n;
		sep = ", ";
	}
}

static int
is_tchar(unsigned char c)
{
	/* RFC 9110 5.6.2 tchar. */
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static int
is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

static int
hex_val(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return c - 'A' + 10;
}

/*
 * Parses exactly n decimal digits at s (n >= 1) into *out, refusing a value
 * above max.  Returns 0 or -1.
 */
static int
parse_digits(const char *s, size_t n, long max, long *out)
{
	long v = 0;
	size_t i;

	if (n == 0 || n > 18)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
		if (v > max)
			return -1;
	}
	*out = v;
	return 0;
}

/* Parses the port in [s, end): 1 to 65535.  Returns 0 or -1. */
static int
parse_port(const char *s, const char *end, int *out)
{
	long v;

	if (parse_digits(s, (size_t)(end - s), 65535, &v) == -1 || v == 0)
		return -1;
	*out = (int)v;
	return 0;
}

/*
 * Writes s into out as a double-quoted string, non-printable bytes as \xNN,
 * cut to about QUOTE_MAX characters with "...".  For messages only.
 */
static void
quote(const char *s, char *out, size_t outlen)
{
	size_t len = 0;
	unsigned char c;

	if (outlen < QUOTE_MAX + 8)
		abort();
	out[len++] = '"';
	for (; *s != '\0'; s++) {
		if (len >= QUOTE_MAX) {
			memcpy(out + len, "...", 3);
			len += 3;
			break;
		}
		c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[len++] = '\\';
			out[len++] = (char)c;
		} else if (is_ctl(c) || c >= 0x80) {
			snprintf(out + len, outlen - len, "\\x%02x", c);
			len += 4;
		} else
			out[len++] = (char)c;
	}
	out[len++] = '"';
	out[len] = '\0';
}

/* ---- CIDRs ---- */

/*
 * Parses an address with an optional "/len" into *out.  Returns 0, or -1
 * with a reason in *why (static).
 */
static int
cidr_parse_why(const char *s, struct cidr *out, const char **why)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash;
	size_t alen;
	long plen, maxlen;
	int i, bits;

	*why = "not an IP address or CIDR";
	if (s == NULL)
		return -1;
	memset(out, 0, sizeof *out);
	slash = strchr(s, '/');
	alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof addr)
		return -1;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (memchr(addr, ':', alen) != NULL) {
		if (inet_pton(AF_INET6, addr, out->addr) != 1)
			return -1;
		out->family = AF_INET6;
		maxlen = 128;
	} else {
		if (inet_pton(AF_INET, addr, out->addr) != 1)
			return -1;
		out->family = AF_INET;
		maxlen = 32;
	}
	plen = maxlen;
	if (slash != NULL &&
	    parse_digits(slash + 1, strlen(slash + 1), maxlen, &plen) == -1) {
		*why = "bad prefix length";
		return -1;
	}
	if (slash != NULL && strlen(slash + 1) > 1 && slash[1] == '0') {
		*why = "bad prefix length";
		return -1;
	}
	out->prefix_len = (int)plen;
	for (i = 0; i < (int)maxlen / 8; i++) {
		bits = (int)plen - i * 8;
		if (bits >= 8)
			continue;
		if (bits < 0)
			bits = 0;
		if ((out->addr[i] & (0xff >> bits)) != 0) {
			*why = "host bits set";
			return -1;
		}
	}
	return 0;
}

int
cidr_parse(const char *s, struct cidr *out)
{
	const char *why;

	return cidr_parse_why(s, out, &why);
}

/* Returns 1 when the first plen bits of a and b agree. */
static int
prefix_equal(const unsigned char *a, const unsigned char *b, int plen)
{
	int full = plen / 8, rest = plen % 8;
	unsigned char mask;

	if (full > 0 && memcmp(a, b, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

int
cidr_list_match(const struct cidr *list, size_t n, const char *ip)
{
	/* clang-format off */
	static const unsigned char mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
	};
	/* clang-format on */
	unsigned char a4[4], a6[16];
	char tmp[INET6_ADDRSTRLEN + 1];
	size_t len, i;
	int have4 = 0, have6 = 0;

	if (ip == NULL || list == NULL)
		return 0;
	len = strcspn(ip, "%"); /* drop an IPv6 zone: fe80::1%eth0 */
	if (len == 0 || len >= sizeof tmp)
		return 0;
	memcpy(tmp, ip, len);
	tmp[len] = '\0';
	if (inet_pton(AF_INET, tmp, a4) == 1) {
		have4 = have6 = 1;
		memcpy(a6, mapped, 12);
		memcpy(a6 + 12, a4, 4);
	} else if (inet_pton(AF_INET6, tmp, a6) == 1) {
		have6 = 1;
		if (memcmp(a6, mapped, 12) == 0) {
			have4 = 1;
			memcpy(a4, a6 + 12, 4);
		}
	} else
		return 0;
	for (i = 0; i < n; i++) {
		if (list[i].family == AF_INET && have4 &&
		    prefix_equal(list[i].addr, a4, list[i].prefix_len))
			return 1;
		if (list[i].family == AF_INET6 && have6 &&
		    prefix_equal(list[i].addr, a6, list[i].prefix_len))
			return 1;
	}
	return 0;
}

/* ---- Redis URLs ---- */

/*
 * Percent-decodes n bytes of s.  Returns an owned string, or NULL when an
 * escape is malformed or decodes to NUL.
 */
static char *
pct_decode(const char *s, size_t n)
{
	char *out = xmalloc(n + 1);
	size_t i, j = 0;
	int c;

	for (i = 0; i < n; i++) {
		if (s[i] != '%') {
			out[j++] = s[i];
			continue;
		}
		if (i + 2 >= n || !is_hex((unsigned char)s[i + 1]) ||
		    !is_hex((unsigned char)s[i + 2])) {
			free(out);
			return NULL;
		}
		c = hex_val((unsigned char)s[i + 1]) * 16 +
		    hex_val((unsigned char)s[i + 2]);
		if (c == 0) {
			free(out);
			return NULL;
		}
		out[j++] = (char)c;
		i += 2;
	}
	out[j] = '\0';
	return out;
}

void
redis_url_cleanup(struct redis_url *u)
{
	if (u == NULL)
		return;
	free(u->host);
	free(u->unix_path);
	free(u->user);
	free(u->password);
	u->host = u->unix_path = u->user = u->password = NULL;
}

/* Parses "unix:///path.sock[?db=N&password=P&user=U]" after "unix://". */
static int
redis_url_parse_unix(const char *p, struct redis_url *out, const char **why)
{
	const char *q, *param, *end, *eq;
	size_t plen;
	long v;

	if (*p != '/') {
		*why = "unix socket path must be absolute (unix:///path.sock)";
		return -1;
	}
	q = strchr(p, '?');
	plen = q != NULL ? (size_t)(q - p) : strlen(p);
	if (plen < 2) {
		*why = "missing unix socket path";
		return -1;
	}
	if (plen >= 108) {
		*why = "unix socket path too long";
		return -1;
	}
	if ((out->unix_path = pct_decode(p, plen)) == NULL) {
		*why = "bad percent-encoding";
		return -1;
	}
	for (param = q != NULL ? q + 1 : NULL; param != NULL && *param != '\0';
	     param = *end == '&' ? end + 1 : end) {
		end = param + strcspn(param, "&#");
		if (*end == '#') {
			*why = "fragment not allowed in a redis URL";
			return -1;
		}
		eq = memchr(param, '=', (size_t)(end - param));
		if (eq == NULL) {
			*why =
			    "unix:// parameters are db=, user= and password=";
			return -1;
		}
		if (eq - param == 2 && strncmp(param, "db", 2) == 0) {
			if (parse_digits(eq + 1, (size_t)(end - eq - 1),
			        INT_MAX, &v) == -1) {
				*why = "bad database number";
				return -1;
			}
			out->db = (int)v;
		} else if (eq - param == 8 &&
		    strncmp(param, "password", 8) == 0) {
			free(out->password);
			out->password =
			    pct_decode(eq + 1, (size_t)(end - eq - 1));
			if (out->password == NULL || *out->password == '\0') {
				*why = "bad or empty password";
				return -1;
			}
		} else if (eq - param == 4 && strncmp(param, "user", 4) == 0) {
			free(out->user);
			out->user = pct_decode(eq + 1, (size_t)(end - eq - 1));
			if (out->user == NULL || *out->user == '\0') {
				*why = "bad or empty user";
				return -1;
			}
		} else {
			*why =
			    "unix:// parameters are db=, user= and password=";
			return -1;
		}
	}
	if (out->user != NULL && out->password == NULL) {
		*why = "a user needs a password";
		return -1;
	}
	return 0;
}

/* Parses "[user:pass@]host[:port][/db]" after "redis://". */
static int
redis_url_parse_tcp(const char *p, struct redis_url *out, const char **why)
{
	const char *auth_end, *at, *colon, *host, *host_end, *port;
	char addr[INET6_ADDRSTRLEN + 1];
	unsigned char bin[16];
	size_t alen, i;
	long v;

	alen = strcspn(p, "/?#");
	auth_end = p + alen;
	at = NULL;
	for (i = 0; i < alen; i++)
		if (p[i] == '@')
			at = p + i;
	host = p;
	if (at != NULL) {
		colon = memchr(p, ':', (size_t)(at - p));
		if (colon == NULL) {
			*why = "user info must be user:password or :password";
			return -1;
		}
		if (colon > p &&
		    (out->user = pct_decode(p, (size_t)(colon - p))) == NULL) {
			*why = "bad percent-encoding";
			return -1;
		}
		out->password = pct_decode(colon + 1, (size_t)(at - colon - 1));
		if (out->password == NULL) {
			*why = "bad percent-encoding";
			return -1;
		}
		if (*out->password == '\0') {
			*why = "empty password";
			return -1;
		}
		host = at + 1;
	}
	if (*host == '[') {
		host_end = memchr(host, ']', (size_t)(auth_end - host));
		if (host_end == NULL ||
		    (size_t)(host_end - host - 1) >= sizeof addr) {
			*why = "bad IPv6 address";
			return -1;
		}
		memcpy(addr, host + 1, (size_t)(host_end - host - 1));
		addr[host_end - host - 1] = '\0';
		if (inet_pton(AF_INET6, addr, bin) != 1) {
			*why = "bad IPv6 address";
			return -1;
		}
		out->host = xstrdup(addr);
		port = host_end + 1;
		if (port != auth_end && *port != ':') {
			*why = "bad host";
			return -1;
		}
	} else {
		host_end = memchr(host, ':', (size_t)(auth_end - host));
		if (host_end == NULL)
			host_end = auth_end;
		for (i = 0; host + i < host_end; i++) {
			unsigned char c = (unsigned char)host[i];

			if (!((c >= 'a' && c <= 'z') ||
			        (c >= 'A' && c <= 'Z') ||
			        (c >= '0' && c <= '9') || c == '-' ||
			        c == '.' || c == '_')) {
				*why = "bad host";
				return -1;
			}
		}
		out->host = xstrndup(host, (size_t)(host_end - host));
		port = host_end;
	}
	if (*out->host == '\0') {
		*why = "missing host";
		return -1;
	}
	if (port < auth_end) {
		/* *port == ':' */
		if (parse_port(port + 1, auth_end, &out->port) == -1) {
			*why = "bad port";
			return -1;
		}
	}
	if (*auth_end == '?' || *auth_end == '#') {
		*why = "query or fragment not allowed in a redis:// URL";
		return -1;
	}
	if (*auth_end == '/' && auth_end[1] != '\0') {
		if (parse_digits(auth_end + 1, strlen(auth_end + 1), INT_MAX,
		        &v) == -1) {
			*why = "bad database number";
			return -1;
		}
		out->db = (int)v;
	}
	return 0;
}

int
redis_url_parse(const char *s, struct redis_url *out, const char **why)
{
	const char *dummy;
	int rc = -1;

	if (why == NULL)
		why = &dummy;
	memset(out, 0, sizeof *out);
	out->port = 6379;
	*why = "not a redis:// or unix:// URL";
	if (s == NULL)
		goto out;
	if (strncasecmp(s, "redis://", 8) == 0) {
		if (redis_url_parse_tcp(s + 8, out, why) == -1)
			goto out;
	} else if (strncasecmp(s, "unix://", 7) == 0) {
		out->port = 0;
		if (redis_url_parse_unix(s + 7, out, why) == -1)
			goto out;
	} else {
		if (strncasecmp(s, "rediss://", 9) == 0)
			*why = "rediss:// (TLS) is not supported";
		goto out;
	}
	*why = NULL;
	rc = 0;
out:
	if (rc == -1) {
		redis_url_cleanup(out);
		out->port = 0;
		out->db = 0;
	}
	return rc;
}

/* ---- string checks: each returns an owned (normalized) copy or NULL ---- */

typedef char *(*check_fn)(const char *s, char *why, size_t whylen);

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

		if (c == '{' || c == '}' || c == ' ' || is_ctl(c)) {
			snprintf(why, whylen,
			    "must not contain '{', '}', "
			    "spaces or control characters");
			return NULL;
		}
	}
	return xstrdup(s);
}

static char *
check_token(const char *s, char *why, size_t whylen)
{
	size_t len = strlen(s), i;
	char q[QUOTE_MAX + 8];

	for (i = 0; i < len; i++)
		if (!is_tchar((unsigned char)s[i]))
			break;
	if (len == 0 || len > 128 || i < len) {
		quote(s, q, sizeof q);
		snprintf(why, whylen,
		    "%s is not a valid header name "
		    "(RFC 9110 token, 1 to 128 characters)",
		    q);
		return NULL;
	}
	return xstrdup(s);
}

static char *
check_method(const char *s, char *why, size_t whylen)
{
	char q[QUOTE_MAX + 8], up[16];
	size_t i;

	if (http_method_bit(s) != 0)
		return xstrdup(s);
	quote(s, q, sizeof q);
	for (i = 0; s[i] != '\0' && i < sizeof up - 1; i++)
		up[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 32) : s[i];
	up[i] = '\0';
	if (s[i] == '\0' && http_method_bit(up) != 0)
		snprintf(why, whylen,
		    "unknown method %s (methods are upper-case)", q);
	else
		snprintf(why, whylen, "unknown method %s", q);
	return NULL;
}

static char *
check_policy_name(const char *s, char *why, size_t whylen)
{
	size_t len = strlen(s), i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '_' || c == '-'))
			break;
	}
	if (len == 0 || len > 31 || i < len) {
		snprintf(why, whylen,
		    "must be 1 to 31 characters of A-Z, a-z, 0-9, '_' and '-'");
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
		if (is_ctl((unsigned char)s[i]))
			break;
	if (s[0] != '/' || s[i] != '\0') {
		snprintf(why, whylen,
		    "must be \"stderr\", \"off\" or an absolute file path");
		return NULL;
	}
	return xstrdup(s);
}

static char *
check_plugin_path(const char *s, char *why, size_t whylen)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (is_ctl((unsigned char)s[i]))
			break;
	if (s[0] == '\0' || s[i] != '\0') {
		snprintf(why, whylen,
		    "must be a file name without control characters");
		return NULL;
	}
	return xstrdup(s);
}

/*
 * Route prefixes: '/' followed by RFC 3986 path characters, without '%'
 * (a prefix is matched against the normalized, decoded path), "//", or
 * "." and ".." segments.  A trailing '/' is removed, except for "/".
 */
static char *
check_prefix(const char *s, char *why, size_t whylen)
{
	size_t len = strlen(s), i, seg;
	unsigned char c;
	char *out;

	if (s[0] != '/') {
		snprintf(why, whylen, "must start with '/'");
		return NULL;
	}
	if (len > 1024) {
		snprintf(why, whylen, "must be at most 1024 characters");
		return NULL;
	}
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') ||
		    strchr("/-._~!$&'()*+,;=:@", c) != NULL)
			continue;
		if (c == ' ' || is_ctl(c) || c >= 0x80)
			snprintf(why, whylen,
			    "must not contain whitespace, "
			    "control characters or non-ASCII bytes");
		else
			snprintf(why, whylen, "must not contain '%c'", c);
		return NULL;
	}
	if (strstr(s, "//") != NULL) {
		snprintf(why, whylen, "must not contain \"//\"");
		return NULL;
	}
	for (i = 0; i < len; i += seg + 1) {
		seg = strcspn(s + i + 1, "/");
		if ((seg == 1 && s[i + 1] == '.') ||
		    (seg == 2 && s[i + 1] == '.' && s[i + 2] == '.')) {
			snprintf(why, whylen,
			    "must not contain \".\" or \"..\" segments");
			return NULL;
		}
	}
	out = xstrdup(s);
	if (len > 1 && out[len - 1] == '/')
		out[len - 1] = '\0';
	return out;
}

/*
 * Checks "http[s]://host[:port][/path]": host a name or [IPv6], port
 * 1..65535, no user info, query or fragment.  Returns 0 and the offset of
 * the path (possibly the end of s) in *path_off, or -1 with a reason.
 */
static int
check_http_url(const char *s, size_t *path_off, char *why, size_t whylen)
{
	const char *p, *host_end, *auth_end, *port;
	char addr[INET6_ADDRSTRLEN + 1];
	unsigned char bin[16];
	size_t alen, i;
	int portnum;
	unsigned char c;

	if (strncasecmp(s, "http://", 7) == 0)
		p = s + 7;
	else if (strncasecmp(s, "https://", 8) == 0)
		p = s + 8;
	else {
		snprintf(why, whylen, "not an http:// or https:// URL");
		return -1;
	}
	alen = strcspn(p, "/?#");
	auth_end = p + alen;
	if (memchr(p, '@', alen) != NULL) {
		snprintf(why, whylen, "must not contain user info");
		return -1;
	}
	if (*p == '[') {
		host_end = memchr(p, ']', alen);
		if (host_end == NULL ||
		    (size_t)(host_end - p - 1) >= sizeof addr) {
			snprintf(why, whylen, "bad IPv6 address");
			return -1;
		}
		memcpy(addr, p + 1, (size_t)(host_end - p - 1));
		addr[host_end - p - 1] = '\0';
		if (inet_pton(AF_INET6, addr, bin) != 1) {
			snprintf(why, whylen, "bad IPv6 address");
			return -1;
		}
		port = host_end + 1;
		if (port != auth_end && *port != ':') {
			snprintf(why, whylen, "bad host");
			return -1;
		}
	} else {
		host_end = memchr(p, ':', alen);
		if (host_end == NULL)
			host_end = auth_end;
		if (host_end == p) {
			snprintf(why, whylen, "URL has no host");
			return -1;
		}
		for (i = 0; p + i < host_end; i++) {
			c = (unsigned char)p[i];
			if (!((c >= 'a' && c <= 'z') ||
			        (c >= 'A' && c <= 'Z') ||
			        (c >= '0' && c <= '9') || c == '-' ||
			        c == '.' || c == '_')) {
				snprintf(why, whylen, "bad host");
				return -1;
			}
		}
		port = host_end;
	}
	if (port < auth_end && parse_port(port + 1, auth_end, &portnum) == -1) {
		snprintf(why, whylen, "bad port (1 to 65535)");
		return -1;
	}
	for (p = auth_end; *p != '\0'; p++) {
		c = (unsigned char)*p;
		if (c == '?') {
			snprintf(why, whylen, "must not contain a query");
			return -1;
		}
		if (c == '#') {
			snprintf(why, whylen, "must not contain a fragment");
			return -1;
		}
		if (c == '%' && is_hex((unsigned char)p[1]) &&
		    is_hex((unsigned char)p[2]))
			continue;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') ||
		    (c != '\0' && strchr("/-._~!$&'()*+,;=:@", c) != NULL))
			continue;
		snprintf(why, whylen, "bad character in path");
		return -1;
	}
	*path_off = (size_t)(auth_end - s);
	return 0;
}

static char *
check_backend(const char *s, char *why, size_t whylen)
{
	size_t off, len;
	char *out;

	if (check_http_url(s, &off, why, whylen) == -1)
		return NULL;
	out = xstrdup(s);
	len = strlen(out);
	while (len > off && out[len - 1] == '/')
		out[--len] = '\0';
	return out;
}

static char *
check_origin(const char *s, char *why, size_t whylen)
{
	size_t off;

	if (strcmp(s, "*") == 0)
		return xstrdup(s);
	if (check_http_url(s, &off, why, whylen) == -1 || s[off] != '\0') {
		snprintf(why, whylen,
		    "must be \"*\" or an origin like "
		    "\"https://example.com\" (no path)");
		return NULL;
	}
	return xstrdup(s);
}

/* ---- the key tables ---- */

enum ktype {
	K_LONG,    /* integer into a long */
	K_INT,     /* integer into an int */
	K_BOOL,    /* boolean into an int */
	K_STRING,  /* string into a char *, normalized by ->check */
	K_ENUM,    /* one of ->names; its index into an int */
	K_STRLIST, /* array of strings into char ** and a size_t */
	K_JOINED,  /* array of strings joined with ", " into a char * */
	K_INTLIST, /* array of integers into int * and a size_t */
	K_CIDRS,   /* array of CIDRs into struct cidr * and a size_t */
	K_METHODS, /* array of method names into an unsigned mask */
	K_GROUP,   /* nested group: ->sub, same base */
	K_POLICY,  /* rate-limit policy group into a struct rl_policy */
	K_LIST,    /* list of groups into an array of ->elem_size */
	K_SETTING, /* free-form group kept as a libconfig pointer */
};

#define KF_REQUIRED 0x1       /* missing is an error */
#define KF_DEFAULT_POLICY 0x2 /* K_POLICY: always present, 60/min */

struct key {
	const char *name;
	enum ktype type;
	int flags;
	long long min, max;          /* integer bounds (of each element) */
	long long min_n, max_n;      /* array and list lengths */
	long long def;               /* integer, boolean, enum or mask */
	const char *def_s;           /* K_STRING; K_POLICY: its name */
	const char *const *def_list; /* K_STRLIST, K_JOINED, K_CIDRS */
	const int *def_ints;         /* K_INTLIST, 0-terminated */
	const char *const *names;    /* K_ENUM choices, NULL-terminated */
	check_fn check;              /* K_STRING and string elements */
	size_t off;                  /* where the value is stored */
	size_t off_n;                /* where an array's length is stored */
	const struct key *sub;       /* K_GROUP and K_LIST element keys */
	size_t elem_size;            /* K_LIST element size */
	size_t off_line;             /* K_LIST: element's line */
	const char *help;            /* unit and meaning */
};

#define CO(m) offsetof(struct config, m)
#define RO(m) offsetof(struct route, m)
#define PO(m) offsetof(struct rl_policy, m)

#define TIMEOUT_MAX 600000
#define RATE_MAX 1000000000
#define TTL_MAX 31536000

/* clang-format off */
static const char *const on_failure_names[] = { "open", "closed", NULL };
static const char *const log_format_names[] = { "combined", "json", NULL };
static const char *const log_level_names[] = {
	"debug", "info", "warn", "error", NULL,
};
static const char *const def_trusted_proxies[] = {
	"127.0.0.1/32", "::1/128", NULL,
};
static const char *const def_internal_allow[] = {
	"127.0.0.0/8", "::1/128", NULL,
};
static const int def_failure_statuses[] = { 502, 503, 504, 0 };
static const char *const def_origins[] = { "*", NULL };
static const char *const def_cors_methods[] = {
	"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", NULL,
};
static const char *const def_cors_headers[] = {
	"Content-Type", "Authorization", "X-API-Key", NULL,
};

static const struct key redis_keys[] = {
	{ .name = "url", .type = K_STRING, .flags = KF_REQUIRED,
	  .check = check_redis_url, .off = CO(redis.url),
	  .help = "redis://[user:pass@]host[:port][/db] or "
	  "unix:///path.sock[?db=N]" },
	{ .name = "connect_timeout_ms", .type = K_LONG, .min = 1,
	  .max = TIMEOUT_MAX, .def = 200, .off = CO(redis.connect_timeout_ms),
	  .help = "milliseconds to connect" },
	{ .name = "command_timeout_ms", .type = K_LONG, .min = 1,
	  .max = TIMEOUT_MAX, .def = 100, .off = CO(redis.command_timeout_ms),
	  .help = "milliseconds per command" },
	{ .name = "key_prefix", .type = K_STRING, .def_s = "apigw:",
	  .check = check_key_prefix, .off = CO(redis.key_prefix),
	  .help = "prefix of every Redis key" },
	{ .name = "on_failure", .type = K_ENUM, .names = on_failure_names,
	  .def = 0, .off = CO(redis.fail_closed),
	  .help = "open: serve without Redis; closed: 503" },
	{ .name = NULL },
};

static const struct key gateway_keys[] = {
	{ .name = "trusted_proxies", .type = K_CIDRS, .max_n = 1024,
	  .def_list = def_trusted_proxies, .off = CO(gateway.trusted_proxies),
	  .off_n = CO(gateway.n_trusted_proxies),
	  .help = "peers whose X-Forwarded-For is believed" },
	{ .name = "internal_allow", .type = K_CIDRS, .max_n = 1024,
	  .def_list = def_internal_allow, .off = CO(gateway.internal_allow),
	  .off_n = CO(gateway.n_internal_allow),
	  .help = "clients that may read /_health and /_metrics" },
	{ .name = "max_body_bytes", .type = K_LONG, .min = 0,
	  .max = 1073741824, .def = 10485760, .off = CO(gateway.max_body_bytes),
	  .help = "bytes; larger request bodies get 413" },
	{ .name = "request_id_header", .type = K_STRING,
	  .def_s = "X-Request-ID", .check = check_token,
	  .off = CO(gateway.request_id_header),
	  .help = "header name carrying the request id" },
	{ .name = NULL },
};

static const struct key policy_keys[] = {
	{ .name = "name", .type = K_STRING, .check = check_policy_name,
	  .off = PO(name), .help = "window names are name-minute etc." },
	{ .name = "shadow", .type = K_BOOL, .def = 0, .off = PO(shadow),
	  .help = "count and report, never reject" },
	{ .name = "algorithm", .type = K_ENUM, .names = rl_algorithm_names,
	  .def = RL_SLIDING_WINDOW, .off = PO(algorithm),
	  .help = "sliding_window | token_bucket | fixed_window | gcra" },
	{ .name = "requests_per_second", .type = K_LONG, .min = 1,
	  .max = RATE_MAX, .off = PO(limit[RL_SECOND]),
	  .help = "requests per 1 s window" },
	{ .name = "requests_per_minute", .type = K_LONG, .min = 1,
	  .max = RATE_MAX, .off = PO(limit[RL_MINUTE]),
	  .help = "requests per 60 s window" },
	{ .name = "requests_per_hour", .type = K_LONG, .min = 1,
	  .max = RATE_MAX, .off = PO(limit[RL_HOUR]),
	  .help = "requests per 3600 s window" },
	{ .name = "requests_per_day", .type = K_LONG, .min = 1,
	  .max = RATE_MAX, .off = PO(limit[RL_DAY]),
	  .help = "requests per 86400 s window" },
	{ .name = "burst_size", .type = K_LONG, .min = 0, .max = RATE_MAX,
	  .def = 0, .off = PO(burst_size),
	  .help = "bucket capacity of the shortest window; 0 = its limit" },
	{ .name = NULL },
};

static const struct key api_keys_keys[] = {
	{ .name = "header", .type = K_STRING, .def_s = "X-API-Key",
	  .check = check_token, .off = CO(api_keys.header),
	  .help = "request header carrying the API key" },
	{ .name = "cache_ttl_s", .type = K_LONG, .min = 0, .max = 86400,
	  .def = 5, .off = CO(api_keys.cache_ttl_s),
	  .help = "seconds a key record is cached in-process" },
	{ .name = NULL },
};

static const struct key breaker_keys[] = {
	{ .name = "failure_threshold", .type = K_LONG, .min = 1,
	  .max = 1000000, .def = 5, .off = CO(circuit_breaker.failure_threshold),
	  .help = "consecutive failures that open the breaker" },
	{ .name = "recovery_timeout_s", .type = K_LONG, .min = 1,
	  .max = 86400, .def = 60, .off = CO(circuit_breaker.recovery_timeout_s),
	  .help = "seconds open before a trial request" },
	{ .name = "success_threshold", .type = K_LONG, .min = 1,
	  .max = 1000000, .def = 3, .off = CO(circuit_breaker.success_threshold),
	  .help = "consecutive successes that close it" },
	{ .name = "failure_statuses", .type = K_INTLIST, .min = 100,
	  .max = 599, .max_n = 500, .def_ints = def_failure_statuses,
	  .off = CO(circuit_breaker.failure_statuses),
	  .off_n = CO(circuit_breaker.n_failure_statuses),
	  .help = "backend statuses counted as failures" },
	{ .name = NULL },
};

static const struct key cache_keys[] = {
	{ .name = "max_object_bytes", .type = K_LONG, .min = 0,
	  .max = 536870912, .def = 1048576, .off = CO(cache.max_object_bytes),
	  .help = "bytes; larger responses are not cached" },
	{ .name = NULL },
};

static const struct key cors_keys[] = {
	{ .name = "enabled", .type = K_BOOL, .def = 0, .off = CO(cors.enabled),
	  .help = "answer preflights and add CORS headers" },
	{ .name = "allow_origins", .type = K_STRLIST, .max_n = 1024,
	  .def_list = def_origins, .check = check_origin,
	  .off = CO(cors.allow_origins), .off_n = CO(cors.n_allow_origins),
	  .help = "\"*\" or origins like \"https://app.example.com\"" },
	{ .name = "allow_methods", .type = K_JOINED, .min_n = 1, .max_n = 16,
	  .def_list = def_cors_methods, .check = check_method,
	  .off = CO(cors.allow_methods),
	  .help = "Access-Control-Allow-Methods" },
	{ .name = "allow_headers", .type = K_JOINED, .max_n = 256,
	  .def_list = def_cors_headers, .check = check_token,
	  .off = CO(cors.allow_headers),
	  .help = "Access-Control-Allow-Headers" },
	{ .name = "max_age_s", .type = K_LONG, .min = 0, .max = 86400,
	  .def = 600, .off = CO(cors.max_age_s),
	  .help = "seconds a preflight may be cached" },
	{ .name = NULL },
};

static const struct key log_keys[] = {
	{ .name = "access", .type = K_STRING, .def_s = "stderr",
	  .check = check_log_access, .off = CO(log.access),
	  .help = "\"stderr\", \"off\" or an absolute path" },
	{ .name = "format", .type = K_ENUM, .names = log_format_names,
	  .def = LOG_FORMAT_COMBINED, .off = CO(log.format),
	  .help = "combined | json" },
	{ .name = "level", .type = K_ENUM, .names = log_level_names,
	  .def = 1, .off = CO(log.level),
	  .help = "debug | info | warn | error" },
	{ .name = NULL },
};

static const struct key plugin_keys[] = {
	{ .name = "path", .type = K_STRING, .flags = KF_REQUIRED,
	  .check = check_plugin_path, .off = offsetof(struct plugin_conf, path),
	  .help = "shared object to dlopen" },
	{ .name = "config", .type = K_SETTING,
	  .off = offsetof(struct plugin_conf, setting),
	  .help = "free-form group given to the plugin's init" },
	{ .name = NULL },
};

static const struct key route_keys[] = {
	{ .name = "prefix", .type = K_STRING, .flags = KF_REQUIRED,
	  .check = check_prefix, .off = RO(prefix),
	  .help = "path prefix, matched on segment boundaries" },
	{ .name = "backend", .type = K_STRING, .flags = KF_REQUIRED,
	  .check = check_backend, .off = RO(backend),
	  .help = "http[s]://host[:port][/path]" },
	{ .name = "methods", .type = K_METHODS, .min_n = 1, .max_n = 16,
	  .def = M_ALL, .off = RO(methods),
	  .help = "allowed methods; omitted: all" },
	{ .name = "require_auth", .type = K_BOOL, .def = 0,
	  .off = RO(require_auth), .help = "require an API key" },
	{ .name = "cache_ttl_s", .type = K_LONG, .min = 0, .max = TTL_MAX,
	  .def = 0, .off = RO(cache_ttl_s),
	  .help = "seconds; 0 = no response cache" },
	{ .name = "strip_prefix", .type = K_BOOL, .def = 0,
	  .off = RO(strip_prefix), .help = "remove the prefix when forwarding" },
	{ .name = "connect_timeout_ms", .type = K_LONG, .min = 1,
	  .max = TIMEOUT_MAX, .def = 2000, .off = RO(connect_timeout_ms),
	  .help = "milliseconds to connect to the backend" },
	{ .name = "timeout_ms", .type = K_LONG, .min = 1, .max = TIMEOUT_MAX,
	  .def = 30000, .off = RO(timeout_ms),
	  .help = "milliseconds for the whole backend exchange" },
	{ .name = "retries", .type = K_INT, .min = 0, .max = 10, .def = 0,
	  .off = RO(retries), .help = "extra attempts for idempotent methods" },
	{ .name = "rate_limit", .type = K_POLICY, .def_s = "route",
	  .off = RO(rate_limit), .help = "the route's own policy" },
	{ .name = NULL },
};

static const struct key root_keys[] = {
	{ .name = "redis", .type = K_GROUP, .flags = KF_REQUIRED,
	  .sub = redis_keys },
	{ .name = "gateway", .type = K_GROUP, .sub = gateway_keys },
	{ .name = "rate_limit", .type = K_POLICY, .flags = KF_DEFAULT_POLICY,
	  .def_s = "default", .off = CO(rate_limit),
	  .help = "the default policy" },
	{ .name = "api_keys", .type = K_GROUP, .sub = api_keys_keys },
	{ .name = "circuit_breaker", .type = K_GROUP, .sub = breaker_keys },
	{ .name = "cache", .type = K_GROUP, .sub = cache_keys },
	{ .name = "cors", .type = K_GROUP, .sub = cors_keys },
	{ .name = "log", .type = K_GROUP, .sub = log_keys },
	{ .name = "plugins", .type = K_LIST, .max_n = 64, .sub = plugin_keys,
	  .elem_size = sizeof(struct plugin_conf), .off = CO(plugins),
	  .off_n = CO(n_plugins), .off_line = offsetof(struct plugin_conf, line),
	  .help = "shared objects, run in order" },
	{ .name = "routes", .type = K_LIST, .flags = KF_REQUIRED, .min_n = 1,
	  .max_n = 10000, .sub = route_keys, .elem_size = sizeof(struct route),
	  .off = CO(routes), .off_n = CO(n_routes),
	  .off_line = offsetof(struct route, line),
	  .help = "routes; the longest matching prefix wins" },
	{ .name = NULL },
};
/* clang-format on */

/* ---- typed access through a table entry ---- */

#define AT(base, off, type) ((type *)(void *)((char *)(base) + (off)))

static const struct key *
find_key(const struct key *tab, const char *name, int *idx)
{
	int i;

	if (name == NULL)
		return NULL;
	for (i = 0; tab[i].name != NULL; i++) {
		if (strcmp(tab[i].name, name) == 0) {
			*idx = i;
			return &tab[i];
		}
	}
	return NULL;
}

static uint64_t
key_bit(const struct key *tab, const char *name)
{
	int idx;

	if (find_key(tab, name, &idx) == NULL)
		abort();
	return (uint64_t)1 << idx;
}

static char *
join_list(const char *const *list)
{
	struct buf b;
	char *s;
	size_t i;

	buf_init(&b);
	for (i = 0; list[i] != NULL; i++) {
		if (i > 0)
			buf_puts(&b, ", ");
		buf_puts(&b, list[i]);
	}
	s = xstrdup(buf_cstr(&b));
	buf_cleanup(&b);
	return s;
}

static void set_defaults(const struct key *tab, void *base);
static void free_keys(const struct key *tab, void *base);

static void
policy_defaults(const struct key *e, struct rl_policy *pol)
{
	memset(pol, 0, sizeof *pol);
	set_defaults(policy_keys, pol);
	pol->name = xstrdup(e->def_s);
	if (e->flags & KF_DEFAULT_POLICY) {
		pol->present = 1;
		pol->limit[RL_MINUTE] = 60;
	}
}

static void
set_defaults(const struct key *tab, void *base)
{
	const struct key *e;
	struct cidr *cidrs;
	char **strs;
	int *ints;
	size_t n, i;

	for (e = tab; e->name != NULL; e++) {
		switch (e->type) {
		case K_LONG: *AT(base, e->off, long) = (long)e->def; break;
		case K_INT:
		case K_BOOL:
		case K_ENUM: *AT(base, e->off, int) = (int)e->def; break;
		case K_METHODS:
			*AT(base, e->off, unsigned) = (unsigned)e->def;
			break;
		case K_STRING:
			*AT(base, e->off, char *) =
			    e->def_s != NULL ? xstrdup(e->def_s) : NULL;
			break;
		case K_STRLIST:
			for (n = 0; e->def_list[n] != NULL; n++)
				;
			strs = xcalloc(n, sizeof *strs);
			for (i = 0; i < n; i++)
				strs[i] = xstrdup(e->def_list[i]);
			*AT(base, e->off, char **) = strs;
			*AT(base, e->off_n, size_t) = n;
			break;
		case K_JOINED:
			*AT(base, e->off, char *) = join_list(e->def_list);
			break;
		case K_INTLIST:
			for (n = 0; e->def_ints[n] != 0; n++)
				;
			ints = xcalloc(n, sizeof *ints);
			memcpy(ints, e->def_ints, n * sizeof *ints);
			*AT(base, e->off, int *) = ints;
			*AT(base, e->off_n, size_t) = n;
			break;
		case K_CIDRS:
			for (n = 0; e->def_list[n] != NULL; n++)
				;
			cidrs = xcalloc(n, sizeof *cidrs);
			for (i = 0; i < n; i++)
				if (cidr_parse(e->def_list[i], &cidrs[i]) == -1)
					abort(); /* a bad built-in default */
			*AT(base, e->off, struct cidr *) = cidrs;
			*AT(base, e->off_n, size_t) = n;
			break;
		case K_GROUP: set_defaults(e->sub, base); break;
		case K_POLICY:
			policy_defaults(e, AT(base, e->off, struct rl_policy));
			break;
		case K_LIST:
			*AT(base, e->off, void *) = NULL;
			*AT(base, e->off_n, size_t) = 0;
			break;
		case K_SETTING: *AT(base, e->off, void *) = NULL; break;
		}
	}
}

static void
free_strs(char **strs, size_t n)
{
	size_t i;

	if (strs == NULL)
		return;
	for (i = 0; i < n; i++)
		free(strs[i]);
	free(strs);
}

static void
free_keys(const struct key *tab, void *base)
{
	const struct key *e;
	char *elems;
	size_t n, i;

	for (e = tab; e->name != NULL; e++) {
		switch (e->type) {
		case K_LONG:
		case K_INT:
		case K_BOOL:
		case K_ENUM:
		case K_METHODS:
		case K_SETTING: break;
		case K_STRING:
		case K_JOINED:
			free(*AT(base, e->off, char *));
			*AT(base, e->off, char *) = NULL;
			break;
		case K_STRLIST:
			free_strs(*AT(base, e->off, char **),
			    *AT(base, e->off_n, size_t));
			*AT(base, e->off, char **) = NULL;
			*AT(base, e->off_n, size_t) = 0;
			break;
		case K_INTLIST:
		case K_CIDRS:
			free(*AT(base, e->off, void *));
			*AT(base, e->off, void *) = NULL;
			*AT(base, e->off_n, size_t) = 0;
			break;
		case K_GROUP: free_keys(e->sub, base); break;
		case K_POLICY:
			free_keys(
			    policy_keys, AT(base, e->off, struct rl_policy));
			break;
		case K_LIST:
			elems = *AT(base, e->off, char *);
			n = *AT(base, e->off_n, size_t);
			for (i = 0; elems != NULL && i < n; i++)
				free_keys(e->sub, elems + i * e->elem_size);
			free(elems);
			*AT(base, e->off, void *) = NULL;
			*AT(base, e->off_n, size_t) = 0;
			break;
		}
	}
}

/* ---- the walker ---- */

struct loader_msg {
	unsigned line; /* 0: about the whole file */
	size_t seq;    /* keeps the sort stable */
	char *msg;     /* owned */
};

struct loader {
	const char *file;        /* as given to config_load */
	struct loader_msg *msgs; /* at most CONFIG_KEEP_ERRORS */
	size_t n_msgs;
	size_t nerr; /* every error, also past the cap */
};

#define CONFIG_KEEP_ERRORS 10000 /* kept for sorting; then counted */

static void
add_message(struct loader *ld, unsigned line, char *msg)
{
	struct loader_msg *m;

	ld->nerr++;
	if (ld->n_msgs >= CONFIG_KEEP_ERRORS) {
		free(msg);
		return;
	}
	if ((ld->n_msgs & (ld->n_msgs - 1)) == 0) /* 0, 1, 2, 4, ... */
		ld->msgs = xrealloc(ld->msgs,
		    (ld->n_msgs ? ld->n_msgs * 2 : 1) * sizeof *ld->msgs);
	m = &ld->msgs[ld->n_msgs];
	m->line = line;
	m->seq = ld->n_msgs++;
	m->msg = msg;
}

static int
loader_msg_cmp(const void *a, const void *b)
{
	const struct loader_msg *ma = a, *mb = b;

	if (ma->line != mb->line)
		return ma->line < mb->line ? -1 : 1;
	return ma->seq < mb->seq ? -1 : ma->seq > mb->seq;
}

/*
 * Hands the messages, in line order, to errs (which may be NULL): at most
 * CONFIG_MAX_ERRORS of them, then one "too many errors" line.
 */
static void
loader_finish(struct loader *ld, struct config_errors *errs)
{
	size_t i, n;

	if (ld->n_msgs > 1)
		qsort(ld->msgs, ld->n_msgs, sizeof *ld->msgs, loader_msg_cmp);
	n = ld->n_msgs < CONFIG_MAX_ERRORS ? ld->n_msgs : CONFIG_MAX_ERRORS;
	if (errs != NULL && ld->nerr > 0) {
		errs->msg = xcalloc(n + 1, sizeof *errs->msg);
		for (i = 0; i < n; i++) {
			errs->msg[i] = ld->msgs[i].msg;
			ld->msgs[i].msg = NULL;
		}
		errs->n = n;
		if (ld->nerr > n)
			errs->msg[errs->n++] = xasprintf(
			    "%s: too many errors (%zu in all), giving up",
			    ld->file, ld->nerr);
	}
	for (i = 0; i < ld->n_msgs; i++)
		free(ld->msgs[i].msg);
	free(ld->msgs);
	ld->msgs = NULL;
	ld->n_msgs = 0;
}

/* Adds "file:line: key: reason"; key may be NULL for a file-wide error. */
static void add_error(struct loader *ld, unsigned line, const char *key,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
add_error(
    struct loader *ld, unsigned line, const char *key, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	if (line == 0)
		line = 1;
	if (key != NULL)
		add_message(ld, line,
		    xasprintf("%s:%u: %s: %s", ld->file, line, key, reason));
	else
		add_message(
		    ld, line, xasprintf("%s:%u: %s", ld->file, line, reason));
}

static unsigned
line_of(const config_setting_t *s)
{
	return config_setting_source_line(s);
}

/* Checks an array's or list's length against e's bounds; 1 when it fits. */
static int
count_ok(struct loader *ld, const config_setting_t *s, const char *kp,
    const struct key *e, size_t n)
{
	if ((long long)n < e->min_n) {
		add_error(ld, line_of(s), kp, "must have at least %lld entr%s",
		    e->min_n, e->min_n == 1 ? "y" : "ies");
		return 0;
	}
	if ((long long)n > e->max_n) {
		add_error(ld, line_of(s), kp, "must have at most %lld entries",
		    e->max_n);
		return 0;
	}
	return 1;
}

static char *
key_path(const char *parent, const char *name)
{
	if (parent == NULL || *parent == '\0')
		return xstrdup(name);
	return xasprintf("%s.%s", parent, name);
}

static char *
elem_path(const char *parent, int i)
{
	return xasprintf("%s.[%d]", parent, i);
}

/* Reads an int or int64 setting in [min, max]; 0 or -1 after an error. */
static int
get_integer(struct loader *ld, const config_setting_t *s, const char *kp,
    long long min, long long max, long long *out)
{
	long long v;
	int type = config_setting_type(s);

	if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
		add_error(ld, line_of(s), kp, "expected an integer");
		return -1;
	}
	v = config_setting_get_int64(s);
	if (v < min || v > max) {
		add_error(ld, line_of(s), kp, "must be between %lld and %lld",
		    min, max);
		return -1;
	}
	*out = v;
	return 0;
}

/* Reads a string setting; NULL after an error. */
static const char *
get_string(struct loader *ld, const config_setting_t *s, const char *kp)
{
	const char *v;

	if (config_setting_type(s) != CONFIG_TYPE_STRING ||
	    (v = config_setting_get_string(s)) == NULL) {
		add_error(ld, line_of(s), kp, "expected a string");
		return NULL;
	}
	return v;
}

/* Reads and checks a string; returns an owned copy or NULL after an error. */
static char *
get_checked_string(struct loader *ld, const config_setting_t *s, const char *kp,
    check_fn check)
{
	const char *v;
	char why[WHY_MAX], *out;

	if ((v = get_string(ld, s, kp)) == NULL)
		return NULL;
	if (check == NULL)
		return xstrdup(v);
	why[0] = '\0';
	if ((out = check(v, why, sizeof why)) == NULL)
		add_error(ld, line_of(s), kp, "%s", why);
	return out;
}

static int
get_enum(struct loader *ld, const config_setting_t *s, const char *kp,
    const char *const *names, int *out)
{
	const char *v;
	struct buf b;
	int i;

	if ((v = get_string(ld, s, kp)) == NULL)
		return -1;
	for (i = 0; names[i] != NULL; i++) {
		if (strcmp(v, names[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	buf_init(&b);
	for (i = 0; names[i] != NULL; i++)
		buf_printf(&b, "%s%s", i > 0 ? ", " : "", names[i]);
	add_error(ld, line_of(s), kp, "must be one of %s", buf_cstr(&b));
	buf_cleanup(&b);
	return -1;
}

static const char *
array_what(enum ktype type)
{
	switch (type) {
	case K_INTLIST: return "an array of integers";
	case K_CIDRS: return "an array of CIDR strings";
	case K_METHODS: return "an array of method names";
	default: return "an array of strings";
	}
}

/*
 * K_STRLIST, K_JOINED, K_INTLIST, K_CIDRS and K_METHODS: an array (or a
 * list) of scalars.  The value is stored only when every element is valid.
 */
static void
walk_array(struct loader *ld, const config_setting_t *s, const struct key *e,
    void *base, const char *kp)
{
	char **strs = NULL, *ekp, *str;
	int *ints = NULL;
	struct cidr *cidrs = NULL;
	const config_setting_t *el;
	const char *v, *why;
	unsigned mask = 0, bit;
	long long iv;
	size_t n = 0, i, bad = 0;
	int type = config_setting_type(s);
	struct buf b;

	if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
		add_error(
		    ld, line_of(s), kp, "expected %s", array_what(e->type));
		return;
	}
	n = (size_t)config_setting_length(s);
	if (!count_ok(ld, s, kp, e, n))
		return;
	strs = xcalloc(n, sizeof *strs);
	ints = xcalloc(n, sizeof *ints);
	cidrs = xcalloc(n, sizeof *cidrs);
	for (i = 0; i < n; i++) {
		el = config_setting_get_elem(s, (unsigned)i);
		ekp = elem_path(kp, (int)i);
		switch (e->type) {
		case K_INTLIST:
			if (get_integer(ld, el, ekp, e->min, e->max, &iv) == 0)
				ints[i] = (int)iv;
			else
				bad++;
			break;
		case K_CIDRS:
			if ((v = get_string(ld, el, ekp)) == NULL)
				bad++;
			else if (cidr_parse_why(v, &cidrs[i], &why) == -1) {
				char q[QUOTE_MAX + 8];

				quote(v, q, sizeof q);
				if (strcmp(why, "host bits set") == 0)
					add_error(ld, line_of(el), ekp,
					    "bad CIDR %s: host bits set", q);
				else
					add_error(ld, line_of(el), ekp,
					    "bad CIDR %s", q);
				bad++;
			}
			break;
		case K_METHODS:
			str = get_checked_string(ld, el, ekp, check_method);
			if (str == NULL) {
				bad++;
				break;
			}
			bit = http_method_bit(str);
			mask |= bit;
			free(str);
			break;
		default:
			str = get_checked_string(ld, el, ekp, e->check);
			if (str == NULL)
				bad++;
			strs[i] = str;
			break;
		}
		free(ekp);
	}
	if (bad > 0)
		goto out;
	switch (e->type) {
	case K_INTLIST:
		free(*AT(base, e->off, int *));
		*AT(base, e->off, int *) = ints;
		*AT(base, e->off_n, size_t) = n;
		ints = NULL;
		break;
	case K_CIDRS:
		free(*AT(base, e->off, struct cidr *));
		*AT(base, e->off, struct cidr *) = cidrs;
		*AT(base, e->off_n, size_t) = n;
		cidrs = NULL;
		break;
	case K_METHODS: *AT(base, e->off, unsigned) = mask; break;
	case K_STRLIST:
		free_strs(
		    *AT(base, e->off, char **), *AT(base, e->off_n, size_t));
		*AT(base, e->off, char **) = strs;
		*AT(base, e->off_n, size_t) = n;
		strs = NULL;
		break;
	default: /* K_JOINED */
		buf_init(&b);
		for (i = 0; i < n; i++)
			buf_printf(&b, "%s%s", i > 0 ? ", " : "", strs[i]);
		free(*AT(base, e->off, char *));
		*AT(base, e->off, char *) = xstrdup(buf_cstr(&b));
		buf_cleanup(&b);
		break;
	}
out:
	free_strs(strs, n);
	free(ints);
	free(cidrs);
}

static uint64_t walk_group(struct loader *, const config_setting_t *,
    const struct key *, void *, const char *);

static void
walk_policy(struct loader *ld, const config_setting_t *s, const struct key *e,
    struct rl_policy *pol, const char *kp)
{
	uint64_t seen, windows;
	int w;

	if (!config_setting_is_group(s)) {
		add_error(ld, line_of(s), kp, "expected a group");
		return;
	}
	pol->present = 1;
	for (w = 0; w < RL_NWINDOWS; w++)
		pol->limit[w] = 0;
	seen = walk_group(ld, s, policy_keys, pol, kp);
	windows = key_bit(policy_keys, "requests_per_second") |
	    key_bit(policy_keys, "requests_per_minute") |
	    key_bit(policy_keys, "requests_per_hour") |
	    key_bit(policy_keys, "requests_per_day");
	if ((seen & windows) == 0) {
		if (e->flags & KF_DEFAULT_POLICY)
			pol->limit[RL_MINUTE] = 60;
		else
			add_error(ld, line_of(s), kp,
			    "a policy needs at least "
			    "one of requests_per_second, requests_per_minute, "
			    "requests_per_hour, requests_per_day");
	}
	pol->algorithm_set = (seen & key_bit(policy_keys, "algorithm")) != 0;
}

static void
walk_list(struct loader *ld, const config_setting_t *s, const struct key *e,
    void *base, const char *kp)
{
	const config_setting_t *el;
	char *elems, *item, *ekp;
	size_t n, i;

	if (!config_setting_is_list(s)) {
		add_error(ld, line_of(s), kp,
		    "expected a list of groups: ( { ... }, { ... } )");
		return;
	}
	n = (size_t)config_setting_length(s);
	if (!count_ok(ld, s, kp, e, n))
		return;
	elems = xcalloc(n, e->elem_size);
	for (i = 0; i < n; i++) {
		el = config_setting_get_elem(s, (unsigned)i);
		item = elems + i * e->elem_size;
		set_defaults(e->sub, item);
		*AT(item, e->off_line, int) = (int)line_of(el);
		ekp = elem_path(kp, (int)i);
		if (!config_setting_is_group(el))
			add_error(ld, line_of(el), ekp, "expected a group");
		else
			walk_group(ld, el, e->sub, item, ekp);
		free(ekp);
	}
	*AT(base, e->off, char *) = elems;
	*AT(base, e->off_n, size_t) = n;
}

/* Checks and stores one setting s described by e. */
static void
walk_value(struct loader *ld, const config_setting_t *s, const struct key *e,
    void *base, const char *kp)
{
	long long v;
	int iv;
	char *str;

	switch (e->type) {
	case K_LONG:
		if (get_integer(ld, s, kp, e->min, e->max, &v) == 0)
			*AT(base, e->off, long) = (long)v;
		break;
	case K_INT:
		if (get_integer(ld, s, kp, e->min, e->max, &v) == 0)
			*AT(base, e->off, int) = (int)v;
		break;
	case K_BOOL:
		if (config_setting_type(s) != CONFIG_TYPE_BOOL)
			add_error(ld, line_of(s), kp,
			    "expected a boolean (true or false)");
		else
			*AT(base, e->off, int) =
			    config_setting_get_bool(s) ? 1 : 0;
		break;
	case K_STRING:
		if ((str = get_checked_string(ld, s, kp, e->check)) != NULL) {
			free(*AT(base, e->off, char *));
			*AT(base, e->off, char *) = str;
		}
		break;
	case K_ENUM:
		if (get_enum(ld, s, kp, e->names, &iv) == 0)
			*AT(base, e->off, int) = iv;
		break;
	case K_STRLIST:
	case K_JOINED:
	case K_INTLIST:
	case K_CIDRS:
	case K_METHODS: walk_array(ld, s, e, base, kp); break;
	case K_GROUP:
		if (!config_setting_is_group(s))
			add_error(ld, line_of(s), kp, "expected a group");
		else
			walk_group(ld, s, e->sub, base, kp);
		break;
	case K_POLICY:
		walk_policy(ld, s, e, AT(base, e->off, struct rl_policy), kp);
		break;
	case K_LIST: walk_list(ld, s, e, base, kp); break;
	case K_SETTING:
		if (!config_setting_is_group(s))
			add_error(ld, line_of(s), kp, "expected a group");
		else
			*AT(base, e->off, void *) = (void *)s;
		break;
	}
}

/*
 * Walks every setting of grp against tab, storing into base.  Returns the
 * set of keys seen (bit i for tab[i]), valid or not.
 */
static uint64_t
walk_group(struct loader *ld, const config_setting_t *grp,
    const struct key *tab, void *base, const char *path)
{
	const config_setting_t *s;
	const struct key *e;
	uint64_t seen = 0;
	char *kp;
	int i, n, idx;

	n = config_setting_length(grp);
	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(grp, (unsigned)i);
		kp = key_path(path,
		    config_setting_name(s) != NULL ? config_setting_name(s)
		                                   : "?");
		if ((e = find_key(tab, config_setting_name(s), &idx)) == NULL)
			add_error(ld, line_of(s), kp, "unknown key");
		else {
			seen |= (uint64_t)1 << idx;
			walk_value(ld, s, e, base, kp);
		}
		free(kp);
	}
	for (i = 0; tab[i].name != NULL; i++) {
		if (!(tab[i].flags & KF_REQUIRED) ||
		    (seen & ((uint64_t)1 << i)))
			continue;
		kp = key_path(path, tab[i].name);
		add_error(ld, line_of(grp), kp, "missing required %s",
		    tab[i].type == K_GROUP || tab[i].type == K_LIST ? "section"
		                                                    : "key");
		free(kp);
	}
	return seen;
}

/* ---- checks across keys ---- */

static void
route_id(const char *prefix, char out[17])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int i;

	if (EVP_Digest(
	        prefix, strlen(prefix), md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen < 8)
		abort();
	for (i = 0; i < 8; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[16] = '\0';
}

static int
route_cmp(const void *a, const void *b)
{
	const struct route *ra = a, *rb = b;

	if (ra->prefix_len != rb->prefix_len)
		return ra->prefix_len > rb->prefix_len ? -1 : 1;
	return strcmp(ra->prefix, rb->prefix);
}

static unsigned
prefix_line(const config_setting_t *routes, size_t i)
{
	const config_setting_t *el, *p;

	if (routes == NULL ||
	    (el = config_setting_get_elem(routes, (unsigned)i)) == NULL)
		return 0;
	if (!config_setting_is_group(el) ||
	    (p = config_setting_get_member(el, "prefix")) == NULL)
		return line_of(el);
	return line_of(p);
}

static void
finish_routes(
    struct loader *ld, struct config *cfg, const config_setting_t *routes)
{
	struct route *r, *o;
	size_t i, j;
	char *kp, q[QUOTE_MAX + 8];

	for (i = 0; i < cfg->n_routes; i++) {
		r = &cfg->routes[i];
		if (!r->rate_limit.algorithm_set)
			r->rate_limit.algorithm = cfg->rate_limit.algorithm;
		if (r->prefix == NULL)
			continue;
		r->prefix_len = strlen(r->prefix);
		route_id(r->prefix, r->route_id);
		for (j = 0; j < i; j++) {
			o = &cfg->routes[j];
			if (o->prefix == NULL ||
			    o->prefix_len != r->prefix_len ||
			    strcmp(o->prefix, r->prefix) != 0)
				continue;
			kp = xasprintf("routes.[%zu].prefix", i);
			quote(r->prefix, q, sizeof q);
			add_error(ld, prefix_line(routes, i), kp,
			    "duplicate prefix %s (first at line %u)", q,
			    prefix_line(routes, j));
			free(kp);
			break;
		}
	}
	if (ld->nerr == 0 && cfg->n_routes > 1)
		qsort(
		    cfg->routes, cfg->n_routes, sizeof *cfg->routes, route_cmp);
}

/* ---- reading the file ---- */

static int
read_file(
    struct loader *ld, const char *path, struct buf *text, struct stat *st)
{
	char chunk[16384];
	ssize_t n;
	int fd, err, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		err = errno;
		add_message(ld, 0,
		    xasprintf("%s: cannot open: %s", path, strerror(err)));
		goto out;
	}
	if (fstat(fd, st) == -1) {
		err = errno;
		add_message(ld, 0,
		    xasprintf("%s: cannot stat: %s", path, strerror(err)));
		goto out;
	}
	if (S_ISDIR(st->st_mode)) {
		add_message(ld, 0, xasprintf("%s: is a directory", path));
		goto out;
	}
	for (;;) {
		n = read(fd, chunk, sizeof chunk);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			err = errno;
			add_message(ld, 0,
			    xasprintf(
			        "%s: cannot read: %s", path, strerror(err)));
			goto out;
		}
		if (n == 0)
			break;
		if (text->len + (size_t)n > CONFIG_MAX_BYTES) {
			add_message(ld, 0,
			    xasprintf("%s: larger than %d bytes", path,
			        CONFIG_MAX_BYTES));
			goto out;
		}
		buf_append(text, chunk, (size_t)n);
	}
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	return rc;
}

static int
is_name_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '*';
}

static int
is_name_char(unsigned char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9') || c == '_' ||
	    c == '-';
}

/*
 * Checks one integer literal t[0..n) (with an optional sign) that libconfig
 * will read: without an L suffix it keeps only 32 bits, so a bigger value
 * would silently wrap (4294967396 reads as 100).
 */
static void
check_int_literal(
    struct loader *ld, unsigned line, const char *t, size_t n, int is64)
{
	char lit[64], *end;
	int neg = 0, hex = 0, bad = 0;
	unsigned long long u;
	const char *d = t;

	if (n >= sizeof lit) {
		bad = 1;
		goto out;
	}
	if (*d == '-' || *d == '+')
		neg = *d++ == '-';
	if (d[0] == '0' && (d[1] == 'x' || d[1] == 'X'))
		hex = 1;
	memcpy(lit, d, n - (size_t)(d - t));
	lit[n - (size_t)(d - t)] = '\0';
	errno = 0;
	u = strtoull(lit, &end, hex ? 16 : 10);
	if (errno == ERANGE)
		bad = 1;
	else if (is64)
		bad = u > (unsigned long long)LLONG_MAX + (neg && !hex);
	else
		bad = u > (unsigned long long)INT_MAX + (neg && !hex);
out:
	if (bad) {
		snprintf(lit, sizeof lit, "%.*s", n > 40 ? 40 : (int)n, t);
		add_error(ld, line, NULL, "integer %s%s is out of range (%s)",
		    lit, n > 40 ? "..." : "",
		    is64 ? "64-bit" : "at most 2147483647 without an L suffix");
	}
}

/*
 * Scans the text for what libconfig would accept silently but wrongly:
 * NUL bytes (it would ignore the rest of the file) and integer literals
 * that do not fit (found with a small lexer that skips comments, strings,
 * names and floats as libconfig's does), and for @include at the start of
 * a line, which libconfig would follow (from the current directory, even
 * into a FIFO or a device) and which the one-file contract does not allow.
 * Returns -1 when the text must not be parsed at all; bad integers are
 * reported but the parse goes on, to find more errors.
 */
static int
prescan(struct loader *ld, const char *t, size_t len)
{
	size_t i = 0, start;
	unsigned line = 1;
	const char *nul, *eol;
	int is64, fatal = 0;

	if ((nul = memchr(t, '\0', len)) != NULL) {
		for (i = 0; t + i < nul; i++)
			if (t[i] == '\n')
				line++;
		add_error(ld, line, NULL, "NUL byte in the file");
		return -1;
	}
	for (i = 0; i < len; line++) {
		start = i + strspn(t + i, " \t");
		if (strncmp(t + start, "@include", 8) == 0) {
			add_error(ld, line, NULL,
			    "@include is not supported "
			    "(the configuration is one file)");
			fatal = 1;
		}
		if ((eol = memchr(t + i, '\n', len - i)) == NULL)
			break;
		i = (size_t)(eol - t) + 1;
	}
	if (fatal)
		return -1;
	i = 0;
	line = 1;
	while (i < len) {
		unsigned char c = (unsigned char)t[i];

		if (c == '\n') {
			line++;
			i++;
		} else if (c == '#' || (c == '/' && t[i + 1] == '/')) {
			while (i < len && t[i] != '\n')
				i++;
		} else if (c == '/' && t[i + 1] == '*') {
			for (i += 2;
			     i < len && !(t[i] == '*' && t[i + 1] == '/'); i++)
				if (t[i] == '\n')
					line++;
			i = i < len ? i + 2 : len;
		} else if (c == '"') {
			for (i++; i < len && t[i] != '"'; i++) {
				if (t[i] == '\\' && i + 1 < len)
					i++;
				if (t[i] == '\n')
					line++;
			}
			i++;
		} else if (c == '.') {
			/* the rest of a float such as .5e3 */
			for (i++; i < len &&
			     ((t[i] >= '0' && t[i] <= '9') || t[i] == 'e' ||
			         t[i] == 'E' || t[i] == '-' || t[i] == '+');
			     i++)
				;
		} else if (is_name_start(c)) {
			while (i < len && is_name_char((unsigned char)t[i]))
				i++;
		} else if ((c >= '0' && c <= '9') ||
		    ((c == '-' || c == '+') && t[i + 1] >= '0' &&
		        t[i + 1] <= '9')) {
			start = i;
			if (c == '-' || c == '+')
				i++;
			if (t[i] == '0' &&
			    (t[i + 1] == 'x' || t[i + 1] == 'X')) {
				for (i += 2;
				     i < len && is_hex((unsigned char)t[i]);
				     i++)
					;
			} else {
				for (; i < len && t[i] >= '0' && t[i] <= '9';
				     i++)
					;
				if (t[i] == '.' || t[i] == 'e' || t[i] == 'E') {
					/* a float: skip it */
					while (i < len &&
					    (is_hex((unsigned char)t[i]) ||
					        t[i] == '.' || t[i] == '-' ||
					        t[i] == '+'))
						i++;
					continue;
				}
			}
			is64 = t[i] == 'L';
			check_int_literal(ld, line, t + start, i - start, is64);
			while (i < len && t[i] == 'L')
				i++;
		} else
			i++;
	}
	return 0;
}

/* ---- the API ---- */

void
config_errors_cleanup(struct config_errors *errs)
{
	size_t i;

	if (errs == NULL)
		return;
	for (i = 0; i < errs->n; i++)
		free(errs->msg[i]);
	free(errs->msg);
	errs->msg = NULL;
	errs->n = 0;
}

void
config_free(struct config *cfg)
{
	struct config_priv *priv = (struct config_priv *)cfg;

	if (cfg == NULL)
		return;
	free_keys(root_keys, cfg);
	redis_url_cleanup(&cfg->redis.parsed);
	if (cfg->cf != NULL) {
		config_destroy(cfg->cf);
		free(cfg->cf);
	}
	free(cfg->path);
	free(priv);
}

struct config *
config_load(const char *path, struct config_errors *errs)
{
	struct config_priv *priv = NULL;
	struct config *cfg = NULL, *ret = NULL;
	struct loader ld;
	struct buf text;
	struct stat st;
	config_t *cf;
	const char *why;
	int have_st = 0;

	if (errs != NULL) {
		errs->msg = NULL;
		errs->n = 0;
	}
	ld.file = path != NULL ? path : "(null)";
	ld.msgs = NULL;
	ld.n_msgs = 0;
	ld.nerr = 0;
	buf_init(&text);
	if (path == NULL) {
		add_message(&ld, 0, xstrdup("(null): no configuration file"));
		goto out;
	}
	if (read_file(&ld, path, &text, &st) == -1)
		goto out;
	have_st = 1;
	if (prescan(&ld, buf_cstr(&text), text.len) == -1)
		goto out;

	priv = xcalloc(1, sizeof *priv);
	cfg = &priv->pub;
	set_defaults(root_keys, cfg);
	cfg->path = xstrdup(path);
	cfg->mtime = st.st_mtime;
	file_sig_of(&st, &priv->sig);

	cf = xmalloc(sizeof *cf);
	config_init(cf);
	cfg->cf = cf;
	if (config_read_string(cf, buf_cstr(&text)) != CONFIG_TRUE) {
		add_error(&ld, (unsigned)config_error_line(cf), NULL, "%s",
		    config_error_text(cf) != NULL ? config_error_text(cf)
		                                  : "cannot parse");
		goto out;
	}
	walk_group(&ld, config_root_setting(cf), root_keys, cfg, "");
	finish_routes(&ld, cfg, config_lookup(cf, "routes"));
	if (ld.nerr > 0)
		goto out;
	if (redis_url_parse(cfg->redis.url, &cfg->redis.parsed, &why) == -1) {
		add_error(&ld, 0, "redis.url", "%s", why); /* checked */
		goto out;
	}
	ret = cfg;
	cfg = NULL;
out:
	if (ret == NULL && have_st) {
		file_sig_of(&st, &failed_sig);
		failed_sig_set = 1;
	} else if (ret != NULL)
		failed_sig_set = 0;
	loader_finish(&ld, errs);
	config_free(cfg);
	buf_cleanup(&text);
	return ret;
}

/*
 * "Changed" means: mtime (with nanoseconds), size, inode or device differ
 * from the file cfg was read from, and the file is not the one the last
 * config_load refused, so a broken edit is reported by one reload, not
 * every second until it is fixed.
 */
int
config_changed(const struct config *cfg, time_t now)
{
	static time_t last_check;
	static int checked;
	const struct config_priv *priv = (const struct config_priv *)cfg;
	struct file_sig sig;
	struct stat st;

	if (cfg == NULL || cfg->path == NULL)
		return 0;
	if (checked && now >= last_check && now - last_check < 1)
		return 0;
	checked = 1;
	last_check = now;
	if (stat(cfg->path, &st) == -1)
		return 0; /* gone: keep serving what we have */
	file_sig_of(&st, &sig);
	if (file_sig_equal(&sig, &priv->sig))
		return 0;
	if (failed_sig_set && file_sig_equal(&sig, &failed_sig))
		return 0; /* refused already; wait for the next change */
	return 1;
}

void
config_refuse(const struct config *cfg)
{
	const struct config_priv *priv = (const struct config_priv *)cfg;

	failed_sig = priv->sig;
	failed_sig_set = 1;
}

static const config_setting_t *
plugin_member(const void *setting, const char *name)
{
	const config_setting_t *grp = setting;

	if (grp == NULL || name == NULL || !config_setting_is_group(grp))
		return NULL;
	return config_setting_get_member(grp, name);
}

const char *
config_plugin_string(const void *setting, const char *name)
{
	const config_setting_t *s = plugin_member(setting, name);

	if (s == NULL || config_setting_type(s) != CONFIG_TYPE_STRING)
		return NULL;
	return config_setting_get_string(s);
}

int
config_plugin_int(const void *setting, const char *name, long long *out)
{
	const config_setting_t *s = plugin_member(setting, name);

	if (s == NULL)
		return -1;
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64: *out = config_setting_get_int64(s); return 0;
	case CONFIG_TYPE_BOOL:
		*out = config_setting_get_bool(s) ? 1 : 0;
		return 0;
	default: return -1;
	}
}
