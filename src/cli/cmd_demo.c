/*
 * cmd_demo.c - `vgpool demo`: three workloads share one simulated GPU, each
 * under its own memory quota, and one of them is refused at its quota.
 *
 *   vgpool demo [--duration S] [--keep]
 *
 * This is the README's first command, for someone who has never seen
 * vgpool, on a machine without a GPU, right after `make`. It needs no setup
 * and leaves nothing behind:
 *
 *   1. It makes a private simulated GPU node in a temporary directory (its
 *      own VGPOOL_SIM_CONFIG / VGPOOL_SIM_STATE, and its own VGPOOL_ROOT for
 *      the container directories) and selects the simulated driver built
 *      beside this binary (<exe>/../sim) with LD_LIBRARY_PATH.
 *   2. It starts the workloads of the table below at the same time, each as
 *      `vgpool run --name NAME --memory QUOTA -- ...` (this binary, run
 *      again through /proc/self/exe), built from the workload tools
 *      vgpool-alloc and vgpool-burn (<exe>/../work/). Every tool writes its
 *      --json summary into the temporary directory.
 *   3. Once every allocation is made, it shows the node as the driver sees
 *      it (`vgpool sim show --json`) and the containers as vgpool sees them
 *      (`vgpool top --once --json`), condensed to 80 columns, and what
 *      cuMemGetInfo reported inside each container.
 *   4. When the workloads end, it prints what each asked for and got, and
 *      checks that the GPU's memory is all free again.
 *
 * Everything it shows comes from the real commands' JSON output, parsed
 * here by a small JSON reader, so the demo shows what a user would see.
 * It doubles as a smoke test of the whole stack (simulator, libvgpool.so,
 * run, top, the tools): anything other than the intended quota refusal is
 * reported with the tool's own message and exit status 1.
 *
 * Compute shares (issue 4): a workload's `cores` field, when set, is passed
 * as `vgpool run --cores`, and the views and the summary then show each
 * container's target beside the achieved share that `vgpool top --json`
 * reports (achieved_share).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "strutil.h"
#include "vgpool/units.h"

#define VGP__DEMO_PATH_MAX 4096
#define VGP__DEMO_DIR_MAX 1024         /* the temporary directory's path */
#define VGP__DEMO_SCRIPT_MAX 8192
#define VGP__DEMO_MSG_MAX 1024
#define VGP__DEMO_MAX_FAILURES 16
#define VGP__DEMO_FILE_MAX (1u << 20)   /* largest output file read back */
#define VGP__DEMO_JSON_DEPTH 32
#define VGP__DEMO_DEFAULT_DURATION 10
#define VGP__DEMO_MIN_DURATION 3
#define VGP__DEMO_MAX_DURATION 120
/* How long the workloads may take to make their allocations, and how long
 * past their duration they may take to end, before the demo gives up. */
#define VGP__DEMO_START_TIMEOUT_S 30
#define VGP__DEMO_END_GRACE_S 60
/* The views are taken at least this long after the start, so NVML's
 * utilization (the last full second) covers the workloads' kernels. */
#define VGP__DEMO_VIEW_AFTER_MS 2500
#define VGP__DEMO_POLL_MS 50
#define VGP__DEMO_SHOW_PROCS 64          /* processes listed in the node view */

/* ------------------------------------------------------------ workloads */

#define VGP__DEMO_ARGS_MAX 8

/* One workload: a container made by `vgpool run`. Inside it, vgpool-alloc
 * allocates `asks` (in 1 GiB chunks, without touching the memory, so the
 * host's RAM is not used) and holds it while the workload runs; when `burn`
 * is set, a vgpool-burn with those arguments runs beside it in the same
 * container. */
struct vgp__demo_workload {
  const char *name;
  const char *memory;        /* --memory quota, as a user types it */
  const char *cores;         /* --cores share in percent; NULL = none */
  const char *asks;          /* vgpool-alloc --limit */
  int expect_refusal;        /* 1: vgpool must refuse it at its quota */
  const char *burn[VGP__DEMO_ARGS_MAX]; /* vgpool-burn options; {NULL} = none */
  const char *story[2];      /* one or two lines for the introduction */
};

static const struct vgp__demo_workload vgp__demo_workloads[] = {
  {.name = "training", .memory = "40GiB", .cores = "60", .asks = "30GiB",
   .burn = {"--saturate", "--kernel-us", "1000", NULL},
   .story = {"holds 30 GiB and runs 1 ms kernels back to back;",
             "its share of 60% holds it to 60% of the GPU's time"}},
  {.name = "inference", .memory = "16GiB", .cores = "30", .asks = "8GiB",
   .burn = {"--rate", "200", "--kernel-us", "500", NULL},
   .story = {"holds 8 GiB and serves 200 requests/s of 0.5 ms",
             "kernels (10% of the GPU), inside its share of 30%"}},
  {.name = "notebook", .memory = "8GiB", .asks = "12GiB", .expect_refusal = 1,
   .burn = {NULL},
   .story = {"asks for 12 GiB, 1 GiB at a time: vgpool should",
             "refuse it once it reaches its quota"}},
};
#define VGP__DEMO_N (sizeof(vgp__demo_workloads) / sizeof(vgp__demo_workloads[0]))

/* The simulated node: one H100 with a smaller context footprint than the
 * preset's, so the numbers stay round. */
#define VGP__DEMO_CONTEXT "256MiB"
static const char vgp__demo_node_conf[] =
    "# vgpool demo: one simulated GPU\n"
    "[device]\n"
    "model = H100-80GB\n"
    "context_memory = " VGP__DEMO_CONTEXT "\n";

/* -------------------------------------------------------- a JSON reader */

/* Just enough JSON to read what vgpool's own commands print: a tree of
 * values, members and elements chained through `next`. Numbers are
 * doubles, exact for byte counts below 2^53. */
enum vgp__jtype { VGP__JNULL, VGP__JBOOL, VGP__JNUM, VGP__JSTR, VGP__JARR, VGP__JOBJ };

struct vgp__jval {
  enum vgp__jtype type;
  double num;                /* JNUM; JBOOL: 0 or 1 */
  char *str;                 /* JSTR, decoded */
  char *key;                 /* the member's name inside an object */
  struct vgp__jval *child;   /* JARR, JOBJ: first element or member */
  struct vgp__jval *next;    /* the next element or member of the parent */
};

static void vgp__jfree(struct vgp__jval *v) {
  while (v != NULL) {
    struct vgp__jval *next = v->next;
    vgp__jfree(v->child);
    free(v->str);
    free(v->key);
    free(v);
    v = next;
  }
}

static void vgp__jws(const char **p) {
  while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
    (*p)++;
}

