/*
 * strutil.h - bounded string helpers.
 *
 * Every buffer vgpool writes has a hard size; these helpers never write past
 * it and always terminate.
 */
#ifndef VGP_COMMON_STRUTIL_H
#define VGP_COMMON_STRUTIL_H

#include <stddef.h>

/* Copies at most len-1 bytes and always terminates; returns strlen(src) so
 * callers can detect truncation. */
size_t vgp__strlcpy(char *dst, const char *src, size_t len);

/* printf into an error buffer; does nothing when err is NULL or len is 0. */
void vgp__errf(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
