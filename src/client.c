/*
 * client.c -- client address resolution and request ids; see client.h.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "config.h"

static int
is_ip(const char *s)
{
	unsigned char a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

void
client_resolve(const char *remote_addr, const char *xff,
    const struct cidr *trusted, size_t ntrusted, char *out, size_t outlen)
{
	const char *end, *start;
	char hop[64];

	snprintf(out, outlen, "%s", remote_addr);
	if (xff == NULL || !cidr_list_match(trusted, ntrusted, remote_addr))
		return;
	end = xff + strlen(xff);
	while (end > xff) {
		size_t n;

		start = end;
		while (start > xff && start[-1] != ',')
			start--;
		n = (size_t)(end - start);
		end = start > xff ? start - 1 : xff;
		while (n > 0 && (*start == ' ' || *start == '\t')) {
			start++;
			n--;
		}
		while (n > 0 && (start[n - 1] == ' ' || start[n - 1] == '\t'))
			n--;
		if (n == 0 || n >= sizeof hop)
			return;
		memcpy(hop, start, n);
		hop[n] = '\0';
		if (!is_ip(hop))
			return; /* garbage: trust nothing further left */
		snprintf(out, outlen, "%s", hop);
		if (!cidr_list_match(trusted, ntrusted, hop))
			return;
	}
}

int
client_request_id_ok(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		char c = s[n];

		if (n >= CLIENT_REQUEST_ID_MAX ||
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		        c == ':' || c == '-'))
			return 0;
	}
	return n > 0;
}

void
client_ids_seed(struct client_ids *g)
{
	if (getrandom(g->s, sizeof g->s, 0) != (ssize_t)sizeof g->s) {
		g->s[0] = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
		g->s[1] = (uint64_t)(uintptr_t)g;
	}
	g->s[0] |= 1; /* never the all-zero state */
}

static uint64_t
next(struct client_ids *g)
{
	uint64_t s1 = g->s[0];
	const uint64_t s0 = g->s[1];

	g->s[0] = s0;
	s1 ^= s1 << 23;
	g->s[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
	return g->s[1] + s0;
}

void
client_request_id_new(struct client_ids *g, char *out, size_t outlen)
{
	unsigned long long a = next(g), b = next(g);

	snprintf(out, outlen, "%016llx%016llx", a, b);
}
