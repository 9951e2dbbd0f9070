/* files: see files.h. */
#include "loader/files.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* errno values with a message of their own; the rest take strerror's. */
static const struct {
    int errnum;
    const char *file, *dir;
} reasons[] = {
    {ENOENT, "no such file", "no such directory"},
    {EACCES, "permission denied", "permission denied"},
    {EPERM, "permission denied", "permission denied"},
    {ENOTDIR, "a part of the path is not a directory", "not a directory"},
    {EISDIR, "is a directory", "is a directory"},
};

static const char *reason(int errnum, bool dir)
{
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].errnum == errnum)
            return dir ? reasons[i].dir : reasons[i].file;
    return NULL;
}

int files_error(const char *path, int errnum, struct err *e)
{
    int kind = errnum == ENOENT ? ERR_NOT_FOUND : ERR_IO;
    const char *why = reason(errnum, false);
    if (why)
        return err_set(e, kind, "%s: %s", path, why);
    return err_set(e, kind, "%s: cannot read: %s", path, strerror(errnum));
}

int files_check_dir(const char *dir, const char *label, struct err *e)
{
    struct stat st;
    int errnum = 0;
    if (stat(dir, &st) != 0)
        errnum = errno;
    else if (!S_ISDIR(st.st_mode))
        errnum = ENOTDIR;
    else if (access(dir, R_OK | X_OK) != 0)
        errnum = errno;
    if (errnum == 0)
        return 0;
    int kind = errnum == ENOENT ? ERR_NOT_FOUND : ERR_IO;
    const char *why = reason(errnum, true);
    if (why)
        return err_set(e, kind, "%s '%s': %s", label, dir, why);
    return err_set(e, kind, "%s '%s': %s", label, dir, strerror(errnum));
}
