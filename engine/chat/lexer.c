/* lexer: template source -> tokens, as Jinja2's lexer does it with the settings transformers
 * compiles chat templates with (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=
 * False):
 *   - newlines (\r\n, \r, \n) become \n and one trailing newline of the source is dropped;
 *   - text outside tags becomes T_TEXT; {{ }} and {% %} become BEGIN, inner tokens, END;
 *     {# #} comments vanish; {% raw %}...{% endraw %} is text;
 *   - "-" after an opening tag strips all whitespace before it, "-" before a closing tag all
 *     whitespace after it; "+" turns lstrip_blocks or trim_blocks off for that tag;
 *   - trim_blocks: the first newline after a block or comment tag is removed;
 *   - lstrip_blocks: spaces and tabs from the start of a line to a block or comment tag are
 *     removed (not for {{ }}).
 * Inside tags: names, strings with Python escapes, integers (0x/0o/0b, "_"), floats, and the
 * operators; brackets must balance, and an end tag is only recognized outside them. */
#include <stdlib.h>
#include <string.h>

#include "chat/tpl.h"

enum tag_kind { TAG_VAR, TAG_BLOCK, TAG_COMMENT };

struct lexer {
    struct tpl_job *j;
    const char *s; /* normalized source */
    size_t len, pos;
    int line;        /* line of byte line_pos */
    size_t line_pos; /* bytes before it were counted */
    int col;         /* column of byte line_pos: code points since its line's start, + 1 */
    bool line_starting;
    char brackets[128]; /* expected closing brackets */
    size_t n_brackets;
    struct token *toks;
    size_t n, cap;
};

/* Moves the line and column counters to byte pos and fills line and col. Tokens come in
 * order, so this is a forward scan and the whole lexing linear; an error may point back at a
 * tag's start, then it recounts once. */
static void locate(struct lexer *lx, size_t pos, int *line, int *col)
{
    if (pos < lx->line_pos) {
        lx->line = lx->col = 1;
        lx->line_pos = 0;
    }
    for (; lx->line_pos < pos; lx->line_pos++) {
        unsigned char c = (unsigned char)lx->s[lx->line_pos];
        if (c == '\n') {
            lx->line++;
            lx->col = 1;
        } else if ((c & 0xC0) != 0x80) {
            lx->col++; /* the first byte of a code point */
        }
    }
    *line = lx->line;
    *col = lx->col;
}

static _Noreturn void lex_fail(struct lexer *lx, size_t pos, const char *msg, char c)
{
    locate(lx, pos, &lx->j->line, &lx->j->col);
    if (c)
        tpl_fail(lx->j, ERR_FORMAT, "syntax error: %s '%c'", msg, c);
    tpl_fail(lx->j, ERR_FORMAT, "syntax error: %s", msg);
}

static struct token *emit(struct lexer *lx, enum tok_type type, size_t pos)
{
    if (lx->n == lx->cap) {
        size_t cap = lx->cap ? lx->cap * 2 : 256;
        struct token *t = tpl_alloc(lx->j, cap * sizeof *t);
        if (lx->n)
            memcpy(t, lx->toks, lx->n * sizeof *t);
        lx->toks = t;
        lx->cap = cap;
    }
    struct token *t = &lx->toks[lx->n++];
    memset(t, 0, sizeof *t);
    t->type = type;
    locate(lx, pos, &t->line, &t->col);
    return t;
}

static bool at(const struct lexer *lx, size_t pos, const char *lit)
{
    size_t n = strlen(lit);
    return pos + n <= lx->len && memcmp(lx->s + pos, lit, n) == 0;
}

static size_t skip_space(const struct lexer *lx, size_t pos)
{
    while (pos < lx->len) {
        size_t next = pos;
        if (!py_isspace(utf8_next(lx->s, lx->len, &next)))
            break;
        pos = next;
    }
    return pos;
}

/* Emits text [start, end) with the whitespace control of the tag that follows it: sign is the
 * tag's '-', '+' or 0; lstrip applies to block and comment tags. */
