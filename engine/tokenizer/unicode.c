/* unicode: see unicode.h. */
#include "unicode.h"

#include <utf8proc.h>

static utf8proc_category_t cat(uint32_t cp)
{
    return utf8proc_category((utf8proc_int32_t)cp);
}

bool uni_is_whitespace(uint32_t cp)
{
    /* The White_Space property list (PropList.txt); Rust matches it exactly. */
    switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000: return true;
    default: return cp >= 0x2000 && cp <= 0x200A;
    }
}

bool uni_is_numeric(uint32_t cp)
{
    utf8proc_category_t c = cat(cp);
    return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

bool uni_is_alphabetic(uint32_t cp)
{
    switch (cat(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_NL: return true;
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
        /* Most spacing and many non-spacing marks of Indic and other scripts carry
         * Other_Alphabetic; the combining diacritics blocks do not. */
        return !(cp >= 0x0300 && cp <= 0x036F) && !(cp >= 0x1AB0 && cp <= 0x1AFF) &&
               !(cp >= 0x1DC0 && cp <= 0x1DFF) && !(cp >= 0x20D0 && cp <= 0x20FF) &&
               !(cp >= 0xFE20 && cp <= 0xFE2F);
    default: return false;
    }
}

bool uni_is_word(uint32_t cp)
{
    if (cp == 0x200C || cp == 0x200D)
        return true;
    switch (cat(cp)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_PC: return true;
    default: return uni_is_alphabetic(cp);
    }
}

bool uni_is_punctuation(uint32_t cp)
{
    switch (cat(cp)) {
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO: return true;
    default: return false;
    }
}

bool uni_is_nonspacing_mark(uint32_t cp)
{
    return cat(cp) == UTF8PROC_CATEGORY_MN;
}

bool uni_bert_is_control(uint32_t cp)
{
    if (cp == '\t' || cp == '\n' || cp == '\r')
        return false;
    /* unicode_categories' is_other(): its tables come from UnicodeData.txt, which
     * lists no unassigned (Cn) code points, so those are never control here. */
    switch (cat(cp)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CO: return true;
    default: return false;
    }
}

bool uni_bert_is_punctuation(uint32_t cp)
{
    if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
        (cp >= 123 && cp <= 126))
        return true;
    return uni_is_punctuation(cp);
}

bool uni_is_chinese_char(uint32_t cp)
{
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

size_t uni_to_lower(uint32_t cp, uint32_t out[3])
{
    /* The one unconditional multi-character lowercase mapping (SpecialCasing.txt). */
    if (cp == 0x0130) {
        out[0] = 'i';
        out[1] = 0x0307;
        return 2;
    }
    out[0] = (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
    return 1;
}
