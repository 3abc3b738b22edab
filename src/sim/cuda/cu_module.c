/*
 * cu_module.c - modules, functions and kernel launches of the simulated
 * driver, and the built-in kernels with defined behaviour.
 *
 * Modules load from any image: PTX text (its .entry names and parameter
 * lists are parsed, so cuModuleGetFunction fails for a name the PTX does
 * not define), cubin (ELF) or fatbin (any name resolves). The simulator
 * cannot run arbitrary GPU code, so it gives a small set of entry names a
 * defined behaviour and cost (the same kernels ship as PTX in src/work/ for
 * real GPUs), and runs every other kernel as an opaque kernel of nominal
 * cost with no effect:
 *
 *   vgpool_spin(u64 ns)                       every block runs ns nanoseconds
 *   vgpool_fill_u32(u64 ptr, u32 value, u64 n)   ptr[0..n) = value
 *   vgpool_copy(u64 dst, u64 src, u64 bytes)      memmove
 *   vgpool_axpy_f32(u64 n, f32 a, u64 x, u64 y)   y[i] = a * x[i] + y[i]
 *   vgpool_sum_u32(u64 ptr, u64 n, u64 out)       *(u64 *)out += sum ptr[0..n)
 *
 * Cost model: a kernel's grid runs in waves of (SMs x resident blocks per
 * SM) blocks, where resident blocks per SM = min(the board's limit,
 * max threads per SM / threads per block); vgpool_spin takes waves x ns,
 * memory kernels take 3 us + bytes moved / memory bandwidth, opaque kernels
 * take 5 us per wave. Pointer arguments are checked when the kernel runs: a
 * kernel that touches memory that is not device-accessible faults the
 * context with CUDA_ERROR_ILLEGAL_ADDRESS, which (as on a GPU) is sticky.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "cu_internal.h"
#include "strutil.h"

#define VGP_IMAGE_MAX (256u << 20)
#define VGP_PTX_SCAN_MAX (64u << 20)

struct vgp__builtin_sig {
  const char *name;
  int builtin;
  int nparams;
  uint16_t sizes[4];
};

static const struct vgp__builtin_sig vgp__builtins[] = {
  {"vgpool_spin", VGP_KERNEL_SPIN, 1, {8}},
  {"vgpool_fill_u32", VGP_KERNEL_FILL_U32, 3, {8, 4, 8}},
  {"vgpool_copy", VGP_KERNEL_COPY, 3, {8, 8, 8}},
  {"vgpool_axpy_f32", VGP_KERNEL_AXPY_F32, 4, {8, 4, 8, 8}},
  {"vgpool_sum_u32", VGP_KERNEL_SUM_U32, 3, {8, 8, 8}},
};

static const struct vgp__builtin_sig *vgp__builtin_find(const char *name) {
  for (size_t i = 0; i < sizeof(vgp__builtins) / sizeof(vgp__builtins[0]); i++)
    if (strcmp(vgp__builtins[i].name, name) == 0)
      return &vgp__builtins[i];
  return NULL;
}

/* ------------------------------------------------------------------ PTX */

static const char *vgp__skip_space(const char *p, const char *end) {
  for (;;) {
    while (p < end && isspace((unsigned char)*p))
      p++;
    if (p + 1 < end && p[0] == '/' && p[1] == '/') {
      while (p < end && *p != '\n')
        p++;
      continue;
    }
    if (p + 1 < end && p[0] == '/' && p[1] == '*') {
      const char *close = p + 2;
      while (close + 1 < end && !(close[0] == '*' && close[1] == '/'))
        close++;
      p = close + 2 < end ? close + 2 : end;
      continue;
    }
    return p;
  }
}

static int vgp__ptx_type_size(const char *t, size_t len) {
  if (len < 3 || t[0] != '.')
    return -1;
  int bits = atoi(t + 2);
  switch (t[1]) {
  case 'u':
  case 's':
  case 'b':
  case 'f':
    return (bits == 8 || bits == 16 || bits == 32 || bits == 64) ? bits / 8 : -1;
  default:
    return -1;
  }
}

/* Whether the word [t, end) is exactly `word`. */
static int vgp__ptx_word_is(const char *t, const char *end, const char *word) {
  size_t n = strlen(word);
  return (size_t)(end - t) == n && memcmp(t, word, n) == 0;
}

