/* kvd: request parsing (see proto.h).
 *
 * hiredis' reader does the RESP work. kvd looks at two pieces of the
 * reader's public state (redisReader in <hiredis/read.h>) that its API does
 * not wrap: the position of the next unparsed byte, to recognise inline
 * commands at a request boundary, and the task being read, to apply the
 * bulk length limit as soon as a "$<len>" header has arrived. Both are read
 * through TASK() so that hiredis 0.14 and 1.x layouts work.
 *
 * SPDX-License-Identifier: MIT
 */
#include "proto.h"

#include <ctype.h>
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <stdarg.h>

#include "util.h"

/* Redis' PROTO_INLINE_MAX_SIZE: longest inline command or header line. */
#define LINE_MAX_BYTES ((size_t)64 * 1024)
/* Argument slots allocated before the arguments arrive; more are added as
 * they do, so a "*2000000000" header alone costs nothing. */
#define PREALLOC_ARGS 1024

#if HIREDIS_MAJOR >= 1
#define TASK(r, i) ((r)->task[i])
#else
#define TASK(r, i) (&(r)->rstack[i])
#endif

struct proto {
  redisReader *r;
  size_t max_bulk;
  char err[160]; /* set by the object functions when they reject input */
};

/* Returned for "*-1" and "*0", which Redis silently skips. */
static char empty_request;

static req_t *req_new(size_t hint) {
  req_t *q = xmalloc(sizeof *q);
  q->argc = 0;
  q->cap = hint < 1 ? 1 : hint > PREALLOC_ARGS ? PREALLOC_ARGS : (int)hint;
  q->argv = xmalloc(sizeof *q->argv * (size_t)q->cap);
  q->argl = xmalloc(sizeof *q->argl * (size_t)q->cap);
  return q;
}

static void req_push(req_t *q, const char *s, size_t len) {
  if (q->argc == q->cap) {
    q->cap *= 2;
    q->argv = xrealloc(q->argv, sizeof *q->argv * (size_t)q->cap);
    q->argl = xrealloc(q->argl, sizeof *q->argl * (size_t)q->cap);
  }
  char *a = xmalloc(len + 1);
  memcpy(a, s, len);
  a[len] = '\0';
  q->argv[q->argc] = a;
  q->argl[q->argc] = len;
  q->argc++;
}

void req_free(req_t *q) {
  if (q == NULL)
    return;
  for (int i = 0; i < q->argc; i++)
    free(q->argv[i]);
  free(q->argv);
  free(q->argl);
  free(q);
}

/* Records why the input was rejected; the first reason wins. Returning NULL
 * from an object function then makes hiredis stop with an error. */
