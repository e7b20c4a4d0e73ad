#ifndef PROBEFARM_CNETCDF_SHIM_H
#define PROBEFARM_CNETCDF_SHIM_H
#include <netcdf.h>
#endif
