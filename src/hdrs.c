/*
 * hdrs -- an ordered list of HTTP header fields; the contract is in hdrs.h.
 *
 * Every field enters through hdrs_addn() (hdrs_add() and hdrs_set() call
 * it or repeat its checks), so the list can never hold a name that is not
 * a token or a value with CR, LF or NUL.  Case folding is ASCII only and
 * done by hand: the locale must not change which names are equal.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "hdrs.h"
#include "xalloc.h"

/* A Connection token: a pointer into a field value and its length. */
struct hdrs_token {
	const char *p;
	size_t len;
};

static const char *const hdrs_hop_by_hop[] = {
    "Connection",
    "Keep-Alive",
    "Proxy-Connection",
    "TE",
    "Trailer",
    "Transfer-Encoding",
    "Upgrade",
    "Proxy-Authorization",
};

static unsigned char
hdrs_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

static unsigned char
hdrs_upper(unsigned char c)
{
	return (c >= 'a' && c <= 'z') ? (unsigned char)(c - 'a' + 'A') : c;
}

int
hdrs_is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
hdrs_valid_name(const char *name, size_t len)
{
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++)
		if (!hdrs_is_tchar((unsigned char)name[i]))
			return 0;
	return 1;
}

/* CR or LF would let a value start a new field (response splitting). */
static int
hdrs_valid_value(const char *value, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
			return 0;
	return 1;
}

/* Case-insensitive: does the NUL-terminated a equal the len bytes at b? */
static int
hdrs_name_eq(const char *a, const char *b, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (a[i] == '\0' ||
		    hdrs_lower((unsigned char)a[i]) !=
		        hdrs_lower((unsigned char)b[i]))
			return 0;
	}
	return a[len] == '\0';
}

static void
hdrs_free_field(struct hdr *f)
{
	free(f->name);
	free(f->value);
	f->name = NULL;
	f->value = NULL;
}

/* Removes the fields called name at index from and after; returns how many. */
static size_t
hdrs_del_from(struct hdrs *h, size_t from, const char *name, size_t name_len)
{
	size_t i, j;

	for (i = j = from; i < h->n; i++) {
		if (hdrs_name_eq(h->v[i].name, name, name_len)) {
			hdrs_free_field(&h->v[i]);
			continue;
		}
		h->v[j++] = h->v[i];
	}
	i = h->n - j;
	h->n = j;
	return i;
}

void
hdrs_init(struct hdrs *h)
{
	h->v = NULL;
	h->n = 0;
	h->cap = 0;
}

void
hdrs_reset(struct hdrs *h)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		hdrs_free_field(&h->v[i]);
	h->n = 0;
}

void
hdrs_cleanup(struct hdrs *h)
{
	hdrs_reset(h);
	free(h->v);
	hdrs_init(h);
}

int
hdrs_addn(struct hdrs *h, const char *name, size_t name_len, const char *value,
    size_t value_len)
{
	int rc = -1;
	size_t cap;

	if (name == NULL || value == NULL)
		goto out;
	if (!hdrs_valid_name(name, name_len) ||
	    !hdrs_valid_value(value, value_len))
		goto out;
	if (h->n == h->cap) {
		cap = h->cap ? h->cap * 2 : 16;
		h->v = xrealloc(h->v, cap * sizeof *h->v);
		h->cap = cap;
	}
	h->v[h->n].name = xstrndup(name, name_len);
	h->v[h->n].value = xstrndup(value, value_len);
	h->n++;
	rc = 0;
out:
	return rc;
}

int
hdrs_add(struct hdrs *h, const char *name, const char *value)
{
	if (name == NULL || value == NULL)
		return -1;
	return hdrs_addn(h, name, strlen(name), value, strlen(value));
}

int
hdrs_set(struct hdrs *h, const char *name, const char *value)
{
	int rc = -1;
	size_t i, name_len, value_len;

	if (name == NULL || value == NULL)
		goto out;
	name_len = strlen(name);
	value_len = strlen(value);
	/* Check before touching anything, so a refused set changes nothing. */
	if (!hdrs_valid_name(name, name_len) ||
	    !hdrs_valid_value(value, value_len))
		goto out;
	for (i = 0; i < h->n; i++)
		if (hdrs_name_eq(h->v[i].name, name, name_len))
			break;
	if (i == h->n) {
		rc = hdrs_addn(h, name, name_len, value, value_len);
		goto out;
	}
	/* The field keeps the position of the first one it replaces. */
	hdrs_free_field(&h->v[i]);
	h->v[i].name = xstrndup(name, name_len);
	h->v[i].value = xstrndup(value, value_len);
	hdrs_del_from(h, i + 1, name, name_len);
	rc = 0;
out:
	return rc;
}

size_t
hdrs_del(struct hdrs *h, const char *name)
{
	if (name == NULL)
		return 0;
	return hdrs_del_from(h, 0, name, strlen(name));
}

