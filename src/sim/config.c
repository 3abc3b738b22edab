/*
 * config.c - device presets, spec strings and config files (see config.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "proc.h"
#include "strutil.h"
#include "vgpool/units.h"

/* Facts from the vendors' data sheets and what nvidia-smi reports as the
 * total memory of each board. */
const struct vgp_sim_preset vgp_sim_presets[] = {
  /* model       name                        SMs cc     MiB    clk  mclk bus  L2KiB thr/SM blk/SM shm  W    pci    links GB/s ctx */
  {"H100-80GB", "NVIDIA H100 80GB HBM3", 132, 9, 0, 81559, 1980, 2619, 5120, 51200, 2048, 32, 228, 700, 0x2330, 18, 3350, 512},
  {"H100-PCIE", "NVIDIA H100 PCIe", 114, 9, 0, 81559, 1755, 1593, 5120, 51200, 2048, 32, 228, 350, 0x2331, 0, 2000, 512},
  {"H200", "NVIDIA H200", 132, 9, 0, 143771, 1980, 3201, 6144, 51200, 2048, 32, 228, 700, 0x2335, 18, 4800, 512},
  {"B200", "NVIDIA B200", 148, 10, 0, 183359, 1965, 3996, 8192, 65536, 2048, 32, 228, 1000, 0x2901, 18, 8000, 512},
  {"A100-80GB", "NVIDIA A100-SXM4-80GB", 108, 8, 0, 81920, 1410, 1593, 5120, 40960, 2048, 32, 164, 400, 0x20b2, 12, 2039, 448},
  {"A100-40GB", "NVIDIA A100-SXM4-40GB", 108, 8, 0, 40960, 1410, 1215, 5120, 40960, 2048, 32, 164, 400, 0x20b0, 12, 1555, 448},
  {"A30", "NVIDIA A30", 56, 8, 0, 24576, 1440, 1215, 3072, 24576, 2048, 32, 164, 165, 0x20b7, 0, 933, 384},
  {"A10", "NVIDIA A10", 72, 8, 6, 23028, 1695, 6251, 384, 6144, 1536, 16, 100, 150, 0x2236, 0, 600, 384},
  {"L4", "NVIDIA L4", 58, 8, 9, 23034, 2040, 6251, 192, 49152, 1536, 24, 100, 72, 0x27b8, 0, 300, 384},
  {"L40S", "NVIDIA L40S", 142, 8, 9, 46068, 2520, 9001, 384, 98304, 1536, 24, 100, 350, 0x26b9, 0, 864, 384},
  {"RTX4090", "NVIDIA GeForce RTX 4090", 128, 8, 9, 24564, 2520, 10501, 384, 73728, 1536, 24, 100, 450, 0x2684, 0, 1008, 384},
  {"T4", "Tesla T4", 40, 7, 5, 15360, 1590, 5001, 256, 4096, 1024, 16, 64, 70, 0x1eb8, 0, 320, 320},
  {"V100-32GB", "Tesla V100-SXM2-32GB", 80, 7, 0, 32768, 1530, 877, 4096, 6144, 2048, 32, 96, 300, 0x1db5, 6, 900, 320},
  {"V100-16GB", "Tesla V100-SXM2-16GB", 80, 7, 0, 16384, 1530, 877, 4096, 6144, 2048, 32, 96, 300, 0x1db1, 6, 900, 320},
  {"P100", "Tesla P100-PCIE-16GB", 56, 6, 0, 16280, 1328, 715, 4096, 4096, 2048, 32, 64, 250, 0x15f8, 0, 732, 256},
  {NULL, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
};

const struct vgp_sim_preset *vgp_sim_preset_find(const char *model) {
  for (const struct vgp_sim_preset *p = vgp_sim_presets; p->model; p++)
    if (strcasecmp(p->model, model) == 0)
      return p;
  return NULL;
}

static void vgp__list_models(char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (const struct vgp_sim_preset *p = vgp_sim_presets; p->model; p++) {
    int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", p->model);
    if (n < 0 || (size_t)n >= len - used)
      break;
    used += (size_t)n;
  }
}

/* FNV-1a, used to derive stable UUIDs from the node id and device index. */
static uint64_t vgp__fnv1a(const void *data, size_t len, uint64_t h) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

static void vgp__format_uuid(struct vgp_sim_device_config *c) {
  const unsigned char *b = c->uuid_bytes;
  snprintf(c->uuid, sizeof(c->uuid),
           "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
           b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
           b[11], b[12], b[13], b[14], b[15]);
}

static int vgp__parse_uuid(const char *text, unsigned char out[16]) {
  const char *p = text;
  int n = 0;
  if (strncasecmp(p, "GPU-", 4) == 0)
    p += 4;
  for (; *p && n < 32; p++) {
    if (*p == '-')
      continue;
    if (!isxdigit((unsigned char)*p))
      return -EINVAL;
    int v = isdigit((unsigned char)*p) ? *p - '0' : (tolower((unsigned char)*p) - 'a' + 10);
    if (n % 2 == 0)
      out[n / 2] = (unsigned char)(v << 4);
    else
      out[n / 2] |= (unsigned char)v;
    n++;
  }
  return (n == 32 && *p == '\0') ? 0 : -EINVAL;
}

static void vgp__apply_preset(struct vgp_sim_device_config *c,
                              const struct vgp_sim_preset *p) {
  memset(c, 0, sizeof(*c));
  vgp__strlcpy(c->model, p->model, sizeof(c->model));
  vgp__strlcpy(c->name, p->name, sizeof(c->name));
  c->sm_count = p->sm_count;
  c->cc_major = p->cc_major;
  c->cc_minor = p->cc_minor;
  c->total_memory = p->memory_mib << 20;
  c->clock_khz = p->clock_mhz * 1000;
  c->mem_clock_khz = p->mem_clock_mhz * 1000;
  c->mem_bus_width = p->mem_bus_width;
  c->l2_bytes = p->l2_kib * 1024;
  c->max_threads_per_sm = p->max_threads_per_sm;
  c->max_blocks_per_sm = p->max_blocks_per_sm;
  c->shared_mem_per_sm = p->shared_kib_per_sm * 1024;
  c->shared_mem_per_block = 48 * 1024;
  c->regs_per_sm = 65536;
  c->power_limit_mw = p->power_limit_w * 1000;
  c->pci_device_id = (p->pci_device << 16) | 0x10de;
  c->pci_subsystem_id = (0x1000u << 16) | 0x10de;
  c->mem_bandwidth = p->bandwidth_gbps * 1000000000ull;
  c->context_footprint = (uint64_t)p->context_mib << 20;
  c->numa_node = -1;
}

/* Fills in everything a device description may leave unset. */
static void vgp__finish_defaults(struct vgp_sim_device_config *cfg, int n,
                                 const int *explicit_uuid,
                                 const int *explicit_pci,
                                 const int *explicit_numa,
                                 const int *explicit_links) {
  const char *node_id = getenv("VGPOOL_SIM_NODE_ID");
  if (node_id == NULL || *node_id == '\0')
    node_id = "vgpool-sim";
  for (int i = 0; i < n; i++) {
    struct vgp_sim_device_config *c = &cfg[i];
    if (!explicit_uuid[i]) {
      uint64_t h1 = vgp__fnv1a(node_id, strlen(node_id), 0xcbf29ce484222325ull);
      h1 = vgp__fnv1a(&i, sizeof(i), h1);
      uint64_t h2 = vgp__fnv1a(c->model, strlen(c->model), h1 ^ 0x9e3779b97f4a7c15ull);
      memcpy(c->uuid_bytes, &h1, 8);
      memcpy(c->uuid_bytes + 8, &h2, 8);
      c->uuid_bytes[6] = (unsigned char)((c->uuid_bytes[6] & 0x0f) | 0x40);
      c->uuid_bytes[8] = (unsigned char)((c->uuid_bytes[8] & 0x3f) | 0x80);
    }
    vgp__format_uuid(c);
    if (!explicit_pci[i]) {
      /* Real 8-GPU servers place boards on distinct buses; mimic that. */
      static const unsigned buses[] = {0x17, 0x2a, 0x3b, 0x4c, 0x5d, 0x9a,
                                       0xab, 0xba, 0xca, 0xdb, 0x18, 0x2b,
                                       0x3c, 0x4d, 0x5e, 0x9b};
      c->pci_domain = 0;
      c->pci_bus = buses[i % 16];
      c->pci_device = 0;
    }
    snprintf(c->pci_bus_id, sizeof(c->pci_bus_id), "%08X:%02X:%02X.0",
             c->pci_domain, c->pci_bus, c->pci_device);
    if (!explicit_numa[i])
      c->numa_node = (n >= 4 && i >= n / 2) ? 1 : 0;
  }
  for (int i = 0; i < n; i++) {
    if (explicit_links[i])
      continue;
    const struct vgp_sim_preset *p = vgp_sim_preset_find(cfg[i].model);
    for (int j = 0; j < n; j++) {
      if (j == i || explicit_links[j])
        continue;
      if (p != NULL && p->nvlink_links > 0 &&
          strcmp(cfg[i].model, cfg[j].model) == 0)
        cfg[i].nvlink[j] = p->nvlink_links;
    }
  }
}

int vgp_sim_parse_spec(const char *spec, struct vgp_sim_device_config *cfg,
                       int max, char *err, size_t errlen) {
  char buf[512], models[512];
  int n = 0;
  int flags[4][VGP_SIM_MAX_DEVICES];

  if (spec == NULL || *spec == '\0') {
    vgp__errf(err, errlen, "empty device spec (expected e.g. \"2xH100-80GB,1xT4\")");
    return -EINVAL;
  }
  if (strlen(spec) >= sizeof(buf)) {
    vgp__errf(err, errlen, "device spec is longer than %zu characters", sizeof(buf) - 1);
    return -EINVAL;
  }
  /* strtok_r below would silently skip empty items; refuse them here like
   * the blank ones it does see. */
  size_t spec_len = strlen(spec);
  if (spec[0] == ',' || spec[spec_len - 1] == ',' || strstr(spec, ",,") != NULL) {
    vgp__errf(err, errlen, "empty item in device spec \"%s\"", spec);
    return -EINVAL;
  }
  memset(flags, 0, sizeof(flags));
  memcpy(buf, spec, strlen(spec) + 1);
  char *save = NULL;
  for (char *item = strtok_r(buf, ",", &save); item != NULL;
       item = strtok_r(NULL, ",", &save)) {
    while (isspace((unsigned char)*item))
      item++;
    size_t len = strlen(item);
    while (len > 0 && isspace((unsigned char)item[len - 1]))
      item[--len] = '\0';
    long count = 1;
    char *x = strchr(item, 'x');
    const char *model = item;
    if (x != NULL && x > item) {
      int digits = 1;
      for (char *p = item; p < x; p++)
        digits &= isdigit((unsigned char)*p) != 0;
      if (digits) {
        count = strtol(item, NULL, 10);
        model = x + 1;
      }
    }
    if (*item == '\0') {
      vgp__errf(err, errlen, "empty item in device spec \"%s\"", spec);
      return -EINVAL;
    }
    if (count < 1 || count > max) {
      vgp__errf(err, errlen, "bad device count in \"%s\" (must be 1..%d)", item, max);
      return -EINVAL;
    }
    const struct vgp_sim_preset *p = vgp_sim_preset_find(model);
    if (p == NULL) {
      vgp__list_models(models, sizeof(models));
      vgp__errf(err, errlen, "unknown GPU model \"%s\" in device spec (known: %s)",
                model, models);
      return -EINVAL;
    }
    if (n + count > max) {
      vgp__errf(err, errlen, "device spec \"%s\" names more than %d devices", spec, max);
      return -EINVAL;
    }
    for (long k = 0; k < count; k++)
      vgp__apply_preset(&cfg[n++], p);
  }
  if (n == 0) {
    vgp__errf(err, errlen, "device spec \"%s\" names no device", spec);
    return -EINVAL;
  }
  vgp__finish_defaults(cfg, n, flags[0], flags[1], flags[2], flags[3]);
  return n;
}

static char *vgp__trim(char *s) {
  while (isspace((unsigned char)*s))
    s++;
  size_t len = strlen(s);
  while (len > 0 && isspace((unsigned char)s[len - 1]))
    s[--len] = '\0';
  return s;
}

/* Applies one "key = value" line to device c. */
static int vgp__apply_key(struct vgp_sim_device_config *c, int index, int total,
                          const char *key, const char *value, int *explicit_uuid,
                          int *explicit_pci, int *explicit_numa,
                          int *explicit_links, char *err, size_t errlen) {
  if (strcmp(key, "name") == 0) {
    if (*value == '\0' || strlen(value) >= sizeof(c->name)) {
      vgp__errf(err, errlen, "name must be 1..%zu characters", sizeof(c->name) - 1);
      return -EINVAL;
    }
    vgp__strlcpy(c->name, value, sizeof(c->name));
  } else if (strcmp(key, "uuid") == 0) {
    if (vgp__parse_uuid(value, c->uuid_bytes) < 0) {
      vgp__errf(err, errlen, "bad uuid \"%s\" (expected GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", value);
      return -EINVAL;
    }
    explicit_uuid[index] = 1;
  } else if (strcmp(key, "pci_bus_id") == 0) {
    unsigned dom, bus, dev, fn;
    char tail;
    if (sscanf(value, "%x:%x:%x.%x%c", &dom, &bus, &dev, &fn, &tail) != 4 ||
        bus > 0xff || dev > 0x1f || fn > 7) {
      vgp__errf(err, errlen, "bad pci_bus_id \"%s\" (expected DDDDDDDD:BB:DD.F)", value);
      return -EINVAL;
    }
    c->pci_domain = dom;
    c->pci_bus = bus;
    c->pci_device = dev;
    explicit_pci[index] = 1;
  } else if (strcmp(key, "numa_node") == 0) {
    long v;
    if (vgp_parse_int(value, -1, 63, &v) < 0) {
      vgp__errf(err, errlen, "bad numa_node \"%s\" (expected -1..63)", value);
      return -EINVAL;
    }
    c->numa_node = (int32_t)v;
    explicit_numa[index] = 1;
  } else if (strcmp(key, "memory") == 0) {
    uint64_t bytes;
    if (vgp_parse_size(value, &bytes) < 0 || bytes < (64ull << 20)) {
      vgp__errf(err, errlen, "bad memory \"%s\" (expected a size of at least 64MiB, e.g. 40GiB)", value);
      return -EINVAL;
    }
    c->total_memory = bytes;
  } else if (strcmp(key, "context_memory") == 0) {
    uint64_t bytes;
    if (vgp_parse_size(value, &bytes) < 0 || bytes > c->total_memory) {
      vgp__errf(err, errlen, "bad context_memory \"%s\" (expected a size no larger than the device memory, e.g. 64MiB)", value);
      return -EINVAL;
    }
    c->context_footprint = bytes;
  } else if (strcmp(key, "sms") == 0) {
    long v;
    if (vgp_parse_int(value, 1, 1024, &v) < 0) {
      vgp__errf(err, errlen, "bad sms \"%s\" (expected 1..1024)", value);
      return -EINVAL;
    }
    c->sm_count = (uint32_t)v;
  } else if (strcmp(key, "nvlink") == 0) {
    char tmp[256];
    if (strlen(value) >= sizeof(tmp)) {
      vgp__errf(err, errlen, "nvlink list too long");
      return -EINVAL;
    }
    memcpy(tmp, value, strlen(value) + 1);
    memset(c->nvlink, 0, sizeof(c->nvlink));
    char *save = NULL;
    for (char *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
      tok = vgp__trim(tok);
      char *colon = strchr(tok, ':');
      long peer, links;
      if (colon == NULL) {
        vgp__errf(err, errlen, "bad nvlink entry \"%s\" (expected PEER:LINKS)", tok);
        return -EINVAL;
      }
      *colon = '\0';
      if (vgp_parse_int(tok, 0, total - 1, &peer) < 0 || peer == index) {
        vgp__errf(err, errlen, "bad nvlink peer \"%s\" (expected another device index 0..%d)", tok, total - 1);
        return -EINVAL;
      }
      if (vgp_parse_int(colon + 1, 0, 18, &links) < 0) {
        vgp__errf(err, errlen, "bad nvlink link count \"%s\" (expected 0..18)", colon + 1);
        return -EINVAL;
      }
      c->nvlink[peer] = (uint32_t)links;
    }
    explicit_links[index] = 1;
  } else {
    vgp__errf(err, errlen, "unknown key \"%s\" (known: model, name, uuid, pci_bus_id, numa_node, memory, context_memory, sms, nvlink)", key);
    return -EINVAL;
  }
  return 0;
}

int vgp_sim_parse_config_file(const char *path,
                              struct vgp_sim_device_config *cfg, int max,
                              char *err, size_t errlen) {
  /* Two passes: the first counts devices (nvlink peers are checked against
   * the total), the second applies the keys. */
  char line[1024], msg[512];
  int explicit[4][VGP_SIM_MAX_DEVICES];
  int total = 0;

  for (int pass = 0; pass < 2; pass++) {
    FILE *f = fopen(path, "re");
    if (f == NULL) {
      vgp__errf(err, errlen, "cannot open device config %s: %s", path, strerror(errno));
      return -errno;
    }
    int n = -1, lineno = 0, has_model = 0;
    memset(explicit, 0, sizeof(explicit));
    while (fgets(line, sizeof(line), f) != NULL) {
      lineno++;
      if (strchr(line, '\n') == NULL && !feof(f)) {
        vgp__errf(err, errlen, "%s:%d: line longer than %zu characters", path, lineno, sizeof(line) - 2);
        fclose(f);
        return -EINVAL;
      }
      char *hash = strchr(line, '#');
      if (hash)
        *hash = '\0';
      char *s = vgp__trim(line);
      if (*s == '\0')
        continue;
      if (strcmp(s, "[device]") == 0) {
        if (n >= 0 && !has_model) {
          vgp__errf(err, errlen, "%s:%d: previous [device] has no model", path, lineno);
          fclose(f);
          return -EINVAL;
        }
        if (++n >= max) {
          vgp__errf(err, errlen, "%s:%d: more than %d devices", path, lineno, max);
          fclose(f);
          return -EINVAL;
        }
        has_model = 0;
        continue;
      }
      char *eq = strchr(s, '=');
      if (eq == NULL || n < 0) {
        vgp__errf(err, errlen, "%s:%d: expected \"[device]\" or \"key = value\", got \"%s\"", path, lineno, s);
        fclose(f);
        return -EINVAL;
      }
      *eq = '\0';
      char *key = vgp__trim(s), *value = vgp__trim(eq + 1);
      if (strcmp(key, "model") == 0) {
        const struct vgp_sim_preset *p = vgp_sim_preset_find(value);
        if (p == NULL) {
          char models[512];
          vgp__list_models(models, sizeof(models));
          vgp__errf(err, errlen, "%s:%d: unknown GPU model \"%s\" (known: %s)", path, lineno, value, models);
          fclose(f);
          return -EINVAL;
        }
        if (has_model) {
          vgp__errf(err, errlen, "%s:%d: model given twice for one device", path, lineno);
          fclose(f);
          return -EINVAL;
        }
        if (pass == 1)
          vgp__apply_preset(&cfg[n], p);
        has_model = 1;
        continue;
      }
      if (!has_model) {
        vgp__errf(err, errlen, "%s:%d: \"%s\" before the device's model", path, lineno, key);
        fclose(f);
        return -EINVAL;
      }
      if (pass == 1 && vgp__apply_key(&cfg[n], n, total, key, value, explicit[0],
                                      explicit[1], explicit[2], explicit[3],
                                      msg, sizeof(msg)) < 0) {
        vgp__errf(err, errlen, "%s:%d: %s", path, lineno, msg);
        fclose(f);
        return -EINVAL;
      }
    }
    fclose(f);
    if (n < 0) {
      vgp__errf(err, errlen, "%s: no [device] section", path);
      return -EINVAL;
    }
    if (!has_model) {
      vgp__errf(err, errlen, "%s: last [device] has no model", path);
      return -EINVAL;
    }
    total = n + 1;
  }
  vgp__finish_defaults(cfg, total, explicit[0], explicit[1], explicit[2], explicit[3]);
  return total;
}

int vgp_sim_config_from_env(struct vgp_sim_device_config *cfg, int max,
                            char *source, size_t source_len, char *err,
                            size_t errlen) {
  const char *file = getenv("VGPOOL_SIM_CONFIG");
  const char *spec = getenv("VGPOOL_SIM_DEVICES");
  if (file != NULL && *file != '\0') {
    snprintf(source, source_len, "config:%s", file);
    return vgp_sim_parse_config_file(file, cfg, max, err, errlen);
  }
  if (spec == NULL)
    spec = "1xH100-80GB";
  snprintf(source, source_len, "%s", spec);
  int r = vgp_sim_parse_spec(spec, cfg, max, err, errlen);
  if (r < 0 && err != NULL) {
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "VGPOOL_SIM_DEVICES: %s", err);
    vgp__strlcpy(err, tmp, errlen);
  }
  return r;
}