/* Parses one ".param ..." declaration starting at p; fills size/align. */
static const char *vgp__ptx_param(const char *p, const char *end, uint16_t *size, uint16_t *align) {
  int al = 0, sz = -1;
  p = vgp__skip_space(p, end);
  if ((size_t)(end - p) < 6 || strncmp(p, ".param", 6) != 0)
    return NULL;
  p += 6;
  for (;;) {
    p = vgp__skip_space(p, end);
    if (p >= end)
      return NULL;
    if ((size_t)(end - p) >= 6 && strncmp(p, ".align", 6) == 0 &&
        (p + 6 == end || !isalnum((unsigned char)p[6]))) {
      p = vgp__skip_space(p + 6, end);
      al = atoi(p);
      while (p < end && isdigit((unsigned char)*p))
        p++;
      continue;
    }
    if (*p == '.') {
      /* One dotted word at a time: attributes may be chained without
       * spaces, as in ".ptr.global.align 8". */
      const char *t = p++;
      while (p < end && (isalnum((unsigned char)*p) || *p == '_'))
        p++;
      if (vgp__ptx_word_is(t, p, ".ptr") || vgp__ptx_word_is(t, p, ".global") ||
          vgp__ptx_word_is(t, p, ".const") || vgp__ptx_word_is(t, p, ".shared") ||
          vgp__ptx_word_is(t, p, ".local"))
        continue; /* pointer attributes */
      sz = vgp__ptx_type_size(t, (size_t)(p - t));
      if (sz < 0)
        return NULL;
      continue;
    }
    break;
  }
  /* The parameter name, optionally an array "[N]". */
  while (p < end && (isalnum((unsigned char)*p) || *p == '_' || *p == '$' || *p == '%'))
    p++;
  if (p < end && *p == '[') {
    int n = atoi(p + 1);
    while (p < end && *p != ']')
      p++;
    if (p < end)
      p++;
    if (n <= 0 || sz <= 0)
      return NULL;
    if (al == 0)
      al = sz;
    sz *= n;
  }
  if (sz <= 0 || sz > 4096)
    return NULL;
  *size = (uint16_t)sz;
  *align = (uint16_t)(al > 0 ? al : sz);
  return p;
}

static void vgp__func_free(struct vgp__func *f) {
  vgp__handle_remove(f);
  vgp__free(f);
}

static void vgp__module_free(struct vgp__module *m) {
  for (int i = 0; i < m->nfuncs; i++)
    vgp__func_free(m->funcs[i]);
  vgp__handle_remove(m);
  vgp__free(m);
}

static struct vgp__func *vgp__func_new(struct vgp__module *m, const char *name, size_t len) {
  if (m->nfuncs >= VGP_MODULE_MAX_FUNCS || len == 0 || len >= sizeof(((struct vgp__func *)0)->name))
    return NULL;
  struct vgp__func *f = vgp__calloc(1, sizeof(*f));
  if (f == NULL)
    return NULL;
  f->kind = VGP_CU_FUNC;
  f->module = m;
  memcpy(f->name, name, len);
  f->name[len] = '\0';
  f->max_dynamic_shared = 48 * 1024;
  if (vgp__handle_add(f, VGP_CU_FUNC) < 0) {
    vgp__free(f);
    return NULL;
  }
  m->funcs[m->nfuncs++] = f;
  return f;
}

/* Gives f its built-in behaviour if its name and parameters match one. */
static void vgp__func_bind_builtin(struct vgp__func *f, int have_params) {
  const struct vgp__builtin_sig *b = vgp__builtin_find(f->name);
  if (b == NULL)
    return;
  if (have_params) {
    if (f->nparams != b->nparams)
      return;
    for (int i = 0; i < b->nparams; i++)
      if (f->param_size[i] != b->sizes[i])
        return;
  } else {
    f->nparams = b->nparams;
    for (int i = 0; i < b->nparams; i++) {
      f->param_size[i] = b->sizes[i];
      f->param_align[i] = b->sizes[i];
    }
  }
  f->builtin = b->builtin;
}

