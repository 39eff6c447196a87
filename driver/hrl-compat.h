/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What differs between the kernels dm-hrl builds for (Debian's 6.1 LTS and
 * 6.12 LTS). Debian backported the ioprio argument of dm_io() to 6.1; other
 * 6.1 kernels may lack it (added upstream in 6.9).
 */
#ifndef HRL_COMPAT_H
#define HRL_COMPAT_H

#include <linux/version.h>
#include <linux/ioprio.h>
#include <linux/dm-io.h>

#ifndef HRL_DM_IO_HAS_IOPRIO
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0) || defined(HRL_DEBIAN_DM_IO_IOPRIO)
#define HRL_DM_IO_HAS_IOPRIO 1
#else
#define HRL_DM_IO_HAS_IOPRIO 0
#endif
#endif

#if HRL_DM_IO_HAS_IOPRIO
#define hrl_dm_io(req, n, where, err) dm_io(req, n, where, err, IOPRIO_DEFAULT)
#else
#define hrl_dm_io(req, n, where, err) dm_io(req, n, where, err)
#endif

#endif /* HRL_COMPAT_H */
