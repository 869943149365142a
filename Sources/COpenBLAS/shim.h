#ifndef QUIVER_COPENBLAS_SHIM_H
#define QUIVER_COPENBLAS_SHIM_H
/* Debian's libopenblas-dev installs cblas.h through update-alternatives; this is the pthread build. */
#include <cblas.h>
/* OpenBLAS extensions, declared in openblas_config.h / cblas.h of OpenBLAS. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
#endif
