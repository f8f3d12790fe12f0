/* A group's service threads: the monitor (monitor.c) and the deadline
 * thread (deadline.c). Each is started on demand, under the group's mu,
 * runs until stopped, and is stopped for good once: at the close of the
 * group's last member or at process exit. Neither ever runs work.
 *
 * Every thread of a group, workers included, is named after the group
 * here: "<name><suffix>", cut to Linux's 15 characters by shortening the
 * name, never the suffix, so that threads of one group stay told apart. */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

void uvpool__thread_name(const uvpool__group_t *g, const char *suffix) {
  char name[16];
  int keep = (int)sizeof(name) - 1 - (int)strlen(suffix);
  snprintf(name, sizeof(name), "%.*s%s", keep > 0 ? keep : 0, g->name, suffix);
  pthread_setname_np(pthread_self(), name);
}

int uvpool__service_init(uvpool__service_t *s) {
  s->stop = false;
  atomic_init(&s->running, false);
  return uv_cond_init(&s->cv);
}

void uvpool__service_destroy(uvpool__service_t *s) { uv_cond_destroy(&s->cv); }

int uvpool__service_start_locked(uvpool__group_t *g, uvpool__service_t *s,
                                 void (*fn)(void *)) {
  int rc;
  if (atomic_load(&s->running) || s->stop)
    return 0;
  rc = uvpool__thread_start_locked(g, &s->tid, 0, fn, g);
  if (rc == 0)
    atomic_store(&s->running, true);
  return rc;
}

void uvpool__service_stop(uvpool__group_t *g, uvpool__service_t *s) {
  bool running;
  uv_mutex_lock(&g->mu);
  running = atomic_load(&s->running);
  s->stop = true;
  atomic_store(&s->running, false);
  uv_cond_signal(&s->cv);
  uv_mutex_unlock(&g->mu);
  if (running)
    uvpool__thread_join(g, &s->tid);
}

void uvpool__service_fork_child(uvpool__service_t *s) {
  /* The thread is gone: a close in the child must not join it. Nobody
   * waits on the condition variable in the child: a fresh one is safe. */
  atomic_store(&s->running, false);
  uv_cond_init(&s->cv);
}