static int vgp__jhex(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decodes the string literal at *p into a new buffer. \u escapes are
 * written as UTF-8 (surrogate halves one by one: vgpool only escapes
 * control characters). */
static int vgp__jstring(const char **p, char **ret) {
  const char *s = *p + 1, *q = s;
  while (*q != '"') {
    if (*q == '\0' || (unsigned char)*q < 0x20)
      return -EINVAL;
    if (*q == '\\' && *++q == '\0')
      return -EINVAL;
    q++;
  }
  char *out = malloc((size_t)(q - s) + 1);
  if (out == NULL)
    return -ENOMEM;
  size_t n = 0;
  while (s < q) {
    char c = *s++;
    if (c != '\\') {
      out[n++] = c;
      continue;
    }
    c = *s++;
    switch (c) {
    case 'b': out[n++] = '\b'; break;
    case 'f': out[n++] = '\f'; break;
    case 'n': out[n++] = '\n'; break;
    case 'r': out[n++] = '\r'; break;
    case 't': out[n++] = '\t'; break;
    case '"': case '\\': case '/': out[n++] = c; break;
    case 'u': {
      unsigned cp = 0;
      for (int i = 0; i < 4; i++) {
        int h = s < q ? vgp__jhex(*s++) : -1;
        if (h < 0) {
          free(out);
          return -EINVAL;
        }
        cp = cp << 4 | (unsigned)h;
      }
      if (cp < 0x80) {
        out[n++] = (char)cp;
      } else if (cp < 0x800) {
        out[n++] = (char)(0xC0 | cp >> 6);
        out[n++] = (char)(0x80 | (cp & 0x3F));
      } else {
        out[n++] = (char)(0xE0 | cp >> 12);
        out[n++] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[n++] = (char)(0x80 | (cp & 0x3F));
      }
      break;
    }
    default:
      free(out);
      return -EINVAL;
    }
  }
  out[n] = '\0';
  *p = q + 1;
  *ret = out;
  return 0;
}

static int vgp__jvalue(const char **p, int depth, struct vgp__jval **ret);

/* Parses the elements of an array or the members of an object after its
 * opening bracket, up to and including close. */
static int vgp__jlist(const char **p, int depth, struct vgp__jval *v, char close) {
  struct vgp__jval **tail = &v->child;
  vgp__jws(p);
  if (**p == close) {
    (*p)++;
    return 0;
  }
  for (;;) {
    char *key = NULL;
    int r;
    vgp__jws(p);
    if (v->type == VGP__JOBJ) {
      if (**p != '"')
        return -EINVAL;
      r = vgp__jstring(p, &key);
      if (r < 0)
        return r;
      vgp__jws(p);
      if (**p != ':') {
        free(key);
        return -EINVAL;
      }
      (*p)++;
    }
    r = vgp__jvalue(p, depth + 1, tail);
    if (r < 0) {
      free(key);
      return r;
    }
    (*tail)->key = key;
    tail = &(*tail)->next;
    vgp__jws(p);
    if (**p == ',') {
      (*p)++;
      continue;
    }
    if (**p != close)
      return -EINVAL;
    (*p)++;
    return 0;
  }
}

static int vgp__jvalue(const char **p, int depth, struct vgp__jval **ret) {
  struct vgp__jval *v;
  int r = 0;
  if (depth > VGP__DEMO_JSON_DEPTH)
    return -E2BIG;
  vgp__jws(p);
  v = calloc(1, sizeof(*v));
  if (v == NULL)
    return -ENOMEM;
  *ret = v;  /* linked at once, so the caller frees it on any error */
  switch (**p) {
  case '{':
  case '[':
    v->type = **p == '{' ? VGP__JOBJ : VGP__JARR;
    (*p)++;
    r = vgp__jlist(p, depth, v, v->type == VGP__JOBJ ? '}' : ']');
    break;
  case '"':
    v->type = VGP__JSTR;
    r = vgp__jstring(p, &v->str);
    break;
  case 't':
  case 'f':
  case 'n': {
    static const char *const words[] = {"true", "false", "null"};
    r = -EINVAL;
    for (int i = 0; i < 3; i++) {
      size_t len = strlen(words[i]);
      if (strncmp(*p, words[i], len) == 0) {
        v->type = i == 2 ? VGP__JNULL : VGP__JBOOL;
        v->num = i == 0;
        *p += len;
        r = 0;
        break;
      }
    }
    break;
  }
  default: {
    char *end;
    if (**p != '-' && (**p < '0' || **p > '9'))
      return -EINVAL;
    v->type = VGP__JNUM;
    v->num = strtod(*p, &end);
    if (end == *p)
      return -EINVAL;
    *p = end;
    break;
  }
  }
  return r;
}

/* Parses one JSON value filling all of text (surrounding blanks allowed). */
static int vgp__jparse(const char *text, struct vgp__jval **ret) {
  struct vgp__jval *v = NULL;
  const char *p = text;
  int r = vgp__jvalue(&p, 0, &v);
  if (r == 0) {
    vgp__jws(&p);
    if (*p != '\0')
      r = -EINVAL;
  }
  if (r < 0) {
    vgp__jfree(v);
    return r;
  }
  *ret = v;
  return 0;
}

/* The member `key` of object o, or NULL. */
static const struct vgp__jval *vgp__jget(const struct vgp__jval *o, const char *key) {
  if (o == NULL || o->type != VGP__JOBJ)
    return NULL;
  for (const struct vgp__jval *m = o->child; m != NULL; m = m->next)
    if (strcmp(m->key, key) == 0)
      return m;
  return NULL;
}

static int vgp__jhas_num(const struct vgp__jval *o, const char *key) {
  const struct vgp__jval *m = vgp__jget(o, key);
  return m != NULL && m->type == VGP__JNUM;
}

static double vgp__jnum(const struct vgp__jval *o, const char *key) {
  const struct vgp__jval *m = vgp__jget(o, key);
  return m != NULL && m->type == VGP__JNUM ? m->num : 0.0;
}

static uint64_t vgp__jbytes(const struct vgp__jval *o, const char *key) {
  double d = vgp__jnum(o, key);
  return d > 0 ? (uint64_t)d : 0;
}

static const char *vgp__jstr(const struct vgp__jval *o, const char *key) {
  const struct vgp__jval *m = vgp__jget(o, key);
  return m != NULL && m->type == VGP__JSTR ? m->str : "";
}

/* The first element of the array member `key`, or NULL. */
static const struct vgp__jval *vgp__jfirst(const struct vgp__jval *o, const char *key) {
  const struct vgp__jval *m = vgp__jget(o, key);
  return m != NULL && m->type == VGP__JARR ? m->child : NULL;
}

/* ---------------------------------------------------------------- state */

struct vgp__demo_run {
  const struct vgp__demo_workload *w;
  uint64_t quota;            /* --memory, parsed */
  uint64_t asks;             /* vgpool-alloc --limit, parsed */
  pid_t pid;                 /* the `vgpool run`, 0 once reaped */
  int status;                /* its exit status, -1 while running */
  int failed;                /* the checks found something wrong */
  char alloc_out[VGP__DEMO_PATH_MAX], alloc_err[VGP__DEMO_PATH_MAX];
  char burn_out[VGP__DEMO_PATH_MAX], burn_err[VGP__DEMO_PATH_MAX];
  char run_err[VGP__DEMO_PATH_MAX];
  struct vgp__jval *alloc;   /* vgpool-alloc's summary, once read */
  struct vgp__jval *burn;    /* vgpool-burn's summary, once read */
  /* From `vgpool top --json` while it ran: */
  int seen;
  uint64_t used, limit, oom_events;
  unsigned cores;
  int have_achieved;
  double achieved;
};

struct vgp__demo {
  int color;
  int keep;
  unsigned duration_s;
  char dir[VGP__DEMO_DIR_MAX];         /* the temporary directory */
  char sim_dir[VGP__DEMO_PATH_MAX];
  char alloc_exe[VGP__DEMO_PATH_MAX];
  char burn_exe[VGP__DEMO_PATH_MAX];
  uint64_t t0;                         /* monotonic ns at the start */
  struct vgp__demo_run runs[VGP__DEMO_N];
  int nfail;
  char failures[VGP__DEMO_MAX_FAILURES][VGP__DEMO_MSG_MAX];
};

static volatile sig_atomic_t vgp__demo_signal;

static void vgp__demo_on_signal(int sig) { vgp__demo_signal = sig; }

static void vgp__demo_fail(struct vgp__demo *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Records something that went wrong; all of them are printed at the end. */
static void vgp__demo_fail(struct vgp__demo *d, const char *fmt, ...) {
  va_list ap;
  if (d->nfail >= VGP__DEMO_MAX_FAILURES)
    return;
  va_start(ap, fmt);
  vsnprintf(d->failures[d->nfail++], VGP__DEMO_MSG_MAX, fmt, ap);
  va_end(ap);
}

/* --------------------------------------------------------------- output */

enum vgp__demo_style { VGP__PLAIN, VGP__BOLD, VGP__GOOD, VGP__NOTE, VGP__BAD };

static const char *vgp__demo_on(const struct vgp__demo *d, enum vgp__demo_style s) {
  static const char *const codes[] = {"", "\033[1m", "\033[32m", "\033[33m", "\033[1;31m"};
  return d->color ? codes[s] : "";
}

static const char *vgp__demo_off(const struct vgp__demo *d, enum vgp__demo_style s) {
  return d->color && s != VGP__PLAIN ? "\033[0m" : "";
}

static void vgp__demo_heading(const struct vgp__demo *d, const char *text) {
  printf("\n%s%s%s\n\n", vgp__demo_on(d, VGP__BOLD), text, vgp__demo_off(d, VGP__BOLD));
}

/* A size as vgp_format_size writes it, without a ".00" that says nothing
 * ("40 GiB", "7.25 GiB", "256 MiB"). */
static char *vgp__demo_size(uint64_t bytes, char *buf, size_t len) {
  vgp_format_size(bytes, buf, len);
  char *dot = strstr(buf, ".00 ");
  if (dot != NULL)
    memmove(dot, dot + 3, strlen(dot + 3) + 1);
  return buf;
}

/* Prints text wrapped at word boundaries to fit 80 columns: the first line
 * after `first`, the others after `rest`. Newlines in text start new lines
 * (their own leading blanks are kept); a word longer than a line is not
 * broken. */
static void vgp__demo_wrap(const char *text, const char *first, const char *rest) {
  const size_t width = 79;
  const char *p = text;
  size_t col = (size_t)printf("%s", first), indent = 0;
  int line_start = 1;
  while (*p != '\0') {
    if (*p == '\n') {
      col = (size_t)printf("\n%s", rest);
      p++;
      line_start = 1;
      for (indent = 0; *p == ' '; indent++)  /* keep the line's own indentation */
        col += (size_t)printf("%c", *p++);
      continue;
    }
    if (*p == ' ') {
      p++;
      continue;
    }
    size_t n = strcspn(p, " \n");
    if (!line_start && col + 1 + n > width) {
      col = (size_t)printf("\n%s%*s", rest, (int)indent, "") - 1;
    } else if (!line_start) {
      putchar(' ');
      col++;
    }
    col += (size_t)printf("%.*s", (int)n, p);
    p += n;
    line_start = 0;
  }
  putchar('\n');
}

/* ---------------------------------------------------------------- files */

/* Reads a whole file (at most VGP__DEMO_FILE_MAX bytes) into a new
 * NUL-terminated buffer. */
static int vgp__demo_read(const char *path, char **ret) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  size_t cap = 4096, used = 0;
  char *buf = malloc(cap);
  if (buf == NULL) {
    close(fd);
    return -ENOMEM;
  }
  for (;;) {
    if (used + 1 == cap) {
      if (cap >= VGP__DEMO_FILE_MAX)
        break;
      char *bigger = realloc(buf, cap * 2);
      if (bigger == NULL) {
        free(buf);
        close(fd);
        return -ENOMEM;
      }
      buf = bigger;
      cap *= 2;
    }
    ssize_t n = read(fd, buf + used, cap - 1 - used);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int e = -errno;
      free(buf);
      close(fd);
      return e;
    }
    if (n == 0)
      break;
    used += (size_t)n;
  }
  buf[used] = '\0';
  close(fd);
  *ret = buf;
  return 0;
}

