/*
 * hook_dlsym.c - making every way to reach the driver land in a wrapper.
 *
 * Three entry paths exist:
 *   - direct linking: the dynamic linker binds the application's references
 *     to our definitions because the library is preloaded;
 *   - dlopen + dlsym: our dlsym override returns the wrapper when the name
 *     is one we hook and the lookup is on the driver's handle, RTLD_DEFAULT
 *     or RTLD_NEXT; any other lookup reaches glibc's dlsym by a tail jump,
 *     so RTLD_NEXT still means "next after the caller", not after us;
 *   - cuGetProcAddress / _v2: we ask the real driver with the caller's exact
 *     symbol, CUDA version and flags, then map the pointer it returns back to
 *     the exported name it belongs to (including _v2/_v3 and _ptsz/_ptds
 *     variants) through a reverse table of every entry point in abi/, and
 *     return our wrapper for exactly that name. A pointer we do not hook is
 *     returned unchanged.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <string.h>

#include "hook_internal.h"

struct vgp__hooked {
  const char *name;
  void *wrapper;
};

static const struct vgp__hooked vgp__hooked_table[] = {
#define VGP_HOOK_CU(symbol) {#symbol, (void *)&symbol},
#define VGP_HOOK_NVML(symbol) {#symbol, (void *)&symbol},
#include "hook_table.def"
#undef VGP_HOOK_CU
#undef VGP_HOOK_NVML
};

#define VGP_NHOOKED (sizeof(vgp__hooked_table) / sizeof(vgp__hooked_table[0]))

/* The wrapper for an exported name, or NULL if we do not hook it. The names
 * all start with "cu" or "nvml", which rejects almost every other lookup
 * after two characters. */
static void *vgp__wrapper_for(const char *name) {
  if (name == NULL || (name[0] != 'c' && name[0] != 'n'))
    return NULL;
  for (size_t i = 0; i < VGP_NHOOKED; i++)
    if (strcmp(vgp__hooked_table[i].name, name) == 0)
      return vgp__hooked_table[i].wrapper;
  return NULL;
}

/* ------------------------------------------------------------------ dlsym */

/* The address the trampoline jumps to: glibc's dlsym. */
__attribute__((used, visibility("hidden"))) void *vgp__dlsym_glibc;

static void vgp__find_glibc_dlsym(void) {
  /* dlvsym is not overridden, so this finds glibc's dlsym without
   * recursion. glibc 2.34 moved it into libc under a new version. */
  static const char *const versions[] = {"GLIBC_2.34", "GLIBC_2.2.5", "GLIBC_2.17"};
  void *fn = NULL;
  for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]) && fn == NULL; i++)
    fn = dlvsym(RTLD_NEXT, "dlsym", versions[i]);
  __atomic_store_n(&vgp__dlsym_glibc, fn, __ATOMIC_RELEASE);
}

/* Called by the dlsym trampoline: returns a wrapper to hand back, or NULL
 * to let glibc's dlsym answer. Runs before the trampoline's jump, so it is
 * also where glibc's dlsym is found, whatever the order of constructors. */
__attribute__((used, visibility("hidden"))) void *vgp__dlsym_hook(void *handle, const char *name);

void *vgp__dlsym_hook(void *handle, const char *name) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, vgp__find_glibc_dlsym);
  void *wrapper = vgp__wrapper_for(name);
  if (wrapper == NULL)
    return NULL;
  if (handle == RTLD_DEFAULT || handle == RTLD_NEXT)
    return wrapper;
  /* A handle of the driver libraries, whoever opened them: they are
   * already loaded if the caller has a handle, so RTLD_NOLOAD finds the
   * same handle without loading anything. */
  void *cuda = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
  void *nvml = dlopen("libnvidia-ml.so.1", RTLD_LAZY | RTLD_NOLOAD);
  int ours = handle == cuda || handle == nvml;
  if (cuda != NULL)
    dlclose(cuda);
  if (nvml != NULL)
    dlclose(nvml);
  return ours ? wrapper : NULL;
}

