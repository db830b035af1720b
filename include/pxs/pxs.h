/**
 * @file pxs.h
 * @brief pxs: just-in-time, zero-copy movement of data by proxy.
 *        Includes every public header.
 */
#ifndef PXS_H
#define PXS_H

#include <pxs/status.h>
#include <pxs/types.h>
#include <pxs/context.h>
#include <pxs/proxy.h>
#include <pxs/store.h>
#include <pxs/resolve.h>
#include <pxs/memory.h>
#include <pxs/handle.h>
#include <pxs/lazy.h>
#include <pxs/names.h>
#include <pxs/connector.h>
#include <pxs/bootstrap.h>

#endif
