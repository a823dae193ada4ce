/*
 * metrics.c — what `comi serve` counts and reports: the per-request
 * counters (endpoint x status code, latency histogram, tokens), the
 * /health JSON and the /metrics Prometheus text exposition.
 */
#include "serve.h"

#include <stdio.h>
#include <stdlib.h>

const char *const serve_endpoint_path[EP_COUNT] = {"/health", "/metrics", "/v1/compress",
                                                    "/v1/answer", "other"};

/* Every status code the server answers with; anything else counts as "other". */
static const int status_codes[] = {200, 400, 404, 405, 413, 415, 422, 500, 503, 504};
_Static_assert(sizeof status_codes / sizeof status_codes[0] == SERVE_N_CODES, "SERVE_N_CODES");

/* Latency histogram bucket upper bounds, seconds. */
static const double latency_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};
_Static_assert(sizeof latency_le / sizeof latency_le[0] == SERVE_N_BUCKETS, "SERVE_N_BUCKETS");

static size_t code_index(int code) {
    for (size_t i = 0; i < SERVE_N_CODES; i++)
        if (status_codes[i] == code) return i;
    return SERVE_N_CODES;
}

/* Counts one finished request (srv.mu held): its endpoint and status code,
 * latency and tokens, or an abort when the connection closed first. */
void serve_metrics_record(const request *req, bool completed, double secs) {
    metrics *m = &srv.m;
    if (!completed || !req->code || req->code == 499) { /* 499: the client had gone */
        m->aborted[req->ep]++;
    } else {
        m->requests[req->ep][code_index(req->code)]++;
        if (req->code >= 500)
            m->server_errors++;
        else if (req->code >= 400)
            m->client_errors++;
        size_t b = 0;
        while (b < SERVE_N_BUCKETS && secs > latency_le[b])
            b++;
        m->latency_bucket[req->ep][b]++;
        m->latency_sum[req->ep] += secs;
        m->latency_count[req->ep]++;
        m->tokens_in += (uint64_t)req->tokens_in;
        m->tokens_out += (uint64_t)req->tokens_out;
    }
}

char *serve_health_json(void) {
    pthread_mutex_lock(&srv.mu);
    int q_len = srv.q_len, in_flight = srv.in_flight;
    json_int_t body_bytes = (json_int_t)srv.body_bytes, kills = (json_int_t)srv.deadline_kills;
    json_int_t n_conns = 0;
    for (conn_track *t = srv.conns; t; t = t->next)
        n_conns++;
    bool draining = srv.draining;
    pthread_mutex_unlock(&srv.mu);
    json_t *model =
        srv.pl ? json_string(srv.pl_info.description ? srv.pl_info.description : srv.model_path)
               : json_null();
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:o, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:f, s:{s:I, s:I, s:I, s:I, s:I}}",
        "status",
        draining ? "draining" : "ok", "version", comi_version(), "encoder", srv.encoder_spec,
        "model", model, "workers", srv.n_workers, "queue_depth", q_len, "queue_capacity",
        srv.queue_cap, "in_flight", in_flight, "connections", n_conns, "body_bytes", body_bytes,
        "deadline_closed", kills, "uptime_s", (serve_now_ms() - srv.t_boot) / 1e3, "limits",
        "max_body", (json_int_t)srv.max_body, "max_tokens", (json_int_t)srv.max_tokens,
        "timeout_ms", (json_int_t)srv.timeout_ms, "max_context_tokens",
        (json_int_t)srv.limits.max_context_tokens, "max_memory",
        (json_int_t)(srv.limits.max_bytes > INT64_MAX ? INT64_MAX : srv.limits.max_bytes));
    if (o) { /* what /v1/compress budgets count: --tokenizer's tokens, or words */
        json_object_set_new(o, "tokenizer",
                            json_string(srv.tokenizer_spec ? srv.tokenizer_spec : "words"));
        /* the workers' KV caches (--kv-type): the model's and a model --encoder's */
        json_object_set_new(o, "kv_type",
                            json_string(srv.limits.kv_type == COMI_KV_F16 ? "f16" : "f32"));
    }
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(o);
    return text;
}

