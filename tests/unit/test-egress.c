/* SPDX-License-Identifier: MIT */
/* The rules of network "filtered": host patterns (upstream's semantics), the special address
 * ranges in every IPv4 and IPv6 spelling, network.allowedAddresses, ports. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <stdlib.h>

#include "core/egress.h"
#include "tap.h"

static bool addr_allowed(const EgressPolicy *p, const char *s) {
        struct sockaddr_in a4 = { .sin_family = AF_INET };
        struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
        if (inet_pton(AF_INET, s, &a4.sin_addr) == 1)
                return egress_address_allowed(p, (struct sockaddr *) &a4);
        if (inet_pton(AF_INET6, s, &a6.sin6_addr) == 1)
                return egress_address_allowed(p, (struct sockaddr *) &a6);
        abort();
}

int main(void) {
        char *white[] = { "\\.example\\.com$", "^api\\.", NULL }, *black[] = { "^bad\\.", NULL }, *none[] = { NULL };
        char *allowed[] = { "127.0.0.2/32", "fd00:1::/64", NULL }, *bad_re[] = { "(x", NULL };
        char *bad_cidr[] = { "10.0.0.0/33", NULL }, *bad_cidr2[] = { "10.0.0.0/", NULL };
        uint64_t ports[] = { 80, 443 }, bad_port[] = { 0 };
        EgressPolicy p, q;
        char *error = NULL;
        Cidr c;

        CHECK(egress_policy_init(&p, white, black, allowed, ports, 2, &error) == 0);
        /* Blacklist first, then the whitelist; case-insensitive; anchored only by the pattern. */
        CHECK(egress_host_allowed(&p.whitelist, &p.blacklist, "www.example.com"));
        CHECK(egress_host_allowed(&p.whitelist, &p.blacklist, "WWW.EXAMPLE.COM"));
        CHECK(egress_host_allowed(&p.whitelist, &p.blacklist, "api.other.org"));
        CHECK(!egress_host_allowed(&p.whitelist, &p.blacklist, "example.com.evil.org"));
        CHECK(!egress_host_allowed(&p.whitelist, &p.blacklist, "bad.example.com"));
        CHECK(!egress_host_allowed(&p.whitelist, &p.blacklist, "other.org"));
        /* An empty whitelist lets every host through that the blacklist does not stop. */
        CHECK(egress_policy_init(&q, none, black, none, ports, 2, &error) == 0);
        CHECK(egress_host_allowed(&q.whitelist, &q.blacklist, "anything.org"));
        CHECK(!egress_host_allowed(&q.whitelist, &q.blacklist, "bad.org"));

        /* Special ranges, every spelling. */
        const char *special[] = { "127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
                                  "100.64.0.1", "100.127.255.255", "0.0.0.0", "224.0.0.1", "239.255.255.255", "255.255.255.255",
                                  "::", "::1", "fe80::1", "fc00::1", "fd12::1", "ff02::1", "::ffff:127.0.0.1",
                                  "::ffff:169.254.169.254", "::127.0.0.1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "fec0::1" };
        for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
                CHECK(!addr_allowed(&q, special[i]));
        const char *public[] = { "93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111",
                                 "::ffff:8.8.8.8", "64:ff9b::808:808" };
        for (size_t i = 0; i < sizeof(public) / sizeof(public[0]); i++)
                CHECK(addr_allowed(&q, public[i]));
        /* network.allowedAddresses lets listed ranges through, and only those. */
        CHECK(addr_allowed(&p, "127.0.0.2"));
        CHECK(addr_allowed(&p, "::ffff:127.0.0.2"));
        CHECK(!addr_allowed(&p, "127.0.0.3"));
        CHECK(addr_allowed(&p, "fd00:1::5"));
        CHECK(!addr_allowed(&p, "fd00:2::5"));

        CHECK(egress_port_allowed(&p, 443) && egress_port_allowed(&p, 80) && !egress_port_allowed(&p, 8080));

        /* Literals need no lookup; names do. A lookup's answer: the first allowed address, with
         * the port; else the first address's text for the message. */
        {
                struct sockaddr_storage ss;
                socklen_t len;
                char text[INET6_ADDRSTRLEN];
                struct sockaddr_in a1 = { .sin_family = AF_INET }, a2 = { .sin_family = AF_INET };
                struct addrinfo i2 = { .ai_family = AF_INET, .ai_addrlen = sizeof(a2), .ai_addr = (struct sockaddr *) &a2 };
                struct addrinfo i1 = { .ai_family = AF_INET, .ai_addrlen = sizeof(a1), .ai_addr = (struct sockaddr *) &a1, .ai_next = &i2 };

                CHECK(egress_address_literal("192.0.2.1", 443, &ss, &len) == 0 && ss.ss_family == AF_INET &&
                      ntohs(((struct sockaddr_in *) &ss)->sin_port) == 443 && len == sizeof(struct sockaddr_in));
                CHECK(egress_address_literal("::1", 80, &ss, &len) == 0 && ss.ss_family == AF_INET6);
                CHECK(egress_address_literal("example.com", 80, &ss, &len) == -EINVAL);
                inet_pton(AF_INET, "10.0.0.1", &a1.sin_addr);
                inet_pton(AF_INET, "127.0.0.2", &a2.sin_addr);
                CHECK(egress_pick_address(&p, &i1, 8080, &ss, &len, text) && strcmp(text, "127.0.0.2") == 0 &&
                      ntohs(((struct sockaddr_in *) &ss)->sin_port) == 8080);
                i1.ai_next = NULL;
                CHECK(!egress_pick_address(&p, &i1, 8080, &ss, &len, text) && strcmp(text, "10.0.0.1") == 0);
        }

        CHECK(cidr_parse("10.0.0.0/8", &c) == 0 && c.prefix == 104);
        CHECK(cidr_parse("::/0", &c) == 0 && c.prefix == 0);
        CHECK(cidr_parse("1.2.3.4", &c) == 0 && c.prefix == 128);
        CHECK(cidr_parse("1.2.3.4/-1", &c) < 0 && cidr_parse("x/8", &c) < 0 && cidr_parse("::1/129", &c) < 0);

        egress_policy_done(&q);
        /* Bad configuration names its key. */
        CHECK(egress_policy_init(&q, bad_re, none, none, ports, 2, &error) < 0);
        CHECK(error && strstr(error, "network.whitelist[0]: invalid regular expression"));
        free(error);
        error = NULL;
        CHECK(egress_policy_init(&q, none, none, bad_cidr, ports, 2, &error) < 0 && strstr(error, "network.allowedAddresses[0]"));
        free(error);
        error = NULL;
        CHECK(egress_policy_init(&q, none, none, bad_cidr2, ports, 2, &error) < 0);
        free(error);
        error = NULL;
        CHECK(egress_policy_init(&q, none, none, none, bad_port, 1, &error) < 0 && strstr(error, "network.allowedPorts"));
        free(error);

        CHECK(egress_host_valid("a-b.c_d.example") && egress_host_valid("::1"));
        CHECK(!egress_host_valid("") && !egress_host_valid("a b") && !egress_host_valid("a/b") && !egress_host_valid("a\r\n"));
        egress_policy_done(&p);
        egress_policy_done(&q);
        return tap_done();
}
