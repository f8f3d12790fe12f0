/* kvd_storm: a write storm that records what the server acknowledged,
 * and the check that finds those writes again.
 *
 *   kvd_storm write --port P --keys FILE [--conns N] [--pipeline N]
 *                   [--prefix S] [--timeout-ms MS]
 *     Each of --conns connections keeps --pipeline "SET key value" in
 *     flight, with keys PREFIX:CONN:SEQ, until the server closes the
 *     connection (or the timeout passes). Every key answered +OK is
 *     appended to FILE, which is flushed after every read, so another
 *     process can watch it grow. Prints "acked=N errors=E"; exits 0 if
 *     every connection ended because the server closed it and no reply
 *     was an error.
 *
 *   kvd_storm check --port P --keys FILE
 *     GETs every key of FILE (pipelined) and compares the value. Prints
 *     "checked=N missing=M wrong=W"; exits 0 if nothing is missing or
 *     wrong.
 *
 * SPDX-License-Identifier: MIT
 */
#include <poll.h>

#include "client.h"

#define MAX_CONNS 64
#define KEY_MAX 96

/* The value stored under a key: derived from it, so the check needs only
 * the key list. Contains bytes a text protocol would mangle. */
static size_t value_of(const char *key, char *out, size_t cap) {
  int n = snprintf(out, cap, "value\r\n%s\n\t%s", key, key);
  return (size_t)n < cap ? (size_t)n : cap - 1;
}

static size_t set_cmd(char *out, size_t cap, const char *key) {
  char v[2 * KEY_MAX + 16];
  size_t vl = value_of(key, v, sizeof v);
  int n = snprintf(out, cap, "*3\r\n$3\r\nSET\r\n$%zu\r\n%s\r\n$%zu\r\n",
                   strlen(key), key, vl);
  memcpy(out + n, v, vl);
  out[(size_t)n + vl] = '\r';
  out[(size_t)n + vl + 1] = '\n';
  return (size_t)n + vl + 2;
}

typedef struct {
  int fd;
  redisReader *rd;
  unsigned long long next_seq, acked_seq; /* replies come in order */
  int sending, open;
} conn_t;

static int cmd_write(int port, const char *path, int nconns, int pipeline,
                     const char *prefix, double timeout) {
  FILE *keys = fopen(path, "w");
  if (keys == NULL)
    die("%s: %s", path, strerror(errno));
  conn_t c[MAX_CONNS];
  for (int i = 0; i < nconns; i++) {
    c[i] = (conn_t){.fd = connect_port(port), .rd = redisReaderCreate()};
    c[i].sending = c[i].open = 1;
  }
  unsigned long long acked = 0, errors = 0;
  double deadline = mono_ms() + timeout;
  int open = nconns, timed_out = 0;
  char buf[512], key[KEY_MAX];

  while (open > 0) {
    /* Top up each connection's window of SETs in flight. */
    for (int i = 0; i < nconns; i++) {
      while (c[i].sending &&
             c[i].next_seq - c[i].acked_seq < (unsigned)pipeline) {
        snprintf(key, sizeof key, "%s:%d:%llu", prefix, i, c[i].next_seq);
        size_t len = set_cmd(buf, sizeof buf, key);
        if (send_all(c[i].fd, buf, len) != 0) {
          c[i].sending = 0; /* the server stopped reading: collect replies */
          break;
        }
        c[i].next_seq++;
      }
    }
    double left = deadline - mono_ms();
    if (left <= 0) {
      timed_out = 1;
      break;
    }
    struct pollfd pfd[MAX_CONNS];
    for (int i = 0; i < nconns; i++)
      pfd[i] =
          (struct pollfd){.fd = c[i].open ? c[i].fd : -1, .events = POLLIN};
    if (poll(pfd, (nfds_t)nconns, (int)left + 1) < 0 && errno != EINTR)
      die("poll: %s", strerror(errno));
    for (int i = 0; i < nconns; i++) {
      if (!c[i].open || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      if (recv_into(c[i].fd, c[i].rd) <= 0) {
        c[i].open = c[i].sending = 0;
        open--;
        continue;
      }
      void *obj;
      while (redisReaderGetReply(c[i].rd, &obj) == REDIS_OK && obj) {
        redisReply *r = obj;
        if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0) {
          fprintf(keys, "%s:%d:%llu\n", prefix, i, c[i].acked_seq);
          acked++;
        } else {
          errors++;
        }
        c[i].acked_seq++;
        freeReplyObject(r);
      }
    }
    fflush(keys);
  }
  for (int i = 0; i < nconns; i++) {
    close(c[i].fd);
    redisReaderFree(c[i].rd);
  }
  fclose(keys);
  printf("acked=%llu errors=%llu%s\n", acked, errors,
         timed_out ? " timed_out=1" : "");
  return errors == 0 && !timed_out ? 0 : 1;
}