const char *
hdrs_get(const struct hdrs *h, const char *name)
{
	size_t i, name_len;

	if (name == NULL)
		return NULL;
	name_len = strlen(name);
	for (i = 0; i < h->n; i++)
		if (hdrs_name_eq(h->v[i].name, name, name_len))
			return h->v[i].value;
	return NULL;
}

size_t
hdrs_count(const struct hdrs *h, const char *name)
{
	size_t i, n = 0, name_len;

	if (name == NULL)
		return 0;
	name_len = strlen(name);
	for (i = 0; i < h->n; i++)
		if (hdrs_name_eq(h->v[i].name, name, name_len))
			n++;
	return n;
}

int
hdrs_conflict(const struct hdrs *h, const char *name)
{
	const char *first = NULL;
	size_t i;

	for (i = 0; i < h->n; i++) {
		if (strcasecmp(h->v[i].name, name) != 0)
			continue;
		if (first == NULL)
			first = h->v[i].value;
		else if (strcmp(first, h->v[i].value) != 0)
			return 1;
	}
	return 0;
}

int
hdrs_is_hop_by_hop(const char *name)
{
	size_t i;

	if (name == NULL)
		return 0;
	for (i = 0; i < sizeof hdrs_hop_by_hop / sizeof hdrs_hop_by_hop[0]; i++)
		if (hdrs_name_eq(
		        name, hdrs_hop_by_hop[i], strlen(hdrs_hop_by_hop[i])))
			return 1;
	return 0;
}

/*
 * Appends the comma-separated tokens of a Connection value to *tok,
 * without the optional whitespace around them; empty list elements are
 * skipped (RFC 9110 5.6.1).
 */
static void
hdrs_connection_tokens(
    const char *value, struct hdrs_token **tok, size_t *ntok, size_t *cap)
{
	const char *p = value, *start, *end;

	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && *p != ',')
			p++;
		end = p;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (*ntok == *cap) {
			*cap = *cap ? *cap * 2 : 8;
			*tok = xrealloc(*tok, *cap * sizeof **tok);
		}
		(*tok)[*ntok].p = start;
		(*tok)[*ntok].len = (size_t)(end - start);
		(*ntok)++;
	}
}

void
hdrs_strip_hop_by_hop(struct hdrs *h)
{
	struct hdrs_token *tok = NULL;
	size_t ntok = 0, cap = 0, i, j, k;
	struct hdr tmp;
	int drop;

	/*
	 * Gather the names every Connection field lists first: one may
	 * name a field that comes before it, and the Connection fields
	 * themselves are about to go.
	 */
	for (i = 0; i < h->n; i++)
		if (hdrs_name_eq(h->v[i].name, "Connection", 10))
			hdrs_connection_tokens(
			    h->v[i].value, &tok, &ntok, &cap);

	/*
	 * Move the fields that stay to the front, in order, by swapping,
	 * and free the rest only afterwards: the tokens point into the
	 * Connection values, which must live until the last comparison.
	 */
	for (i = j = 0; i < h->n; i++) {
		drop = hdrs_is_hop_by_hop(h->v[i].name);
		for (k = 0; !drop && k < ntok; k++)
			drop = hdrs_name_eq(h->v[i].name, tok[k].p, tok[k].len);
		if (drop)
			continue;
		tmp = h->v[j];
		h->v[j] = h->v[i];
		h->v[i] = tmp;
		j++;
	}
	free(tok);
	for (i = j; i < h->n; i++)
		hdrs_free_field(&h->v[i]);
	h->n = j;
}

int
hdrs_name_from_cgi(const char *param, char *out, size_t outlen)
{
	int rc = -1;
	const char *src;
	size_t i, n;
	int word_start = 1;
	unsigned char c;

	if (param == NULL || out == NULL || outlen == 0)
		goto out;
	/* CGI passes these two without the HTTP_ prefix (RFC 3875 4.1). */
	if (strcmp(param, "CONTENT_TYPE") == 0 ||
	    strcmp(param, "CONTENT_LENGTH") == 0)
		src = param;
	else if (strncmp(param, "HTTP_", 5) == 0)
		src = param + 5;
	else
		goto out;
	n = strlen(src);
	if (n == 0 || n >= outlen)
		goto out;
	for (i = 0; i < n; i++) {
		c = (unsigned char)src[i];
		if (c == '_') {
			out[i] = '-';
			word_start = 1;
			continue;
		}
		if (!hdrs_is_tchar(c))
			goto out;
		out[i] = (char)(word_start ? hdrs_upper(c) : hdrs_lower(c));
		word_start = 0;
	}
	out[n] = '\0';
	rc = 0;
out:
	if (rc != 0 && out != NULL && outlen > 0)
		out[0] = '\0';
	return rc;
}
