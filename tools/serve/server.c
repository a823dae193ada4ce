/*
 * server.c — `comi serve`: the HTTP service over text-mode compression.
 * Endpoints: GET /health, GET /metrics (Prometheus text), POST
 * /v1/compress, POST /v1/answer (503 until a model pipeline exists).
 *
 * Threads. GNU libmicrohttpd runs one internal epoll thread that reads
 * requests, validates them and answers the cheap endpoints itself. A
 * compression becomes a job on a bounded queue served by --threads workers,
 * each owning one comi_ctx; all share the one loaded (immutable) encoder.
 * The connection is suspended while its job waits or runs and is resumed
 * by whoever produces its response: the worker, or the timeout watchdog
 * that runs in the main thread between waits for SIGTERM/SIGINT. On a
 * signal the server stops accepting, lets in-flight requests finish
 * (bounded), then exits 0.
 *
 * Locking: one mutex (srv.mu) guards the queue, the job states and the
 * metrics. MHD functions are called with srv.mu held only from the MHD
 * thread itself; workers and the watchdog resume connections after
 * releasing it, so no thread ever waits on MHD's locks while holding ours.
 */
#include "../cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int cmd_serve(int argc, char **argv);

#define CMD "serve"

/* ------------------------------------------------------------------------ */
/* Endpoints and metrics                                                    */
/* ------------------------------------------------------------------------ */

typedef enum endpoint {
    EP_HEALTH,
    EP_METRICS,
    EP_COMPRESS,
    EP_ANSWER,
    EP_OTHER, /* unknown paths share one label so clients cannot grow the label set */
    EP_COUNT
} endpoint;

static const char *const endpoint_path[EP_COUNT] = {"/health", "/metrics", "/v1/compress",
                                                    "/v1/answer", "other"};

/* Every status code the server answers with; anything else counts as "other". */
static const int status_codes[] = {200, 400, 404, 405, 413, 415, 422, 500, 503, 504};
#define N_CODES (sizeof status_codes / sizeof status_codes[0])

/* Latency histogram bucket upper bounds, seconds. */
static const double latency_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define N_BUCKETS (sizeof latency_le / sizeof latency_le[0])

typedef struct metrics {
    uint64_t requests[EP_COUNT][N_CODES + 1]; /* last column: other codes */
    uint64_t aborted[EP_COUNT];               /* connection closed before the response went out */
    uint64_t latency_bucket[EP_COUNT][N_BUCKETS + 1]; /* non-cumulative; last: > largest bound */
    double latency_sum[EP_COUNT];                     /* seconds */
    uint64_t latency_count[EP_COUNT];
    uint64_t client_errors, server_errors; /* 4xx, 5xx responses */
    uint64_t compress_failures;            /* the library returned an error */
    uint64_t rejected_queue_full, timeouts;
    uint64_t tokens_in, tokens_out;
} metrics;

/* ------------------------------------------------------------------------ */
/* Jobs and requests                                                        */
/* ------------------------------------------------------------------------ */

typedef enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_FINISHED } job_state;
typedef enum job_kind { JOB_COMPRESS, JOB_ANSWER } job_kind;

/* One compression or answer. Owned jointly by its request and the queue/worker
 * (refs); freed by whichever lets go last. Fields below `srv.mu` are read
 * and written only with srv.mu held. */
typedef struct job {
    struct MHD_Connection *conn; /* suspended while the job is pending */
    /* inputs (immutable once queued): strings point into root */
    json_t *root;
    const char *context; /* or NULL when docs are given */
    const char **docs;   /* n_docs strings, owned (the array only) */
    size_t n_docs;
    const char *question;
    job_kind kind;
    comi_text_params params;    /* JOB_COMPRESS */
    comi_answer_params aparams; /* JOB_ANSWER */
    double t_queued;            /* ms, monotonic */
    double deadline;            /* ms, monotonic; 0: none */
    /* srv.mu */
    job_state state;
    int refs;
    bool responded;                  /* code/body hold the answer; conn resumed or about to be */
    struct job *next;                /* queue link */
    struct job *act_prev, *act_next; /* pending jobs, for the watchdog */
    int code;
    char *body; /* JSON text, malloc'ed */
    int64_t tokens_in, tokens_out;
} job;

typedef struct request {
    endpoint ep;
    bool method_ok;
    double t_start; /* ms, monotonic */
    int early_code; /* an error decided from the headers alone (0: none) */
    char early_msg[256];
    char *body; /* the upload, max_body bytes at most */
    size_t len, cap;
    bool too_large; /* the upload passed --max-body and is being discarded */
    job *job;
    int code; /* the status code answered (0: none yet) */
    int64_t tokens_in, tokens_out;
} request;

/* ------------------------------------------------------------------------ */
/* Server state                                                             */
/* ------------------------------------------------------------------------ */

typedef struct server {
    /* configuration */
    const char *host;
    int32_t port;      /* the option parser writes these int32_t fields */
    int32_t n_workers;
    int32_t queue_cap;
    size_t max_body;
    int64_t max_tokens;
    cli_limits limits; /* --max-context-tokens, --max-memory: every worker's comi_ctx */
    int64_t timeout_ms;
    const char *encoder_spec;
    comi_encoder *enc;
    const char *model_path;      /* --model: NULL when /v1/answer is off */
    const char *checkpoint_path; /* --checkpoint: NULL for the training-free pipeline */
    comi_pipeline *pl;           /* shared by the workers, immutable */
    comi_pipeline_info pl_info;
    int64_t max_new_tokens; /* the largest max_new_tokens a request may ask for */
    int32_t ctx_threads;    /* kernel threads of each worker's comi_ctx */
    bool access_log;
    int64_t delay_ms; /* testing aid: workers sleep this long before each job */
    double t_boot;
    /* runtime */
    struct MHD_Daemon *daemon;
    pthread_t *workers;
    comi_ctx **ctxs; /* one per worker */
    pthread_mutex_t mu;
    pthread_cond_t work; /* a job was queued, or stop */
    /* srv.mu */
    job *q_head, *q_tail;
    int q_len;
    int idle_workers;
    job *active;   /* pending (not yet responded) jobs */
    int in_flight; /* requests between the first handler call and completion */
    bool draining;
    bool stop;
    metrics m;
} server;

