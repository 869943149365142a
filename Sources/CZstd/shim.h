#ifndef QUIVER_CZSTD_SHIM_H
#define QUIVER_CZSTD_SHIM_H
#include <zstd.h>
#endif
