// SPDX-License-Identifier: GPL-2.0

//! The Rust xenstore/xenbus frontend core (`CONFIG_XEN_XENBUS_CORE_RUST`).
//!
//! Where things are:
//!
//! - [`ring`]: the shared ring page; [`comms`]: moving messages through it (the engine);
//! - [`request`]: one request and its reply; [`xs`]: xenstore operations and the suspend gate;
//! - [`watch`]: watch table, event queue, dispatcher threads;
//! - [`dev`] and [`dev_fops`]: `/dev/xen/xenbus`;
//! - [`store`]: finding the store (PV `start_info`, HVM parameters); [`late_init`]: waiting
//!   for a store that comes after boot (dom0less);
//! - [`connection`]: bring-up, the I/O thread, interrupt, suspend/resume;
//! - [`bus`]: the `xen` frontend bus; [`client`]: helpers for frontend drivers;
//! - [`bytes`]: byte vectors copied with `memcpy`;
//! - [`capi`]: the C ABI of `include/xen/xenbus.h` (plus `xenbus_rs_glue.c` for variadics,
//!   initcalls and the notifier chain);
//! - the wire protocol itself is `kernel::xen::xenstore::proto`, shared with host tests.

mod bus;
mod bytes;
mod capi;
mod client;
mod comms;
mod connection;
mod dev;
mod dev_fops;
mod late_init;
mod ratelimit;
mod request;
mod ring;
mod store;
mod thread;
mod watch;
mod xs;

#[cfg(CONFIG_XEN_XENBUS_CORE_RUST_KUNIT_TEST)]
mod tests;

/// Prefix of this crate's log messages (`pr_*!`).
const __LOG_PREFIX: &[u8] = b"xenbus_rs\0";
