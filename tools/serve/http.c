/*
 * http.c — the HTTP plumbing of `comi serve` on GNU libmicrohttpd: routing,
 * header checks (method, Content-Type, Content-Length), buffering the
 * upload within --max-body, queueing the work, and sending JSON responses.
 * All of it runs in the MHD thread.
 */
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

/* An upload over --max-body (or refused for another reason before its body)
 * is read and thrown away, up to this many bytes, so that clients which send
 * the whole body before reading the answer (Python's urllib, most HTTP
 * libraries) get the 413 instead of a broken pipe; then the connection is
 * closed. A body announced larger than this, or sent with "Expect:
 * 100-continue", is answered at once without reading it. */
#define SERVE_DRAIN_MAX ((size_t)64 << 20)

/* Queues `body` (malloc'ed JSON text, taken over; NULL means out of
 * memory) with `code`. Called from the MHD thread only. */
static enum MHD_Result send_json(struct MHD_Connection *conn, request *req, int code, char *body,
                                 bool close) {
    if (!body) {
        code = 500;
        body = strdup("{\"error\":\"out of memory building the response\"}");
        if (!body) return MHD_NO;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (code == 503) MHD_add_response_header(resp, "Retry-After", "1");
    if (code == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"comi\"");
    if (req->close_after) close = true;
    size_t nbytes = strlen(body);
    if (code == 405)
        MHD_add_response_header(
            resp, "Allow", req->ep == EP_HEALTH || req->ep == EP_METRICS ? "GET, HEAD" : "POST");
    if (close) MHD_add_response_header(resp, "Connection", "close");
    enum MHD_Result r = MHD_queue_response(conn, (unsigned)code, resp);
    MHD_destroy_response(resp);
    if (r == MHD_YES) {
        req->code = code;
        req->resp_bytes = nbytes;
    }
    return r;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, request *req, int code,
                                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum MHD_Result send_error(struct MHD_Connection *conn, request *req, int code,
                                  const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return send_json(conn, req, code, serve_error_json(msg), srv.draining);
}

static endpoint route(const char *url) {
    for (int e = 0; e < EP_OTHER; e++)
        if (!strcmp(url, serve_endpoint_path[e])) return (endpoint)e;
    return EP_OTHER;
}

/* The first call for a request: headers only. Decides every error that
 * does not need the body; only an announced oversize body is answered at
 * once (so the client need not send it). */
/* Whether the request carries "Authorization: Bearer <--api-key>"
 * (compared in constant time). */
static bool authorized(struct MHD_Connection *conn) {
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return false;
    h += 7;
    while (*h == ' ')
        h++;
    size_t n = strlen(h), k = strlen(srv.api_key);
    unsigned char diff = n != k;
    for (size_t i = 0; i < k; i++)
        diff |= (unsigned char)(h[i < n ? i : 0] ^ srv.api_key[i]);
    return diff == 0;
}

static enum MHD_Result on_headers(struct MHD_Connection *conn, request *req, const char *url,
                                  const char *method) {
    req->ep = route(url);
    snprintf(req->method, sizeof req->method, "%s", method);
    size_t u = 0;
    for (; url[u] && u + 1 < sizeof req->url; u++)
        req->url[u] = url[u] > ' ' && url[u] < 127 ? url[u] : '?';
    req->url[u] = '\0';
    if (srv.api_key && req->ep != EP_HEALTH && !authorized(conn)) {
        req->early_code = 401;
        snprintf(req->early_msg, sizeof req->early_msg,
                 "missing or wrong API key: send 'Authorization: Bearer <key>'");
        return MHD_YES;
    }
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    bool post = !strcmp(method, "POST");
    switch (req->ep) {
    case EP_HEALTH:
    case EP_METRICS:
        req->method_ok = get;
        break;
    case EP_COMPRESS:
    case EP_ANSWER:
        req->method_ok = post;
        break;
    default:
        req->method_ok = true;
        break;
    }
    if (req->ep == EP_OTHER) {
        req->early_code = 404;
        snprintf(req->early_msg, sizeof req->early_msg,
                 "no such endpoint: %s %.150s (endpoints: GET /health, GET /metrics, POST "
                 "/v1/compress, POST /v1/answer)",
                 method, url);
    } else if (!req->method_ok) {
        req->early_code = 405;
        snprintf(req->early_msg, sizeof req->early_msg, "method %.20s not allowed on %s (use %s)",
                 method, serve_endpoint_path[req->ep], post ? "GET" : "POST");
    } else if (post) {
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
        if (!serve_content_type_ok(ct)) {
            req->early_code = 415;
            snprintf(req->early_msg, sizeof req->early_msg,
                     "unsupported Content-Type '%.100s': send the request as application/json", ct);
        }
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno == ERANGE || n > srv.max_body) {
                const char *ex = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect");
                bool expect = ex && strncasecmp(ex, "100-continue", 12) == 0;
                if (expect || errno == ERANGE || n > SERVE_DRAIN_MAX)
                    return send_error(conn, req, 413,
                                      "request body of %s bytes is over this server's "
                                      "--max-body %zu",
                                      cl, srv.max_body);
                /* read and discard it, then answer 413 and close */
                req->too_large = true;
                req->close_after = true;
            }
        }
    }
    return MHD_YES;
}

