/* SPDX-License-Identifier: MIT */
#pragma once

/* Several servers as one: the session directory in the shared database (the key store's, or
 * cluster.connectionString). Each server (a node: cluster.nodeId, reachable by the others at
 * cluster.advertiseUrl) writes a heartbeat row with its load every cluster.heartbeatMs, and a
 * row per session it holds (id, tenant, node, state "live" or "lost"). A request for a session
 * is then served where the session lives: here, forwarded to its live owner by the transport,
 * or answered "lost" when its owner is gone (stopped, or silent for cluster.deadAfterMs). The
 * rows of a gone node stay "lost" for cluster.lostSessionTtlMs (or until the client deletes the
 * session), so that no client silently gets a fresh sandbox in place of the one it had.
 *
 * Creating a session claims its id first (an insert that does nothing when the id is taken):
 * of two servers asked at once, one makes it and the other forwards to it. Times are the
 * writers' wall clocks in milliseconds: the nodes' clocks must agree within deadAfterMs. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "shared/macro.h"

#define CLUSTER_NODE_ID_MAX 64

typedef struct Cluster Cluster;
typedef struct ClusterCall ClusterCall;

typedef struct ClusterConfig {
        const char *node_id;
        const char *advertise_url;
        const char *connection_string;
        uint64_t heartbeat_usec;
        uint64_t dead_after_usec;
        uint64_t lost_ttl_usec;
        uint64_t timeout_usec;            /* each query */
} ClusterConfig;

/* What a node tells the others of itself. */
typedef struct ClusterLoad {
        unsigned running;
        unsigned queued;
        unsigned sessions;
        unsigned max_concurrent;
} ClusterLoad;
typedef void (*ClusterLoadFn)(void *userdata, ClusterLoad *ret);

typedef enum ClusterNodeState {
        CLUSTER_NODE_LIVE,
        CLUSTER_NODE_DRAINING,
        CLUSTER_NODE_GONE,               /* stopped */
        CLUSTER_NODE_DEAD,               /* silent for deadAfterMs */
} ClusterNodeState;
const char *cluster_node_state_to_string(ClusterNodeState s);

typedef struct ClusterNode {
        char *id;
        char *url;
        ClusterNodeState state;
        uint64_t last_seen_ms;           /* CLOCK_REALTIME of its last heartbeat */
        ClusterLoad load;
} ClusterNode;

int cluster_new(Cluster **ret, sd_event *event, const ClusterConfig *config, ClusterLoadFn load, void *userdata);
Cluster *cluster_free(Cluster *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Cluster *, cluster_free);
const char *cluster_node_id(Cluster *c);

/* Where a session is. */
typedef enum ClusterPlace {
        CLUSTER_HERE,                    /* this node holds it, or may make it (claimed) */
        CLUSTER_NOWHERE,                 /* no such session (without a claim) */
        CLUSTER_ELSEWHERE,               /* a live node holds it: url */
        CLUSTER_LOST,                    /* its node is gone */
} ClusterPlace;
/* error < 0: the directory could not be asked (-EHOSTDOWN, -ETIMEDOUT, -EIO). node, url and
 * tenant (the session's) are valid during the call only. */
typedef void (*ClusterLocateFn)(int error, ClusterPlace place, const char *node_id, const char *url, const char *tenant,
                                void *userdata);

/* Looks session id of tenant up (session ids are per tenant; any_tenant: the master's lookup,
 * which reaches a session by id when exactly one tenant has that id). With claim, an id
 * nobody it may see has is claimed for tenant on this node (CLUSTER_HERE). cb comes once,
 * later, unless *ret is cancelled first. */
int cluster_locate(Cluster *c, const char *id, const char *tenant, bool any_tenant, bool claim, ClusterLocateFn cb,
                   void *userdata, ClusterCall **ret);
void cluster_call_cancel(ClusterCall *call);

/* This node made a session (a claim's row is kept), or ended one for good. */
void cluster_session_created(Cluster *c, const char *id, const char *tenant);
void cluster_session_removed(Cluster *c, const char *id, const char *tenant);
/* A client deleted a lost session (found on node): its row goes, the id is free again. cb comes
 * once, later, with CLUSTER_NOWHERE when the row is gone (then any server may claim the id) or
 * an error as cluster_locate()'s, unless *ret is cancelled first. */
int cluster_forget(Cluster *c, const char *id, const char *tenant, const char *node, ClusterLocateFn cb, void *userdata,
                   ClusterCall **ret);
/* The node is leaving: a heartbeat at once says draining. */
void cluster_set_draining(Cluster *c);
/* The node stops: its row says gone and its sessions lost, written before the loop ends if
 * the database answers within the query timeout (cluster_leave_pending() says when). */
void cluster_leave(Cluster *c);
bool cluster_leave_pending(Cluster *c);

/* The last view of every node (this one included), refreshed with each heartbeat. */
const ClusterNode *cluster_nodes(Cluster *c, size_t *ret_n);