static void *reject(const redisReadTask *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void *reject(const redisReadTask *t, const char *fmt, ...) {
  proto_t *p = t->privdata;
  if (p->err[0] == '\0') {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
  }
  return NULL;
}

static char type_byte(int type) {
  switch (type) {
  case REDIS_REPLY_STATUS:
    return '+';
  case REDIS_REPLY_ERROR:
    return '-';
  case REDIS_REPLY_INTEGER:
    return ':';
  case REDIS_REPLY_ARRAY:
    return '*';
  default:
    return '?';
  }
}

static void *on_string(const redisReadTask *t, char *s, size_t len) {
  proto_t *p = t->privdata;
  if (t->parent == NULL || t->type != REDIS_REPLY_STRING)
    return reject(t, "expected '$', got '%c'", type_byte(t->type));
  if (len > p->max_bulk)
    return reject(t, "invalid bulk length");
  req_t *q = t->parent->obj;
  req_push(q, s, len);
  return q;
}

#if HIREDIS_MAJOR >= 1
static void *on_array(const redisReadTask *t, size_t n) {
#else
static void *on_array(const redisReadTask *t, int n) {
#endif
  if (t->parent != NULL)
    return reject(t, "expected '$', got '*'");
  if (n <= 0)
    return &empty_request;
  return req_new((size_t)n);
}

static void *on_integer(const redisReadTask *t, long long v) {
  (void)v;
  return reject(t, "expected '$', got ':'");
}

static void *on_nil(const redisReadTask *t) {
  if (t->parent != NULL) /* "$-1" as an argument */
    return reject(t, "invalid bulk length");
  return &empty_request; /* "*-1" */
}

#if HIREDIS_MAJOR >= 1
static void *on_double(const redisReadTask *t, double d, char *s, size_t n) {
  (void)d, (void)s, (void)n;
  return reject(t, "expected '$', got ','");
}

static void *on_bool(const redisReadTask *t, int b) {
  (void)b;
  return reject(t, "expected '$', got '#'");
}
#endif

static void on_free(void *obj) {
  if (obj != &empty_request)
    req_free(obj);
}

static redisReplyObjectFunctions request_functions = {
  .createString = on_string,
  .createArray = on_array,
  .createInteger = on_integer,
  .createNil = on_nil,
#if HIREDIS_MAJOR >= 1
  .createDouble = on_double,
  .createBool = on_bool,
#endif
  .freeObject = on_free,
};

proto_t *proto_new(size_t max_bulk) {
  proto_t *p = xcalloc(1, sizeof *p);
  p->r = redisReaderCreateWithFunctions(&request_functions);
  if (p->r == NULL) {
    fputs("kvd: out of memory\n", stderr);
    abort();
  }
  p->r->privdata = p;
  p->max_bulk = max_bulk;
  return p;
}

void proto_free(proto_t *p) {
  if (p == NULL)
    return;
  redisReaderFree(p->r);
  free(p);
}

void proto_feed(proto_t *p, const char *data, size_t len) {
  if (redisReaderFeed(p->r, data, len) != REDIS_OK && p->r->err == 0) {
    fputs("kvd: out of memory\n", stderr);
    abort();
  }
  /* On a reader already in error, the error is reported by proto_next(). */
}

/* Nonzero between two requests: no request is partly parsed. hiredis'
 * GetReply on an empty remainder leaves a fresh task with no type yet. */
static int at_boundary(const redisReader *r) {
  return r->ridx == -1 || (r->ridx == 0 && TASK(r, 0)->type < 0);
}

/* The byte a backslash escape inside double quotes stands for. */
static char unescape(char e) {
  switch (e) {
  case 'n':
    return '\n';
  case 'r':
    return '\r';
  case 't':
    return '\t';
  case 'b':
    return '\b';
  case 'a':
    return '\a';
  default:
    return e;
  }
}

/* Splits an inline command line like Redis' sdssplitargs(): arguments are
 * separated by blanks; "double quotes" allow \n \r \t \b \a \xHH and \\
 * escapes; 'single quotes' allow \'. A closing quote must be followed by
 * a blank or the end. Returns NULL for unbalanced quotes. */
static req_t *split_args(const char *s, size_t n) {
  req_t *q = req_new(4);
  char *cur = xmalloc(n + 1); /* an argument is never longer than the line */
  size_t i = 0;
  for (;;) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' ||
                     s[i] == '\n' || s[i] == '\v' || s[i] == '\f'))
      i++;
    if (i == n)
      break;
    size_t len = 0;
    int dq = 0, sq = 0, done = 0;
    while (!done) {
      char c = 0;
      if (i < n)
        c = s[i];
      int at_end = i >= n;
      if (dq) {
        if (at_end)
          goto unbalanced;
        if (c == '\\' && i + 3 < n && s[i + 1] == 'x' &&
            isxdigit((unsigned char)s[i + 2]) &&
            isxdigit((unsigned char)s[i + 3])) {
          char hex[3] = {s[i + 2], s[i + 3], 0};
          cur[len++] = (char)strtol(hex, NULL, 16);
          i += 3;
        } else if (c == '\\' && i + 1 < n) {
          cur[len++] = unescape(s[++i]);
        } else if (c == '"') {
          if (i + 1 < n && !strchr(" \t\r\n\v\f", s[i + 1]))
            goto unbalanced;
          done = 1;
        } else {
          cur[len++] = c;
        }
      } else if (sq) {
        if (at_end)
          goto unbalanced;
        if (c == '\\' && i + 1 < n && s[i + 1] == '\'') {
          cur[len++] = '\'';
          i++;
        } else if (c == '\'') {
          if (i + 1 < n && !strchr(" \t\r\n\v\f", s[i + 1]))
            goto unbalanced;
          done = 1;
        } else {
          cur[len++] = c;
        }
      } else if (at_end || c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
                 c == '\v' || c == '\f') {
        done = 1;
      } else if (c == '"') {
        dq = 1;
      } else if (c == '\'') {
        sq = 1;
      } else {
        cur[len++] = c;
      }
      if (!at_end)
        i++;
    }
    req_push(q, cur, len);
  }
  free(cur);
  return q;