/* Parses the .entry declarations of PTX text into m. */
static CUresult vgp__ptx_parse(struct vgp__module *m, const char *text, size_t len) {
  const char *p = text, *end = text + len;
  while ((p = memmem(p, (size_t)(end - p), ".entry", 6)) != NULL) {
    p = vgp__skip_space(p + 6, end);
    const char *name = p;
    while (p < end && (isalnum((unsigned char)*p) || *p == '_' || *p == '$'))
      p++;
    if (p == name)
      return CUDA_ERROR_INVALID_PTX;
    struct vgp__func *f = vgp__func_new(m, name, (size_t)(p - name));
    if (f == NULL)
      return CUDA_ERROR_OUT_OF_MEMORY;
    p = vgp__skip_space(p, end);
    if (p < end && *p == '(') {
      p++;
      for (;;) {
        p = vgp__skip_space(p, end);
        if (p < end && *p == ')') {
          p++;
          break;
        }
        if (f->nparams >= VGP_FUNC_MAX_PARAMS)
          return CUDA_ERROR_INVALID_PTX;
        p = vgp__ptx_param(p, end, &f->param_size[f->nparams], &f->param_align[f->nparams]);
        if (p == NULL)
          return CUDA_ERROR_INVALID_PTX;
        f->nparams++;
        p = vgp__skip_space(p, end);
        if (p < end && *p == ',')
          p++;
      }
    }
    vgp__func_bind_builtin(f, 1);
  }
  return CUDA_SUCCESS;
}

