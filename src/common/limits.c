/*
 * limits.c - reading and writing limits files (see include/vgpool/limits.h).
 *
 * Parsing is strict: every line must be one of the known forms, numbers are
 * checked for range, the version and the checksum must be right. A limits
 * file decides how much of a GPU a tenant gets, so a file that is not
 * exactly right is refused, never half-applied.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "crc32.h"
#include "strutil.h"
#include "vgpool/limits.h"
#include "vgpool/units.h"

#define VGP__LIMITS_FILE_MAX (64 * 1024)
#define VGP__LIMITS_LINE_MAX 512

const struct vgp_device_limit *vgp_limits_find(const struct vgp_limits *l,
                                               const char *uuid) {
  for (unsigned i = 0; i < l->ndevices; i++)
    if (strcmp(l->dev[i].uuid, uuid) == 0)
      return &l->dev[i];
  return NULL;
}

static int vgp__valid_token(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n == 0 || n >= max)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '-' || c == '_' || c == '.'))
      return 0;
  }
  return 1;
}

/* Parses "device UUID key=value ..." into d. */
static int vgp__parse_device(char *rest, struct vgp_device_limit *d, char *err,
                             size_t errlen, int lineno) {
  char *save = NULL;
  char *uuid = strtok_r(rest, " ", &save);
  if (uuid == NULL || !vgp__valid_token(uuid, sizeof(d->uuid))) {
    vgp__errf(err, errlen, "line %d: bad device UUID", lineno);
    return -EINVAL;
  }
  memset(d, 0, sizeof(*d));
  vgp__strlcpy(d->uuid, uuid, sizeof(d->uuid));
  d->cores = 100;
  d->policy = VGP_POLICY_HARD;
  int seen_memory = 0;
  for (char *kv = strtok_r(NULL, " ", &save); kv; kv = strtok_r(NULL, " ", &save)) {
    char *eq = strchr(kv, '=');
    if (eq == NULL) {
      vgp__errf(err, errlen, "line %d: expected key=value, got \"%s\"", lineno, kv);
      return -EINVAL;
    }
    *eq = '\0';
    const char *key = kv, *value = eq + 1;
    if (strcmp(key, "memory") == 0) {
      if (vgp_parse_u64(value, &d->memory) < 0) {
        vgp__errf(err, errlen, "line %d: bad memory \"%s\" (bytes expected)", lineno, value);
        return -EINVAL;
      }
      seen_memory = 1;
    } else if (strcmp(key, "cores") == 0) {
      if (vgp_parse_percent(value, 1, 100, &d->cores) < 0) {
        vgp__errf(err, errlen, "line %d: bad cores \"%s\" (1..100 expected)", lineno, value);
        return -EINVAL;
      }
    } else if (strcmp(key, "policy") == 0) {
      if (strcmp(value, "hard") == 0)
        d->policy = VGP_POLICY_HARD;
      else if (strcmp(value, "elastic") == 0)
        d->policy = VGP_POLICY_ELASTIC;
      else {
        vgp__errf(err, errlen, "line %d: bad policy \"%s\" (hard or elastic)", lineno, value);
        return -EINVAL;
      }
    } else {
      vgp__errf(err, errlen, "line %d: unknown device key \"%s\"", lineno, key);
      return -EINVAL;
    }
  }
  if (!seen_memory) {
    vgp__errf(err, errlen, "line %d: device %s has no memory=", lineno, d->uuid);
    return -EINVAL;
  }
  return 0;
}

