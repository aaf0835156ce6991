/* SPDX-License-Identifier: MIT */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "core/curl.h"
#include "shared/log.h"
#include "shared/time-util.h"

CURLM *(*sym_curl_multi_init)(void);
CURLMcode (*sym_curl_multi_setopt)(CURLM *, CURLMoption, ...);
CURLMcode (*sym_curl_multi_add_handle)(CURLM *, CURL *);
CURLMcode (*sym_curl_multi_remove_handle)(CURLM *, CURL *);
CURLMcode (*sym_curl_multi_socket_action)(CURLM *, curl_socket_t, int, int *);
CURLMsg *(*sym_curl_multi_info_read)(CURLM *, int *);
CURLMcode (*sym_curl_multi_assign)(CURLM *, curl_socket_t, void *);
CURLMcode (*sym_curl_multi_cleanup)(CURLM *);
CURL *(*sym_curl_easy_init)(void);
CURLcode (*sym_curl_easy_setopt)(CURL *, CURLoption, ...);
CURLcode (*sym_curl_easy_getinfo)(CURL *, CURLINFO, ...);
CURLcode (*sym_curl_easy_pause)(CURL *, int);
void (*sym_curl_easy_cleanup)(CURL *);
const char *(*sym_curl_easy_strerror)(CURLcode);
char *(*sym_curl_easy_escape)(CURL *, const char *, int);
struct curl_slist *(*sym_curl_slist_append)(struct curl_slist *, const char *);
void (*sym_curl_slist_free_all)(struct curl_slist *);
CURLU *(*sym_curl_url)(void);
CURLUcode (*sym_curl_url_set)(CURLU *, CURLUPart, const char *, unsigned int);
CURLUcode (*sym_curl_url_get)(const CURLU *, CURLUPart, char **, unsigned int);
void (*sym_curl_url_cleanup)(CURLU *);
void (*sym_curl_free)(void *);

static void *curl_dl;

int curl_load(const char *who) {
        static const struct {
                const char *name;
                void **ptr;
        } syms[] = {
#define SYM(n) { #n, (void **) &sym_##n }
                SYM(curl_multi_init), SYM(curl_multi_setopt), SYM(curl_multi_add_handle), SYM(curl_multi_remove_handle),
                SYM(curl_multi_socket_action), SYM(curl_multi_info_read), SYM(curl_multi_assign), SYM(curl_multi_cleanup),
                SYM(curl_easy_init), SYM(curl_easy_setopt), SYM(curl_easy_getinfo), SYM(curl_easy_pause),
                SYM(curl_easy_cleanup), SYM(curl_easy_strerror), SYM(curl_easy_escape), SYM(curl_slist_append),
                SYM(curl_slist_free_all), SYM(curl_url), SYM(curl_url_set), SYM(curl_url_get), SYM(curl_url_cleanup),
                SYM(curl_free),
#undef SYM
        };
        void *dl;

        if (curl_dl)
                return 0;
        dl = dlopen("libcurl.so.4", RTLD_NOW | RTLD_NODELETE);
        if (!dl)
                return log_error_errno(-EOPNOTSUPP, "%s: cannot load libcurl.so.4 (%s).", who, dlerror());
        for (size_t i = 0; i < ELEMENTSOF(syms); i++) {
                *syms[i].ptr = dlsym(dl, syms[i].name);
                if (!*syms[i].ptr) {
                        log_error("%s: libcurl.so.4 has no %s.", who, syms[i].name);
                        dlclose(dl);
                        return -EOPNOTSUPP;
                }
        }
        curl_dl = dl;
        return 0;
}

struct CurlLoop {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        sd_event_source *kick;
        char *description;
        CurlDoneFn done;
        void *userdata;
};

static void check_done(CurlLoop *l) {
        CURLMsg *m;
        int left;

        while ((m = sym_curl_multi_info_read(l->multi, &left)))
                if (m->msg == CURLMSG_DONE)
                        l->done(m->easy_handle, m->data.result, l->userdata);
}