static server srv;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static size_t code_index(int code) {
    for (size_t i = 0; i < N_CODES; i++)
        if (status_codes[i] == code) return i;
    return N_CODES;
}

/* srv.mu held. */
static void job_unref_locked(job *j) {
    if (--j->refs > 0) return;
    json_decref(j->root);
    free(j->docs);
    free(j->body);
    free(j);
}

static void active_remove_locked(job *j) {
    if (j->act_prev)
        j->act_prev->act_next = j->act_next;
    else if (srv.active == j)
        srv.active = j->act_next;
    if (j->act_next) j->act_next->act_prev = j->act_prev;
    j->act_prev = j->act_next = NULL;
}

/* ------------------------------------------------------------------------ */
/* Responses                                                                */
/* ------------------------------------------------------------------------ */

/* {"error": msg} as malloc'ed JSON text (NULL only when out of memory). */
static char *error_json(const char *msg) {
    json_t *o = json_object();
    /* msg may quote request bytes that are not UTF-8; json_string would
     * refuse them, so fall back to a lossy but valid copy. */
    json_t *s = json_string(msg);
    if (!s) {
        size_t n = strlen(msg);
        char *ascii = malloc(n + 1);
        if (ascii) {
            for (size_t i = 0; i < n; i++)
                ascii[i] = (unsigned char)msg[i] < 0x80 ? msg[i] : '?';
            ascii[n] = '\0';
            s = json_string(ascii);
            free(ascii);
        }
    }
    char *text = NULL;
    if (o && s && json_object_set_new(o, "error", s) == 0)
        text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
    else
        json_decref(s);
    json_decref(o);
    return text;
}

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
    return send_json(conn, req, code, error_json(msg), srv.draining);
}

/* ------------------------------------------------------------------------ */
/* Request validation                                                       */
/* ------------------------------------------------------------------------ */

static const char *json_type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
        return "true";
    case JSON_FALSE:
        return "false";
    case JSON_NULL:
        return "null";
    }
    return "an unknown value";
}

/* Whitespace-separated words (ASCII and Unicode spaces): the lexical
 * encoder's token count, used to refuse an oversize context (--max-tokens)
 * before any work is queued and to spot empty fields. */
static int64_t count_words(const char *s) {
    return comi_text_count_tokens(s);
}

/* An optional integer field in [lo, hi]: 0 when absent or valid (*out
 * set when present), else the HTTP status with the message in err. */
static int get_int_field(json_t *root, const char *name, int64_t lo, int64_t hi, bool *present,
                         int64_t *out, char *err, size_t errsz) {
    json_t *v = json_object_get(root, name);
    *present = v != NULL;
    if (!v) return 0;
    if (!json_is_integer(v)) {
        snprintf(err, errsz, "'%s' must be an integer, got %s", name, json_type_name(v));
        return 400;
    }
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi) {
        snprintf(err, errsz, "'%s' must be in [%lld, %lld], got %lld", name, (long long)lo,
                 (long long)hi, (long long)x);
        return 422;
    }
    *out = (int64_t)x;
    return 0;
}

/* The fields every POST endpoint shares: the JSON object itself, no fields
 * beyond `known`, "context" | "documents", and "question". An empty context
 * is refused only when `need_context`. Returns 0 or the HTTP status. */
static int parse_common(const char *body, size_t len, job *j, const char *const *known,
                        size_t n_known, bool need_context, char *err, size_t errsz) {
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errsz, "malformed JSON at line %d, column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        return 400;
    }
    j->root = root;
    if (!json_is_object(root)) {
        snprintf(err, errsz, "the request body must be a JSON object, got %s",
                 json_type_name(root));
        return 400;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        bool ok = false;
        for (size_t i = 0; i < n_known; i++)
            ok |= !strcmp(key, known[i]);
        if (!ok) {
            char list[256] = "";
            for (size_t i = 0; i < n_known; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                         known[i]);
            snprintf(err, errsz, "unknown field '%.100s' (known: %s)", key, list);
            return 400;
        }
    }
    json_t *ctx = json_object_get(root, "context");
    json_t *docs = json_object_get(root, "documents");
    json_t *q = json_object_get(root, "question");
    if (ctx && docs) {
        snprintf(err, errsz, "give either 'context' or 'documents', not both");
        return 400;
    }
    if (!ctx && !docs) {
        snprintf(err, errsz,
                 "missing field 'context' (a string) or 'documents' (a list of strings)");
        return 400;
    }
    int64_t words = 0;
    if (ctx) {
        if (!json_is_string(ctx)) {
            snprintf(err, errsz, "'context' must be a string, got %s", json_type_name(ctx));
            return 400;
        }
        j->context = json_string_value(ctx);
        words = count_words(j->context);
        if (words == 0 && need_context) {
            snprintf(err, errsz, "'context' is empty");
            return 422;
        }
    } else {
        if (!json_is_array(docs)) {
            snprintf(err, errsz, "'documents' must be a list of strings, got %s",
                     json_type_name(docs));
            return 400;
        }
        size_t n = json_array_size(docs);
        if (n == 0 && need_context) {
            snprintf(err, errsz, "'documents' is an empty list");
            return 422;
        }
        j->docs = calloc(n ? n : 1, sizeof *j->docs);
        if (!j->docs) {
            snprintf(err, errsz, "out of memory for %zu documents", n);
            return 503;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *d = json_array_get(docs, i);
            if (!json_is_string(d)) {
                snprintf(err, errsz, "'documents'[%zu] must be a string, got %s", i,
                         json_type_name(d));
                return 400;
            }
            j->docs[i] = json_string_value(d);
            words += count_words(j->docs[i]);
        }
        j->n_docs = n;
        if (words == 0 && need_context) {
            snprintf(err, errsz, "'documents' holds only empty strings");
            return 422;
        }
    }
    if (!q) {
        snprintf(err, errsz, "missing field 'question' (a string)");
        return 400;
    }
    if (!json_is_string(q)) {
        snprintf(err, errsz, "'question' must be a string, got %s", json_type_name(q));
        return 400;
    }
    j->question = json_string_value(q);
    if (count_words(j->question) == 0) {
        snprintf(err, errsz, "'question' is empty");
        return 422;
    }
    if (srv.max_tokens > 0 && words > srv.max_tokens) {
        snprintf(err, errsz, "the context has %lld words, over this server's --max-tokens %lld",
                 (long long)words, (long long)srv.max_tokens);
        return 413;
    }
    return 0;
}

