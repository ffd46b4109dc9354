/*
 * status.c - the status codes' names and messages (from status.def), the message of each
 * thread's latest failed call, and the library's version and constants.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const char *const status_names[] = {
#define PYAD_STATUS(NAME, MSG) #NAME,
#include "status.def"
#undef PYAD_STATUS
};

static const char *const status_messages[] = {
#define PYAD_STATUS(NAME, MSG) MSG,
#include "status.def"
#undef PYAD_STATUS
};

const char *pyad_version(void)
{
    return PYAD_VERSION;
}
int pyad_status_count(void)
{
    return PYAD_STATUS_COUNT;
}
int pyad_chunk_records(void)
{
    return (int)PYAD_CHUNK;
}

const char *pyad_status_name(int status)
{
    return status >= 0 && status < PYAD_STATUS_COUNT ? status_names[status] : NULL;
}

const char *pyad_strstatus(int status)
{
    return status >= 0 && status < PYAD_STATUS_COUNT ? status_messages[status] : "unknown status";
}

/* The message of the calling thread's latest failed call, and the tape it failed on. Per
   thread, because several threads may use one tape: a caller reading the message of its
   failure after the call must not read another thread's, nor race with its writing. */
static _Thread_local char errmsg[200];
static _Thread_local const pyad_tape *errtape;

int pyad__fail(pyad_tape *t, int status, const char *fmt, ...)
{
    if (t != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errmsg, sizeof errmsg, fmt, ap);
        va_end(ap);
        errtape = t;
    }
    return status;
}

int pyad__fail_more(pyad_tape *t, int status, const char *fmt, ...)
{
    if (t != NULL && errtape == t) {
        const size_t used = strlen(errmsg);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errmsg + used, sizeof errmsg - used, fmt, ap);
        va_end(ap);
    }
    return status;
}

void pyad__clear_error(const pyad_tape *t)
{
    if (errtape == t)
        errtape = NULL;
}

const char *pyad_tape_errmsg(const pyad_tape *t)
{
    if (t == NULL)
        return "no tape";
    return errtape == t ? errmsg : "";
}
