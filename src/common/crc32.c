/*
 * crc32.c - bitwise CRC-32; the inputs are small files, so no table.
 */
#include "crc32.h"

uint32_t vgp__crc32(const void *data, size_t len) {
  const unsigned char *p = data;
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < len; i++) {
    crc ^= p[i];
    for (int k = 0; k < 8; k++)
      crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}