/* 1 once the file holds at least one complete line. */
static int vgp__demo_has_line(const char *path) {
  char *text = NULL;
  if (vgp__demo_read(path, &text) < 0)
    return 0;
  int ok = strchr(text, '\n') != NULL;
  free(text);
  return ok;
}

/* Parses a file holding one JSON object (a tool's --json summary). */
static int vgp__demo_read_json(const char *path, struct vgp__jval **ret) {
  char *text = NULL;
  int r = vgp__demo_read(path, &text);
  if (r < 0)
    return r;
  r = vgp__jparse(text, ret);
  free(text);
  return r;
}

/* The last lines of a file (a tool's stderr), with every line indented,
 * for failure messages. Empty if the file is empty or missing. */
static void vgp__demo_tail(const char *path, char *buf, size_t len) {
  char *text = NULL;
  buf[0] = '\0';
  if (vgp__demo_read(path, &text) < 0)
    return;
  size_t n = strlen(text);
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
    text[--n] = '\0';
  const char *start = text;
  if (n > 600) {
    start = text + n - 600;
    const char *nl = strchr(start, '\n');
    if (nl != NULL)
      start = nl + 1;
  }
  size_t o = 0;
  for (const char *p = start; *p != '\0' && o + 8 < len; p++) {
    if (p == start || p[-1] == '\n') {
      memcpy(buf + o, "\n  ", 3);
      o += 3;
    }
    if (*p != '\n')
      buf[o++] = *p;
  }
  buf[o] = '\0';
  free(text);
}

static int vgp__demo_write(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return -errno;
  size_t len = strlen(text), off = 0;
  while (off < len) {
    ssize_t n = write(fd, text + off, len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int e = -errno;
      close(fd);
      return e;
    }
    off += (size_t)n;
  }
  return close(fd) < 0 ? -errno : 0;
}

static int vgp__demo_rm_entry(const char *path, const struct stat *st, int flag,
                              struct FTW *ftw) {
  (void)st;
  (void)ftw;
  if (flag == FTW_DP)
    return rmdir(path) < 0 ? -1 : 0;
  return unlink(path) < 0 ? -1 : 0;
}

