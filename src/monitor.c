/* The monitor: one thread per pool that decides when more workers are
 * needed, so that neither submit nor the workers have to guess.
 *
 * Submit starts a worker only when the pool has none. A burst of short
 * tasks is then served by the workers already awake (on a machine with few
 * cores, more threads would only take CPU from the loop thread and from
 * each other), while tasks that block are noticed here: the monitor,
 * awake only while tasks wait and no worker is free, looks every tick
 * (50 us, backing off to 1 ms while the queue keeps draining). A worker
 * is stuck when it ran one task for the whole tick. If fewer tasks started
 * during a tick than were queued at its start, the oldest queued task
 * waited a whole tick (the queue is FIFO within a priority); then, for
 * each stuck worker and as long as tasks wait, the monitor wakes a parked
 * worker or starts a new one, up to max_workers. Workers that keep taking
 * short tasks are not stuck: adding threads beside them would only share
 * the same cores, so a burst of short tasks stays on the workers it has.
 * Go's sysmon answers the same question the same way: a thread held by
 * one call for a whole tick is handed off.
 *
 * A worker also looks stuck when it is merely preempted: on a machine
 * whose cores the process already keeps busy (the loop thread and the
 * workers it has), a thread is runnable but not running. Another thread
 * there would only take CPU from those, and more preemption would make
 * more workers look stuck. So in a tick in which the process used all but
 * half a core of the CPUs it may run on, a stuck worker gets help only if
 * its thread sleeps (the scheduler's state for it, from /proc), as one
 * blocked in a system call does: blocking work always gets help.
 *
 * Lock order: pool->mu only. The monitor never runs work. */
#include "internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TICK_MIN_NS 50000u
#define TICK_MAX_NS 1000000u

/* Under mu: wakes parked workers and starts new ones for n waiting tasks;
 * returns whether it did either.
 * Workers already on their way (starting, spinning, or parked and
 * signalled) take tasks before a new one could, so they count first. */
static bool add_workers_locked(uvpool_t *pool, size_t n) {
  size_t pending = pool->wake_pending ? 1 : 0;
  size_t coming = pool->nstarting + pool->nspinning + pending;
  size_t parked = pool->nparked;
  size_t wake = parked > pending ? parked - pending : 0;
  n = n > coming ? n - coming : 0;
  if (wake > n)
    wake = n;
  for (size_t i = 0; i < wake; i++)
    uv_cond_signal(&pool->work_cv);
  if (wake > 0)
    atomic_store_explicit(&pool->wake_pending, true, memory_order_relaxed);
  unsigned before = pool->nworkers;
  for (n -= wake; n > 0 && pool->nworkers < pool->opts.max_workers; n--)
    if (uvpool__spawn_locked(pool, 0) != 0)
      break; /* tried again next tick */
  return wake > 0 || pool->nworkers != before;
}

/* Under mu: remembers how many tasks each worker took, for the next
 * tick's count_stuck_locked. */
static void note_started_locked(uvpool_t *pool) {
  for (uvpool__worker_t *w = pool->workers; w != NULL; w = w->next) {
    w->mon_seen = w->started;
    w->mon_stuck = 0;
  }
}

#ifdef UVPOOL_FAULT_INJECTION
static bool (*_Atomic saturated_hook)(void);
static int (*_Atomic asleep_hook)(int tid);

void uvpool__monitor_saturated_hook(bool (*hook)(void)) {
  atomic_store(&saturated_hook, hook);
}

void uvpool__monitor_asleep_hook(int (*hook)(int tid)) {
  atomic_store(&asleep_hook, hook);
}
#endif

/* Whether thread tid sleeps (in a system call, on a lock): the scheduler
 * state in /proc/self/task/TID/stat, where R is running or waiting for a
 * CPU. Unknown counts as asleep, the case that must not go without help. */
