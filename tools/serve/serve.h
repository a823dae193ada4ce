/*
 * serve.h — the pieces of `comi serve` (tools/serve/) share: the server
 * state, jobs, requests and metrics, and the functions each file offers.
 *
 *   server.c   options, start-up, the signal loop and shutdown (cmd_serve)
 *   http.c     the libmicrohttpd callbacks: routing, uploads, responses
 *   request.c  request bodies: JSON parsing and validation into a job
 *   jobs.c     the job queue, the worker threads, the timeout watchdog
 *   metrics.c  counters, /health JSON and /metrics Prometheus text
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
#ifndef COMI_SERVE_H
#define COMI_SERVE_H

#include "../cli.h"

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* The path of each endpoint (EP_OTHER: "other"), the metrics label. */
extern const char *const serve_endpoint_path[EP_COUNT];

/* Status codes and latency buckets the metrics count (metrics.c's tables). */
enum { SERVE_N_CODES = 10, SERVE_N_BUCKETS = 14 };

typedef struct metrics {
    uint64_t requests[EP_COUNT][SERVE_N_CODES + 1]; /* last column: other codes */
    uint64_t aborted[EP_COUNT];               /* connection closed before the response went out */
    uint64_t latency_bucket[EP_COUNT][SERVE_N_BUCKETS + 1]; /* non-cumulative; last: > largest bound */
    double latency_sum[EP_COUNT];                     /* seconds */
    uint64_t latency_count[EP_COUNT];
    uint64_t client_errors, server_errors; /* 4xx, 5xx responses */
    uint64_t compress_failures;            /* the library returned an error */
    uint64_t rejected_queue_full, timeouts;
    uint64_t cancelled;   /* running jobs cancelled (deadline, client gone, shutdown) */
    uint64_t client_gone; /* pending jobs whose client closed its connection */
    double cancel_wait_sum, cancel_wait_max; /* seconds a cancelled job kept its worker */
    uint64_t cancel_wait_count;
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
    int fd;                     /* the client's socket (-1: unknown), watched for a
                                   disconnect while the connection is suspended */
    /* srv.mu */
    job_state state;
    comi_ctx *ctx; /* the worker's context while JOB_RUNNING: the watchdog cancels it */
    double t_cancel; /* ms: when the watchdog cancelled it while running (0: not) */
    int refs;
    bool responded;                  /* code/body hold the answer; conn resumed or about to be */
    struct job *next;                /* queue link */
    struct job *act_prev, *act_next; /* pending jobs, for the watchdog */
    int code;
    char *body; /* JSON text, malloc'ed */
    int64_t tokens_in, tokens_out;
} job;

/* One TCP connection (MHD's socket context), for the header and body
 * deadlines the watchdog enforces. srv.mu. */
typedef struct conn_track {
    int fd;
    double t_idle;    /* ms: accepted, or its last request completed */
    double t_headers; /* ms: the current request's headers arrived; 0: none yet */
    bool body_done;   /* the current request's body is complete */
    bool killed;      /* shut down by the watchdog */
    struct conn_track *prev, *next;
} conn_track;

typedef struct request {
    endpoint ep;
    char method[8];    /* for the access log */
    char url[160];     /* the path asked for (printable ASCII, truncated), for the log */
    char client[64];   /* the client's address, for the log */
    size_t resp_bytes; /* body bytes of the response sent */
    bool close_after;  /* answer with Connection: close (a drained 413) */
    bool method_ok;
    double t_start; /* ms, monotonic */
    int early_code; /* an error decided from the headers alone (0: none) */
    char early_msg[256];
    char *body; /* the upload, max_body bytes at most */
    size_t len, cap;
    bool too_large; /* the upload passed --max-body and is being discarded */
    size_t discarded; /* bytes of a too-large upload read and thrown away */
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
    const char *tokenizer_spec;  /* --tokenizer: NULL when budgets count words */
    comi_tokenizer *tok;         /* its tokenizer, loaded once, shared by the workers */
    const char *model_path;      /* --model: NULL when /v1/answer is off */
    const char *checkpoint_path; /* --checkpoint: NULL for the training-free pipeline */
    comi_pipeline *pl;           /* shared by the workers, immutable */
    comi_pipeline_info pl_info;
    int64_t max_new_tokens; /* the largest max_new_tokens a request may ask for */
    int32_t ctx_threads;    /* kernel threads of each worker's comi_ctx */
    bool access_log;
    const char *api_key;         /* --api-key: every endpoint but /health needs
                                    "Authorization: Bearer KEY"; NULL: none */
    int32_t max_conns;           /* --max-connections (global) */
    int32_t max_conns_per_client; /* --max-connections-per-client (per IP address) */
    int64_t header_timeout_ms;   /* --header-timeout-ms: a request's headers must arrive
                                    within this of the connection's start or last request */
    int64_t body_timeout_ms;     /* --body-timeout-ms: its body within this of its headers */
    size_t max_body_memory;      /* --max-body-memory: all request bodies buffered at once */
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
    size_t body_bytes;  /* request-body buffers allocated now (<= max_body_memory) */
    conn_track *conns;  /* open connections */
    uint64_t deadline_kills; /* connections shut down for a header or body deadline */
    bool draining;
    bool stop;
    metrics m;
} server;

/* The one server of this process (server.c). */
extern server srv;

/* server.c */
double serve_now_ms(void); /* milliseconds on the monotonic clock */

/* request.c: each returns 0 or an HTTP status with the message in err */
char *serve_error_json(const char *msg); /* {"error": msg} as malloc'ed JSON text (NULL: out of memory) */
int64_t serve_count_words(const char *s);
int serve_parse_compress(const char *body, size_t len, job *j, char *err, size_t errsz);
int serve_parse_answer(const char *body, size_t len, job *j, char *err, size_t errsz);
bool serve_content_type_ok(const char *ct);

/* jobs.c */
void serve_job_unref_locked(job *j);
void serve_job_free(job *j);
void serve_active_remove_locked(job *j);
bool serve_queue_push(struct MHD_Connection *conn, job *j, job **slot);
void serve_run_job(comi_ctx *ctx, job *j, int *code, char **body, int64_t *tin, int64_t *tout);
typedef struct serve_worker_arg {
    int id;
} serve_worker_arg;
void *serve_worker_main(void *varg);
void serve_expire_jobs(bool all);

/* metrics.c */
void serve_metrics_record(const request *req, bool completed, double secs);
char *serve_health_json(void);
char *serve_metrics_text(size_t *len);

/* http.c: the MHD access handler and completion callback */
enum MHD_Result serve_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                           const char *method, const char *version, const char *upload_data,
                           size_t *upload_data_size, void **con_cls);
void serve_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                  enum MHD_RequestTerminationCode toe);
/* http.c: connection start/close (MHD_OPTION_NOTIFY_CONNECTION) and the
 * watchdog's check of the header and body deadlines (main thread). */
void serve_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                         enum MHD_ConnectionNotificationCode toe);
void serve_expire_connections(void);

#endif /* COMI_SERVE_H */
