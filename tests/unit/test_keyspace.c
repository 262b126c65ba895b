/*
 * Unit tests for keyspace.c: every name of the layout in keyspace.h, and
 * the refusal of anything that is not a hash where a hash belongs.
 * The Python integration tests spell some of these names themselves: they must
 * agree with what is checked here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "keyspace.h"

#define H64 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define H32 "0123456789abcdef0123456789abcdef"
#define H40 "a9993e364706816aba3e25717850c26c9cd0d89d"
#define RID "0011223344556677"

/* Runs one name function on a fresh buffer and compares. */
#define NAME(call, want)                                                       \
	do {                                                                   \
		buf_reset(&b);                                                 \
		assert_int_equal((call), 0);                                   \
		assert_string_equal(buf_cstr(&b), (want));                     \
	} while (0)

/* A refused name: -1 and nothing appended. */
#define REFUSED(call)                                                          \
	do {                                                                   \
		buf_reset(&b);                                                 \
		assert_int_equal((call), -1);                                  \
		assert_int_equal(b.len, 0);                                    \
	} while (0)

static void
test_tags(void **state)
{
	char tag[KEYSPACE_TAG_LEN];

	(void)state;
	assert_int_equal(keyspace_tag_key(tag, H64), 0);
	assert_string_equal(tag, "k:" H64);
	assert_true(keyspace_tag_ok(tag));
	assert_int_equal(keyspace_tag_key(tag, "abc"), -1);
	assert_string_equal(tag, "");
	assert_int_equal(keyspace_tag_key(tag, H64 "0"), -1);
	assert_int_equal(keyspace_tag_key(tag, NULL), -1);
	/* Upper-case hex is not what keys_hash writes: refused. */
	assert_int_equal(keyspace_tag_key(tag,
	                     "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9C"
	                     "B410FF61F20015AD"),
	    -1);

	/* sha256("abc") = ba7816bf...: the IP is hashed, half kept. */
	keyspace_tag_ip(tag, "abc");
	assert_string_equal(tag, "i:ba7816bf8f01cfea414140de5dae2223");
	assert_true(keyspace_tag_ok(tag));
	keyspace_tag_ip(tag, "}{*?\r\n");
	assert_true(keyspace_tag_ok(tag));

	assert_false(keyspace_tag_ok(NULL));
	assert_false(keyspace_tag_ok(""));
	assert_false(keyspace_tag_ok("i:abc"));
	assert_false(keyspace_tag_ok("i:" H64));
	assert_false(keyspace_tag_ok("k:" H32));
	assert_false(keyspace_tag_ok("x:" H32));
	assert_false(keyspace_tag_ok("i:" H32 "}"));
}

static void
test_names(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	NAME(keyspace_key_record(&b, "apigw:", H64), "apigw:{k:" H64 "}:rec");
	NAME(keyspace_key_record(&b, "", H64), "{k:" H64 "}:rec");
	NAME(keyspace_key_record(&b, NULL, H64), "{k:" H64 "}:rec");
	NAME(keyspace_tag_record(&b, "p:", "i:" H32), "p:{i:" H32 "}:rec");
	NAME(keyspace_rl_key(&b, "p:", "k:" H64, RL_SECOND),
	    "p:{k:" H64 "}:rl:k:s");
	NAME(keyspace_rl_route(&b, "p:", "i:" H32, RID, RL_HOUR),
	    "p:{i:" H32 "}:rl:r:" RID ":h");
	NAME(keyspace_rl_default(&b, "p:", "i:" H32, RL_DAY),
	    "p:{i:" H32 "}:rl:d:d");
	NAME(keyspace_rl_default(&b, "p:", "k:" H64, RL_MINUTE),
	    "p:{k:" H64 "}:rl:d:m");
	NAME(keyspace_key_index(&b, "p:", "0123456789abcdef"),
	    "p:keyid:0123456789abcdef");
	NAME(keyspace_key_set(&b, "p:"), "p:keys");
	NAME(keyspace_cache_base(&b, "p:", H64), "p:{c:" H64 "}");
	NAME(keyspace_cache_entry(&b, "p:", H64, H40), "p:{c:" H64 "}:e:" H40);
	NAME(keyspace_cache_lock(&b, "p:", H64, H40), "p:{c:" H64 "}:l:" H40);
	NAME(keyspace_cache_live(&b, "p:"), "p:c:live");
	NAME(keyspace_cache_path(&b, "p:", H64), "p:c:p:" H64);
	NAME(keyspace_cache_route(&b, "p:", RID), "p:c:r:" RID);
	NAME(keyspace_breaker(&b, "p:", H32), "p:{b:" H32 "}");
	NAME(keyspace_metric(&b, "p:", "requests:" RID ":2xx"),
	    "p:m:requests:" RID ":2xx");
	/* The names append. */
	buf_reset(&b);
	buf_puts(&b, "x ");
	assert_int_equal(keyspace_key_set(&b, "p:"), 0);
	assert_string_equal(buf_cstr(&b), "x p:keys");
	assert_int_equal(keyspace_window_suffix(RL_SECOND), 's');
	assert_int_equal(keyspace_window_suffix(RL_DAY), 'd');
	buf_cleanup(&b);
}

