/* uvpool_bench: uvpool against libuv's own uv_queue_work, in one process.
 *
 * Each workload runs A (uvpool) then B (uv_queue_work), round after round,
 * so that a noisy neighbour hits both sides alike; the medians of the
 * rounds are compared. One untimed warm-up per side comes first, so that
 * thread start-up, slab growth and page faults are not charged to round 1.
 *
 * Ratios are uvpool / uv_queue_work. For rates (tasks/s) > 1 means uvpool
 * is better; for times and sizes (us, ms, bytes) the raw ratio is printed,
 * so < 1 means uvpool is better.
 *
 * Allocation counting: the target is linked with -Wl,--wrap for malloc and
 * friends, which reroutes every call in this program and in the static
 * uvpool library through the counters below; libuv's own allocations are
 * routed there too, through uv_replace_allocator. The counts are exact.
 *
 * The blocking workload needs UV_THREADPOOL_SIZE=64, which libuv reads
 * once, at its first uv_queue_work. A 64-thread libuv pool would distort
 * the other workloads (libuv's default is 4), so that workload runs in a
 * child process (this program, re-executed) where both sides get 64.
 *
 * SPDX-License-Identifier: MIT
 */
#include <uvpool.h>

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <malloc.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- allocation counting ------------------------------------------------
 * Relaxed atomics: workers allocate too, and only totals matter. */
static _Atomic uint64_t alloc_calls;
static _Atomic uint64_t alloc_bytes;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
int __real_posix_memalign(void **p, size_t align, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t align, size_t n);
int __wrap_posix_memalign(void **p, size_t align, size_t n);

static void count_alloc(size_t n) {
  atomic_fetch_add_explicit(&alloc_calls, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&alloc_bytes, n, memory_order_relaxed);
}

void *__wrap_malloc(size_t n) {
  count_alloc(n);
  return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size) {
  count_alloc(n * size);
  return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n) {
  count_alloc(n);
  return __real_realloc(p, n);
}

void *__wrap_aligned_alloc(size_t align, size_t n) {
  count_alloc(n);
  return __real_aligned_alloc(align, n);
}

int __wrap_posix_memalign(void **p, size_t align, size_t n) {
  count_alloc(n);
  return __real_posix_memalign(p, align, n);
}

static uint64_t allocs_now(void) {
  return atomic_load_explicit(&alloc_calls, memory_order_relaxed);
}

/* ---- options and helpers -------------------------------------------- */

enum { SIDE_BOTH, SIDE_UVPOOL, SIDE_LIBUV };

static struct {
  bool json, quick, strict, child;
  int rounds;
  int side;
  unsigned spin_us; /* UVPOOL_SPIN_DEFAULT unless --spin-us */
  unsigned workers; /* max_workers of default pools; 0: the default */
  size_t tasks;     /* 0: the workload's own count */
  char only[256];   /* comma separated workload names, or "" for all */
} opt = {.rounds = 0, .side = SIDE_BOTH, .spin_us = UVPOOL_SPIN_DEFAULT};

static uv_loop_t loop;

static void die(const char *what, int rc) {
  fprintf(stderr, "uvpool_bench: %s: %s\n", what,
          rc < 0 ? uv_strerror(rc) : strerror(rc));
  exit(2);
}

static void check(int rc, const char *what) {
  if (rc != 0)
    die(what, rc);
}

