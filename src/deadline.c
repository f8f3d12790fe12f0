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
  uvpool__group_t *g = arg;
  char name[16];
  snprintf(name, sizeof(name), "%.12s-dl", g->name);
  pthread_setname_np(pthread_self(), name);
  uv_mutex_lock(&g->mu);
  while (!g->dl_stop) {
    uvpool__ext_t *e = g->dl_head;
    uint64_t now = uv_hrtime();
    if (e == NULL) {
      uv_cond_wait(&g->dl_cv, &g->mu);
    } else if (now >= e->deadline) {
      uvpool__pend_cancel(g, e->f, UV_ETIMEDOUT); /* unlinks e */
      uv_mutex_unlock(&g->mu);
      uvpool__watchers_run();
      uv_mutex_lock(&g->mu);
    } else {
      (void)uv_cond_timedwait(&g->dl_cv, &g->mu, e->deadline - now);
    }
  }
  uv_mutex_unlock(&g->mu);
}

int uvpool__deadline_start_locked(uvpool__group_t *g) {
  int rc;
  if (g->dl_running)
    return 0;
  g->dl_stop = false;
  rc = uvpool__thread_start_locked(g, &g->dl_tid, 0, deadline_main, g);
  if (rc == 0)
    g->dl_running = true;
  return rc;
}

/* Sorted insert, scanning from the end: deadlines mostly arrive in order. */
void uvpool__deadline_add_locked(uvpool__group_t *g, uvpool__ext_t *e) {
  uvpool__ext_t *pos = g->dl_tail;
  while (pos != NULL && pos->deadline > e->deadline)
    pos = pos->dl_prev;
  e->dl_prev = pos;
  e->dl_next = pos != NULL ? pos->dl_next : g->dl_head;
  if (e->dl_next != NULL)
    e->dl_next->dl_prev = e;
  else
    g->dl_tail = e;
  if (pos != NULL)
    pos->dl_next = e;
  else
    g->dl_head = e;
  if (g->dl_head == e)
    uv_cond_signal(&g->dl_cv);
}

void uvpool__deadline_remove_locked(uvpool__group_t *g, uvpool__ext_t *e) {
  if (e->dl_prev != NULL)
    e->dl_prev->dl_next = e->dl_next;
  else
    g->dl_head = e->dl_next;
  if (e->dl_next != NULL)
    e->dl_next->dl_prev = e->dl_prev;
  else
    g->dl_tail = e->dl_prev;
  e->dl_next = e->dl_prev = NULL;
}

/* Stops and joins the deadline thread, if any. Not under mu. */
void uvpool__deadline_stop(uvpool__group_t *g) {
  bool running;
  uv_mutex_lock(&g->mu);
  running = g->dl_running;
  g->dl_stop = true;
  g->dl_running = false;
  uv_cond_signal(&g->dl_cv);
  uv_mutex_unlock(&g->mu);
  if (running)
    uvpool__thread_join(g, &g->dl_tid);
}