static void emit_text(struct lexer *lx, size_t start, size_t end, char sign, bool lstrip)
{
    if (sign == '-') {
        while (end > start) {
            size_t prev = utf8_prev(lx->s, end), i = prev;
            if (!py_isspace(utf8_next(lx->s, lx->len, &i)))
                break;
            end = prev;
        }
    } else if (sign != '+' && lstrip) {
        size_t l_pos = start;
        for (size_t i = start; i < end; i++)
            if (lx->s[i] == '\n')
                l_pos = i + 1;
        if ((l_pos > start || lx->line_starting) && l_pos < end && skip_space(lx, l_pos) >= end)
            end = l_pos;
    }
    if (end > start) {
        struct token *t = emit(lx, T_TEXT, start);
        t->str = tstr_new(lx->j, lx->s + start, end - start);
    }
}

/* Position after a block end ("%}" variants) at pos, or 0 when there is none. */
static size_t block_end_at(const struct lexer *lx, size_t pos, const char *close)
{
    if (lx->s[pos] == '+' && at(lx, pos + 1, close))
        return pos + 3;
    if (lx->s[pos] == '-' && at(lx, pos + 1, close))
        return skip_space(lx, pos + 3);
    if (at(lx, pos, close)) {
        pos += 2;
        if (pos < lx->len && lx->s[pos] == '\n')
            pos++; /* trim_blocks */
        return pos;
    }
    return 0;
}

/* {% raw %} at pos (sign already known): returns the position after it, or 0. */
static size_t raw_begin_at(const struct lexer *lx, size_t pos)
{
    pos = skip_space(lx, pos);
    if (!at(lx, pos, "raw"))
        return 0;
    pos = skip_space(lx, pos + 3);
    if (at(lx, pos, "-%}"))
        return skip_space(lx, pos + 3);
    if (at(lx, pos, "%}"))
        return pos + 2;
    return 0;
}

static void lex_raw(struct lexer *lx)
{
    for (size_t q = lx->pos; q + 1 < lx->len; q++) {
        if (!at(lx, q, "{%"))
            continue;
        size_t p = q + 2;
        char sign = 0;
        if (lx->s[p] == '-' || lx->s[p] == '+')
            sign = lx->s[p++];
        p = skip_space(lx, p);
        if (!at(lx, p, "endraw"))
            continue;
        p = skip_space(lx, p + 6);
        size_t end = p < lx->len ? block_end_at(lx, p, "%}") : 0;
        if (!end)
            continue;
        emit_text(lx, lx->pos, q, sign, true);
        lx->pos = end;
        lx->line_starting = lx->s[end - 1] == '\n';
        return;
    }
    lex_fail(lx, lx->pos, "missing end of raw directive", 0);
}

static void lex_comment(struct lexer *lx, size_t open_pos)
{
    for (size_t q = lx->pos; q < lx->len; q++) {
        size_t end = 0;
        if ((lx->s[q] == '+' || lx->s[q] == '-') && at(lx, q + 1, "#}"))
            end = block_end_at(lx, q, "#}");
        else if (at(lx, q, "#}"))
            end = block_end_at(lx, q, "#}");
        if (end) {
            lx->pos = end;
            lx->line_starting = lx->s[end - 1] == '\n';
            return;
        }
    }
    lex_fail(lx, open_pos, "missing end of comment tag", 0);
}

/* ---- inside {{ }} and {% %} --------------------------------------------------------------- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || is_digit(c);
}

/* Digits with single underscores between them (Python's `(\d+_)*\d+`); returns the end or 0. */
static size_t digits_at(const struct lexer *lx, size_t pos)
{
    if (pos >= lx->len || !is_digit(lx->s[pos]))
        return 0;
    while (pos < lx->len) {
        if (is_digit(lx->s[pos]))
            pos++;
        else if (lx->s[pos] == '_' && pos + 1 < lx->len && is_digit(lx->s[pos + 1]))
            pos++;
        else
            break;
    }
    return pos;
}

