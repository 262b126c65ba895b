/*
 * client -- who the client is, and the request's id.
 *
 * The client address is REMOTE_ADDR (the web server's peer), unless that
 * peer is a trusted proxy: then X-Forwarded-For is read from the right, and
 * the client is the rightmost address that is not itself a trusted proxy.
 * Reading stops at the first entry that is not an IP address (garbage is
 * never believed, nor anything left of it):
 *
 *	peer 127.0.0.1 (trusted), XFF "203.0.113.5, 10.0.0.2"
 *	  trusted = 127.0.0.1/32             -> "10.0.0.2"
 *	  trusted = 127.0.0.1/32, 10.0.0.0/8 -> "203.0.113.5"
 *	peer 198.51.100.1 (not trusted)      -> "198.51.100.1"
 *
 * Request ids: a client's id is kept when it is 1 to 128 characters of
 * A-Z a-z 0-9 . _ : -, otherwise the gateway makes a 32-hex-digit one.
 */
#ifndef APIGW_CLIENT_H
#define APIGW_CLIENT_H

#include <stddef.h>
#include <stdint.h>

struct cidr;

/* Longest request id kept from a client. */
#define CLIENT_REQUEST_ID_MAX 128

/*
 * Writes the client address (NUL-terminated, truncated to outlen) to out.
 * xff may be NULL.  Pure: no allocation.
 */
void client_resolve(const char *remote_addr, const char *xff,
    const struct cidr *trusted, size_t ntrusted, char *out, size_t outlen);

/* Returns 1 when a client-sent request id may be kept, else 0. */
int client_request_id_ok(const char *s);

/* State of the request id generator (xorshift128+), seeded per process. */
struct client_ids {
	uint64_t s[2];
};

/* Seeds from getrandom(2) (falls back on time and pid). */
void client_ids_seed(struct client_ids *g);
/* Writes a new 32-hex-digit id to out (at least 33 bytes). */
void client_request_id_new(struct client_ids *g, char *out, size_t outlen);

#endif
