/* hashsum: hashes files on uvpool workers while the loop stays free.
 *
 * Each file is one task (read + FNV-1a 64, a real blocking read). A loop
 * timer ticks every 10 ms and prints a progress line; its worst lateness
 * shows that the loop never waited for the disk. Results are printed in
 * completion order from the done callbacks, on the loop thread.
 *
 * Usage: hashsum [-j WORKERS] FILE...   (no FILE: hashes a generated set)
 */
#include <uvpool.h>

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  const char *path;
  uint64_t hash;
  uint64_t bytes;
  uint64_t ns; /* how long the blocking part took */
} job_t;

typedef struct {
  uv_timer_t tick;
  uvpool_t *pool;
  size_t total, done, failed;
  uint64_t bytes;
  uint64_t last_tick_ns;
  uint64_t worst_late_ns;
  uint64_t longest_job_ns;
} app_t;

/* Worker thread: a plain blocking read loop. */
static int hash_file(void *arg, void **result) {
  job_t *job = arg;
  unsigned char buf[1 << 16];
  uint64_t h = 1469598103934665603ull;
  ssize_t n;
  uint64_t start = uv_hrtime();
  int fd = open(job->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return UV_ENOENT;
  while ((n = read(fd, buf, sizeof(buf))) > 0) {
    for (ssize_t i = 0; i < n; i++)
      h = (h ^ buf[i]) * 1099511628211ull;
    job->bytes += (uint64_t)n;
  }
  close(fd);
  if (n < 0)
    return UV_EIO;
  job->hash = h;
  job->ns = uv_hrtime() - start;
  *result = job;
  return 0;
}

/* Loop thread. The job comes back as the future's arg, also when the
 * hash failed. */
static void on_hashed(uvpool_future_t *f, void *data) {
  app_t *app = data;
  job_t *job = uvpool_future_arg(f);
  int status = uvpool_future_status(f);
  if (status == 0) {
    printf("%016" PRIx64 "  %s\n", job->hash, job->path);
    app->bytes += job->bytes;
    if (job->ns > app->longest_job_ns)
      app->longest_job_ns = job->ns;
  } else {
    app->failed++;
    fprintf(stderr, "hashsum: %s: %s\n", job->path, uv_strerror(status));
  }
  if (++app->done == app->total)
    uv_timer_stop(&app->tick);
}

static void on_tick(uv_timer_t *t) {
  app_t *app = t->data;
  uint64_t now = uv_hrtime();
  uint64_t late = now - app->last_tick_ns;
  late = late > 10000000u ? late - 10000000u : 0;
  if (late > app->worst_late_ns)
    app->worst_late_ns = late;
  app->last_tick_ns = now;
  if (isatty(STDERR_FILENO))
    fprintf(stderr, "\rprogress: %zu/%zu files", app->done, app->total);
}

static void on_closed(uvpool_t *pool, void *data) {
  app_t *app = data;
  (void)pool;
  uv_close((uv_handle_t *)&app->tick, NULL);
}

/* Writes a set of sample files so that the demo runs with no arguments. */
static char **make_samples(const char *dir, int n) {
  char **paths = calloc((size_t)n, sizeof(*paths));
  static char block[1 << 16];
  for (size_t i = 0; i < sizeof(block); i++)
    block[i] = (char)(i * 31u);
  for (int i = 0; i < n && paths != NULL; i++) {
    paths[i] = malloc(strlen(dir) + 32);
    sprintf(paths[i], "%s/sample-%03d.bin", dir, i);
    FILE *fp = fopen(paths[i], "wb");
    if (fp == NULL)
      exit(1);
    for (int k = 0; k <= i % 64; k++)
      fwrite(block, 1, sizeof(block), fp);
    fclose(fp);
  }
  return paths;
}

int main(int argc, char **argv) {
  uv_loop_t *loop = uv_default_loop();
  uvpool_options_t opts;
  app_t app;
  job_t *jobs;
  char **paths = argv + 1;
  char tmpl[] = "/tmp/hashsum-XXXXXX";
  int nfiles = argc - 1;
  int rc;

  memset(&app, 0, sizeof(app));
  uvpool_options_init(&opts);
  opts.name = "hashsum";
  if (argc > 2 && strcmp(argv[1], "-j") == 0) {
    opts.max_workers = (unsigned)atoi(argv[2]);
    paths += 2;
    nfiles -= 2;
  }
  if (nfiles <= 0) {
    if (mkdtemp(tmpl) == NULL)
      return 1;
    nfiles = 200;
    paths = make_samples(tmpl, nfiles);
  }
  rc = uvpool_new(loop, &opts, &app.pool);
  if (rc != 0) {
    fprintf(stderr, "uvpool_new: %s\n", uv_strerror(rc));
    return 1;
  }
  jobs = calloc((size_t)nfiles, sizeof(*jobs));
  app.total = (size_t)nfiles;
  uv_timer_init(loop, &app.tick);
  app.tick.data = &app;
  app.last_tick_ns = uv_hrtime();
  uv_timer_start(&app.tick, on_tick, 10, 10);

  uint64_t start = uv_hrtime();
  for (int i = 0; i < nfiles; i++) {
    jobs[i].path = paths[i];
    /* The task and its callback in one step: the pool keeps the future
     * until on_hashed ran. */
    rc = uvpool_submit_cb(app.pool, hash_file, &jobs[i], on_hashed, &app);
    if (rc != 0) {
      fprintf(stderr, "submit: %s\n", uv_strerror(rc));
      return 1;
    }
  }
  uv_run(loop, UV_RUN_DEFAULT);
  double secs = (double)(uv_hrtime() - start) / 1e9;

  uvpool_stats_t st;
  uvpool_stats(app.pool, &st);
  uvpool_close(app.pool, 0, on_closed, &app);
  uv_run(loop, UV_RUN_DEFAULT);
  fprintf(stderr,
          "\rhashed %zu files (%.1f MiB) in %.3f s on %u workers; "
          "%zu failed\n"
          "loop timer (10 ms) worst lateness: %.2f ms; the longest single "
          "hash took %.2f ms and would have stalled the loop that long\n",
          app.done, (double)app.bytes / 1048576.0, secs, st.peak_workers,
          app.failed, (double)app.worst_late_ns / 1e6,
          (double)app.longest_job_ns / 1e6);
  if (paths != argv + 1 && paths != argv + 3) {
    for (int i = 0; i < nfiles; i++) {
      unlink(paths[i]);
      free(paths[i]);
    }
    free(paths);
    rmdir(tmpl);
  }
  free(jobs);
  rc = uv_loop_close(loop);
  return rc == 0 && app.failed == 0 ? 0 : 1;
}
