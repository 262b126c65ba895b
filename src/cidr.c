/*
 * cidr.c -- parse and match IPv4/IPv6 networks (see cidr.h).
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string.h>

#include "cidr.h"
#include "num.h"

int
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
	    num_parse_digits(slash + 1, strlen(slash + 1), maxlen, &plen) ==
	        -1) {
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
