/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/egress.h"
#include "shared/util.h"

int regex_list_compile(char *const *patterns, const char *what, RegexList *ret, char **ret_error) {
        size_t n = strv_length((char **) patterns);
        RegexList l = {};

        if (n > EGRESS_PATTERNS_MAX)
                return errorf(ret_error, "%s: too many patterns (at most %d)", what, EGRESS_PATTERNS_MAX);
        if (n == 0) {
                *ret = l;
                return 0;
        }
        l.re = calloc(n, sizeof(regex_t));
        if (!l.re)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int r;
                if (strlen(patterns[i]) > EGRESS_PATTERN_MAX || !*patterns[i]) {
                        regex_list_done(&l);
                        return errorf(ret_error, "%s[%zu]: a pattern must be 1 to %d bytes", what, i, EGRESS_PATTERN_MAX);
                }
                r = regcomp(&l.re[i], patterns[i], REG_EXTENDED | REG_ICASE | REG_NOSUB);
                if (r != 0) {
                        char msg[128];
                        regerror(r, &l.re[i], msg, sizeof(msg));
                        regex_list_done(&l);
                        return errorf(ret_error, "%s[%zu]: invalid regular expression \"%.64s\": %s", what, i, patterns[i], msg);
                }
                l.n++;
        }
        *ret = l;
        return 0;
}

void regex_list_done(RegexList *l) {
        for (size_t i = 0; i < l->n; i++)
                regfree(&l->re[i]);
        free(l->re);
        *l = (RegexList) {};
}

static bool regex_list_match(const RegexList *l, const char *s) {
        for (size_t i = 0; i < l->n; i++)
                if (regexec(&l->re[i], s, 0, NULL, 0) == 0)
                        return true;
        return false;
}

bool egress_host_allowed(const RegexList *whitelist, const RegexList *blacklist, const char *host) {
        if (regex_list_match(blacklist, host))
                return false;
        return whitelist->n == 0 || regex_list_match(whitelist, host);
}

static void v4_mapped(uint8_t out[16], const void *v4) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, v4, 4);
}

int cidr_parse(const char *s, Cidr *ret) {
        char buf[64], *slash;
        unsigned long prefix;
        uint8_t a4[4];
        Cidr c = {};
        bool v4;

        if (!s || strlen(s) >= sizeof(buf))
                return -EINVAL;
        strcpy(buf, s);
        slash = strchr(buf, '/');
        if (slash)
                *slash++ = 0;
        if (inet_pton(AF_INET, buf, a4) == 1) {
                v4_mapped(c.addr, a4);
                v4 = true;
        } else if (inet_pton(AF_INET6, buf, c.addr) == 1)
                v4 = false;
        else
                return -EINVAL;
        if (slash) {
                char *end;
                if (!*slash || *slash == '-' || *slash == '+')
                        return -EINVAL;
                errno = 0;
                prefix = strtoul(slash, &end, 10);
                if (errno || *end || prefix > (v4 ? 32u : 128u))
                        return -EINVAL;
        } else
                prefix = v4 ? 32 : 128;
        c.prefix = (unsigned) prefix + (v4 ? 96 : 0);
        *ret = c;
        return 0;
}

static bool cidr_contains(const Cidr *c, const uint8_t a[16]) {
        unsigned full = c->prefix / 8, rest = c->prefix % 8;
        if (memcmp(c->addr, a, full) != 0)
                return false;
        if (rest == 0)
                return true;
        uint8_t mask = (uint8_t) (0xff << (8 - rest));
        return (c->addr[full] & mask) == (a[full] & mask);
}

int sockaddr_to_v6(const struct sockaddr *sa, uint8_t ret[16]) {
        if (sa->sa_family == AF_INET) {
                v4_mapped(ret, &((const struct sockaddr_in *) sa)->sin_addr);
                return 0;
        }
        if (sa->sa_family == AF_INET6) {
                memcpy(ret, &((const struct sockaddr_in6 *) sa)->sin6_addr, 16);
                return 0;
        }
        return -EAFNOSUPPORT;
}

