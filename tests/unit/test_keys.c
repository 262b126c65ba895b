/*
 * Unit tests for keys (secrets, ids, hashes, record names) and keys_args
 * (the apigw-keys command line).  The Redis side is covered by
 * tests/integration/test_keys_cli.py against a real redis-server.
 *
 * getrandom(2) is interposed below: keys.o resolves it to this file's
 * definition, which passes through to the kernel unless a test scripts
 * it.  That proves the key bytes come from getrandom, and lets the tests
 * provoke EINTR, short reads and failure.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "buf.h"
#include "config.h"
#include "keys.h"
#include "keys_args.h"

/* ---- a scriptable getrandom ---- */

enum fake_mode {
	FAKE_REAL = 0,		/* the kernel's */
	FAKE_PATTERN,		/* bytes 0, 1, 2, ... in one call */
	FAKE_SHORT,		/* the same pattern, one byte per call */
	FAKE_EINTR_ONCE,	/* EINTR, then the pattern */
	FAKE_FAIL,		/* ENOSYS */
	FAKE_ZERO,		/* returns 0 bytes */
};

static enum fake_mode fake_mode;
static unsigned fake_calls;
static unsigned fake_bad_flags;
static unsigned char fake_next;

ssize_t
getrandom(void *buf, size_t len, unsigned int flags)
{
	unsigned char *p = buf;
	size_t i;

	fake_calls++;
	if (flags != 0)
		fake_bad_flags++;
	switch (fake_mode) {
	case FAKE_REAL:
		return syscall(SYS_getrandom, buf, len, flags);
	case FAKE_EINTR_ONCE:
		fake_mode = FAKE_PATTERN;
		errno = EINTR;
		return -1;
	case FAKE_FAIL:
		errno = ENOSYS;
		return -1;
	case FAKE_ZERO:
		return 0;
	case FAKE_SHORT:
		if (len > 1)
			len = 1;
		break;
	case FAKE_PATTERN:
		break;
	}
	for (i = 0; i < len; i++)
		p[i] = fake_next++;
	return (ssize_t)len;
}

static int
fake_reset(void **state)
{
	(void)state;
	fake_mode = FAKE_REAL;
	fake_calls = 0;
	fake_bad_flags = 0;
	fake_next = 0;
	return 0;
}

/* ---- helpers ---- */

