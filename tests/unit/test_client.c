/*
 * Unit tests for client.c: the client address through trusted proxies and
 * X-Forwarded-For, and request ids (which a client may send, and the ones
 * the gateway makes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cidr.h"
#include "client.h"

#define MAX_TRUSTED 8

/* Trusted proxy lists, as space-separated CIDRs. */
#define T_NONE ""
#define T_LO "127.0.0.1/32 ::1/128"
#define T_LO_10 "127.0.0.1/32 10.0.0.0/8"
#define T_V6 "::1/128 2001:db8::/32"

/* Parses a space-separated list of CIDRs into list; returns how many. */
static size_t
trusted_parse(const char *cidrs, struct cidr *list)
{
	char copy[256], *tok, *save = NULL;
	size_t n = 0;

	snprintf(copy, sizeof copy, "%s", cidrs);
	for (tok = strtok_r(copy, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save)) {
		assert_true(n < MAX_TRUSTED);
		if (cidr_parse(tok, &list[n]) != 0)
			fail_msg("cidr_parse(%s) failed", tok);
		n++;
	}
	return n;
}

/* An entry of exactly 100 characters: pad + core + pad. */
static const char *
entry100(char *dst, const char *core, char pad)
{
	size_t len = strlen(core), left = (100 - len) / 2;

	memset(dst, pad, 100);
	memcpy(dst + left, core, len);
	dst[100] = '\0';
	return dst;
}

