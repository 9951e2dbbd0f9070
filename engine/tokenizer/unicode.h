/* unicode: character predicates and case mapping with the exact definitions the
 * Hugging Face tokenizers (Rust std and the BERT normalizer) use. Properties come
 * from utf8proc; only the handful of rules Rust defines by list are spelt out here. */
#ifndef INFERD_UNICODE_H
#define INFERD_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Rust char::is_whitespace (the Unicode White_Space property). */
bool uni_is_whitespace(uint32_t cp);
/* Rust char::is_alphabetic approximated by letters, Nl and combining marks Mn/Mc
 * with the Other_Alphabetic property's main blocks (utf8proc has no such property). */
bool uni_is_alphabetic(uint32_t cp);
/* Rust char::is_numeric: general categories Nd, Nl, No. */
bool uni_is_numeric(uint32_t cp);
/* Rust regex \w (Unicode): Alphabetic, M*, Nd, Pc, Join_Control. */
bool uni_is_word(uint32_t cp);
/* Unicode general category P* (punctuation). */
bool uni_is_punctuation(uint32_t cp);
/* Mn: non-spacing mark (what StripAccents removes after NFD). */
bool uni_is_nonspacing_mark(uint32_t cp);

/* BERT rules (tokenizers normalizers/bert.rs and pre_tokenizers/bert.rs). */
bool uni_bert_is_control(uint32_t cp);     /* Cc/Cf/Co, except \t \n \r */
bool uni_bert_is_punctuation(uint32_t cp); /* ASCII symbol ranges or P* */
bool uni_is_chinese_char(uint32_t cp);     /* CJK ideograph blocks */

/* Rust char::to_lowercase: writes 1 to 3 code points to out and returns the count
 * (full case mapping, no context). */
size_t uni_to_lower(uint32_t cp, uint32_t out[3]);

#endif