unbalanced:
  free(cur);
  req_free(q);
  return NULL;
}

/* Consumes one inline command at the reader's position. */
static int parse_inline(proto_t *p, req_t **out, const char **err) {
  redisReader *r = p->r;
  const char *s = r->buf + r->pos;
  size_t avail = r->len - r->pos;
  const char *nl = memchr(s, '\n', avail);
  if (nl == NULL) {
    if (avail > LINE_MAX_BYTES) {
      *err = "too big inline request";
      return -1;
    }
    return 0;
  }
  size_t n = (size_t)(nl - s);
  if (n > LINE_MAX_BYTES) {
    *err = "too big inline request";
    return -1;
  }
  req_t *q = split_args(s, n > 0 && s[n - 1] == '\r' ? n - 1 : n);
  r->pos += n + 1;
  /* hiredis compacts its buffer only inside GetReply; do what it does, or a
   * client sending only inline commands would grow the buffer forever. */
  if (r->pos >= 1024) {
    /* pos < 1024 + one inline line here (GetReply compacts too), so it
     * fits the int that hiredis 0.14's sdsrange() takes. */
    sdsrange(r->buf, (int)r->pos, -1);
    r->pos = 0;
    r->len = sdslen(r->buf);
  }
  if (q == NULL) {
    *err = "unbalanced quotes in request";
    return -1;
  }
  *out = q;
  return 1;
}

/* Called when hiredis needs more input: rejects what is already known to be
 * bad instead of buffering it, as Redis does. */
static int check_partial(proto_t *p, const char **err) {
  redisReader *r = p->r;
  if (at_boundary(r))
    return 0;
  int type = TASK(r, r->ridx)->type;
  if (type != REDIS_REPLY_STRING && type != REDIS_REPLY_ARRAY)
    return 0;
  const char *s = r->buf + r->pos;
  size_t avail = r->len - r->pos;
  const char *cr = memchr(s, '\r', avail);
  if (cr == NULL) {
    if (avail > LINE_MAX_BYTES) {
      *err = type == REDIS_REPLY_ARRAY ? "too big mbulk count string"
                                       : "too big bulk count string";
      return -1;
    }
    return 0;
  }
  long long n;
  if (type == REDIS_REPLY_STRING &&
      (!parse_ll(s, (size_t)(cr - s), &n) || n < 0 ||
       (unsigned long long)n > p->max_bulk)) {
    *err = "invalid bulk length";
    return -1;
  }
  return 0;
}

/* Describes an error hiredis found itself (ours are in p->err). */
static const char *reader_error(proto_t *p) {
  const char *e = p->r->errstr;
  const char *q = strstr(e, "got \"");
  if (q != NULL && q[5] != '\0' && q[6] == '"') {
    snprintf(p->err, sizeof p->err, "expected '$', got '%c'", q[5]);
    return p->err;
  }
  /* Length errors ("Bad bulk string length", "Multi-bulk length out of
   * range", ... depending on the hiredis version) get Redis' words. */
  if (strstr(e, "ulti-bulk") != NULL || strstr(e, "ultibulk") != NULL)
    return "invalid multibulk length";
  if (strstr(e, "ulk") != NULL)
    return "invalid bulk length";
  snprintf(p->err, sizeof p->err, "invalid request (%s)", e);
  return p->err;
}

int proto_next(proto_t *p, req_t **out, const char **err) {
  redisReader *r = p->r;
  for (;;) {
    if (r->err == 0 && at_boundary(r) && r->pos < r->len &&
        r->buf[r->pos] != '*') {
      req_t *q = NULL;
      int rc = parse_inline(p, &q, err);
      if (rc == 1 && q->argc == 0) { /* blank line: ignored, as by Redis */
        req_free(q);
        continue;
      }
      if (rc == 1)
        *out = q;
      return rc;
    }
    void *obj = NULL;
    if (redisReaderGetReply(r, &obj) != REDIS_OK) {
      *err = p->err[0] ? p->err : reader_error(p);
      return -1;
    }
    if (obj == NULL)
      return check_partial(p, err);
    if (obj == &empty_request)
      continue;
    req_t *q = obj;
    if (q->argc == 0) {
      req_free(q);
      continue;
    }
    *out = q;
    return 1;
  }
}
