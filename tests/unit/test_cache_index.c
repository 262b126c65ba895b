/*
 * Unit tests for cache_index: which index members apigw-cache accepts as
 * cache entry names and path zset names.  The names are made with
 * keyspace.c, so the two cannot drift apart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "cache_index.h"
#include "keyspace.h"

#define RES64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define VAR40 "00112233445566778899aabbccddeeff00112233"

static void
test_entry(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	assert_int_equal(keyspace_cache_entry(&b, "apigw:", RES64, VAR40), 0);
	assert_true(cache_index_entry_ok("apigw:", b.p, b.len));
	/* another prefix, a lock, the Vary names, cut or extended */
	assert_false(cache_index_entry_ok("gw:", b.p, b.len));
	assert_false(cache_index_entry_ok("apigw:", b.p, b.len - 1));
	assert_false(cache_index_entry_ok("apigw:", b.p + 1, b.len - 1));
	buf_putc(&b, '0');
	assert_false(cache_index_entry_ok("apigw:", b.p, b.len));
	buf_reset(&b);
	keyspace_cache_lock(&b, "apigw:", RES64, VAR40);
	assert_false(cache_index_entry_ok("apigw:", b.p, b.len));
	buf_reset(&b);
	keyspace_cache_base(&b, "apigw:", RES64);
	buf_puts(&b, ":v");
	assert_false(cache_index_entry_ok("apigw:", b.p, b.len));
	/* upper-case hex is not what keyspace writes */
	buf_reset(&b);
	buf_puts(&b, "apigw:{c:" RES64 "}:e:" VAR40);
	assert_true(cache_index_entry_ok("apigw:", b.p, b.len));
	b.p[b.len - 1] = 'A';
	assert_false(cache_index_entry_ok("apigw:", b.p, b.len));
	assert_false(cache_index_entry_ok("apigw:", "", 0));
	buf_cleanup(&b);
}

static void
test_path(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	assert_int_equal(keyspace_cache_path(&b, "p:", RES64), 0);
	assert_true(cache_index_path_ok("p:", b.p, b.len));
	assert_false(cache_index_path_ok("apigw:", b.p, b.len));
	assert_false(cache_index_path_ok("p:", b.p, b.len - 1));
	buf_reset(&b);
	keyspace_cache_route(&b, "p:", "0011223344556677");
	assert_false(cache_index_path_ok("p:", b.p, b.len));
	buf_reset(&b);
	keyspace_cache_live(&b, "p:");
	assert_false(cache_index_path_ok("p:", b.p, b.len));
	/* "<prefix>c:p:" then a key of some other kind */
	assert_false(cache_index_path_ok("p:", "p:c:p:*", 7));
	buf_cleanup(&b);
}

static void
test_member(void **state)
{
	struct buf b;
	char qh[41];
	const char *got = NULL;
	size_t nl = 0, name_len;

	(void)state;
	buf_init(&b);
	keyspace_cache_entry(&b, "apigw:", RES64, VAR40);
	name_len = b.len;
	keyspace_cache_query_hash("a=1", qh);
	buf_printf(&b, " %s", qh);
	assert_true(cache_index_member("apigw:", b.p, b.len, &nl, &got));
	assert_int_equal(nl, name_len);
	assert_memory_equal(got, qh, 40);
	/* the name part must be an entry of this prefix */
	assert_false(cache_index_member("other:", b.p, b.len, &nl, &got));
	/* no space, two spaces, a short or bad hash */
	b.p[name_len] = '_';
	assert_false(cache_index_member("apigw:", b.p, b.len, &nl, &got));
	b.p[name_len] = ' ';
	b.p[b.len - 1] = 'g';
	assert_false(cache_index_member("apigw:", b.p, b.len, &nl, &got));
	assert_false(cache_index_member("apigw:", b.p, b.len - 1, &nl, &got));
	buf_reset(&b);
	buf_printf(&b, "%s %s", "x", qh);
	assert_false(cache_index_member("apigw:", b.p, b.len, &nl, &got));
	assert_false(cache_index_member("apigw:", qh, 40, &nl, &got));
	assert_false(cache_index_member("apigw:", "", 0, &nl, &got));
	buf_cleanup(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_entry),
	    cmocka_unit_test(test_path),
	    cmocka_unit_test(test_member),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
