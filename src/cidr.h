/*
 * cidr -- IPv4 and IPv6 networks, as written in the config
 * ("10.0.0.0/8", "::1/128", or a bare address for a single host), and the
 * test whether a client address lies in one of them.
 *
 * Invariant of a parsed struct cidr: the bits past prefix_len are zero
 * ("10.0.0.1/8" is refused rather than silently widened), so matching is a
 * prefix compare.  An IPv4 client also matches as its IPv4-mapped IPv6
 * form and the other way round: "::ffff:10.1.2.3" lies in 10.0.0.0/8.
 */
#ifndef APIGW_CIDR_H
#define APIGW_CIDR_H

#include <stddef.h>
#include <sys/socket.h> /* AF_INET, AF_INET6 */

struct cidr {
	int family;             /* AF_INET or AF_INET6 */
	unsigned char addr[16]; /* network byte order, host bits zero */
	int prefix_len;
};

/* Parses "10.0.0.0/8", "::1/128" or a bare address; 0 on success, -1 bad. */
int cidr_parse(const char *s, struct cidr *out);
/*
 * As cidr_parse, and on failure sets *why to a static reason: "not an IP
 * address or CIDR", "bad prefix length" or "host bits set".
 */
int cidr_parse_why(const char *s, struct cidr *out, const char **why);
/*
 * Returns 1 when the textual address ip (an IPv6 zone, "%eth0", is
 * ignored) lies in one of the n cidrs of list, else 0 (also for a
 * malformed ip).
 */
int cidr_list_match(const struct cidr *list, size_t n, const char *ip);

#endif
