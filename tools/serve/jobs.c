/*
 * jobs.c — the work of `comi serve`: the bounded job queue, the worker
 * threads that run compressions and answers (one comi_ctx each), and the
 * watchdog that answers requests past their deadline or at shutdown.
 */
#include "serve.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* srv.mu held. */
void serve_job_unref_locked(job *j) {
    if (--j->refs > 0) return;
    json_decref(j->root);
    free(j->docs);
    free(j->body);
    free(j);
}

void serve_active_remove_locked(job *j) {
    if (j->act_prev)
        j->act_prev->act_next = j->act_next;
    else if (srv.active == j)
        srv.active = j->act_next;
    if (j->act_next) j->act_next->act_prev = j->act_prev;
    j->act_prev = j->act_next = NULL;
}

/* Queues j (refs 2: the request's, taken as *slot, and the queue's) and
 * suspends its connection; false when the queue is full (counted; j is
 * untouched and still the caller's). Called from the MHD thread. */
bool serve_queue_push(struct MHD_Connection *conn, job *j, job **slot) {
    pthread_mutex_lock(&srv.mu);
    if (srv.q_len >= srv.queue_cap + srv.idle_workers) {
        srv.m.rejected_queue_full++;
        pthread_mutex_unlock(&srv.mu);
        return false;
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
    *slot = j;
    pthread_cond_signal(&srv.work);
    pthread_mutex_unlock(&srv.mu);
    return true;
}

/* Frees a job no one else holds yet (refused before it was queued). */
void serve_job_free(job *j) {
    json_decref(j->root);
    free(j->docs);
    free(j);
}

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
    case COMI_ERR_CANCELLED: /* timed out: the client already has its 504 */
        return 504;
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
        *body = serve_error_json(msg);
        comi_text_result_free(&res);
        return;
    }
    /* (model tokens of --tokenizer are not words: the word count was checked) */
    if (srv.max_tokens > 0 && !j->params.tokenizer && res.original_tokens > srv.max_tokens) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "the context has %lld encoder tokens, over this server's --max-tokens %lld",
                 (long long)res.original_tokens, (long long)srv.max_tokens);
        *code = 413;
        *body = serve_error_json(msg);
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
        json_object_set_new(o, "queue_ms", json_real(serve_now_ms() - j->t_queued - res.ms));
        json_object_set_new(o, "encoder",
                            json_string(j->params.encoder ? srv.encoder_spec : "lexical"));
        json_object_set_new(o, "unit", json_string(comi_text_unit_name(j->params.unit)));
        json_object_set_new(o, "tokenizer",
                            json_string(j->params.tokenizer ? srv.tokenizer_spec : "words"));
        *body = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
        *code = 200;
        *tin = res.original_tokens;
        *tout = res.compressed_tokens;
    } else {
        json_decref(text);
        *code = 500;
        *body = serve_error_json("the compressed text is not valid UTF-8 (internal error)");
    }
    json_decref(o);
    comi_text_result_free(&res);
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
        *body = serve_error_json(msg);
        comi_answer_result_free(&res);
        return;
    }
    /* the library's answer text is valid UTF-8 (comi.h), as json_string needs */
    char *text = strdup(res.text ? res.text : "");
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
        json_object_set_new(o, "queue_ms", json_real(serve_now_ms() - j->t_queued - res.ms_total));
        *body = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10));
        *code = 200;
        *tin = res.n_context_tokens;
        *tout = res.n_ids;
    } else {
        *code = 503;
        *body = serve_error_json("out of memory building the answer");
    }
    json_decref(ids);
    json_decref(o);
    free(text);
    comi_answer_result_free(&res);
}

void serve_run_job(comi_ctx *ctx, job *j, int *code, char **body, int64_t *tin, int64_t *tout) {
    if (j->kind == JOB_ANSWER)
        run_answer(ctx, j, code, body, tin, tout);
    else
        run_compress(ctx, j, code, body, tin, tout);
}

