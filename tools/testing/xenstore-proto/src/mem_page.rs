// SPDX-License-Identifier: GPL-2.0

//! An in-memory xenstore ring page for host tests and fuzzing.
//!
//! Implements both [`RingPage`] (guest side) and [`PeerRingPage`] (the
//! simulated xenstored), with plain `Cell`s instead of shared memory. The
//! barrier methods only count calls. All fields are public so tests can
//! corrupt indexes the way a hostile peer would.

use core::cell::Cell;

use crate::ring::{PeerRingPage, RingPage, RING_SIZE_USIZE};

/// An in-memory `struct xenstore_domain_interface`.
#[derive(Debug)]
pub struct MemPage {
    /// The request ring.
    pub req: [Cell<u8>; RING_SIZE_USIZE],
    /// The response ring.
    pub rsp: [Cell<u8>; RING_SIZE_USIZE],
    /// `req_cons`.
    pub req_cons: Cell<u32>,
    /// `req_prod`.
    pub req_prod: Cell<u32>,
    /// `rsp_cons`.
    pub rsp_cons: Cell<u32>,
    /// `rsp_prod`.
    pub rsp_prod: Cell<u32>,
    /// Number of barrier calls of any kind.
    pub barriers: Cell<u64>,
    /// Number of out-of-bounds data accesses attempted (must stay 0).
    pub out_of_bounds: Cell<u64>,
}

impl Default for MemPage {
    fn default() -> Self {
        Self::new()
    }
}

impl MemPage {
    /// A zeroed page with all indexes 0.
    pub fn new() -> Self {
        Self::with_indexes(0, 0)
    }

    /// A page whose request indexes both start at `req` and response
    /// indexes both start at `rsp` (both rings empty).
    pub fn with_indexes(req: u32, rsp: u32) -> Self {
        MemPage {
            req: core::array::from_fn(|_| Cell::new(0)),
            rsp: core::array::from_fn(|_| Cell::new(0)),
            req_cons: Cell::new(req),
            req_prod: Cell::new(req),
            rsp_cons: Cell::new(rsp),
            rsp_prod: Cell::new(rsp),
            barriers: Cell::new(0),
            out_of_bounds: Cell::new(0),
        }
    }

    fn copy_in(&self, ring: &[Cell<u8>], off: usize, src: &[u8]) {
        match off
            .checked_add(src.len())
            .and_then(|end| ring.get(off..end))
        {
            Some(cells) => {
                for (c, b) in cells.iter().zip(src) {
                    c.set(*b);
                }
            }
            None => self.bump_oob(),
        }
    }

    fn copy_out(&self, ring: &[Cell<u8>], off: usize, dst: &mut [u8]) {
        match off
            .checked_add(dst.len())
            .and_then(|end| ring.get(off..end))
        {
            Some(cells) => {
                for (b, c) in dst.iter_mut().zip(cells) {
                    *b = c.get();
                }
            }
            None => self.bump_oob(),
        }
    }

    fn bump_oob(&self) {
        self.out_of_bounds
            .set(self.out_of_bounds.get().saturating_add(1));
    }

    fn bump_barrier(&self) {
        self.barriers.set(self.barriers.get().saturating_add(1));
    }
}

impl RingPage for MemPage {
    fn req_cons(&self) -> u32 {
        self.req_cons.get()
    }
    fn req_prod(&self) -> u32 {
        self.req_prod.get()
    }
    fn set_req_prod(&self, v: u32) {
        self.req_prod.set(v);
    }
    fn rsp_cons(&self) -> u32 {
        self.rsp_cons.get()
    }
    fn rsp_prod(&self) -> u32 {
        self.rsp_prod.get()
    }
    fn set_rsp_cons(&self, v: u32) {
        self.rsp_cons.set(v);
    }
    fn write_req(&self, off: usize, src: &[u8]) {
        self.copy_in(&self.req, off, src);
    }
    fn read_rsp(&self, off: usize, dst: &mut [u8]) {
        self.copy_out(&self.rsp, off, dst);
    }
    fn read_barrier(&self) {
        self.bump_barrier();
    }
    fn write_barrier(&self) {
        self.bump_barrier();
    }
    fn full_barrier(&self) {
        self.bump_barrier();
    }
}

impl PeerRingPage for MemPage {
    fn set_req_cons(&self, v: u32) {
        self.req_cons.set(v);
    }
    fn set_rsp_prod(&self, v: u32) {
        self.rsp_prod.set(v);
    }
    fn read_req(&self, off: usize, dst: &mut [u8]) {
        self.copy_out(&self.req, off, dst);
    }
    fn write_rsp(&self, off: usize, src: &[u8]) {
        self.copy_in(&self.rsp, off, src);
    }
}
