/* SPDX-License-Identifier: MIT */
#pragma once

/* Intrusive doubly linked lists, after systemd's list.h: an item has `prev` and `next`
 * pointers, a list is its head (and, for one that is appended to, its tail). Removing an item
 * that is not listed (both pointers NULL, not the head) changes nothing. The arguments are
 * evaluated more than once: pass plain lvalues. */

#define LIST_PREPEND(head, item)                                        \
        do {                                                            \
                (item)->prev = NULL;                                    \
                (item)->next = (head);                                  \
                if (head)                                               \
                        (head)->prev = (item);                          \
                (head) = (item);                                        \
        } while (0)

#define LIST_APPEND(head, tail, item)                                   \
        do {                                                            \
                (item)->next = NULL;                                    \
                (item)->prev = (tail);                                  \
                if (tail)                                               \
                        (tail)->next = (item);                          \
                else                                                    \
                        (head) = (item);                                \
                (tail) = (item);                                        \
        } while (0)

#define LIST_REMOVE(head, item)                                         \
        do {                                                            \
                if ((item)->prev)                                       \
                        (item)->prev->next = (item)->next;              \
                else if ((head) == (item))                              \
                        (head) = (item)->next;                          \
                if ((item)->next)                                       \
                        (item)->next->prev = (item)->prev;              \
                (item)->prev = (item)->next = NULL;                     \
        } while (0)

#define LIST_REMOVE_TAIL(head, tail, item)                              \
        do {                                                            \
                if ((tail) == (item))                                   \
                        (tail) = (item)->prev;                          \
                LIST_REMOVE(head, item);                                \
        } while (0)