/* Frees the request's body buffer and gives its bytes back to the
 * --max-body-memory budget. */
static void body_release(request *req) {
    if (req->cap) {
        pthread_mutex_lock(&srv.mu);
        srv.body_bytes -= req->cap;
        pthread_mutex_unlock(&srv.mu);
    }
    free(req->body);
    req->body = NULL;
    req->len = req->cap = 0;
}

/* Appends an upload chunk, or discards it once --max-body is passed (or the
 * request was refused from its headers). Returns false when a discarded
 * upload passes SERVE_DRAIN_MAX: the connection is then closed. */
static bool on_upload(request *req, const char *data, size_t size) {
    if (req->too_large || req->early_code) {
        req->discarded += size;
        return req->discarded <= SERVE_DRAIN_MAX;
    }
    if (size > srv.max_body - req->len) {
        req->too_large = true;
        req->close_after = true;
        req->discarded = req->len + size;
        body_release(req);
        return true;
    }
    if (req->len + size + 1 > req->cap) {
        size_t cap = req->cap ? req->cap : 4096;
        while (cap < req->len + size + 1)
            cap *= 2;
        if (cap > srv.max_body + 1) cap = srv.max_body + 1;
        pthread_mutex_lock(&srv.mu);
        bool over = srv.max_body_memory && srv.body_bytes - req->cap + cap > srv.max_body_memory;
        if (!over) srv.body_bytes += cap - req->cap;
        pthread_mutex_unlock(&srv.mu);
        if (over) { /* answered 503 at the end of the upload; the rest is discarded */
            req->early_code = 503;
            snprintf(req->early_msg, sizeof req->early_msg,
                     "the request bodies being received would take more than this server's "
                     "--max-body-memory %zu bytes; retry later",
                     srv.max_body_memory);
            req->discarded = req->len + size;
            body_release(req);
            return true;
        }
        char *b = realloc(req->body, cap);
        if (!b) { /* answered 503 at the end of the upload */
            pthread_mutex_lock(&srv.mu);
            srv.body_bytes -= cap - req->cap;
            pthread_mutex_unlock(&srv.mu);
            req->early_code = 503;
            snprintf(req->early_msg, sizeof req->early_msg,
                     "out of memory buffering a %zu-byte request body", req->len + size);
            req->discarded = req->len + size;
            body_release(req);
            return true;
        }
        req->body = b;
        req->cap = cap;
    }
    memcpy(req->body + req->len, data, size);
    req->len += size;
    return true;
}

/* The body is complete: answer or queue the work. */
static enum MHD_Result on_complete(struct MHD_Connection *conn, request *req) {
    if (req->early_code) return send_error(conn, req, req->early_code, "%s", req->early_msg);
    if (req->too_large)
        return send_error(conn, req, 413, "request body is over this server's --max-body %zu",
                          srv.max_body);
    switch (req->ep) {
    case EP_HEALTH:
        return send_json(conn, req, 200, serve_health_json(), srv.draining);
    case EP_METRICS: {
        size_t len = 0;
        char *text = serve_metrics_text(&len);
        if (!text) return send_error(conn, req, 500, "out of memory building /metrics");
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
            free(text);
            return MHD_NO;
        }
        MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
        enum MHD_Result r = MHD_queue_response(conn, 200, resp);
        MHD_destroy_response(resp);
        if (r == MHD_YES) req->code = 200;
        return r;
    }
    case EP_ANSWER:
        if (!srv.pl)
            return send_error(conn, req, 503, "no model loaded: start comi serve with --model");
        break;
    case EP_COMPRESS:
        break;
    default:
        return send_error(conn, req, 500, "internal error: unrouted request");
    }
    if (srv.draining) return send_error(conn, req, 503, "the server is shutting down");

    job *j = calloc(1, sizeof *j);
    if (!j) return send_error(conn, req, 503, "out of memory for a job");
    char err[700];
    int code = req->ep == EP_ANSWER
                   ? serve_parse_answer(req->body ? req->body : "", req->len, j, err, sizeof err)
                   : serve_parse_compress(req->body ? req->body : "", req->len, j, err, sizeof err);
    body_release(req); /* jansson copied what it needs */
    if (code) {
        serve_job_free(j);
        return send_error(conn, req, code, "%s", err);
    }
    j->conn = conn;
    const union MHD_ConnectionInfo *fdi =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    j->fd = fdi ? fdi->connect_fd : -1;
    j->t_queued = serve_now_ms();
    j->deadline = srv.timeout_ms > 0 ? j->t_queued + (double)srv.timeout_ms : 0;
    j->refs = 2; /* the request and the queue */
    j->state = JOB_QUEUED;

    if (!serve_queue_push(conn, j, &req->job)) {
        serve_job_free(j);
        return send_error(conn, req, 503,
                          "the server is busy: %d jobs queued (--queue %d); retry later", srv.q_len,
                          srv.queue_cap);
    }
    return MHD_YES;
}

