/* One intrusive doubly linked list for the library's lists of things: the
 * exit registry, a group's pools, the workers (alive and left), the
 * deadlines. A link is embedded in the element, the list has a sentinel
 * head, insert and remove are O(1), as libuv's queue.h.
 *
 * The run queue and the other future lists do not use it: a future is one
 * cache line, its links share it with the task, and taking the run
 * queue's head must not write into the next task's line (see queue.c). */
#ifndef UVPOOL_LIST_H
#define UVPOOL_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct uvpool__link_s {
  struct uvpool__link_s *next, *prev;
} uvpool__link_t;

/* The element of type `type` whose member `field` is the link l. */
#define UVPOOL__CONTAINER(l, type, field)                                      \
  ((type *)(void *)((char *)(l)-offsetof(type, field)))

/* Iterates var (a type *) over the elements of the list at head, linked
 * through their member field; var may not be removed meanwhile. The
 * sentinel is never taken for an element (it is none). */
#define UVPOOL__LIST_EACH(var, head, type, field)                              \
  for (type *var = uvpool__list_empty(head)                                    \
                       ? NULL                                                  \
                       : UVPOOL__CONTAINER((head)->next, type, field);         \
       var != NULL;                                                            \
       var = var->field.next == (head)                                         \
                 ? NULL                                                        \
                 : UVPOOL__CONTAINER(var->field.next, type, field))

/* An empty list, or a link on no list. */
static inline void uvpool__list_init(uvpool__link_t *head) {
  head->next = head->prev = head;
}

static inline bool uvpool__list_empty(const uvpool__link_t *head) {
  return head->next == head;
}

static inline void uvpool__list_insert_after(uvpool__link_t *pos,
                                             uvpool__link_t *l) {
  l->prev = pos;
  l->next = pos->next;
  pos->next->prev = l;
  pos->next = l;
}

static inline void uvpool__list_push_front(uvpool__link_t *head,
                                           uvpool__link_t *l) {
  uvpool__list_insert_after(head, l);
}

static inline void uvpool__list_push_back(uvpool__link_t *head,
                                          uvpool__link_t *l) {
  uvpool__list_insert_after(head->prev, l);
}

/* Unlinks l, which is then on no list (removing it again is harmless). */
static inline void uvpool__list_remove(uvpool__link_t *l) {
  l->prev->next = l->next;
  l->next->prev = l->prev;
  uvpool__list_init(l);
}

#endif /* UVPOOL_LIST_H */