void *serve_worker_main(void *varg) {
    int id = ((serve_worker_arg *)varg)->id;
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
            serve_job_unref_locked(j);
            continue;
        }
        j->state = JOB_RUNNING;
        j->ctx = ctx;
        comi_ctx_reset_cancel(ctx); /* a cancel meant for the previous job */
        pthread_mutex_unlock(&srv.mu);
        if (srv.delay_ms > 0) { /* in slices, and cancellable like a library call */
            double end = serve_now_ms() + (double)srv.delay_ms;
            while (!comi_ctx_cancelled(ctx) && serve_now_ms() < end) {
                struct timespec d = {0, 5 * 1000000L};
                nanosleep(&d, NULL);
            }
        }

        int code;
        char *body;
        int64_t tin, tout;
        serve_run_job(ctx, j, &code, &body, &tin, &tout);

        pthread_mutex_lock(&srv.mu);
        if (j->t_cancel > 0) { /* how long the cancelled job still held this worker */
            double wait = (serve_now_ms() - j->t_cancel) / 1e3;
            srv.m.cancel_wait_sum += wait;
            srv.m.cancel_wait_count++;
            if (wait > srv.m.cancel_wait_max) srv.m.cancel_wait_max = wait;
            /* where the library stopped (its message names the check: a
             * layer of a forward pass, a segment, a token, a stage) */
            fprintf(stderr, "comi serve: a cancelled %s job freed its worker %.3f s after the "
                            "cancel: %s\n",
                    j->kind == JOB_ANSWER ? "answer" : "compress", wait,
                    code == 200 ? "it had finished" : comi_errmsg(ctx));
        }
        j->state = JOB_FINISHED;
        j->ctx = NULL;
        struct MHD_Connection *resume = NULL;
        if (!j->responded) {
            j->responded = true;
            j->code = code;
            j->body = body;
            j->tokens_in = tin;
            j->tokens_out = tout;
            serve_active_remove_locked(j);
            resume = j->conn;
        } else {
            free(body); /* answered 504 meanwhile; the work is discarded */
        }
        if (code != 200) srv.m.compress_failures++;
        serve_job_unref_locked(j);
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

/* Whether the client of a suspended connection has gone: its socket reads
 * end-of-file (it closed, or shut down its sending side, which HTTP/1.1
 * clients do not do while waiting for an answer) or fails (reset). Only
 * peeks, so nothing MHD would read is consumed. srv.mu held, and j pending:
 * the connection stays suspended, so its socket is still open. */
static bool client_gone(const job *j) {
    if (j->fd < 0) return false;
    char c;
    ssize_t n = recv(j->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;
    return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

/* Answers every pending job whose deadline passed or whose client closed its
 * connection (or all of them when `all`, at forced shutdown), cancels those
 * running, and resumes their connections. */
void serve_expire_jobs(bool all) {
    struct MHD_Connection *conns[64];
    for (;;) {
        size_t n = 0;
        double now = serve_now_ms();
        pthread_mutex_lock(&srv.mu);
        for (job *j = srv.active, *next; j && n < sizeof conns / sizeof conns[0]; j = next) {
            next = j->act_next;
            bool late = j->deadline > 0 && now >= j->deadline;
            bool gone = !all && !late && client_gone(j);
            if (!all && !late && !gone) continue;
            char msg[256];
            int code;
            if (all) {
                code = 503;
                snprintf(msg, sizeof msg, "the server is shutting down");
            } else if (gone) { /* nobody reads this; it names the case in the access log */
                code = 499;
                snprintf(msg, sizeof msg, "the client closed the connection");
                srv.m.client_gone++;
            } else {
                code = 504;
                snprintf(msg, sizeof msg, "request timed out after %lld ms (%s; --timeout-ms %lld)",
                         (long long)(now - j->t_queued),
                         j->state == JOB_QUEUED     ? "still waiting in the queue"
                         : j->kind == JOB_ANSWER ? "still answering"
                                                 : "still compressing",
                         (long long)srv.timeout_ms);
                srv.m.timeouts++;
            }
            j->responded = true;
            j->code = code;
            j->body = serve_error_json(msg);
            /* a running job stops at the library's next cancellation check,
             * which frees its worker for the next job */
            if (j->state == JOB_RUNNING && j->ctx) {
                comi_ctx_cancel(j->ctx);
                j->t_cancel = now;
                srv.m.cancelled++;
            }
            serve_active_remove_locked(j);
            conns[n++] = j->conn;
        }
        pthread_mutex_unlock(&srv.mu);
        for (size_t i = 0; i < n; i++)
            MHD_resume_connection(conns[i]);
        if (n < sizeof conns / sizeof conns[0]) break;
    }
}

