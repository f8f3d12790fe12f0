/* The loop side: one uv_async_t per pool carries every completion and
 * every wake-up. The callback takes the whole done stack with one atomic
 * exchange, runs the callbacks with no lock held, then, under mu, decides
 * whether the handle keeps the loop alive and whether a close can finish. */
#include "internal.h"

/* Under mu, on the loop thread only (uv_ref/uv_unref are not thread
 * safe). The handle is referenced while anything is undelivered or the
 * pool closes, so an idle pool lets uv_run() return. */
void uvpool__keepalive_locked(uvpool_t *pool) {
  bool loop = uvpool__on_loop_thread(pool);
  /* Only the loop thread may read loop_outstanding. */
  uint64_t n = pool->outstanding + (loop ? pool->loop_outstanding : 0);
  bool want = n > 0 || pool->closing;
  if (want == pool->refd)
    return;
  if (!loop) {
    /* Another thread made work outstanding: ask the loop to reference
     * the handle. The send is safe under mu (see uvpool__done_push). */
    if (want && (!pool->forked || pool->closing) &&
        !atomic_load(&pool->exiting))
      uv_async_send(&pool->async);
    return;
  }
  if (want)
    uv_ref((uv_handle_t *)&pool->async);
  else
    uv_unref((uv_handle_t *)&pool->async);
  pool->refd = want;
}

static void on_handle_closed(uv_handle_t *h) {
  uvpool_t *pool = h->data;
  if (pool->close_cb != NULL)
    pool->close_cb(pool, pool->close_data);
  uvpool__free_loop_release(pool); /* finished is set: the list stays empty */
  uvpool__pool_release(pool);
}

/* Under mu. A close finishes once nothing is queued, running, undelivered
 * or alive: then no thread can send on the handle any more. */
static bool close_can_finish_locked(uvpool_t *pool) {
  return pool->closing && pool->nworkers == 0 &&
         atomic_load(&pool->done) == NULL && pool->outstanding == 0 &&
         uvpool__queued(pool) == 0;
}

static void close_finish(uvpool_t *pool) {
  uvpool__deadline_stop(pool);
  uvpool__monitor_stop(pool);
  uvpool__reap(pool);
  uvpool__registry_remove(pool);
  uv_close((uv_handle_t *)&pool->async, on_handle_closed);
}

void uvpool__async_cb(uv_async_t *handle) {
  uvpool_t *pool = handle->data;
  uvpool_future_t *batch;
  uint64_t n = 0;
  bool finish, reap;

  /* The done stack is newest first; callbacks go out in completion order. */
  batch = uvpool__list_reverse(
      atomic_exchange_explicit(&pool->done, NULL, memory_order_acquire));

  while (batch != NULL) {
    uvpool_future_t *next = batch->next;
    uvpool__future_deliver(pool, batch);
    batch = next;
    n++;
  }

  uv_mutex_lock(&pool->mu);
  /* Fold the loop thread's share in: outstanding is exact again. */
  pool->outstanding = pool->outstanding + pool->loop_outstanding - n;
  pool->loop_outstanding = 0;
  uvpool__keepalive_locked(pool);
  finish = close_can_finish_locked(pool);
  if (finish)
    atomic_store(&pool->finished, true);
  reap = pool->zombies != NULL;
  uv_mutex_unlock(&pool->mu);

  if (finish)
    close_finish(pool);
  else if (reap)
    uvpool__reap(pool);
}