static char *copy_without_underscores(struct lexer *lx, size_t start, size_t end)
{
    char *buf = tpl_alloc(lx->j, end - start + 1);
    size_t n = 0;
    for (size_t i = start; i < end; i++)
        if (lx->s[i] != '_')
            buf[n++] = lx->s[i];
    buf[n] = '\0';
    return buf;
}

static size_t lex_number(struct lexer *lx, size_t pos)
{
    const char *s = lx->s;
    size_t d = digits_at(lx, pos), end = 0;
    bool prev_dot = pos > 0 && s[pos - 1] == '.';
    if (!prev_dot) {
        /* float: D ('.' D)? [eE][+-]? D  |  D '.' D */
        size_t p = d, frac = 0;
        if (p < lx->len && s[p] == '.')
            frac = digits_at(lx, p + 1);
        size_t q = frac ? frac : p;
        if (q < lx->len && (s[q] == 'e' || s[q] == 'E')) {
            size_t r = q + 1;
            if (r < lx->len && (s[r] == '+' || s[r] == '-'))
                r++;
            end = digits_at(lx, r);
        }
        if (!end && frac)
            end = frac;
    }
    if (end) {
        struct token *t = emit(lx, T_FLOAT, pos);
        t->f = strtod(copy_without_underscores(lx, pos, end), NULL);
        return end;
    }
    /* integer: 0b / 0o / 0x with optional "_" between digits, or decimal */
    int base = 10;
    size_t p = pos;
    if (s[p] == '0' && p + 1 < lx->len) {
        char x = s[p + 1] | 0x20;
        base = x == 'b' ? 2 : x == 'o' ? 8 : x == 'x' ? 16 : 10;
    }
    if (base != 10) {
        p += 2;
        size_t start = p;
        for (;;) {
            size_t q = p < lx->len && s[p] == '_' ? p + 1 : p;
            if (q >= lx->len)
                break;
            char c = s[q] | 0x20;
            int v = is_digit(s[q]) ? s[q] - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : 99;
            if (v >= base)
                break;
            p = q + 1;
        }
        if (p == start)
            base = 10, p = pos; /* just "0" */
    }
    if (base == 10) {
        p = pos + 1;
        if (s[pos] == '0') {
            while (p < lx->len &&
                   (s[p] == '0' || (s[p] == '_' && p + 1 < lx->len && s[p + 1] == '0')))
                p++;
        } else {
            p = digits_at(lx, pos);
        }
    }
    const char *txt = copy_without_underscores(lx, base == 10 ? pos : pos + 2, p);
    char *stop;
    unsigned long long v = strtoull(txt, &stop, base);
    if (v > INT64_MAX)
        lex_fail(lx, pos, "integer literal too large", 0);
    emit(lx, T_INT, pos)->i = (int64_t)v;
    return p;
}

static int hex_value(const struct lexer *lx, size_t pos, int n_digits, size_t at_pos)
{
    int v = 0;
    for (int k = 0; k < n_digits; k++) {
        char c = pos + (size_t)k < lx->len ? lx->s[pos + (size_t)k] : 0;
        char lc = c | 0x20;
        if (is_digit(c))
            v = v * 16 + (c - '0');
        else if (lc >= 'a' && lc <= 'f')
            v = v * 16 + (lc - 'a' + 10);
        else
            lex_fail((struct lexer *)lx, at_pos, "truncated escape in string", 0);
        if (v > 0x10FFFF)
            lex_fail((struct lexer *)lx, at_pos, "illegal Unicode character in string", 0);
    }
    return v;
}

