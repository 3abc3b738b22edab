/*
 * crc32.h - CRC-32 (IEEE 802.3, reflected, as zlib computes it), used to
 * detect truncated or corrupt files vgpool reads.
 */
#ifndef VGP_COMMON_CRC32_H
#define VGP_COMMON_CRC32_H

#include <stddef.h>
#include <stdint.h>

uint32_t vgp__crc32(const void *data, size_t len);

#endif