/* Parses and checks a /v1/compress body into j (inputs only). Returns 0 on
 * success, else the HTTP status with the message in err. */
static int parse_compress(const char *body, size_t len, job *j, char *err, size_t errsz) {
    static const char *const known[] = {"context", "documents",     "question",
                                        "ratio",   "target_tokens", "encoder"};
    int code = parse_common(body, len, j, known, sizeof known / sizeof known[0], true, err, errsz);
    if (code) return code;
    json_t *ratio = json_object_get(j->root, "ratio");
    json_t *target = json_object_get(j->root, "target_tokens");
    json_t *enc = json_object_get(j->root, "encoder");
    j->kind = JOB_COMPRESS;
    j->params = comi_text_default_params();
    j->params.encoder = srv.enc;
    if (ratio && target) {
        snprintf(err, errsz, "give either 'ratio' or 'target_tokens', not both");
        return 400;
    }
    if (ratio) {
        if (!json_is_number(ratio)) {
            snprintf(err, errsz, "'ratio' must be a number, got %s", json_type_name(ratio));
            return 400;
        }
        double r = json_number_value(ratio);
        if (!(r >= 1) || !isfinite(r)) {
            snprintf(err, errsz, "'ratio' must be a finite number >= 1, got %g", r);
            return 422;
        }
        j->params.ratio = r;
        j->params.target_tokens = 0;
    }
    if (target) {
        if (!json_is_integer(target)) {
            snprintf(err, errsz, "'target_tokens' must be an integer, got %s",
                     json_type_name(target));
            return 400;
        }
        json_int_t t = json_integer_value(target);
        if (t <= 0) {
            snprintf(err, errsz, "'target_tokens' must be > 0, got %lld", (long long)t);
            return 422;
        }
        j->params.target_tokens = (int64_t)t;
    }
    if (enc) {
        if (!json_is_string(enc)) {
            snprintf(err, errsz, "'encoder' must be a string, got %s", json_type_name(enc));
            return 400;
        }
        const char *e = json_string_value(enc);
        if (!strcmp(e, "lexical")) {
            j->params.encoder = NULL; /* the built-in lexical encoder */
        } else if (strcmp(e, srv.encoder_spec) != 0) {
            snprintf(err, errsz,
                     "'encoder' is '%.200s' but this server loaded '%.200s' (use that, "
                     "\"lexical\", or leave it out)",
                     e, srv.encoder_spec);
            return 422;
        }
    }
    return 0;
}

/* Parses and checks a /v1/answer body (the model pipeline's knobs start
 * from the loaded pipeline's defaults). Returns 0 or the HTTP status. */
static int parse_answer(const char *body, size_t len, job *j, char *err, size_t errsz) {
    static const char *const known[] = {"context",     "documents",      "question",
                                        "merge_size",  "max_new_tokens", "encoder_layers",
                                        "segment_size"};
    int code = parse_common(body, len, j, known, sizeof known / sizeof known[0], false, err, errsz);
    if (code) return code;
    j->kind = JOB_ANSWER;
    j->aparams = comi_pipeline_answer_params(srv.pl);
    j->aparams.keep_logits = false;
    /* The pipeline's default applies when the request gives none, but never
     * beyond this server's --max-new-tokens (found by fuzz_answer). */
    if (j->aparams.max_new_tokens > srv.max_new_tokens)
        j->aparams.max_new_tokens = (int32_t)srv.max_new_tokens;
    bool has;
    int64_t v;
    if ((code = get_int_field(j->root, "merge_size", 1, 1 << 20, &has, &v, err, errsz)))
        return code;
    if (has) j->aparams.merge.merge_size = v;
    if ((code =
             get_int_field(j->root, "max_new_tokens", 1, srv.max_new_tokens, &has, &v, err, errsz)))
        return code;
    if (has) j->aparams.max_new_tokens = (int32_t)v;
    if ((code = get_int_field(j->root, "encoder_layers", 1, srv.pl_info.encoder_n_layer, &has, &v,
                              err, errsz)))
        return code;
    if (has) j->aparams.encoder_layers = (int32_t)v;
    if ((code = get_int_field(j->root, "segment_size", 1, INT32_MAX, &has, &v, err, errsz)))
        return code;
    if (has) j->aparams.segment_size = v;
    return 0;
}

/* Content types a JSON body may arrive with: JSON itself, none, and the
 * ones curl -d and browsers default to; anything else is refused (415) so
 * a form upload gets a clear answer instead of a JSON syntax error. */
static bool content_type_ok(const char *ct) {
    if (!ct) return true;
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    static const char *const ok[] = {"application/json", "text/plain",
                                     "application/x-www-form-urlencoded"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strlen(ok[i]) == n && !strncasecmp(ct, ok[i], n)) return true;
    /* application/<anything>+json */
    return n > 5 && !strncasecmp(ct + n - 5, "+json", 5);
}

/* ------------------------------------------------------------------------ */
/* Workers                                                                  */
/* ------------------------------------------------------------------------ */

static int status_to_http(comi_status st) {
    switch (st) {
    case COMI_ERR_INVALID_ARG:
    case COMI_ERR_FORMAT:
    case COMI_ERR_UNSUPPORTED:
        return 422;
    case COMI_ERR_LIMIT:
        return 413;
    case COMI_ERR_NOMEM:
        return 503;
    default:
        return 500;
    }
}