/* The Prometheus text exposition (format 0.0.4). */
char *serve_metrics_text(size_t *len) {
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f) return NULL;
    pthread_mutex_lock(&srv.mu);
    metrics m = srv.m;
    int q_len = srv.q_len, in_flight = srv.in_flight, idle = srv.idle_workers;
    pthread_mutex_unlock(&srv.mu);

    fprintf(f,
            "# HELP comi_build_info The comi version and the loaded encoder.\n"
            "# TYPE comi_build_info gauge\n"
            "comi_build_info{version=\"%s\",encoder=\"",
            comi_version());
    for (const char *s = srv.encoder_spec; *s; s++) {
        if (*s == '\\' || *s == '"') fputc('\\', f);
        if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
    fprintf(f, "\"} 1\n");
    fprintf(f, "# HELP comi_http_requests_total HTTP requests answered, by endpoint and status "
               "code.\n# TYPE comi_http_requests_total counter\n");
    for (int e = 0; e < EP_COUNT; e++)
        for (size_t c = 0; c <= SERVE_N_CODES; c++) {
            if (!m.requests[e][c]) continue;
            char code[16];
            if (c < SERVE_N_CODES)
                snprintf(code, sizeof code, "%d", status_codes[c]);
            else
                snprintf(code, sizeof code, "other");
            fprintf(f, "comi_http_requests_total{endpoint=\"%s\",code=\"%s\"} %llu\n",
                    serve_endpoint_path[e], code, (unsigned long long)m.requests[e][c]);
        }
    fprintf(f, "# HELP comi_http_aborted_total Requests whose connection closed before the "
               "response was sent.\n# TYPE comi_http_aborted_total counter\n");
    for (int e = 0; e < EP_COUNT; e++)
        fprintf(f, "comi_http_aborted_total{endpoint=\"%s\"} %llu\n", serve_endpoint_path[e],
                (unsigned long long)m.aborted[e]);
    fprintf(f,
            "# HELP comi_http_errors_total Error responses by class (client: 4xx, server: "
            "5xx).\n# TYPE comi_http_errors_total counter\n"
            "comi_http_errors_total{class=\"client\"} %llu\n"
            "comi_http_errors_total{class=\"server\"} %llu\n",
            (unsigned long long)m.client_errors, (unsigned long long)m.server_errors);
    fprintf(f,
            "# HELP comi_compress_failures_total Compressions the library refused or "
            "failed.\n# TYPE comi_compress_failures_total counter\n"
            "comi_compress_failures_total %llu\n",
            (unsigned long long)m.compress_failures);
    fprintf(f,
            "# HELP comi_rejected_queue_full_total Requests answered 503 because the queue "
            "was full.\n# TYPE comi_rejected_queue_full_total counter\n"
            "comi_rejected_queue_full_total %llu\n",
            (unsigned long long)m.rejected_queue_full);
    fprintf(f,
            "# HELP comi_timeouts_total Requests answered 504 after --timeout-ms.\n"
            "# TYPE comi_timeouts_total counter\ncomi_timeouts_total %llu\n",
            (unsigned long long)m.timeouts);
    fprintf(f,
            "# HELP comi_cancelled_total Running jobs cancelled (comi_ctx_cancel) at their "
            "deadline, when their client went away, or at shutdown.\n"
            "# TYPE comi_cancelled_total counter\ncomi_cancelled_total %llu\n",
            (unsigned long long)m.cancelled);
    fprintf(f,
            "# HELP comi_client_gone_total Queued or running jobs dropped because their "
            "client closed the connection.\n"
            "# TYPE comi_client_gone_total counter\ncomi_client_gone_total %llu\n",
            (unsigned long long)m.client_gone);
    fprintf(f,
            "# HELP comi_cancel_wait_seconds How long a cancelled job kept its worker after "
            "the cancel (sum, count, and the longest).\n"
            "# TYPE comi_cancel_wait_seconds summary\n"
            "comi_cancel_wait_seconds_sum %.6f\ncomi_cancel_wait_seconds_count %llu\n"
            "# HELP comi_cancel_wait_seconds_max The longest such wait.\n"
            "# TYPE comi_cancel_wait_seconds_max gauge\ncomi_cancel_wait_seconds_max %.6f\n",
            m.cancel_wait_sum, (unsigned long long)m.cancel_wait_count, m.cancel_wait_max);
    fprintf(f, "# HELP comi_request_duration_seconds Time from the request's headers to its "
               "response being sent.\n# TYPE comi_request_duration_seconds histogram\n");
    for (int e = 0; e < EP_COUNT; e++) {
        if (!m.latency_count[e]) continue;
        uint64_t cum = 0;
        for (size_t b = 0; b < SERVE_N_BUCKETS; b++) {
            cum += m.latency_bucket[e][b];
            fprintf(f, "comi_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} %llu\n",
                    serve_endpoint_path[e], latency_le[b], (unsigned long long)cum);
        }
        fprintf(f,
                "comi_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %llu\n"
                "comi_request_duration_seconds_sum{endpoint=\"%s\"} %.6f\n"
                "comi_request_duration_seconds_count{endpoint=\"%s\"} %llu\n",
                serve_endpoint_path[e], (unsigned long long)m.latency_count[e], serve_endpoint_path[e],
                m.latency_sum[e], serve_endpoint_path[e], (unsigned long long)m.latency_count[e]);
    }
    fprintf(f,
            "# HELP comi_tokens_in_total Tokens of the contexts compressed.\n"
            "# TYPE comi_tokens_in_total counter\ncomi_tokens_in_total %llu\n"
            "# HELP comi_tokens_out_total Tokens of the compressed texts returned.\n"
            "# TYPE comi_tokens_out_total counter\ncomi_tokens_out_total %llu\n",
            (unsigned long long)m.tokens_in, (unsigned long long)m.tokens_out);
    fprintf(f,
            "# HELP comi_queue_depth Jobs waiting for a worker.\n# TYPE comi_queue_depth "
            "gauge\ncomi_queue_depth %d\n"
            "# HELP comi_in_flight_requests Requests received and not yet answered.\n"
            "# TYPE comi_in_flight_requests gauge\ncomi_in_flight_requests %d\n"
            "# HELP comi_workers Worker threads, and how many are idle.\n"
            "# TYPE comi_workers gauge\ncomi_workers{state=\"total\"} %d\n"
            "comi_workers{state=\"idle\"} %d\n",
            q_len, in_flight, srv.n_workers, idle);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

