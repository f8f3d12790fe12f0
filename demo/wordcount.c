/* wordcount: a uv_queue_work program, moved to uvpool.
 *
 * Counts the words of each file on a worker thread and prints the counts
 * from the after-work callbacks on the loop thread. With -n N it cancels
 * every file after the first N, as a server drops work its client no
 * longer wants.
 *
 * The same source builds two ways, and the difference is the two call
 * sites marked MIGRATION plus one pool per loop:
 *   wordcount_libuv  (-DWORDCOUNT_LIBUV)  libuv's own threadpool
 *   wordcount                             a uvpool pool
 *
 * Usage: wordcount [-n N] FILE...   (no FILE: counts a generated set)
 */
#ifndef WORDCOUNT_LIBUV
#include <uvpool.h>
#endif
#include <uv.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  uv_work_t req; /* req.data points back here */
  const char *path;
  long words;
  int err;
} job_t;

static size_t done, cancelled;

/* Worker thread: a plain blocking read. */
static void count_words(uv_work_t *req) {
  job_t *job = req->data;
  char buf[1 << 15];
  size_t n;
  int in_word = 0;
  FILE *fp = fopen(job->path, "rb");
  if (fp == NULL) {
    job->err = UV_ENOENT;
    return;
  }
  while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
    for (size_t i = 0; i < n; i++) {
      int space = isspace((unsigned char)buf[i]);
      if (!space && !in_word)
        job->words++;
      in_word = !space;
    }
  fclose(fp);
}

/* Loop thread. */
static void on_counted(uv_work_t *req, int status) {
  job_t *job = req->data;
  if (status == UV_ECANCELED) {
    cancelled++;
    return;
  }
  done++;
  if (job->err != 0)
    fprintf(stderr, "wordcount: %s: %s\n", job->path, uv_strerror(job->err));
  else
    printf("%8ld %s\n", job->words, job->path);
}

/* Writes a set of sample files so that the demo runs with no arguments. */
static char **make_samples(const char *dir, int n) {
  char **paths = calloc((size_t)n, sizeof(*paths));
  for (int i = 0; i < n && paths != NULL; i++) {
    paths[i] = malloc(strlen(dir) + 32);
    if (paths[i] == NULL)
      exit(1);
    sprintf(paths[i], "%s/words-%03d.txt", dir, i);
    FILE *fp = fopen(paths[i], "w");
    if (fp == NULL)
      exit(1);
    for (int k = 0; k <= i; k++)
      fputs("the quick brown fox jumps over the lazy dog\n", fp);
    fclose(fp);
  }
  return paths;
}

int main(int argc, char **argv) {
  uv_loop_t *loop = uv_default_loop();
  char **paths = argv + 1;
  char tmpl[] = "/tmp/wordcount-XXXXXX";
  int nfiles = argc - 1, keep = -1, rc;
  if (argc > 2 && strcmp(argv[1], "-n") == 0) {
    keep = atoi(argv[2]);
    paths += 2;
    nfiles -= 2;
  }
  bool samples = nfiles <= 0;
  if (samples) {
    if (mkdtemp(tmpl) == NULL)
      return 1;
    nfiles = 100;
    paths = make_samples(tmpl, nfiles);
  }
#ifndef WORDCOUNT_LIBUV
  /* MIGRATION: one pool per loop, where libuv has one per process. */
  uvpool_t *pool;
  rc = uvpool_new(loop, NULL, &pool);
  if (rc != 0) {
    fprintf(stderr, "uvpool_new: %s\n", uv_strerror(rc));
    return 1;
  }
#endif
  job_t *jobs = calloc((size_t)nfiles, sizeof(*jobs));
  if (jobs == NULL)
    return 1;
  for (int i = 0; i < nfiles; i++) {
    jobs[i].path = paths[i];
    jobs[i].req.data = &jobs[i];
#ifdef WORDCOUNT_LIBUV
    rc = uv_queue_work(loop, &jobs[i].req, count_words, on_counted);
#else
    /* MIGRATION: the pool instead of the loop. */
    rc = uvpool_queue_work(pool, &jobs[i].req, count_words, on_counted);
#endif
    if (rc != 0) {
      fprintf(stderr, "queue: %s\n", uv_strerror(rc));
      return 1;
    }
  }
  /* Drop what the client no longer wants: only requests that have not
   * started can be cancelled; their callbacks see UV_ECANCELED. */
  size_t refused = 0;
  for (int i = keep >= 0 ? keep : nfiles; i < nfiles; i++) {
#ifdef WORDCOUNT_LIBUV
    rc = uv_cancel((uv_req_t *)&jobs[i].req);
#else
    /* MIGRATION: uv_cancel becomes uvpool_cancel_work. */
    rc = uvpool_cancel_work(&jobs[i].req);
#endif
    if (rc == UV_EBUSY)
      refused++; /* it started already */
  }
  uv_run(loop, UV_RUN_DEFAULT);
#ifndef WORDCOUNT_LIBUV
  /* MIGRATION: closing drains and joins the pool's threads; libuv's stay
   * until the process exits. */
  uvpool_close(pool, 0, NULL, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
#endif
  fprintf(stderr, "counted %zu files, cancelled %zu (%zu had started)\n", done,
          cancelled, refused);
  if (samples) {
    for (int i = 0; i < nfiles; i++) {
      unlink(paths[i]);
      free(paths[i]);
    }
    free(paths);
    rmdir(tmpl);
  }
  free(jobs);
  rc = uv_loop_close(loop);
  return rc == 0 && done + cancelled == (size_t)nfiles ? 0 : 1;
}
