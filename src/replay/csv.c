/*
 * csv.c - reading the openb node and pod lists.
 *
 * The files are small (a few MB) and are read whole. Columns are found by
 * the header's names, so their order does not matter and columns we do not
 * know are ignored; a missing column, a row with the wrong number of
 * fields, a number that is not one, or a line past VGP_REPLAY_LINE_MAX is
 * an error naming the file and the line. Fields may be quoted the RFC 4180
 * way. Every buffer has a cap: line length, fields per line, nodes, pods.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "replay.h"

#define VGP__FILE_MAX (256u << 20)

struct vgp__csv {
  const char *name;
  const char *p, *end;
  uint32_t line;                       /* of the current record */
  uint32_t next_line;
  char buf[VGP_REPLAY_LINE_MAX];
  char *field[VGP_REPLAY_FIELDS_MAX];
  uint32_t n;
  char *err;
  size_t err_len;
};

static int vgp__csv_fail(struct vgp__csv *csv, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int vgp__csv_fail(struct vgp__csv *csv, int code, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (csv->err != NULL && csv->err_len > 0) {
    if (csv->line == 0)
      snprintf(csv->err, csv->err_len, "%s: %s", csv->name, msg);
    else
      snprintf(csv->err, csv->err_len, "%s:%u: %s", csv->name, csv->line, msg);
  }
  return code;
}

/* Reads the next non-blank line into fields. Returns 1, 0 at the end, or a
 * negative errno with the message set. */
static int vgp__csv_next(struct vgp__csv *csv) {
  for (;;) {
    if (csv->p >= csv->end)
      return 0;
    csv->line = ++csv->next_line;
    const char *eol = memchr(csv->p, '\n', (size_t)(csv->end - csv->p));
    const char *stop = eol != NULL ? eol : csv->end;
    size_t len = (size_t)(stop - csv->p);
    if (len > 0 && csv->p[len - 1] == '\r')
      len--;
    if (len >= sizeof(csv->buf))
      return vgp__csv_fail(csv, -E2BIG, "line longer than %u bytes", VGP_REPLAY_LINE_MAX - 1);
    memcpy(csv->buf, csv->p, len);
    csv->buf[len] = '\0';
    csv->p = eol != NULL ? eol + 1 : csv->end;
    if (csv->line == 1 && (unsigned char)csv->buf[0] == 0xef &&
        (unsigned char)csv->buf[1] == 0xbb && (unsigned char)csv->buf[2] == 0xbf)
      memmove(csv->buf, csv->buf + 3, len - 2);
    int blank = 1;
    for (const char *q = csv->buf; *q != '\0' && blank; q++)
      blank = *q == ' ' || *q == '\t';
    if (blank)
      continue;

    /* Split in place; a quoted field may hold commas and "" for a quote. */
    char *r = csv->buf, *w = csv->buf;
    csv->n = 0;
    for (;;) {
      if (csv->n >= VGP_REPLAY_FIELDS_MAX)
        return vgp__csv_fail(csv, -E2BIG, "more than %u fields", VGP_REPLAY_FIELDS_MAX);
      csv->field[csv->n++] = w;
      if (*r == '"') {
        r++;
        for (;;) {
          if (*r == '\0')
            return vgp__csv_fail(csv, -EINVAL, "unterminated quoted field");
          if (*r == '"' && r[1] == '"') {
            *w++ = '"';
            r += 2;
          } else if (*r == '"') {
            r++;
            break;
          } else {
            *w++ = *r++;
          }
        }
        if (*r != ',' && *r != '\0')
          return vgp__csv_fail(csv, -EINVAL, "text after a quoted field");
      } else {
        while (*r != ',' && *r != '\0')
          *w++ = *r++;
      }
      int more = *r == ',';
      *w++ = '\0';
      if (!more)
        break;
      r++;
    }
    return 1;
  }
}

/* Trims blanks around a field in place. */
static char *vgp__trim(char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
    s[--n] = '\0';
  return s;
}

/* Parses a non-negative integer, also written as "12.0" (pandas writes
 * integral floats that way). Negative values parse when allow_negative,
 * and come back as 0 in *neg's company. */
static int vgp__num(const char *s, uint64_t *ret, int *ret_negative) {
  uint64_t v = 0;
  int digits = 0, negative = 0;

  if (*s == '-' && ret_negative != NULL) {
    negative = 1;
    s++;
  }
  for (; *s >= '0' && *s <= '9'; s++, digits++) {
    if (v > (UINT64_MAX - 9) / 10)
      return -ERANGE;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  if (digits == 0)
    return -EINVAL;
  if (*s == '.') {
    s++;
    while (*s == '0')
      s++;
  }
  if (*s != '\0')
    return -EINVAL;
  *ret = v;
  if (ret_negative != NULL)
    *ret_negative = negative;
  return 0;
}

struct vgp__cols {
  const char *names[8];
  int required[8];
  int idx[8];
  unsigned n;
};

static int vgp__csv_header(struct vgp__csv *csv, struct vgp__cols *cols,
                           uint32_t *ret_nfields) {
  int r = vgp__csv_next(csv);
  if (r < 0)
    return r;
  if (r == 0)
    return vgp__csv_fail(csv, -ENODATA, "empty file (no header line)");
  for (unsigned c = 0; c < cols->n; c++) {
    cols->idx[c] = -1;
    for (uint32_t f = 0; f < csv->n; f++)
      if (strcmp(vgp__trim(csv->field[f]), cols->names[c]) == 0)
        cols->idx[c] = (int)f;
    if (cols->idx[c] < 0 && cols->required[c])
      return vgp__csv_fail(csv, -EINVAL, "missing column '%s'", cols->names[c]);
  }
  *ret_nfields = csv->n;
  return 0;
}

static int vgp__field_u64(struct vgp__csv *csv, const struct vgp__cols *cols,
                          unsigned c, uint64_t *ret) {
  const char *s = vgp__trim(csv->field[cols->idx[c]]);
  int r = vgp__num(s, ret, NULL);
  if (r < 0)
    return vgp__csv_fail(csv, r, "column '%s': not a non-negative integer: '%s'",
                         cols->names[c], s);
  return 0;
}

static int vgp__field_name(struct vgp__csv *csv, const struct vgp__cols *cols,
                           unsigned c, char *out, size_t out_len, int required) {
  const char *s = vgp__trim(csv->field[cols->idx[c]]);
  if (strcmp(s, "nan") == 0 || strcmp(s, "NaN") == 0)
    s = "";
  if (required && s[0] == '\0')
    return vgp__csv_fail(csv, -EINVAL, "column '%s' is empty", cols->names[c]);
  if (strlen(s) >= out_len)
    return vgp__csv_fail(csv, -E2BIG, "column '%s' too long: '%.40s...'", cols->names[c], s);
  snprintf(out, out_len, "%s", s);
  return 0;
}

static int vgp__read_file(const char *path, char **ret_text, size_t *ret_len,
                          char *err, size_t err_len) {
  FILE *f = fopen(path, "rb");
  char *text = NULL;
  size_t len = 0, cap = 0;

  if (f == NULL) {
    int e = errno;
    snprintf(err, err_len, "%s: %s", path, strerror(e));
    return -e;
  }
  for (;;) {
    if (cap - len < 65536) {
      size_t ncap = cap == 0 ? 1u << 20 : cap * 2;
      if (ncap > VGP__FILE_MAX + 65536) {
        fclose(f);
        vgp__free(text);
        snprintf(err, err_len, "%s: larger than %u MiB", path, VGP__FILE_MAX >> 20);
        return -E2BIG;
      }
      char *t = vgp__realloc(text, ncap);
      if (t == NULL) {
        fclose(f);
        vgp__free(text);
        snprintf(err, err_len, "%s: out of memory", path);
        return -ENOMEM;
      }
      text = t;
      cap = ncap;
    }
    size_t got = fread(text + len, 1, cap - len, f);
    len += got;
    if (got == 0)
      break;
  }
  if (ferror(f)) {
    fclose(f);
    vgp__free(text);
    snprintf(err, err_len, "%s: read error", path);
    return -EIO;
  }
  fclose(f);
  *ret_text = text;
  *ret_len = len;
  return 0;
}

int vgp_replay_parse_nodes(struct vgp_replay_trace *t, const char *name,
                           const char *text, size_t len, char *err,
                           size_t err_len) {
  struct vgp__csv csv = {.name = name, .p = text, .end = text + len,
                         .err = err, .err_len = err_len};
  struct vgp__cols cols = {
      .names = {"sn", "cpu_milli", "memory_mib", "gpu", "model"},
      .required = {1, 1, 1, 1, 0},
      .n = 5};
  struct vgp_replay_node *nodes = NULL;
  uint32_t n = 0, cap = 0, nfields;
  int r;

  r = vgp__csv_header(&csv, &cols, &nfields);
  if (r < 0)
    return r;
  while ((r = vgp__csv_next(&csv)) > 0) {
    struct vgp_replay_node nd;
    uint64_t gpus;
    memset(&nd, 0, sizeof(nd));
    if (csv.n != nfields) {
      r = vgp__csv_fail(&csv, -EINVAL, "expected %u fields, found %u", nfields, csv.n);
      break;
    }
    if ((r = vgp__field_name(&csv, &cols, 0, nd.name, sizeof(nd.name), 1)) < 0 ||
        (r = vgp__field_u64(&csv, &cols, 1, &nd.cpu_milli)) < 0 ||
        (r = vgp__field_u64(&csv, &cols, 2, &nd.mem_mib)) < 0 ||
        (r = vgp__field_u64(&csv, &cols, 3, &gpus)) < 0)
      break;
    if (cols.idx[4] >= 0 &&
        (r = vgp__field_name(&csv, &cols, 4, nd.model, sizeof(nd.model), 0)) < 0)
      break;
    if (gpus > VGP_PLACE_MAX_DEVICES) {
      r = vgp__csv_fail(&csv, -E2BIG, "%llu GPUs on one node (at most %u)",
                        (unsigned long long)gpus, VGP_PLACE_MAX_DEVICES);
      break;
    }
    if (nd.mem_mib > (UINT64_MAX >> 21)) {
      r = vgp__csv_fail(&csv, -ERANGE, "memory_mib out of range");
      break;
    }
    nd.gpus = (uint32_t)gpus;
    if (nd.gpus > 0 && nd.model[0] == '\0') {
      r = vgp__csv_fail(&csv, -EINVAL, "node '%s' has GPUs but no model", nd.name);
      break;
    }
    if (n >= VGP_PLACE_MAX_NODES) {
      r = vgp__csv_fail(&csv, -E2BIG, "more than %u nodes", VGP_PLACE_MAX_NODES);
      break;
    }
    if (n == cap) {
      uint32_t ncap = cap == 0 ? 1024 : cap * 2;
      struct vgp_replay_node *p = vgp__realloc(nodes, ncap * sizeof(*p));
      if (p == NULL) {
        r = vgp__csv_fail(&csv, -ENOMEM, "out of memory");
        break;
      }
      nodes = p;
      cap = ncap;
    }
    nodes[n++] = nd;
  }
  if (r < 0) {
    vgp__free(nodes);
    return r;
  }
  vgp__free(t->nodes);
  t->nodes = nodes;
  t->n_nodes = n;
  t->gpu_milli_total = 0;
  for (uint32_t i = 0; i < n; i++)
    t->gpu_milli_total += (uint64_t)nodes[i].gpus * VGP_PLACE_CORE_WHOLE;
  return 0;
}

int vgp_replay_parse_pods(struct vgp_replay_trace *t, const char *name,
                          const char *text, size_t len, char *err,
                          size_t err_len) {
  struct vgp__csv csv = {.name = name, .p = text, .end = text + len,
                         .err = err, .err_len = err_len};
  struct vgp__cols cols = {
      .names = {"name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec"},
      .required = {1, 1, 1, 1, 1, 0},
      .n = 6};
  struct vgp_replay_pod *pods = NULL;
  uint32_t n = 0, cap = 0, nfields;
  int r;

  r = vgp__csv_header(&csv, &cols, &nfields);
  if (r < 0)
    return r;
  while ((r = vgp__csv_next(&csv)) > 0) {
    struct vgp_replay_pod pd;
    uint64_t num, milli;
    int negative = 0;
    memset(&pd, 0, sizeof(pd));
    pd.line = csv.line;
    if (csv.n != nfields) {
      r = vgp__csv_fail(&csv, -EINVAL, "expected %u fields, found %u", nfields, csv.n);
      break;
    }
    if ((r = vgp__field_name(&csv, &cols, 0, pd.name, sizeof(pd.name), 1)) < 0 ||
        (r = vgp__field_u64(&csv, &cols, 1, &pd.cpu_milli)) < 0 ||
        (r = vgp__field_u64(&csv, &cols, 2, &pd.mem_mib)) < 0 ||
        (r = vgp__field_u64(&csv, &cols, 3, &num)) < 0)
      break;
    const char *ms = vgp__trim(csv.field[cols.idx[4]]);
    if (vgp__num(ms, &milli, &negative) < 0) {
      r = vgp__csv_fail(&csv, -EINVAL, "column 'gpu_milli': not an integer: '%s'", ms);
      break;
    }
    if (cols.idx[5] >= 0 &&
        (r = vgp__field_name(&csv, &cols, 5, pd.spec, sizeof(pd.spec), 0)) < 0)
      break;
    if (pd.mem_mib > (UINT64_MAX >> 21)) {
      r = vgp__csv_fail(&csv, -ERANGE, "memory_mib out of range");
      break;
    }
    /* The paper clips gpu_milli to 0..1000. A device count past the cap is
     * kept (as the cap plus one): the pod is then reported as one that no
     * node can ever take, which is what it is. */
    pd.gpu_milli = negative ? 0 : milli > VGP_PLACE_CORE_WHOLE ? VGP_PLACE_CORE_WHOLE
                                                             : (uint32_t)milli;
    pd.num_gpu = num > 1000 ? 1000 : (uint32_t)num;
    if (n >= VGP_REPLAY_PODS_MAX) {
      r = vgp__csv_fail(&csv, -E2BIG, "more than %u pods", VGP_REPLAY_PODS_MAX);
      break;
    }
    if (n == cap) {
      uint32_t ncap = cap == 0 ? 4096 : cap * 2;
      struct vgp_replay_pod *p = vgp__realloc(pods, ncap * sizeof(*p));
      if (p == NULL) {
        r = vgp__csv_fail(&csv, -ENOMEM, "out of memory");
        break;
      }
      pods = p;
      cap = ncap;
    }
    pods[n++] = pd;
  }
  if (r < 0) {
    vgp__free(pods);
    return r;
  }
  vgp__free(t->pods);
  t->pods = pods;
  t->n_pods = n;
  return 0;
}

int vgp_replay_load_nodes(struct vgp_replay_trace *t, const char *path,
                          char *err, size_t err_len) {
  char *text;
  size_t len;
  int r = vgp__read_file(path, &text, &len, err, err_len);
  if (r < 0)
    return r;
  r = vgp_replay_parse_nodes(t, path, text, len, err, err_len);
  vgp__free(text);
  return r;
}

int vgp_replay_load_pods(struct vgp_replay_trace *t, const char *path,
                         char *err, size_t err_len) {
  char *text;
  size_t len;
  int r = vgp__read_file(path, &text, &len, err, err_len);
  if (r < 0)
    return r;
  r = vgp_replay_parse_pods(t, path, text, len, err, err_len);
  vgp__free(text);
  return r;
}

void vgp_replay_trace_clear(struct vgp_replay_trace *t) {
  if (t == NULL)
    return;
  vgp__free(t->nodes);
  vgp__free(t->pods);
  memset(t, 0, sizeof(*t));
}
