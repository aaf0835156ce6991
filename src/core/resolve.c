/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/resolve.h"
#include "shared/list.h"
#include "shared/util.h"

#define RESOLVER_THREADS_MAX 4

struct ResolveQuery {
        Resolver *resolver;
        char *host;
        ResolveFn fn;               /* NULL: cancelled (loop thread only) */
        void *userdata;
        /* Under the resolver's lock: */
        bool done;
        int error;
        struct addrinfo *result;
        ResolveQuery *next_todo;
        /* Loop thread only: every query not yet freed */
        ResolveQuery *prev, *next;
};

struct Resolver {
        sd_event_source *source;
        int efd;
        ResolveQuery *queries;      /* loop thread */
        unsigned n;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        ResolveQuery *todo_head, *todo_tail;
        pthread_t threads[RESOLVER_THREADS_MAX];
        unsigned n_threads, n_idle;
        bool stopping;
};

/* A worker: blocking getaddrinfo() calls, one at a time, with every signal blocked. */
static void *worker(void *userdata) {
        Resolver *r = userdata;
        uint64_t one = 1;

        pthread_mutex_lock(&r->lock);
        for (;;) {
                ResolveQuery *q;
                struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
                struct addrinfo *res = NULL;
                int e;

                while (!r->todo_head && !r->stopping) {
                        r->n_idle++;
                        pthread_cond_wait(&r->cond, &r->lock);
                        r->n_idle--;
                }
                if (r->stopping)
                        break;
                q = r->todo_head;
                r->todo_head = q->next_todo;
                if (!r->todo_head)
                        r->todo_tail = NULL;
                pthread_mutex_unlock(&r->lock);
                e = getaddrinfo(q->host, NULL, &hints, &res);
                pthread_mutex_lock(&r->lock);
                q->error = e;
                q->result = e == 0 ? res : NULL;
                q->done = true;
                (void) !write(r->efd, &one, sizeof(one));
        }
        pthread_mutex_unlock(&r->lock);
        return NULL;
}

static void query_free(ResolveQuery *q) {
        Resolver *r = q->resolver;
        LIST_REMOVE(r->queries, q);
        r->n--;
        if (q->result)
                freeaddrinfo(q->result);
        free(q->host);
        free(q);
}

static ResolveQuery *first_done(Resolver *r) {
        ResolveQuery *q;
        pthread_mutex_lock(&r->lock);
        for (q = r->queries; q && !q->done; q = q->next)
                ;
        pthread_mutex_unlock(&r->lock);
        return q;
}

static int on_wake(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Resolver *r = userdata;
        ResolveQuery *q;
        uint64_t v;

        (void) !read(r->efd, &v, sizeof(v));
        /* From the head each time: a callback may start queries (at the head) or cancel them,
         * never free one. */
        while ((q = first_done(r))) {
                if (q->fn)
                        q->fn(q->error, q->result, q->userdata);
                query_free(q);
        }
        return 0;
}

int resolver_new(sd_event *event, Resolver **ret) {
        Resolver *r = calloc(1, sizeof(Resolver));
        int k;

        if (!r)
                return -ENOMEM;
        pthread_mutex_init(&r->lock, NULL);
        pthread_cond_init(&r->cond, NULL);
        r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (r->efd < 0) {
                k = -errno;
                free(r);
                return k;
        }
        k = sd_event_add_io(event, &r->source, r->efd, EPOLLIN, on_wake, r);
        if (k < 0) {
                close(r->efd);
                free(r);
                return k;
        }
        (void) sd_event_source_set_description(r->source, "resolver");
        *ret = r;
        return 0;
}

Resolver *resolver_free(Resolver *r) {
        if (!r)
                return NULL;
        pthread_mutex_lock(&r->lock);
        r->stopping = true;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
        /* A lookup under way ends by the resolver's own timeouts (resolv.conf). */
        for (unsigned i = 0; i < r->n_threads; i++)
                pthread_join(r->threads[i], NULL);
        while (r->queries)
                query_free(r->queries);
        sd_event_source_disable_unref(r->source);
        safe_close(r->efd);
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return NULL;
}

static int start_worker(Resolver *r) {
        sigset_t all, old;
        int k;

        /* Signals stay with the loop thread (signalfd). */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        k = pthread_create(&r->threads[r->n_threads], NULL, worker, r);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (k != 0)
                return -k;
        r->n_threads++;
        return 0;
}

int resolver_query(Resolver *r, const char *host, ResolveFn fn, void *userdata, ResolveQuery **ret) {
        ResolveQuery *q = calloc(1, sizeof(ResolveQuery));
        int k = 0;

        if (!q)
                return -ENOMEM;
        q->host = strdup(host);
        if (!q->host) {
                free(q);
                return -ENOMEM;
        }
        q->resolver = r;
        q->fn = fn;
        q->userdata = userdata;

        pthread_mutex_lock(&r->lock);
        if (r->n_idle == 0 && r->n_threads < RESOLVER_THREADS_MAX)
                k = start_worker(r);
        if (k < 0 && r->n_threads == 0) {
                pthread_mutex_unlock(&r->lock);
                free(q->host);
                free(q);
                return k;
        }
        if (r->todo_tail)
                r->todo_tail->next_todo = q;
        else
                r->todo_head = q;
        r->todo_tail = q;
        LIST_PREPEND(r->queries, q);
        r->n++;
        pthread_cond_signal(&r->cond);
        pthread_mutex_unlock(&r->lock);
        if (ret)
                *ret = q;
        return 0;
}

void resolve_query_cancel(ResolveQuery *q) {
        if (q)
                q->fn = NULL;
}

unsigned resolver_pending(Resolver *r) {
        return r->n;
}