static int
is_b64url(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static int
b64url_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '-' ? 62 : 63;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/* ---- key generation ---- */

static void
test_generate_format(void **state)
{
	char key[KEYS_SECRET_LEN + 1];
	size_t i;

	(void)state;
	memset(key, 'x', sizeof key);
	assert_int_equal(keys_generate(key), 0);
	assert_int_equal(strlen(key), 46);
	assert_int_equal(KEYS_SECRET_LEN, 46);
	assert_memory_equal(key, "gw_", 3);
	for (i = 3; i < 46; i++)
		assert_true(is_b64url(key[i]));
	assert_null(strchr(key, '='));
	assert_null(strchr(key, '+'));
	assert_null(strchr(key, '/'));
	/* 256 bits in 43 characters: the last one carries 4 bits */
	assert_int_equal(b64url_value(key[45]) & 3, 0);
	assert_true(keys_format_ok(key, strlen(key)));
}

static void
test_generate_differs(void **state)
{
	char a[KEYS_SECRET_LEN + 1], b[KEYS_SECRET_LEN + 1];

	(void)state;
	assert_int_equal(keys_generate(a), 0);
	assert_int_equal(keys_generate(b), 0);
	assert_string_not_equal(a, b);
}

static void
test_generate_many(void **state)
{
	enum { N = 1000 };
	static char keys[N][KEYS_SECRET_LEN + 1];
	unsigned count[64], last[64];
	size_t i, j;

	(void)state;
	memset(count, 0, sizeof count);
	memset(last, 0, sizeof last);
	for (i = 0; i < N; i++) {
		assert_int_equal(keys_generate(keys[i]), 0);
		/* characters 3..44 carry 6 random bits each */
		for (j = 3; j < 45; j++)
			count[b64url_value(keys[i][j])]++;
		last[b64url_value(keys[i][45])]++;
	}
	assert_true(fake_calls >= N);		/* each key from getrandom */
	assert_int_equal(fake_bad_flags, 0);	/* blocking, urandom pool */

	qsort(keys, N, sizeof keys[0], cmp_str);
	for (i = 1; i < N; i++)
		assert_string_not_equal(keys[i - 1], keys[i]);

	/*
	 * 42000 characters over 64 symbols: about 656 each, standard
	 * deviation about 25.  The bounds are 10 deviations wide: a
	 * working generator never fails them, a degenerate one always does.
	 */
	for (i = 0; i < 64; i++) {
		assert_in_range(count[i], 400, 920);
	}
	/* the last character: 16 values (low 2 bits zero), about 62 each */
	for (i = 0; i < 64; i++) {
		if (i % 4 == 0)
			assert_in_range(last[i], 15, 140);
		else
			assert_int_equal(last[i], 0);
	}
}

static void
test_generate_from_getrandom(void **state)
{
	char key[KEYS_SECRET_LEN + 1];

	(void)state;
	/* bytes 00 01 .. 1f, base64url-encoded */
	fake_mode = FAKE_PATTERN;
	assert_int_equal(keys_generate(key), 0);
	assert_string_equal(key, "gw_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
	assert_int_equal(fake_calls, 1);
}

static void
test_generate_short_reads(void **state)
{
	char key[KEYS_SECRET_LEN + 1];

	(void)state;
	fake_mode = FAKE_SHORT;
	assert_int_equal(keys_generate(key), 0);
	assert_string_equal(key, "gw_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
	assert_int_equal(fake_calls, 32);
}

static void
test_generate_eintr(void **state)
{
	char key[KEYS_SECRET_LEN + 1];

	(void)state;
	fake_mode = FAKE_EINTR_ONCE;
	assert_int_equal(keys_generate(key), 0);
	assert_string_equal(key, "gw_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
	assert_int_equal(fake_calls, 2);
}

static void
test_generate_failure(void **state)
{
	char key[KEYS_SECRET_LEN + 1];
	char id[KEYS_ID_LEN + 1];

	(void)state;
	fake_mode = FAKE_FAIL;
	memset(key, 'x', sizeof key);
	assert_int_equal(keys_generate(key), -1);
	assert_string_equal(key, "");		/* nothing half made */
	memset(id, 'x', sizeof id);
	assert_int_equal(keys_generate_id(id), -1);
	assert_string_equal(id, "");

	fake_mode = FAKE_ZERO;
	assert_int_equal(keys_generate(key), -1);
	assert_string_equal(key, "");
}

static void
test_generate_extremes(void **state)
{
	char key[KEYS_SECRET_LEN + 1];

	(void)state;
	/* bytes ff 00 01 ..: the top and the bottom of the alphabet */
	fake_mode = FAKE_PATTERN;
	fake_next = 0xff;
	assert_int_equal(keys_generate(key), 0);
	assert_true(keys_format_ok(key, strlen(key)));
	assert_memory_equal(key, "gw__w", 5);	/* ff 00 -> "_w" */
}

/* ---- format, ids, hashes ---- */

static void
test_format_ok(void **state)
{
	const char *good = "gw_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
	char buf[64];

	(void)state;
	assert_true(keys_format_ok(good, strlen(good)));
	assert_true(keys_format_ok("gw_-_-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v78",
	    46));
	assert_false(keys_format_ok(good, 45));
	assert_false(keys_format_ok(NULL, 46));
	assert_false(keys_format_ok("", 0));

	strcpy(buf, good);
	strcat(buf, "A");
	assert_false(keys_format_ok(buf, strlen(buf)));		/* 47 */
	strcpy(buf, good);
	buf[0] = 'G';
	assert_false(keys_format_ok(buf, strlen(buf)));		/* prefix */
	strcpy(buf, good);
	buf[2] = '-';
	assert_false(keys_format_ok(buf, strlen(buf)));
	strcpy(buf, good);
	buf[45] = '=';
	assert_false(keys_format_ok(buf, strlen(buf)));		/* padding */
	strcpy(buf, good);
	buf[10] = '+';
	assert_false(keys_format_ok(buf, strlen(buf)));		/* base64 */
	strcpy(buf, good);
	buf[10] = '/';
	assert_false(keys_format_ok(buf, strlen(buf)));
	strcpy(buf, good);
	buf[20] = '\0';
	assert_false(keys_format_ok(buf, 46));			/* NUL inside */
	strcpy(buf, good);
	buf[30] = ' ';
	assert_false(keys_format_ok(buf, strlen(buf)));
}

static void
test_hash_known_answers(void **state)
{
	char hex[KEYS_HASH_HEX + 1];
	const char *two_blocks =
	    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	char *million;

	(void)state;
	keys_hash("abc", 3, hex);
	assert_string_equal(hex,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	keys_hash("", 0, hex);
	assert_string_equal(hex,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	keys_hash(two_blocks, strlen(two_blocks), hex);
	assert_string_equal(hex,
	    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	/* only len bytes count */
	keys_hash("abcdef", 3, hex);
	assert_string_equal(hex,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* the whole key string, prefix included, is what is hashed */
	keys_hash("gw_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", 46, hex);
	assert_string_equal(hex,
	    "9f482ae91807aa60fed655610f5a5d32789862099a02b5fc4cb91c892034b7e8");

	million = malloc(1000000);
	assert_non_null(million);
	memset(million, 'a', 1000000);
	keys_hash(million, 1000000, hex);
	assert_string_equal(hex,
	    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(million);
	assert_int_equal(strlen(hex), KEYS_HASH_HEX);
}

static void
test_id(void **state)
{
	char a[KEYS_ID_LEN + 1], b[KEYS_ID_LEN + 1];
	size_t i;

	(void)state;
	assert_int_equal(keys_generate_id(a), 0);
	assert_int_equal(keys_generate_id(b), 0);
	assert_int_equal(strlen(a), 16);
	for (i = 0; i < 16; i++)
		assert_non_null(strchr("0123456789abcdef", a[i]));
	assert_true(keys_id_ok(a));
	assert_string_not_equal(a, b);
	assert_true(fake_calls >= 2);

	fake_mode = FAKE_PATTERN;
	assert_int_equal(keys_generate_id(a), 0);
	assert_string_equal(a, "0001020304050607");

	assert_true(keys_id_ok("0123456789abcdef"));
	assert_false(keys_id_ok("0123456789ABCDEF"));
	assert_false(keys_id_ok("0123456789abcde"));
	assert_false(keys_id_ok("0123456789abcdef0"));
	assert_false(keys_id_ok("0123456789abcdeg"));
	assert_false(keys_id_ok("0123456789abcde "));
	assert_false(keys_id_ok("../../../etc/pas"));
	assert_false(keys_id_ok("*"));
	assert_false(keys_id_ok(""));
	assert_false(keys_id_ok(NULL));
}

static void
test_equal(void **state)
{
	const char *h1 =
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	char h2[KEYS_HASH_HEX + 1];

	(void)state;
	memcpy(h2, h1, sizeof h2);
	assert_true(keys_equal(h1, h2, KEYS_HASH_HEX));
	h2[63] = 'c';
	assert_false(keys_equal(h1, h2, KEYS_HASH_HEX));
	h2[63] = 'd';
	h2[0] = 'c';
	assert_false(keys_equal(h1, h2, KEYS_HASH_HEX));
	assert_true(keys_equal(h1, h2, 0));		/* nothing to compare */
	assert_true(keys_equal("abc", "abd", 2));
}

/* Every single differing byte is seen, wherever it is and whatever bit. */
static void
test_equal_every_position(void **state)
{
	static const unsigned char flips[] = {0x01, 0x20, 0x80, 0xff};
	unsigned char a[KEYS_SECRET_LEN], b[KEYS_SECRET_LEN];
	size_t i, f;

	(void)state;
	for (i = 0; i < sizeof a; i++)
		a[i] = (unsigned char)(i * 37 + 11);
	for (i = 0; i < sizeof a; i++) {
		for (f = 0; f < sizeof flips; f++) {
			memcpy(b, a, sizeof b);
			b[i] ^= flips[f];
			assert_false(keys_equal(a, b, sizeof a));
			assert_true(keys_equal(a, b, i)); /* before it: same */
		}
	}
	memcpy(b, a, sizeof b);
	assert_true(keys_equal(a, b, sizeof a));
	b[0] ^= 1;
	b[sizeof b - 1] ^= 1;
	assert_false(keys_equal(a, b, sizeof a));
}

static void
test_equal_str(void **state)
{
	(void)state;
	assert_true(keys_equal_str("", ""));
	assert_true(keys_equal_str("k:0123abcd r1", "k:0123abcd r1"));
	assert_false(keys_equal_str("k:0123abcd r1", "k:0123abcd r2"));
	assert_false(keys_equal_str("k:0123abcd r1", "k:1123abcd r1"));
	assert_false(keys_equal_str("k:0123abcd r1", "k:0123abcd r10"));
	assert_false(keys_equal_str("k:0123abcd r10", "k:0123abcd r1"));
	assert_false(keys_equal_str("", "k"));
	assert_false(keys_equal_str("k", ""));
}

static void
test_record_cleanup(void **state)
{
	struct key_record r;

	(void)state;
	key_record_cleanup(NULL);
	memset(&r, 0, sizeof r);
	r.name = strdup("app");
	r.policy.name = strdup("key");
	r.policy.present = 1;
	key_record_cleanup(&r);
	assert_null(r.name);
	assert_null(r.policy.name);
	assert_int_equal(r.policy.present, 0);
	key_record_cleanup(&r);		/* twice is fine */
}

/* ---- keys_args: values ---- */

static void
test_duration(void **state)
{
	static const struct {
		const char *s;
		long long want;		/* -1: rejected */
	} cases[] = {
		{ "90s", 90 },
		{ "12h", 43200 },
		{ "30d", 2592000 },
		{ "45", 45 },
		{ "1", 1 },
		{ "1s", 1 },
		{ "5m", 300 },
		{ "007", 7 },
		{ "36500d", 3153600000LL },
		{ "876000h", 3153600000LL },
		{ "3153600000", 3153600000LL },
		{ "3153600000s", 3153600000LL },
		{ "36501d", -1 },
		{ "3153600001", -1 },
		{ "52560001m", -1 },
		{ "0", -1 },
		{ "0s", -1 },
		{ "0d", -1 },
		{ "-1", -1 },
		{ "-1s", -1 },
		{ "+5", -1 },
		{ "5x", -1 },
		{ "5S", -1 },
		{ "5ss", -1 },
		{ "5s5", -1 },
		{ "5 ", -1 },
		{ " 5", -1 },
		{ "1.5h", -1 },
		{ "1e3", -1 },
		{ "s", -1 },
		{ "", -1 },
		{ "99999999999999999999999", -1 },
		{ "9223372036854775807", -1 },
		{ "9223372036854775808d", -1 },
		{ "18446744073709551617", -1 },
		{ "5w", -1 },
		{ "5y", -1 },
		{ "0x10", -1 },
	};
	long long got;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		got = -42;
		if (cases[i].want < 0) {
			if (keys_args_duration(cases[i].s, &got) != -1)
				fail_msg("duration '%s' accepted as %lld",
				    cases[i].s, got);
			assert_int_equal(got, -42);
		} else {
			if (keys_args_duration(cases[i].s, &got) != 0)
				fail_msg("duration '%s' rejected", cases[i].s);
			assert_int_equal(got, cases[i].want);
		}
	}
	assert_int_equal(keys_args_duration(NULL, &got), -1);
}

static void
test_count(void **state)
{
	static const struct {
		const char *s;
		long want;
	} cases[] = {
		{ "1", 1 },
		{ "60", 60 },
		{ "0001", 1 },
		{ "1000000000", 1000000000L },
		{ "1000000001", -1 },
		{ "0", -1 },
		{ "00", -1 },
		{ "-5", -1 },
		{ "+5", -1 },
		{ "abc", -1 },
		{ "5a", -1 },
		{ "1e3", -1 },
		{ "", -1 },
		{ " 1", -1 },
		{ "99999999999999999999", -1 },
		{ "4294967297", -1 },
	};
	long got;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		got = -42;
		if (cases[i].want < 0) {
			if (keys_args_count(cases[i].s, &got) != -1)
				fail_msg("count '%s' accepted", cases[i].s);
			assert_int_equal(got, -42);
		} else {
			if (keys_args_count(cases[i].s, &got) != 0)
				fail_msg("count '%s' rejected", cases[i].s);
			assert_int_equal(got, cases[i].want);
		}
	}
	assert_int_equal(keys_args_count(NULL, &got), -1);
}

static void
test_name(void **state)
{
	char n[KEYS_ARGS_NAME_MAX + 2];

	(void)state;
	assert_true(keys_args_name_ok("a"));
	assert_true(keys_args_name_ok("Basic App (staging) #2 ~!"));
	memset(n, 'x', sizeof n);
	n[KEYS_ARGS_NAME_MAX] = '\0';
	assert_true(keys_args_name_ok(n));
	n[KEYS_ARGS_NAME_MAX] = 'x';
	n[KEYS_ARGS_NAME_MAX + 1] = '\0';
	assert_false(keys_args_name_ok(n));
	assert_false(keys_args_name_ok(""));
	assert_false(keys_args_name_ok(NULL));
	assert_false(keys_args_name_ok("tab\there"));
	assert_false(keys_args_name_ok("new\nline"));
	assert_false(keys_args_name_ok("esc\033[2J"));
	assert_false(keys_args_name_ok("del\177"));
	assert_false(keys_args_name_ok("caf\303\251"));
}

/* ---- keys_args: whole command lines ---- */

#define ARGV(...) ((char *[]){ "apigw-keys", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "apigw-keys", __VA_ARGS__ }) / \
    sizeof(char *)))
#define PARSE(a, ...) keys_args_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (a))

/* Expects a parse error whose message contains want, on one line. */
static void
expect_error(struct keys_args *a, int rc, const char *want)
{
	if (rc != -1)
		fail_msg("accepted, wanted an error containing '%s'", want);
	if (strstr(a->err, want) == NULL)
		fail_msg("error '%s' does not contain '%s'", a->err, want);
	assert_null(strchr(a->err, '\n'));
	assert_true(strlen(a->err) > 0);
}

static void
test_parse_create(void **state)
{
	struct keys_args a;

	(void)state;
	assert_int_equal(PARSE(&a, "create", "Basic App"), 0);
	assert_int_equal(a.cmd, KEYS_CMD_CREATE);
	assert_string_equal(a.name, "Basic App");
	assert_null(a.id);
	assert_null(a.config);
	assert_false(keys_args_has_policy(&a));
	assert_int_equal(a.expires_in_s, 0);

	assert_int_equal(PARSE(&a, "--config", "/tmp/x.conf", "create", "app",
	    "--requests-per-minute", "60", "--requests-per-hour=1000",
	    "--requests-per-second", "5", "--requests-per-day", "10000",
	    "--burst", "20", "--algorithm", "token_bucket",
	    "--expires-in", "30d"), 0);
	assert_int_equal(a.cmd, KEYS_CMD_CREATE);
	assert_string_equal(a.config, "/tmp/x.conf");
	assert_string_equal(a.name, "app");
	assert_int_equal(a.limit[RL_SECOND], 5);
	assert_int_equal(a.limit[RL_MINUTE], 60);
	assert_int_equal(a.limit[RL_HOUR], 1000);
	assert_int_equal(a.limit[RL_DAY], 10000);
	assert_int_equal(a.burst, 20);
	assert_true(a.algorithm_set);
	assert_int_equal(a.algorithm, RL_TOKEN_BUCKET);
	assert_int_equal(a.expires_in_s, 30 * 86400);
	assert_true(keys_args_has_policy(&a));

	/* options first, "--config=", the name after "--" */
	assert_int_equal(PARSE(&a, "--config=/c", "create",
	    "--algorithm=gcra", "--requests-per-minute", "1", "--",
	    "--weird-name"), 0);
	assert_string_equal(a.config, "/c");
	assert_string_equal(a.name, "--weird-name");
	assert_int_equal(a.algorithm, RL_GCRA);

	assert_int_equal(PARSE(&a, "create", "-"), 0);
	assert_string_equal(a.name, "-");

	assert_int_equal(PARSE(&a, "create", "x", "--algorithm",
	    "sliding_window", "--requests-per-day", "1"), 0);
	assert_int_equal(a.algorithm, RL_SLIDING_WINDOW);
	assert_int_equal(PARSE(&a, "create", "x", "--algorithm",
	    "fixed_window", "--requests-per-day", "1"), 0);
	assert_int_equal(a.algorithm, RL_FIXED_WINDOW);
}

static void
test_parse_create_errors(void **state)
{
	struct keys_args a;
	char longname[KEYS_ARGS_NAME_MAX + 2];

	(void)state;
	expect_error(&a, PARSE(&a, "create"), "missing NAME");
	expect_error(&a, PARSE(&a, "create", ""), "NAME must be");
	memset(longname, 'n', sizeof longname);
	longname[sizeof longname - 1] = '\0';
	expect_error(&a, PARSE(&a, "create", longname), "NAME must be");
	expect_error(&a, PARSE(&a, "create", "a\tb"), "NAME must be");
	expect_error(&a, PARSE(&a, "create", "a", "b"),
	    "unexpected argument 'b'");
	expect_error(&a, PARSE(&a, "create", "a", "--burst", "5"),
	    "--burst needs at least one --requests-per-*");
	expect_error(&a, PARSE(&a, "create", "a", "--algorithm", "gcra"),
	    "--algorithm needs at least one --requests-per-*");
	expect_error(&a, PARSE(&a, "create", "a", "--algorithm", "leaky"),
	    "'leaky' is not one of");
	expect_error(&a, PARSE(&a, "create", "a", "--requests-per-minute",
	    "0"), "--requests-per-minute: '0' is not a whole number");
	expect_error(&a, PARSE(&a, "create", "a", "--requests-per-hour",
	    "1000000001"), "from 1 to 1000000000");
	expect_error(&a, PARSE(&a, "create", "a", "--requests-per-second",
	    "-3"), "is not a whole number");
	expect_error(&a, PARSE(&a, "create", "a", "--requests-per-day",
	    "ten"), "'ten'");
	expect_error(&a, PARSE(&a, "create", "a", "--requests-per-minute",
	    "5", "--burst", "0"), "--burst: '0'");
	expect_error(&a, PARSE(&a, "create", "a", "--expires-in", "0"),
	    "--expires-in: '0' is not a duration");
	expect_error(&a, PARSE(&a, "create", "a", "--expires-in", "5x"),
	    "is not a duration");
	expect_error(&a, PARSE(&a, "create", "a", "--expires-in", "-1"),
	    "is not a duration");
	expect_error(&a, PARSE(&a, "create", "a", "--expires-in", ""),
	    "is not a duration");
	expect_error(&a, PARSE(&a, "create", "a", "--expires-in",
	    "99999999999999999999d"), "is not a duration");
	expect_error(&a, PARSE(&a, "create", "a", "--requests-per-minute"),
	    "option --requests-per-minute needs a value");
	expect_error(&a, PARSE(&a, "create", "a", "--requests-per-minute",
	    "5", "--requests-per-minute", "6"), "given twice");
	expect_error(&a, PARSE(&a, "create", "a", "--rpm", "5"),
	    "unknown option '--rpm'");
	expect_error(&a, PARSE(&a, "create", "a", "--json"),
	    "create: option --json does not apply");
	expect_error(&a, PARSE(&a, "create", "a", "--no-policy"),
	    "option --no-policy does not apply");
	expect_error(&a, PARSE(&a, "create", "a", "--no-expiry"),
	    "does not apply");
	expect_error(&a, PARSE(&a, "--config"), "--config needs a value");
	expect_error(&a, PARSE(&a, "--config=", "list"), "empty file name");
	/* user input is echoed with control characters neutralized */
	expect_error(&a, PARSE(&a, "create", "a", "--expires-in",
	    "1\033[2J"), "'1?[2J'");
}

static void
test_parse_other_commands(void **state)
{
	struct keys_args a;

	(void)state;
	assert_int_equal(PARSE(&a, "list"), 0);
	assert_int_equal(a.cmd, KEYS_CMD_LIST);
	assert_false(a.json);
	assert_int_equal(PARSE(&a, "list", "--json"), 0);
	assert_true(a.json);
	assert_int_equal(PARSE(&a, "--json", "list"), 0);
	assert_true(a.json);

	assert_int_equal(PARSE(&a, "show", "0123456789abcdef"), 0);
	assert_int_equal(a.cmd, KEYS_CMD_SHOW);
	assert_string_equal(a.id, "0123456789abcdef");
	assert_int_equal(PARSE(&a, "show", "--json", "0123456789abcdef"), 0);
	assert_true(a.json);

	/* the id is not checked here: a bad one is "not found" later */
	assert_int_equal(PARSE(&a, "revoke", "not-an-id"), 0);
	assert_int_equal(a.cmd, KEYS_CMD_REVOKE);
	assert_string_equal(a.id, "not-an-id");
	assert_int_equal(PARSE(&a, "delete", "0123456789abcdef"), 0);
	assert_int_equal(a.cmd, KEYS_CMD_DELETE);

	assert_int_equal(PARSE(&a, "update", "0123456789abcdef",
	    "--requests-per-minute", "10"), 0);
	assert_int_equal(a.cmd, KEYS_CMD_UPDATE);
	assert_int_equal(a.limit[RL_MINUTE], 10);
	assert_int_equal(a.limit[RL_HOUR], 0);
	assert_false(a.algorithm_set);
	assert_true(keys_args_has_policy(&a));
	/* on update, --burst alone may change an existing policy */
	assert_int_equal(PARSE(&a, "update", "0123456789abcdef", "--burst",
	    "7"), 0);
	assert_int_equal(a.burst, 7);
	assert_int_equal(PARSE(&a, "update", "0123456789abcdef",
	    "--no-policy"), 0);
	assert_true(a.no_policy);
	assert_true(keys_args_has_policy(&a));
	assert_int_equal(PARSE(&a, "update", "0123456789abcdef",
	    "--expires-in", "12h"), 0);
	assert_int_equal(a.expires_in_s, 43200);
	assert_false(keys_args_has_policy(&a));
	assert_int_equal(PARSE(&a, "update", "0123456789abcdef",
	    "--no-expiry"), 0);
	assert_true(a.no_expiry);
}

static void
test_parse_other_errors(void **state)
{
	struct keys_args a;

	(void)state;
	expect_error(&a, keys_args_parse(1, ARGV(NULL), &a),
	    "missing command");
	expect_error(&a, PARSE(&a, "--config", "x"), "missing command");
	expect_error(&a, PARSE(&a, "frobnicate"), "unknown command 'frobnicate'");
	expect_error(&a, PARSE(&a, "--bogus"), "unknown option '--bogus'");
	expect_error(&a, PARSE(&a, "-x", "list"), "unknown option '-x'");
	expect_error(&a, PARSE(&a, "list", "extra"),
	    "list: unexpected argument 'extra'");
	expect_error(&a, PARSE(&a, "list", "--json=yes"),
	    "option --json takes no value");
	expect_error(&a, PARSE(&a, "list", "--burst", "5"),
	    "list: option --burst does not apply");
	expect_error(&a, PARSE(&a, "list", "--json", "--json"), "given twice");
	expect_error(&a, PARSE(&a, "show"), "show: missing ID");
	expect_error(&a, PARSE(&a, "revoke"), "revoke: missing ID");
	expect_error(&a, PARSE(&a, "delete"), "delete: missing ID");
	expect_error(&a, PARSE(&a, "update"), "update: missing ID");
	expect_error(&a, PARSE(&a, "show", "a", "b"), "unexpected argument");
	expect_error(&a, PARSE(&a, "revoke", "a", "--json"),
	    "revoke: option --json does not apply");
	expect_error(&a, PARSE(&a, "delete", "a", "--expires-in", "5"),
	    "does not apply");
	expect_error(&a, PARSE(&a, "update", "0123456789abcdef"),
	    "update: nothing to change");
	expect_error(&a, PARSE(&a, "update", "0123456789abcdef",
	    "--no-policy", "--burst", "5"), "--no-policy cannot be combined");
	expect_error(&a, PARSE(&a, "update", "0123456789abcdef",
	    "--no-expiry", "--expires-in", "5"),
	    "--no-expiry cannot be combined");
	expect_error(&a, PARSE(&a, "update", "0123456789abcdef",
	    "--requests-per-minute", "1000000001"), "from 1 to 1000000000");
	expect_error(&a, PARSE(&a, "show", "0123456789abcdef", "--help=1"),
	    "takes no value");
	/* a long bad argument is cut in the message */
	expect_error(&a, PARSE(&a, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
	    "...' (try");
}

static void
test_parse_help_version(void **state)
{
	struct keys_args a;

	(void)state;
	assert_int_equal(PARSE(&a, "--help"), 0);
	assert_int_equal(a.cmd, KEYS_CMD_HELP);
	assert_int_equal(PARSE(&a, "-h"), 0);
	assert_int_equal(a.cmd, KEYS_CMD_HELP);
	assert_int_equal(PARSE(&a, "create", "--help"), 0);
	assert_int_equal(a.cmd, KEYS_CMD_HELP);
	assert_int_equal(PARSE(&a, "--version"), 0);
	assert_int_equal(a.cmd, KEYS_CMD_VERSION);
	assert_int_equal(PARSE(&a, "-V"), 0);
	assert_int_equal(a.cmd, KEYS_CMD_VERSION);
	/* after "--", --help is an argument */
	expect_error(&a, PARSE(&a, "--", "--help"), "unknown command '--help'");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_generate_format, fake_reset),
		cmocka_unit_test_setup(test_generate_differs, fake_reset),
		cmocka_unit_test_setup(test_generate_many, fake_reset),
		cmocka_unit_test_setup(test_generate_from_getrandom, fake_reset),
		cmocka_unit_test_setup(test_generate_short_reads, fake_reset),
		cmocka_unit_test_setup(test_generate_eintr, fake_reset),
		cmocka_unit_test_setup(test_generate_failure, fake_reset),
		cmocka_unit_test_setup(test_generate_extremes, fake_reset),
		cmocka_unit_test_setup(test_format_ok, fake_reset),
		cmocka_unit_test_setup(test_hash_known_answers, fake_reset),
		cmocka_unit_test_setup(test_id, fake_reset),
		cmocka_unit_test_setup(test_equal, fake_reset),
		cmocka_unit_test_setup(test_equal_every_position, fake_reset),
		cmocka_unit_test_setup(test_equal_str, fake_reset),
		cmocka_unit_test_setup(test_record_cleanup, fake_reset),
		cmocka_unit_test_setup(test_duration, fake_reset),
		cmocka_unit_test_setup(test_count, fake_reset),
		cmocka_unit_test_setup(test_name, fake_reset),
		cmocka_unit_test_setup(test_parse_create, fake_reset),
		cmocka_unit_test_setup(test_parse_create_errors, fake_reset),
		cmocka_unit_test_setup(test_parse_other_commands, fake_reset),
		cmocka_unit_test_setup(test_parse_other_errors, fake_reset),
		cmocka_unit_test_setup(test_parse_help_version, fake_reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
