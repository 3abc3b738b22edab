/*
 * abi_procs.c - our entry points against NVIDIA's versioned PFN typedefs.
 *
 * Compiled against the real cuda.h and cudaTypedefs.h, with
 * __CUDA_API_VERSION_INTERNAL defined so that the typedefs of the older
 * variants (PFN_cuMemAlloc_v2000, ...) are visible too. Our .def is
 * included here as well: its parameter lists use only CUDA type names, so
 * each becomes a function-pointer type built from the real types, and
 * __builtin_types_compatible_p tells whether it is NVIDIA's signature for
 * that (base, version, per-thread) variant.
 *
 * The generator's records (abi_procs.gen.h) name the PFN typedef of every
 * entry and describe every real variant that the .def omits, parameter by
 * parameter, so that the test can decide whether it is a legacy variant
 * with 32-bit sizes. vgp_abi_def[] is the .def read by the C preprocessor
 * itself; the test checks that the generator saw the same list.
 */
#define __CUDA_API_VERSION_INTERNAL 1
#include <cudaTypedefs.h>

#include "abi_check.h"

#define VGP_ABI_UNPAREN(...) __VA_ARGS__

/* vgp_sig_<symbol>: our signature, in NVIDIA's types. */
#define VGP_CU_PROC(symbol, base, version, per_thread, params)                 \
  typedef CUresult(*vgp_sig_##symbol) params;
#include "vgpool_cuda_procs.def"
#undef VGP_CU_PROC

const struct vgp_abi_def_entry vgp_abi_def[] = {
#define VGP_CU_PROC(symbol_, base_, version_, per_thread_, params_)            \
  {.symbol = #symbol_,                                                         \
   .base = base_,                                                              \
   .version = version_,                                                        \
   .per_thread = per_thread_},
#include "vgpool_cuda_procs.def"
#undef VGP_CU_PROC
    {.symbol = NULL},
};

#define VGP_ABI_PROC(sym, base, ver, pt, pfn, present, note)                   \
  VGP_ABI_PROC_##present(sym, base, ver, pt, pfn, note)
#define VGP_ABI_PROC_1(sym, base_, ver, pt, pfn_, note_)                       \
  {.symbol = #sym,                                                             \
   .base = base_,                                                              \
   .version = ver,                                                             \
   .per_thread = pt,                                                           \
   .pfn = #pfn_,                                                               \
   .pfn_present = 1,                                                           \
   .compatible = __builtin_types_compatible_p(vgp_sig_##sym, pfn_),            \
   .note = note_},
#define VGP_ABI_PROC_0(sym, base_, ver, pt, pfn_, note_)                       \
  {.symbol = #sym,                                                             \
   .base = base_,                                                              \
   .version = ver,                                                             \
   .per_thread = pt,                                                           \
   .pfn = #pfn_,                                                               \
   .note = note_},
#define VGP_ABI_OMITTED(base, ver, pfn, successor, note)
#define VGP_ABI_OMITTED_ITEM(pfn, what, old_type, new_type)

const struct vgp_abi_proc vgp_abi_procs[] = {
#include "abi_procs.gen.h"
    {.symbol = NULL},
};

#undef VGP_ABI_PROC
#undef VGP_ABI_OMITTED
#define VGP_ABI_PROC(sym, base, ver, pt, pfn, present, note)
#define VGP_ABI_OMITTED(base_, ver, pfn_, successor_, note_)                   \
  {.base = base_,                                                              \
   .version = ver,                                                             \
   .pfn = pfn_,                                                                \
   .successor = successor_,                                                    \
   .note = note_},

const struct vgp_abi_omitted vgp_abi_omitted[] = {
#include "abi_procs.gen.h"
    {.base = NULL},
};

#undef VGP_ABI_OMITTED
#undef VGP_ABI_OMITTED_ITEM
#define VGP_ABI_OMITTED(base, ver, pfn, successor, note)
/* (T)0 is a value of type T, so that __builtin_classify_type can tell
 * integers (class 1) from enums, pointers and the rest. */
#define VGP_ABI_OMITTED_ITEM(pfn_, what_, ot, nt)                              \
  {.pfn = pfn_,                                                                \
   .what = what_,                                                              \
   .old_type = #ot,                                                            \
   .new_type = #nt,                                                            \
   .same =                                                                     \
       __builtin_types_compatible_p(VGP_ABI_UNPAREN ot, VGP_ABI_UNPAREN nt),   \
   .old_size = sizeof ot,                                                      \
   .new_size = sizeof nt,                                                      \
   .old_int = __builtin_classify_type(ot 0) == 1,                              \
   .new_int = __builtin_classify_type(nt 0) == 1},

const struct vgp_abi_omitted_item vgp_abi_omitted_items[] = {
#include "abi_procs.gen.h"
    {.pfn = NULL},
};