static bool selected(const char *name) {
  size_t n = strlen(name);
  const char *p = opt.only;
  if (opt.only[0] == '\0')
    return true;
  while ((p = strstr(p, name)) != NULL) {
    if ((p == opt.only || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
      return true;
    p += n;
  }
  return false;
}

static bool run_a(void) { return opt.side != SIDE_LIBUV; }
static bool run_b(void) { return opt.side != SIDE_UVPOOL; }

static size_t tasks_or(size_t full, size_t quick) {
  if (opt.tasks != 0)
    return opt.tasks;
  return opt.quick ? quick : full;
}

static double ns_to_s(uint64_t ns) { return (double)ns / 1e9; }

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

static double median(const double *v, int n) {
  double s[64];
  if (n <= 0)
    return NAN;
  memcpy(s, v, sizeof(double) * (size_t)n);
  qsort(s, (size_t)n, sizeof(double), cmp_double);
  return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Nearest-rank percentile of a sorted array. */
static uint64_t percentile(const uint64_t *sorted, size_t n, double q) {
  size_t rank = (size_t)ceil(q * (double)n);
  return sorted[rank == 0 ? 0 : (rank > n ? n : rank) - 1];
}

static double cpu_seconds(int who) {
  struct rusage ru;
  getrusage(who, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* ---- noise accounting ---------------------------------------------------
 * Busy time of the whole machine (from /proc/stat) minus this process's
 * own CPU time is what other processes took meanwhile: a run with much of
 * it is suspect. */
typedef struct {
  double busy_s, total_s, own_s;
} noise_t;

static noise_t noise_now(void) {
  noise_t n = {0, 0, 0};
  unsigned long long v[8] = {0};
  double hz = (double)sysconf(_SC_CLK_TCK);
  FILE *f = fopen("/proc/stat", "r");
  if (f != NULL) {
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
               &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
      unsigned long long idle = v[3] + v[4];
      unsigned long long all = 0;
      for (int i = 0; i < 8; i++)
        all += v[i];
      n.busy_s = (double)(all - idle) / hz;
      n.total_s = (double)all / hz;
    }
    fclose(f);
  }
  n.own_s = cpu_seconds(RUSAGE_SELF) + cpu_seconds(RUSAGE_CHILDREN);
  return n;
}

/* Percent of the machine's capacity used by other processes. */
static double noise_pct(noise_t a, noise_t b) {
  double total = b.total_s - a.total_s;
  double other = (b.busy_s - a.busy_s) - (b.own_s - a.own_s);
  if (total <= 0)
    return 0;
  return other > 0 ? 100.0 * other / total : 0;
}

/* ---- results --------------------------------------------------------- */

#define MAX_ROUNDS 64
#define MAX_RESULTS 64

/* One compared quantity: the medians of both sides and their ratio.
 * Doubles first, flags last: no padding holes. */
typedef struct {
  const char *workload, *metric, *unit;
  double a[MAX_ROUNDS], b[MAX_ROUNDS];
  double med_a, med_b, ratio;
  double target;
  double noise; /* percent of the machine other processes used */
  double secs;  /* wall time of the whole workload, warm-up included */
  int na, nb;
  bool higher_better; /* rate: ratio > 1 is better; else ratio < 1 is */
  /* Target on the ratio, or on the uvpool value when on_value is set. */
  bool has_target, on_value, target_ge;
  bool met;
  char note[200];
} result_t;

static result_t results[MAX_RESULTS];
static int nresults;

static result_t *result_new(const char *workload, const char *metric,
                            const char *unit, bool higher_better) {
  result_t *r;
  if (nresults == MAX_RESULTS)
    die("too many results", EINVAL);
  r = &results[nresults++];
  memset(r, 0, sizeof(*r));
  r->workload = workload;
  r->metric = metric;
  r->unit = unit;
  r->higher_better = higher_better;
  r->med_a = r->med_b = r->ratio = NAN;
  return r;
}

static void result_target(result_t *r, bool on_value, bool ge, double t) {
  r->has_target = true;
  r->on_value = on_value;
  r->target_ge = ge;
  r->target = t;
}

static void result_finish(result_t *r, double noise) {
  double v;
  r->noise = noise;
  if (r->na > 0)
    r->med_a = median(r->a, r->na);
  if (r->nb > 0)
    r->med_b = median(r->b, r->nb);
  if (r->na > 0 && r->nb > 0 && r->med_b != 0)
    r->ratio = r->med_a / r->med_b;
  if (!r->has_target)
    return;
  v = r->on_value ? r->med_a : r->ratio;
  r->met = !isnan(v) && (r->target_ge ? v >= r->target : v <= r->target);
}

/* ---- shared work functions ------------------------------------------ */

static int empty_work(void *arg, void **result) {
  (void)arg;
  (void)result;
  return 0;
}

static void lw_empty(uv_work_t *req) { (void)req; }

static uint64_t done_count;

static void count_done(uvpool_future_t *f, void *data) {
  (void)f;
  (void)data;
  done_count++;
}

static void lw_count_after(uv_work_t *req, int status) {
  (void)req;
  (void)status;
  done_count++;
}

static uvpool_t *pool_new(const uvpool_options_t *o) {
  uvpool_options_t d;
  uvpool_t *pool;
  if (o == NULL) {
    uvpool_options_init(&d);
    d.spin_us = opt.spin_us;
    d.max_workers = opt.workers;
    o = &d;
  }
  check(uvpool_new(&loop, o, &pool), "uvpool_new");
  return pool;
}

/* Closes the pool and runs the loop until it is gone. */
static void pool_close(uvpool_t *pool) {
  check(uvpool_close(pool, 0, NULL, NULL), "uvpool_close");
  uv_run(&loop, UV_RUN_DEFAULT);
}

/* ---- 1, 2: throughput and fire_and_forget --------------------------- */

/* Seconds from the first submit until the loop delivered the last
 * completion (uv_run returns once nothing is outstanding). */
static double uvpool_batch(uvpool_t *pool, size_t n, bool with_future) {
  uint64_t t0;
  done_count = 0;
  t0 = uv_hrtime();
  for (size_t i = 0; i < n; i++) {
    uvpool_future_t *f;
    if (!with_future) {
      check(uvpool_submit(pool, empty_work, NULL, NULL), "uvpool_submit");
      continue;
    }
    check(uvpool_submit(pool, empty_work, NULL, &f), "uvpool_submit");
    check(uvpool_future_on_done(f, count_done, NULL), "on_done");
    uvpool_future_unref(f);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  if (with_future && done_count != n)
    die("uvpool: lost callbacks", EIO);
  return ns_to_s(uv_hrtime() - t0);
}

static double libuv_batch(uv_work_t *reqs, size_t n) {
  uint64_t t0;
  done_count = 0;
  t0 = uv_hrtime();
  for (size_t i = 0; i < n; i++)
    check(uv_queue_work(&loop, &reqs[i], lw_empty, lw_count_after),
          "uv_queue_work");
  uv_run(&loop, UV_RUN_DEFAULT);
  if (done_count != n)
    die("libuv: lost callbacks", EIO);
  return ns_to_s(uv_hrtime() - t0);
}

/* Mallocs per task over the timed uvpool rounds: the steady state. */
static double mallocs_per_task_throughput = NAN;
static double mallocs_per_task_ff = NAN;
static double mallocs_per_task_latency = NAN;
static double libuv_mallocs_per_task = NAN;

static void bench_batch(const char *name, bool with_future, double target) {
  size_t n = tasks_or(1000000, 200000);
  result_t *r = result_new(name, "rate", "tasks/s", true);
  uv_work_t *reqs = run_b() ? calloc(n, sizeof(*reqs)) : NULL;
  uvpool_t *pool = run_a() ? pool_new(NULL) : NULL;
  uint64_t a_allocs = 0, b_allocs = 0;
  noise_t n0;
  if (run_b() && reqs == NULL)
    die("calloc", ENOMEM);
  result_target(r, false, true, target);
  if (pool != NULL)
    uvpool_batch(pool, n, with_future);
  if (reqs != NULL)
    libuv_batch(reqs, n);
  n0 = noise_now();
  for (int i = 0; i < opt.rounds; i++) {
    uint64_t c0 = allocs_now();
    if (pool != NULL) {
      r->a[r->na++] = (double)n / uvpool_batch(pool, n, with_future);
      a_allocs += allocs_now() - c0;
    }
    c0 = allocs_now();
    if (reqs != NULL) {
      r->b[r->nb++] = (double)n / libuv_batch(reqs, n);
      b_allocs += allocs_now() - c0;
    }
  }
  result_finish(r, noise_pct(n0, noise_now()));
  snprintf(r->note, sizeof(r->note), "%zu tasks from the loop thread%s", n,
           with_future ? ", future + on_done + unref" : ", out == NULL");
  if (pool != NULL) {
    double m = (double)a_allocs / ((double)n * opt.rounds);
    if (with_future)
      mallocs_per_task_throughput = m;
    else
      mallocs_per_task_ff = m;
    pool_close(pool);
  }
  if (reqs != NULL)
    libuv_mallocs_per_task = (double)b_allocs / ((double)n * opt.rounds);
  free(reqs);
}

/* ---- batches: uvpool_submit_many against one submit per task ------------
 * The same million empty fire-and-forget tasks, from the loop thread:
 * side A in batches of MANY_BATCH through uvpool_submit_many, side B one
 * uvpool_submit each (the fire_and_forget workload's uvpool side). The
 * ratio is the batch's gain; uv_queue_work has no batch. */

#define MANY_BATCH 1000

static void *many_args[MANY_BATCH];

/* Seconds until the last task was delivered; *submit_s: until the last
 * submit call returned. */
static double many_run(uvpool_t *pool, size_t n, bool batched,
                       double *submit_s) {
  uint64_t t0 = uv_hrtime();
  for (size_t i = 0; i < n; i += MANY_BATCH) {
    size_t k = n - i < MANY_BATCH ? n - i : MANY_BATCH;
    if (batched) {
      check(uvpool_submit_many(pool, empty_work, many_args, k, NULL),
            "uvpool_submit_many");
      continue;
    }
    for (size_t j = 0; j < k; j++)
      check(uvpool_submit(pool, empty_work, NULL, NULL), "uvpool_submit");
  }
  *submit_s = ns_to_s(uv_hrtime() - t0);
  uv_run(&loop, UV_RUN_DEFAULT);
  return ns_to_s(uv_hrtime() - t0);
}

static void bench_many(void) {
  size_t n = tasks_or(1000000, 200000);
  result_t *r = result_new("many", "rate", "tasks/s", true);
  result_t *rs = result_new("many", "submit rate", "tasks/s", true);
  uvpool_t *pool;
  double sub;
  noise_t n0;
  if (!run_a())
    return;
  pool = pool_new(NULL);
  result_target(r, false, true, 2.0);
  many_run(pool, n, true, &sub); /* warm */
  many_run(pool, n, false, &sub);
  n0 = noise_now();
  for (int i = 0; i < opt.rounds; i++) {
    r->a[r->na++] = (double)n / many_run(pool, n, true, &sub);
    rs->a[rs->na++] = (double)n / sub;
    r->b[r->nb++] = (double)n / many_run(pool, n, false, &sub);
    rs->b[rs->nb++] = (double)n / sub;
  }
  result_finish(r, noise_pct(n0, noise_now()));
  result_finish(rs, r->noise);
  snprintf(r->note, sizeof(r->note),
           "%zu empty tasks from the loop thread in batches of %d "
           "(uvpool_submit_many) vs one uvpool_submit each, out == NULL",
           n, MANY_BATCH);
  snprintf(rs->note, sizeof(rs->note),
           "the same, until the last submit call returned");
  pool_close(pool);
}

/* ---- many loops: one group against a pool per loop -----------------------
 * ML_LOOPS loops, each run by a thread of its own, each with a pool; each
 * keeps ML_WINDOW empty tasks in flight with uvpool_submit_cb, submitting
 * the next from the callback of the last (a server's shape), until it
 * submitted its share. Side A: the pools form one group (the first pool's
 * default options, the others share it); side B: a pool per loop, each
 * with the default options, as before groups. Both sides are uvpool:
 * uv_queue_work serves every loop from one pool and is the throughput
 * workload's side B. */

#define ML_LOOPS 2
#define ML_WINDOW 64

typedef struct {
  uv_loop_t loop;
  uvpool_t *pool;
  size_t left; /* to submit */
  uv_thread_t tid;
  int index;
} ml_t;

static ml_t ml[ML_LOOPS];
static uv_sem_t ml_root, ml_ready, ml_go;
static bool ml_group;

static void ml_done(uvpool_future_t *f, void *data) {
  ml_t *m = data;
  (void)f;
  if (m->left > 0) {
    m->left--;
    check(uvpool_submit_cb(m->pool, empty_work, NULL, ml_done, m),
          "uvpool_submit_cb");
  }
}

/* Each loop's thread makes its loop and pool (it is then their thread);
 * the group's other pools wait for the first. */
static void ml_thread(void *arg) {
  ml_t *m = arg;
  uvpool_options_t o;
  check(uv_loop_init(&m->loop), "uv_loop_init");
  uvpool_options_init(&o);
  if (ml_group && m->index > 0) {
    uv_sem_wait(&ml_root);
    o.share = ml[0].pool;
  } else {
    o.spin_us = opt.spin_us;
  }
  check(uvpool_new(&m->loop, &o, &m->pool), "uvpool_new");
  if (ml_group && m->index == 0)
    for (int i = 1; i < ML_LOOPS; i++)
      uv_sem_post(&ml_root);
  uv_sem_post(&ml_ready);
  uv_sem_wait(&ml_go);
  for (int i = 0; i < ML_WINDOW && m->left > 0; i++, m->left--)
    check(uvpool_submit_cb(m->pool, empty_work, NULL, ml_done, m),
          "uvpool_submit_cb");
  uv_run(&m->loop, UV_RUN_DEFAULT);
}

/* Tasks per second over all loops; CPU per task in *cpu_us. */
static double ml_run(bool group, size_t n, double *cpu_us) {
  double c0;
  uint64_t t0;
  ml_group = group;
  check(uv_sem_init(&ml_root, 0), "uv_sem_init");
  check(uv_sem_init(&ml_ready, 0), "uv_sem_init");
  check(uv_sem_init(&ml_go, 0), "uv_sem_init");
  for (int i = 0; i < ML_LOOPS; i++) {
    ml[i].index = i;
    ml[i].left = n / ML_LOOPS;
    check(uv_thread_create(&ml[i].tid, ml_thread, &ml[i]), "thread");
  }
  for (int i = 0; i < ML_LOOPS; i++)
    uv_sem_wait(&ml_ready);
  c0 = cpu_seconds(RUSAGE_SELF);
  t0 = uv_hrtime();
  for (int i = 0; i < ML_LOOPS; i++)
    uv_sem_post(&ml_go);
  for (int i = 0; i < ML_LOOPS; i++)
    check(uv_thread_join(&ml[i].tid), "join");
  t0 = uv_hrtime() - t0;
  *cpu_us = (cpu_seconds(RUSAGE_SELF) - c0) * 1e6 / (double)n;
  /* The loops move to this thread for the close, as libuv allows. */
  for (int i = ML_LOOPS - 1; i >= 0; i--) {
    check(uvpool_close(ml[i].pool, 0, NULL, NULL), "uvpool_close");
    uv_run(&ml[i].loop, UV_RUN_DEFAULT);
  }
  for (int i = 0; i < ML_LOOPS; i++)
    check(uv_loop_close(&ml[i].loop), "uv_loop_close");
  uv_sem_destroy(&ml_root);
  uv_sem_destroy(&ml_ready);
  uv_sem_destroy(&ml_go);
  return (double)n / ns_to_s(t0);
}

static void bench_many_loops(void) {
  size_t n = tasks_or(400000, 40000);
  result_t *r = result_new("many_loops", "rate", "tasks/s", true);
  result_t *rc = result_new("many_loops", "cpu/task", "us", false);
  double cpu;
  noise_t n0;
  if (!run_a())
    return;
  result_target(r, false, true, 1.0);
  (void)ml_run(true, n / 10, &cpu);
  (void)ml_run(false, n / 10, &cpu);
  n0 = noise_now();
  for (int i = 0; i < opt.rounds; i++) {
    r->a[r->na++] = ml_run(true, n, &cpu);
    rc->a[rc->na++] = cpu;
    r->b[r->nb++] = ml_run(false, n, &cpu);
    rc->b[rc->nb++] = cpu;
  }
  result_finish(r, noise_pct(n0, noise_now()));
  result_finish(rc, r->noise);
  snprintf(r->note, sizeof(r->note),
           "%d loops in %d threads, %d in flight each, %zu empty tasks in "
           "all with uvpool_submit_cb: one group (A) vs a pool per loop (B)",
           ML_LOOPS, ML_LOOPS, ML_WINDOW, n);
  snprintf(rc->note, sizeof(rc->note), "the same, process CPU per task");
}

/* ---- uv_queue_work ping-pong ---------------------------------------------
 * One request queued again from its own after_work_cb, as libuv's
 * benchmark-queue-work does: through uvpool_queue_work and through
 * uv_queue_work, with the same code. */

static struct {
  uvpool_t *pool; /* NULL: libuv's own pool */
  uv_work_t req;
  size_t left;
} pp;

static void pp_after(uv_work_t *req, int status);

static void pp_queue(void) {
  if (pp.pool != NULL)
    check(uvpool_queue_work(pp.pool, &pp.req, lw_empty, pp_after),
          "uvpool_queue_work");
  else
    check(uv_queue_work(&loop, &pp.req, lw_empty, pp_after), "uv_queue_work");
}

static void pp_after(uv_work_t *req, int status) {
  (void)req;
  if (status != 0)
    die("queue_work_ping_pong: status", EIO);
  if (--pp.left > 0)
    pp_queue();
}

/* Seconds per round trip, and process CPU per round trip in out[1]. */
static double pp_run(uvpool_t *pool, size_t n, double *cpu_us) {
  double c0 = cpu_seconds(RUSAGE_SELF);
  uint64_t t0 = uv_hrtime();
  pp.pool = pool;
  pp.left = n;
  pp_queue();
  uv_run(&loop, UV_RUN_DEFAULT);
  if (pp.left != 0)
    die("queue_work_ping_pong: lost callbacks", EIO);
  *cpu_us = (cpu_seconds(RUSAGE_SELF) - c0) * 1e6 / (double)n;
  return (double)(uv_hrtime() - t0) / 1e3 / (double)n;
}

static void bench_queue_work_ping_pong(void) {
  size_t n = tasks_or(20000, 5000);
  result_t *r = result_new("queue_work_ping_pong", "round trip", "us", false);
  result_t *rc = result_new("queue_work_ping_pong", "cpu/task", "us", false);
  uvpool_t *pool = run_a() ? pool_new(NULL) : NULL;
  double cpu;
  noise_t n0;
  result_target(r, false, false, 1.0);
  if (pool != NULL)
    (void)pp_run(pool, n / 10, &cpu);
  if (run_b())
    (void)pp_run(NULL, n / 10, &cpu);
  n0 = noise_now();
  for (int i = 0; i < opt.rounds; i++) {
    if (pool != NULL) {
      r->a[r->na++] = pp_run(pool, n, &cpu);
      rc->a[rc->na++] = cpu;
    }
    if (run_b()) {
      r->b[r->nb++] = pp_run(NULL, n, &cpu);
      rc->b[rc->nb++] = cpu;
    }
  }
  result_finish(r, noise_pct(n0, noise_now()));
  result_finish(rc, r->noise);
  snprintf(r->note, sizeof(r->note),
           "one uv_work_t queued again from its after_work_cb, %zu times, "
           "mean round trip",
           n);
  memcpy(rc->note, r->note, sizeof(rc->note));
  if (pool != NULL)
    pool_close(pool);
}

/* ---- 3: latency -------------------------------------------------------- */

static struct {
  uvpool_t *pool;
  uv_work_t req;
  uint64_t *lat;
  size_t i, n;
  uint64_t t0;
} lt;

static void lat_uvpool_done(uvpool_future_t *f, void *data);

static void lat_uvpool_submit(void) {
  uvpool_future_t *f;
  lt.t0 = uv_hrtime();
  check(uvpool_submit(lt.pool, empty_work, NULL, &f), "uvpool_submit");
  check(uvpool_future_on_done(f, lat_uvpool_done, NULL), "on_done");
  uvpool_future_unref(f);
}

static void lat_uvpool_done(uvpool_future_t *f, void *data) {
  (void)f;
  (void)data;
  lt.lat[lt.i++] = uv_hrtime() - lt.t0;
  if (lt.i < lt.n)
    lat_uvpool_submit();
}

static void lat_libuv_after(uv_work_t *req, int status);

static void lat_libuv_submit(void) {
  lt.t0 = uv_hrtime();
  check(uv_queue_work(&loop, &lt.req, lw_empty, lat_libuv_after),
        "uv_queue_work");
}

static void lat_libuv_after(uv_work_t *req, int status) {
  (void)req;
  (void)status;
  lt.lat[lt.i++] = uv_hrtime() - lt.t0;
  if (lt.i < lt.n)
    lat_libuv_submit();
}

/* Runs n round trips and stores p50, p99 and p99.9 in us, and the
 * process CPU time per round trip in us. */
static void lat_run(bool uvpool_side, size_t n, double out[4]) {
  double c0 = cpu_seconds(RUSAGE_SELF);
  lt.i = 0;
  lt.n = n;
  if (uvpool_side)
    lat_uvpool_submit();
  else
    lat_libuv_submit();
  uv_run(&loop, UV_RUN_DEFAULT);
  out[3] = (cpu_seconds(RUSAGE_SELF) - c0) * 1e6 / (double)n;
  if (lt.i != n)
    die("latency: lost callbacks", EIO);
  qsort(lt.lat, n, sizeof(uint64_t), cmp_u64);
  out[0] = (double)percentile(lt.lat, n, 0.50) / 1e3;
  out[1] = (double)percentile(lt.lat, n, 0.99) / 1e3;
  out[2] = (double)percentile(lt.lat, n, 0.999) / 1e3;
}

static void bench_latency(void) {
  size_t n = tasks_or(100000, 20000);
  static const char *names[4] = {"p50", "p99", "p99.9", "cpu/task"};
  result_t *r[4];
  noise_t n0;
  uint64_t allocs = 0;
  for (int k = 0; k < 4; k++)
    r[k] = result_new("latency", names[k], "us", false);
  result_target(r[0], false, false, 0.5);
  result_target(r[1], false, false, 1.0);
  lt.lat = malloc(n * sizeof(uint64_t));
  if (lt.lat == NULL)
    die("malloc", ENOMEM);
  lt.pool = run_a() ? pool_new(NULL) : NULL;
  {
    double warm[4];
    size_t w = n / 10 > 0 ? n / 10 : 1;
    if (run_a())
      lat_run(true, w, warm);
    if (run_b())
      lat_run(false, w, warm);
  }
  n0 = noise_now();
  for (int i = 0; i < opt.rounds; i++) {
    double v[4];
    if (run_a()) {
      uint64_t c0 = allocs_now();
      lat_run(true, n, v);
      allocs += allocs_now() - c0;
      for (int k = 0; k < 4; k++)
        r[k]->a[r[k]->na++] = v[k];
    }
    if (run_b()) {
      lat_run(false, n, v);
      for (int k = 0; k < 4; k++)
        r[k]->b[r[k]->nb++] = v[k];
    }
  }
  for (int k = 0; k < 4; k++) {
    result_finish(r[k], noise_pct(n0, noise_now()));
    snprintf(r[k]->note, sizeof(r[k]->note),
             "%zu sequential round trips, submit to callback", n);
  }
  if (lt.pool != NULL) {
    mallocs_per_task_latency = (double)allocs / ((double)n * opt.rounds);
    pool_close(lt.pool);
  }
  free(lt.lat);
}

/* ---- 4: remote_submit (uvpool only) ------------------------------------ */

static struct {
  uvpool_t *pool[2]; /* thread i submits to pool[i]: one pool, or two
                        members of one group, on the same loop */
  uv_barrier_t start;
  uv_async_t keep; /* holds the loop until the last callback */
  size_t per_thread;
  uint64_t total, seen;
  _Atomic uint64_t submitted_at; /* when the last submit call returned */
} rs;

static void rs_done(uvpool_future_t *f, void *data) {
  (void)f;
  (void)data;
  if (++rs.seen == rs.total)
    uv_close((uv_handle_t *)&rs.keep, NULL);
}

static void rs_thread(void *arg) {
  uvpool_t *pool = arg;
  uv_barrier_wait(&rs.start);
  for (size_t i = 0; i < rs.per_thread; i++) {
    uvpool_future_t *f;
    check(uvpool_submit(pool, empty_work, NULL, &f), "uvpool_submit");
    check(uvpool_future_on_done(f, rs_done, NULL), "on_done");
    uvpool_future_unref(f);
  }
  uint64_t now = uv_hrtime(), at = atomic_load(&rs.submitted_at);
  while (now > at && !atomic_compare_exchange_weak(&rs.submitted_at, &at, now))
    ;
}

/* Tasks per second until the last callback ran; *submit_rate: until the
 * last submit call returned. */
static double rs_run(size_t per_thread, double *submit_rate) {
  uv_thread_t t[2];
  uint64_t t0;
  rs.per_thread = per_thread;
  rs.total = 2 * per_thread;
  rs.seen = 0;
  atomic_store(&rs.submitted_at, 0);
  check(uv_async_init(&loop, &rs.keep, NULL), "uv_async_init");
  check(uv_barrier_init(&rs.start, 3), "uv_barrier_init");
  for (int i = 0; i < 2; i++)
    check(uv_thread_create(&t[i], rs_thread, rs.pool[i]), "uv_thread_create");
  uv_barrier_wait(&rs.start);
  t0 = uv_hrtime();
  uv_run(&loop, UV_RUN_DEFAULT);
  for (int i = 0; i < 2; i++)
    uv_thread_join(&t[i]);
  uv_barrier_destroy(&rs.start);
  *submit_rate = (double)rs.total / ns_to_s(atomic_load(&rs.submitted_at) - t0);
  return (double)rs.total / ns_to_s(uv_hrtime() - t0);
}

static void bench_remote(void) {
  size_t n = tasks_or(500000, 100000);
  result_t *r, *rg;
  uvpool_t *one, *member;
  uvpool_options_t o;
  double sub;
  noise_t n0;
  if (!run_a())
    return;
  r = result_new("remote_submit", "rate", "tasks/s", true);
  rg = result_new("remote_submit", "submit, 2 members", "tasks/s", true);
  one = pool_new(NULL);
  uvpool_options_init(&o);
  o.share = one;
  check(uvpool_new(&loop, &o, &member), "uvpool_new");
  rs.pool[0] = rs.pool[1] = one;
  rs_run(n / 10 > 0 ? n / 10 : 1, &sub);
  n0 = noise_now();
  for (int i = 0; i < opt.rounds; i++) {
    rs.pool[1] = one;
    r->a[r->na++] = rs_run(n, &sub);
    rg->b[rg->nb++] = sub;
    rs.pool[1] = member;
    (void)rs_run(n, &sub);
    rg->a[rg->na++] = sub;
  }
  result_finish(r, noise_pct(n0, noise_now()));
  result_finish(rg, r->noise);
  snprintf(r->note, sizeof(r->note),
           "2 non-loop threads x %zu tasks; uv_queue_work is loop-thread "
           "only",
           n);
  snprintf(rg->note, sizeof(rg->note),
           "the same until the last submit returned, each thread into its "
           "own member of one group (A) vs both into one pool (B)");
  pool_close(member);
  pool_close(one);
}

/* ---- 5: blocking (in a child process) ---------------------------------- */

#define BLOCK_TASKS 2000
#define BLOCK_THREADS 64
#define BLOCK_IDEAL_MS (BLOCK_TASKS * 1.0 / BLOCK_THREADS)

static int sleep_work(void *arg, void **result) {
  (void)arg;
  (void)result;
  sleep_ms(1);
  return 0;
}

static void lw_sleep(uv_work_t *req) {
  (void)req;
  sleep_ms(1);
}

static double block_uvpool(uvpool_t *pool) {
  uint64_t t0 = uv_hrtime();
  for (int i = 0; i < BLOCK_TASKS; i++)
    check(uvpool_submit(pool, sleep_work, NULL, NULL), "uvpool_submit");
  uv_run(&loop, UV_RUN_DEFAULT);
  return (double)(uv_hrtime() - t0) / 1e6;
}

static double block_libuv(uv_work_t *reqs) {
  uint64_t t0 = uv_hrtime();
  done_count = 0;
  for (int i = 0; i < BLOCK_TASKS; i++)
    check(uv_queue_work(&loop, &reqs[i], lw_sleep, lw_count_after),
          "uv_queue_work");
  uv_run(&loop, UV_RUN_DEFAULT);
  return (double)(uv_hrtime() - t0) / 1e6;
}

/* The child: prints "cold_a cold_b a1 b1 a2 b2 ..." in ms (cold: the
 * warm-up, with thread start-up; nan for a side not run). */
static int blocking_child(void) {
  static uv_work_t reqs[BLOCK_TASKS];
  uvpool_options_t o;
  uvpool_t *pool = NULL;
  double a = NAN, b = NAN;
  uvpool_options_init(&o);
  o.max_workers = BLOCK_THREADS;
  o.spin_us = opt.spin_us;
  if (run_a())
    pool = pool_new(&o);
  if (pool != NULL)
    a = block_uvpool(pool);
  if (run_b())
    b = block_libuv(reqs);
  printf("%.6f %.6f", a, b);
  for (int i = 0; i < opt.rounds; i++) {
    a = pool != NULL ? block_uvpool(pool) : NAN;
    b = run_b() ? block_libuv(reqs) : NAN;
    printf(" %.6f %.6f", a, b);
  }
  printf("\n");
  if (pool != NULL)
    pool_close(pool);
  return 0;
}

static const char *self_argv0;

static void bench_blocking(void) {
  char exe[4096], rounds[16], spin[16], out[8192];
  int fd[2];
  pid_t pid;
  ssize_t len, got = 0;
  int status;
  double cold_a, cold_b;
  char *p, *end;
  result_t *r = result_new("blocking", "makespan", "ms", false);
  result_t *ri = result_new("blocking", "makespan/ideal", "x", false);
  noise_t n0 = noise_now();
  const char *side = opt.side == SIDE_UVPOOL  ? "uvpool"
                     : opt.side == SIDE_LIBUV ? "libuv"
                                              : "both";
  result_target(ri, true, false, 1.15);
  len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (len < 0)
    die("readlink /proc/self/exe", errno);
  exe[len] = '\0';
  snprintf(rounds, sizeof(rounds), "%d", opt.rounds);
  snprintf(spin, sizeof(spin), "%u", opt.spin_us);
  if (pipe(fd) != 0)
    die("pipe", errno);
  fflush(NULL);
  pid = fork();
  if (pid < 0)
    die("fork", errno);
  if (pid == 0) {
    dup2(fd[1], STDOUT_FILENO);
    close(fd[0]);
    close(fd[1]);
    setenv("UV_THREADPOOL_SIZE", "64", 1);
    execl(exe, self_argv0, "--blocking-child", "--rounds", rounds, "--side",
          side, "--spin-us", spin, (char *)NULL);
    _exit(127);
  }
  close(fd[1]);
  while (got < (ssize_t)sizeof(out) - 1 &&
         (len = read(fd[0], out + got, sizeof(out) - 1 - (size_t)got)) > 0)
    got += len;
  close(fd[0]);
  out[got] = '\0';
  if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0)
    die("blocking child failed", EIO);
  cold_a = strtod(out, &end);
  cold_b = strtod(end, &end);
  p = end;
  for (int i = 0; i < opt.rounds; i++) {
    double a = strtod(p, &end), b = strtod(end, &end);
    p = end;
    if (!isnan(a)) {
      r->a[r->na++] = a;
      ri->a[ri->na++] = a / BLOCK_IDEAL_MS;
    }
    if (!isnan(b)) {
      r->b[r->nb++] = b;
      ri->b[ri->nb++] = b / BLOCK_IDEAL_MS;
    }
  }
  result_finish(r, noise_pct(n0, noise_now()));
  result_finish(ri, r->noise);
  snprintf(r->note, sizeof(r->note),
           "%d tasks x 1 ms, %d threads, child process; cold first batch "
           "(thread start-up): uvpool %.2f, libuv %.2f ms",
           BLOCK_TASKS, BLOCK_THREADS, cold_a, cold_b);
  snprintf(ri->note, sizeof(ri->note), "ideal %.2f ms", BLOCK_IDEAL_MS);
}

/* ---- 6: idle_cpu -------------------------------------------------------- */

#define IDLE_WORKERS 8

static struct {
  _Atomic unsigned n;       /* workers that reached thread_init */
  _Atomic unsigned running; /* tasks holding their worker */
  clockid_t clocks[IDLE_WORKERS];
} idle;

static int idle_thread_init(void *data) {
  unsigned i = atomic_fetch_add(&idle.n, 1);
  (void)data;
  if (i < IDLE_WORKERS &&
      pthread_getcpuclockid(pthread_self(), &idle.clocks[i]) != 0)
    return UV_EIO;
  return 0;
}

/* Holds its worker until all IDLE_WORKERS tasks run, which forces the
 * pool to start every worker. */
static int idle_hold(void *arg, void **result) {
  uint64_t deadline = uv_hrtime() + 5000000000u;
  (void)arg;
  (void)result;
  atomic_fetch_add(&idle.running, 1);
  while (atomic_load(&idle.running) < IDLE_WORKERS) {
    if (uv_hrtime() > deadline)
      return UV_ETIMEDOUT;
    sleep_ms(1);
  }
  return 0;
}

static double workers_cpu_s(void) {
  double s = 0;
  for (unsigned i = 0; i < IDLE_WORKERS; i++) {
    struct timespec ts;
    if (clock_gettime(idle.clocks[i], &ts) == 0)
      s += (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
  }
  return s;
}

/* Process CPU time over the window, in ms per s; *workers gets the share
 * of the uvpool workers' own clocks (NULL: not measured). */
static double idle_window(unsigned ms, double *workers) {
  double w0 = workers != NULL ? workers_cpu_s() : 0;
  double c0 = cpu_seconds(RUSAGE_SELF);
  uint64_t t0 = uv_hrtime();
  double secs;
  sleep_ms(ms);
  secs = ns_to_s(uv_hrtime() - t0);
  if (workers != NULL)
    *workers = (workers_cpu_s() - w0) * 1e3 / secs;
  return (cpu_seconds(RUSAGE_SELF) - c0) * 1e3 / secs;
}

static double idle_uvpool(unsigned ms, double *workers) {
  uvpool_options_t o;
  uvpool_t *pool;
  uvpool_stats_t st;
  double v;
  uvpool_options_init(&o);
  o.min_workers = o.max_workers = IDLE_WORKERS;
  o.thread_init = idle_thread_init;
  o.spin_us = opt.spin_us;
  atomic_store(&idle.n, 0);
  atomic_store(&idle.running, 0);
  pool = pool_new(&o);
  for (int i = 0; i < IDLE_WORKERS; i++)
    check(uvpool_submit(pool, idle_hold, NULL, NULL), "uvpool_submit");
  uv_run(&loop, UV_RUN_DEFAULT);
  check(uvpool_stats(pool, &st), "uvpool_stats");
  if (st.workers != IDLE_WORKERS || st.completed != IDLE_WORKERS)
    die("idle: workers did not start", EIO);
  sleep_ms(50); /* past the spin window: every worker parks */
  v = idle_window(ms, workers);
  pool_close(pool);
  return v;
}

static double idle_cpu_workers = NAN;

static void bench_idle(void) {
  unsigned ms = opt.quick ? 500 : 2000;
  result_t *r = result_new("idle_cpu", "cpu", "ms/s", false);
  double w[MAX_ROUNDS];
  int nw = 0;
  noise_t n0;
  uv_work_t req;
  result_target(r, true, false, 1.0);
  /* libuv's threads start at its first request; this one makes sure they
   * exist and sit idle, as after any real use. */
  if (run_b()) {
    check(uv_queue_work(&loop, &req, lw_empty, NULL), "uv_queue_work");
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  n0 = noise_now();
  for (int i = 0; i < opt.rounds; i++) {
    if (run_a())
      r->a[r->na++] = idle_uvpool(ms, &w[nw++]);
    if (run_b()) {
      sleep_ms(50);
      r->b[r->nb++] = idle_window(ms, NULL);
    }
  }
  result_finish(r, noise_pct(n0, noise_now()));
  idle_cpu_workers = median(w, nw);
  snprintf(r->note, sizeof(r->note),
           "process CPU over %u ms, %d parked uvpool workers (their own "
           "clocks: %.4f ms/s) vs libuv's idle pool",
           ms, IDLE_WORKERS, idle_cpu_workers);
}

/* ---- 7: memory ---------------------------------------------------------- */

static uv_sem_t mem_gate;

static int gate_work(void *arg, void **result) {
  (void)arg;
  (void)result;
  uv_sem_wait(&mem_gate);
  return 0;
}

static long rss_bytes(void) {
  long size = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f != NULL) {
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
      resident = 0;
    fclose(f);
  }
  return resident * sysconf(_SC_PAGESIZE);
}

static size_t heap_bytes(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd; /* in use: arena chunks + mmapped */
#else
  return 0;
#endif
}

static void bench_memory(void) {
  /* 1e6 in quick mode too: the slab opened for the gate task skews a
   * smaller count, and the check should judge both modes alike. */
  size_t n = tasks_or(1000000, 1000000);
  result_t *r = result_new("memory", "bytes/future", "bytes", false);
  result_t *rh = result_new("memory", "heap bytes/future", "bytes", false);
  result_t *rr = result_new("memory", "rss bytes/future", "bytes", false);
  uvpool_options_t o;
  uvpool_t *pool;
  uvpool_future_t *gate;
  uvpool_stats_t st;
  uint64_t b0, c0, calls;
  size_t h0;
  long r0;
  noise_t n0 = noise_now();
  result_target(r, true, false, 64);
  /* libuv's cost is what the application provides per request: the
   * uv_work_t (this benchmark needs no struct of its own around it). */
  r->b[r->nb++] = sizeof(uv_work_t);
  if (!run_a()) {
    result_finish(r, 0);
    return;
  }
  uvpool_options_init(&o);
  o.max_workers = 1;
  o.spin_us = opt.spin_us;
  check(uv_sem_init(&mem_gate, 0), "uv_sem_init");
  pool = pool_new(&o);
  check(uvpool_submit(pool, gate_work, NULL, &gate), "uvpool_submit");
  do {
    sleep_ms(1);
    check(uvpool_stats(pool, &st), "uvpool_stats");
  } while (st.running != 1);
  b0 = atomic_load(&alloc_bytes);
  c0 = allocs_now();
  h0 = heap_bytes();
  r0 = rss_bytes();
  for (size_t i = 0; i < n; i++) {
    uvpool_future_t *f;
    check(uvpool_submit(pool, empty_work, NULL, &f), "uvpool_submit");
    check(uvpool_future_on_done(f, count_done, NULL), "on_done");
    uvpool_future_unref(f);
  }
  r->a[r->na++] = (double)(atomic_load(&alloc_bytes) - b0) / (double)n;
  rh->a[rh->na++] = (double)(heap_bytes() - h0) / (double)n;
  rr->a[rr->na++] = (double)(rss_bytes() - r0) / (double)n;
  calls = allocs_now() - c0;
  uv_sem_post(&mem_gate);
  uvpool_future_unref(gate);
  uv_run(&loop, UV_RUN_DEFAULT);
  pool_close(pool);
  uv_sem_destroy(&mem_gate);
  result_finish(r, noise_pct(n0, noise_now()));
  result_finish(rh, r->noise);
  result_finish(rr, r->noise);
  snprintf(r->note, sizeof(r->note),
           "%zu queued behind a gate on 1 worker; requested bytes, %llu "
           "allocations (%.5f per future); libuv: sizeof(uv_work_t)",
           n, (unsigned long long)calls, (double)calls / (double)n);
  snprintf(rh->note, sizeof(rh->note), "mallinfo2 uordblks + hblkhd delta");
  snprintf(rr->note, sizeof(rr->note), "/proc/self/statm resident delta");
}

/* Steady-state mallocs per task: the timed rounds of the other workloads,
 * after their warm-up. */
static void result_mallocs(void) {
  result_t *r;
  double worst = NAN;
  const double v[3] = {mallocs_per_task_throughput, mallocs_per_task_ff,
                       mallocs_per_task_latency};
  for (int i = 0; i < 3; i++)
    if (!isnan(v[i]) && (isnan(worst) || v[i] > worst))
      worst = v[i];
  if (isnan(worst) && isnan(libuv_mallocs_per_task))
    return;
  r = result_new("memory", "mallocs/task", "calls", false);
  result_target(r, true, false, 0);
  if (!isnan(worst))
    r->a[r->na++] = worst;
  if (!isnan(libuv_mallocs_per_task))
    r->b[r->nb++] = libuv_mallocs_per_task;
  result_finish(r, 0);
  snprintf(r->note, sizeof(r->note),
           "steady state, timed rounds: throughput %.6f, fire_and_forget "
           "%.6f, latency %.6f",
           v[0], v[1], v[2]);
}

/* ---- 8: request rates ---------------------------------------------------
 * What servers see: requests paced by a loop timer, short bursts, and
 * chains of blocking calls (the next submitted from the previous one's
 * callback). For each: the round trip from submit to callback (p50, p99)
 * and the process CPU time per task (getrusage, user + sys), both sides
 * with the same thread count (RATE_WORKERS: libuv's default of 4),
 * alternating rounds. */

#define RATE_WORKERS 4
#define RATE_MAX_TASKS 200000

static struct {
  uvpool_t *pool;
  uv_timer_t timer;
  uv_work_t reqs[RATE_MAX_TASKS];
  uint64_t t[RATE_MAX_TASKS];   /* submit time of task i */
  uint64_t lat[RATE_MAX_TASKS]; /* round trip of task i */
  size_t next, done, total;
  unsigned per_tick, ticks_left;
  bool uvpool_side;
  int (*work)(void *, void **);
  void (*lw_work)(uv_work_t *);
  bool chain; /* submit the next from the callback */
} rt;

static void rt_submit(void);

static void rt_finish(size_t i) {
  rt.lat[i] = uv_hrtime() - rt.t[i];
  rt.done++;
  if (rt.chain && rt.next < rt.total)
    rt_submit();
}

static void rt_uvpool_done(uvpool_future_t *f, void *data) {
  (void)f;
  rt_finish((size_t)(uintptr_t)data);
}

static void rt_libuv_after(uv_work_t *req, int status) {
  (void)status;
  rt_finish((size_t)(req - rt.reqs));
}

static void rt_submit(void) {
  size_t i = rt.next++;
  uvpool_future_t *f;
  rt.t[i] = uv_hrtime();
  if (rt.uvpool_side) {
    check(uvpool_submit(rt.pool, rt.work, NULL, &f), "uvpool_submit");
    check(uvpool_future_on_done(f, rt_uvpool_done, (void *)(uintptr_t)i),
          "on_done");
    uvpool_future_unref(f);
  } else {
    check(uv_queue_work(&loop, &rt.reqs[i], rt.lw_work, rt_libuv_after),
          "uv_queue_work");
  }
}

static void rt_tick(uv_timer_t *t) {
  for (unsigned k = 0; k < rt.per_tick && rt.next < rt.total; k++)
    rt_submit();
  if (--rt.ticks_left == 0)
    uv_timer_stop(t);
}

/* One round of one side: p50 and p99 of the round trips in us, CPU per
 * task in us. */
static void rt_round(bool uvpool_side, unsigned per_tick, unsigned tick_ms,
                     size_t total, double out[3]) {
  double c0;
  rt.uvpool_side = uvpool_side;
  rt.next = rt.done = 0;
  rt.total = total;
  rt.per_tick = per_tick;
  c0 = cpu_seconds(RUSAGE_SELF);
  if (rt.chain) {
    rt_submit();
  } else {
    rt.ticks_left = (unsigned)((total + per_tick - 1) / per_tick);
    check(uv_timer_start(&rt.timer, rt_tick, tick_ms, tick_ms), "timer");
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  if (rt.done != total)
    die("rates: lost callbacks", EIO);
  out[2] = (cpu_seconds(RUSAGE_SELF) - c0) * 1e6 / (double)total;
  qsort(rt.lat, total, sizeof(uint64_t), cmp_u64);
  out[0] = (double)percentile(rt.lat, total, 0.50) / 1e3;
  out[1] = (double)percentile(rt.lat, total, 0.99) / 1e3;
}

static uvpool_t *rate_pool(void) {
  uvpool_options_t o;
  uvpool_options_init(&o);
  o.max_workers = opt.workers != 0 ? opt.workers : RATE_WORKERS;
  o.spin_us = opt.spin_us;
  return pool_new(&o);
}

/* A workload of the sweep: per_tick tasks every tick_ms (or, with
 * per_tick 0, a chain), total tasks per round. */
static void bench_rate(const char *name, unsigned per_tick, unsigned tick_ms,
                       size_t total, int (*work)(void *, void **),
                       void (*lw_work)(uv_work_t *), const char *what) {
  static const char *metrics[3] = {"rt p50", "rt p99", "cpu/task"};
  result_t *r[3];
  noise_t n0;
  double warm[3];
  if (total > RATE_MAX_TASKS)
    total = RATE_MAX_TASKS;
  for (int k = 0; k < 3; k++)
    r[k] = result_new(name, metrics[k], "us", false);
  result_target(r[0], false, false, 1.0);
  result_target(r[2], false, false, 1.0);
  rt.work = work;
  rt.lw_work = lw_work;
  rt.chain = per_tick == 0;
  check(uv_timer_init(&loop, &rt.timer), "uv_timer_init");
  rt.pool = run_a() ? rate_pool() : NULL;
  /* Warm-up: threads started, slabs grown, code paged in. */
  if (run_a())
    rt_round(true, per_tick, tick_ms, total / 4 + 1, warm);
  if (run_b())
    rt_round(false, per_tick, tick_ms, total / 4 + 1, warm);
  n0 = noise_now();
  for (int i = 0; i < opt.rounds; i++) {
    double v[3];
    if (run_a()) {
      rt_round(true, per_tick, tick_ms, total, v);
      for (int k = 0; k < 3; k++)
        r[k]->a[r[k]->na++] = v[k];
    }
    if (run_b()) {
      rt_round(false, per_tick, tick_ms, total, v);
      for (int k = 0; k < 3; k++)
        r[k]->b[r[k]->nb++] = v[k];
    }
  }
  for (int k = 0; k < 3; k++) {
    result_finish(r[k], noise_pct(n0, noise_now()));
    snprintf(r[k]->note, sizeof(r[k]->note),
             "%s, %zu tasks a round, %d "
             "threads each",
             what, total, opt.workers != 0 ? (int)opt.workers : RATE_WORKERS);
  }
  uv_close((uv_handle_t *)&rt.timer, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (rt.pool != NULL)
    pool_close(rt.pool);
}

/* Work that blocks 100 us (a sleep), and work that computes 20 us. */
static void block_100us(void) {
  struct timespec ts = {0, 100000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

static int sleep_100us_work(void *arg, void **result) {
  (void)arg;
  (void)result;
  block_100us();
  return 0;
}

static void lw_sleep_100us(uv_work_t *req) {
  (void)req;
  block_100us();
}

static unsigned long spins_20us; /* calibrated at start */
static volatile unsigned long compute_sink;

static void compute(unsigned long n) {
  unsigned long x = compute_sink;
  for (unsigned long i = 0; i < n; i++)
    x = x * 6364136223846793005ul + 1442695040888963407ul;
  compute_sink = x;
}

static void calibrate_compute(void) {
  unsigned long n = 1000;
  for (;;) {
    uint64_t t0 = uv_hrtime();
    compute(n);
    uint64_t dt = uv_hrtime() - t0;
    if (dt > 2000000u) { /* 2 ms: long enough to time */
      spins_20us = (unsigned long)((double)n * 20000.0 / (double)dt);
      return;
    }
    n *= 2;
  }
}

static int compute_20us_work(void *arg, void **result) {
  (void)arg;
  (void)result;
  compute(spins_20us);
  return 0;
}

static void lw_compute_20us(uv_work_t *req) {
  (void)req;
  compute(spins_20us);
}

static int compute_20ms_work(void *arg, void **result) {
  (void)arg;
  (void)result;
  compute(spins_20us * 1000);
  return 0;
}

static void lw_compute_20ms(uv_work_t *req) {
  (void)req;
  compute(spins_20us * 1000);
}

static void bench_paced_1(void) {
  bench_rate("paced_1", 1, 1, tasks_or(1000, 300), empty_work, lw_empty,
             "1 empty task per 1 ms timer tick");
}

static void bench_paced_10(void) {
  bench_rate("paced_10", 10, 1, tasks_or(10000, 3000), empty_work, lw_empty,
             "10 empty tasks per 1 ms timer tick");
}

static void bench_paced_100(void) {
  bench_rate("paced_100", 100, 1, tasks_or(100000, 30000), empty_work, lw_empty,
             "100 empty tasks per 1 ms timer tick");
}

static void bench_burst_8(void) {
  bench_rate("burst_8", 8, 10, tasks_or(2400, 800), empty_work, lw_empty,
             "bursts of 8 empty tasks, one per 10 ms timer tick");
}

static void bench_chain_sleep(void) {
  bench_rate("chain_sleep", 0, 0, tasks_or(2000, 500), sleep_100us_work,
             lw_sleep_100us,
             "a chain of tasks that sleep 100 us, each submitted by the "
             "last one's callback");
}

static void bench_chain_compute(void) {
  bench_rate("chain_compute", 0, 0, tasks_or(5000, 1500), compute_20us_work,
             lw_compute_20us,
             "a chain of tasks that compute 20 us, each submitted by the "
             "last one's callback");
}

/* 40 tasks of 20 ms of CPU, all at once: makespan and CPU per task, with
 * both sides at RATE_WORKERS threads; and uvpool with its default options
 * (more workers than CPUs) for comparison. */
#define BATCH_TASKS 40

static size_t batch_done;

static void batch_uvpool_done(uvpool_future_t *f, void *data) {
  (void)f;
  (void)data;
  batch_done++;
}

static void batch_libuv_after(uv_work_t *req, int status) {
  (void)req;
  (void)status;
  batch_done++;
}

static void batch_round(uvpool_t *pool, double out[2]) {
  double c0 = cpu_seconds(RUSAGE_SELF);
  uint64_t t0 = uv_hrtime();
  batch_done = 0;
  for (int i = 0; i < BATCH_TASKS; i++) {
    if (pool != NULL) {
      uvpool_future_t *f;
      check(uvpool_submit(pool, compute_20ms_work, NULL, &f), "submit");
      check(uvpool_future_on_done(f, batch_uvpool_done, NULL), "on_done");
      uvpool_future_unref(f);
    } else {
      check(
          uv_queue_work(&loop, &rt.reqs[i], lw_compute_20ms, batch_libuv_after),
          "uv_queue_work");
    }
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  if (batch_done != BATCH_TASKS)
    die("compute_batch: lost callbacks", EIO);
  out[0] = (double)(uv_hrtime() - t0) / 1e6;
  out[1] = (cpu_seconds(RUSAGE_SELF) - c0) * 1e6 / BATCH_TASKS;
}

static void bench_compute_batch(void) {
  result_t *r = result_new("compute_batch", "makespan", "ms", false);
  result_t *rc = result_new("compute_batch", "cpu/task", "us", false);
  result_t *rd = result_new("compute_batch", "makespan, defaults", "ms", false);
  uvpool_t *pool = run_a() ? rate_pool() : NULL;
  uvpool_t *dflt = run_a() ? pool_new(NULL) : NULL;
  double v[2];
  noise_t n0;
  result_target(r, false, false, 1.0);
  if (pool != NULL)
    batch_round(pool, v);
  if (run_b())
    batch_round(NULL, v);
  n0 = noise_now();
  for (int i = 0; i < opt.rounds; i++) {
    if (pool != NULL) {
      batch_round(pool, v);
      r->a[r->na++] = v[0];
      rc->a[rc->na++] = v[1];
      batch_round(dflt, v);
      rd->a[rd->na++] = v[0];
    }
    if (run_b()) {
      batch_round(NULL, v);
      r->b[r->nb++] = v[0];
      rc->b[rc->nb++] = v[1];
      rd->b[rd->nb++] = v[0];
    }
  }
  result_finish(r, noise_pct(n0, noise_now()));
  result_finish(rc, r->noise);
  result_finish(rd, r->noise);
  snprintf(r->note, sizeof(r->note),
           "%d tasks x 20 ms of CPU at once, %d threads each; ideal %.0f ms "
           "on %u CPUs",
           BATCH_TASKS, RATE_WORKERS,
           BATCH_TASKS * 20.0 / uv_available_parallelism(),
           uv_available_parallelism());
  snprintf(rd->note, sizeof(rd->note),
           "uvpool with default options (max_workers %u) vs libuv's %d",
           uv_available_parallelism() + 4 < 32 ? uv_available_parallelism() + 4
                                               : 32,
           RATE_WORKERS);
  if (pool != NULL)
    pool_close(pool);
  if (dflt != NULL)
    pool_close(dflt);
}

static void bench_throughput(void) { bench_batch("throughput", true, 3.0); }

static void bench_fire_and_forget(void) {
  bench_batch("fire_and_forget", false, 4.0);
}

/* Runs one workload if selected and stamps its results with its wall
 * time, which tells what a --quick budget is spent on. */
static void run_workload(const char *name, void (*fn)(void)) {
  int first = nresults;
  uint64_t t0;
  if (!selected(name))
    return;
  t0 = uv_hrtime();
  fn();
  for (int i = first; i < nresults; i++)
    results[i].secs = ns_to_s(uv_hrtime() - t0);
}

/* ---- output ------------------------------------------------------------- */

/* What libuv 1.44 makes of UV_THREADPOOL_SIZE: default 4, clamped to
 * 1..1024. */
static int libuv_pool_size(void) {
  const char *v = getenv("UV_THREADPOOL_SIZE");
  int n = v != NULL ? atoi(v) : 4;
  return n < 1 ? 1 : n > 1024 ? 1024 : n;
}

static const char *ratio_sense(const result_t *r) {
  return r->higher_better ? ">1 = uvpool better" : "<1 = uvpool better";
}

static const char *target_text(const result_t *r, char *buf, size_t len) {
  if (!r->has_target)
    return "";
  snprintf(buf, len, "%s %s %g", r->on_value ? "uvpool" : "ratio",
           r->target_ge     ? ">="
           : r->target == 0 ? "=="
                            : "<=",
           r->target);
  return buf;
}

/* %g with SI-ish scaling for rates, so lines stay short. */
static void fmt_value(char *buf, size_t len, double v, const char *unit) {
  if (isnan(v))
    snprintf(buf, len, "-");
  else if (strcmp(unit, "tasks/s") == 0)
    snprintf(buf, len, "%.3f M/s", v / 1e6);
  else if (strcmp(unit, "x") == 0)
    snprintf(buf, len, "%.3fx", v);
  else
    snprintf(buf, len, "%.4g %s", v, unit);
}

static void print_text(const noise_t *n0, const noise_t *n1, double load) {
  printf("uvpool_bench: uvpool %s vs libuv %s uv_queue_work, %u CPUs, %d "
         "round(s), medians, A/B alternating%s\n",
         uvpool_version_string(), uv_version_string(),
         uv_available_parallelism(), opt.rounds, opt.quick ? ", quick" : "");
  printf("uvpool: default options unless stated; libuv pool: %d threads "
         "(blocking: 64, child process)\n",
         libuv_pool_size());
  printf("load average at start %.2f; other processes used %.1f%% of the "
         "machine during the run\n",
         load, noise_pct(*n0, *n1));
  printf("ratio = uvpool / uv_queue_work (rates: >1 = uvpool better; "
         "times, sizes: raw, <1 = uvpool better)\n\n");
  printf("%-16s %-18s %-14s %-14s %-8s %-22s %s\n", "workload", "metric",
         "uvpool", "uv_queue_work", "ratio", "target", "met");
  for (int i = 0; i < nresults; i++) {
    const result_t *r = &results[i];
    char a[32], b[32], ratio[16], tgt[48];
    fmt_value(a, sizeof(a), r->med_a, r->unit);
    fmt_value(b, sizeof(b), r->med_b, r->unit);
    if (isnan(r->ratio))
      snprintf(ratio, sizeof(ratio), "-");
    else
      snprintf(ratio, sizeof(ratio), "%.3f", r->ratio);
    printf("%-16s %-18s %-14s %-14s %-8s %-22s %s\n", r->workload, r->metric, a,
           b, ratio, target_text(r, tgt, sizeof(tgt)),
           !r->has_target ? ""
           : r->met       ? "yes"
                          : "NO");
    if (r->note[0] != '\0')
      printf("%-16s   (%s; %.1f s, other procs %.0f%%)\n", "", r->note, r->secs,
             r->noise);
  }
}

static void json_number(double v) {
  if (isnan(v) || isinf(v))
    printf("null");
  else
    printf("%.6g", v);
}

static void json_rounds(const double *v, int n) {
  printf("[");
  for (int i = 0; i < n; i++) {
    if (i > 0)
      fputs(", ", stdout);
    json_number(v[i]);
  }
  printf("]");
}

/* The strings printed here are this file's literals and snprintf'd
 * numbers: none holds a quote or a backslash. */
static void print_json(const noise_t *n0, const noise_t *n1, double load) {
  printf("{\n  \"bench\": \"uvpool_bench\",\n");
  printf("  \"uvpool_version\": \"%s\",\n  \"libuv_version\": \"%s\",\n",
         uvpool_version_string(), uv_version_string());
  printf("  \"cpus\": %u,\n  \"quick\": %s,\n  \"rounds\": %d,\n",
         uv_available_parallelism(), opt.quick ? "true" : "false", opt.rounds);
  printf("  \"libuv_threadpool_size\": %d,\n", libuv_pool_size());
  printf("  \"loadavg_start\": %.2f,\n  \"other_cpu_pct\": %.2f,\n", load,
         noise_pct(*n0, *n1));
  printf("  \"ratio\": \"uvpool / uv_queue_work; higher_is_better tells "
         "the direction\",\n");
  printf("  \"results\": [\n");
  for (int i = 0; i < nresults; i++) {
    const result_t *r = &results[i];
    printf("    {\"workload\": \"%s\", \"metric\": \"%s\", \"unit\": \"%s\", "
           "\"higher_is_better\": %s,\n",
           r->workload, r->metric, r->unit,
           r->higher_better ? "true" : "false");
    printf("     \"uvpool\": ");
    json_number(r->med_a);
    printf(", \"libuv\": ");
    json_number(r->med_b);
    printf(", \"ratio\": ");
    json_number(r->ratio);
    printf(", \"ratio_sense\": \"%s\",\n", ratio_sense(r));
    if (r->has_target) {
      printf("     \"target\": {\"on\": \"%s\", \"op\": \"%s\", \"value\": ",
             r->on_value ? "uvpool" : "ratio", r->target_ge ? ">=" : "<=");
      json_number(r->target);
      printf("}, \"met\": %s,\n", r->met ? "true" : "false");
    } else {
      printf("     \"target\": null, \"met\": null,\n");
    }
    printf("     \"uvpool_rounds\": ");
    json_rounds(r->a, r->na);
    printf(", \"libuv_rounds\": ");
    json_rounds(r->b, r->nb);
    printf(",\n     \"other_cpu_pct\": %.2f, \"seconds\": %.3f, "
           "\"note\": \"%s\"}%s\n",
           r->noise, r->secs, r->note, i + 1 < nresults ? "," : "");
  }
  printf("  ]\n}\n");
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: uvpool_bench [--json] [--quick] [--rounds N] [--only "
          "W[,W...]]\n"
          "                    [--side uvpool|libuv] [--tasks N] "
          "[--spin-us N] [--workers N]\n"
          "                    [--strict]\n"
          "workloads: throughput fire_and_forget latency remote_submit "
          "blocking\n"
          "           idle_cpu memory paced_1 paced_10 paced_100 burst_8\n"
          "           chain_sleep chain_compute compute_batch many\n"
          "           queue_work_ping_pong many_loops\n"
          "--quick   3 rounds, smaller counts (CI: <= 15 s)\n"
          "--tasks   overrides the task count of every workload but "
          "blocking\n"
          "--side    runs one side only (profiling)\n"
          "--spin-us, --workers: uvpool options (experiments; default: the "
          "library's)\n"
          "--strict  exits 3 when a target is missed\n");
}

static void parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--json") == 0) {
      opt.json = true;
    } else if (strcmp(a, "--quick") == 0) {
      opt.quick = true;
    } else if (strcmp(a, "--strict") == 0) {
      opt.strict = true;
    } else if (strcmp(a, "--blocking-child") == 0) {
      opt.child = true;
    } else if (strcmp(a, "--rounds") == 0 && v != NULL) {
      opt.rounds = atoi(v);
      i++;
    } else if (strcmp(a, "--tasks") == 0 && v != NULL) {
      opt.tasks = strtoull(v, NULL, 10);
      i++;
    } else if (strcmp(a, "--spin-us") == 0 && v != NULL) {
      opt.spin_us = (unsigned)strtoul(v, NULL, 10);
      i++;
    } else if (strcmp(a, "--workers") == 0 && v != NULL) {
      opt.workers = (unsigned)strtoul(v, NULL, 10);
      i++;
    } else if (strcmp(a, "--only") == 0 && v != NULL) {
      snprintf(opt.only, sizeof(opt.only), "%s", v);
      i++;
    } else if (strcmp(a, "--side") == 0 && v != NULL) {
      opt.side = strcmp(v, "uvpool") == 0  ? SIDE_UVPOOL
                 : strcmp(v, "libuv") == 0 ? SIDE_LIBUV
                                           : SIDE_BOTH;
      i++;
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      exit(0);
    } else {
      usage(stderr);
      exit(2);
    }
  }
  if (opt.rounds <= 0)
    opt.rounds = opt.quick ? 3 : 5;
  if (opt.rounds > MAX_ROUNDS)
    opt.rounds = MAX_ROUNDS;
}

int main(int argc, char **argv) {
  noise_t n0, n1;
  double load = 0;
  bool missed = false;
  FILE *f;

  /* First, before libuv allocates anything: its allocations are then
   * counted as well (the references below are the wrapped ones). */
  check(uv_replace_allocator(malloc, realloc, calloc, free),
        "uv_replace_allocator");
  self_argv0 = argv[0];
  parse_args(argc, argv);
  check(uv_loop_init(&loop), "uv_loop_init");
  if (opt.child)
    return blocking_child();

  f = fopen("/proc/loadavg", "r");
  if (f != NULL) {
    if (fscanf(f, "%lf", &load) != 1)
      load = 0;
    fclose(f);
  }
  n0 = noise_now();
  /* Memory first: a fresh heap gives the cleanest heap and RSS deltas. */
  run_workload("memory", bench_memory);
  run_workload("throughput", bench_throughput);
  run_workload("fire_and_forget", bench_fire_and_forget);
  run_workload("latency", bench_latency);
  run_workload("many", bench_many);
  run_workload("queue_work_ping_pong", bench_queue_work_ping_pong);
  run_workload("many_loops", bench_many_loops);
  run_workload("remote_submit", bench_remote);
  run_workload("blocking", bench_blocking);
  run_workload("idle_cpu", bench_idle);
  calibrate_compute();
  run_workload("paced_1", bench_paced_1);
  run_workload("paced_10", bench_paced_10);
  run_workload("paced_100", bench_paced_100);
  run_workload("burst_8", bench_burst_8);
  run_workload("chain_sleep", bench_chain_sleep);
  run_workload("chain_compute", bench_chain_compute);
  run_workload("compute_batch", bench_compute_batch);
  if (selected("memory"))
    result_mallocs();
  n1 = noise_now();

  /* Print in the order of the workload list, memory last. */
  for (int i = 0, m = 0; i < nresults; i++) {
    if (strcmp(results[i].workload, "memory") != 0) {
      result_t t = results[i];
      memmove(&results[m + 1], &results[m], sizeof(result_t) * (size_t)(i - m));
      results[m++] = t;
    }
  }
  if (opt.json)
    print_json(&n0, &n1, load);
  else
    print_text(&n0, &n1, load);
  for (int i = 0; i < nresults; i++)
    missed |= results[i].has_target && !results[i].met;
  uv_loop_close(&loop);
  return opt.strict && missed ? 3 : 0;
}
