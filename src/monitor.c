/* The monitor: one thread per group that decides when more workers are
 * needed, so that neither submit nor the workers have to guess.
 *
 * Submit starts a worker only when the group has none. A burst of short
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
 * The monitor measures (ticks, CPU use, /proc); what to make of it is the
 * supply's rule (supply.c: uvpool__supply_stuck_locked, _add_locked).
 * Lock order: g->mu only. The monitor never runs work. */
#include "internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TICK_MIN_NS 50000u
#define TICK_MAX_NS 1000000u

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

bool uvpool__monitor_running(const uvpool__group_t *g) {
  return atomic_load_explicit(&((uvpool__group_t *)g)->monitor.svc.running,
                              memory_order_relaxed);
}

bool uvpool__monitor_sleeping(const uvpool__group_t *g) {
  return atomic_load(&((uvpool__group_t *)g)->monitor.sleeping);
}

/* Under mu, at the start of a watch: what the first tick compares with. */
typedef struct {
  uint64_t tick; /* ns */
  uint64_t pops; /* tasks taken from the run queue */
  size_t queued; /* tasks waiting */
  cpu_meter_t meter;
} watch_t;

static void watch_begin(uvpool__group_t *g, watch_t *wt) {
  wt->tick = TICK_MIN_NS;
  wt->pops = g->q.npopped;
  wt->queued = uvpool__runnable_estimate(g);
  uvpool__supply_note_started_locked(g);
  meter_start(&wt->meter);
}

/* Under mu, one tick later: asks the supply for help where the oldest
 * task waited a whole tick behind stuck workers. Returns false when
 * nothing waits any more (the watch ends). */
static bool watch_tick(uvpool__group_t *g, watch_t *wt, bool have_proc) {
  size_t now_queued = uvpool__runnable_estimate(g), stuck;
  bool stalled, changed = false;
  if (now_queued == 0)
    return false;
  /* The queue did not drain: the oldest task waited a whole tick. */
  stalled = g->q.npopped - wt->pops < wt->queued && !g->forked;
  stuck = uvpool__supply_stuck_locked(g, meter_saturated(&wt->meter),
                                      have_proc && stalled, thread_asleep);
  if (g->monitor.svc.stop)
    return false;
  /* Again: mu may have been dropped, and a worker may have taken what
   * waited. */
  now_queued = uvpool__runnable_estimate(g);
  if (stalled && stuck > 0)
    changed =
        uvpool__supply_add_locked(g, stuck < now_queued ? stuck : now_queued);
  /* Back to short ticks only if that changed something: at max_workers,
   * or with the workers it would add already on their way, polling fast
   * would only burn CPU. */
  if (changed)
    wt->tick = TICK_MIN_NS;
  else if (wt->tick < TICK_MAX_NS)
    wt->tick *= 2;
  wt->pops = g->q.npopped;
  wt->queued = now_queued;
  return true;
}

/* Under mu: sleeps until woken, or until a parked worker's idle timeout
 * (then wakes the workers it is for). One thread keeps that time for
 * every worker: a timed wait on each park costs a timer, which on a VM
 * costs as much as the wake-up itself. */
static void sleep_locked(uvpool__group_t *g) {
  uint64_t due = uvpool__supply_retire_due_locked(g), now;
  if (due == 0) {
    uv_cond_wait(&g->monitor.svc.cv, &g->mu);
    return;
  }
  now = uv_hrtime();
  if (due > now)
    (void)uv_cond_timedwait(&g->monitor.svc.cv, &g->mu, due - now);
  uvpool__supply_retire_locked(g, uv_hrtime());
}

static void monitor_main(void *arg) {
  uvpool__group_t *g = arg;
  uvpool__monitor_t *m = &g->monitor;
  bool watching = false;
  watch_t wt;
  /* Without /proc (some sandboxes) every stuck worker counts as asleep. */
  bool have_proc = access("/proc/self/task", R_OK) == 0;
  wt.meter.ncpu = uv_available_parallelism();
  uvpool__thread_name(g, "-mon");
  uv_mutex_lock(&g->mu);
  while (!m->svc.stop) {
    if (!watching) {
      /* Sleep until a submit finds every worker busy, or until a parked
       * worker has been idle for its timeout (the monitor keeps that time
       * for them). Counting itself asleep before the last look pairs
       * with uvpool__supply_kick. */
      atomic_store(&m->sleeping, true);
      if (!uvpool__supply_backlog_locked(g))
        sleep_locked(g);
      atomic_store(&m->sleeping, false);
      if (!uvpool__supply_backlog_locked(g))
        continue; /* a retirement round, or the backlog is gone */
      watching = true;
      watch_begin(g, &wt);
      continue;
    }
    (void)uv_cond_timedwait(&m->svc.cv, &g->mu, wt.tick);
    if (m->svc.stop)
      break;
    watching = watch_tick(g, &wt, have_proc);
    if (watching)
      uvpool__hook(UVPOOL__HOOK_MONITOR_TICK, g->root);
  }
  uv_mutex_unlock(&g->mu);
}

int uvpool__monitor_init(uvpool__group_t *g) {
  atomic_init(&g->monitor.sleeping, false);
  return uvpool__service_init(&g->monitor.svc);
}

void uvpool__monitor_destroy(uvpool__group_t *g) {
  uvpool__service_destroy(&g->monitor.svc);
}

/* Not once stopped for good: after the group's last close or exit. */
int uvpool__monitor_start_locked(uvpool__group_t *g) {
  if (g->exiting)
    return 0;
  return uvpool__service_start_locked(g, &g->monitor.svc, monitor_main);
}

/* Under mu: a task was queued while every worker may be busy. */
void uvpool__monitor_wake_locked(uvpool__group_t *g) {
  uvpool__monitor_t *m = &g->monitor;
  if (atomic_load(&m->sleeping)) {
    atomic_store(&m->sleeping, false);
    uv_cond_signal(&m->svc.cv);
  }
}

/* Stops and joins the monitor, if any. Not under mu. */
void uvpool__monitor_stop(uvpool__group_t *g) {
  uvpool__service_stop(g, &g->monitor.svc);
}

void uvpool__monitor_fork_child(uvpool__group_t *g) {
  atomic_store(&g->monitor.sleeping, false);
  uvpool__service_fork_child(&g->monitor.svc);
}