static bool thread_asleep(int tid) {
  char path[64], buf[512];
  const char *paren;
  ssize_t n;
  int fd;
#ifdef UVPOOL_FAULT_INJECTION
  int (*hook)(int) = atomic_load(&asleep_hook);
  if (hook != NULL)
    return hook(tid) != 0;
#endif
  snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return true; /* GCOVR_EXCL_LINE: /proc is mounted where tests run */
  n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    return true; /* GCOVR_EXCL_LINE */
  buf[n] = '\0';
  /* "tid (name) S ...": the name may hold spaces and parentheses. */
  paren = strrchr(buf, ')');
  return paren == NULL || paren[1] != ' ' || paren[2] != 'R';
}

/* Whether w still runs the task it was seen stuck on this tick. */
static bool still_stuck(const uvpool__worker_t *w) {
  return w->current != NULL && w->started == w->mon_seen;
}

/* Under mu, dropped while it reads /proc (only with peek: /proc exists
 * and the answer is used): how many workers ran one task for the whole
 * tick and should get help. One asleep in that task always
 * does; one running (or preempted) only while the process leaves CPUs
 * spare, since another thread would otherwise only take CPU from it, or
 * once it has been stuck for UVPOOL__RUNNING_GRACE_TICKS ticks: a task
 * that spins until a queued one runs must not wait forever, and queued
 * tasks wait behind a long computation for a bounded time.
 * While mu is dropped, workers may finish their tasks, leave or start:
 * the answer counts only workers still stuck once mu is back, so that no
 * decision rests on what was true before. */
static size_t count_stuck_locked(uvpool_t *pool, bool saturated, bool peek) {
  /* One read costs some microseconds; past this many, as if asleep. */
  enum { PEEK_MAX = 16 };
  int tids[PEEK_MAX];
  unsigned ids[PEEK_MAX];
  bool asleep[PEEK_MAX];
  size_t n = 0, help = 0;
  for (uvpool__worker_t *w = pool->workers; w != NULL; w = w->next) {
    w->mon_help = false;
    if (w->current == NULL || w->started != w->mon_seen) {
      w->mon_stuck = 0;
    } else if (++w->mon_stuck < UVPOOL__RUNNING_GRACE_TICKS && saturated &&
               peek && n < PEEK_MAX) {
      ids[n] = w->id;
      tids[n++] = w->ktid;
    } else {
      w->mon_help = true; /* past the grace, PEEK_MAX, or not peeking */
      help++;
    }
    w->mon_seen = w->started;
  }
  if (n == 0)
    return help;
  uv_mutex_unlock(&pool->mu);
  for (size_t i = 0; i < n; i++)
    asleep[i] = thread_asleep(tids[i]);
  uv_mutex_lock(&pool->mu);
  help = 0;
  for (uvpool__worker_t *w = pool->workers; w != NULL; w = w->next) {
    for (size_t i = 0; i < n && !w->mon_help; i++)
      w->mon_help = ids[i] == w->id && asleep[i];
    if (w->mon_help && still_stuck(w))
      help++;
  }
  return help;
}

/* CPU time used by the whole process, all threads. 0 if unknown. */
static uint64_t process_cpu_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
    return 0; /* GCOVR_EXCL_LINE: the process clock always exists */
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU use over one tick, to tell stuck workers from preempted ones. */
typedef struct {
  uint64_t wall, cpu;
  unsigned ncpu;
} cpu_meter_t;

static void meter_start(cpu_meter_t *m) {
  m->wall = uv_hrtime();
  m->cpu = process_cpu_ns();
}

/* Whether the process kept all but half a core of its CPUs busy since the
 * last call, a tick ago (see the top of this file); restarts the
 * measurement. */
static bool meter_saturated(cpu_meter_t *m) {
  uint64_t wall = m->wall, cpu = m->cpu;
  meter_start(m);
#ifdef UVPOOL_FAULT_INJECTION
  bool (*hook)(void) = atomic_load(&saturated_hook);
  if (hook != NULL)
    return hook();
#endif
  wall = m->wall - wall;
  cpu = m->cpu - cpu;
  return cpu + wall / 2 >= (uint64_t)m->ncpu * wall;
}

/* Under mu: whether a task waits that no free worker will take. The
 * monitor only counts the inbox: moving it is the workers' job, and doing
 * it here would hold mu while walking lines the loop thread just wrote. */
