/*
 * null -- floor f1 of `make bench`: a FastCGI responder that does nothing
 * but answer every request with the same small JSON body, the one the
 * bench's backend serves.  What lighttpd + mod_fastcgi cost on their own,
 * with no gateway work and no backend, is the ceiling any FastCGI
 * gateway can reach on the same machine.
 *
 * A measurement tool, not part of apigw: it takes its listening socket
 * on fd 0 from the web server (lighttpd bin-path, mod_fcgid) and never
 * exits on its own.
 */
#include <fcgiapp.h>

/* The backend's small.json, byte for byte, so that responses are the
 * same size on every path the bench compares. */
static const char response[] = "Status: 200 OK\r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: 18\r\n"
                               "\r\n"
                               "{\"hello\":\"world\"}\n";

int
main(void)
{
	FCGX_Request req;
	int rc = 1;

	if (FCGX_Init() != 0)
		goto out;
	if (FCGX_InitRequest(&req, 0, 0) != 0)
		goto out;
	while (FCGX_Accept_r(&req) >= 0) {
		FCGX_PutStr(response, (int)sizeof(response) - 1, req.out);
		FCGX_Finish_r(&req);
	}
	rc = 0;
out:
	return rc;
}