/* Removes the temporary directory and everything in it. */
static void vgp__demo_cleanup(struct vgp__demo *d) {
  if (d->dir[0] == '\0')
    return;
  if (nftw(d->dir, vgp__demo_rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
    fprintf(stderr, "vgpool demo: could not remove %s entirely: %s\n", d->dir,
            strerror(errno));
  d->dir[0] = '\0';
}

/* ------------------------------------------------------------ processes */

/* Starts `vgpool ARGV...` (this binary) with stdin from /dev/null and
 * stdout and stderr into files. Returns the pid or -errno. */
static pid_t vgp__demo_spawn(char *const argv[], const char *out, const char *err) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0)
    return -errno;
  if (pid > 0)
    return pid;
  /* The child starts with the signal state a shell would give it. */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGHUP, SIG_DFL);
  int in = open("/dev/null", O_RDONLY);
  int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (in < 0 || o < 0 || e < 0 || dup2(in, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
    _exit(126);
  execv("/proc/self/exe", argv);
  dprintf(2, "vgpool demo: cannot run /proc/self/exe: %s\n", strerror(errno));
  _exit(127);
}

/* An exit status as the shell reports it: 128+N for signal N. */
static int vgp__demo_status(int ws) {
  if (WIFEXITED(ws))
    return WEXITSTATUS(ws);
  if (WIFSIGNALED(ws))
    return 128 + WTERMSIG(ws);
  return 255;
}

/* Runs `vgpool ARGS...` to completion and parses its stdout as one JSON
 * value. Returns 0, or -errno with a message in err. */
static int vgp__demo_query(struct vgp__demo *d, const char *tag, char *const argv[],
                           struct vgp__jval **ret, char *err, size_t errlen) {
  char out[VGP__DEMO_PATH_MAX], errf[VGP__DEMO_PATH_MAX], tail[VGP__DEMO_MSG_MAX];
  char *text = NULL;
  int ws, r;
  snprintf(out, sizeof(out), "%s/%s.json", d->dir, tag);
  snprintf(errf, sizeof(errf), "%s/%s.err", d->dir, tag);
  pid_t pid = vgp__demo_spawn(argv, out, errf);
  if (pid < 0) {
    vgp__errf(err, errlen, "cannot start vgpool %s: %s", argv[1], strerror((int)-pid));
    return (int)pid;
  }
  while (waitpid(pid, &ws, 0) < 0)
    if (errno != EINTR)
      return -errno;
  vgp__demo_tail(errf, tail, sizeof(tail));
  if (vgp__demo_status(ws) != 0) {
    vgp__errf(err, errlen, "`vgpool %s %s` exited with status %d:%s", argv[1],
              argv[2] != NULL ? argv[2] : "", vgp__demo_status(ws), tail);
    return -EIO;
  }
  r = vgp__demo_read(out, &text);
  if (r == 0) {
    r = vgp__jparse(text, ret);
    free(text);
  }
  if (r < 0)
    vgp__errf(err, errlen, "cannot read the output of `vgpool %s`: %s", argv[1],
              r == -EINVAL ? "not valid JSON" : strerror(-r));
  return r;
}

static int vgp__demo_sim_show(struct vgp__demo *d, struct vgp__jval **ret, char *err,
                              size_t errlen) {
  char *argv[] = {"vgpool", "sim", "show", "--json", NULL};
  return vgp__demo_query(d, "sim-show", argv, ret, err, errlen);
}

static int vgp__demo_top(struct vgp__demo *d, struct vgp__jval **ret, char *err,
                         size_t errlen) {
  char *argv[] = {"vgpool", "top", "--once", "--json", NULL};
  return vgp__demo_query(d, "top", argv, ret, err, errlen);
}

/* Sleeps up to ms, returning early when a signal arrived. */
static void vgp__demo_nap(unsigned ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Reaps the workloads that ended. Returns how many still run. */
static int vgp__demo_reap(struct vgp__demo *d) {
  int running = 0;
  for (size_t i = 0; i < VGP__DEMO_N; i++) {
    struct vgp__demo_run *r = &d->runs[i];
    int ws;
    if (r->pid <= 0)
      continue;
    pid_t p = waitpid(r->pid, &ws, WNOHANG);
    if (p == r->pid) {
      r->status = vgp__demo_status(ws);
      r->pid = 0;
    } else if (p < 0 && errno == ECHILD) {
      r->status = 255;
      r->pid = 0;
    } else {
      running++;
    }
  }
  return running;
}

/* Stops the workloads still running: SIGTERM to each `vgpool run` (which
 * forwards it to the workload), then SIGKILL after a grace period. */
static void vgp__demo_stop(struct vgp__demo *d) {
  for (size_t i = 0; i < VGP__DEMO_N; i++)
    if (d->runs[i].pid > 0)
      kill(d->runs[i].pid, SIGTERM);
  uint64_t deadline = vgp__now_ns() + 5 * VGP_NSEC_PER_SEC;
  while (vgp__demo_reap(d) > 0 && vgp__now_ns() < deadline)
    vgp__demo_nap(VGP__DEMO_POLL_MS);
  for (size_t i = 0; i < VGP__DEMO_N; i++)
    if (d->runs[i].pid > 0)
      kill(d->runs[i].pid, SIGKILL);
  while (vgp__demo_reap(d) > 0)
    vgp__demo_nap(VGP__DEMO_POLL_MS);
}

/* ---------------------------------------------------------------- setup */

/* Appends s to buf quoted for sh (single quotes). */
static int vgp__demo_quote(char *buf, size_t len, const char *s) {
  size_t o = strlen(buf);
  if (o + 1 >= len)
    return -ENAMETOOLONG;
  buf[o++] = '\'';
  for (; *s != '\0'; s++) {
    const char *piece = *s == '\'' ? "'\\''" : NULL;
    size_t n = piece != NULL ? strlen(piece) : 1;
    if (o + n + 2 >= len)
      return -ENAMETOOLONG;
    if (piece != NULL)
      memcpy(buf + o, piece, n);
    else
      buf[o] = *s;
    o += n;
  }
  buf[o++] = '\'';
  buf[o] = '\0';
  return 0;
}

/* Appends formatted text to buf; -ENAMETOOLONG when it does not fit. */
static int vgp__demo_append(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int vgp__demo_append(char *buf, size_t len, const char *fmt, ...) {
  size_t o = strlen(buf);
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + o, len - o, fmt, ap);
  va_end(ap);
  return n < 0 || (size_t)n >= len - o ? -ENAMETOOLONG : 0;
}

static int vgp__demo_exists(const char *dir, const char *name, char *buf, size_t len) {
  int n = snprintf(buf, len, "%s/%s", dir, name);
  return n > 0 && (size_t)n < len && access(buf, F_OK) == 0;
}

/* Finds the simulated driver and the workload tools built (or installed)
 * beside this binary. */
static int vgp__demo_find_parts(struct vgp__demo *d) {
  const char *exe = vgp_cli_exe_dir();
  char dir[VGP__DEMO_PATH_MAX], probe[VGP__DEMO_PATH_MAX];
  snprintf(dir, sizeof(dir), "%s/../sim", exe);
  if (!vgp__demo_exists(dir, "libcuda.so.1", probe, sizeof(probe)))
    snprintf(dir, sizeof(dir), "%s/../lib/vgpool/sim", exe);
  if (!vgp__demo_exists(dir, "libcuda.so.1", probe, sizeof(probe)) ||
      !vgp__demo_exists(dir, "libnvidia-ml.so.1", probe, sizeof(probe))) {
    fprintf(stderr,
            "vgpool demo: cannot find the simulated driver (libcuda.so.1 and\n"
            "libnvidia-ml.so.1) in %s/../sim or %s/../lib/vgpool/sim; build vgpool\n"
            "first (make) and run the vgpool binary from the build tree\n",
            exe, exe);
    return -ENOENT;
  }
  if (realpath(dir, d->sim_dir) == NULL)
    return -errno;

  static const char *const tools[] = {"vgpool-alloc", "vgpool-burn"};
  char *dest[] = {d->alloc_exe, d->burn_exe};
  for (int i = 0; i < 2; i++) {
    snprintf(dir, sizeof(dir), "%s/../work", exe);
    if (!vgp__demo_exists(dir, tools[i], probe, sizeof(probe)) &&
        !vgp__demo_exists(exe, tools[i], probe, sizeof(probe))) {
      fprintf(stderr, "vgpool demo: cannot find %s in %s/../work or %s\n", tools[i], exe,
              exe);
      return -ENOENT;
    }
    if (realpath(probe, dest[i]) == NULL)
      return -errno;
  }
  return 0;
}

/* Unsets every variable whose name starts with prefix. */
static void vgp__demo_unset_prefix(const char *prefix) {
  size_t plen = strlen(prefix);
  for (int again = 1; again;) {
    again = 0;
    for (char **e = environ; e != NULL && *e != NULL; e++) {
      const char *eq = strchr(*e, '=');
      if (strncmp(*e, prefix, plen) != 0 || eq == NULL)
        continue;
      char name[256];
      size_t n = (size_t)(eq - *e);
      if (n >= sizeof(name))
        continue;
      memcpy(name, *e, n);
      name[n] = '\0';
      unsetenv(name);
      again = 1;
      break;
    }
  }
}

/* Makes the private node: a temporary directory with the node's config,
 * its state file and its VGPOOL_ROOT, selected for every child through the
 * environment. Variables that would point the children elsewhere (another
 * node, container or driver, or HAMi's limits) are removed. */
static int vgp__demo_make_node(struct vgp__demo *d) {
  const char *tmp = getenv("TMPDIR");
  char path[VGP__DEMO_PATH_MAX], ldpath[2 * VGP__DEMO_PATH_MAX];
  if (tmp == NULL || tmp[0] != '/' || strlen(tmp) > VGP__DEMO_DIR_MAX / 2 ||
      access(tmp, W_OK) != 0)
    tmp = "/tmp";
  snprintf(d->dir, sizeof(d->dir), "%s/vgpool-demo-XXXXXX", tmp);
  if (mkdtemp(d->dir) == NULL) {
    int e = errno;
    fprintf(stderr, "vgpool demo: cannot create a temporary directory in %s: %s\n", tmp,
            strerror(e));
    d->dir[0] = '\0';
    return -e;
  }
  snprintf(path, sizeof(path), "%s/node.conf", d->dir);
  int r = vgp__demo_write(path, vgp__demo_node_conf);
  if (r < 0) {
    fprintf(stderr, "vgpool demo: cannot write %s: %s\n", path, strerror(-r));
    return r;
  }
  static const char *const unset[] = {
      "VGPOOL_SIM_DEVICES",  "VGPOOL_SIM_NODE_ID",   "VGPOOL_SIM_DRIVER_VERSION",
      "VGPOOL_CONTAINER_DIR", "VGPOOL_LIB",          "VGPOOL_REAL_LIBCUDA",
      "VGPOOL_REAL_LIBNVML", "VGPOOL_WORK_RESOLVE", "CUDA_VISIBLE_DEVICES",
      "CUDA_TASK_PRIORITY",  "CUDA_DEVICE_MEMORY_SHARED_CACHE"};
  for (size_t i = 0; i < sizeof(unset) / sizeof(unset[0]); i++)
    unsetenv(unset[i]);
  vgp__demo_unset_prefix("VGPOOL_TEST_");
  vgp__demo_unset_prefix("CUDA_DEVICE_MEMORY_LIMIT");
  vgp__demo_unset_prefix("CUDA_DEVICE_SM_LIMIT");
  setenv("VGPOOL_SIM_CONFIG", path, 1);
  snprintf(path, sizeof(path), "%s/node.state", d->dir);
  setenv("VGPOOL_SIM_STATE", path, 1);
  snprintf(path, sizeof(path), "%s/root", d->dir);
  setenv("VGPOOL_ROOT", path, 1);
  const char *old = getenv("LD_LIBRARY_PATH");
  if (old != NULL && old[0] != '\0')
    snprintf(ldpath, sizeof(ldpath), "%s:%s", d->sim_dir, old);
  else
    snprintf(ldpath, sizeof(ldpath), "%s", d->sim_dir);
  setenv("LD_LIBRARY_PATH", ldpath, 1);
  return 0;
}

/* Appends one tool's command line (without its output options) to buf,
 * for showing; shown = 1 uses the tool's name instead of its path. */
static int vgp__demo_cmdline(const struct vgp__demo *d, const struct vgp__demo_workload *w,
                             int burn, int shown, char *buf, size_t len) {
  int r;
  if (!burn) {
    r = shown ? vgp__demo_append(buf, len, "vgpool-alloc")
              : vgp__demo_quote(buf, len, d->alloc_exe);
    if (r == 0)
      r = vgp__demo_append(buf, len, " --chunk 1GiB --limit %s --hold %u", w->asks,
                           d->duration_s);
    return r;
  }
  r = shown ? vgp__demo_append(buf, len, "vgpool-burn") : vgp__demo_quote(buf, len, d->burn_exe);
  for (int i = 0; r == 0 && i < VGP__DEMO_ARGS_MAX && w->burn[i] != NULL; i++)
    r = vgp__demo_append(buf, len, " %s", w->burn[i]);
  if (r == 0)
    r = vgp__demo_append(buf, len, " --duration %u", d->duration_s);
  return r;
}

/* Appends " --json >OUT 2>ERR" to a tool's command line. */
static int vgp__demo_redirect(char *buf, size_t len, const char *out, const char *err) {
  int r = vgp__demo_append(buf, len, " --json >");
  if (r == 0)
    r = vgp__demo_quote(buf, len, out);
  if (r == 0)
    r = vgp__demo_append(buf, len, " 2>");
  if (r == 0)
    r = vgp__demo_quote(buf, len, err);
  return r;
}

/* The shell script of a workload with two processes: vgpool-alloc and
 * vgpool-burn side by side in one container. It waits for both and exits
 * with the first failure; on SIGINT/SIGTERM it stops both (a
 * non-interactive shell's background jobs ignore SIGINT). */
static int vgp__demo_script(const struct vgp__demo *d, const struct vgp__demo_run *r,
                            char *buf, size_t len) {
  int e;
  buf[0] = '\0';
  e = vgp__demo_cmdline(d, r->w, 0, 0, buf, len);
  if (e == 0)
    e = vgp__demo_redirect(buf, len, r->alloc_out, r->alloc_err);
  if (e == 0)
    e = vgp__demo_append(buf, len, " & a=$!\n");
  if (e == 0)
    e = vgp__demo_cmdline(d, r->w, 1, 0, buf, len);
  if (e == 0)
    e = vgp__demo_redirect(buf, len, r->burn_out, r->burn_err);
  if (e == 0)
    e = vgp__demo_append(buf, len,
                         " & b=$!\n"
                         "trap 'kill $a $b 2>/dev/null' INT TERM HUP\n"
                         "wait $a; ra=$?\n"
                         "wait $b; rb=$?\n"
                         "if [ $ra -ne 0 ]; then exit $ra; fi\n"
                         "exit $rb\n");
  return e;
}

/* Starts one workload: `vgpool run --name N --memory Q [--cores C] -- ...`. */
static int vgp__demo_start(struct vgp__demo *d, struct vgp__demo_run *r) {
  const struct vgp__demo_workload *w = r->w;
  char script[VGP__DEMO_SCRIPT_MAX], out[VGP__DEMO_PATH_MAX];
  char limit[32], hold[32];
  char *argv[24];
  int n = 0;

  snprintf(r->alloc_out, sizeof(r->alloc_out), "%s/%s-alloc.json", d->dir, w->name);
  snprintf(r->alloc_err, sizeof(r->alloc_err), "%s/%s-alloc.err", d->dir, w->name);
  snprintf(r->burn_out, sizeof(r->burn_out), "%s/%s-burn.json", d->dir, w->name);
  snprintf(r->burn_err, sizeof(r->burn_err), "%s/%s-burn.err", d->dir, w->name);
  snprintf(r->run_err, sizeof(r->run_err), "%s/%s-run.err", d->dir, w->name);
  snprintf(limit, sizeof(limit), "%s", w->asks);
  snprintf(hold, sizeof(hold), "%u", d->duration_s);

  argv[n++] = "vgpool";
  argv[n++] = "run";
  argv[n++] = "--name";
  argv[n++] = (char *)w->name;
  argv[n++] = "--memory";
  argv[n++] = (char *)w->memory;
  if (w->cores != NULL) {
    argv[n++] = "--cores";
    argv[n++] = (char *)w->cores;
  }
  argv[n++] = "--";
  if (w->burn[0] != NULL) {
    int e = vgp__demo_script(d, r, script, sizeof(script));
    if (e < 0) {
      vgp__demo_fail(d, "%s: the paths are too long for its command line", w->name);
      return e;
    }
    argv[n++] = "/bin/sh";
    argv[n++] = "-c";
    argv[n++] = script;
    snprintf(out, sizeof(out), "%s/%s-run.out", d->dir, w->name);
  } else {
    /* One process: `vgpool run` execs vgpool-alloc, whose output is then
     * vgpool run's own. */
    argv[n++] = d->alloc_exe;
    argv[n++] = "--chunk";
    argv[n++] = "1GiB";
    argv[n++] = "--limit";
    argv[n++] = limit;
    argv[n++] = "--hold";
    argv[n++] = hold;
    argv[n++] = "--json";
    snprintf(out, sizeof(out), "%s", r->alloc_out);
    snprintf(r->run_err, sizeof(r->run_err), "%s", r->alloc_err);
  }
  argv[n] = NULL;
  r->status = -1;
  r->pid = vgp__demo_spawn(argv, out, r->run_err);
  if (r->pid < 0) {
    int e = (int)r->pid;
    r->pid = 0;
    r->status = 255;
    vgp__demo_fail(d, "%s: cannot start vgpool run: %s", w->name, strerror(-e));
    return e;
  }
  return 0;
}

/* ------------------------------------------------------------- showing */

static int vgp__demo_any_cores(void) {
  for (size_t i = 0; i < VGP__DEMO_N; i++)
    if (vgp__demo_workloads[i].cores != NULL)
      return 1;
  return 0;
}

static void vgp__demo_intro(const struct vgp__demo *d) {
  char q[32];
  printf("%svgpool demo: three workloads share one GPU%s\n", vgp__demo_on(d, VGP__BOLD),
         vgp__demo_off(d, VGP__BOLD));
  printf("==========================================\n\n");
  printf("vgpool lets many workloads share one GPU. Each workload runs in a\n"
         "container with a hard memory quota and a share of the GPU's time: a\n"
         "small library, libvgpool.so, loaded into the workload's processes,\n"
         "checks every CUDA allocation against the quota, makes the GPU look as\n"
         "big as the quota to the programs inside, and paces their kernel\n"
         "launches to the share. Nothing in the driver, the kernel or the\n"
         "programs is changed.\n\n");
  printf("No GPU is needed here: the demo starts a private simulated GPU node with\n"
         "one NVIDIA H100 80GB, which programs use through the same driver\n"
         "libraries (libcuda.so.1, libnvidia-ml.so.1) as a real GPU. Three\n"
         "workloads then run on that one GPU at the same time, each started by\n"
         "`vgpool run` with its own quota and share:\n\n");
  for (size_t i = 0; i < VGP__DEMO_N; i++) {
    const struct vgp__demo_workload *w = &vgp__demo_workloads[i];
    vgp__demo_size(d->runs[i].quota, q, sizeof(q));
    printf("  %-10s quota %-7s %s\n", w->name, q, w->story[0]);
    if (w->story[1] != NULL)
      printf("  %-10s       %-7s %s\n", "", "", w->story[1]);
  }
}

/* Shows the command lines as a user would type them (the demo also saves
 * each tool's --json summary, which is left out here). */
static void vgp__demo_show_commands(const struct vgp__demo *d) {
  char line[VGP__DEMO_SCRIPT_MAX];
  vgp__demo_heading(d, "1. Starting the workloads");
  printf("They run for %u seconds. The commands (simplified; the demo also keeps\n"
         "each tool's --json summary):\n\n",
         d->duration_s);
  for (size_t i = 0; i < VGP__DEMO_N; i++) {
    const struct vgp__demo_workload *w = &vgp__demo_workloads[i];
    printf("  $ vgpool run --name %s --memory %s%s%s -- %s\n", w->name, w->memory,
           w->cores != NULL ? " --cores " : "", w->cores != NULL ? w->cores : "",
           w->burn[0] != NULL ? "sh -c '" : "\\");
    line[0] = '\0';
    vgp__demo_cmdline(d, w, 0, 1, line, sizeof(line));
    printf("        %s%s\n", line, w->burn[0] != NULL ? " &" : "");
    if (w->burn[0] != NULL) {
      line[0] = '\0';
      vgp__demo_cmdline(d, w, 1, 1, line, sizeof(line));
      printf("        %s; wait'\n", line);
    }
  }
}

static int vgp__demo_by_pid(const void *a, const void *b) {
  double x = vgp__jnum(*(const struct vgp__jval *const *)a, "pid");
  double y = vgp__jnum(*(const struct vgp__jval *const *)b, "pid");
  return (x > y) - (x < y);
}

/* Fills procs with the elements of the array member `key` of o (at most
 * max), sorted by pid so listings are stable. Returns how many. */
static size_t vgp__demo_sorted(const struct vgp__jval *o, const char *key,
                               const struct vgp__jval **procs, size_t max) {
  size_t n = 0;
  for (const struct vgp__jval *p = vgp__jfirst(o, key); p != NULL && n < max; p = p->next)
    procs[n++] = p;
  qsort(procs, n, sizeof(procs[0]), vgp__demo_by_pid);
  return n;
}

/* The node as its driver sees it: `vgpool sim show --json`. */
static void vgp__demo_show_node(const struct vgp__jval *sim) {
  char a[32], b[32];
  unsigned nproc = 0;
  for (const struct vgp__jval *p = vgp__jfirst(sim, "processes"); p != NULL; p = p->next)
    nproc++;
  printf("The GPU as its driver sees it (`vgpool sim show`, condensed): %u\n"
         "processes, and no idea which workload each belongs to.\n\n",
         nproc);
  for (const struct vgp__jval *g = vgp__jfirst(sim, "devices"); g != NULL; g = g->next) {
    printf("  GPU %u  %-24.24s  %s / %s used", (unsigned)vgp__jnum(g, "index"),
           vgp__jstr(g, "name"), vgp__demo_size(vgp__jbytes(g, "memory_used"), a, sizeof(a)),
           vgp__demo_size(vgp__jbytes(g, "memory_total"), b, sizeof(b)));
    if (vgp__jhas_num(g, "utilization_gpu"))
      printf(", busy %u%%", (unsigned)vgp__jnum(g, "utilization_gpu"));
    printf("\n");
  }
  const struct vgp__jval *procs[VGP__DEMO_SHOW_PROCS];
  size_t n = vgp__demo_sorted(sim, "processes", procs, VGP__DEMO_SHOW_PROCS);
  printf("\n  %7s  %-16s  %s\n", "PID", "PROCESS", "GPU MEMORY");
  for (size_t i = 0; i < n; i++)
    printf("  %7u  %-16.16s  %10s\n", (unsigned)vgp__jnum(procs[i], "pid"),
           vgp__jstr(procs[i], "name"),
           vgp__demo_size(vgp__jbytes(procs[i], "memory_used"), a, sizeof(a)));
}

/* The demo's workload with this container id, or NULL. */
static struct vgp__demo_run *vgp__demo_find_run(struct vgp__demo *d, const char *id) {
  for (size_t i = 0; i < VGP__DEMO_N; i++)
    if (strcmp(d->runs[i].w->name, id) == 0)
      return &d->runs[i];
  return NULL;
}

/* What one CUDA context takes of a container's quota: the simulated
 * node's context_memory. */
static uint64_t vgp__demo_context_bytes(void) {
  uint64_t bytes = 0;
  return vgp_parse_size(VGP__DEMO_CONTEXT, &bytes) == 0 ? bytes : 0;
}

/* The compute share of a container: "30% / 29.8%" (target / achieved). */
static void vgp__demo_share(const struct vgp__demo_run *r, char *buf, size_t len) {
  if (r->have_achieved)
    snprintf(buf, len, "%u%% / %.1f%%", r->cores, r->achieved);
  else
    snprintf(buf, len, "%u%% / n/a", r->cores);
}

/* The containers as vgpool sees them: `vgpool top --once --json`. Records
 * each container's figures in its run for the checks and the summary. */
static void vgp__demo_show_containers(struct vgp__demo *d, const struct vgp__jval *top,
                                      uint64_t driver_used) {
  char a[32], b[32], s[32];
  uint64_t sum = 0;
  int any_share = vgp__demo_any_cores();

  for (const struct vgp__jval *c = vgp__jfirst(top, "containers"); c != NULL; c = c->next) {
    struct vgp__demo_run *r = vgp__demo_find_run(d, vgp__jstr(c, "id"));
    const struct vgp__jval *dev = vgp__jfirst(c, "devices");
    if (r == NULL || dev == NULL)
      continue;
    r->seen = 1;
    r->used = vgp__jbytes(dev, "memory_used");
    r->limit = vgp__jbytes(dev, "memory_limit");
    r->oom_events = vgp__jbytes(dev, "oom_events");
    r->cores = (unsigned)vgp__jnum(dev, "cores");
    r->have_achieved = vgp__jhas_num(dev, "achieved_share");
    r->achieved = vgp__jnum(dev, "achieved_share");
    if (r->have_achieved)
      any_share = 1;
  }

  printf("\nThe containers as vgpool sees them (`vgpool top`, condensed): each one's\n"
         "usage against its quota, how many allocations the quota refused, and the\n"
         "processes inside it.\n\n");
  printf("  %-10s  %-22s  %7s%s\n", "CONTAINER", "MEMORY USED / QUOTA", "REFUSED",
         any_share ? "  SHARE TARGET / ACHIEVED" : "");
  for (const struct vgp__jval *c = vgp__jfirst(top, "containers"); c != NULL; c = c->next) {
    struct vgp__demo_run *r = vgp__demo_find_run(d, vgp__jstr(c, "id"));
    if (r == NULL || !r->seen)
      continue;
    sum += r->used;
    vgp__demo_size(r->used, a, sizeof(a));
    vgp__demo_size(r->limit, b, sizeof(b));
    vgp__demo_share(r, s, sizeof(s));
    printf("  %-10s  %9s / %-10s  %7llu%s%s\n", r->w->name, a, b,
           (unsigned long long)r->oom_events, any_share ? "  " : "", any_share ? s : "");
    const struct vgp__jval *procs[VGP__DEMO_SHOW_PROCS];
    size_t n = vgp__demo_sorted(c, "processes", procs, VGP__DEMO_SHOW_PROCS);
    for (size_t i = 0; i < n; i++) {
      const struct vgp__jval *m = vgp__jfirst(procs[i], "memory_used");
      printf("      pid %-7u %-16.16s %10s\n", (unsigned)vgp__jnum(procs[i], "pid"),
             vgp__jstr(procs[i], "comm"),
             vgp__demo_size(m != NULL && m->type == VGP__JNUM ? (uint64_t)m->num : 0, a,
                            sizeof(a)));
    }
  }
  vgp__demo_size(sum, a, sizeof(a));
  if (sum == driver_used)
    printf("\n  Together the containers hold %s: exactly what the driver counts.\n", a);
  else
    printf("\n  Together the containers hold %s (the driver counts %s).\n", a,
           vgp__demo_size(driver_used, b, sizeof(b)));
  if (vgp__demo_context_bytes() > 0)
    printf("  Each process's CUDA context takes %s of its container's quota.\n",
           vgp__demo_size(vgp__demo_context_bytes(), b, sizeof(b)));
}

/* What cuMemGetInfo reported inside each container (vgpool-alloc's
 * total_bytes). */
static void vgp__demo_show_inside(const struct vgp__demo *d, uint64_t device_total) {
  char a[32];
  printf("\nInside each container the GPU looks as big as the quota. The GPU's size\n"
         "that CUDA's cuMemGetInfo gave vgpool-alloc in each container:\n\n");
  for (size_t i = 0; i < VGP__DEMO_N; i++) {
    const struct vgp__demo_run *r = &d->runs[i];
    if (r->alloc == NULL)
      continue;
    printf("  %-10s  %s\n", r->w->name,
           vgp__demo_size(vgp__jbytes(r->alloc, "total_bytes"), a, sizeof(a)));
  }
  printf("\n  (The GPU itself has %s.)\n", vgp__demo_size(device_total, a, sizeof(a)));
}

/* ------------------------------------------------------------- checking */

/* A saturating workload with a share must have used about its share of
 * the GPU over its whole run, by its own count of kernels: the bound is
 * loose (the first fraction of a second runs before the pace is learned,
 * and a loaded machine delays launches) but catches a share not enforced,
 * which reads near 100%. */
#define VGP__DEMO_SHARE_SLACK_PCT 12.0

static void vgp__demo_check_share(struct vgp__demo *d, const struct vgp__demo_run *r) {
  unsigned cores = 0;
  if (vgp_parse_percent(r->w->cores, 1, 100, &cores) < 0)
    return;
  double wall = vgp__jnum(r->burn, "wall_s"), kus = vgp__jnum(r->burn, "kernel_us");
  double busy = wall > 0 ? vgp__jnum(r->burn, "kernels") * kus / 1e6 / wall * 100.0 : 0;
  if (busy > cores + VGP__DEMO_SHARE_SLACK_PCT || busy < cores - VGP__DEMO_SHARE_SLACK_PCT)
    vgp__demo_fail(d, "%s: used %.1f%% of the GPU's time over its run, not its share of %u%%",
                   r->w->name, busy, cores);
}

/* Reads the tools' summaries of one workload after it ended and checks
 * that it did what it should: exit 0 with everything it asked for, or,
 * for the workload meant to hit its quota, CUDA_ERROR_OUT_OF_MEMORY at
 * the quota. */
static void vgp__demo_check_one(struct vgp__demo *d, struct vgp__demo_run *r) {
  const struct vgp__demo_workload *w = r->w;
  char tail[VGP__DEMO_MSG_MAX], a[32], b[32], c[32];
  int expect_status = w->expect_refusal ? 3 : 0;

  if (r->alloc == NULL && vgp__demo_read_json(r->alloc_out, &r->alloc) < 0)
    r->alloc = NULL;
  if (w->burn[0] != NULL && r->burn == NULL && vgp__demo_read_json(r->burn_out, &r->burn) < 0)
    r->burn = NULL;

  if (w->expect_refusal && r->status == 0 && r->alloc != NULL) {
    vgp__demo_fail(d, "%s: was not refused at its %s quota: it got %s of the %s it asked for",
                   w->name, vgp__demo_size(r->quota, a, sizeof(a)),
                   vgp__demo_size(vgp__jbytes(r->alloc, "obtained_bytes"), b, sizeof(b)),
                   vgp__demo_size(r->asks, c, sizeof(c)));
    return;
  }
  if (r->status != expect_status) {
    char tail2[VGP__DEMO_MSG_MAX];
    vgp__demo_tail(r->alloc_err, tail, sizeof(tail));
    tail2[0] = '\0';
    if (w->burn[0] != NULL)
      vgp__demo_tail(r->burn_err, tail2, sizeof(tail2));
    if (r->run_err[0] != '\0' && strcmp(r->run_err, r->alloc_err) != 0 && tail[0] == '\0')
      vgp__demo_tail(r->run_err, tail, sizeof(tail));
    vgp__demo_fail(d, "%s: `vgpool run` exited with status %d (expected %d)%s%s", w->name,
                   r->status, expect_status, tail, tail2);
    return;
  }
  if (r->alloc == NULL) {
    vgp__demo_fail(d, "%s: vgpool-alloc left no readable summary in %s", w->name, r->alloc_out);
    return;
  }
  uint64_t total = vgp__jbytes(r->alloc, "total_bytes");
  uint64_t got = vgp__jbytes(r->alloc, "obtained_bytes");
  const char *stop = vgp__jstr(r->alloc, "stopped_by");
  if (total != r->quota)
    vgp__demo_fail(d, "%s: cuMemGetInfo reported a total of %s inside the container, not its "
                   "quota of %s", w->name, vgp__demo_size(total, a, sizeof(a)),
                   vgp__demo_size(r->quota, b, sizeof(b)));
  if (w->expect_refusal) {
    vgp__demo_tail(r->alloc_err, tail, sizeof(tail));
    if (strcmp(stop, "oom") != 0 || got >= r->asks || got > r->quota)
      vgp__demo_fail(d, "%s: expected to be refused at its %s quota, but got %s of the %s "
                     "it asked for (stopped by %s)", w->name,
                     vgp__demo_size(r->quota, a, sizeof(a)), vgp__demo_size(got, b, sizeof(b)),
                     vgp__demo_size(r->asks, c, sizeof(c)), stop);
    else if (strstr(tail, "CUDA_ERROR_OUT_OF_MEMORY") == NULL)
      vgp__demo_fail(d, "%s: vgpool-alloc stopped without reporting CUDA_ERROR_OUT_OF_MEMORY%s",
                     w->name, tail);
    else if (r->seen && r->oom_events == 0)
      vgp__demo_fail(d, "%s: vgpool top counted no refused allocation", w->name);
  } else if (strcmp(stop, "limit") != 0 || got != r->asks) {
    vgp__demo_fail(d, "%s: asked for %s but got %s (stopped by %s)", w->name,
                   vgp__demo_size(r->asks, b, sizeof(b)), vgp__demo_size(got, a, sizeof(a)),
                   stop);
  }
  if (w->burn[0] != NULL && (r->burn == NULL || vgp__jnum(r->burn, "kernels") < 1))
    vgp__demo_fail(d, "%s: vgpool-burn ran no kernels (summary in %s)", w->name, r->burn_out);
  else if (w->burn[0] != NULL && w->cores != NULL && strcmp(w->burn[0], "--saturate") == 0)
    vgp__demo_check_share(d, r);
  if (r->seen && r->used > r->limit)
    vgp__demo_fail(d, "%s: used %s, over its quota of %s", w->name,
                   vgp__demo_size(r->used, a, sizeof(a)), vgp__demo_size(r->limit, b, sizeof(b)));
}

/* Checks one workload, and marks it failed if it did not do what it should. */
static void vgp__demo_check_run(struct vgp__demo *d, struct vgp__demo_run *r) {
  int before = d->nfail;
  vgp__demo_check_one(d, r);
  r->failed = d->nfail > before;
}

/* After the workloads ended: the GPU's memory is all free again and no
 * container is left behind. */
static void vgp__demo_check_after(struct vgp__demo *d) {
  struct vgp__jval *sim = NULL, *top = NULL;
  char err[VGP__DEMO_MSG_MAX], a[32];
  if (vgp__demo_sim_show(d, &sim, err, sizeof(err)) < 0) {
    vgp__demo_fail(d, "after the workloads: %s", err);
  } else {
    const struct vgp__jval *g = vgp__jfirst(sim, "devices");
    uint64_t used = vgp__jbytes(g, "memory_used");
    if (used != 0 || vgp__jfirst(sim, "processes") != NULL)
      vgp__demo_fail(d, "after the workloads ended the GPU still has %s in use",
                     vgp__demo_size(used, a, sizeof(a)));
    else
      printf("\nAfter the workloads ended, all of the GPU's memory was free again.\n");
  }
  if (vgp__demo_top(d, &top, err, sizeof(err)) < 0)
    vgp__demo_fail(d, "after the workloads: %s", err);
  else if (vgp__jfirst(top, "containers") != NULL)
    vgp__demo_fail(d, "after the workloads ended, container directories were left in %s/root",
                   d->dir);
  vgp__jfree(sim);
  vgp__jfree(top);
}

/* The results table, then the compute each workload got. */
static void vgp__demo_summary(const struct vgp__demo *d) {
  char q[32], a[32], g[32];
  vgp__demo_heading(d, "3. Results");
  printf("  %-10s %-7s %-10s %-7s %s\n", "WORKLOAD", "QUOTA", "ASKED FOR", "GOT", "OUTCOME");
  for (size_t i = 0; i < VGP__DEMO_N; i++) {
    const struct vgp__demo_run *r = &d->runs[i];
    const struct vgp__demo_workload *w = r->w;
    int ok = !r->failed && r->alloc != NULL;
    vgp__demo_size(r->quota, q, sizeof(q));
    vgp__demo_size(r->asks, a, sizeof(a));
    if (r->alloc != NULL)
      vgp__demo_size(vgp__jbytes(r->alloc, "obtained_bytes"), g, sizeof(g));
    else
      snprintf(g, sizeof(g), "?");
    printf("  %-10s %-7s %-10s %-7s ", w->name, q, a, g);
    if (!ok)
      printf("%sfailed (see below)%s\n", vgp__demo_on(d, VGP__BAD), vgp__demo_off(d, VGP__BAD));
    else if (w->expect_refusal)
      printf("%srefused at its quota\n  %38s(CUDA_ERROR_OUT_OF_MEMORY), as intended%s\n",
             vgp__demo_on(d, VGP__NOTE), "", vgp__demo_off(d, VGP__NOTE));
    else
      printf("%sok, got all it asked for%s\n", vgp__demo_on(d, VGP__GOOD),
             vgp__demo_off(d, VGP__GOOD));
  }
  for (size_t i = 0; i < VGP__DEMO_N; i++)
    if (d->runs[i].w->expect_refusal && d->runs[i].alloc != NULL && !d->runs[i].failed &&
        vgp__demo_context_bytes() > 0)
      printf("\n  %s got %s: its CUDA context took %s of the quota, and the next\n"
             "  1 GiB would have gone over it.\n",
             d->runs[i].w->name,
             vgp__demo_size(vgp__jbytes(d->runs[i].alloc, "obtained_bytes"), g, sizeof(g)),
             vgp__demo_size(vgp__demo_context_bytes(), a, sizeof(a)));

  int any_burn = 0;
  for (size_t i = 0; i < VGP__DEMO_N; i++) {
    const struct vgp__demo_run *r = &d->runs[i];
    const struct vgp__jval *b = r->burn;
    if (b == NULL)
      continue;
    if (!any_burn++)
      printf("\n  Compute time:\n");
    double wall = vgp__jnum(b, "wall_s"), kus = vgp__jnum(b, "kernel_us");
    double kernels = vgp__jnum(b, "kernels");
    double busy = wall > 0 ? kernels * kus / 1e6 / wall * 100.0 : 0;
    const struct vgp__jval *lat = vgp__jget(b, "latency_us");
    printf("  %-10s %.0f kernels of %.1f ms in %.1f s: about %.0f%% of the GPU's time\n",
           r->w->name, kernels, kus / 1000.0, wall, busy);
    if (strcmp(vgp__jstr(b, "mode"), "rate") == 0)
      printf("  %-10s %.0f requests/s; latency p50 %.1f ms, p99 %.1f ms\n", "",
             vgp__jnum(b, "kernels_per_s"), vgp__jnum(lat, "p50") / 1000.0,
             vgp__jnum(lat, "p99") / 1000.0);
    if (r->w->cores != NULL) {
      vgp__demo_share(r, q, sizeof(q));
      printf("  %-10s share target / achieved while running (vgpool top): %s\n", "", q);
    }
  }
  if (any_burn && !vgp__demo_any_cores())
    printf("\n  This demo limits memory only: the GPU runs the two workloads' kernels\n"
           "  in turn, as any GPU shared without limits does, so inference's requests\n"
           "  wait behind training's kernels. Compute shares per container\n"
           "  (`vgpool run --cores`) are not part of this demo yet.\n");
}

/* --------------------------------------------------------------- driver */

static void vgp__demo_usage(FILE *out) {
  fprintf(out,
          "usage: vgpool demo [--duration S] [--keep]\n"
          "\n"
          "Shows three workloads sharing one simulated GPU under different memory\n"
          "quotas, one of them refused at its quota. Needs no GPU and no setup: it\n"
          "makes a private simulated node in a temporary directory and removes it\n"
          "afterwards. Exits 0 when everything behaved as intended, 1 otherwise\n"
          "(so it doubles as a smoke test).\n"
          "\n"
          "  --duration S   how long the workloads run, in seconds (%d..%d,\n"
          "                 default %d)\n"
          "  --keep         leave the temporary directory (node state, the tools'\n"
          "                 output) in place\n",
          VGP__DEMO_MIN_DURATION, VGP__DEMO_MAX_DURATION, VGP__DEMO_DEFAULT_DURATION);
}

static int vgp__demo_parse(int argc, char **argv, struct vgp__demo *d) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      vgp__demo_usage(stdout);
      return 1;
    } else if (strcmp(a, "--keep") == 0) {
      d->keep = 1;
    } else if (strcmp(a, "--duration") == 0 || strncmp(a, "--duration=", 11) == 0) {
      const char *v = a[10] == '=' ? a + 11 : (i + 1 < argc ? argv[++i] : NULL);
      long n;
      if (v == NULL) {
        fprintf(stderr, "vgpool demo: --duration needs a value\n");
        return -EINVAL;
      }
      if (vgp_parse_int(v, VGP__DEMO_MIN_DURATION, VGP__DEMO_MAX_DURATION, &n) < 0) {
        fprintf(stderr, "vgpool demo: --duration '%s': expected whole seconds from %d to %d\n",
                v, VGP__DEMO_MIN_DURATION, VGP__DEMO_MAX_DURATION);
        return -EINVAL;
      }
      d->duration_s = (unsigned)n;
    } else {
      fprintf(stderr, "vgpool demo: unknown argument '%s' (try --help)\n", a);
      return -EINVAL;
    }
  }
  return 0;
}

