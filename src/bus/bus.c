/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/images.h"
#include "bus/bus.h"
#include "bus/errors.h"
#include "shared/log.h"
#include "shared/time-util.h"
#include "shared/util.h"


struct BusService {
        sd_bus *bus;
        Manager *m;
        char *admin_group;
        gid_t admin_gid;              /* resolved on the first privileged call */
        bool admin_gid_known;
        sd_bus_slot *manager_slot, *session_slot, *enum_slot;
        sd_event_source *counters;
        unsigned last_active, last_queued, last_sessions;
        uint64_t last_total;
};

/* The admin group's gid, looked up when first needed: /etc/group first (where
 * systemd-sysusers puts it), then NSS, whose modules would otherwise stay loaded in the server
 * for its whole life. (gid_t) -1 when there is no such group. */
static gid_t admin_gid(BusService *b) {
        _cleanup_fclose_ FILE *f = NULL;
        struct group *g;

        if (b->admin_gid_known || !b->admin_group)
                return b->admin_gid_known ? b->admin_gid : (gid_t) -1;
        b->admin_gid = (gid_t) -1;
        f = fopen("/etc/group", "re");
        while (f && (g = fgetgrent(f)))
                if (streq(g->gr_name, b->admin_group)) {
                        b->admin_gid = g->gr_gid;
                        break;
                }
        if (b->admin_gid == (gid_t) -1 && (g = getgrnam(b->admin_group)))
                b->admin_gid = g->gr_gid;
        b->admin_gid_known = true;
        return b->admin_gid;
}

static const AuthInfo bus_admin = { .type = AUTH_MASTER, .tenant = TENANT_MASTER };

/* Root, or a member of the admin group; everyone else gets AccessDenied. */
static int check_admin(BusService *b, sd_bus_message *m, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        const gid_t *gids = NULL;
        uid_t euid;
        gid_t egid;
        int r, n;

        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_EGID | SD_BUS_CREDS_SUPPLEMENTARY_GIDS | SD_BUS_CREDS_AUGMENT,
                                      &creds);
        if (r < 0)
                return r;
        if (sd_bus_creds_get_euid(creds, &euid) >= 0 && euid == 0)
                return 0;
        if (admin_gid(b) != (gid_t) -1) {
                if (sd_bus_creds_get_egid(creds, &egid) >= 0 && egid == b->admin_gid)
                        return 0;
                n = sd_bus_creds_get_supplementary_gids(creds, &gids);
                for (int i = 0; i < n; i++)
                        if (gids[i] == b->admin_gid)
                                return 0;
        }
        return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED, "Only root and the isol8 admin group may do this");
}

static int prop_u(sd_bus *bus, const char *path, const char *iface, const char *property, sd_bus_message *reply,
                  void *userdata, sd_bus_error *error) {
        BusService *b = userdata;
        ManagerStatus st;
        uint32_t v = 0;

        manager_status(b->m, &st);
        if (streq(property, "ActiveExecutions"))
                v = st.active;
        else if (streq(property, "QueuedExecutions"))
                v = st.queued;
        else if (streq(property, "MaxConcurrent"))
                v = st.max_concurrent;
        else if (streq(property, "SessionCount"))
                v = st.sessions;
        return sd_bus_message_append(reply, "u", v);
}

static int prop_version(sd_bus *bus, const char *path, const char *iface, const char *property, sd_bus_message *reply,
                        void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", ISOL8_VERSION);
}

