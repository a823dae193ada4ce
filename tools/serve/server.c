/*
 * server.c — `comi serve`: the HTTP service over text-mode compression and
 * the soft pipeline. Endpoints: GET /health, GET /metrics (Prometheus
 * text), POST /v1/compress, POST /v1/answer (503 until a model pipeline
 * exists). This file holds the options, start-up, the signal loop and
 * shutdown; serve.h says where the rest is and how the threads share it.
 */
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
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

server srv;

double serve_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static const char *const serve_usage =
    "usage: comi serve [--host 127.0.0.1] [--port 8080] [--threads N] [--encoder SPEC]\n"
    "                  [--max-body BYTES] [--max-tokens N] [--timeout-ms MS] [--queue N]\n"
    "                  [--tokenizer MODEL] [--model PATH [--checkpoint DIR] [--max-new-tokens N]]\n"
    "                  [--ctx-threads N] [--access-log] [--delay-ms MS]\n"
    "                  [--max-context-tokens N] [--max-memory SIZE] [--api-key KEY]\n"
    "                  [--max-connections N] [--max-connections-per-client N]\n"
    "                  [--header-timeout-ms MS] [--body-timeout-ms MS] [--max-body-memory B]\n";

static const char *const serve_about =
    "Runs the HTTP service (GNU libmicrohttpd) until SIGTERM or SIGINT, then lets\n"
    "in-flight requests finish and exits 0.\n"
    "\n"
    "  GET  /health        status, version, encoder, limits (JSON)\n"
    "  GET  /metrics       Prometheus text: requests by endpoint and code, errors,\n"
    "                      latency histogram, tokens in/out, queue depth\n"
    "  POST /v1/compress   {\"context\": str | \"documents\": [str], \"question\": str,\n"
    "                       \"ratio\": num | \"target_tokens\": int, \"encoder\": str,\n"
    "                       \"unit\": \"sentence\"|\"clause\"|\"word\", \"readable\": bool,\n"
    "                       \"tokenizer\": str, any knob by name (\"beta\": 0.5, ...)}\n"
    "                      -> {\"compressed\", \"original_tokens\", \"compressed_tokens\",\n"
    "                          \"ratio\", \"ms\", \"queue_ms\", \"encoder\", \"unit\",\n"
    "                          \"tokenizer\"}; \"readable\": true = unit sentence (whole\n"
    "                      sentences, byte-exact)\n"
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
    comi_tokenizer_free(srv.tok);
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
    srv.port = 8080;
    srv.max_conns = 1024;
    srv.max_conns_per_client = 64;
    srv.header_timeout_ms = 10000;
    srv.body_timeout_ms = 60000;
    srv.n_workers = 0;
    srv.queue_cap = 64;
    srv.max_body = (size_t)8 << 20;
    srv.max_tokens = 262144;
    srv.timeout_ms = 30000;
    srv.encoder_spec = "lexical";
    srv.max_new_tokens = 256;
    srv.ctx_threads = 1;
    int64_t max_body = (int64_t)srv.max_body;
    int64_t max_body_memory = -1;
    cli_opt opts[] = {
        {CLI_O("--host", CLI_STR, &srv.host, "ADDR",
               "address to listen on (default 127.0.0.1; numeric or a name)")},
        {CLI_O("--port", CLI_I32, &srv.port, "P",
               "TCP port (default 8080); 0 picks a free one (printed on stdout)"),
         .ilo = 0, .ihi = 65535},
        {CLI_O("--threads", CLI_I32, &srv.n_workers, "N",
               "compression worker threads (default: number of cores)"),
         .ilo = 1, .ihi = 256},
        {CLI_O("--encoder", CLI_STR, &srv.encoder_spec, "SPEC",
               "lexical (default), vectors:FILE, or a model path")},
        {CLI_O("--tokenizer", CLI_PATH, &srv.tokenizer_spec, "MODEL",
               "count /v1/compress budgets (ratio, target_tokens) in MODEL's\n"
               "tokens (.gguf or HF directory), loaded once; a request may\n"
               "ask for words with \"tokenizer\": \"words\"")},
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
        CLI_KV_OPT(srv.limits.kv_type),
        {CLI_O("--api-key", CLI_STR, &srv.api_key, "KEY",
               "require 'Authorization: Bearer KEY' on every endpoint but\n"
               "/health (default: none; missing or wrong -> 401)")},
        {CLI_O("--max-connections", CLI_I32, &srv.max_conns, "N",
               "open connections at most (default 1024; beyond: not accepted\n"
               "until one closes)"),
         .ilo = 1, .ihi = 1000000},
        {CLI_O("--max-connections-per-client", CLI_I32, &srv.max_conns_per_client, "N",
               "open connections per client address (default 64; beyond:\n"
               "closed at once)"),
         .ilo = 1, .ihi = 1000000},
        {CLI_O("--header-timeout-ms", CLI_I64, &srv.header_timeout_ms, "MS",
               "a request's headers must arrive within MS of the connection's\n"
               "start or its previous request (default 10000; 0 = none)"),
         .ilo = 0, .ihi = (int64_t)1 << 40},
        {CLI_O("--body-timeout-ms", CLI_I64, &srv.body_timeout_ms, "MS",
               "and its body within MS of its headers (default 60000; 0 = none);\n"
               "a late connection is closed"),
         .ilo = 0, .ihi = (int64_t)1 << 40},
        {CLI_O("--max-body-memory", CLI_I64, &max_body_memory, "BYTES",
               "request bodies buffered at once, all connections together\n"
               "(default 4 x --max-body, at least 64 MiB; beyond -> 503)"),
         .ilo = 0, .ihi = INT64_MAX},
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
    if (max_body_memory >= 0) {
        srv.max_body_memory = (size_t)max_body_memory;
    } else {
        size_t four = srv.max_body > SIZE_MAX / 4 ? SIZE_MAX : 4 * (srv.max_body + 1);
        srv.max_body_memory = four > ((size_t)64 << 20) ? four : (size_t)64 << 20;
    }
    if (srv.max_body_memory && srv.max_body_memory < srv.max_body + 1)
        return cli_usage(CMD, "--max-body-memory %zu is below --max-body %zu: no request would fit",
                         srv.max_body_memory, srv.max_body);

    /* Signals are taken by sigtimedwait in this thread only: block them
     * before any thread exists so every thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    srv.t_boot = serve_now_ms();
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
    if (srv.tokenizer_spec && comi_tokenizer_load(load_ctx, srv.tokenizer_spec, &srv.tok)) {
        cli_error(CMD, "--tokenizer '%s': %s", srv.tokenizer_spec, comi_errmsg(load_ctx));
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
        serve_worker_arg *wa = malloc(sizeof *wa);
        if (!wa || (wa->id = i, pthread_create(&srv.workers[i], NULL, serve_worker_main, wa) != 0)) {
            free(wa);
            close(lfd);
            teardown(i);
            return cli_error(CMD, "cannot start worker thread %d", i);
        }
    }
    srv.daemon = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        serve_on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, lfd,
        MHD_OPTION_NOTIFY_COMPLETED, serve_on_completed, NULL, MHD_OPTION_NOTIFY_CONNECTION,
        serve_on_connection, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)srv.max_conns,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)srv.max_conns_per_client,
        MHD_OPTION_END);
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
        serve_expire_jobs(false);
        serve_expire_connections();
    }
    fprintf(stderr, "comi serve: %s, finishing %d in-flight requests\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", in_flight_now());

    /* Stop accepting; keep-alive clients get 503 + Connection: close. */
    pthread_mutex_lock(&srv.mu);
    srv.draining = true;
    pthread_mutex_unlock(&srv.mu);
    MHD_socket qfd = MHD_quiesce_daemon(srv.daemon);
    if (qfd != MHD_INVALID_SOCKET) close(qfd);
    double drain_end = serve_now_ms() + (double)(srv.timeout_ms > 0 ? srv.timeout_ms : 30000) + 1000;
    while (in_flight_now() > 0 && serve_now_ms() < drain_end) {
        nanosleep(&tick, NULL);
        serve_expire_jobs(false);
        serve_expire_connections();
    }
    if (in_flight_now() > 0) { /* past the deadline: answer what is left */
        serve_expire_jobs(true);
        double end = serve_now_ms() + 1000;
        while (in_flight_now() > 0 && serve_now_ms() < end)
            nanosleep(&tick, NULL);
    }
    teardown(srv.n_workers);
    fprintf(stderr, "comi serve: stopped\n");
    return 0;
}
