/*
 * log -- the error log (not the access log, which lives in mw).
 *
 * Lines go to stderr, which lighttpd, Apache and systemd all collect, as
 * "apigw[pid]: level: message".  Messages below the configured level are
 * dropped.  log_ratelimited() lets a hot path report a recurring condition
 * (Redis down, say) at most once a second per call site.
 */
#ifndef APIGW_LOG_H
#define APIGW_LOG_H

#include <time.h>

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

void log_set_level(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/*
 * Like log_msg, but at most once per second for the caller-owned *last
 * (a static time_t at the call site); returns 1 if it logged.
 */
int log_ratelimited(time_t *last, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)

#endif