/* A string literal [pos+1, end-1) with Python's escapes decoded. */
static struct tstr *decode_string(struct lexer *lx, size_t start, size_t end)
{
    struct sbuf b;
    sb_init(&b, lx->j, end - start);
    for (size_t i = start; i < end; i++) {
        char c = lx->s[i];
        if (c != '\\') {
            sb_putc(&b, c);
            continue;
        }
        size_t esc = i++;
        char e = lx->s[i];
        uint32_t cp;
        switch (e) {
        case '\n': break;
        case '\\':
        case '\'':
        case '"': sb_putc(&b, e); break;
        case 'a': sb_putc(&b, '\a'); break;
        case 'b': sb_putc(&b, '\b'); break;
        case 'f': sb_putc(&b, '\f'); break;
        case 'n': sb_putc(&b, '\n'); break;
        case 'r': sb_putc(&b, '\r'); break;
        case 't': sb_putc(&b, '\t'); break;
        case 'v': sb_putc(&b, '\v'); break;
        case 'x':
        case 'u':
        case 'U': {
            int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            cp = (uint32_t)hex_value(lx, i + 1, n, esc);
            if (cp >= 0xD800 && cp <= 0xDFFF)
                lex_fail(lx, esc, "surrogate escapes are not supported in strings", 0);
            sb_put_cp(&b, cp);
            i += (size_t)n;
            break;
        }
        case 'N': lex_fail(lx, esc, "\\N{...} escapes are not supported", 0);
        default:
            if (e >= '0' && e <= '7') {
                cp = 0;
                for (int k = 0; k < 3 && i < end && lx->s[i] >= '0' && lx->s[i] <= '7'; k++)
                    cp = cp * 8 + (uint32_t)(lx->s[i++] - '0');
                i--;
                sb_put_cp(&b, cp);
            } else {
                sb_putc(&b, '\\');
                sb_putc(&b, e);
            }
        }
    }
    return sb_done(&b);
}

static size_t lex_string(struct lexer *lx, size_t pos)
{
    char quote = lx->s[pos];
    size_t i = pos + 1;
    while (i < lx->len && lx->s[i] != quote)
        i += lx->s[i] == '\\' ? 2 : 1;
    if (i >= lx->len)
        lex_fail(lx, pos, "unterminated string", 0);
    struct token *t = emit(lx, T_STRING, pos);
    t->str = decode_string(lx, pos + 1, i);
    return i + 1;
}

static const struct {
    const char *text;
    int op;
} operators[] = {
    {"//", OP_FLOORDIV}, {"**", OP_POW},   {"==", OP_EQ},      {"!=", OP_NE},      {">=", OP_GTEQ},
    {"<=", OP_LTEQ},     {"+", OP_ADD},    {"-", OP_SUB},      {"/", OP_DIV},      {"*", OP_MUL},
    {"%", OP_MOD},       {"~", OP_TILDE},  {"[", OP_LBRACKET}, {"]", OP_RBRACKET}, {"(", OP_LPAREN},
    {")", OP_RPAREN},    {"{", OP_LBRACE}, {"}", OP_RBRACE},   {">", OP_GT},       {"<", OP_LT},
    {"=", OP_ASSIGN},    {".", OP_DOT},    {":", OP_COLON},    {"|", OP_PIPE},     {",", OP_COMMA},
    {";", OP_SEMICOLON},
};

static size_t lex_operator(struct lexer *lx, size_t pos)
{
    for (size_t k = 0; k < sizeof operators / sizeof operators[0]; k++) {
        if (!at(lx, pos, operators[k].text))
            continue;
        char c = operators[k].text[0];
        if (c == '(' || c == '[' || c == '{') {
            if (lx->n_brackets == sizeof lx->brackets)
                lex_fail(lx, pos, "brackets nested too deeply", 0);
            lx->brackets[lx->n_brackets++] = c == '(' ? ')' : c == '[' ? ']' : '}';
        } else if (c == ')' || c == ']' || c == '}') {
            if (lx->n_brackets == 0)
                lex_fail(lx, pos, "unexpected", c);
            if (lx->brackets[--lx->n_brackets] != c)
                lex_fail(lx, pos, "unexpected", c);
        }
        emit(lx, T_OP, pos)->op = operators[k].op;
        return pos + strlen(operators[k].text);
    }
    lex_fail(lx, pos, "unexpected char", lx->s[pos]);
}