/* Runs one job on ctx; fills code/body/tokens (outside srv.mu: the job's
 * outputs are not shared until `responded` is set). */
static void run_compress(comi_ctx *ctx, job *j, int *code, char **body, int64_t *tin,
                         int64_t *tout) {
    comi_text_result res;
    memset(&res, 0, sizeof res);
    comi_status st = j->context ? comi_compress_text(ctx, j->context, j->question, &j->params, &res)
                                : comi_compress_documents(ctx, j->docs, j->n_docs, j->question,
                                                          &j->params, &res);
    *tin = *tout = 0;
    if (st != COMI_OK) {
        char msg[700];
        snprintf(msg, sizeof msg, "compression failed (%s): %s", comi_status_str(st),
                 comi_errmsg(ctx));
        *code = status_to_http(st);
        *body = error_json(msg);
        comi_text_result_free(&res);
        return;
    }
    if (srv.max_tokens > 0 && res.original_tokens > srv.max_tokens) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "the context has %lld encoder tokens, over this server's --max-tokens %lld",
                 (long long)res.original_tokens, (long long)srv.max_tokens);
        *code = 413;
        *body = error_json(msg);
        comi_text_result_free(&res);
        return;
    }
    json_t *o = json_object();
    json_t *text = json_string(res.text ? res.text : "");
    if (o && text) {
        json_object_set_new(o, "compressed", text);
        json_object_set_new(o, "original_tokens", json_integer(res.original_tokens));
        json_object_set_new(o, "compressed_tokens", json_integer(res.compressed_tokens));
        json_object_set_new(o, "ratio", json_real(res.ratio));
        json_object_set_new(o, "ms", json_real(res.ms));
        json_object_set_new(o, "queue_ms", json_real(now_ms() - j->t_queued - res.ms));
        json_object_set_new(o, "encoder",
                            json_string(j->params.encoder ? srv.encoder_spec : "lexical"));
        *body = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
        *code = 200;
        *tin = res.original_tokens;
        *tout = res.compressed_tokens;
    } else {
        json_decref(text);
        *code = 500;
        *body = error_json("the compressed text is not valid UTF-8 (internal error)");
    }
    json_decref(o);
    comi_text_result_free(&res);
}

/* A copy of n bytes with every invalid UTF-8 sequence replaced by U+FFFD:
 * generated ids may end inside a character. NULL when out of memory. */
static char *utf8_lossy(const char *s, size_t n) {
    size_t cap; /* each input byte becomes at most 3 output bytes, plus the NUL */
    if (__builtin_mul_overflow(n, (size_t)3, &cap) || __builtin_add_overflow(cap, 1, &cap))
        return NULL;
    char *out = malloc(cap);
    if (!out) return NULL;
    size_t o = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++)
            ok = (u[i + k] & 0xC0) == 0x80;
        if (ok && len > 1) { /* overlong forms, surrogates, > U+10FFFF */
            unsigned cp = len == 2 ? (c & 0x1Fu) << 6 | (u[i + 1] & 0x3Fu)
                          : len == 3
                              ? (c & 0x0Fu) << 12 | (u[i + 1] & 0x3Fu) << 6 | (u[i + 2] & 0x3Fu)
                              : (c & 0x07u) << 18 | (u[i + 1] & 0x3Fu) << 12 |
                                    (u[i + 2] & 0x3Fu) << 6 | (u[i + 3] & 0x3Fu);
            ok = (len == 2 && cp >= 0x80) ||
                 (len == 3 && cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) ||
                 (len == 4 && cp >= 0x10000 && cp <= 0x10FFFF);
        }
        if (ok && c != 0) {
            memcpy(out + o, s + i, len);
            o += len;
            i += len;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += 1;
        }
    }
    out[o] = '\0';
    return out;
}

static void run_answer(comi_ctx *ctx, job *j, int *code, char **body, int64_t *tin, int64_t *tout) {
    comi_answer_result res;
    memset(&res, 0, sizeof res);
    comi_status st =
        j->context ? comi_pipeline_answer(ctx, srv.pl, j->context, j->question, &j->aparams, &res)
                   : comi_pipeline_answer_documents(ctx, srv.pl, j->docs, j->n_docs, j->question,
                                                    &j->aparams, &res);
    *tin = *tout = 0;
    if (st != COMI_OK) {
        char msg[700];
        snprintf(msg, sizeof msg, "answering failed (%s): %s", comi_status_str(st),
                 comi_errmsg(ctx));
        *code = status_to_http(st);
        *body = error_json(msg);
        comi_answer_result_free(&res);
        return;
    }
    char *text = res.text ? utf8_lossy(res.text, strlen(res.text)) : strdup("");
    json_t *o = json_object();
    json_t *ids = json_array();
    for (int32_t i = 0; ids && i < res.n_ids; i++)
        json_array_append_new(ids, json_integer(res.ids[i]));
    if (text && o && ids) {
        json_object_set_new(o, "answer", json_string(text));
        json_object_set_new(o, "ids", ids);
        ids = NULL;
        json_object_set_new(o, "context_tokens", json_integer(res.n_context_tokens));
        json_object_set_new(o, "question_tokens", json_integer(res.n_question_tokens));
        json_object_set_new(o, "memory_vectors", json_integer(res.n_memory));
        json_object_set_new(o, "segments", json_integer(res.n_segments));
        json_object_set_new(o, "encoder_layers", json_integer(res.encoder_layers));
        json_object_set_new(o, "merge_size", json_integer(j->aparams.merge.merge_size));
        json_object_set_new(o, "ms", json_real(res.ms_total));
        json_object_set_new(o, "queue_ms", json_real(now_ms() - j->t_queued - res.ms_total));
        *body = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
        *code = 200;
        *tin = res.n_context_tokens;
        *tout = res.n_ids;
    } else {
        *code = 503;
        *body = error_json("out of memory building the answer");
    }
    json_decref(ids);
    json_decref(o);
    free(text);
    comi_answer_result_free(&res);
}