static int on_socket_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        CurlLoop *l = userdata;
        int running, what = 0;

        if (revents & EPOLLIN)
                what |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                what |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                what |= CURL_CSELECT_ERR;
        sym_curl_multi_socket_action(l->multi, fd, what, &running);
        check_done(l);
        return 0;
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
        CurlLoop *l = userp;
        sd_event_source *src = socketp;
        uint32_t events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);

        if (what == CURL_POLL_REMOVE) {
                sd_event_source_disable_unref(src);
                sym_curl_multi_assign(l->multi, s, NULL);
                return 0;
        }
        if (!src) {
                if (sd_event_add_io(l->event, &src, s, events, on_socket_io, l) < 0)
                        return -1;
                (void) sd_event_source_set_description(src, l->description);
                sym_curl_multi_assign(l->multi, s, src);
                return 0;
        }
        (void) sd_event_source_set_io_events(src, events);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        CurlLoop *l = userdata;
        int running;
        sym_curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        check_done(l);
        return 0;
}

static int on_kick(sd_event_source *s, void *userdata) {
        return on_timer(s, 0, userdata);
}

static int on_timer_change(CURLM *multi, long timeout_ms, void *userp) {
        CurlLoop *l = userp;
        if (timeout_ms < 0)
                return sd_event_source_set_enabled(l->timer, SD_EVENT_OFF) < 0 ? -1 : 0;
        /* "At once" (a new transfer, a lifted pause) is the next loop iteration, not a timer's
         * slack later. */
        if (timeout_ms == 0) {
                (void) sd_event_source_set_enabled(l->timer, SD_EVENT_OFF);
                return sd_event_source_set_enabled(l->kick, SD_EVENT_ONESHOT) < 0 ? -1 : 0;
        }
        if (sd_event_source_set_time_relative(l->timer, (uint64_t) timeout_ms * USEC_PER_MSEC) < 0 ||
            sd_event_source_set_enabled(l->timer, SD_EVENT_ONESHOT) < 0)
                return -1;
        return 0;
}

int curl_loop_new(sd_event *event, const char *description, CurlDoneFn done, void *userdata, CurlLoop **ret) {
        _cleanup_(curl_loop_freep) CurlLoop *l = NULL;
        int r;

        l = calloc(1, sizeof(CurlLoop));
        if (!l)
                return -ENOMEM;
        l->event = event;
        l->done = done;
        l->userdata = userdata;
        l->description = strdup(description);
        l->multi = sym_curl_multi_init();
        if (!l->description || !l->multi)
                return -ENOMEM;
        r = sd_event_add_time_relative(event, &l->timer, CLOCK_MONOTONIC, 0, 1000, on_timer, l);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(l->timer, l->description);
        (void) sd_event_source_set_enabled(l->timer, SD_EVENT_OFF);
        r = sd_event_add_defer(event, &l->kick, on_kick, l);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(l->kick, l->description);
        (void) sd_event_source_set_enabled(l->kick, SD_EVENT_OFF);
        sym_curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
        sym_curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
        sym_curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
        sym_curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
        *ret = TAKE_PTR(l);
        return 0;
}

CurlLoop *curl_loop_free(CurlLoop *l) {
        if (!l)
                return NULL;
        if (l->multi)
                sym_curl_multi_cleanup(l->multi);
        sd_event_source_disable_unref(l->timer);
        sd_event_source_disable_unref(l->kick);
        free(l->description);
        free(l);
        return NULL;
}

int curl_loop_add(CurlLoop *l, CURL *easy) {
        return sym_curl_multi_add_handle(l->multi, easy) == CURLM_OK ? 0 : -EIO;
}

void curl_loop_remove(CurlLoop *l, CURL *easy) {
        sym_curl_multi_remove_handle(l->multi, easy);
}

void curl_loop_kick(CurlLoop *l) {
        (void) sd_event_source_set_enabled(l->kick, SD_EVENT_ONESHOT);
}