/* Waits until every workload has made its allocations and every process
 * is on the GPU, or one of them ended early, or the time is up. Returns 1
 * when all are running, 0 otherwise (the reason is recorded). */
static int vgp__demo_wait_ready(struct vgp__demo *d) {
  unsigned want_procs = 0;
  uint64_t deadline = d->t0 + VGP__DEMO_START_TIMEOUT_S * VGP_NSEC_PER_SEC;
  for (size_t i = 0; i < VGP__DEMO_N; i++)
    want_procs += vgp__demo_workloads[i].burn[0] != NULL ? 2 : 1;

  while (!vgp__demo_signal) {
    int ready = 1;
    if (vgp__demo_reap(d) < (int)VGP__DEMO_N)
      return 0;  /* a workload ended before the others were all running */
    for (size_t i = 0; i < VGP__DEMO_N; i++)
      ready = ready && vgp__demo_has_line(d->runs[i].alloc_out);
    if (ready) {
      struct vgp__jval *sim = NULL;
      char err[VGP__DEMO_MSG_MAX];
      unsigned n = 0;
      if (vgp__demo_sim_show(d, &sim, err, sizeof(err)) < 0) {
        vgp__demo_fail(d, "%s", err);
        return 0;
      }
      for (const struct vgp__jval *p = vgp__jfirst(sim, "processes"); p != NULL; p = p->next)
        n++;
      vgp__jfree(sim);
      if (n >= want_procs)
        return 1;
    }
    if (vgp__now_ns() > deadline) {
      vgp__demo_fail(d, "the workloads were not all running after %d s",
                     VGP__DEMO_START_TIMEOUT_S);
      return 0;
    }
    vgp__demo_nap(4 * VGP__DEMO_POLL_MS);
  }
  return 0;
}

