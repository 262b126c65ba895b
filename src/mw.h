/*
 * mw -- the middleware chain of pipeline step 4 and the access log.
 *
 * Built-in middleware is a static table of {name, handle}; each handle
 * returns MW_CONTINUE to let the request go on, or MW_DONE when it has
 * answered.  CORS is built in: a preflight (OPTIONS with Origin and
 * Access-Control-Request-Method) is answered 204 here, before auth and
 * rate limiting, and never reaches the backend; other requests from an
 * allowed Origin get Access-Control-Allow-Origin on whatever response
 * they receive.  Plugins run after the built-ins.
 *
 * The access log writes one line per request, whatever step answered it:
 * "combined" (Apache's format, key id as the user, plus apigw fields) or
 * "json" (one object per line).  Lines are written with one write(2) on an
 * O_APPEND descriptor, so processes sharing the file never interleave.
 */
#ifndef APIGW_MW_H
#define APIGW_MW_H

struct config;
struct request;
struct buf;

enum mw_result { MW_CONTINUE = 0, MW_DONE = 1 };

/* Returns 1 when r is a CORS preflight and CORS is enabled. */
int mw_is_preflight(const struct config *cfg, const struct request *r);

struct plugins;

/* Runs the built-ins, then the plugins ps (may be NULL) for r; MW_DONE
 * when one of them answered. */
enum mw_result mw_run(
    const struct config *cfg, struct plugins *ps, struct request *r);

struct access_log;

/* Opens the access log cfg->log.access ("off" gives a log that drops
 * everything).  Returns NULL and logs when a file cannot be opened. */
struct access_log *access_log_open(const struct config *cfg);
void access_log_close(struct access_log *al);
/* Formats r's line (into the caller's scratch buffer) and writes it. */
void access_log_write(struct access_log *al, const struct request *r,
    double duration_ms, struct buf *scratch);

#endif
