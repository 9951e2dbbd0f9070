/* dialect: the API dialects the daemon speaks, the one enum that names them. A route has one
 * (router.c's table): it decides the shape of its errors (reply.c) and, on the generation
 * routes, which request rules apply (gen_api.h: one file per dialect). The engine knows none. */
#ifndef INFERD_DIALECT_H
#define INFERD_DIALECT_H

enum dialect {
    DIALECT_HF,     /* Hugging Face, TEI: {"error": "...", "error_type": "Validation"} */
    DIALECT_OPENAI, /* /v1/...: {"error": {"message", "type", "param", "code"}} */
    DIALECT_TGI,    /* TGI's generation routes: {"error": "...", "error_type": "validation"} */
};

#endif