int vgp_limits_parse(const char *text, size_t len, struct vgp_limits *ret,
                     char *err, size_t errlen) {
  struct vgp_limits l;
  char line[VGP__LIMITS_LINE_MAX];
  size_t pos = 0;
  int lineno = 0, have_checksum = 0, have_container = 0;

  memset(&l, 0, sizeof(l));
  l.priority = 1;
  if (len < 14 || strncmp(text, "vgpool-limits ", 14) != 0) {
    vgp__errf(err, errlen, "not a vgpool limits file (no \"vgpool-limits\" header)");
    return -EPROTO;
  }
  while (pos < len && !have_checksum) {
    size_t start = pos;
    const char *nl = memchr(text + pos, '\n', len - pos);
    if (nl == NULL) {
      vgp__errf(err, errlen, "line %d: truncated (no end of line)", lineno + 1);
      return -EBADMSG;
    }
    size_t n = (size_t)(nl - (text + pos));
    pos += n + 1;
    lineno++;
    if (n >= sizeof(line)) {
      vgp__errf(err, errlen, "line %d: longer than %zu characters", lineno, sizeof(line) - 1);
      return -EINVAL;
    }
    memcpy(line, text + start, n);
    line[n] = '\0';
    if (lineno == 1) {
      long v;
      if (vgp_parse_int(line + 14, 0, 1000000, &v) < 0) {
        vgp__errf(err, errlen, "line 1: bad version \"%s\"", line + 14);
        return -EPROTO;
      }
      if (v != VGP_LIMITS_VERSION) {
        vgp__errf(err, errlen, "limits file version %ld is not supported (this vgpool reads version %d)",
                  v, VGP_LIMITS_VERSION);
        return -EPROTONOSUPPORT;
      }
      continue;
    }
    char *sp = strchr(line, ' ');
    if (sp == NULL) {
      vgp__errf(err, errlen, "line %d: expected \"key value\", got \"%s\"", lineno, line);
      return -EINVAL;
    }
    *sp = '\0';
    char *key = line, *value = sp + 1;
    if (strcmp(key, "checksum") == 0) {
      uint32_t want = vgp__crc32(text, start);
      char *end;
      unsigned long got = strtoul(value, &end, 16);
      if (*end != '\0' || end == value || got != want) {
        vgp__errf(err, errlen, "line %d: checksum mismatch (file is corrupt)", lineno);
        return -EBADMSG;
      }
      have_checksum = 1;
    } else if (strcmp(key, "container") == 0) {
      if (!vgp__valid_token(value, sizeof(l.container))) {
        vgp__errf(err, errlen, "line %d: bad container id \"%s\"", lineno, value);
        return -EINVAL;
      }
      vgp__strlcpy(l.container, value, sizeof(l.container));
      have_container = 1;
    } else if (strcmp(key, "priority") == 0) {
      long v;
      if (vgp_parse_int(value, -1000, 1000, &v) < 0) {
        vgp__errf(err, errlen, "line %d: bad priority \"%s\" (-1000..1000)", lineno, value);
        return -EINVAL;
      }
      l.priority = (int)v;
    } else if (strcmp(key, "oversubscribe") == 0) {
      if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0) {
        vgp__errf(err, errlen, "line %d: bad oversubscribe \"%s\" (yes or no)", lineno, value);
        return -EINVAL;
      }
      l.oversubscribe = value[0] == 'y';
    } else if (strcmp(key, "device") == 0) {
      if (l.ndevices >= VGP_MAX_DEVICES) {
        vgp__errf(err, errlen, "line %d: more than %d devices", lineno, VGP_MAX_DEVICES);
        return -EINVAL;
      }
      int r = vgp__parse_device(value, &l.dev[l.ndevices], err, errlen, lineno);
      if (r < 0)
        return r;
      /* find() searches the devices before this one. */
      if (vgp_limits_find(&l, l.dev[l.ndevices].uuid) != NULL) {
        vgp__errf(err, errlen, "line %d: device %s listed twice", lineno, l.dev[l.ndevices].uuid);
        return -EINVAL;
      }
      l.ndevices++;
    } else {
      vgp__errf(err, errlen, "line %d: unknown key \"%s\"", lineno, key);
      return -EINVAL;
    }
  }
  if (!have_checksum) {
    vgp__errf(err, errlen, "truncated limits file (no checksum line)");
    return -EBADMSG;
  }
  if (pos != len) {
    vgp__errf(err, errlen, "line %d: data after the checksum line", lineno + 1);
    return -EBADMSG;
  }
  if (!have_container) {
    vgp__errf(err, errlen, "no container line");
    return -EINVAL;
  }
  *ret = l;
  return 0;
}

int vgp_limits_load(const char *path, struct vgp_limits *ret, char *err, size_t errlen) {
  char *buf = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    vgp__errf(err, errlen, "cannot open limits file %s: %s", path, strerror(e));
    return -e;
  }
  buf = vgp__malloc(VGP__LIMITS_FILE_MAX + 1);
  if (buf == NULL) {
    close(fd);
    vgp__errf(err, errlen, "out of memory reading %s", path);
    return -ENOMEM;
  }
  size_t got = 0;
  for (;;) {
    ssize_t n = read(fd, buf + got, VGP__LIMITS_FILE_MAX + 1 - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
    if (got > VGP__LIMITS_FILE_MAX)
      break;
  }
  close(fd);
  int r;
  if (got > VGP__LIMITS_FILE_MAX) {
    vgp__errf(err, errlen, "limits file %s is larger than %d bytes", path, VGP__LIMITS_FILE_MAX);
    r = -EFBIG;
  } else {
    char msg[256];
    r = vgp_limits_parse(buf, got, ret, msg, sizeof(msg));
    if (r < 0)
      vgp__errf(err, errlen, "limits file %s: %s", path, msg);
  }
  vgp__free(buf);
  return r;
}

int vgp_limits_format(const struct vgp_limits *l, char *buf, size_t len) {
  size_t used = 0;
  int n = snprintf(buf, len, "vgpool-limits %d\ncontainer %s\npriority %d\noversubscribe %s\n",
                   VGP_LIMITS_VERSION, l->container, l->priority, l->oversubscribe ? "yes" : "no");
  if (n < 0 || (size_t)n >= len)
    return -ENOSPC;
  used = (size_t)n;
  for (unsigned i = 0; i < l->ndevices; i++) {
    const struct vgp_device_limit *d = &l->dev[i];
    n = snprintf(buf + used, len - used, "device %s memory=%llu cores=%u policy=%s\n", d->uuid,
                 (unsigned long long)d->memory, d->cores,
                 d->policy == VGP_POLICY_ELASTIC ? "elastic" : "hard");
    if (n < 0 || (size_t)n >= len - used)
      return -ENOSPC;
    used += (size_t)n;
  }
  n = snprintf(buf + used, len - used, "checksum %08x\n", vgp__crc32(buf, used));
  if (n < 0 || (size_t)n >= len - used)
    return -ENOSPC;
  return (int)(used + (size_t)n);
}

int vgp_limits_save(const char *path, const struct vgp_limits *l) {
  char buf[8192], tmp[4096];
  int len = vgp_limits_format(l, buf, sizeof(buf));
  if (len < 0)
    return len;
  if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
    return -ENAMETOOLONG;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
  if (fd < 0)
    return -errno;
  ssize_t w = write(fd, buf, (size_t)len);
  int r = (w == len && fsync(fd) == 0) ? 0 : -EIO;
  close(fd);
  if (r == 0 && rename(tmp, path) < 0)
    r = -errno;
  if (r < 0)
    unlink(tmp);
  return r;
}
