/*
 * alloc.c - vgpool-alloc: device memory allocation patterns.
 *
 * Memory quotas are vgpool's first promise, and every allocation path of the
 * driver must honour them: this tool drives one path at a time (--api) with
 * one of two patterns and reports what the device, or the quota in front of
 * it, actually granted.
 *
 *   --pattern fill     allocate --chunk after --chunk until the first
 *                      CUDA_ERROR_OUT_OF_MEMORY (exit status 3) or until
 *                      --limit is reached (exit status 0).
 *   --pattern random   for --duration seconds, allocate blocks of random size
 *                      in [--min, --max] and free random live ones (seeded by
 *                      --seed, so a run can be repeated); out-of-memory
 *                      answers are counted and answered by freeing a block.
 *
 * --verify makes the bytes real: each block is written with the fill kernel
 * (a value unique to the block) when it is allocated, and before it is freed
 * it is summed on the device and read back with cuMemcpyDtoH word by word.
 * Because every block is checked after all the others were written, two
 * blocks that alias the same memory are caught, whoever mapped them.
 *
 * --hold keeps the allocations for a while after the summary is printed, so
 * that other processes (a second tenant, `vgpool top`, NVML) can observe
 * them; with --verify the blocks are checked again after the hold.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "jsonout.h"
#include "vgpool/units.h"
#include "work.h"

#define VGP_ALLOC_MAX_BLOCKS (1u << 20)
#define VGP_ALLOC_RANDOM_LIVE 4096u
#define VGP_ALLOC_READBACK (1u << 20)  /* bytes read back per cuMemcpyDtoH */
#define VGP_ALLOC_PITCH_WIDTH 4000u    /* row bytes for --api pitch; not a
                                        * multiple of any pitch alignment,
                                        * so the driver pads every row */

enum vgp__api { API_MALLOC, API_PITCH, API_MANAGED, API_ASYNC, API_VMM };
static const char *const vgp__api_names[] = {"malloc", "pitch", "managed", "async", "vmm"};

enum vgp__pattern { PATTERN_FILL, PATTERN_RANDOM };
static const char *const vgp__pattern_names[] = {"fill", "random"};

struct vgp__alloc_cfg {
  int device;
  int pattern;
  int api;
  uint64_t chunk, limit, min, max, seed;
  double duration_s, hold_s;
  int verify, json;
};

/* One allocation. bytes is its size as the API defines it: the request for
 * malloc, managed and async, pitch x height for pitch, the size rounded to
 * the granularity for vmm. */
struct vgp__block {
  CUdeviceptr ptr;
  uint64_t bytes;
  CUmemGenericAllocationHandle handle; /* vmm only */
  uint32_t value;                      /* what --verify wrote */
};

struct vgp__alloc_state {
  const struct vgp_work_cu *cu;
  const struct vgp_work_device *dev;
  const struct vgp_work_kernels *k;
  const struct vgp__alloc_cfg *cfg;
  CUstream stream;
  size_t granularity;  /* vmm */
  CUdeviceptr acc;     /* 64-bit accumulator for the sum kernel */
  uint32_t *host;      /* VGP_ALLOC_READBACK bytes */

  struct vgp__block *blocks;
  size_t nblocks, capblocks;
  uint64_t tag;        /* blocks ever allocated, for distinct fill values */

  uint64_t live_bytes, peak_bytes, allocs, frees, ooms, verified_bytes;
  int quiet_oom;       /* out-of-memory is expected: count it, say nothing */
};

