/*
 * status -- GET /_status, a page for people: one self-contained HTML
 * document (inline style and script, nothing fetched but /_metrics) that
 * polls /_metrics every 2 s and shows request rates by status class,
 * latency quantiles estimated from the duration histogram, rate-limit
 * rejections, the cache hit ratio, the circuit breakers, Redis and the
 * pool's processes.  Served by internal.c, so only to internal_allow.
 *
 * The page is src/status_page.html, turned into status_page_html at build
 * time (Makefile.am), so it can be edited and opened as a file.
 */
#ifndef APIGW_STATUS_H
#define APIGW_STATUS_H

struct config;
struct request;
struct store;

/* The page, NUL-terminated (generated source). */
extern const char status_page_html[];

/* Answers r with the page (the body left out for HEAD). */
void status_respond(
    const struct config *cfg, struct store *store, struct request *r);

#endif