static CUresult vgp__module_load(CUmodule *module, const void *image, size_t image_len_hint) {
  struct vgp__ctx *ctx;
  CUresult r = vgp__ctx_current(&ctx);
  if (r != CUDA_SUCCESS)
    return r;
  if (module == NULL || image == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  const unsigned char *b = image;
  int is_elf = memcmp(b, "\177ELF", 4) == 0;
  uint32_t magic;
  memcpy(&magic, b, 4);
  int is_fatbin = magic == 0xBA55ED50u || magic == 0x466243B1u;
  size_t ptx_len = 0;
  if (!is_elf && !is_fatbin) {
    /* Only text can be PTX; refuse anything else before scanning for the
     * terminating NUL, which a binary blob may not have. */
    for (int i = 0; i < 16 && b[i] != '\0'; i++)
      if (!isprint(b[i]) && !isspace(b[i]))
        return CUDA_ERROR_INVALID_IMAGE;
    size_t cap = image_len_hint ? image_len_hint : VGP_PTX_SCAN_MAX;
    const char *nul = memchr(image, '\0', cap);
    if (nul == NULL)
      return CUDA_ERROR_INVALID_IMAGE;
    ptx_len = (size_t)(nul - (const char *)image);
    const char *v = vgp__skip_space(image, (const char *)image + ptx_len);
    if ((size_t)((const char *)image + ptx_len - v) < 8 || strncmp(v, ".version", 8) != 0)
      return CUDA_ERROR_INVALID_IMAGE;
  }
  struct vgp__module *m = vgp__calloc(1, sizeof(*m));
  if (m == NULL)
    return CUDA_ERROR_OUT_OF_MEMORY;
  m->kind = VGP_CU_MODULE;
  m->ctx = ctx;
  m->is_ptx = !is_elf && !is_fatbin;
  if (vgp__handle_add(m, VGP_CU_MODULE) < 0) {
    vgp__free(m);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  if (m->is_ptx) {
    r = vgp__ptx_parse(m, image, ptx_len);
    if (r != CUDA_SUCCESS) {
      vgp__module_free(m);
      return r;
    }
  }
  *module = (CUmodule)m;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuModuleLoadData(CUmodule *module, const void *image) {
  return vgp__module_load(module, image, 0);
}

VGP_EXPORT CUresult cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int numOptions,
                                       CUjit_option *options, void **optionValues) {
  if (numOptions > 0 && (options == NULL || optionValues == NULL))
    return CUDA_ERROR_INVALID_VALUE;
  return vgp__module_load(module, image, 0);
}

VGP_EXPORT CUresult cuModuleLoadFatBinary(CUmodule *module, const void *fatCubin) {
  return vgp__module_load(module, fatCubin, 0);
}

VGP_EXPORT CUresult cuModuleLoad(CUmodule *module, const char *fname) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (module == NULL || fname == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  int fd = open(fname, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return CUDA_ERROR_FILE_NOT_FOUND;
  struct stat st;
  if (fstat(fd, &st) < 0 || st.st_size <= 0 || (uint64_t)st.st_size > VGP_IMAGE_MAX) {
    close(fd);
    return CUDA_ERROR_INVALID_IMAGE;
  }
  char *buf = vgp__malloc((size_t)st.st_size + 1);
  if (buf == NULL) {
    close(fd);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  size_t got = 0;
  while (got < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  close(fd);
  buf[got] = '\0';
  r = got == (size_t)st.st_size ? vgp__module_load(module, buf, got + 1) : CUDA_ERROR_FILE_NOT_FOUND;
  vgp__free(buf);
  return r;
}

VGP_EXPORT CUresult cuModuleUnload(CUmodule hmod) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__handle_is(hmod, VGP_CU_MODULE))
    return CUDA_ERROR_INVALID_HANDLE;
  vgp__module_free((struct vgp__module *)hmod);
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (hfunc == NULL || name == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  if (!vgp__handle_is(hmod, VGP_CU_MODULE))
    return CUDA_ERROR_INVALID_HANDLE;
  struct vgp__module *m = (struct vgp__module *)hmod;
  for (int i = 0; i < m->nfuncs; i++) {
    if (strcmp(m->funcs[i]->name, name) == 0) {
      *hfunc = (CUfunction)m->funcs[i];
      return CUDA_SUCCESS;
    }
  }
  if (m->is_ptx)
    return CUDA_ERROR_NOT_FOUND;
  /* A binary image: the simulator cannot read its symbol table, so every
   * name resolves, to a built-in if it is one. */
  struct vgp__func *f = vgp__func_new(m, name, strlen(name));
  if (f == NULL)
    return CUDA_ERROR_OUT_OF_MEMORY;
  vgp__func_bind_builtin(f, 0);
  *hfunc = (CUfunction)f;
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuModuleGetGlobal_v2(CUdeviceptr *dptr, size_t *bytes, CUmodule hmod, const char *name) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (name == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  if (!vgp__handle_is(hmod, VGP_CU_MODULE))
    return CUDA_ERROR_INVALID_HANDLE;
  /* Module-scope device variables are not modelled. */
  (void)dptr;
  (void)bytes;
  return CUDA_ERROR_NOT_FOUND;
}

VGP_EXPORT CUresult cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction hfunc) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__handle_is(hfunc, VGP_CU_FUNC))
    return CUDA_ERROR_INVALID_HANDLE;
  if (pi == NULL)
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__func *f = (struct vgp__func *)hfunc;
  const struct vgp_sim_device_config *c = &g_cu.sim.node->cfg[vgp__phys(f->module->ctx->device)];
  switch (attrib) {
  case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *pi = 1024; break;
  case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES: *pi = 0; break;
  case CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES: *pi = 0; break;
  case CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES: *pi = 0; break;
  case CU_FUNC_ATTRIBUTE_NUM_REGS: *pi = 16; break;
  case CU_FUNC_ATTRIBUTE_PTX_VERSION:
  case CU_FUNC_ATTRIBUTE_BINARY_VERSION: *pi = (int)(c->cc_major * 10 + c->cc_minor); break;
  case CU_FUNC_ATTRIBUTE_CACHE_MODE_CA: *pi = 0; break;
  case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: *pi = f->max_dynamic_shared; break;
  case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT: *pi = -1; break;
  case CU_FUNC_ATTRIBUTE_CLUSTER_SIZE_MUST_BE_SET:
  case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH:
  case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT:
  case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH:
  case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED:
  case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE: *pi = 0; break;
  default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

VGP_EXPORT CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__handle_is(hfunc, VGP_CU_FUNC))
    return CUDA_ERROR_INVALID_HANDLE;
  struct vgp__func *f = (struct vgp__func *)hfunc;
  const struct vgp_sim_device_config *c = &g_cu.sim.node->cfg[vgp__phys(f->module->ctx->device)];
  switch (attrib) {
  case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
    if (value < 0 || value > (int)c->shared_mem_per_sm - 1024)
      return CUDA_ERROR_INVALID_VALUE;
    f->max_dynamic_shared = value;
    return CUDA_SUCCESS;
  case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
    return (value >= -1 && value <= 100) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
  default:
    return CUDA_ERROR_INVALID_VALUE;
  }
}

VGP_EXPORT CUresult cuFuncSetCacheConfig(CUfunction hfunc, CUfunc_cache config) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__handle_is(hfunc, VGP_CU_FUNC))
    return CUDA_ERROR_INVALID_HANDLE;
  return (unsigned)config <= CU_FUNC_CACHE_PREFER_EQUAL ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

static unsigned vgp__blocks_per_sm(const struct vgp_sim_device_config *c, unsigned threads) {
  unsigned by_threads = threads ? c->max_threads_per_sm / threads : 1;
  unsigned n = by_threads < c->max_blocks_per_sm ? by_threads : c->max_blocks_per_sm;
  return n ? n : 1;
}

VGP_EXPORT CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, CUfunction func,
                                                                int blockSize, size_t dynamicSMemSize) {
  CUresult r = vgp__cu_check_init();
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__handle_is(func, VGP_CU_FUNC))
    return CUDA_ERROR_INVALID_HANDLE;
  if (numBlocks == NULL || blockSize <= 0 || blockSize > 1024)
    return CUDA_ERROR_INVALID_VALUE;
  struct vgp__func *f = (struct vgp__func *)func;
  const struct vgp_sim_device_config *c = &g_cu.sim.node->cfg[vgp__phys(f->module->ctx->device)];
  unsigned n = vgp__blocks_per_sm(c, (unsigned)blockSize);
  if (dynamicSMemSize > 0) {
    unsigned by_smem = (unsigned)(c->shared_mem_per_sm / dynamicSMemSize);
    if (by_smem < n)
      n = by_smem;
  }
  *numBlocks = (int)n;
  return CUDA_SUCCESS;
}

