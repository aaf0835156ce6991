/* SPDX-License-Identifier: MIT */
#pragma once

/* The rules of network "filtered" (and of codeUrl fetches): which host names may be reached
 * (POSIX extended regexes, case-insensitive, matched anywhere in the name unless the pattern
 * anchors itself: upstream isol8's semantics; the blacklist wins, a non-empty whitelist lets
 * only its matches through), which addresses a name may resolve to (never loopback, private,
 * link-local, CGNAT, multicast, reserved or unspecified ranges, IPv4-mapped and NAT64 forms
 * included, unless network.allowedAddresses lists them), and which ports. */

#include <netdb.h>
#include <netinet/in.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "shared/macro.h"

#define EGRESS_PATTERNS_MAX 64
#define EGRESS_PATTERN_MAX 256
#define EGRESS_PORTS_MAX 64

typedef struct RegexList {
        regex_t *re;
        size_t n;
} RegexList;

typedef struct Cidr {
        uint8_t addr[16];           /* IPv4 as ::ffff:a.b.c.d */
        unsigned prefix;            /* of the 128 bits */
} Cidr;

typedef struct EgressPolicy {
        RegexList whitelist;
        RegexList blacklist;
        Cidr *allowed;              /* network.allowedAddresses */
        size_t n_allowed;
        uint16_t ports[EGRESS_PORTS_MAX];   /* network.allowedPorts */
        size_t n_ports;
        uint64_t max_connections;   /* at once, per run */
        uint64_t max_bytes;         /* both directions together, per run */
        uint64_t connect_timeout_ms;
} EgressPolicy;

/* Compiles patterns (at most EGRESS_PATTERNS_MAX of EGRESS_PATTERN_MAX bytes). -EINVAL with a
 * message naming `what` on a bad one. */
int regex_list_compile(char *const *patterns, const char *what, RegexList *ret, char **ret_error);
void regex_list_done(RegexList *l);
/* Upstream's rule: blacklist first (a match is denied), then a non-empty whitelist. */
bool egress_host_allowed(const RegexList *whitelist, const RegexList *blacklist, const char *host);

/* "10.0.0.0/8", "::1/128", "192.0.2.7" (a single address). */
int cidr_parse(const char *s, Cidr *ret);
/* The address as 16 bytes, IPv4 mapped. -EAFNOSUPPORT for other families. */
int sockaddr_to_v6(const struct sockaddr *sa, uint8_t ret[16]);
/* True when the address is in one of the ranges never reached unless allowed. */
bool egress_address_special(const uint8_t a[16]);
bool egress_address_allowed(const EgressPolicy *p, const struct sockaddr *sa);
bool egress_port_allowed(const EgressPolicy *p, unsigned port);
/* An address literal ("192.0.2.1", "::1") as a socket address with port: 0, or -EINVAL for a
 * name (which needs a lookup). */
int egress_address_literal(const char *host, unsigned port, struct sockaddr_storage *ret, socklen_t *ret_len);
/* The first IPv4/IPv6 address of a lookup's answer that the policy allows, with port, and its
 * text; false when none is, with the first address's text (for the message). */
bool egress_pick_address(const EgressPolicy *p, const struct addrinfo *ai, unsigned port, struct sockaddr_storage *ret,
                         socklen_t *ret_len, char ret_text[static INET6_ADDRSTRLEN]);

/* From the configuration's lists; -EINVAL with a message naming the key on a bad entry. */
int egress_policy_init(EgressPolicy *p, char *const *whitelist, char *const *blacklist, char *const *allowed_addresses,
                       const uint64_t *ports, size_t n_ports, char **ret_error);
void egress_policy_done(EgressPolicy *p);

/* "http://host[:port]/..." or https: true with the host (lowercase, allocated) and port; false
 * for anything else (credentials included). Any ret may be NULL. */
bool url_host_port(const char *url, char **ret_host, unsigned *ret_port, bool *ret_https);

/* A host name as the proxy accepts it: letters, digits, '-', '.', '_' (or an IP literal),
 * 1..253 bytes. */
bool egress_host_valid(const char *host);