static const char vgp__alloc_usage[] =
  "usage: vgpool-alloc [options]\n"
  "\n"
  "Allocates device memory in a pattern and reports what was granted.\n"
  "\n"
  "  --device N           device ordinal (default 0)\n"
  "  --pattern fill       allocate --chunk blocks until out of memory or --limit\n"
  "  --pattern random     allocate and free random sizes for --duration\n"
  "  --api API            malloc (cuMemAlloc, default), pitch (cuMemAllocPitch),\n"
  "                       managed (cuMemAllocManaged), async (cuMemAllocAsync),\n"
  "                       vmm (cuMemCreate + cuMemAddressReserve + cuMemMap)\n"
  "  --chunk SIZE         block size for fill (default 64MiB)\n"
  "  --limit SIZE         fill: stop after SIZE; random: at most SIZE live\n"
  "                       (default none; managed: the device's memory)\n"
  "  --min SIZE           smallest random block (default 1MiB)\n"
  "  --max SIZE           largest random block (default 64MiB)\n"
  "  --duration S         seconds of random allocation (default 5)\n"
  "  --seed N             seed of the random pattern (default 1)\n"
  "  --hold S             keep the memory S seconds after the summary\n"
  "  --verify             write every block with a kernel, check it on the\n"
  "                       device and read it back before freeing it\n"
  "  --json               print the summary as one JSON object\n"
  "  --help               this text\n"
  "\n"
  "Exit status: 0 ok, 1 CUDA error, 2 bad usage, 3 out of device memory\n"
  "(fill), 4 verification mismatch, 5 no CUDA driver.\n";

enum {
  OPT_HELP = 1,
  OPT_DEVICE,
  OPT_PATTERN,
  OPT_API,
  OPT_CHUNK,
  OPT_LIMIT,
  OPT_MIN,
  OPT_MAX,
  OPT_DURATION,
  OPT_SEED,
  OPT_HOLD,
  OPT_VERIFY,
  OPT_JSON,
};

static const struct vgp_work_opt vgp__alloc_opts[] = {
  {"help", OPT_HELP, 0},       {"device", OPT_DEVICE, 1},     {"pattern", OPT_PATTERN, 1},
  {"api", OPT_API, 1},         {"chunk", OPT_CHUNK, 1},       {"limit", OPT_LIMIT, 1},
  {"min", OPT_MIN, 1},         {"max", OPT_MAX, 1},           {"duration", OPT_DURATION, 1},
  {"seed", OPT_SEED, 1},       {"hold", OPT_HOLD, 1},         {"verify", OPT_VERIFY, 0},
  {"json", OPT_JSON, 0},       {NULL, 0, 0},
};

/* Looks text up in names[0..n); returns its index or -EINVAL after naming
 * the bad value. */
static int vgp__alloc_choice(const char *opt, const char *text, const char *const *names,
                             int n) {
  for (int i = 0; i < n; i++)
    if (strcmp(text, names[i]) == 0)
      return i;
  char list[128] = "";
  size_t used = 0;
  for (int i = 0; i < n && used < sizeof(list); i++) {
    int w = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", names[i]);
    if (w < 0)
      break;
    used += (size_t)w;
  }
  vgp_work_errorf("--%s: unknown value '%s' (expected one of: %s)", opt, text, list);
  return -EINVAL;
}

/* Parses the command line. Returns 1 after --help, 0 to go on, or a
 * negative errno after reporting the bad token. */
static int vgp__alloc_parse(int argc, char **argv, struct vgp__alloc_cfg *ret_cfg) {
  struct vgp__alloc_cfg c = {
    .chunk = 64ull << 20,
    .min = 1ull << 20,
    .max = 64ull << 20,
    .seed = 1,
    .duration_s = 5,
  };
  struct vgp_work_args it;
  const char *val;
  uint64_t u;
  int id, r = 0;

  vgp_work_args_init(&it, argc, argv);
  while ((id = vgp_work_getopt(&it, vgp__alloc_opts, &val)) > 0) {
    switch (id) {
    case OPT_HELP:
      fputs(vgp__alloc_usage, stdout);
      return 1;
    case OPT_DEVICE:
      r = vgp_work_parse_uint("device", val, 0, 1023, &u);
      c.device = (int)u;
      break;
    case OPT_PATTERN:
      r = vgp__alloc_choice("pattern", val, vgp__pattern_names, 2);
      if (r >= 0) {
        c.pattern = r;
        r = 0;
      }
      break;
    case OPT_API:
      r = vgp__alloc_choice("api", val, vgp__api_names, 5);
      if (r >= 0) {
        c.api = r;
        r = 0;
      }
      break;
    case OPT_CHUNK:
      r = vgp_work_parse_size("chunk", val, &c.chunk);
      break;
    case OPT_LIMIT:
      r = vgp_work_parse_size("limit", val, &c.limit);
      break;
    case OPT_MIN:
      r = vgp_work_parse_size("min", val, &c.min);
      break;
    case OPT_MAX:
      r = vgp_work_parse_size("max", val, &c.max);
      break;
    case OPT_DURATION:
      r = vgp_work_parse_double("duration", val, 0, 86400 * 365, &c.duration_s);
      break;
    case OPT_SEED:
      r = vgp_work_parse_uint("seed", val, 0, UINT64_MAX, &c.seed);
      break;
    case OPT_HOLD:
      r = vgp_work_parse_double("hold", val, 0, 86400 * 365, &c.hold_s);
      break;
    case OPT_VERIFY:
      c.verify = 1;
      break;
    case OPT_JSON:
      c.json = 1;
      break;
    }
    if (r < 0)
      return r;
  }
  if (id < 0)
    return id;
  if (c.chunk == 0) {
    vgp_work_errorf("--chunk: '0' is too small (at least 1 byte)");
    return -EINVAL;
  }
  if (c.min == 0) {
    vgp_work_errorf("--min: '0' is too small (at least 1 byte)");
    return -EINVAL;
  }
  if (c.min > c.max) {
    vgp_work_errorf("--min %llu is larger than --max %llu", (unsigned long long)c.min,
                    (unsigned long long)c.max);
    return -EINVAL;
  }
  *ret_cfg = c;
  return 0;
}

