/*
 * abi_check.h - the records of the ABI cross-check (tests/abi/).
 *
 * Our declarations (abi/vgpool_cuda.h) and NVIDIA's (cuda.h) use the same
 * names, so they cannot meet in one translation unit. Instead
 * abi_table.c is compiled twice, once against each header, and each copy
 * emits one vgp_abi_rec per name that gen_abi_check.py found in our header;
 * test_abi_cuda.c compares the two tables entry by entry. abi_procs.c is
 * compiled against the real cuda.h and cudaTypedefs.h plus our .def and
 * records, per entry point, whether our parameter list is compatible with
 * NVIDIA's versioned PFN typedef, and which real variants the .def omits.
 *
 * Nothing here includes either CUDA header; the records only hold numbers
 * and strings.
 */
#ifndef VGP_ABI_CHECK_H
#define VGP_ABI_CHECK_H

#include <stddef.h>

enum vgp_abi_kind {
  VGP_ABI_K_TYPE = 1, /* a typedef: size, alignment */
  VGP_ABI_K_AGG,      /* a struct or union: size, alignment */
  VGP_ABI_K_FIELD,    /* a member (nested ones by path): offset, size */
  VGP_ABI_K_ENUMC,    /* an enum constant: value */
  VGP_ABI_K_DEFINE,   /* an object-like macro: value, size, type class */
};

struct vgp_abi_rec {
  int kind;              /* enum vgp_abi_kind; 0 ends a table */
  const char *owner;     /* VGP_ABI_K_FIELD: the struct or union */
  const char *name;      /* the name, a member path for fields */
  const char *type_text; /* the type our header gives it, or NULL */
  int present;           /* this side's header declares it */
  int type_ok;           /* -1 not checked, else 1 if type_text names the
                            same type as this side's declaration */
  unsigned long long size, align, offset;
  long long value; /* enum constants; macros as a 64-bit pattern */
  int tclass;      /* macros: __builtin_classify_type */
};

/* Built from abi/vgpool_cuda.h and from <toolkit>/include/cuda.h. */
extern const struct vgp_abi_rec vgp_abi_ours[];
extern const struct vgp_abi_rec vgp_abi_real[];
extern const int vgp_abi_ours_version; /* VGP_CUDA_API_VERSION */
extern const int vgp_abi_real_version; /* CUDA_VERSION */

/* One VGP_CU_PROC line as the C preprocessor reads the .def. */
struct vgp_abi_def_entry {
  const char *symbol; /* NULL ends the table */
  const char *base;
  int version;
  int per_thread;
};

/* One VGP_CU_PROC line as the generator reads it, checked against the
 * real PFN typedef. */
struct vgp_abi_proc {
  const char *symbol; /* NULL ends the table */
  const char *base;
  int version;
  int per_thread;
  const char *pfn;  /* PFN_<base>_v<version>[_ptsz|_ptds] */
  int pfn_present;  /* cudaTypedefs.h declares it */
  int compatible;   /* our parameter list is compatible with it */
  const char *note; /* what the generator found wrong, or "" */
};

/* A real variant of a listed base that the .def does not list. */
struct vgp_abi_omitted {
  const char *base; /* NULL ends the table */
  int version;
  const char *pfn;
  const char *successor; /* PFN of the next listed variant, or "" */
  const char *note;      /* why it cannot be a legacy variant, or "" */
};

/* One parameter (or member of a struct passed by pointer) of an omitted
 * variant next to the same one of its listed successor. */
struct vgp_abi_omitted_item {
  const char *pfn; /* of the omitted variant; NULL ends the table */
  const char *what;
  const char *old_type, *new_type;
  int same; /* compatible types */
  size_t old_size, new_size;
  int old_int, new_int; /* integer types */
};

extern const struct vgp_abi_def_entry vgp_abi_def[];
extern const struct vgp_abi_proc vgp_abi_procs[];
extern const struct vgp_abi_omitted vgp_abi_omitted[];
extern const struct vgp_abi_omitted_item vgp_abi_omitted_items[];

#endif
