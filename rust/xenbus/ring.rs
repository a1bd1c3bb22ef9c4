// SPDX-License-Identifier: GPL-2.0

//! The xenstore ring page shared with xenstored (`struct xenstore_domain_interface`).
//!
//! Ownership of the page's fields (docs/misc/xenstore-ring.txt): the guest writes `req[]`
//! between `req_prod` and `req_cons + 1024` and publishes `req_prod`; xenstored writes `rsp[]`
//! and publishes `rsp_prod`; the guest publishes `rsp_cons` after copying responses out. The
//! copy loops and barrier order live in [`kernel::xen::xenstore::proto::ring`]; this type only
//! performs the accesses. Indexes are read with volatile loads because xenstored changes them
//! at any time; data bytes are copied once into private memory before anything looks at them.

use core::ptr::NonNull;
use kernel::{
    bindings,
    xen::xenstore::proto::ring::{self as pring, RingPage},
};

/// The mapped interface page. It is never unmapped: the core lives as long as the kernel.
pub(crate) struct SharedRing {
    base: NonNull<u8>,
}

// SAFETY: The page is shared memory that both ends access concurrently by design; every access
// goes through volatile loads/stores or copies bounded to the ring arrays, and which side may
// write which part is fixed by the protocol.
unsafe impl Send for SharedRing {}
// SAFETY: See `Send`: all methods take `&self` and access the page with volatile operations.
unsafe impl Sync for SharedRing {}

impl SharedRing {
    /// Wraps the mapped interface page.
    ///
    /// # Safety
    ///
    /// `base` must point to a mapped, page-sized xenstore interface that stays mapped for the
    /// lifetime of the returned value.
    pub(crate) unsafe fn new(base: NonNull<u8>) -> Self {
        Self { base }
    }

    fn field(&self, offset: usize) -> *mut u32 {
        // SAFETY: Callers pass the protocol's field offsets, all below `INTERFACE_LEN`, so the
        // result stays inside the page.
        unsafe { self.base.as_ptr().add(offset) }.cast::<u32>()
    }

    fn load(&self, offset: usize) -> u32 {
        // SAFETY: `field` returns an aligned pointer into the mapped page (see `new`).
        unsafe { self.field(offset).read_volatile() }
    }

    fn store(&self, offset: usize, value: u32) {
        // SAFETY: `field` returns an aligned pointer into the mapped page (see `new`); this side
        // owns the fields it stores to (`req_prod`, `rsp_cons`, `connection` during reconnect).
        unsafe { self.field(offset).write_volatile(value) }
    }

    /// The `error` field: nonzero once xenstored stopped serving the ring.
    pub(crate) fn server_error(&self) -> u32 {
        self.load(pring::ERROR_OFFSET)
    }

    /// The `connection` field.
    pub(crate) fn connection(&self) -> u32 {
        self.load(pring::CONNECTION_OFFSET)
    }

    /// The `server_features` bitmap (unknown bits are ignored by the callers).
    pub(crate) fn server_features(&self) -> u32 {
        self.load(pring::SERVER_FEATURES_OFFSET)
    }

    /// Drops stale responses left in the ring before we started (as Linux's `xb_init_comms`),
    /// and reports whether the request side was quiescent.
    pub(crate) fn quiesce_responses(&self) -> (bool, u32, u32) {
        let (cons, prod) = (self.req_cons(), self.req_prod());
        let rsp_prod = self.rsp_prod();
        if self.rsp_cons() != rsp_prod {
            self.set_rsp_cons(rsp_prod);
        }
        (cons == prod, cons, prod)
    }
}

impl RingPage for SharedRing {
    fn req_cons(&self) -> u32 {
        self.load(pring::REQ_CONS_OFFSET)
    }

    fn req_prod(&self) -> u32 {
        self.load(pring::REQ_PROD_OFFSET)
    }

    fn set_req_prod(&self, v: u32) {
        self.store(pring::REQ_PROD_OFFSET, v)
    }

    fn rsp_cons(&self) -> u32 {
        self.load(pring::RSP_CONS_OFFSET)
    }

    fn rsp_prod(&self) -> u32 {
        self.load(pring::RSP_PROD_OFFSET)
    }

    fn set_rsp_cons(&self, v: u32) {
        self.store(pring::RSP_CONS_OFFSET, v)
    }

    fn write_req(&self, off: usize, src: &[u8]) {
        if off.saturating_add(src.len()) > pring::RING_SIZE_USIZE {
            return;
        }
        // SAFETY: `off + src.len() <= 1024` was checked, so the destination lies inside
        // `req[]`, which this side owns between `req_prod` and `req_cons + 1024` (the caller only
        // passes such chunks). `src` is private memory and does not overlap the page.
        unsafe {
            core::ptr::copy_nonoverlapping(
                src.as_ptr(),
                self.base.as_ptr().add(pring::REQ_OFFSET + off),
                src.len(),
            )
        }
    }

    fn read_rsp(&self, off: usize, dst: &mut [u8]) {
        if off.saturating_add(dst.len()) > pring::RING_SIZE_USIZE {
            return;
        }
        // SAFETY: `off + dst.len() <= 1024` was checked, so the source lies inside `rsp[]`.
        // The bytes are copied once into private memory; if a hostile peer changes them
        // meanwhile we just get different bytes, which are parsed as untrusted input anyway.
        unsafe {
            core::ptr::copy_nonoverlapping(
                self.base.as_ptr().add(pring::RSP_OFFSET + off),
                dst.as_mut_ptr(),
                dst.len(),
            )
        }
    }

    fn read_barrier(&self) {
        // SAFETY: A memory barrier has no preconditions.
        unsafe { bindings::virt_rmb() }
    }

    fn write_barrier(&self) {
        // SAFETY: A memory barrier has no preconditions.
        unsafe { bindings::virt_wmb() }
    }

    fn full_barrier(&self) {
        // SAFETY: A memory barrier has no preconditions.
        unsafe { bindings::virt_mb() }
    }
}
