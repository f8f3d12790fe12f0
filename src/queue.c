/* The pending queue (FIFO, doubly linked so a cancel unlinks in O(1)) and
 * the done list (FIFO, singly linked). Both are intrusive through the
 * future's own links and guarded by pool->mu. A future is on at most one
 * of them at a time, so the same next pointer serves both. */
#include "internal.h"

void uvpool__pend_push(uvpool_t *pool, uvpool_future_t *f) {
  f->next = NULL;
  f->prev = pool->pend_tail;
  if (pool->pend_tail != NULL)
    pool->pend_tail->next = f;
  else
    pool->pend_head = f;
  pool->pend_tail = f;
  atomic_store_explicit(
      &pool->nqueued,
      atomic_load_explicit(&pool->nqueued, memory_order_relaxed) + 1,
      memory_order_relaxed);
}

void uvpool__pend_remove(uvpool_t *pool, uvpool_future_t *f) {
  if (f->prev != NULL)
    f->prev->next = f->next;
  else
    pool->pend_head = f->next;
  if (f->next != NULL)
    f->next->prev = f->prev;
  else
    pool->pend_tail = f->prev;
  f->next = f->prev = NULL;
  atomic_store_explicit(
      &pool->nqueued,
      atomic_load_explicit(&pool->nqueued, memory_order_relaxed) - 1,
      memory_order_relaxed);
}

uvpool_future_t *uvpool__pend_pop(uvpool_t *pool) {
  uvpool_future_t *f = pool->pend_head;
  if (f != NULL)
    uvpool__pend_remove(pool, f);
  return f;
}

/* Settles every queued future as cancelled with status (UV_ECANCELED, or
 * a broken pool's thread_init code, which counts as a failure). */
void uvpool__pend_cancel_all(uvpool_t *pool, int status) {
  uvpool_future_t *f;
  while ((f = uvpool__pend_pop(pool)) != NULL) {
    if (status == UV_ECANCELED) {
      pool->cancelled++;
      uvpool__settle_locked(pool, f, UVPOOL_CANCELLED, status, NULL);
    } else {
      pool->failed++;
      uvpool__settle_locked(pool, f, UVPOOL_FAILED, status, NULL);
    }
  }
}

/* Wakes the loop only when the list goes from empty to non-empty: the loop
 * takes the whole list per wake-up, and uv_async_send coalesces anyway.
 * Called under mu, which is what makes the send safe: close finishes only
 * under mu with no worker left, so no send can race uv_close. */
void uvpool__done_push_locked(uvpool_t *pool, uvpool_future_t *f) {
  bool was_empty = pool->done_head == NULL;
  f->next = NULL;
  if (was_empty)
    pool->done_head = f;
  else
    pool->done_tail->next = f;
  pool->done_tail = f;
  if (was_empty && !pool->forked &&
      !atomic_load_explicit(&pool->exiting, memory_order_relaxed))
    uv_async_send(&pool->async);
}
