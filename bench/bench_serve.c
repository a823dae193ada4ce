/*
 * bench_serve.c — throughput and latency of `comi serve` /v1/compress on
 * one NQ-20 example (the first line of nq20.jsonl) at 8x, against the bare
 * library call comi_compress_text on the same input.
 *
 * It starts `comi serve --host 127.0.0.1 --port 0 --threads T` itself
 * (loopback only), drives it with C client threads, each keeping one
 * HTTP/1.1 keep-alive connection and sending the next request when the
 * last answer arrived (closed loop), for a bounded time per row, then
 * stops it with SIGTERM. One row per configuration:
 *   config  requests  seconds  req/s  p50_ms  p99_ms  errors  peak_rss_mb
 * plus the server overhead: p50 over HTTP at concurrency 1 minus the bare
 * call's p50.
 *
 * usage: bench_serve [--data nq20.jsonl] [--comi build/comi] [--threads 2]
 *                    [--ratio 8] [--seconds 3] [--concurrency 1,2,8]
 */
#include "comi.h"
#include "bench.h"

#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    return bench_now_s() * 1e3;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of n sorted values, nearest rank. */
static double quantile(const double *v, size_t n, double q) {
    if (n == 0) return 0;
    size_t i = (size_t)(q * (double)n);
    if (i >= n) i = n - 1;
    return v[i];
}

/* VmHWM of another process, MB (0 when unreadable). */
static double proc_hwm_mb(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    double mb = 0;
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) mb = strtod(line + 6, NULL) / 1024.0;
    fclose(f);
    return mb;
}

/* ------------------------------------------------------------------------ */
/* The load generator                                                       */
/* ------------------------------------------------------------------------ */

typedef struct client {
    int port;
    const char *req; /* the whole HTTP request */
    size_t req_len;
    double end_ms;
    double *lat; /* per-request latency, ms; cap entries */
    size_t n, cap;
    size_t errors;
    char first_error[200];
} client;