/* --------------------------------------------------------------- launch */

static uint64_t vgp__arg_u64(const void *p, uint16_t size) {
  uint64_t v = 0;
  memcpy(&v, p, size < 8 ? size : 8);
  return v;
}

/* Validates a launch and decodes the arguments the built-in needs into
 * out, so the launch can be queued and the caller's argument memory reused
 * as soon as the call returns. */
CUresult vgp__kernel_prepare(struct vgp__func *f, unsigned gx, unsigned gy, unsigned gz,
                             unsigned bx, unsigned by, unsigned bz, void **params, void **extra,
                             struct vgp__kernel_args *out, int device) {
  const struct vgp_sim_device_config *c = &g_cu.sim.node->cfg[vgp__phys(device)];
  if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0 || gy > 65535 || gz > 65535 ||
      bx > 1024 || by > 1024 || bz > 64 || (uint64_t)bx * by * bz > 1024)
    return CUDA_ERROR_INVALID_VALUE;
  memset(out, 0, sizeof(*out));
  out->builtin = f->builtin;

  const void *argp[4] = {NULL, NULL, NULL, NULL};
  int need = f->builtin != VGP_KERNEL_OPAQUE ? f->nparams : 0;
  if (need > 0) {
    if (params != NULL) {
      for (int i = 0; i < need; i++) {
        if (params[i] == NULL)
          return CUDA_ERROR_INVALID_VALUE;
        argp[i] = params[i];
      }
    } else if (extra != NULL) {
      const char *buf = NULL;
      size_t buflen = 0;
      for (int i = 0; i < 16 && extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
        if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER)
          buf = extra[i + 1];
        else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE && extra[i + 1] != NULL)
          buflen = *(size_t *)extra[i + 1];
        else
          return CUDA_ERROR_INVALID_VALUE;
      }
      size_t off = 0;
      for (int i = 0; i < need; i++) {
        off = (size_t)vgp__round_up(off, f->param_align[i] ? f->param_align[i] : 1);
        if (buf == NULL || off + f->param_size[i] > buflen)
          return CUDA_ERROR_INVALID_VALUE;
        argp[i] = buf + off;
        off += f->param_size[i];
      }
    } else {
      return CUDA_ERROR_INVALID_VALUE;
    }
  }

  uint64_t blocks = (uint64_t)gx * gy * gz;
  uint64_t per_wave = (uint64_t)c->sm_count * vgp__blocks_per_sm(c, bx * by * bz);
  uint64_t waves = (blocks + per_wave - 1) / per_wave;
  double bw = c->mem_bandwidth ? (double)c->mem_bandwidth : 1e12;
  uint64_t moved = 0;
  switch (f->builtin) {
  case VGP_KERNEL_SPIN:
    out->u[0] = vgp__arg_u64(argp[0], 8);
    out->duration_ns = out->u[0] * waves;
    return CUDA_SUCCESS;
  case VGP_KERNEL_FILL_U32:
    out->u[0] = vgp__arg_u64(argp[0], 8);
    out->u[1] = vgp__arg_u64(argp[1], 4);
    out->u[2] = vgp__arg_u64(argp[2], 8);
    moved = out->u[2] * 4;
    break;
  case VGP_KERNEL_COPY:
    out->u[0] = vgp__arg_u64(argp[0], 8);
    out->u[1] = vgp__arg_u64(argp[1], 8);
    out->u[2] = vgp__arg_u64(argp[2], 8);
    moved = out->u[2] * 2;
    break;
  case VGP_KERNEL_AXPY_F32:
    out->u[0] = vgp__arg_u64(argp[0], 8);
    memcpy(&out->f[0], argp[1], 4);
    out->u[1] = vgp__arg_u64(argp[2], 8);
    out->u[2] = vgp__arg_u64(argp[3], 8);
    moved = out->u[0] * 12;
    break;
  case VGP_KERNEL_SUM_U32:
    out->u[0] = vgp__arg_u64(argp[0], 8);
    out->u[1] = vgp__arg_u64(argp[1], 8);
    out->u[2] = vgp__arg_u64(argp[2], 8);
    moved = out->u[1] * 4;
    break;
  default:
    out->duration_ns = 5 * VGP_NSEC_PER_USEC * waves;
    return CUDA_SUCCESS;
  }
  out->duration_ns = 3 * VGP_NSEC_PER_USEC + (uint64_t)((double)moved / bw * 1e9);
  return CUDA_SUCCESS;
}