static void run_job(comi_ctx *ctx, job *j, int *code, char **body, int64_t *tin, int64_t *tout) {
    if (j->kind == JOB_ANSWER)
        run_answer(ctx, j, code, body, tin, tout);
    else
        run_compress(ctx, j, code, body, tin, tout);
}

typedef struct worker_arg {
    int id;
} worker_arg;

static void *worker_main(void *varg) {
    int id = ((worker_arg *)varg)->id;
    free(varg);
    comi_ctx *ctx = srv.ctxs[id];
    pthread_mutex_lock(&srv.mu);
    for (;;) {
        srv.idle_workers++;
        while (!srv.stop && !srv.q_head)
            pthread_cond_wait(&srv.work, &srv.mu);
        srv.idle_workers--;
        job *j = srv.q_head;
        if (!j) break; /* stop, and nothing left */
        srv.q_head = j->next;
        if (!srv.q_head) srv.q_tail = NULL;
        srv.q_len--;
        if (j->responded) { /* the watchdog already answered (timeout or shutdown) */
            job_unref_locked(j);
            continue;
        }
        j->state = JOB_RUNNING;
        pthread_mutex_unlock(&srv.mu);
        if (srv.delay_ms > 0) {
            struct timespec d = {(time_t)(srv.delay_ms / 1000),
                                 (long)(srv.delay_ms % 1000) * 1000000L};
            nanosleep(&d, NULL);
        }

        int code;
        char *body;
        int64_t tin, tout;
        run_job(ctx, j, &code, &body, &tin, &tout);

        pthread_mutex_lock(&srv.mu);
        j->state = JOB_FINISHED;
        struct MHD_Connection *resume = NULL;
        if (!j->responded) {
            j->responded = true;
            j->code = code;
            j->body = body;
            j->tokens_in = tin;
            j->tokens_out = tout;
            active_remove_locked(j);
            resume = j->conn;
        } else {
            free(body); /* answered 504 meanwhile; the work is discarded */
        }
        if (code != 200) srv.m.compress_failures++;
        job_unref_locked(j);
        if (resume) {
            /* the request still holds its ref, so the connection stays
             * suspended (and valid) until this resume */
            pthread_mutex_unlock(&srv.mu);
            MHD_resume_connection(resume);
            pthread_mutex_lock(&srv.mu);
        }
    }
    pthread_mutex_unlock(&srv.mu);
    return NULL;
}

/* Answers every pending job whose deadline passed (or all of them when
 * `all`, at forced shutdown) and resumes their connections. */
static void expire_jobs(bool all) {
    struct MHD_Connection *conns[64];
    for (;;) {
        size_t n = 0;
        double now = now_ms();
        pthread_mutex_lock(&srv.mu);
        for (job *j = srv.active, *next; j && n < sizeof conns / sizeof conns[0]; j = next) {
            next = j->act_next;
            if (!all && (j->deadline <= 0 || now < j->deadline)) continue;
            char msg[256];
            int code;
            if (all) {
                code = 503;
                snprintf(msg, sizeof msg, "the server is shutting down");
            } else {
                code = 504;
                snprintf(msg, sizeof msg, "request timed out after %lld ms (%s; --timeout-ms %lld)",
                         (long long)(now - j->t_queued),
                         j->state == JOB_QUEUED ? "still waiting in the queue"
                                                : "still compressing",
                         (long long)srv.timeout_ms);
                srv.m.timeouts++;
            }
            j->responded = true;
            j->code = code;
            j->body = error_json(msg);
            active_remove_locked(j);
            conns[n++] = j->conn;
        }
        pthread_mutex_unlock(&srv.mu);
        for (size_t i = 0; i < n; i++)
            MHD_resume_connection(conns[i]);
        if (n < sizeof conns / sizeof conns[0]) break;
    }
}

/* ------------------------------------------------------------------------ */
/* Cheap endpoints                                                          */
/* ------------------------------------------------------------------------ */

static char *health_json(void) {
    pthread_mutex_lock(&srv.mu);
    int q_len = srv.q_len, in_flight = srv.in_flight;
    bool draining = srv.draining;
    pthread_mutex_unlock(&srv.mu);
    json_t *model =
        srv.pl ? json_string(srv.pl_info.description ? srv.pl_info.description : srv.model_path)
               : json_null();
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:o, s:i, s:i, s:i, s:i, s:f, s:{s:I, s:I, s:I, s:I, s:I}}", "status",
        draining ? "draining" : "ok", "version", comi_version(), "encoder", srv.encoder_spec,
        "model", model, "workers", srv.n_workers, "queue_depth", q_len, "queue_capacity",
        srv.queue_cap, "in_flight", in_flight, "uptime_s", (now_ms() - srv.t_boot) / 1e3, "limits",
        "max_body", (json_int_t)srv.max_body, "max_tokens", (json_int_t)srv.max_tokens,
        "timeout_ms", (json_int_t)srv.timeout_ms, "max_context_tokens",
        (json_int_t)srv.limits.max_context_tokens, "max_memory",
        (json_int_t)(srv.limits.max_bytes > INT64_MAX ? INT64_MAX : srv.limits.max_bytes));
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(o);
    return text;
}

