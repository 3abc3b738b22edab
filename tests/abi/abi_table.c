/*
 * abi_table.c - one side of the layout cross-check, compiled twice.
 *
 * With VGP_ABI_SIDE_REAL=0 this file includes our abi/vgpool_cuda.h and
 * defines vgp_abi_ours[]; with VGP_ABI_SIDE_REAL=1 it includes NVIDIA's
 * cuda.h and defines vgp_abi_real[]. Both copies expand the same record
 * list (abi_layout.gen.h, written by gen_abi_check.py from our header), so
 * entry i of one table and entry i of the other describe the same name and
 * the compiler, not a person, works out each size, alignment, offset and
 * value. A name the toolkit does not declare is marked absent on the real
 * side instead of breaking the build.
 *
 * Each record also checks that the type our header gives a typedef or a
 * member is the same type as this side's declaration: on the real side that
 * compares our declaration with NVIDIA's, on our side it proves that the
 * generator read our header right.
 */
#include <stddef.h>
#include <stdint.h>

#if VGP_ABI_SIDE_REAL
#include <cuda.h>
#define VGP_ABI_TABLE vgp_abi_real
#define VGP_ABI_VERSION vgp_abi_real_version
#define VGP_ABI_VERSION_VALUE CUDA_VERSION
#else
#include "vgpool_cuda.h"
#define VGP_ABI_TABLE vgp_abi_ours
#define VGP_ABI_VERSION vgp_abi_ours_version
#define VGP_ABI_VERSION_VALUE VGP_CUDA_API_VERSION
#endif

#include "abi_check.h"

#define VGP_ABI_UNPAREN(...) __VA_ARGS__
#define VGP_ABI_SAME(type, ptext)                                              \
  __builtin_types_compatible_p(type, VGP_ABI_UNPAREN ptext)
#define VGP_ABI_MEMBER(owner, path) (((owner *)0)->path)

#if VGP_ABI_SIDE_REAL
#define VGP_ABI_SEL(what, present) what##_##present
#else
/* The list was made from our header: everything in it is ours. */
#define VGP_ABI_SEL(what, present) what##_1
#endif

#define VGP_ABI_TYPE(n, t, p) VGP_ABI_SEL(VGP_ABI_TYPE, p)(#n, #t, n, t)
#define VGP_ABI_TYPE_1(s, st, n, t)                                            \
  {.kind = VGP_ABI_K_TYPE,                                                     \
   .name = s,                                                                  \
   .type_text = st,                                                            \
   .present = 1,                                                               \
   .type_ok = VGP_ABI_SAME(n, t),                                              \
   .size = sizeof(n),                                                          \
   .align = _Alignof(n)},
#define VGP_ABI_TYPE_0(s, st, n, t)                                            \
  {.kind = VGP_ABI_K_TYPE, .name = s, .type_text = st, .type_ok = -1},

/* A typedef of an anonymous enum: no type name to compare. */
#define VGP_ABI_TYPE_NT(n, p) VGP_ABI_SEL(VGP_ABI_TYPE_NT, p)(#n, n)
#define VGP_ABI_TYPE_NT_1(s, n)                                                \
  {.kind = VGP_ABI_K_TYPE,                                                     \
   .name = s,                                                                  \
   .present = 1,                                                               \
   .type_ok = -1,                                                              \
   .size = sizeof(n),                                                          \
   .align = _Alignof(n)},
#define VGP_ABI_TYPE_NT_0(s, n)                                                \
  {.kind = VGP_ABI_K_TYPE, .name = s, .type_ok = -1},

#define VGP_ABI_AGG(n, t, p) VGP_ABI_SEL(VGP_ABI_AGG, p)(#n, #t, n, t)
#define VGP_ABI_AGG_1(s, st, n, t)                                             \
  {.kind = VGP_ABI_K_AGG,                                                      \
   .name = s,                                                                  \
   .type_text = st,                                                            \
   .present = 1,                                                               \
   .type_ok = VGP_ABI_SAME(n, t),                                              \
   .size = sizeof(n),                                                          \
   .align = _Alignof(n)},