enum MHD_Result serve_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    (void)cls;
    (void)version;
    request *req = *con_cls;
    if (!req) {
        req = calloc(1, sizeof *req);
        if (!req) return MHD_NO; /* closes the connection */
        req->t_start = serve_now_ms();
        *con_cls = req;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *sa = ci ? ci->client_addr : NULL;
        if (sa && sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                      req->client, sizeof req->client);
        else if (sa && sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                      req->client, sizeof req->client);
        else
            snprintf(req->client, sizeof req->client, "-");
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        conn_track *t = ci ? ci->socket_context : NULL;
        pthread_mutex_lock(&srv.mu);
        srv.in_flight++;
        if (t) {
            t->t_headers = req->t_start;
            t->body_done = false;
        }
        pthread_mutex_unlock(&srv.mu);
        return on_headers(conn, req, url, method);
    }
    if (req->job) { /* resumed: the worker or the watchdog has the answer */
        pthread_mutex_lock(&srv.mu);
        job *j = req->job;
        if (!j->responded) { /* spurious wake-up; wait again */
            MHD_suspend_connection(conn);
            pthread_mutex_unlock(&srv.mu);
            return MHD_YES;
        }
        int code = j->code;
        char *body = j->body;
        j->body = NULL;
        req->tokens_in = j->tokens_in;
        req->tokens_out = j->tokens_out;
        req->job = NULL;
        serve_job_unref_locked(j);
        pthread_mutex_unlock(&srv.mu);
        return send_json(conn, req, code, body, srv.draining);
    }
    if (*upload_data_size) {
        bool more = on_upload(req, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return more ? MHD_YES : MHD_NO;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci && ci->socket_context) {
        pthread_mutex_lock(&srv.mu);
        ((conn_track *)ci->socket_context)->body_done = true;
        pthread_mutex_unlock(&srv.mu);
    }
    return on_complete(conn, req);
}

void serve_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls;
    request *req = *con_cls;
    if (!req) return;
    *con_cls = NULL;
    body_release(req);
    double now = serve_now_ms();
    double secs = (now - req->t_start) / 1e3;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    pthread_mutex_lock(&srv.mu);
    if (ci && ci->socket_context) { /* keep-alive: the next request's header deadline */
        conn_track *t = ci->socket_context;
        t->t_idle = now;
        t->t_headers = 0;
        t->body_done = false;
    }
    srv.in_flight--;
    if (req->job) { /* only when MHD drops a pending request: nobody may resume it now */
        if (!req->job->responded) {
            req->job->responded = true;
            serve_active_remove_locked(req->job);
        }
        serve_job_unref_locked(req->job);
    }
    serve_metrics_record(req, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK, secs);
    pthread_mutex_unlock(&srv.mu);
    if (srv.access_log) {
        /* timestamp (UTC) client method path status bytes ms */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        char when[32];
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ldZ %s %s %s %d %zu %.3fms%s\n", when, ts.tv_nsec / 1000000L,
                req->client, req->method[0] ? req->method : "-", req->url[0] ? req->url : "-",
                req->code, req->resp_bytes, secs * 1e3,
                toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted");
    }
    free(req);
}

void serve_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                         enum MHD_ConnectionNotificationCode toe) {
    (void)cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_track *t = calloc(1, sizeof *t);
        if (!t) return; /* untracked: only MHD's inactivity timeout applies */
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        t->fd = ci ? ci->connect_fd : -1;
        t->t_idle = serve_now_ms();
        pthread_mutex_lock(&srv.mu);
        t->next = srv.conns;
        if (srv.conns) srv.conns->prev = t;
        srv.conns = t;
        pthread_mutex_unlock(&srv.mu);
        *socket_context = t;
        return;
    }
    conn_track *t = *socket_context; /* MHD_CONNECTION_NOTIFY_CLOSED, before the close */
    if (!t) return;
    *socket_context = NULL;
    pthread_mutex_lock(&srv.mu);
    if (t->prev) t->prev->next = t->next;
    else srv.conns = t->next;
    if (t->next) t->next->prev = t->prev;
    pthread_mutex_unlock(&srv.mu);
    free(t);
}

/* Shuts down (so that MHD closes at once) every connection whose request
 * headers did not arrive within --header-timeout-ms of its start or its
 * last request, or whose body did not arrive within --body-timeout-ms of
 * its headers: slow or stalled clients cannot hold connections and body
 * memory beyond these deadlines. */
void serve_expire_connections(void) {
    double now = serve_now_ms();
    pthread_mutex_lock(&srv.mu);
    for (conn_track *t = srv.conns; t; t = t->next) {
        if (t->killed || t->fd < 0) continue;
        bool late_headers = t->t_headers == 0 && srv.header_timeout_ms > 0 &&
                            now - t->t_idle > (double)srv.header_timeout_ms;
        bool late_body = t->t_headers > 0 && !t->body_done && srv.body_timeout_ms > 0 &&
                         now - t->t_headers > (double)srv.body_timeout_ms;
        if (late_headers || late_body) {
            shutdown(t->fd, SHUT_RDWR);
            t->killed = true;
            srv.deadline_kills++;
        }
    }
    pthread_mutex_unlock(&srv.mu);
}