/* Applies a kernel's effect on memory; run by the context's worker. */
CUresult vgp__kernel_execute(const struct vgp__kernel_args *k) {
  switch (k->builtin) {
  case VGP_KERNEL_FILL_U32: {
    if (k->u[2] == 0)
      return CUDA_SUCCESS;
    if (k->u[2] > UINT64_MAX / 4 || !vgp__device_range_ok(k->u[0], k->u[2] * 4, NULL))
      return CUDA_ERROR_ILLEGAL_ADDRESS;
    uint32_t *p = (uint32_t *)(uintptr_t)k->u[0];
    for (uint64_t i = 0; i < k->u[2]; i++)
      p[i] = (uint32_t)k->u[1];
    return CUDA_SUCCESS;
  }
  case VGP_KERNEL_COPY:
    if (k->u[2] == 0)
      return CUDA_SUCCESS;
    if (!vgp__device_range_ok(k->u[0], k->u[2], NULL) || !vgp__device_range_ok(k->u[1], k->u[2], NULL))
      return CUDA_ERROR_ILLEGAL_ADDRESS;
    memmove((void *)(uintptr_t)k->u[0], (const void *)(uintptr_t)k->u[1], k->u[2]);
    return CUDA_SUCCESS;
  case VGP_KERNEL_AXPY_F32: {
    uint64_t n = k->u[0];
    if (n == 0)
      return CUDA_SUCCESS;
    if (n > UINT64_MAX / 4 || !vgp__device_range_ok(k->u[1], n * 4, NULL) ||
        !vgp__device_range_ok(k->u[2], n * 4, NULL))
      return CUDA_ERROR_ILLEGAL_ADDRESS;
    const float *x = (const float *)(uintptr_t)k->u[1];
    float *y = (float *)(uintptr_t)k->u[2];
    for (uint64_t i = 0; i < n; i++)
      y[i] = k->f[0] * x[i] + y[i];
    return CUDA_SUCCESS;
  }
  case VGP_KERNEL_SUM_U32: {
    uint64_t n = k->u[1], sum = 0;
    if (!vgp__device_range_ok(k->u[2], 8, NULL) ||
        (n > 0 && (n > UINT64_MAX / 4 || !vgp__device_range_ok(k->u[0], n * 4, NULL))))
      return CUDA_ERROR_ILLEGAL_ADDRESS;
    const uint32_t *p = (const uint32_t *)(uintptr_t)k->u[0];
    for (uint64_t i = 0; i < n; i++)
      sum += p[i];
    uint64_t *out = (uint64_t *)(uintptr_t)k->u[2];
    __atomic_fetch_add(out, sum, __ATOMIC_RELAXED);
    return CUDA_SUCCESS;
  }
  default:
    return CUDA_SUCCESS;
  }
}

