/* Deadlines: a queued task whose deadline passes is cancelled with status
 * UV_ETIMEDOUT at that moment, not when a worker frees up. Busy workers
 * are exactly when deadlines matter, so a worker cannot be the timer; the
 * loop cannot either (uv_timer is loop-thread-only and a second handle per
 * pool would complicate uv_walk sweeps). Each pool that uses deadlines has
 * one extra thread, started at the first deadline, that sleeps until the
 * soonest one. It never runs work. */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>

static void deadline_main(void *arg) {
  uvpool_t *pool = arg;
  char name[16];
  snprintf(name, sizeof(name), "%.12s-dl", pool->name);
  pthread_setname_np(pthread_self(), name);
  uv_mutex_lock(&pool->mu);
  while (!pool->dl_stop) {
    uvpool__ext_t *e = pool->dl_head;
    uint64_t now = uv_hrtime();
    if (e == NULL) {
      uv_cond_wait(&pool->dl_cv, &pool->mu);
    } else if (now >= e->deadline) {
      uvpool__pend_cancel(pool, e->f, UV_ETIMEDOUT); /* unlinks e */
      uv_mutex_unlock(&pool->mu);
      uvpool__watchers_run();
      uv_mutex_lock(&pool->mu);
    } else {
      (void)uv_cond_timedwait(&pool->dl_cv, &pool->mu, e->deadline - now);
    }
  }
  uv_mutex_unlock(&pool->mu);
}

int uvpool__deadline_start_locked(uvpool_t *pool) {
  int rc;
  if (pool->dl_running)
    return 0;
  pool->dl_stop = false;
  rc = uvpool__thread_start_locked(pool, &pool->dl_tid, 0, deadline_main, pool);
  if (rc == 0)
    pool->dl_running = true;
  return rc;
}

/* Sorted insert, scanning from the end: deadlines mostly arrive in order. */
void uvpool__deadline_add_locked(uvpool_t *pool, uvpool__ext_t *e) {
  uvpool__ext_t *pos = pool->dl_tail;
  while (pos != NULL && pos->deadline > e->deadline)
    pos = pos->dl_prev;
  e->dl_prev = pos;
  e->dl_next = pos != NULL ? pos->dl_next : pool->dl_head;
  if (e->dl_next != NULL)
    e->dl_next->dl_prev = e;
  else
    pool->dl_tail = e;
  if (pos != NULL)
    pos->dl_next = e;
  else
    pool->dl_head = e;
  if (pool->dl_head == e)
    uv_cond_signal(&pool->dl_cv);
}

void uvpool__deadline_remove_locked(uvpool_t *pool, uvpool__ext_t *e) {
  if (e->dl_prev != NULL)
    e->dl_prev->dl_next = e->dl_next;
  else
    pool->dl_head = e->dl_next;
  if (e->dl_next != NULL)
    e->dl_next->dl_prev = e->dl_prev;
  else
    pool->dl_tail = e->dl_prev;
  e->dl_next = e->dl_prev = NULL;
}

/* Stops and joins the deadline thread, if any. Not under mu. */
void uvpool__deadline_stop(uvpool_t *pool) {
  bool running;
  uv_mutex_lock(&pool->mu);
  running = pool->dl_running;
  pool->dl_stop = true;
  pool->dl_running = false;
  uv_cond_signal(&pool->dl_cv);
  uv_mutex_unlock(&pool->mu);
  if (running)
    uvpool__thread_join(pool, &pool->dl_tid);
}
