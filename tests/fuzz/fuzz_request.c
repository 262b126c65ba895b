/*
 * Fuzz target for request_begin(): FastCGI parameters to a struct request.
 * The input is the parameter list, one "NAME=value" per line (a parameter
 * ends at a NUL too, as in the envp array libfcgi builds).  request_begin()
 * reads nothing of the FCGX_Request but envp, so one built by hand with no
 * streams is enough; nothing here reads the body or writes a response.
 *
 * Each input runs twice through one struct, begin/end and begin/cleanup,
 * as the worker loop reuses it.  Aborts when a field the pipeline relies
 * on is NULL, when raw_path or query do not come from REQUEST_URI as
 * documented, when the scheme is neither "http" nor "https", or when a
 * header field has a name that is not a token or a value with CR, LF.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>

#include "hdrs.h"
#include "normalize.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* More parameters than any web server sends explore nothing new. */
#define FUZZ_MAX_PARAMS 256

static void
fuzz_fail(const char *why)
{
	fprintf(stderr, "fuzz_request: %s\n", why);
	abort();
}

static int
fuzz_is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

static void
fuzz_check(const struct request *r)
{
	const char *q;
	size_t i, rawlen;

	if (r->method == NULL || r->request_uri == NULL ||
	    r->remote_addr == NULL || r->host == NULL || r->scheme == NULL ||
	    r->raw_path == NULL)
		fuzz_fail("a field is NULL");
	if (strcmp(r->scheme, "http") != 0 && strcmp(r->scheme, "https") != 0)
		fuzz_fail("scheme neither http nor https");
	if (r->content_length < -1)
		fuzz_fail("negative Content-Length");
	q = strchr(r->request_uri, '?');
	rawlen =
	    q != NULL ? (size_t)(q - r->request_uri) : strlen(r->request_uri);
	if (strlen(r->raw_path) != rawlen ||
	    memcmp(r->raw_path, r->request_uri, rawlen) != 0)
		fuzz_fail("raw_path is not REQUEST_URI before '?'");
	if (q != NULL && r->query != q + 1)
		fuzz_fail("query is not what follows '?'");
	for (i = 0; i < r->headers.n; i++) {
		const unsigned char *p;

		p = (const unsigned char *)r->headers.v[i].name;
		if (*p == '\0')
			fuzz_fail("empty header name");
		for (; *p != '\0'; p++)
			if (!fuzz_is_tchar(*p))
				fuzz_fail("header name not a token");
		if (strpbrk(r->headers.v[i].value, "\r\n") != NULL)
			fuzz_fail("CR or LF in a header value");
	}
}

/* What the pipeline does next with the parsed request, minus the I/O. */
static void
fuzz_use(struct request *r)
{
	(void)normalize_path(r->raw_path, strlen(r->raw_path), &r->path);
	(void)request_header(r, "Host");
	(void)request_header(r, "Transfer-Encoding");
	(void)request_input_done(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *envp[FUZZ_MAX_PARAMS + 1];
	FCGX_Request fr;
	struct request r;
	size_t n = 0, start = 0, i, len;

	/* Each parameter its own exact-size copy, so overreads are seen. */
	for (i = 0; i <= size && n < FUZZ_MAX_PARAMS; i++) {
		if (i < size && data[i] != '\n')
			continue;
		len = i - start;
		envp[n] = malloc(len + 1);
		if (envp[n] == NULL)
			abort();
		memcpy(envp[n], data + start, len);
		envp[n][len] = '\0';
		n++;
		start = i + 1;
	}
	envp[n] = NULL;

	memset(&fr, 0, sizeof fr);
	fr.envp = envp;
	fr.ipcFd = -1;
	request_init(&r);
	request_begin(&r, &fr);
	fuzz_check(&r);
	fuzz_use(&r);
	request_end(&r);
	request_begin(&r, &fr);
	fuzz_check(&r);
	fuzz_use(&r);
	request_cleanup(&r);

	for (i = 0; i < n; i++)
		free(envp[i]);
	return 0;
}
