/* mock_hub: a Hugging Face Hub for the tests, a real HTTP server (libmicrohttpd) on a free
 * port of 127.0.0.1 that speaks what huggingface_hub and inferd's hub/ expect of the real one:
 *   GET  /api/models/ORG/NAME[/revision/REV] {"id", "sha", "siblings": [{"rfilename"}]}
 *   GET  /api/models/ORG/NAME/tree/REV       [{"type": "file", "path", "oid", "size", "lfs"}]
 *        (the whole tree at once, as huggingface_hub's snapshot_download lists it)
 *   HEAD|GET /ORG/NAME/resolve/REV/FILE     X-Repo-Commit, ETag (the git blob sha1), and for
 *        LFS files (*.safetensors, *.bin) a 302 to http://localhost:PORT/storage/SHA256 with
 *        X-Linked-Etag (the sha256) and X-Linked-Size, as the Hub redirects to its storage
 *        host (another host: a client's HEAD stops at the redirect)
 *   GET  /storage/SHA256                    the bytes, with Range (206, Content-Range)
 * REV is "main" or the repo's commit (the sha1 of its id); any other is 404 RevisionNotFound,
 * an unknown repo 404 RepoNotFound, a gated repo without its token 401 GatedRepo. Faults on
 * demand: the next storage GET of a file dropped after N bytes, the next N requests
 * answered 500, a file's storage bytes corrupted (one byte flipped), slow storage, an extra
 * name in a listing (e.g. "../x"). Counters of what was asked let tests check the protocol. */
#ifndef INFERD_MOCK_HUB_H
#define INFERD_MOCK_HUB_H

#include <stdbool.h>

struct mock_hub;

/* Starts the server (fails the test when it cannot). */
struct mock_hub *mock_hub_start(void);
void mock_hub_stop(struct mock_hub *h);
/* "http://127.0.0.1:PORT" (for HF_ENDPOINT) */
const char *mock_hub_url(const struct mock_hub *h);

/* Serves the files under dir (recursively) as the repo id ("ORG/NAME"); token: the repo is
 * gated and needs "Authorization: Bearer TOKEN" (NULL: public). */
void mock_hub_add(struct mock_hub *h, const char *id, const char *dir, const char *token);
/* The repo's commit sha (40 hex digits, static storage per repo). */
const char *mock_hub_commit(const struct mock_hub *h, const char *id);
/* Lists name in the repo's siblings too (a file that does not exist). */
void mock_hub_add_listing(struct mock_hub *h, const char *id, const char *name);

/* ---- faults ---- */
/* The next GET of file's storage closes the connection after `after` bytes. */
void mock_hub_drop_once(struct mock_hub *h, const char *file, long long after);
/* The next n requests (any) are answered 500. */
void mock_hub_fail_next(struct mock_hub *h, int n);
/* file's storage bytes have one byte flipped (its headers still name the true sha256). */
void mock_hub_corrupt(struct mock_hub *h, const char *file);
/* Storage answers sleep us microseconds per chunk of at most 4 kB (0: full speed). */
void mock_hub_slow(struct mock_hub *h, unsigned us);

/* ---- what was asked ---- */
enum mock_count { MOCK_INFO, MOCK_RESOLVE, MOCK_STORAGE, MOCK_RANGE, MOCK_COUNTS };
int mock_hub_count(const struct mock_hub *h, enum mock_count what);
/* The Range header of the last storage request ("" when none; static storage). */
const char *mock_hub_last_range(const struct mock_hub *h);

#endif