static bool backlog_locked(uvpool_t *pool) {
  return (pool->nqueued > 0 || !uvpool__inbox_empty(pool)) &&
         pool->nspinning == 0 && pool->nparked == 0;
}

static void monitor_main(void *arg) {
  uvpool_t *pool = arg;
  char name[16];
  uint64_t tick = TICK_MIN_NS;
  uint64_t pops = 0;
  size_t queued = 0;
  bool watching = false;
  cpu_meter_t meter;
  /* Without /proc (some sandboxes) every stuck worker counts as asleep. */
  bool have_proc = access("/proc/self/task", R_OK) == 0;
  meter.ncpu = uv_available_parallelism();
  snprintf(name, sizeof(name), "%.11s-mon", pool->name);
  pthread_setname_np(pthread_self(), name);
  uv_mutex_lock(&pool->mu);
  while (!pool->mon_stop) {
    size_t now_queued, stuck;
    bool stalled;
    if (!watching) {
      /* Sleep until a submit finds every worker busy. Counting itself
       * asleep before the last look pairs with uvpool__kick. */
      atomic_store(&pool->mon_sleeping, true);
      if (!backlog_locked(pool))
        uv_cond_wait(&pool->mon_cv, &pool->mu);
      atomic_store(&pool->mon_sleeping, false);
      watching = true;
      tick = TICK_MIN_NS;
      pops = pool->npopped;
      queued = uvpool__runnable_estimate(pool);
      note_started_locked(pool);
      meter_start(&meter);
      continue;
    }
    (void)uv_cond_timedwait(&pool->mon_cv, &pool->mu, tick);
    if (pool->mon_stop)
      break;
    now_queued = uvpool__runnable_estimate(pool);
    if (now_queued == 0) {
      watching = false;
      continue;
    }
    /* The queue did not drain: the oldest task waited a whole tick. */
    stalled = pool->npopped - pops < queued && !pool->forked;
    stuck =
        count_stuck_locked(pool, meter_saturated(&meter), have_proc && stalled);
    if (pool->mon_stop)
      break;
    /* Again: mu may have been dropped, and a worker may have taken what
     * waited. */
    now_queued = uvpool__runnable_estimate(pool);
    if (stalled && stuck > 0) {
      /* Back to short ticks only if it changed something: at max_workers
       * with every worker stuck, polling fast would only burn CPU. */
      if (add_workers_locked(pool, stuck < now_queued ? stuck : now_queued))
        tick = TICK_MIN_NS;
    } else if (tick < TICK_MAX_NS) {
      tick *= 2;
    }
    pops = pool->npopped;
    queued = now_queued;
    uvpool__hook(UVPOOL__HOOK_MONITOR_TICK, pool);
  }
  uv_mutex_unlock(&pool->mu);
}

int uvpool__monitor_start_locked(uvpool_t *pool) {
  int rc;
  /* Not once stopped for good: after a close finished or exit began. */
  if (pool->mon_running || pool->mon_stop || atomic_load(&pool->exiting))
    return 0;
  rc = uvpool__thread_start_locked(pool, &pool->mon_tid, 0, monitor_main, pool);
  if (rc == 0)
    pool->mon_running = true;
  return rc;
}

/* Under mu: a task was queued while every worker may be busy. */
void uvpool__monitor_wake_locked(uvpool_t *pool) {
  if (atomic_load(&pool->mon_sleeping)) {
    atomic_store(&pool->mon_sleeping, false);
    uv_cond_signal(&pool->mon_cv);
  }
}

/* Stops and joins the monitor, if any. Not under mu. */
void uvpool__monitor_stop(uvpool_t *pool) {
  bool running;
  uv_mutex_lock(&pool->mu);
  running = pool->mon_running;
  pool->mon_stop = true;
  pool->mon_running = false;
  uv_cond_signal(&pool->mon_cv);
  uv_mutex_unlock(&pool->mu);
  if (running)
    uvpool__thread_join(pool, &pool->mon_tid);
}