static const char *const special_ranges[] = {
        /* IPv4 (as mapped addresses) */
        "0.0.0.0/8",            /* "this network", unspecified */
        "10.0.0.0/8",           /* private */
        "100.64.0.0/10",        /* CGNAT */
        "127.0.0.0/8",          /* loopback */
        "169.254.0.0/16",       /* link-local, cloud metadata */
        "172.16.0.0/12",        /* private */
        "192.0.0.0/24",         /* IETF protocol assignments */
        "192.168.0.0/16",       /* private */
        "198.18.0.0/15",        /* benchmarking */
        "224.0.0.0/4",          /* multicast */
        "240.0.0.0/4",          /* reserved, broadcast */
        /* IPv6 */
        "::/128",               /* unspecified */
        "::1/128",              /* loopback */
        "fc00::/7",             /* unique local (private) */
        "fe80::/10",            /* link-local */
        "fec0::/10",            /* site-local (deprecated) */
        "ff00::/8",             /* multicast */
        "100::/64",             /* discard */
};

bool egress_address_special(const uint8_t a[16]) {
        static const uint8_t nat64[12] = { 0x00, 0x64, 0xff, 0x9b };
        static const uint8_t compat[12] = {};
        uint8_t v4[16];

        /* IPv4 hidden in IPv6: NAT64 (64:ff9b::/96) and the old IPv4-compatible form (::/96) are
         * judged by their IPv4 address, as the mapped form already is. */
        if (memcmp(a, nat64, 12) == 0 || (memcmp(a, compat, 12) == 0 && (a[12] | a[13] | a[14] | a[15]) != 0 &&
                                          !(a[12] == 0 && a[13] == 0 && a[14] == 0 && a[15] == 1))) {
                v4_mapped(v4, a + 12);
                a = v4;
        }
        for (size_t i = 0; i < ELEMENTSOF(special_ranges); i++) {
                Cidr c;
                if (cidr_parse(special_ranges[i], &c) >= 0 && cidr_contains(&c, a))
                        return true;
        }
        return false;
}

bool egress_address_allowed(const EgressPolicy *p, const struct sockaddr *sa) {
        uint8_t a[16];

        if (sockaddr_to_v6(sa, a) < 0)
                return false;
        for (size_t i = 0; i < p->n_allowed; i++)
                if (cidr_contains(&p->allowed[i], a))
                        return true;
        return !egress_address_special(a);
}

bool egress_port_allowed(const EgressPolicy *p, unsigned port) {
        for (size_t i = 0; i < p->n_ports; i++)
                if (p->ports[i] == port)
                        return true;
        return false;
}

static void set_port(struct sockaddr_storage *ss, unsigned port) {
        if (ss->ss_family == AF_INET)
                ((struct sockaddr_in *) ss)->sin_port = htons((uint16_t) port);
        else
                ((struct sockaddr_in6 *) ss)->sin6_port = htons((uint16_t) port);
}

int egress_address_literal(const char *host, unsigned port, struct sockaddr_storage *ret, socklen_t *ret_len) {
        *ret = (struct sockaddr_storage) {};
        if (inet_pton(AF_INET, host, &((struct sockaddr_in *) ret)->sin_addr) == 1) {
                ret->ss_family = AF_INET;
                *ret_len = sizeof(struct sockaddr_in);
        } else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *) ret)->sin6_addr) == 1) {
                ret->ss_family = AF_INET6;
                *ret_len = sizeof(struct sockaddr_in6);
        } else
                return -EINVAL;
        set_port(ret, port);
        return 0;
}

bool egress_pick_address(const EgressPolicy *p, const struct addrinfo *ai, unsigned port, struct sockaddr_storage *ret,
                         socklen_t *ret_len, char ret_text[static INET6_ADDRSTRLEN]) {
        ret_text[0] = 0;
        for (const struct addrinfo *a = ai; a; a = a->ai_next) {
                const void *raw;
                char text[INET6_ADDRSTRLEN];

                if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) || a->ai_addrlen > sizeof(*ret))
                        continue;
                raw = a->ai_family == AF_INET ? (const void *) &((const struct sockaddr_in *) a->ai_addr)->sin_addr
                                              : (const void *) &((const struct sockaddr_in6 *) a->ai_addr)->sin6_addr;
                if (!inet_ntop(a->ai_family, raw, text, sizeof(text)))
                        continue;
                if (!ret_text[0])
                        strcpy(ret_text, text);
                if (!egress_address_allowed(p, a->ai_addr))
                        continue;
                *ret = (struct sockaddr_storage) {};
                memcpy(ret, a->ai_addr, a->ai_addrlen);
                *ret_len = a->ai_addrlen;
                set_port(ret, port);
                strcpy(ret_text, text);
                return true;
        }
        return false;
}

