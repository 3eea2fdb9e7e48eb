/*
 * format.c - libslab's own printf: reports and statistics are formatted
 * here in every build, so that the freestanding build needs no C library
 * and the hosted one formats without allocating, from any context.
 *
 * It knows what libslab's messages use: the flags '-' and '0', a width
 * and a precision (digits or '*'), the lengths l, ll and z, and the
 * conversions d i u x p s c and %.  An unknown conversion is copied as
 * written.  The output is always NUL-terminated when size > 0 and is cut
 * at size - 1 characters; the return value is the length the whole
 * output would have had, as vsnprintf's.
 */
#include "internal.h"

struct sink {
    char *buf;
    size_t size, len;
};

static void put(struct sink *s, char c)
{
    if (s->len + 1 < s->size)
        s->buf[s->len] = c;
    s->len++;
}

static void pad(struct sink *s, char c, size_t n)
{
    while (n--)
        put(s, c);
}

/* text of length n, right-aligned in width unless left */
static void field(struct sink *s, const char *text, size_t n, size_t width, bool left, char fill)
{
    if (!left)
        pad(s, fill, width > n ? width - n : 0);
    for (size_t i = 0; i < n; i++)
        put(s, text[i]);
    if (left)
        pad(s, ' ', width > n ? width - n : 0);
}

static void number(struct sink *s, unsigned long long v, bool neg, unsigned base, size_t width,
                   bool left, bool zero, const char *prefix)
{
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    size_t plen = neg ? 1 : strlen(prefix);
    size_t len = n + plen;
    if (!left && !zero)
        pad(s, ' ', width > len ? width - len : 0);
    if (neg)
        put(s, '-');
    else
        for (const char *p = prefix; *p; p++)
            put(s, *p);
    if (!left && zero)
        pad(s, '0', width > len ? width - len : 0);
    while (n)
        put(s, digits[--n]);
    if (left)
        pad(s, ' ', width > len ? width - len : 0);
}

int slab_vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct sink s = {buf, size, 0};
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            put(&s, *f);
            continue;
        }
        const char *start = f++;
        bool left = false, zero = false;
        for (;; f++) {
            if (*f == '-')
                left = true;
            else if (*f == '0')
                zero = true;
            else
                break;
        }
        size_t width = 0, prec = SIZE_MAX;
        if (*f == '*') {
            int w = va_arg(ap, int);
            left |= w < 0;
            width = (size_t)(w < 0 ? -(long)w : w);
            f++;
        } else {
            while (*f >= '0' && *f <= '9')
                width = width * 10 + (size_t)(*f++ - '0');
        }
        if (*f == '.') {
            f++;
            prec = 0;
            if (*f == '*') {
                int p = va_arg(ap, int);
                prec = p < 0 ? SIZE_MAX : (size_t)p;
                f++;
            } else {
                while (*f >= '0' && *f <= '9')
                    prec = prec * 10 + (size_t)(*f++ - '0');
            }
        }
        int lng = 0; /* 1: l, 2: ll, 3: z */
        if (*f == 'l')
            lng = f[1] == 'l' ? (f++, 2) : 1, f++;
        else if (*f == 'z')
            lng = 3, f++;
        switch (*f) {
        case 'd':
        case 'i': {
            long long v = lng == 2 ? va_arg(ap, long long)
                        : lng == 1 ? va_arg(ap, long)
                        : lng == 3 ? (long long)va_arg(ap, size_t)
                                   : va_arg(ap, int);
            unsigned long long mag = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
            number(&s, mag, v < 0, 10, width, left, zero, "");
            break;
        }
        case 'u':
        case 'x': {
            unsigned long long v = lng == 2 ? va_arg(ap, unsigned long long)
                                 : lng == 1 ? va_arg(ap, unsigned long)
                                 : lng == 3 ? va_arg(ap, size_t)
                                            : va_arg(ap, unsigned);
            number(&s, v, false, *f == 'u' ? 10 : 16, width, left, zero, "");
            break;
        }
        case 'p': {
            void *p = va_arg(ap, void *);
            if (p)
                number(&s, (uintptr_t)p, false, 16, width, left, false, "0x");
            else
                field(&s, "(nil)", 5, width, left, ' ');
            break;
        }
        case 's': {
            const char *str = va_arg(ap, const char *);
            if (!str)
                str = "(null)";
            size_t n = 0;
            while (n < prec && str[n])
                n++;
            field(&s, str, n, width, left, ' ');
            break;
        }
        case 'c': {
            char c = (char)va_arg(ap, int);
            field(&s, &c, 1, width, left, ' ');
            break;
        }
        case '%':
            put(&s, '%');
            break;
        default: /* not ours: copy it as written */
            for (const char *p = start; p <= f && *p; p++)
                put(&s, *p);
            if (!*f)
                f--;
            break;
        }
    }
    if (size)
        buf[s.len < size ? s.len : size - 1] = '\0';
    return s.len > INT32_MAX ? INT32_MAX : (int)s.len;
}

int slab_format(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = slab_vformat(buf, size, fmt, ap);
    va_end(ap);
    return n;
}
