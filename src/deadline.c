/* Deadlines: a queued task whose deadline passes is cancelled with status
 * UV_ETIMEDOUT at that moment, not when a worker frees up. Busy workers
 * are exactly when deadlines matter, so a worker cannot be the timer; the
 * loop cannot either (uv_timer is loop-thread-only, and a group serves
 * several loops). Each group that uses deadlines has one service thread
 * (service.c), started at the first deadline, that sleeps until the
 * soonest one. It never runs work. */
#include "internal.h"

static void deadline_main(void *arg) {
  uvpool__group_t *g = arg;
  uvpool__deadlines_t *d = &g->dl;
  uvpool__thread_name(g, "-dl");
  uv_mutex_lock(&g->mu);
  while (!d->svc.stop) {
    uvpool__ext_t *e =
        uvpool__list_empty(&d->list)
            ? NULL
            : UVPOOL__CONTAINER(d->list.next, uvpool__ext_t, dl_link);
    uint64_t now = uv_hrtime();
    if (e == NULL) {
      uv_cond_wait(&d->svc.cv, &g->mu);
    } else if (now >= e->deadline) {
      uvpool__pend_cancel(g, e->f, UV_ETIMEDOUT); /* unlinks e */
      uv_mutex_unlock(&g->mu);
      uvpool__watchers_run();
      uv_mutex_lock(&g->mu);
    } else {
      (void)uv_cond_timedwait(&d->svc.cv, &g->mu, e->deadline - now);
    }
  }
  uv_mutex_unlock(&g->mu);
}

int uvpool__deadline_init(uvpool__group_t *g) {
  uvpool__list_init(&g->dl.list);
  return uvpool__service_init(&g->dl.svc);
}

void uvpool__deadline_destroy(uvpool__group_t *g) {
  uvpool__service_destroy(&g->dl.svc);
}

int uvpool__deadline_start_locked(uvpool__group_t *g) {
  return uvpool__service_start_locked(g, &g->dl.svc, deadline_main);
}

/* Sorted insert, scanning from the end: deadlines mostly arrive in order.
 * The thread wakes only for a new soonest deadline. */
void uvpool__deadline_add_locked(uvpool__group_t *g, uvpool__ext_t *e) {
  uvpool__deadlines_t *d = &g->dl;
  uvpool__link_t *pos = d->list.prev;
  while (pos != &d->list &&
         UVPOOL__CONTAINER(pos, uvpool__ext_t, dl_link)->deadline > e->deadline)
    pos = pos->prev;
  uvpool__list_insert_after(pos, &e->dl_link);
  if (pos == &d->list)
    uv_cond_signal(&d->svc.cv);
}

void uvpool__deadline_remove_locked(uvpool__group_t *g, uvpool__ext_t *e) {
  (void)g;
  uvpool__list_remove(&e->dl_link);
}

/* Stops and joins the deadline thread, if any. Not under mu. */
void uvpool__deadline_stop(uvpool__group_t *g) {
  uvpool__service_stop(g, &g->dl.svc);
}

void uvpool__deadline_fork_child(uvpool__group_t *g) {
  uvpool__service_fork_child(&g->dl.svc);
}