/* The Prometheus text exposition (format 0.0.4). */
static char *metrics_text(size_t *len) {
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
        for (size_t c = 0; c <= N_CODES; c++) {
            if (!m.requests[e][c]) continue;
            char code[16];
            if (c < N_CODES)
                snprintf(code, sizeof code, "%d", status_codes[c]);
            else
                snprintf(code, sizeof code, "other");
            fprintf(f, "comi_http_requests_total{endpoint=\"%s\",code=\"%s\"} %llu\n",
                    endpoint_path[e], code, (unsigned long long)m.requests[e][c]);
        }
    fprintf(f, "# HELP comi_http_aborted_total Requests whose connection closed before the "
               "response was sent.\n# TYPE comi_http_aborted_total counter\n");
    for (int e = 0; e < EP_COUNT; e++)
        fprintf(f, "comi_http_aborted_total{endpoint=\"%s\"} %llu\n", endpoint_path[e],
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
    fprintf(f, "# HELP comi_request_duration_seconds Time from the request's headers to its "
               "response being sent.\n# TYPE comi_request_duration_seconds histogram\n");
    for (int e = 0; e < EP_COUNT; e++) {
        if (!m.latency_count[e]) continue;
        uint64_t cum = 0;
        for (size_t b = 0; b < N_BUCKETS; b++) {
            cum += m.latency_bucket[e][b];
            fprintf(f, "comi_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} %llu\n",
                    endpoint_path[e], latency_le[b], (unsigned long long)cum);
        }
        fprintf(f,
                "comi_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %llu\n"
                "comi_request_duration_seconds_sum{endpoint=\"%s\"} %.6f\n"
                "comi_request_duration_seconds_count{endpoint=\"%s\"} %llu\n",
                endpoint_path[e], (unsigned long long)m.latency_count[e], endpoint_path[e],
                m.latency_sum[e], endpoint_path[e], (unsigned long long)m.latency_count[e]);
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

/* ------------------------------------------------------------------------ */
/* The MHD callbacks                                                        */
/* ------------------------------------------------------------------------ */

static endpoint route(const char *url) {
    for (int e = 0; e < EP_OTHER; e++)
        if (!strcmp(url, endpoint_path[e])) return (endpoint)e;
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
                 method, endpoint_path[req->ep], post ? "GET" : "POST");
    } else if (post) {
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
        if (!content_type_ok(ct)) {
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
        return send_json(conn, req, 200, health_json(), srv.draining);
    case EP_METRICS: {
        size_t len = 0;
        char *text = metrics_text(&len);
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
                   ? parse_answer(req->body ? req->body : "", req->len, j, err, sizeof err)
                   : parse_compress(req->body ? req->body : "", req->len, j, err, sizeof err);
    free(req->body); /* jansson copied what it needs */
    req->body = NULL;
    if (code) {
        json_decref(j->root);
        free(j->docs);
        free(j);
        return send_error(conn, req, code, "%s", err);
    }
    j->conn = conn;
    j->t_queued = now_ms();
    j->deadline = srv.timeout_ms > 0 ? j->t_queued + (double)srv.timeout_ms : 0;
    j->refs = 2; /* the request and the queue */
    j->state = JOB_QUEUED;

    pthread_mutex_lock(&srv.mu);
    if (srv.q_len >= srv.queue_cap + srv.idle_workers) {
        srv.m.rejected_queue_full++;
        pthread_mutex_unlock(&srv.mu);
        json_decref(j->root);
        free(j->docs);
        free(j);
        return send_error(conn, req, 503,
                          "the server is busy: %d jobs queued (--queue %d); retry later", srv.q_len,
                          srv.queue_cap);
    }
    /* Suspend before the job becomes visible, so a fast worker can never
     * resume a connection that is not suspended yet. */
    MHD_suspend_connection(conn);
    if (srv.q_tail)
        srv.q_tail->next = j;
    else
        srv.q_head = j;
    srv.q_tail = j;
    srv.q_len++;
    j->act_next = srv.active;
    if (srv.active) srv.active->act_prev = j;
    srv.active = j;
    req->job = j;
    pthread_cond_signal(&srv.work);
    pthread_mutex_unlock(&srv.mu);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    (void)cls;
    (void)version;
    request *req = *con_cls;
    if (!req) {
        req = calloc(1, sizeof *req);
        if (!req) return MHD_NO; /* closes the connection */
        req->t_start = now_ms();
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
        job_unref_locked(j);
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

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)conn;
    request *req = *con_cls;
    if (!req) return;
    *con_cls = NULL;
    double secs = (now_ms() - req->t_start) / 1e3;
    pthread_mutex_lock(&srv.mu);
    srv.in_flight--;
    if (req->job) { /* only when MHD drops a pending request: nobody may resume it now */
        if (!req->job->responded) {
            req->job->responded = true;
            active_remove_locked(req->job);
        }
        job_unref_locked(req->job);
    }
    metrics *m = &srv.m;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK || !req->code) {
        m->aborted[req->ep]++;
    } else {
        m->requests[req->ep][code_index(req->code)]++;
        if (req->code >= 500)
            m->server_errors++;
        else if (req->code >= 400)
            m->client_errors++;
        size_t b = 0;
        while (b < N_BUCKETS && secs > latency_le[b])
            b++;
        m->latency_bucket[req->ep][b]++;
        m->latency_sum[req->ep] += secs;
        m->latency_count[req->ep]++;
        m->tokens_in += (uint64_t)req->tokens_in;
        m->tokens_out += (uint64_t)req->tokens_out;
    }
    pthread_mutex_unlock(&srv.mu);
    if (srv.access_log)
        fprintf(stderr, "comi serve: %s %d %.3f ms%s\n", endpoint_path[req->ep], req->code,
                secs * 1e3, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (aborted)");
    free(req->body);
    free(req);
}

/* ------------------------------------------------------------------------ */
/* Start-up, the signal loop, shutdown                                      */
/* ------------------------------------------------------------------------ */

static const char *const serve_usage =
    "usage: comi serve [--host 127.0.0.1] --port P [--threads N] [--encoder SPEC]\n"
    "                  [--max-body BYTES] [--max-tokens N] [--timeout-ms MS] [--queue N]\n"
    "                  [--model PATH [--checkpoint DIR] [--max-new-tokens N]]\n"
    "                  [--ctx-threads N] [--access-log] [--delay-ms MS]\n"
    "                  [--max-context-tokens N] [--max-memory SIZE]\n";

static const char *const serve_about =
    "Runs the HTTP service (GNU libmicrohttpd) until SIGTERM or SIGINT, then lets\n"
    "in-flight requests finish and exits 0.\n"
    "\n"
    "  GET  /health        status, version, encoder, limits (JSON)\n"
    "  GET  /metrics       Prometheus text: requests by endpoint and code, errors,\n"
    "                      latency histogram, tokens in/out, queue depth\n"
    "  POST /v1/compress   {\"context\": str | \"documents\": [str], \"question\": str,\n"
    "                       \"ratio\": num | \"target_tokens\": int, \"encoder\": str}\n"
    "                      -> {\"compressed\", \"original_tokens\", \"compressed_tokens\",\n"
    "                          \"ratio\", \"ms\", \"queue_ms\", \"encoder\"}\n"
    "  POST /v1/answer     {\"context\" | \"documents\", \"question\", \"merge_size\": int,\n"
    "                       \"max_new_tokens\": int, \"encoder_layers\": int,\n"
    "                       \"segment_size\": int} -> {\"answer\", \"ids\", \"context_tokens\",\n"
    "                      \"memory_vectors\", \"ms\", ...}; 503 without --model\n";

static const char *const serve_epilog =
    "The limits apply per request, in the library's token count: words for\n"
    "/v1/compress with the lexical encoder, model tokens for /v1/answer; over a\n"
    "limit -> 413.\n";

/* A listening TCP socket on host:port; -1 with a message printed. */
static int open_listener(const char *host, int port, int *bound_port) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    int rc = getaddrinfo(host, port_s, &hints, &res);
    if (rc != 0 || !res) {
        cli_error(CMD, "--host '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
    if (fd < 0) {
        cli_error(CMD, "socket: %s", strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 128) != 0) {
        cli_error(CMD, "cannot listen on %s port %d: %s", host, port, strerror(errno));
        close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    *bound_port = port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            *bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            *bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return fd;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    fprintf(stderr, "comi serve: libmicrohttpd: ");
    vfprintf(stderr, fmt, ap);
}

/* Releases everything cmd_serve set up, in reverse order. */
static void teardown(int n_started) {
    pthread_mutex_lock(&srv.mu);
    srv.stop = true;
    pthread_cond_broadcast(&srv.work);
    pthread_mutex_unlock(&srv.mu);
    for (int i = 0; i < n_started; i++)
        pthread_join(srv.workers[i], NULL);
    if (srv.daemon) MHD_stop_daemon(srv.daemon);
    srv.daemon = NULL;
    for (int i = 0; srv.ctxs && i < srv.n_workers; i++)
        comi_ctx_free(srv.ctxs[i]);
    free(srv.ctxs);
    free(srv.workers);
    comi_encoder_free(srv.enc);
    comi_pipeline_free(srv.pl);
    pthread_mutex_destroy(&srv.mu);
    pthread_cond_destroy(&srv.work);
}

static int in_flight_now(void) {
    pthread_mutex_lock(&srv.mu);
    int n = srv.in_flight;
    pthread_mutex_unlock(&srv.mu);
    return n;
}

int cmd_serve(int argc, char **argv) {
    memset(&srv, 0, sizeof srv);
    srv.host = "127.0.0.1";
    srv.port = -1;
    srv.n_workers = 0;
    srv.queue_cap = 64;
    srv.max_body = (size_t)8 << 20;
    srv.max_tokens = 262144;
    srv.timeout_ms = 30000;
    srv.encoder_spec = "lexical";
    srv.max_new_tokens = 256;
    srv.ctx_threads = 1;
    int64_t max_body = (int64_t)srv.max_body;
    cli_opt opts[] = {
        {CLI_O("--host", CLI_STR, &srv.host, "ADDR",
               "address to listen on (default 127.0.0.1; numeric or a name)")},
        {CLI_O("--port", CLI_I32, &srv.port, "P", "TCP port; 0 picks a free one (printed on stdout)"),
         .flags = CLI_REQUIRED, .ilo = 0, .ihi = 65535},
        {CLI_O("--threads", CLI_I32, &srv.n_workers, "N",
               "compression worker threads (default: number of cores)"),
         .ilo = 1, .ihi = 256},
        {CLI_O("--encoder", CLI_STR, &srv.encoder_spec, "SPEC",
               "lexical (default), vectors:FILE, or a model path")},
        {CLI_O("--max-body", CLI_I64, &max_body, "BYTES",
               "largest request body (default 8388608; larger -> 413)"),
         .ilo = 1, .ihi = (int64_t)1 << 40},
        {CLI_O("--max-tokens", CLI_I64, &srv.max_tokens, "N",
               "largest context in tokens (default 262144; larger -> 413)"),
         .ilo = 1, .ihi = INT64_MAX},
        {CLI_O("--timeout-ms", CLI_I64, &srv.timeout_ms, "MS",
               "per-request time limit from queueing (default 30000;\n0 = none; late -> 504)"),
         .ilo = 0, .ihi = (int64_t)1 << 40},
        {CLI_O("--queue", CLI_I32, &srv.queue_cap, "N",
               "jobs that may wait for a worker (default 64; full -> 503)"),
         .ilo = 0, .ihi = 1000000},
        {CLI_O("--access-log", CLI_FLAG, &srv.access_log, NULL, "one line per request on stderr")},
        {CLI_O("--delay-ms", CLI_I64, &srv.delay_ms, "MS",
               "testing aid: each worker sleeps MS before every job\n"
               "(makes queueing, timeouts and shutdown observable)"),
         .ilo = 0, .ihi = 600000},
        {CLI_O("--model", CLI_PATH, &srv.model_path, "PATH",
               "base model (.gguf or HF directory) for /v1/answer: the soft\n"
               "COMI pipeline (encoder -> MIG merge -> decoder)")},
        {CLI_O("--checkpoint", CLI_PATH, &srv.checkpoint_path, "DIR",
               "a COMI checkpoint on top of --model (default: training-free)")},
        {CLI_O("--max-new-tokens", CLI_I64, &srv.max_new_tokens, "N",
               "largest max_new_tokens a request may ask, and the cap on the\n"
               "pipeline's default of 20 (default 256)"),
         .ilo = 1, .ihi = 65536},
        {CLI_O("--ctx-threads", CLI_I32, &srv.ctx_threads, "N",
               "kernel threads per worker (default 1; raise for large models)"),
         .ilo = 1, .ihi = 256},
        CLI_LIMIT_OPTS(srv.limits),
    };
    cli_cmd spec = {.name = CMD, .usage = serve_usage, .about = serve_about,
                    .epilog = serve_epilog, .opts = opts, .n_opts = CLI_N(opts)};
    int prc = cli_parse(&spec, argc, argv);
    if (prc >= 0) return prc;
    srv.max_body = (size_t)max_body;
    if (srv.checkpoint_path && !srv.model_path)
        return cli_usage(CMD, "--checkpoint needs --model (the checkpoint's base model)");
    if (srv.n_workers <= 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        srv.n_workers = nc > 0 ? (int)(nc < 256 ? nc : 256) : 1;
    }
    if (srv.max_body > SIZE_MAX - 1) srv.max_body = SIZE_MAX - 1;

    /* Signals are taken by sigtimedwait in this thread only: block them
     * before any thread exists so every thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    srv.t_boot = now_ms();
    pthread_mutex_init(&srv.mu, NULL);
    pthread_cond_init(&srv.work, NULL);

    comi_ctx *load_ctx = comi_ctx_new(NULL);
    if (!load_ctx) {
        teardown(0);
        return cli_error(CMD, "out of memory");
    }
    comi_status st = comi_encoder_load(load_ctx, srv.encoder_spec, &srv.enc);
    if (st != COMI_OK) {
        cli_error(CMD, "--encoder '%s': %s", srv.encoder_spec, comi_errmsg(load_ctx));
        comi_ctx_free(load_ctx);
        teardown(0);
        return 1;
    }
    if (srv.model_path) {
        comi_pipeline_load_params lp = comi_pipeline_load_default_params();
        lp.model = srv.model_path;
        lp.checkpoint = srv.checkpoint_path;
        st = comi_pipeline_load(load_ctx, &lp, &srv.pl);
        if (st != COMI_OK) {
            cli_error(CMD, "--model '%s'%s%s: %s", srv.model_path,
                      srv.checkpoint_path ? " --checkpoint " : "",
                      srv.checkpoint_path ? srv.checkpoint_path : "", comi_errmsg(load_ctx));
            comi_ctx_free(load_ctx);
            teardown(0);
            return 1;
        }
        comi_pipeline_get_info(srv.pl, &srv.pl_info);
    }
    comi_ctx_free(load_ctx);

    srv.ctxs = calloc((size_t)srv.n_workers, sizeof *srv.ctxs);
    srv.workers = calloc((size_t)srv.n_workers, sizeof *srv.workers);
    if (!srv.ctxs || !srv.workers) {
        teardown(0);
        return cli_error(CMD, "out of memory for %d workers", srv.n_workers);
    }
    /* By default each request runs single-threaded and parallelism is
     * across requests; --ctx-threads gives model kernels more. */
    for (int i = 0; i < srv.n_workers; i++)
        if (!(srv.ctxs[i] = cli_ctx_new(srv.ctx_threads, &srv.limits))) {
            teardown(0);
            return cli_error(CMD, "out of memory for worker contexts");
        }

    int bound_port = 0;
    int lfd = open_listener(srv.host, srv.port, &bound_port);
    if (lfd < 0) {
        teardown(0);
        return 1;
    }
    for (int i = 0; i < srv.n_workers; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa || (wa->id = i, pthread_create(&srv.workers[i], NULL, worker_main, wa) != 0)) {
            free(wa);
            close(lfd);
            teardown(i);
            return cli_error(CMD, "cannot start worker thread %d", i);
        }
    }
    srv.daemon = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, lfd,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)30, MHD_OPTION_END);
    if (!srv.daemon) {
        close(lfd);
        teardown(srv.n_workers);
        return cli_error(CMD, "cannot start the HTTP daemon on %s port %d", srv.host, bound_port);
    }
    bool v6 = strchr(srv.host, ':') != NULL; /* a literal IPv6 address needs brackets */
    printf("comi serve: listening on http://%s%s%s:%d (encoder %s, %d workers, queue %d%s%s)\n",
           v6 ? "[" : "", srv.host, v6 ? "]" : "", bound_port, srv.encoder_spec, srv.n_workers,
           srv.queue_cap, srv.pl ? ", model " : "", srv.pl ? srv.model_path : "");
    fflush(stdout);

    /* Wait for a signal; between waits, answer requests past their deadline. */
    const struct timespec tick = {0, 20 * 1000 * 1000};
    int sig = -1;
    while (sig < 0) {
        sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig < 0 && errno != EAGAIN && errno != EINTR) break;
        expire_jobs(false);
    }
    fprintf(stderr, "comi serve: %s, finishing %d in-flight requests\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", in_flight_now());

    /* Stop accepting; keep-alive clients get 503 + Connection: close. */
    pthread_mutex_lock(&srv.mu);
    srv.draining = true;
    pthread_mutex_unlock(&srv.mu);
    MHD_socket qfd = MHD_quiesce_daemon(srv.daemon);
    if (qfd != MHD_INVALID_SOCKET) close(qfd);
    double drain_end = now_ms() + (double)(srv.timeout_ms > 0 ? srv.timeout_ms : 30000) + 1000;
    while (in_flight_now() > 0 && now_ms() < drain_end) {
        nanosleep(&tick, NULL);
        expire_jobs(false);
    }
    if (in_flight_now() > 0) { /* past the deadline: answer what is left */
        expire_jobs(true);
        double end = now_ms() + 1000;
        while (in_flight_now() > 0 && now_ms() < end)
            nanosleep(&tick, NULL);
    }
    teardown(srv.n_workers);
    fprintf(stderr, "comi serve: stopped\n");
    return 0;
}
