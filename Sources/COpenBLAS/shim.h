#ifndef QUIVER_COPENBLAS_SHIM_H
#define QUIVER_COPENBLAS_SHIM_H
/* Debian's libopenblas-dev installs cblas.h through update-alternatives; this is the pthread build. */
#include <cblas.h>
#include <stddef.h>
/* OpenBLAS extensions, declared in openblas_config.h / cblas.h of OpenBLAS. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
/* LAPACK's SVD (OpenBLAS ships LAPACK; Debian installs no lapacke.h for it): the Fortran symbol, all
 * arguments by pointer, column-major, with gfortran's hidden lengths of the two character arguments. */
void sgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, float *a, const int *lda,
             float *s, float *u, const int *ldu, float *vt, const int *ldvt, float *work, const int *lwork,
             int *info, size_t jobu_len, size_t jobvt_len);
#endif