/* Step 2: the views while the workloads run. */
static void vgp__demo_views(struct vgp__demo *d) {
  struct vgp__jval *sim = NULL, *top = NULL;
  char err[VGP__DEMO_MSG_MAX];
  uint64_t at = d->t0 + VGP__DEMO_VIEW_AFTER_MS * VGP_NSEC_PER_MSEC;
  while (!vgp__demo_signal && vgp__now_ns() < at)
    vgp__demo_nap(VGP__DEMO_POLL_MS);
  if (vgp__demo_signal)
    return;
  for (size_t i = 0; i < VGP__DEMO_N; i++)
    if (vgp__demo_read_json(d->runs[i].alloc_out, &d->runs[i].alloc) < 0)
      d->runs[i].alloc = NULL;
  if (vgp__demo_sim_show(d, &sim, err, sizeof(err)) < 0 ||
      vgp__demo_top(d, &top, err, sizeof(err)) < 0) {
    vgp__demo_fail(d, "%s", err);
    vgp__jfree(sim);
    return;
  }
  vgp__demo_heading(d, "2. While they run");
  vgp__demo_show_node(sim);
  vgp__demo_show_containers(d, top, vgp__jbytes(vgp__jfirst(sim, "devices"), "memory_used"));
  vgp__demo_show_inside(d, vgp__jbytes(vgp__jfirst(sim, "devices"), "memory_total"));
  vgp__jfree(sim);
  vgp__jfree(top);
}

