#ifndef PROBEFARM_CZEROMQ_SHIM_H
#define PROBEFARM_CZEROMQ_SHIM_H
#include <zmq.h>
#endif