int egress_policy_init(EgressPolicy *p, char *const *whitelist, char *const *blacklist, char *const *allowed_addresses,
                       const uint64_t *ports, size_t n_ports, char **ret_error) {
        size_t n = strv_length((char **) allowed_addresses);
        int r;

        *p = (EgressPolicy) {};
        r = regex_list_compile(whitelist, "network.whitelist", &p->whitelist, ret_error);
        if (r < 0)
                return r;
        r = regex_list_compile(blacklist, "network.blacklist", &p->blacklist, ret_error);
        if (r < 0)
                goto fail;
        if (n > 0) {
                p->allowed = calloc(n, sizeof(Cidr));
                if (!p->allowed) {
                        r = -ENOMEM;
                        goto fail;
                }
                for (size_t i = 0; i < n; i++) {
                        if (cidr_parse(allowed_addresses[i], &p->allowed[i]) < 0) {
                                r = errorf(ret_error, "network.allowedAddresses[%zu]: \"%.64s\" is not an address or CIDR range",
                                           i, allowed_addresses[i]);
                                goto fail;
                        }
                        p->n_allowed++;
                }
        }
        if (n_ports > EGRESS_PORTS_MAX) {
                r = errorf(ret_error, "network.allowedPorts: at most %d ports", EGRESS_PORTS_MAX);
                goto fail;
        }
        for (size_t i = 0; i < n_ports; i++) {
                if (ports[i] < 1 || ports[i] > 65535) {
                        r = errorf(ret_error, "network.allowedPorts[%zu]: a port is 1 to 65535", i);
                        goto fail;
                }
                p->ports[p->n_ports++] = (uint16_t) ports[i];
        }
        return 0;
fail:
        egress_policy_done(p);
        return r;
}

void egress_policy_done(EgressPolicy *p) {
        regex_list_done(&p->whitelist);
        regex_list_done(&p->blacklist);
        free(p->allowed);
        p->allowed = NULL;
        p->n_allowed = 0;
}

bool url_host_port(const char *url, char **ret_host, unsigned *ret_port, bool *ret_https) {
        const char *a, *end, *colon;
        unsigned long port;
        bool https;
        char *h;

        if (!url)
                return false;
        if (strncasecmp(url, "https://", 8) == 0) {
                https = true;
                a = url + 8;
        } else if (strncasecmp(url, "http://", 7) == 0) {
                https = false;
                a = url + 7;
        } else
                return false;
        end = a + strcspn(a, "/?#");
        if (memchr(a, '@', (size_t) (end - a)) || a[0] == '[')
                return false;
        colon = memchr(a, ':', (size_t) (end - a));
        port = https ? 443 : 80;
        if (colon) {
                char *e;
                port = strtoul(colon + 1, &e, 10);
                if (e != end || port < 1 || port > 65535)
                        return false;
        }
        h = strndup(a, (size_t) ((colon ?: end) - a));
        if (!h)
                return false;
        for (char *c = h; *c; c++)
                *c = (char) tolower((unsigned char) *c);
        if (!egress_host_valid(h)) {
                free(h);
                return false;
        }
        if (ret_host)
                *ret_host = h;
        else
                free(h);
        if (ret_port)
                *ret_port = (unsigned) port;
        if (ret_https)
                *ret_https = https;
        return true;
}

bool egress_host_valid(const char *host) {
        size_t n = strlen(host);
        if (n == 0 || n > 253)
                return false;
        for (const char *c = host; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                      *c == '-' || *c == '.' || *c == '_' || *c == ':'))
                        return false;
        return true;
}