/* ---------------------------------------------------------- allocations */

/* vgp_work_cu_check for allocation calls: silent about out-of-memory when
 * the pattern expects it. */
static int vgp__alloc_check(const struct vgp__alloc_state *s, CUresult res, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int vgp__alloc_check(const struct vgp__alloc_state *s, CUresult res, const char *fmt, ...) {
  va_list ap;
  int r;

  if (res == CUDA_SUCCESS)
    return 0;
  va_start(ap, fmt);
  r = vgp_work_cu_vcheck(s->cu, res, s->quiet_oom, fmt, ap);
  va_end(ap);
  return r;
}

/* Allocates about `size` bytes with the configured API into *ret. Returns
 * -ENOSPC when the driver says out of memory. */
static int vgp__block_alloc(struct vgp__alloc_state *s, uint64_t size, struct vgp__block *ret) {
  const struct vgp_work_cu *cu = s->cu;
  struct vgp__block b;
  char sz[32];
  int r = 0;

  memset(&b, 0, sizeof(b));
  vgp_format_size(size, sz, sizeof(sz));
  switch (s->cfg->api) {
  case API_MALLOC:
    r = vgp__alloc_check(s, cu->cuMemAlloc_v2(&b.ptr, size), "cuMemAlloc_v2(%s)", sz);
    b.bytes = size;
    break;
  case API_PITCH: {
    size_t pitch = 0;
    size_t width = size < VGP_ALLOC_PITCH_WIDTH ? (size_t)size : VGP_ALLOC_PITCH_WIDTH;
    size_t height = (size_t)((size + width - 1) / width);
    r = vgp__alloc_check(s, cu->cuMemAllocPitch_v2(&b.ptr, &pitch, width, height, 4),
                          "cuMemAllocPitch_v2(%zu x %zu)", width, height);
    b.bytes = (uint64_t)pitch * height;
    break;
  }
  case API_MANAGED:
    r = vgp__alloc_check(s, cu->cuMemAllocManaged(&b.ptr, size, CU_MEM_ATTACH_GLOBAL),
                          "cuMemAllocManaged(%s)", sz);
    b.bytes = size;
    break;
  case API_ASYNC:
    r = vgp__alloc_check(s, cu->cuMemAllocAsync(&b.ptr, size, s->stream),
                          "cuMemAllocAsync(%s)", sz);
    b.bytes = size;
    break;
  case API_VMM: {
    CUmemAllocationProp prop;
    CUmemAccessDesc access;
    uint64_t rounded = (size + s->granularity - 1) / s->granularity * s->granularity;
    memset(&prop, 0, sizeof(prop));
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = s->dev->ordinal;
    memset(&access, 0, sizeof(access));
    access.location = prop.location;
    access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    vgp_format_size(rounded, sz, sizeof(sz));
    b.bytes = rounded;
    r = vgp__alloc_check(s, cu->cuMemCreate(&b.handle, rounded, &prop, 0), "cuMemCreate(%s)", sz);
    if (r < 0)
      break;
    r = vgp_work_cu_check(cu, cu->cuMemAddressReserve(&b.ptr, rounded, 0, 0, 0),
                          "cuMemAddressReserve(%s)", sz);
    if (r < 0) {
      cu->cuMemRelease(b.handle);
      break;
    }
    r = vgp_work_cu_check(cu, cu->cuMemMap(b.ptr, rounded, 0, b.handle, 0), "cuMemMap(%s)", sz);
    if (r == 0)
      r = vgp_work_cu_check(cu, cu->cuMemSetAccess(b.ptr, rounded, &access, 1),
                            "cuMemSetAccess(%s)", sz);
    if (r < 0) {
      cu->cuMemUnmap(b.ptr, rounded);
      cu->cuMemAddressFree(b.ptr, rounded);
      cu->cuMemRelease(b.handle);
    }
    break;
  }
  }
  if (r < 0)
    return r;
  *ret = b;
  return 0;
}

static int vgp__block_free(struct vgp__alloc_state *s, const struct vgp__block *b) {
  const struct vgp_work_cu *cu = s->cu;
  int r;

  switch (s->cfg->api) {
  case API_ASYNC:
    return vgp_work_cu_check(cu, cu->cuMemFreeAsync(b->ptr, s->stream), "cuMemFreeAsync");
  case API_VMM:
    r = vgp_work_cu_check(cu, cu->cuMemUnmap(b->ptr, b->bytes), "cuMemUnmap");
    if (r == 0)
      r = vgp_work_cu_check(cu, cu->cuMemAddressFree(b->ptr, b->bytes), "cuMemAddressFree");
    if (r == 0)
      r = vgp_work_cu_check(cu, cu->cuMemRelease(b->handle), "cuMemRelease");
    return r;
  default:
    return vgp_work_cu_check(cu, cu->cuMemFree_v2(b->ptr), "cuMemFree_v2");
  }
}

/* Writes b's words with a value unique to this block. */
static int vgp__block_write(struct vgp__alloc_state *s, struct vgp__block *b) {
  b->value = 0xa5000000u ^ (uint32_t)(s->tag * 2654435761u);
  return vgp_work_launch_fill(s->cu, s->k, s->dev, s->stream, b->ptr, b->value, b->bytes / 4);
}

/* Checks that every word of b still holds b->value: summed on the device by
 * the sum kernel, then read back in VGP_ALLOC_READBACK pieces. Returns
 * -EBADMSG (after naming the first bad word) on a mismatch. */
static int vgp__block_check(struct vgp__alloc_state *s, const struct vgp__block *b) {
  const struct vgp_work_cu *cu = s->cu;
  uint64_t words = b->bytes / 4, sum = 0;
  int r;

  r = vgp_work_cu_check(cu, cu->cuMemsetD32_v2(s->acc, 0, 2), "cuMemsetD32_v2");
  if (r == 0)
    r = vgp_work_launch_sum(cu, s->k, s->dev, s->stream, b->ptr, words, s->acc);
  if (r == 0)
    r = vgp_work_cu_check(cu, cu->cuStreamSynchronize(s->stream), "cuStreamSynchronize");
  if (r == 0)
    r = vgp_work_cu_check(cu, cu->cuMemcpyDtoH_v2(&sum, s->acc, sizeof(sum)), "cuMemcpyDtoH_v2");
  if (r < 0)
    return r;
  /* Both sides wrap modulo 2^64 the same way. */
  if (sum != words * (uint64_t)b->value) {
    vgp_work_errorf("verify: block at 0x%llx (%llu bytes): device sum %llu, expected %llu",
                    (unsigned long long)b->ptr, (unsigned long long)b->bytes,
                    (unsigned long long)sum, (unsigned long long)(words * (uint64_t)b->value));
    return -EBADMSG;
  }
  for (uint64_t off = 0; off < words * 4; off += VGP_ALLOC_READBACK) {
    uint64_t n = words * 4 - off < VGP_ALLOC_READBACK ? words * 4 - off : VGP_ALLOC_READBACK;
    r = vgp_work_cu_check(cu, cu->cuMemcpyDtoH_v2(s->host, b->ptr + off, n), "cuMemcpyDtoH_v2");
    if (r < 0)
      return r;
    for (uint64_t i = 0; i < n / 4; i++) {
      if (s->host[i] != b->value) {
        vgp_work_errorf("verify: word at 0x%llx is 0x%08x, expected 0x%08x",
                        (unsigned long long)(b->ptr + off + i * 4), s->host[i], b->value);
        return -EBADMSG;
      }
    }
  }
  s->verified_bytes += words * 4;
  return 0;
}

/* Allocates a block of `size` and appends it to the live list. */
static int vgp__alloc_one(struct vgp__alloc_state *s, uint64_t size) {
  struct vgp__block b;
  int r;

  if (s->nblocks == s->capblocks) {
    size_t cap = s->capblocks ? s->capblocks * 2 : 1024;
    if (cap > VGP_ALLOC_MAX_BLOCKS)
      cap = VGP_ALLOC_MAX_BLOCKS;
    if (cap == s->nblocks) {
      vgp_work_errorf("more than %u live allocations; use a larger --chunk",
                      VGP_ALLOC_MAX_BLOCKS);
      return -E2BIG;
    }
    struct vgp__block *nb = vgp__realloc(s->blocks, cap * sizeof(*nb));
    if (nb == NULL) {
      vgp_work_errorf("out of host memory for the allocation list");
      return -ENOMEM;
    }
    s->blocks = nb;
    s->capblocks = cap;
  }
  r = vgp__block_alloc(s, size, &b);
  if (r < 0)
    return r;
  s->tag++;
  s->allocs++;
  if (s->cfg->verify) {
    r = vgp__block_write(s, &b);
    if (r < 0) {
      vgp__block_free(s, &b);
      return r;
    }
  }
  s->blocks[s->nblocks++] = b;
  s->live_bytes += b.bytes;
  if (s->live_bytes > s->peak_bytes)
    s->peak_bytes = s->live_bytes;
  return 0;
}

/* Frees live block i, after checking its contents when `check` is set;
 * the last block takes its place. */
static int vgp__free_one(struct vgp__alloc_state *s, size_t i, int check) {
  struct vgp__block b = s->blocks[i];
  int r = 0;

  if (check)
    r = vgp__block_check(s, &b);
  int r2 = vgp__block_free(s, &b);
  s->blocks[i] = s->blocks[--s->nblocks];
  s->live_bytes -= b.bytes;
  s->frees++;
  return r < 0 ? r : r2;
}

static int vgp__check_all(struct vgp__alloc_state *s) {
  for (size_t i = 0; i < s->nblocks; i++) {
    int r = vgp__block_check(s, &s->blocks[i]);
    if (r < 0)
      return r;
  }
  return 0;
}

/* ------------------------------------------------------------- patterns */

/* Fills until out of memory or the limit. Sets *ret_oom when the driver ran
 * out of memory (which is the expected end without a limit). */
static int vgp__pattern_fill(struct vgp__alloc_state *s, uint64_t limit, int *ret_oom) {
  for (;;) {
    uint64_t size = s->cfg->chunk;
    if (limit > 0) {
      if (s->live_bytes >= limit)
        break;
      if (limit - s->live_bytes < size)
        size = limit - s->live_bytes;
    }
    int r = vgp__alloc_one(s, size);
    if (r == -ENOSPC) {
      s->ooms++;
      *ret_oom = 1;
      break;
    }
    if (r < 0)
      return r;
  }
  if (s->cfg->verify) {
    int r = vgp__check_all(s);
    if (r < 0)
      return r;
  }
  return 0;
}

static int vgp__pattern_random(struct vgp__alloc_state *s, uint64_t limit) {
  const struct vgp__alloc_cfg *c = s->cfg;
  uint64_t rng = c->seed;
  uint64_t deadline = vgp__now_ns() + (uint64_t)(c->duration_s * 1e9);
  int r;

  while (vgp__now_ns() < deadline) {
    uint64_t size = c->min + vgp_work_rand(&rng) % (c->max - c->min + 1);
    int do_alloc = s->nblocks == 0 ||
                   (s->nblocks < VGP_ALLOC_RANDOM_LIVE && (vgp_work_rand(&rng) & 1) &&
                    (limit == 0 || s->live_bytes + size <= limit));
    if (do_alloc) {
      r = vgp__alloc_one(s, size);
      if (r == 0)
        continue;
      if (r != -ENOSPC)
        return r;
      s->ooms++;
      if (s->nblocks == 0) {
        vgp_work_errorf("not even one block of %llu bytes fits", (unsigned long long)size);
        return r;
      }
      /* The device is full: make room, as an application with a cache
       * would, and go on. */
    }
    r = vgp__free_one(s, (size_t)(vgp_work_rand(&rng) % s->nblocks), c->verify);
    if (r < 0)
      return r;
  }
  return 0;
}

/* --------------------------------------------------------------- report */

static void vgp__alloc_report(const struct vgp__alloc_state *s, uint64_t total, uint64_t free0,
                              uint64_t limit, int oom, double seconds) {
  const struct vgp__alloc_cfg *c = s->cfg;
  const char *stop = c->pattern == PATTERN_RANDOM ? "duration" : oom ? "oom" : "limit";
  char a[32], b[32], t[32], f[32];

  if (c->json) {
    printf("{\"tool\":\"vgpool-alloc\",\"device\":%d,\"name\":", s->dev->ordinal);
    vgp__json_string(stdout, s->dev->name);
    printf(",\"driver_version\":%d,\"resolver\":\"%s\",\"api\":\"%s\",\"pattern\":\"%s\","
           "\"total_bytes\":%llu,\"free_bytes_before\":%llu,\"limit_bytes\":%llu,"
           "\"obtained_bytes\":%llu,\"live_allocations\":%zu,\"peak_bytes\":%llu,"
           "\"allocations\":%llu,\"frees\":%llu,\"ooms\":%llu,\"stopped_by\":\"%s\","
           "\"verified_bytes\":%llu,\"seconds\":%.3f}\n",
           s->cu->driver_version, s->cu->resolver, vgp__api_names[c->api],
           vgp__pattern_names[c->pattern], (unsigned long long)total,
           (unsigned long long)free0, (unsigned long long)limit,
           (unsigned long long)s->live_bytes, s->nblocks, (unsigned long long)s->peak_bytes,
           (unsigned long long)s->allocs, (unsigned long long)s->frees,
           (unsigned long long)s->ooms, stop, (unsigned long long)s->verified_bytes, seconds);
  } else if (c->pattern == PATTERN_FILL) {
    printf("vgpool-alloc: device %d (%s), api %s: obtained %s in %zu allocations "
           "(stopped by %s; %s free of %s before)%s\n",
           s->dev->ordinal, s->dev->name, vgp__api_names[c->api],
           vgp_format_size(s->live_bytes, a, sizeof(a)), s->nblocks, stop,
           vgp_format_size(free0, f, sizeof(f)), vgp_format_size(total, t, sizeof(t)),
           c->verify ? ", verified" : "");
  } else {
    printf("vgpool-alloc: device %d (%s), api %s: random %.1f s: %llu allocations, "
           "%llu frees, %llu out-of-memory, peak %s, %s live%s\n",
           s->dev->ordinal, s->dev->name, vgp__api_names[c->api], seconds,
           (unsigned long long)s->allocs, (unsigned long long)s->frees,
           (unsigned long long)s->ooms, vgp_format_size(s->peak_bytes, a, sizeof(a)),
           vgp_format_size(s->live_bytes, b, sizeof(b)), c->verify ? ", verified" : "");
  }
  fflush(stdout);
}

/* Runs the configured pattern on an open device. Returns 0, -ENOSPC when a
 * fill ended in out-of-memory (after the report and the hold), or another
 * negative errno. */
static int vgp__alloc_run(const struct vgp_work_cu *cu, const struct vgp_work_device *dev,
                          const struct vgp_work_kernels *k, const struct vgp__alloc_cfg *c) {
  struct vgp__alloc_state s;
  size_t free0 = 0, total = 0;
  uint64_t limit = c->limit;
  uint64_t t0;
  int oom = 0, r, r2;

  memset(&s, 0, sizeof(s));
  s.cu = cu;
  s.dev = dev;
  s.k = k;
  s.cfg = c;
  s.host = vgp__malloc(VGP_ALLOC_READBACK);
  if (s.host == NULL) {
    vgp_work_errorf("out of host memory");
    return -ENOMEM;
  }
  r = vgp_work_cu_check(cu, cu->cuMemGetInfo_v2(&free0, &total), "cuMemGetInfo_v2");
  if (r < 0)
    goto out_host;
  /* Managed memory can outgrow the device (it pages to the host), so a
   * fill without a limit would never see out-of-memory on a real GPU. */
  if (c->api == API_MANAGED && limit == 0)
    limit = total;
  /* A blocking stream (flags 0), ordered with the legacy default stream on
   * which the synchronous memsets and copies run. */
  r = vgp_work_cu_check(cu, cu->cuStreamCreate(&s.stream, 0), "cuStreamCreate");
  if (r < 0)
    goto out_host;
  if (c->api == API_VMM) {
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof(prop));
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = dev->ordinal;
    r = vgp_work_cu_check(cu, cu->cuMemGetAllocationGranularity(&s.granularity, &prop,
                                                                CU_MEM_ALLOC_GRANULARITY_MINIMUM),
                          "cuMemGetAllocationGranularity");
    if (r == 0 && s.granularity == 0)
      s.granularity = 2u << 20;
    if (r < 0)
      goto out_stream;
  }
  if (c->verify) {
    r = vgp_work_cu_check(cu, cu->cuMemAlloc_v2(&s.acc, 8), "cuMemAlloc_v2(8)");
    if (r < 0)
      goto out_stream;
  }

  s.quiet_oom = c->pattern == PATTERN_RANDOM;
  t0 = vgp__now_ns();
  if (c->pattern == PATTERN_FILL)
    r = vgp__pattern_fill(&s, limit, &oom);
  else
    r = vgp__pattern_random(&s, limit);
  if (r == 0) {
    r2 = vgp_work_cu_check(cu, cu->cuStreamSynchronize(s.stream), "cuStreamSynchronize");
    if (r2 < 0)
      r = r2;
  }
  if (r == 0) {
    vgp__alloc_report(&s, total, free0, limit, oom, (double)(vgp__now_ns() - t0) / 1e9);
    if (c->hold_s > 0) {
      vgp__sleep_ns((uint64_t)(c->hold_s * 1e9));
      if (c->verify)
        r = vgp__check_all(&s);
    }
  }

  /* Free everything. The random pattern checks each block as it frees it
   * (the fill pattern has just checked them all), and once one check or
   * free failed the rest are only freed. */
  while (s.nblocks > 0) {
    r2 = vgp__free_one(&s, s.nblocks - 1, r == 0 && c->verify && c->pattern == PATTERN_RANDOM);
    if (r == 0)
      r = r2;
  }
  vgp__free(s.blocks);
  if (s.acc != 0)
    cu->cuMemFree_v2(s.acc);
out_stream:
  r2 = vgp_work_cu_check(cu, cu->cuStreamSynchronize(s.stream), "cuStreamSynchronize");
  if (r == 0)
    r = r2;
  cu->cuStreamDestroy_v2(s.stream);
out_host:
  vgp__free(s.host);
  if (r == 0 && oom)
    r = -ENOSPC;
  return r;
}

int main(int argc, char **argv) {
  struct vgp__alloc_cfg cfg;
  struct vgp_work_session ws;
  int r;

  vgp_work_set_prog("vgpool-alloc");
  r = vgp__alloc_parse(argc, argv, &cfg);
  if (r == 1)
    return VGP_WORK_EXIT_OK;
  if (r < 0)
    return VGP_WORK_EXIT_USAGE;

  r = vgp_work_session_open(&ws, cfg.device, cfg.verify);
  if (r < 0)
    return vgp_work_exit_code(r);
  r = vgp__alloc_run(&ws.cu, &ws.dev, &ws.k, &cfg);
  vgp_work_session_close(&ws);
  return vgp_work_exit_code(r);
}
