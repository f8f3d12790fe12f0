/* Error codes of other families, mapped to libuv's: a work function's
 * return value becomes a future's status, which the application passes to
 * uv_strerror(), so it must be a libuv code. */
#include "internal.h"

#include <errno.h>
#include <netdb.h>

int uvpool_gai_error(int eai) {
  switch (eai) {
  case 0:
    return 0;
#ifdef EAI_ADDRFAMILY
  case EAI_ADDRFAMILY:
    return UV_EAI_ADDRFAMILY;
#endif
  case EAI_AGAIN:
    return UV_EAI_AGAIN;
  case EAI_BADFLAGS:
    return UV_EAI_BADFLAGS;
#ifdef EAI_CANCELED
  case EAI_CANCELED:
    return UV_EAI_CANCELED;
#endif
  case EAI_FAIL:
    return UV_EAI_FAIL;
  case EAI_FAMILY:
    return UV_EAI_FAMILY;
  case EAI_MEMORY:
    return UV_EAI_MEMORY;
#ifdef EAI_NODATA
  case EAI_NODATA:
    return UV_EAI_NODATA;
#endif
  case EAI_NONAME:
    return UV_EAI_NONAME;
  case EAI_OVERFLOW:
    return UV_EAI_OVERFLOW;
  case EAI_SERVICE:
    return UV_EAI_SERVICE;
  case EAI_SOCKTYPE:
    return UV_EAI_SOCKTYPE;
  case EAI_SYSTEM:
    return errno != 0 ? -errno : UV_EAI_FAIL;
  default:
    return UV_EAI_FAIL;
  }
}
