/* SPDX-License-Identifier: MIT */
#pragma once

/* libcurl for the server: loaded with dlopen() on first use (systemd's way with optional
 * libraries: a server that never fetches a code URL nor forwards to another server keeps its
 * memory), and its multi interface driven by sd-event — each socket libcurl wants watched is
 * an io source, its timer one time source; nothing blocks the loop. Used by request.codeUrl
 * (core/fetch.c) and by the cluster's forwarding (api/forward.c). */

#include <curl/curl.h>
#include <systemd/sd-event.h>

#include "shared/macro.h"

extern CURLM *(*sym_curl_multi_init)(void);
extern CURLMcode (*sym_curl_multi_setopt)(CURLM *, CURLMoption, ...);
extern CURLMcode (*sym_curl_multi_add_handle)(CURLM *, CURL *);
extern CURLMcode (*sym_curl_multi_remove_handle)(CURLM *, CURL *);
extern CURLMcode (*sym_curl_multi_socket_action)(CURLM *, curl_socket_t, int, int *);
extern CURLMsg *(*sym_curl_multi_info_read)(CURLM *, int *);
extern CURLMcode (*sym_curl_multi_assign)(CURLM *, curl_socket_t, void *);
extern CURLMcode (*sym_curl_multi_cleanup)(CURLM *);
extern CURL *(*sym_curl_easy_init)(void);
extern CURLcode (*sym_curl_easy_setopt)(CURL *, CURLoption, ...);
extern CURLcode (*sym_curl_easy_getinfo)(CURL *, CURLINFO, ...);
extern CURLcode (*sym_curl_easy_pause)(CURL *, int);
extern void (*sym_curl_easy_cleanup)(CURL *);
extern const char *(*sym_curl_easy_strerror)(CURLcode);
extern char *(*sym_curl_easy_escape)(CURL *, const char *, int);
extern struct curl_slist *(*sym_curl_slist_append)(struct curl_slist *, const char *);
extern void (*sym_curl_slist_free_all)(struct curl_slist *);
extern CURLU *(*sym_curl_url)(void);
extern CURLUcode (*sym_curl_url_set)(CURLU *, CURLUPart, const char *, unsigned int);
extern CURLUcode (*sym_curl_url_get)(const CURLU *, CURLUPart, char **, unsigned int);
extern void (*sym_curl_url_cleanup)(CURLU *);
extern void (*sym_curl_free)(void *);

/* Loads libcurl.so.4 once; -EOPNOTSUPP (logged, naming who needs it) when it cannot be. */
int curl_load(const char *who);

typedef struct CurlLoop CurlLoop;
/* A transfer of the loop ended (result CURLE_OK or why not): the easy handle is still in the
 * multi; its owner (CURLOPT_PRIVATE) removes and frees it. */
typedef void (*CurlDoneFn)(CURL *easy, CURLcode result, void *userdata);

int curl_loop_new(sd_event *event, const char *description, CurlDoneFn done, void *userdata, CurlLoop **ret);
/* Transfers still in the loop must have been removed first. */
CurlLoop *curl_loop_free(CurlLoop *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(CurlLoop *, curl_loop_free);
int curl_loop_add(CurlLoop *l, CURL *easy);
void curl_loop_remove(CurlLoop *l, CURL *easy);
/* After curl_easy_pause() lifted a pause from outside libcurl's callbacks: lets libcurl go on
 * at once (from the loop) rather than at its next timeout. */
void curl_loop_kick(CurlLoop *l);
