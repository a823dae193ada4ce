/*
 * http.c — the HTTP plumbing of `comi serve` on GNU libmicrohttpd: routing,
 * header checks (method, Content-Type, Content-Length), buffering the
 * upload within --max-body, queueing the work, and sending JSON responses.
 * All of it runs in the MHD thread.
 */
#include "serve.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (code == 405)
        MHD_add_response_header(
            resp, "Allow", req->ep == EP_HEALTH || req->ep == EP_METRICS ? "GET, HEAD" : "POST");
    if (close) MHD_add_response_header(resp, "Connection", "close");
    enum MHD_Result r = MHD_queue_response(conn, (unsigned)code, resp);
    MHD_destroy_response(resp);
    if (r == MHD_YES) req->code = code;
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
static enum MHD_Result on_headers(struct MHD_Connection *conn, request *req, const char *url,
                                  const char *method) {
    req->ep = route(url);
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
                return send_error(conn, req, 413,
                                  "request body of %s bytes is over this server's --max-body "
                                  "%zu",
                                  cl, srv.max_body);
            }
        }
    }
    return MHD_YES;
}

/* Appends an upload chunk, or discards it once --max-body is passed. */
static void on_upload(request *req, const char *data, size_t size) {
    if (req->too_large || req->early_code) return;
    if (size > srv.max_body - req->len) {
        req->too_large = true;
        free(req->body);
        req->body = NULL;
        req->len = req->cap = 0;
        return;
    }
    if (req->len + size + 1 > req->cap) {
        size_t cap = req->cap ? req->cap : 4096;
        while (cap < req->len + size + 1)
            cap *= 2;
        if (cap > srv.max_body + 1) cap = srv.max_body + 1;
        char *b = realloc(req->body, cap);
        if (!b) { /* answered 503 at the end of the upload */
            req->early_code = 503;
            snprintf(req->early_msg, sizeof req->early_msg,
                     "out of memory buffering a %zu-byte request body", req->len + size);
            return;
        }
        req->body = b;
        req->cap = cap;
    }
    memcpy(req->body + req->len, data, size);
    req->len += size;
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
    free(req->body); /* jansson copied what it needs */
    req->body = NULL;
    if (code) {
        serve_job_free(j);
        return send_error(conn, req, code, "%s", err);
    }
    j->conn = conn;
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
        pthread_mutex_lock(&srv.mu);
        srv.in_flight++;
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
        on_upload(req, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    return on_complete(conn, req);
}

void serve_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)conn;
    request *req = *con_cls;
    if (!req) return;
    *con_cls = NULL;
    double secs = (serve_now_ms() - req->t_start) / 1e3;
    pthread_mutex_lock(&srv.mu);
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
    if (srv.access_log)
        fprintf(stderr, "comi serve: %s %d %.3f ms%s\n", serve_endpoint_path[req->ep], req->code,
                secs * 1e3, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
    free(req->body);
    free(req);
}

