/* A minimal consumer of an installed uvpool: submit, callback, close. */
#include <stdio.h>
#include <uvpool.h>

static int work(void *arg, void **result) {
  *result = arg;
  return 0;
}

static void done(uvpool_future_t *f, void *data) {
  *(int *)data = uvpool_future_status(f) == 0 ? 1 : -1;
}

int main(void) {
  uv_loop_t loop;
  uvpool_t *pool;
  uvpool_future_t *f;
  int ok = 0;
  if (uv_loop_init(&loop) != 0 || uvpool_new(&loop, NULL, &pool) != 0 ||
      uvpool_submit(pool, work, &ok, &f) != 0 ||
      uvpool_future_on_done(f, done, &ok) != 0)
    return 1;
  uvpool_future_unref(f);
  uv_run(&loop, UV_RUN_DEFAULT);
  uvpool_close(pool, 0, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  printf("consumer: uvpool %s %s\n", uvpool_version_string(),
         ok == 1 ? "ok" : "FAILED");
  return ok == 1 && uv_loop_close(&loop) == 0 ? 0 : 1;
}