/* Tokens of one {{ }} or {% %} tag from lx->pos to its end. */
static void lex_tag(struct lexer *lx, enum tag_kind kind, size_t open_pos)
{
    const char *close = kind == TAG_VAR ? "}}" : "%}";
    size_t pos = lx->pos;
    lx->n_brackets = 0;
    for (;;) {
        if (pos >= lx->len)
            lex_fail(lx, open_pos,
                     kind == TAG_VAR ? "'{{' is never closed" : "'{%' is never closed", 0);
        if (lx->n_brackets == 0) {
            size_t end = 0;
            if (kind == TAG_BLOCK)
                end = block_end_at(lx, pos, close);
            else if (lx->s[pos] == '-' && at(lx, pos + 1, close))
                end = skip_space(lx, pos + 3);
            else if (at(lx, pos, close))
                end = pos + 2;
            if (end) {
                emit(lx, kind == TAG_VAR ? T_VAR_END : T_BLOCK_END, pos);
                lx->pos = end;
                lx->line_starting = lx->s[end - 1] == '\n';
                return;
            }
        }
        char c = lx->s[pos];
        size_t next = pos;
        if (py_isspace(utf8_next(lx->s, lx->len, &next))) {
            pos = next;
        } else if (is_digit(c)) {
            pos = lex_number(lx, pos);
        } else if (is_name_char(c)) {
            size_t end = pos;
            while (end < lx->len && is_name_char(lx->s[end]))
                end++;
            emit(lx, T_NAME, pos)->s = tpl_strndup(lx->j, lx->s + pos, end - pos);
            pos = end;
        } else if (c == '\'' || c == '"') {
            pos = lex_string(lx, pos);
        } else {
            pos = lex_operator(lx, pos);
        }
    }
}

/* Newlines to \n, one trailing newline dropped (keep_trailing_newline=False). */
static char *normalize(struct tpl_job *j, const char *src, size_t len, size_t *out_len)
{
    char *s = tpl_alloc(j, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n')
                i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n > 0 && s[n - 1] == '\n')
        n--;
    s[n] = '\0';
    *out_len = n;
    return s;
}

void tpl_lex(struct tpl_job *j, const char *src, size_t len, struct token **out, size_t *n)
{
    struct lexer lx = {.j = j, .line = 1, .col = 1, .line_starting = true};
    lx.s = normalize(j, src, len, &lx.len);
    while (lx.pos < lx.len) {
        size_t p = lx.pos;
        while (p + 1 < lx.len && !(lx.s[p] == '{' && (lx.s[p + 1] == '{' || lx.s[p + 1] == '%' ||
                                                      lx.s[p + 1] == '#')))
            p++;
        if (p + 1 >= lx.len) {
            emit_text(&lx, lx.pos, lx.len, 0, false);
            break;
        }
        char opener = lx.s[p + 1];
        size_t q = p + 2;
        char sign = 0;
        if (q < lx.len && (lx.s[q] == '-' || lx.s[q] == '+'))
            sign = lx.s[q++];
        size_t raw_end = opener == '%' ? raw_begin_at(&lx, q) : 0;
        emit_text(&lx, lx.pos, p, sign, opener != '{');
        lx.line_starting = false;
        lx.pos = q;
        if (raw_end) {
            lx.pos = raw_end;
            lx.line_starting = lx.s[raw_end - 1] == '\n';
            lex_raw(&lx);
        } else if (opener == '#') {
            lex_comment(&lx, p);
        } else {
            emit(&lx, opener == '{' ? T_VAR_BEGIN : T_BLOCK_BEGIN, p);
            lex_tag(&lx, opener == '{' ? TAG_VAR : TAG_BLOCK, p);
        }
    }
    emit(&lx, T_EOF, lx.len);
    *out = lx.toks;
    *n = lx.n;
}
