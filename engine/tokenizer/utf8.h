/* utf8: small inline UTF-8 helpers used across the tokenizer. Input strings are
 * valid UTF-8 by the time they reach these (tokenizer_encode validates at the edge). */
#ifndef INFERD_UTF8_H
#define INFERD_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length in bytes of the UTF-8 sequence starting with byte b (1 for stray bytes). */
static inline size_t utf8_len(unsigned char b)
{
    if (b < 0x80)
        return 1;
    if ((b & 0xE0) == 0xC0)
        return 2;
    if ((b & 0xF0) == 0xE0)
        return 3;
    if ((b & 0xF8) == 0xF0)
        return 4;
    return 1;
}

/* Decodes the code point at s (valid UTF-8, at least utf8_len(s[0]) bytes). */
static inline uint32_t utf8_decode(const char *s, size_t *n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = utf8_len(p[0]);
    uint32_t cp;
    switch (len) {
    case 1: cp = p[0]; break;
    case 2: cp = ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F); break;
    case 3:
        cp = ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
        break;
    default:
        cp = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
             ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
        break;
    }
    if (n)
        *n = len;
    return cp;
}

/* Encodes cp into out (at least 4 bytes); returns the number of bytes written. */
static inline size_t utf8_encode(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Bytes needed to encode cp. */
static inline size_t utf8_cp_len(uint32_t cp)
{
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* Number of code points in s[0..len). */
static inline size_t utf8_count(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += (((unsigned char)s[i]) & 0xC0) != 0x80;
    return n;
}

/* Validates s[0..len) as UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
 * Returns the byte index of the first invalid byte, or len when valid. */
size_t utf8_validate(const char *s, size_t len);

#endif
