/* Waits for a child process for at most a bound, without polling and
 * without pidfd_open (which valgrind does not know): a thread blocks in
 * waitpid() and signals a condition variable that the caller waits on
 * with a deadline. On timeout the caller's kill_target is killed and the
 * child reaped. Returns true if the child ended within the bound. */
#ifndef UVPOOL_TEST_BOUNDED_WAIT_H
#define UVPOOL_TEST_BOUNDED_WAIT_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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

/* Prints /proc/PID/task/TID/NAME to stderr, if it can be read. */
static void bw_print_proc(pid_t pid, const char *tid, const char *name) {
  char path[128], buf[4096];
  ssize_t n;
  int fd;
  snprintf(path, sizeof(path), "/proc/%d/task/%s/%s", (int)pid, tid, name);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    return;
  buf[n] = '\0';
  fprintf(stderr, "  thread %s %s: %s%s", tid, name, buf,
          buf[n - 1] == '\n' ? "" : "\n");
}

/* A child that overran its bound is about to be killed: print where each
 * of its threads waits (system call, kernel wait channel and stack), so
 * that a hang seen once can be told from a slow machine. */
static void bw_report_hang(pid_t pid) {
  char path[64];
  struct dirent *e;
  DIR *d;
  snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
  d = opendir(path);
  if (d == NULL)
    return;
  fprintf(stderr, "bounded_wait: pid %d overran its bound:\n", (int)pid);
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    bw_print_proc(pid, e->d_name, "stat");
    bw_print_proc(pid, e->d_name, "syscall");
    bw_print_proc(pid, e->d_name, "wchan");
    bw_print_proc(pid, e->d_name, "stack");
  }
  closedir(d);
  /* The user-space stacks too, where gdb is installed. */
  if (access("/usr/bin/gdb", X_OK) == 0) {
    char cmd[160];
    snprintf(cmd, sizeof(cmd),
             "timeout 60 /usr/bin/gdb -nx -batch -p %d "
             "-ex 'thread apply all bt' </dev/null 1>&2",
             (int)pid);
    if (system(cmd) != 0)
      fprintf(stderr, "bounded_wait: gdb could not read pid %d\n", (int)pid);
  }
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
  if (!in_time) {
    bw_report_hang(pid);
    kill(kill_target, SIGKILL); /* the reaper then returns */
  }
  pthread_join(tid, NULL);
  *status = r.status;
  pthread_cond_destroy(&r.cv);
  pthread_mutex_destroy(&r.mu);
  return in_time;
}

#endif