static void
test_refused(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	REFUSED(keyspace_key_record(&b, "p:", "gw_secret"));
	REFUSED(keyspace_key_record(&b, "p:", "00"));
	REFUSED(keyspace_tag_record(&b, "p:", "i:203.0.113.9"));
	REFUSED(keyspace_rl_key(&b, "p:", "k:x}", RL_SECOND));
	REFUSED(keyspace_rl_key(&b, "p:", "k:" H64, RL_NWINDOWS));
	REFUSED(keyspace_rl_route(&b, "p:", "i:" H32, "/api", RL_HOUR));
	REFUSED(keyspace_rl_route(&b, "p:", "i:" H32, RID "0", RL_HOUR));
	REFUSED(keyspace_rl_default(&b, "p:", NULL, RL_DAY));
	REFUSED(keyspace_key_index(&b, "p:", "*"));
	REFUSED(keyspace_key_index(&b, "p:", "0123456789ABCDEF"));
	REFUSED(keyspace_cache_entry(&b, "p:", H32, H40));
	REFUSED(keyspace_cache_entry(&b, "p:", H64, H32));
	REFUSED(keyspace_cache_lock(&b, "p:", "GET /x", H40));
	REFUSED(keyspace_cache_base(&b, "p:", "{x}"));
	REFUSED(keyspace_cache_path(&b, "p:", H32));
	REFUSED(keyspace_cache_route(&b, "p:", "*"));
	REFUSED(keyspace_breaker(&b, "p:", "http://backend"));
	REFUSED(keyspace_metric(&b, "p:", ""));
	REFUSED(keyspace_metric(&b, "p:", "Route /x"));
	REFUSED(keyspace_metric(&b, "p:", "a{b}"));
	REFUSED(keyspace_rl_pattern(&b, "p:", "i:abc"));
	buf_cleanup(&b);
}

static void
test_pattern(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	NAME(keyspace_rl_pattern(&b, "apigw:", "k:" H64),
	    "apigw:{k:" H64 "}:rl:*");
	/* Glob characters of the prefix match only themselves. */
	NAME(keyspace_rl_pattern(&b, "a*b?[c]\\:", "i:" H32),
	    "a\\*b\\?\\[c\\]\\\\:{i:" H32 "}:rl:*");
	buf_cleanup(&b);

	/* A limited buffer: refused whole, nothing left behind. */
	buf_init_limit(&b, 20);
	buf_puts(&b, "x");
	assert_int_equal(
	    keyspace_rl_pattern(&b, "apigw:", "k:" H64), BUF_TOO_BIG);
	assert_string_equal(buf_cstr(&b), "x");
	assert_int_equal(keyspace_key_record(&b, "apigw:", H64), BUF_TOO_BIG);
	assert_string_equal(buf_cstr(&b), "x");
	buf_cleanup(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tags),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_pattern),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