static void
test_resolve_table(void **state)
{
	char a100[101], garbage100[101], spaced100[101], digits100[101];
	char xff_a100_left[160], xff_a100_right[160], xff_spaced[160],
	    xff_digits[160];
	const struct {
		const char *remote;
		const char *xff;
		const char *trusted;
		size_t outlen; /* 0: the whole buffer */
		const char *want;
	} cases[] = {
	    /* No X-Forwarded-For: the peer. */
	    {"127.0.0.1", NULL, T_LO, 0, "127.0.0.1"},
	    {"198.51.100.1", NULL, T_LO, 0, "198.51.100.1"},
	    /* A trusted peer with an empty header: still the peer. */
	    {"127.0.0.1", "", T_LO, 0, "127.0.0.1"},
	    /* A peer that is not trusted: its header is ignored. */
	    {"198.51.100.1", "203.0.113.5", T_LO, 0, "198.51.100.1"},
	    {"127.0.0.1", "203.0.113.5", T_NONE, 0, "127.0.0.1"},
	    {"10.0.0.1", "203.0.113.5", T_LO, 0, "10.0.0.1"},
	    {"2001:db9::1", "203.0.113.5", T_V6, 0, "2001:db9::1"},
	    /* One hop. */
	    {"127.0.0.1", "203.0.113.5", T_LO, 0, "203.0.113.5"},
	    /* The header's own examples. */
	    {"127.0.0.1", "203.0.113.5, 10.0.0.2", T_LO, 0, "10.0.0.2"},
	    {"127.0.0.1", "203.0.113.5, 10.0.0.2", T_LO_10, 0, "203.0.113.5"},
	    /* Several hops: the rightmost untrusted one, not the leftmost. */
	    {"127.0.0.1", "198.51.100.7, 203.0.113.5, 10.0.0.2, 10.1.1.1",
	        T_LO_10, 0, "203.0.113.5"},
	    {"10.9.9.9", "10.0.0.9, 203.0.113.5, 10.0.0.2", T_LO_10, 0,
	        "203.0.113.5"},
	    /* Every hop trusted: the leftmost. */
	    {"127.0.0.1", "10.0.0.3, 10.0.0.2", T_LO_10, 0, "10.0.0.3"},
	    {"127.0.0.1", "127.0.0.1", T_LO, 0, "127.0.0.1"},
	    /* IPv6 peers and hops. */
	    {"::1", "2001:db8::5", T_LO, 0, "2001:db8::5"},
	    {"::1", "2001:db9::1, 2001:db8::a, 2001:db8:ffff::1", T_V6, 0,
	        "2001:db9::1"},
	    {"::1", "2001:db8::1, 2001:db8::2", T_V6, 0, "2001:db8::1"},
	    {"2001:db8::99", "203.0.113.5, 2001:db8::7", T_V6, 0,
	        "203.0.113.5"},
	    {"::1", "2001:db8::5", T_LO_10, 0, "::1"},
	    /* IPv4-mapped forms match the IPv4 networks. */
	    {"::ffff:127.0.0.1", "203.0.113.5", T_LO, 0, "203.0.113.5"},
	    {"127.0.0.1", "203.0.113.5, ::ffff:10.0.0.2", T_LO_10, 0,
	        "203.0.113.5"},
	    /* Garbage stops the walk: the address to its right is the
	     * client, nothing left of the garbage is believed. */
	    {"127.0.0.1", "203.0.113.5, unknown, 10.0.0.2", T_LO_10, 0,
	        "10.0.0.2"},
	    {"127.0.0.1", "203.0.113.5, garbage", T_LO, 0, "127.0.0.1"},
	    {"127.0.0.1", "203.0.113.5, 10.0.0.0/8", T_LO, 0, "127.0.0.1"},
	    {"127.0.0.1", "203.0.113.5 10.0.0.2", T_LO_10, 0, "127.0.0.1"},
	    {"127.0.0.1", "203.0.113.5, 10.0.0.2;", T_LO_10, 0, "127.0.0.1"},
	    /* Ports (and brackets) make an entry garbage. */
	    {"127.0.0.1", "1.2.3.4:80", T_LO, 0, "127.0.0.1"},
	    {"127.0.0.1", "1.2.3.4:80, 10.0.0.2", T_LO_10, 0, "10.0.0.2"},
	    {"127.0.0.1", "[2001:db8::1]:443", T_LO, 0, "127.0.0.1"},
	    {"127.0.0.1", "[2001:db8::1]", T_LO, 0, "127.0.0.1"},
	    /* Empty entries are garbage too. */
	    {"127.0.0.1", "203.0.113.5, , 10.0.0.2", T_LO_10, 0, "10.0.0.2"},
	    {"127.0.0.1", "203.0.113.5,,10.0.0.2", T_LO_10, 0, "10.0.0.2"},
	    {"127.0.0.1", "203.0.113.5,", T_LO, 0, "127.0.0.1"},
	    {"127.0.0.1", ",", T_LO, 0, "127.0.0.1"},
	    {"127.0.0.1", "   ", T_LO, 0, "127.0.0.1"},
	    {"127.0.0.1", " \t ,203.0.113.5", T_LO, 0, "203.0.113.5"},
	    /* Spaces and tabs around entries, or none. */
	    {"127.0.0.1", " \t203.0.113.5 \t,\t10.0.0.2  ", T_LO_10, 0,
	        "203.0.113.5"},
	    {"127.0.0.1", "203.0.113.5,10.0.0.2", T_LO_10, 0, "203.0.113.5"},
	    {"127.0.0.1", "\t2001:db8::5\t", T_LO, 0, "2001:db8::5"},
	    /* Entries of 100 characters. */
	    {"127.0.0.1", a100, T_LO, 0, "127.0.0.1"},
	    {"127.0.0.1", xff_a100_left, T_LO_10, 0, "10.0.0.2"},
	    {"127.0.0.1", xff_a100_right, T_LO, 0, "127.0.0.1"},
	    {"127.0.0.1", xff_digits, T_LO_10, 0, "10.0.0.2"},
	    {"127.0.0.1", spaced100, T_LO, 0, "203.0.113.5"},
	    {"127.0.0.1", xff_spaced, T_LO_10, 0, "203.0.113.5"},
	    /* Truncation to outlen. */
	    {"127.0.0.1", "203.0.113.5", T_LO, 8, "203.0.1"},
	    {"198.51.100.1", NULL, T_LO, 4, "198"},
	    {"127.0.0.1", "203.0.113.5, garbage", T_LO, 5, "127."},
	    {"127.0.0.1", "2001:db8::5", T_LO, 1, ""},
	    /* Trust is decided on the whole hop, not on what fits. */
	    {"127.0.0.1", "203.0.113.5, 10.0.0.2", T_LO_10, 4, "203"},
	    {"127.0.0.1", "203.0.113.5, 10.0.0.2", T_LO, 4, "10."},
	    /* A peer that is not an address is nobody's trusted proxy. */
	    {"", "203.0.113.5", T_LO, 0, ""},
	};
	struct cidr list[MAX_TRUSTED];
	char out[64];
	size_t i, j, n, outlen;

	(void)state;
	entry100(a100, "a", 'a');
	entry100(garbage100, "x", 'x');
	entry100(spaced100, "203.0.113.5", ' ');
	entry100(digits100, "1.2.3.4", '5');
	snprintf(
	    xff_a100_left, sizeof xff_a100_left, "%s, 10.0.0.2", garbage100);
	snprintf(xff_a100_right, sizeof xff_a100_right, "203.0.113.5, %s",
	    garbage100);
	snprintf(xff_digits, sizeof xff_digits, "%s,10.0.0.2", digits100);
	snprintf(xff_spaced, sizeof xff_spaced, "%s,10.0.0.2", spaced100);
	assert_int_equal(strlen(spaced100), 100);
	assert_int_equal(strlen(digits100), 100);

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		n = trusted_parse(cases[i].trusted, list);
		outlen = cases[i].outlen ? cases[i].outlen : sizeof out;
		memset(out, '#', sizeof out);
		client_resolve(cases[i].remote, cases[i].xff, n ? list : NULL,
		    n, out, outlen);
		if (memchr(out, '\0', outlen) == NULL ||
		    strcmp(out, cases[i].want) != 0)
			fail_msg("case %zu: peer \"%s\" xff \"%s\" trusted "
			         "\"%s\" outlen %zu: got \"%.*s\", want \"%s\"",
			    i, cases[i].remote,
			    cases[i].xff ? cases[i].xff : "(none)",
			    cases[i].trusted, outlen, (int)outlen, out,
			    cases[i].want);
		/* Nothing is written past outlen. */
		for (j = outlen; j < sizeof out; j++)
			if (out[j] != '#')
				fail_msg("case %zu: byte %zu written past "
				         "outlen %zu",
				    i, j, outlen);
	}
}