static int connect_loopback(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends the request and reads one response; returns the status code, or
 * -1 on a connection error. buf holds cap bytes of scratch. */
static int round_trip(int fd, const client *c, char *buf, size_t cap) {
    for (size_t off = 0; off < c->req_len;) {
        ssize_t w = send(fd, c->req + off, c->req_len - off, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        off += (size_t)w;
    }
    size_t have = 0;
    char *hdr_end = NULL;
    while (!hdr_end) {
        if (have + 1 >= cap) return -1;
        ssize_t r = recv(fd, buf + have, cap - 1 - have, 0);
        if (r <= 0) return -1;
        have += (size_t)r;
        buf[have] = '\0';
        hdr_end = strstr(buf, "\r\n\r\n");
    }
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) return -1;
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    if (!cl || cl > hdr_end) return -1;
    size_t body = strtoul(cl + 17, NULL, 10);
    size_t want = (size_t)(hdr_end + 4 - buf) + body;
    while (have < want) {
        size_t chunk = want - have < cap ? want - have : cap;
        ssize_t r = recv(fd, buf, chunk, 0); /* the body itself is not needed */
        if (r <= 0) return -1;
        have += (size_t)r;
    }
    return status;
}

static void *client_main(void *arg) {
    client *c = arg;
    size_t cap = 1 << 16;
    char *buf = malloc(cap);
    int fd = connect_loopback(c->port);
    while (buf && fd >= 0 && now_ms() < c->end_ms) {
        double t0 = now_ms();
        int st = round_trip(fd, c, buf, cap);
        double t1 = now_ms();
        if (st != 200) {
            if (!c->errors++) snprintf(c->first_error, sizeof c->first_error, "status %d", st);
            if (st < 0) {
                close(fd);
                fd = connect_loopback(c->port);
            }
            continue;
        }
        if (c->n == c->cap) {
            size_t nc = c->cap ? 2 * c->cap : 1024;
            double *l = realloc(c->lat, nc * sizeof *l);
            if (!l) break;
            c->lat = l;
            c->cap = nc;
        }
        c->lat[c->n++] = t1 - t0;
    }
    if (fd < 0 && !c->errors++) snprintf(c->first_error, sizeof c->first_error, "connect failed");
    if (fd >= 0) close(fd);
    free(buf);
    return NULL;
}

/* One closed-loop run at a concurrency; prints its row; returns p50 (ms). */
static double run_load(int port, const char *req, size_t req_len, int conc, double seconds,
                       pid_t server) {
    client *cs = calloc((size_t)conc, sizeof *cs);
    pthread_t *th = calloc((size_t)conc, sizeof *th);
    if (!cs || !th) {
        fprintf(stderr, "bench_serve: out of memory\n");
        exit(1);
    }
    double t0 = now_ms();
    for (int i = 0; i < conc; i++) {
        cs[i] =
            (client){.port = port, .req = req, .req_len = req_len, .end_ms = t0 + seconds * 1e3};
        pthread_create(&th[i], NULL, client_main, &cs[i]);
    }
    for (int i = 0; i < conc; i++)
        pthread_join(th[i], NULL);
    double el = (now_ms() - t0) / 1e3;
    size_t n = 0, errors = 0;
    for (int i = 0; i < conc; i++) {
        n += cs[i].n;
        errors += cs[i].errors;
    }
    double *all = malloc((n ? n : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < conc; i++) {
        if (all) memcpy(all + k, cs[i].lat, cs[i].n * sizeof *all);
        k += cs[i].n;
    }
    qsort(all, n, sizeof *all, cmp_double);
    double p50 = quantile(all, n, 0.50), p99 = quantile(all, n, 0.99);
    char cfg[64];
    snprintf(cfg, sizeof cfg, "http_c%d", conc);
    printf("%-14s %8zu %8.2f %9.1f %8.3f %8.3f %6zu %8.1f\n", cfg, n, el, (double)n / el, p50, p99,
           errors, proc_hwm_mb(server));
    for (int i = 0; i < conc; i++)
        if (cs[i].errors) {
            printf("# client %d: %zu errors, first: %s\n", i, cs[i].errors, cs[i].first_error);
            break;
        }
    for (int i = 0; i < conc; i++)
        free(cs[i].lat);
    free(all);
    free(cs);
    free(th);
    return p50;
}

/* ------------------------------------------------------------------------ */
/* Set-up                                                                   */
/* ------------------------------------------------------------------------ */

static pid_t start_server(const char *comi, int threads, int *port) {
    int pfd[2];
    if (pipe(pfd) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(pfd[1], STDOUT_FILENO);
        close(pfd[0]);
        close(pfd[1]);
        char th[16];
        snprintf(th, sizeof th, "%d", threads);
        execl(comi, comi, "serve", "--host", "127.0.0.1", "--port", "0", "--threads", th, "--queue",
              "1024", (char *)NULL);
        fprintf(stderr, "bench_serve: cannot run %s: %s\n", comi, strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    FILE *f = fdopen(pfd[0], "r");
    char line[512];
    *port = 0;
    if (f && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "127.0.0.1:");
        if (p) *port = atoi(p + 10);
    }
    if (f)
        fclose(f);
    else
        close(pfd[0]);
    if (*port <= 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

int main(int argc, char **argv) {
    const char *data = NULL, *comi = NULL, *conc_list = "1,2,8";
    int threads = 2;
    double ratio = 8, seconds = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "bench_serve: %s needs a value (see the comment in bench_serve.c)\n",
                    a);
            return 2;
        }
        if (!strcmp(a, "--data"))
            data = v;
        else if (!strcmp(a, "--comi"))
            comi = v;
        else if (!strcmp(a, "--threads"))
            threads = atoi(v);
        else if (!strcmp(a, "--ratio"))
            ratio = atof(v);
        else if (!strcmp(a, "--seconds"))
            seconds = atof(v);
        else if (!strcmp(a, "--concurrency"))
            conc_list = v;
        else {
            fprintf(stderr, "bench_serve: unknown option '%s'\n", a);
            return 2;
        }
        i++;
    }
    if (threads < 1 || !(ratio >= 1) || !(seconds > 0) || seconds > 60) {
        fprintf(stderr, "bench_serve: need --threads >= 1, --ratio >= 1, 0 < --seconds <= 60\n");
        return 2;
    }
    char data_path[4096], comi_path[4096];
    if (!data) {
        const char *dir = getenv("COMI_DATA");
        snprintf(data_path, sizeof data_path, "%s/nq20.jsonl",
                 dir && *dir ? dir : "../shared/data");
        data = data_path;
    }
    if (!comi) { /* build/bench/bench_serve -> build/comi */
        snprintf(comi_path, sizeof comi_path, "%s", argv[0]);
        char *slash = strrchr(comi_path, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(comi_path, sizeof comi_path, ".");
        size_t l = strlen(comi_path);
        snprintf(comi_path + l, sizeof comi_path - l, "/../comi");
        comi = comi_path;
    }

    FILE *f = fopen(data, "r");
    if (!f) {
        fprintf(stderr, "bench_serve: cannot open %s: %s\n", data, strerror(errno));
        return 1;
    }
    json_error_t jerr;
    json_t *ex = json_loadf(f, JSON_DISABLE_EOF_CHECK, &jerr);
    fclose(f);
    const char *context = json_string_value(json_object_get(ex, "input"));
    const char *question = json_string_value(json_object_get(ex, "prompt"));
    if (!context || !question) {
        fprintf(stderr, "bench_serve: %s line 1: no 'input'/'prompt' strings (%s)\n", data,
                ex ? "wrong fields" : jerr.text);
        return 1;
    }
    json_t *body_j =
        json_pack("{s:s, s:s, s:f}", "context", context, "question", question, "ratio", ratio);
    char *body = json_dumps(body_j, JSON_COMPACT);
    size_t body_len = strlen(body);
    size_t req_cap = body_len + 256;
    char *req = malloc(req_cap);
    int hl = snprintf(req, req_cap,
                      "POST /v1/compress HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                      "application/json\r\nContent-Length: %zu\r\n\r\n",
                      body_len);
    memcpy(req + hl, body, body_len);
    size_t req_len = (size_t)hl + body_len;

    printf("# bench_serve: %s line 1 (%zu context bytes), ratio %g, server --threads %d, %g s "
           "per row, loopback\n",
           data, strlen(context), ratio, threads, seconds);
    printf("%-14s %8s %8s %9s %8s %8s %6s %8s\n", "config", "requests", "seconds", "req/s",
           "p50_ms", "p99_ms", "errors", "rss_mb");

    /* The bare library call, single-threaded, same input and ratio. */
    comi_ctx *ctx = comi_ctx_new(&(comi_ctx_params){.n_threads = 1});
    comi_text_params tp = comi_text_default_params();
    tp.ratio = ratio;
    size_t cap = 1 << 16, n = 0;
    double *lat = malloc(cap * sizeof *lat);
    double t0 = now_ms(), end = t0 + seconds * 1e3;
    int64_t orig = 0, kept = 0;
    while (now_ms() < end && n < cap) {
        comi_text_result res;
        double a = now_ms();
        comi_status st = comi_compress_text(ctx, context, question, &tp, &res);
        lat[n++] = now_ms() - a;
        if (st != COMI_OK) {
            fprintf(stderr, "bench_serve: comi_compress_text: %s\n", comi_errmsg(ctx));
            return 1;
        }
        orig = res.original_tokens;
        kept = res.compressed_tokens;
        comi_text_result_free(&res);
    }
    double el = (now_ms() - t0) / 1e3;
    qsort(lat, n, sizeof *lat, cmp_double);
    double bare_p50 = quantile(lat, n, 0.5);
    printf("%-14s %8zu %8.2f %9.1f %8.3f %8.3f %6d %8.1f\n", "library_1t", n, el, (double)n / el,
           bare_p50, quantile(lat, n, 0.99), 0, bench_peak_rss_mib());
    printf("# %lld -> %lld tokens per request\n", (long long)orig, (long long)kept);
    fflush(stdout);

    int port = 0;
    pid_t srv = start_server(comi, threads, &port);
    if (srv < 0) {
        fprintf(stderr, "bench_serve: could not start %s serve\n", comi);
        return 1;
    }
    double http_p50_1 = -1;
    for (const char *p = conc_list; *p;) {
        int c = atoi(p);
        if (c >= 1 && c <= 1024) {
            double p50 = run_load(port, req, req_len, c, seconds, srv);
            if (c == 1) http_p50_1 = p50;
            fflush(stdout);
        }
        p = strchr(p, ',');
        if (!p) break;
        p++;
    }
    if (http_p50_1 >= 0)
        printf("# server overhead at concurrency 1 (p50 http - p50 library): %.3f ms\n",
               http_p50_1 - bare_p50);
    kill(srv, SIGTERM);
    int wst = 0;
    waitpid(srv, &wst, 0);
    if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0)
        printf("# warning: the server exited with status %d\n", wst);
    comi_ctx_free(ctx);
    free(lat);
    free(req);
    free(body);
    json_decref(body_j);
    json_decref(ex);
    return 0;
}