#define VGP_ABI_AGG_0(s, st, n, t)                                             \
  {.kind = VGP_ABI_K_AGG, .name = s, .type_text = st, .type_ok = -1},

#define VGP_ABI_AGG_NT(n, p) VGP_ABI_SEL(VGP_ABI_AGG_NT, p)(#n, n)
#define VGP_ABI_AGG_NT_1(s, n)                                                 \
  {.kind = VGP_ABI_K_AGG,                                                      \
   .name = s,                                                                  \
   .present = 1,                                                               \
   .type_ok = -1,                                                              \
   .size = sizeof(n),                                                          \
   .align = _Alignof(n)},
#define VGP_ABI_AGG_NT_0(s, n)                                                 \
  {.kind = VGP_ABI_K_AGG, .name = s, .type_ok = -1},

#define VGP_ABI_FIELD(o, f, t, p)                                              \
  VGP_ABI_SEL(VGP_ABI_FIELD, p)(#o, #f, #t, o, f, t)
#define VGP_ABI_FIELD_1(so, sf, st, o, f, t)                                   \
  {.kind = VGP_ABI_K_FIELD,                                                    \
   .owner = so,                                                                \
   .name = sf,                                                                 \
   .type_text = st,                                                            \
   .present = 1,                                                               \
   .type_ok = VGP_ABI_SAME(__typeof__(VGP_ABI_MEMBER(o, f)), t),               \
   .size = sizeof(VGP_ABI_MEMBER(o, f)),                                       \
   .offset = offsetof(o, f)},
#define VGP_ABI_FIELD_0(so, sf, st, o, f, t)                                   \
  {.kind = VGP_ABI_K_FIELD,                                                    \
   .owner = so,                                                                \
   .name = sf,                                                                 \
   .type_text = st,                                                            \
   .type_ok = -1},

/* A member of an anonymous struct or union type: no type name to compare,
 * its own members are checked one by one. */
#define VGP_ABI_FIELD_NT(o, f, p) VGP_ABI_SEL(VGP_ABI_FIELD_NT, p)(#o, #f, o, f)
#define VGP_ABI_FIELD_NT_1(so, sf, o, f)                                       \
  {.kind = VGP_ABI_K_FIELD,                                                    \
   .owner = so,                                                                \
   .name = sf,                                                                 \
   .present = 1,                                                               \
   .type_ok = -1,                                                              \
   .size = sizeof(VGP_ABI_MEMBER(o, f)),                                       \
   .offset = offsetof(o, f)},
#define VGP_ABI_FIELD_NT_0(so, sf, o, f)                                       \
  {.kind = VGP_ABI_K_FIELD, .owner = so, .name = sf, .type_ok = -1},

#define VGP_ABI_ENUMC(n, p) VGP_ABI_SEL(VGP_ABI_ENUMC, p)(#n, n)
#define VGP_ABI_ENUMC_1(s, n)                                                  \
  {.kind = VGP_ABI_K_ENUMC,                                                    \
   .name = s,                                                                  \
   .present = 1,                                                               \
   .type_ok = -1,                                                              \
   .value = (long long)(n)},
#define VGP_ABI_ENUMC_0(s, n)                                                  \
  {.kind = VGP_ABI_K_ENUMC, .name = s, .type_ok = -1},

#define VGP_ABI_DEFINE(n, p) VGP_ABI_SEL(VGP_ABI_DEFINE, p)(#n, n)
#define VGP_ABI_DEFINE_1(s, n)                                                 \
  {.kind = VGP_ABI_K_DEFINE,                                                   \
   .name = s,                                                                  \
   .present = 1,                                                               \
   .type_ok = -1,                                                              \
   .value = (long long)(unsigned long long)(uintptr_t)(n),                     \
   .size = sizeof(n),                                                          \
   .tclass = __builtin_classify_type(n)},
#define VGP_ABI_DEFINE_0(s, n)                                                 \
  {.kind = VGP_ABI_K_DEFINE, .name = s, .type_ok = -1},

const struct vgp_abi_rec VGP_ABI_TABLE[] = {
#include "abi_layout.gen.h"
    {.kind = 0},
};

const int VGP_ABI_VERSION = VGP_ABI_VERSION_VALUE;