/* glibc's dlsym resolves RTLD_NEXT relative to its caller's return address,
 * so the fallback must be a jump, not a call: the trampoline keeps the
 * application's return address on the stack. */
#if defined(__x86_64__)
__asm__(".text\n"
        ".globl dlsym\n"
        ".type dlsym, @function\n"
        "dlsym:\n"
        "  push %rdi\n"
        "  push %rsi\n"
        "  sub $8, %rsp\n"
        "  call vgp__dlsym_hook\n"
        "  add $8, %rsp\n"
        "  pop %rsi\n"
        "  pop %rdi\n"
        "  test %rax, %rax\n"
        "  jnz 1f\n"
        "  jmp *vgp__dlsym_glibc(%rip)\n"
        "1:\n"
        "  ret\n"
        ".size dlsym, .-dlsym\n");
#elif defined(__aarch64__)
__asm__(".text\n"
        ".globl dlsym\n"
        ".type dlsym, %function\n"
        "dlsym:\n"
        "  stp x29, x30, [sp, #-32]!\n"
        "  stp x0, x1, [sp, #16]\n"
        "  bl vgp__dlsym_hook\n"
        "  mov x9, x0\n"
        "  ldp x0, x1, [sp, #16]\n"
        "  ldp x29, x30, [sp], #32\n"
        "  cbnz x9, 1f\n"
        "  adrp x16, vgp__dlsym_glibc\n"
        "  ldr x16, [x16, :lo12:vgp__dlsym_glibc]\n"
        "  br x16\n"
        "1:\n"
        "  mov x0, x9\n"
        "  ret\n"
        ".size dlsym, .-dlsym\n");
#else
#error "libvgpool.so needs a dlsym trampoline for this architecture"
#endif

/* ------------------------------------------------------ cuGetProcAddress */

/* Reverse map from the real driver's function addresses to our wrappers,
 * built once from every entry point in abi/ that we hook. */
static struct vgp__hmap vgp__reverse;
static pthread_once_t vgp__reverse_once = PTHREAD_ONCE_INIT;

static void vgp__reverse_build(void) {
  vgp__hmap_init(&vgp__reverse, sizeof(void *));
  if (g_hook.cuda_lib == NULL)
    return;
  for (size_t i = 0; i < VGP_NHOOKED; i++) {
    const char *name = vgp__hooked_table[i].name;
    if (name[0] != 'c')
      continue;
    void *real = vgp__real_dlsym(g_hook.cuda_lib, name);
    if (real != NULL)
      vgp__hmap_put(&vgp__reverse, (uint64_t)(uintptr_t)real, &vgp__hooked_table[i].wrapper);
  }
}

static void vgp__swap_pointer(void **pfn) {
  if (pfn == NULL || *pfn == NULL)
    return;
  pthread_once(&vgp__reverse_once, vgp__reverse_build);
  void **wrapper = vgp__hmap_get(&vgp__reverse, (uint64_t)(uintptr_t)*pfn);
  if (wrapper != NULL)
    *pfn = *wrapper;
}

VGP_EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags) {
  vgp__hook_init();
  if (vgp__real_cu.cuGetProcAddress == NULL)
    return CUDA_ERROR_NOT_INITIALIZED;
  CUresult r = vgp__real_cu.cuGetProcAddress(symbol, pfn, cudaVersion, flags);
  if (r == CUDA_SUCCESS)
    vgp__swap_pointer(pfn);
  return r;
}

VGP_EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                                        CUdriverProcAddressQueryResult *symbolStatus) {
  vgp__hook_init();
  if (vgp__real_cu.cuGetProcAddress_v2 == NULL)
    return CUDA_ERROR_NOT_INITIALIZED;
  CUresult r = vgp__real_cu.cuGetProcAddress_v2(symbol, pfn, cudaVersion, flags, symbolStatus);
  if (r == CUDA_SUCCESS)
    vgp__swap_pointer(pfn);
  return r;
}
