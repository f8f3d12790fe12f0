/* kvd_latency: PING round-trip times against a RESP server while other
 * connections keep it busy with DEBUG SLEEP.
 *
 * One connection sends PING, waits for +PONG, records the round trip,
 * pauses --interval-ms and repeats, --pings times or until --duration-ms
 * passed. Meanwhile --sleepers connections each keep one
 * "DEBUG SLEEP <--sleep>" outstanding, re-sending it as soon as it is
 * answered. A server whose loop stays free answers PING at once; one that
 * runs the sleeps on its loop makes PING wait behind them.
 *
 * Prints one line:
 *   pings=N p50_ms=X p99_ms=Y max_ms=Z sleeps=S errors=E
 * A PING still unanswered at the deadline counts with the time it has
 * waited so far (a lower bound). Exits 0 if no reply was an error or
 * unexpected and, with --max-p99-ms, p99 is within the bound; 1 if not;
 * 2 on usage or connection errors.
 *
 * SPDX-License-Identifier: MIT
 */
#include <math.h>
#include <poll.h>

#include "client.h"

#define MAX_SLEEPERS 64

typedef struct {
  redisReader *rd;
  int fd;
  int outstanding;
} peer_t;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double percentile(const double *sorted, int n, double p) {
  int i = (int)ceil(p * n) - 1;
  return sorted[i < 0 ? 0 : i];
}

static int is_status(const redisReply *r, const char *s) {
  return r->type == REDIS_REPLY_STATUS && strcmp(r->str, s) == 0;
}

static const char usage[] =
    "usage: kvd_latency --port P [--pings N] [--interval-ms MS] "
    "[--duration-ms MS] [--sleepers K] [--sleep SECONDS] [--max-p99-ms MS]";

int main(int argc, char **argv) {
  int port = -1, pings = 200, sleepers = 8;
  double interval = 5, duration = 3000, max_p99 = -1;
  const char *sleep_s = "0.2";
  if (argc % 2 == 0) /* options come in pairs */
    die("%s", usage);
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *v = argv[i + 1];
    if (strcmp(argv[i], "--port") == 0)
      port = atoi(v);
    else if (strcmp(argv[i], "--pings") == 0)
      pings = atoi(v);
    else if (strcmp(argv[i], "--interval-ms") == 0)
      interval = atof(v);
    else if (strcmp(argv[i], "--duration-ms") == 0)
      duration = atof(v);
    else if (strcmp(argv[i], "--sleepers") == 0)
      sleepers = atoi(v);
    else if (strcmp(argv[i], "--sleep") == 0)
      sleep_s = v;
    else if (strcmp(argv[i], "--max-p99-ms") == 0)
      max_p99 = atof(v);
    else
      die("%s", usage);
  }
  if (port <= 0 || pings <= 0 || sleepers < 0 || sleepers > MAX_SLEEPERS)
    die("%s", usage);

  char sleep_cmd[128], ping_cmd[32];
  const char *sargv[] = {"DEBUG", "SLEEP", sleep_s}, *pargv[] = {"PING"};
  size_t sleep_len = resp_cmd(sleep_cmd, sizeof sleep_cmd, 3, sargv);
  size_t ping_len = resp_cmd(ping_cmd, sizeof ping_cmd, 1, pargv);

  /* peers[0] pings; the others sleep. */
  peer_t peers[MAX_SLEEPERS + 1];
  int npeers = sleepers + 1;
  for (int i = 0; i < npeers; i++) {
    peers[i].fd = connect_port(port);
    peers[i].rd = redisReaderCreate();
    peers[i].outstanding = 0;
  }
  for (int i = 1; i < npeers; i++) {
    if (send_all(peers[i].fd, sleep_cmd, sleep_len) != 0)
      die("send failed");
    peers[i].outstanding = 1;
  }

  double *rtt = calloc((size_t)pings, sizeof *rtt);
  int done = 0, sleeps = 0, errors = 0, in_flight = 0, late = 0;
  double start = mono_ms(), deadline = start + duration, next_ping = start;
  double sent_at = 0;
  /* After the pings, outstanding sleeps are waited for, within bounds, so
   * that the server is idle when this program exits. */
  double drain_deadline = 0;

  for (;;) {
    double now = mono_ms();
    int pinging = done < pings && now < deadline;
    if (!pinging && in_flight) { /* deadline hit while waiting */
      rtt[done++] = now - sent_at;
      in_flight = 0;
      late++;
    }
    if (!pinging) {
      int left = 0;
      for (int i = 1; i < npeers; i++)
        left += peers[i].outstanding;
      if (left == 0)
        break;
      if (drain_deadline == 0)
        drain_deadline = now + 10000;
      if (now >= drain_deadline)
        break;
    }
    if (pinging && !in_flight && now >= next_ping) {
      if (send_all(peers[0].fd, ping_cmd, ping_len) != 0)
        die("send failed");
      sent_at = now;
      in_flight = 1;
    }
    double wait = !pinging    ? drain_deadline - now
                  : in_flight ? deadline - now
                              : next_ping - now;
    struct pollfd pfd[MAX_SLEEPERS + 1];
    for (int i = 0; i < npeers; i++)
      pfd[i] = (struct pollfd){.fd = peers[i].fd, .events = POLLIN};
    int n = poll(pfd, (nfds_t)npeers, wait < 0 ? 0 : (int)ceil(wait));
    if (n < 0 && errno != EINTR)
      die("poll: %s", strerror(errno));
    now = mono_ms();
    for (int i = 0; i < npeers && n > 0; i++) {
      if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      if (recv_into(peers[i].fd, peers[i].rd) <= 0)
        die("connection %d closed by the server", i);
      void *obj;
      while (redisReaderGetReply(peers[i].rd, &obj) == REDIS_OK && obj) {
        redisReply *r = obj;
        if (i == 0 && !in_flight) {
          /* the late answer to a PING already counted at the deadline */
          if (!is_status(r, "PONG") || late == 0)
            errors++;
          else
            late--;
        } else if (i == 0) {
          if (!is_status(r, "PONG"))
            errors++;
          rtt[done++] = now - sent_at;
          in_flight = 0;
          next_ping = now + interval;
        } else {
          if (!is_status(r, "OK"))
            errors++;
          sleeps++;
          peers[i].outstanding = 0;
          if (done < pings && now < deadline) {
            if (send_all(peers[i].fd, sleep_cmd, sleep_len) != 0)
              die("send failed");
            peers[i].outstanding = 1;
          }
        }
        freeReplyObject(r);
      }
    }
  }
  for (int i = 0; i < npeers; i++) {
    close(peers[i].fd);
    redisReaderFree(peers[i].rd);
  }
  if (done == 0)
    die("no PING was sent");
  qsort(rtt, (size_t)done, sizeof *rtt, cmp_double);
  double p50 = percentile(rtt, done, 0.50), p99 = percentile(rtt, done, 0.99);
  printf("pings=%d p50_ms=%.3f p99_ms=%.3f max_ms=%.3f sleeps=%d errors=%d\n",
         done, p50, p99, rtt[done - 1], sleeps, errors);
  free(rtt);
  if (errors > 0 || (max_p99 >= 0 && p99 > max_p99))
    return 1;
  return 0;
}
