// SPDX-License-Identifier: GPL-2.0

//! Xen guest support.
//!
//! - [`xenstore`]: the xenstore protocol ([`xenstore::proto`]) and a safe API to the store.
//! - [`xenbus`]: xenbus frontend drivers and the resources they share with their backend.
//!
//! The safe API sits on the C ABI of `include/xen/xenbus.h` (`xenbus_read`,
//! `register_xenbus_watch`, ...), so it works with either xenbus core: the C one in
//! `drivers/xen/xenbus/` or the Rust one in `drivers/xen/xenbus-rs/`.

pub mod xenbus;
pub mod xenstore;

/// HVM parameter numbers (`xen/include/public/hvm/params.h`, a stable Xen ABI).
pub mod hvm_param {
    /// The callback used for event channel upcalls.
    pub const CALLBACK_IRQ: u32 = 0;
    /// Guest frame number of the xenstore ring.
    pub const STORE_PFN: u32 = 1;
    /// Event channel of the xenstore ring.
    pub const STORE_EVTCHN: u32 = 2;
}

/// Whether the kernel runs as a Xen guest (any kind).
#[inline]
pub fn is_xen_domain() -> bool {
    // SAFETY: Reads the domain type, which is set once at early boot.
    unsafe { bindings::xen_domain() }
}

/// Whether the kernel runs as a Xen PV guest.
#[inline]
pub fn is_pv_domain() -> bool {
    // SAFETY: Reads a CPU feature flag set once at early boot.
    unsafe { bindings::xen_pv_domain() }
}

/// Whether the kernel runs as a Xen HVM or PVH guest.
#[inline]
pub fn is_hvm_domain() -> bool {
    // SAFETY: Reads the domain type, which is set once at early boot.
    unsafe { bindings::xen_hvm_domain() }
}

/// Whether the kernel runs in the initial domain (dom0).
#[inline]
pub fn is_initial_domain() -> bool {
    // SAFETY: Reads the domain type and start info, both set once at early boot.
    unsafe { bindings::xen_initial_domain() }
}