static CUresult vgp__launch(CUfunction fh, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                            unsigned by, unsigned bz, unsigned smem, CUstream hStream,
                            void **params, void **extra, int per_thread, int cooperative) {
  struct vgp__stream *s;
  CUresult r = vgp__stream_resolve(hStream, per_thread, &s);
  if (r != CUDA_SUCCESS)
    return r;
  if (!vgp__handle_is(fh, VGP_CU_FUNC))
    return CUDA_ERROR_INVALID_HANDLE;
  struct vgp__func *f = (struct vgp__func *)fh;
  if (!vgp__handle_is(f->module->ctx, VGP_CU_CTX) || f->module->ctx->device != s->ctx->device)
    return CUDA_ERROR_INVALID_HANDLE;
  if (params != NULL && extra != NULL)
    return CUDA_ERROR_INVALID_VALUE;
  if ((int)smem > f->max_dynamic_shared)
    return CUDA_ERROR_INVALID_VALUE;
  if (s->ctx->sticky_error != CUDA_SUCCESS)
    return s->ctx->sticky_error;
  const struct vgp_sim_device_config *c = &g_cu.sim.node->cfg[vgp__phys(s->ctx->device)];
  if (cooperative && (uint64_t)gx * gy * gz > (uint64_t)c->sm_count * vgp__blocks_per_sm(c, bx * by * bz))
    return CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE;
  struct vgp__op op = {.kind = VGP_OP_KERNEL};
  r = vgp__kernel_prepare(f, gx, gy, gz, bx, by, bz, params, extra, &op.u.kernel, s->ctx->device);
  if (r != CUDA_SUCCESS)
    return r;
  if (s->capture != NULL)
    return vgp__capture_kernel(s, &op.u.kernel);
  return vgp__enqueue(s, &op);
}

VGP_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                   unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                                   unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                                   void **kernelParams, void **extra) {
  return vgp__launch(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes,
                     hStream, kernelParams, extra, 0, 0);
}

VGP_EXPORT CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                        unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                                        unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                                        void **kernelParams, void **extra) {
  return vgp__launch(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes,
                     hStream, kernelParams, extra, 1, 0);
}

VGP_EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                              unsigned int gridDimZ, unsigned int blockDimX,
                                              unsigned int blockDimY, unsigned int blockDimZ,
                                              unsigned int sharedMemBytes, CUstream hStream,
                                              void **kernelParams) {
  return vgp__launch(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes,
                     hStream, kernelParams, NULL, 0, 1);
}

VGP_EXPORT CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                                   unsigned int gridDimZ, unsigned int blockDimX,
                                                   unsigned int blockDimY, unsigned int blockDimZ,
                                                   unsigned int sharedMemBytes, CUstream hStream,
                                                   void **kernelParams) {
  return vgp__launch(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes,
                     hStream, kernelParams, NULL, 1, 1);
}

static CUresult vgp__launch_ex(const CUlaunchConfig *config, CUfunction f, void **kernelParams,
                               void **extra, int per_thread) {
  if (config == NULL || (config->numAttrs > 0 && config->attrs == NULL))
    return CUDA_ERROR_INVALID_VALUE;
  int cooperative = 0;
  for (unsigned i = 0; i < config->numAttrs; i++) {
    const CUlaunchAttribute *a = &config->attrs[i];
    switch (a->id) {
    case CU_LAUNCH_ATTRIBUTE_COOPERATIVE:
      cooperative = a->value.cooperative != 0;
      break;
    case CU_LAUNCH_ATTRIBUTE_IGNORE:
    case CU_LAUNCH_ATTRIBUTE_PRIORITY:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
    case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP:
    case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW:
    case CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY:
    case CU_LAUNCH_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
      break; /* accepted; no effect on the simulated timing */
    default:
      return CUDA_ERROR_NOT_SUPPORTED;
    }
  }
  return vgp__launch(f, config->gridDimX, config->gridDimY, config->gridDimZ, config->blockDimX,
                     config->blockDimY, config->blockDimZ, config->sharedMemBytes, config->hStream,
                     kernelParams, extra, per_thread, cooperative);
}

VGP_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams,
                                     void **extra) {
  return vgp__launch_ex(config, f, kernelParams, extra, 0);
}

VGP_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f, void **kernelParams,
                                          void **extra) {
  return vgp__launch_ex(config, f, kernelParams, extra, 1);
}