static int cmd_check(int port, const char *path) {
  FILE *keys = fopen(path, "r");
  if (keys == NULL)
    die("%s: %s", path, strerror(errno));
  int fd = connect_port(port);
  redisReader *rd = redisReaderCreate();
  unsigned long long checked = 0, missing = 0, wrong = 0;
  enum { CHUNK = 512 };
  static char names[CHUNK][KEY_MAX];
  int eof = 0;
  while (!eof) {
    int n = 0;
    char out[CHUNK * (KEY_MAX + 32)];
    size_t len = 0;
    while (n < CHUNK && fgets(names[n], KEY_MAX, keys) != NULL) {
      names[n][strcspn(names[n], "\n")] = '\0';
      const char *argv[] = {"GET", names[n]};
      len += resp_cmd(out + len, sizeof out - len, 2, argv);
      n++;
    }
    eof = n < CHUNK;
    if (n == 0)
      break;
    if (send_all(fd, out, len) != 0)
      die("send failed");
    for (int got = 0; got < n;) {
      void *obj;
      if (redisReaderGetReply(rd, &obj) != REDIS_OK)
        die("bad reply");
      if (obj == NULL) {
        if (recv_into(fd, rd) <= 0)
          die("connection closed during check");
        continue;
      }
      redisReply *r = obj;
      char v[2 * KEY_MAX + 16];
      size_t vl = value_of(names[got], v, sizeof v);
      if (r->type == REDIS_REPLY_NIL) {
        if (missing++ < 5)
          fprintf(stderr, "missing: %s\n", names[got]);
      } else if (r->type != REDIS_REPLY_STRING || r->len != vl ||
                 memcmp(r->str, v, vl) != 0) {
        if (wrong++ < 5)
          fprintf(stderr, "wrong value: %s\n", names[got]);
      }
      checked++;
      got++;
      freeReplyObject(r);
    }
  }
  close(fd);
  redisReaderFree(rd);
  fclose(keys);
  printf("checked=%llu missing=%llu wrong=%llu\n", checked, missing, wrong);
  return missing == 0 && wrong == 0 ? 0 : 1;
}

static const char usage[] =
    "usage: kvd_storm write --port P --keys FILE [--conns N] [--pipeline N]"
    " [--prefix S] [--timeout-ms MS]\n"
    "       kvd_storm check --port P --keys FILE";

int main(int argc, char **argv) {
  int port = -1, conns = 4, pipeline = 32;
  double timeout = 60000;
  const char *path = NULL, *prefix = "storm";
  if (argc < 2 || argc % 2 != 0) /* a mode, then options in pairs */
    die("%s", usage);
  for (int i = 2; i + 1 < argc; i += 2) {
    const char *v = argv[i + 1];
    if (strcmp(argv[i], "--port") == 0)
      port = atoi(v);
    else if (strcmp(argv[i], "--keys") == 0)
      path = v;
    else if (strcmp(argv[i], "--conns") == 0)
      conns = atoi(v);
    else if (strcmp(argv[i], "--pipeline") == 0)
      pipeline = atoi(v);
    else if (strcmp(argv[i], "--prefix") == 0)
      prefix = v;
    else if (strcmp(argv[i], "--timeout-ms") == 0)
      timeout = atof(v);
    else
      die("%s", usage);
  }
  if (port <= 0 || path == NULL || conns < 1 || conns > MAX_CONNS ||
      pipeline < 1 || strlen(prefix) > 40)
    die("%s", usage);
  if (strcmp(argv[1], "write") == 0)
    return cmd_write(port, path, conns, pipeline, prefix, timeout);
  if (strcmp(argv[1], "check") == 0)
    return cmd_check(port, path);
  die("%s", usage);
}
