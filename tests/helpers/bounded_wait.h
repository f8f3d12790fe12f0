/* Waits for a child process for at most a bound, without polling and
 * without pidfd_open (which valgrind does not know): a thread blocks in
 * waitpid() and signals a condition variable that the caller waits on
 * with a deadline. On timeout the caller's kill_target is killed and the
 * child reaped. Returns true if the child ended within the bound. */
#ifndef UVPOOL_TEST_BOUNDED_WAIT_H
#define UVPOOL_TEST_BOUNDED_WAIT_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>

typedef struct {
  pid_t pid;
  int status;
  bool done;
  pthread_mutex_t mu;
  pthread_cond_t cv;
} bw_reaper_t;

static void *bw_reaper_main(void *arg) {
  bw_reaper_t *r = arg;
  int status = 0;
  while (waitpid(r->pid, &status, 0) < 0 && errno == EINTR)
    continue;
  pthread_mutex_lock(&r->mu);
  r->status = status;
  r->done = true;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
  return NULL;
}

static inline bool bounded_wait(pid_t pid, pid_t kill_target, int bound_ms,
                                int *status) {
  bw_reaper_t r = {.pid = pid, .status = 0, .done = false};
  pthread_condattr_t ca;
  pthread_t tid;
  struct timespec dl;
  bool in_time;
  pthread_mutex_init(&r.mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&r.cv, &ca);
  pthread_condattr_destroy(&ca);
  clock_gettime(CLOCK_MONOTONIC, &dl);
  dl.tv_sec += bound_ms / 1000;
  dl.tv_nsec += (long)(bound_ms % 1000) * 1000000L;
  if (dl.tv_nsec >= 1000000000L) {
    dl.tv_sec++;
    dl.tv_nsec -= 1000000000L;
  }
  pthread_create(&tid, NULL, bw_reaper_main, &r);
  pthread_mutex_lock(&r.mu);
  while (!r.done && pthread_cond_timedwait(&r.cv, &r.mu, &dl) != ETIMEDOUT)
    continue;
  in_time = r.done;
  pthread_mutex_unlock(&r.mu);
  if (!in_time)
    kill(kill_target, SIGKILL); /* the reaper then returns */
  pthread_join(tid, NULL);
  *status = r.status;
  pthread_cond_destroy(&r.cv);
  pthread_mutex_destroy(&r.mu);
  return in_time;
}

#endif