static void vgp__demo_free(struct vgp__demo *d) {
  for (size_t i = 0; i < VGP__DEMO_N; i++) {
    vgp__jfree(d->runs[i].alloc);
    vgp__jfree(d->runs[i].burn);
    d->runs[i].alloc = d->runs[i].burn = NULL;
  }
}

int vgp_cmd_demo(int argc, char **argv) {
  struct vgp__demo *d = calloc(1, sizeof(*d));
  struct sigaction sa, old[3];
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
  int rc = VGP_EXIT_FAILURE, r;

  if (d == NULL) {
    fprintf(stderr, "vgpool demo: out of memory\n");
    return VGP_EXIT_FAILURE;
  }
  d->duration_s = VGP__DEMO_DEFAULT_DURATION;
  r = vgp__demo_parse(argc, argv, d);
  if (r != 0) {
    free(d);
    return r > 0 ? VGP_EXIT_OK : VGP_EXIT_USAGE;
  }
  for (size_t i = 0; i < VGP__DEMO_N; i++) {
    struct vgp__demo_run *run = &d->runs[i];
    run->w = &vgp__demo_workloads[i];
    if (vgp_parse_size(run->w->memory, &run->quota) < 0 ||
        vgp_parse_size(run->w->asks, &run->asks) < 0) {
      fprintf(stderr, "vgpool demo: bad size in workload %s\n", run->w->name);
      free(d);
      return VGP_EXIT_FAILURE;
    }
  }
  {
    const char *term = getenv("TERM");
    d->color = isatty(STDOUT_FILENO) && getenv("NO_COLOR") == NULL && term != NULL &&
               strcmp(term, "dumb") != 0;
  }
  if (vgp__demo_find_parts(d) < 0 || vgp__demo_make_node(d) < 0)
    goto out;

  /* Ctrl-C stops the workloads and still removes the temporary node. */
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = vgp__demo_on_signal;
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < 3; i++)
    sigaction(sigs[i], &sa, &old[i]);

  vgp__demo_intro(d);
  {
    char line[VGP__DEMO_DIR_MAX + 128];
    snprintf(line, sizeof(line), "The simulated node lives in %s%s.", d->dir,
             d->keep ? " (kept afterwards: --keep)" : " (removed at the end)");
    printf("\n");
    vgp__demo_wrap(line, "", "");
  }
  vgp__demo_show_commands(d);
  fflush(stdout);

  d->t0 = vgp__now_ns();
  for (size_t i = 0; i < VGP__DEMO_N; i++)
    if (vgp__demo_start(d, &d->runs[i]) < 0)
      break;

  if (d->nfail == 0 && vgp__demo_wait_ready(d))
    vgp__demo_views(d);

  /* Let the workloads finish. */
  uint64_t deadline =
      d->t0 + ((uint64_t)d->duration_s + VGP__DEMO_END_GRACE_S) * VGP_NSEC_PER_SEC;
  while (!vgp__demo_signal && vgp__demo_reap(d) > 0 && vgp__now_ns() < deadline)
    vgp__demo_nap(VGP__DEMO_POLL_MS);
  if (vgp__demo_reap(d) > 0) {
    if (!vgp__demo_signal)
      vgp__demo_fail(d, "the workloads did not end within %u s of their %u s run",
                     VGP__DEMO_END_GRACE_S, d->duration_s);
    vgp__demo_stop(d);
  }
  if (vgp__demo_signal) {
    fflush(stdout);
    fprintf(stderr, "\nvgpool demo: interrupted; stopped the workloads\n");
    rc = 128 + vgp__demo_signal;
    goto out_signals;
  }

  for (size_t i = 0; i < VGP__DEMO_N; i++)
    vgp__demo_check_run(d, &d->runs[i]);
  vgp__demo_summary(d);
  vgp__demo_check_after(d);

  if (d->nfail > 0) {
    printf("\n%sThe demo FAILED%s: something other than the intended quota refusal went\n"
           "wrong.\n",
           vgp__demo_on(d, VGP__BAD), vgp__demo_off(d, VGP__BAD));
    for (int i = 0; i < d->nfail; i++)
      vgp__demo_wrap(d->failures[i], "  - ", "    ");
    if (!d->keep)
      printf("Run `vgpool demo --keep` to keep the node and the tools' output.\n");
    rc = VGP_EXIT_FAILURE;
  } else {
    printf("\nTry it yourself (on a GPU, or on the simulator: eval \"$(vgpool sim env)\"):\n"
           "  vgpool run --memory 2GiB -- your-program     see README.md\n");
    rc = VGP_EXIT_OK;
  }

out_signals:
  for (int i = 0; i < 3; i++)
    sigaction(sigs[i], &old[i], NULL);
out:
  fflush(stdout);
  if (d->keep && d->dir[0] != '\0')
    printf("The demo's files are in %s\n", d->dir);
  else
    vgp__demo_cleanup(d);
  vgp__demo_free(d);
  free(d);
  return rc;
}