/* Several servers as one: every node as the session directory last said it (empty for one server). */
static int prop_cluster(sd_bus *bus, const char *path, const char *iface, const char *property, sd_bus_message *reply,
                        void *userdata, sd_bus_error *error) {
        BusService *b = userdata;
        const ClusterNode *n = NULL;
        size_t k = 0;
        int r;

        if (b->m->cluster)
                n = cluster_nodes(b->m->cluster, &k);
        r = sd_bus_message_open_container(reply, 'a', "(sssuuuut)");
        for (size_t i = 0; r >= 0 && i < k; i++)
                r = sd_bus_message_append(reply, "(sssuuuut)", n[i].id, n[i].url, cluster_node_state_to_string(n[i].state),
                                          n[i].load.running, n[i].load.queued, n[i].load.sessions, n[i].load.max_concurrent,
                                          n[i].last_seen_ms);
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int prop_node_id(sd_bus *bus, const char *path, const char *iface, const char *property, sd_bus_message *reply,
                        void *userdata, sd_bus_error *error) {
        BusService *b = userdata;
        return sd_bus_message_append(reply, "s", b->m->cluster ? cluster_node_id(b->m->cluster) : "");
}

static int prop_total(sd_bus *bus, const char *path, const char *iface, const char *property, sd_bus_message *reply,
                      void *userdata, sd_bus_error *error) {
        BusService *b = userdata;
        ManagerStatus st;

        manager_status(b->m, &st);
        return sd_bus_message_append(reply, "t", st.total_executions);
}

/* A key method waiting on the store: answered from the callback. The bus message is held. */
typedef struct BusCall {
        sd_bus_message *m;
} BusCall;

static BusCall *bus_call_new(sd_bus_message *m) {
        BusCall *c = calloc(1, sizeof(BusCall));
        if (c)
                c->m = sd_bus_message_ref(m);
        return c;
}

static BusCall *bus_call_free(BusCall *c) {
        if (c) {
                sd_bus_message_unref(c->m);
                free(c);
        }
        return NULL;
}

/* The operation's immediate answer: under way (1: the reply follows), or refused. */
static int bus_call_started(BusCall *c, int r, const char *message, sd_bus_error *error) {
        if (r == 0)
                return 1;
        bus_call_free(c);
        return bus_set_outcome(error, r, message);
}

static int bus_call_failed(BusCall *c, int error, Outcome outcome) {
        return bus_reply_outcome(c->m, error < 0 ? error : (int) outcome, NULL);
}

/* CreateKey(s name, s tenant, t ttl_ms) -> (s id, s key, s prefix, t expires_usec) */
static void on_created_call(int error, Outcome outcome, const KeyInfo *k, const char *plain, void *userdata) {
        BusCall *c = userdata;
        if (error < 0 || outcome != OUTCOME_OK)
                (void) bus_call_failed(c, error, outcome);
        else
                (void) sd_bus_reply_method_return(c->m, "ssst", k->id, plain, k->prefix,
                                                  k->expires_ms >= 0 ? (uint64_t) k->expires_ms * USEC_PER_MSEC : UINT64_C(0));
        bus_call_free(c);
}

static int method_create_key(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusService *b = userdata;
        const char *name, *tenant, *message = NULL;
        ManagerCall *call;
        uint64_t ttl;
        BusCall *c;
        int r;

        r = check_admin(b, m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "sst", &name, &tenant, &ttl);
        if (r < 0)
                return r;
        c = bus_call_new(m);
        if (!c)
                return -ENOMEM;
        r = manager_key_create(b->m, name, isempty(tenant) ? "default" : tenant, ttl, "dbus", on_created_call, c, &call,
                               &message);
        return bus_call_started(c, r, message, error);
}

static void on_listed(int error, Outcome outcome, const KeyInfo *keys, size_t n, void *userdata) {
        BusCall *c = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

        if (error < 0 || outcome != OUTCOME_OK)
                (void) bus_call_failed(c, error, outcome);
        else if (sd_bus_message_new_method_return(c->m, &reply) >= 0 &&
                 sd_bus_message_open_container(reply, 'a', "(sssstttb)") >= 0) {
                for (size_t i = 0; i < n; i++)
                        (void) sd_bus_message_append(reply, "(sssstttb)", keys[i].id, keys[i].name, keys[i].prefix, keys[i].tenant,
                                                     (uint64_t) keys[i].created_ms * USEC_PER_MSEC,
                                                     keys[i].expires_ms >= 0 ? (uint64_t) keys[i].expires_ms * USEC_PER_MSEC : UINT64_C(0),
                                                     keys[i].last_used_ms >= 0 ? (uint64_t) keys[i].last_used_ms * USEC_PER_MSEC : UINT64_C(0),
                                                     (int) keys[i].revoked);
                if (sd_bus_message_close_container(reply) >= 0)
                        (void) sd_bus_send(NULL, reply, NULL);
        }
        bus_call_free(c);
}

static int method_list_keys(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusService *b = userdata;
        ManagerCall *call;
        const char *tenant;
        BusCall *c;
        int r;

        r = check_admin(b, m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "s", &tenant);
        if (r < 0)
                return r;
        c = bus_call_new(m);
        if (!c)
                return -ENOMEM;
        r = manager_key_list(b->m, isempty(tenant) ? NULL : tenant, on_listed, c, &call);
        return bus_call_started(c, r, r == OUTCOME_INVALID ? "Invalid tenant id" : NULL, error);
}

static void on_revoked(int error, Outcome outcome, const KeyInfo *k, const char *plain, void *userdata) {
        BusCall *c = userdata;
        if (outcome == OUTCOME_KEY_NOT_FOUND)
                (void) sd_bus_reply_method_errorf(c->m, BUS_ERROR_UNKNOWN_KEY, "Key not found: %s", k->id);
        else if (error < 0 || outcome != OUTCOME_OK)
                (void) bus_call_failed(c, error, outcome);
        else
                (void) sd_bus_reply_method_return(c->m, NULL);
        bus_call_free(c);
}

static int method_revoke_key(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusService *b = userdata;
        ManagerCall *call;
        const char *id;
        BusCall *c;
        int r;

        r = check_admin(b, m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "s", &id);
        if (r < 0)
                return r;
        c = bus_call_new(m);
        if (!c)
                return -ENOMEM;
        r = manager_key_revoke(b->m, id, "dbus", on_revoked, c, &call);
        if (r == OUTCOME_KEY_NOT_FOUND) {
                bus_call_free(c);
                return sd_bus_error_setf(error, BUS_ERROR_UNKNOWN_KEY, "Key not found: %s", id);
        }
        return bus_call_started(c, r, NULL, error);
}

/* Session ids are per tenant: the object is named by both ("<tenant>/<id>", escaped). */
static char *session_path(const char *tenant, const char *id) {
        _cleanup_free_ char *name = NULL;
        char *p = NULL;
        if (asprintf(&name, "%s/%s", tenant, id) < 0)
                return NULL;
        return sd_bus_path_encode(BUS_SESSION_PREFIX, name, &p) < 0 ? NULL : p;
}

static int method_list_sessions(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusService *b = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sssbttuo)");
        if (r < 0)
                return r;
        for (Session *s = session_first(b->m->sessions); s; s = session_next(s)) {
                _cleanup_free_ char *path = NULL;
                SessionInfo i;
                session_info(s, &i);
                path = session_path(i.tenant, i.id);
                if (!path)
                        return -ENOMEM;
                r = sd_bus_message_append(reply, "(sssbttuo)", i.id, i.tenant, i.runtime, (int) i.active, i.created_usec,
                                          i.last_access_usec, (uint32_t) i.executions, path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_destroy_session(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusService *b = userdata;
        const char *id;
        int r;

        r = check_admin(b, m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "s", &id);
        if (r < 0)
                return r;
        r = manager_session_destroy(b->m, &bus_admin, id);
        if (r == OUTCOME_SESSION_NOT_FOUND)
                return sd_bus_error_setf(error, BUS_ERROR_UNKNOWN_SESSION, "Session not found: %s", id);
        if (r != 0)
                return bus_set_outcome(error, r, NULL);
        return sd_bus_reply_method_return(m, NULL);
}

static int method_cleanup(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusService *b = userdata;
        CleanupCounts counts;
        int r;

        r = check_admin(b, m, error);
        if (r < 0)
                return r;
        manager_cleanup(b->m, &counts);
        return sd_bus_reply_method_return(m, "uu", counts.sessions, counts.sandboxes);
}

/* ListImages() -> a(sssttt): name, runtime, packages (comma-separated), created (µs since the
 * epoch), bytes, files. */
static int method_list_images(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusService *b = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = check_admin(b, m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sssttt)");
        for (Image *i = b->m->images; r >= 0 && i; i = i->next) {
                _cleanup_free_ char *pk = strv_join(i->packages, ",");
                r = pk ? sd_bus_message_append(reply, "(sssttt)", i->name, runtime_to_string(i->runtime), pk, i->created_usec,
                                               i->size_bytes, i->n_files)
                       : -ENOMEM;
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_remove_image(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusService *b = userdata;
        const char *name;
        int r;

        r = check_admin(b, m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        r = manager_image_remove(b->m, name, "dbus");
        if (r != 0)
                return bus_set_outcome(error, r, NULL);
        return sd_bus_reply_method_return(m, NULL);
}

/* BuildImage(s name, s runtime, as packages) -> (t bytes, t files), when the build is done. */
static void on_image_built(int error, Outcome outcome, const char *message, const Image *img, void *userdata) {
        BusCall *c = userdata;
        if (error < 0 || outcome != OUTCOME_OK)
                (void) bus_reply_outcome(c->m, error < 0 ? error : (int) outcome, message);
        else
                (void) sd_bus_reply_method_return(c->m, "tt", img->size_bytes, img->n_files);
        bus_call_free(c);
}

static int method_build_image(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusService *b = userdata;
        _cleanup_strv_free_ char **packages = NULL;
        _cleanup_free_ char *message = NULL;
        const char *name, *runtime;
        BusCall *c;
        int r;

        r = check_admin(b, m, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "ss", &name, &runtime);
        if (r >= 0)
                r = sd_bus_message_read_strv(m, &packages);
        if (r < 0)
                return r;
        c = bus_call_new(m);
        if (!c)
                return -ENOMEM;
        r = manager_image_build(b->m, name, runtime, packages, "dbus", on_image_built, c, NULL, &message);
        return bus_call_started(c, r, message, error);
}

/* Drain(): the server leaves once its running work is done (drainTimeoutMs, else 30 s, at most). */
static int method_drain(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        BusService *b = userdata;
        int r;

        r = check_admin(b, m, error);
        if (r < 0)
                return r;
        r = manager_drain(b->m, "dbus");
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "u", manager_n_runs(b->m));
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", prop_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ActiveExecutions", "u", prop_u, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("QueuedExecutions", "u", prop_u, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("MaxConcurrent", "u", prop_u, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("SessionCount", "u", prop_u, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("TotalExecutions", "t", prop_total, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("NodeId", "s", prop_node_id, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Cluster", "a(sssuuuut)", prop_cluster, 0, 0),
        SD_BUS_METHOD_WITH_ARGS("CreateKey",
                                SD_BUS_ARGS("s", name, "s", tenant, "t", ttl_ms),
                                SD_BUS_RESULT("s", id, "s", key, "s", prefix, "t", expires_usec),
                                method_create_key, SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
        SD_BUS_METHOD_WITH_ARGS("ListKeys",
                                SD_BUS_ARGS("s", tenant),
                                SD_BUS_RESULT("a(sssstttb)", keys),
                                method_list_keys, SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
        SD_BUS_METHOD_WITH_ARGS("RevokeKey",
                                SD_BUS_ARGS("s", id),
                                SD_BUS_NO_RESULT,
                                method_revoke_key, SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
        SD_BUS_METHOD_WITH_ARGS("ListSessions",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(sssbttuo)", sessions),
                                method_list_sessions, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DestroySession",
                                SD_BUS_ARGS("s", id),
                                SD_BUS_NO_RESULT,
                                method_destroy_session, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListImages",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(sssttt)", images),
                                method_list_images, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveImage",
                                SD_BUS_ARGS("s", name),
                                SD_BUS_NO_RESULT,
                                method_remove_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("BuildImage",
                                SD_BUS_ARGS("s", name, "s", runtime, "as", packages),
                                SD_BUS_RESULT("t", bytes, "t", files),
                                method_build_image, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Drain",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("u", running),
                                method_drain, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Cleanup",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("u", sessions, "u", sandboxes),
                                method_cleanup, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("SessionNew", SD_BUS_ARGS("s", id, "o", path), 0),
        SD_BUS_SIGNAL_WITH_ARGS("SessionRemoved", SD_BUS_ARGS("s", id, "o", path), 0),
        SD_BUS_VTABLE_END
};

/* Session objects: /org/isol8/Daemon1/session/<escaped "tenant/id"> */
static int find_session(sd_bus *bus, const char *path, const char *iface, void *userdata, void **found, sd_bus_error *error) {
        BusService *b = userdata;
        _cleanup_free_ char *name = NULL;
        Session *s;
        char *slash;

        if (!b->m)
                return 0;
        if (sd_bus_path_decode(path, BUS_SESSION_PREFIX, &name) <= 0 || !name)
                return 0;
        slash = strrchr(name, '/');   /* ids have no '/'; tenants may */
        if (!slash)
                return 0;
        *slash = 0;
        s = session_find(b->m->sessions, name, slash + 1);
        if (!s)
                return 0;
        *found = s;
        return 1;
}

static int session_prop(sd_bus *bus, const char *path, const char *iface, const char *property, sd_bus_message *reply,
                        void *userdata, sd_bus_error *error) {
        SessionInfo i;
        session_info(userdata, &i);
        if (streq(property, "Id"))
                return sd_bus_message_append(reply, "s", i.id);
        if (streq(property, "Tenant"))
                return sd_bus_message_append(reply, "s", i.tenant);
        if (streq(property, "Runtime"))
                return sd_bus_message_append(reply, "s", i.runtime);
        if (streq(property, "Active"))
                return sd_bus_message_append(reply, "b", (int) i.active);
        if (streq(property, "CreatedAt"))
                return sd_bus_message_append(reply, "t", i.created_usec);
        if (streq(property, "LastAccessedAt"))
                return sd_bus_message_append(reply, "t", i.last_access_usec);
        return sd_bus_message_append(reply, "u", (uint32_t) i.executions);
}

static int session_destroy_method(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        /* userdata is the session; the service is the fallback slot's own userdata. */
        BusService *b = sd_bus_slot_get_userdata(sd_bus_get_current_slot(sd_bus_message_get_bus(m)));
        SessionInfo i;
        _cleanup_free_ char *id = NULL;
        int r;

        r = check_admin(b, m, error);
        if (r < 0)
                return r;
        session_info(userdata, &i);
        id = strdup(i.id);
        if (!id)
                return -ENOMEM;
        (void) manager_session_destroy(b->m, &bus_admin, id);
        return sd_bus_reply_method_return(m, NULL);
}

static const sd_bus_vtable session_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "s", session_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Tenant", "s", session_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Runtime", "s", session_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Active", "b", session_prop, 0, 0),
        SD_BUS_PROPERTY("CreatedAt", "t", session_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("LastAccessedAt", "t", session_prop, 0, 0),
        SD_BUS_PROPERTY("Executions", "u", session_prop, 0, 0),
        SD_BUS_METHOD_WITH_ARGS("Destroy", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, session_destroy_method, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

static int enumerate_sessions(sd_bus *bus, const char *prefix, void *userdata, char ***ret, sd_bus_error *error) {
        BusService *b = userdata;
        char **l = NULL;
        if (!b->m) {   /* the introspection-only service has no sessions */
                *ret = NULL;
                return 0;
        }
        for (Session *s = session_first(b->m->sessions); s; s = session_next(s)) {
                SessionInfo i;
                session_info(s, &i);
                if (strv_push(&l, session_path(i.tenant, i.id)) < 0) {
                        strv_free(l);
                        return -ENOMEM;
                }
        }
        *ret = l;
        return 0;
}

static int on_counters(sd_event_source *s, uint64_t usec, void *userdata) {
        BusService *b = userdata;
        ManagerStatus st;

        manager_status(b->m, &st);
        /* Counter changes, at most once a second rather than for every run. */
        if (st.active != b->last_active || st.queued != b->last_queued || st.sessions != b->last_sessions ||
            st.total_executions != b->last_total)
                (void) sd_bus_emit_properties_changed(b->bus, BUS_PATH, BUS_MANAGER_IFACE, "ActiveExecutions",
                                                      "QueuedExecutions", "SessionCount", "TotalExecutions", NULL);
        b->last_active = st.active;
        b->last_queued = st.queued;
        b->last_sessions = st.sessions;
        b->last_total = st.total_executions;
        (void) sd_event_source_set_time_relative(s, USEC_PER_SEC);
        return sd_event_source_set_enabled(s, SD_EVENT_ON);
}

static void bus_service_session_event(void *userdata, const char *tenant, const char *id, bool created) {
        BusService *b = userdata;
        _cleanup_free_ char *path = NULL;
        path = session_path(tenant, id);
        if (path)
                (void) sd_bus_emit_signal(b->bus, BUS_PATH, BUS_MANAGER_IFACE, created ? "SessionNew" : "SessionRemoved", "so", id, path);
}

static int add_objects(sd_bus *bus, BusService *b, sd_bus_slot **m, sd_bus_slot **s, sd_bus_slot **e) {
        int r = sd_bus_add_object_vtable(bus, m, BUS_PATH, BUS_MANAGER_IFACE, manager_vtable, b);
        if (r < 0)
                return r;
        r = sd_bus_add_fallback_vtable(bus, s, BUS_SESSION_PREFIX, BUS_SESSION_IFACE, session_vtable, find_session, b);
        if (r < 0)
                return r;
        return sd_bus_add_node_enumerator(bus, e, BUS_SESSION_PREFIX, enumerate_sessions, b);
}

static const TransportOps bus_transport_ops = {
        .session_event = bus_service_session_event,
};

int bus_service_new(BusService **ret, Manager *m, const char *bus, const char *admin_group) {
        _cleanup_(bus_service_freep) BusService *b = NULL;
        int r;

        b = calloc(1, sizeof(BusService));
        if (!b)
                return -ENOMEM;
        b->m = m;
        b->admin_group = admin_group ? strdup(admin_group) : NULL;
        if (admin_group && !b->admin_group)
                return -ENOMEM;
        if (streq(bus, "system"))
                r = sd_bus_open_system(&b->bus);
        else if (streq(bus, "user"))
                r = sd_bus_open_user(&b->bus);
        else {
                r = sd_bus_new(&b->bus);
                if (r >= 0)
                        r = sd_bus_set_address(b->bus, bus);
                if (r >= 0)
                        r = sd_bus_set_bus_client(b->bus, true);
                if (r >= 0)
                        r = sd_bus_negotiate_creds(b->bus, true, SD_BUS_CREDS_EUID | SD_BUS_CREDS_EGID);
                if (r >= 0)
                        r = sd_bus_start(b->bus);
        }
        if (r < 0)
                return log_error_errno(r, "Cannot connect to the %s bus: %m", bus);
        r = add_objects(b->bus, b, &b->manager_slot, &b->session_slot, &b->enum_slot);
        if (r < 0)
                return r;
        r = sd_bus_request_name(b->bus, BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Cannot take the bus name %s: %m", BUS_NAME);
        r = sd_bus_attach_event(b->bus, m->event, 0);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(m->event, &b->counters, CLOCK_MONOTONIC, USEC_PER_SEC, 100000, on_counters, b);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(b->counters, "bus-counters");
        (void) sd_event_source_set_enabled(b->counters, SD_EVENT_ON);
        r = manager_add_transport(m, &bus_transport_ops, b);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        return 0;
}

BusService *bus_service_free(BusService *b) {
        if (!b)
                return NULL;
        if (b->m)
                manager_remove_transport(b->m, b);
        sd_event_source_disable_unref(b->counters);
        sd_bus_slot_unref(b->manager_slot);
        sd_bus_slot_unref(b->session_slot);
        sd_bus_slot_unref(b->enum_slot);
        free(b->admin_group);
        if (b->bus) {
                (void) sd_bus_flush(b->bus);
                sd_bus_flush_close_unref(b->bus);
        }
        free(b);
        return NULL;
}

/* Serves the objects on one end of a socket pair in a child and asks them for their XML from
 * the other: exactly what a bus client sees, without a bus. */
int bus_introspect(FILE *out) {
        int sv[2];
        pid_t pid;
        int r;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                sd_bus *server = NULL;
                sd_id128_t id;
                BusService b = { .admin_gid = (gid_t) -1, .admin_gid_known = true };
                close(sv[0]);
                (void) sd_id128_randomize(&id);
                if (sd_bus_new(&server) < 0 || sd_bus_set_fd(server, sv[1], sv[1]) < 0 || sd_bus_set_server(server, 1, id) < 0 ||
                    sd_bus_set_anonymous(server, 1) < 0 || add_objects(server, &b, NULL, NULL, NULL) < 0 || sd_bus_start(server) < 0)
                        _exit(1);
                for (;;) {
                        r = sd_bus_process(server, NULL);
                        if (r < 0)
                                _exit(0);
                        if (r == 0 && sd_bus_wait(server, UINT64_MAX) < 0)
                                _exit(0);
                }
        }
        close(sv[1]);
        {
                _cleanup_(sd_bus_flush_close_unrefp) sd_bus *client = NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                const char *xml;

                r = sd_bus_new(&client);
                if (r >= 0)
                        r = sd_bus_set_fd(client, sv[0], sv[0]);
                if (r >= 0)
                        r = sd_bus_set_anonymous(client, 1);
                if (r >= 0)
                        r = sd_bus_start(client);
                if (r >= 0)
                        r = sd_bus_call_method(client, NULL, BUS_PATH, "org.freedesktop.DBus.Introspectable", "Introspect", &error,
                                               &reply, NULL);
                if (r >= 0)
                        r = sd_bus_message_read(reply, "s", &xml);
                if (r >= 0)
                        fputs(xml, out);
        }
        (void) kill(pid, SIGKILL);
        (void) waitpid(pid, NULL, 0);
        return r;
}