/* outlen 0 writes nothing at all. */
static void
test_resolve_outlen_zero(void **state)
{
	struct cidr list[MAX_TRUSTED];
	size_t n = trusted_parse(T_LO, list);
	char out[4] = "###";

	(void)state;
	client_resolve("127.0.0.1", "203.0.113.5", list, n, out, 0);
	assert_memory_equal(out, "###", 4);
}

static int
id_char_ok(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
	    c == '-';
}

static void
test_request_id_ok(void **state)
{
	static const char *const good[] = {
	    "a",
	    "Z",
	    "0",
	    ".",
	    "_",
	    ":",
	    "-",
	    "req-42",
	    "550e8400-e29b-41d4-a716-446655440000",
	    "trace:span.01_x",
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:"
	    "-",
	};
	static const char *const bad[] = {
	    "",
	    " ",
	    "a b",
	    " abc",
	    "abc ",
	    "abc\t",
	    "abc/def",
	    "abc\r\nX-Evil: 1",
	    "caf\xc3\xa9",
	    "{\"id\":1}",
	    "a,b",
	    "a=b",
	};
	char s[200], name[16];
	size_t i;
	int c;

	(void)state;
	for (i = 0; i < sizeof good / sizeof good[0]; i++)
		if (client_request_id_ok(good[i]) != 1)
			fail_msg("\"%s\" refused", good[i]);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (client_request_id_ok(bad[i]) != 0)
			fail_msg("\"%s\" accepted", bad[i]);

	/* Every byte value, alone and in the middle of a good id. */
	for (c = 1; c < 256; c++) {
		snprintf(name, sizeof name, "0x%02x", c);
		s[0] = (char)c;
		s[1] = '\0';
		if (client_request_id_ok(s) != id_char_ok(c))
			fail_msg("%s alone: %s", name,
			    id_char_ok(c) ? "refused" : "accepted");
		snprintf(s, sizeof s, "abc%cdef", c);
		if (client_request_id_ok(s) != id_char_ok(c))
			fail_msg("%s inside: %s", name,
			    id_char_ok(c) ? "refused" : "accepted");
		snprintf(s, sizeof s, "abcdef%c", c);
		if (client_request_id_ok(s) != id_char_ok(c))
			fail_msg("%s last: %s", name,
			    id_char_ok(c) ? "refused" : "accepted");
	}

	/* Length: 1 to 128. */
	for (i = 1; i <= sizeof s - 1; i++) {
		memset(s, 'x', i);
		s[i] = '\0';
		if (client_request_id_ok(s) != (i <= CLIENT_REQUEST_ID_MAX))
			fail_msg("length %zu: %s", i,
			    i <= CLIENT_REQUEST_ID_MAX ? "refused"
			                               : "accepted");
	}
	assert_int_equal(CLIENT_REQUEST_ID_MAX, 128);
	/* 128 good characters then a bad one: refused all the same. */
	memset(s, 'x', 128);
	s[128] = ' ';
	s[129] = '\0';
	assert_int_equal(client_request_id_ok(s), 0);
}

