/* tls: server.tls's certificate and key handed to libmicrohttpd (GnuTLS). */
#include "call.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- TLS (server.tls) ---- */

#define PEM_MAX (1u << 20) /* bytes; a certificate chain is a few KiB */

/* *out = the whole file at path, NUL-terminated; what names it in messages. */
static int read_pem(const char *path, const char *what, char **out, struct err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(e, ERR_IO, "server.tls.%s '%s' cannot be read: %s", what, path,
                       strerror(errno));
    char *text = malloc(PEM_MAX + 1);
    size_t len = text ? fread(text, 1, PEM_MAX + 1, f) : 0;
    bool failed = ferror(f);
    fclose(f);
    int rc = 0;
    if (!text)
        rc = err_set(e, ERR_NOMEM, "out of memory");
    else if (failed)
        rc = err_set(e, ERR_IO, "server.tls.%s '%s' cannot be read", what, path);
    else if (len == 0 || len > PEM_MAX)
        rc = err_set(e, ERR_IO, "server.tls.%s '%s' is %s", what, path,
                     len ? "over 1 MiB: not a PEM file" : "empty");
    if (rc) {
        free(text);
        return rc;
    }
    text[len] = '\0';
    *out = text;
    return 0;
}

void tls_pems_free(struct tls_pems *p)
{
    if (p->key)
        explicit_bzero(p->key, strlen(p->key));
    free(p->key);
    free(p->cert);
    *p = (struct tls_pems){0};
}

/* With server.tls set: reads both files, adds MHD_USE_TLS to *flags and the two options to
 * opts (ended by MHD_OPTION_END either way). */
int tls_setup(const struct tls_config *t, unsigned *flags, struct MHD_OptionItem opts[3],
                     struct tls_pems *p, struct err *e)
{
    opts[0] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    if (!t->cert)
        return 0;
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return err_set(e, ERR_INVALID,
                       "server.tls is set but this libmicrohttpd was built without HTTPS");
    int rc = read_pem(t->cert, "cert", &p->cert, e);
    if (rc == 0)
        rc = read_pem(t->key, "key", &p->key, e);
    if (rc) {
        tls_pems_free(p);
        return rc;
    }
    *flags |= MHD_USE_TLS;
    opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, p->key};
    opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, p->cert};
    opts[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    return 0;
}

/* libmicrohttpd's own messages (a TLS handshake error, a socket it could not accept) as log
 * lines, so that a JSON log stays one object a line. */