static void
assert_hex32(const char *id)
{
	size_t i;

	if (strlen(id) != 32)
		fail_msg("\"%s\": length %zu, want 32", id, strlen(id));
	for (i = 0; i < 32; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		        (id[i] >= 'a' && id[i] <= 'f')))
			fail_msg(
			    "\"%s\": byte %zu is not lowercase hex", id, i);
}

static void
test_request_id_new(void **state)
{
	struct client_ids g, h;
	char a[33], b[33], c[33];
	int i;

	(void)state;
	client_ids_seed(&g);
	/* Never the all-zero state, from which xorshift never leaves. */
	assert_true(g.s[0] != 0 || g.s[1] != 0);

	client_request_id_new(&g, a, sizeof a);
	client_request_id_new(&g, b, sizeof b);
	assert_hex32(a);
	assert_hex32(b);
	assert_string_not_equal(a, b);
	/* A made id is also one a client could have sent. */
	assert_int_equal(client_request_id_ok(a), 1);

	/* Many ids in a row: all well-formed, none repeats the last. */
	for (i = 0; i < 1000; i++) {
		memcpy(c, b, sizeof c);
		client_request_id_new(&g, b, sizeof b);
		assert_hex32(b);
		assert_string_not_equal(b, c);
	}

	/* Two processes seed differently. */
	client_ids_seed(&h);
	assert_false(g.s[0] == h.s[0] && g.s[1] == h.s[1]);

	/*
	 * A fixed state gives a fixed sequence: the reference xorshift128+
	 * (shifts 23, 17, 26), two outputs per id, each as 16 hex digits.
	 */
	g.s[0] = 0x0123456789abcdefULL;
	g.s[1] = 0xfedcba9876543210ULL;
	h = g;
	client_request_id_new(&g, a, sizeof a);
	assert_string_equal(a, "4b182deded6619074b182e0a46eba587");
	client_request_id_new(&g, a, sizeof a);
	assert_string_equal(a, "1738ed21d98fb1acd54368ca3c0b083e");
	client_request_id_new(&h, b, sizeof b);
	assert_string_equal(b, "4b182deded6619074b182e0a46eba587");

	/* A short buffer is truncated, still NUL-terminated. */
	memset(c, '#', sizeof c);
	client_request_id_new(&h, c, 9);
	assert_string_equal(c, "1738ed21");
	assert_int_equal(c[9], '#');
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_resolve_table),
	    cmocka_unit_test(test_resolve_outlen_zero),
	    cmocka_unit_test(test_request_id_ok),
	    cmocka_unit_test(test_request_id_new),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
