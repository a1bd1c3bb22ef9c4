// SPDX-License-Identifier: GPL-2.0

//! The xenstore shared ring (`struct xenstore_domain_interface`,
//! `docs/misc/xenstore-ring.txt`).
//!
//! The page holds two 1024-byte circular buffers: `req` (guest to xenstored)
//! and `rsp` (xenstored to guest), each with a consumer and a producer
//! index. Indexes are free-running `u32` byte counters that wrap at 2^32
//! and may start anywhere; the byte with stream offset `x` lives at
//! `x & 1023`. `prod - cons` (wrapping) is the number of unread bytes and
//! must never exceed [`RING_SIZE`]: a larger value means a corrupt or
//! hostile peer and is reported as [`RingError::BadIndexes`] before any
//! data access.
//!
//! The copy loops are generic over [`RingPage`], which abstracts the shared
//! page: the kernel implements it with volatile accesses and real memory
//! barriers, host tests with plain memory. [`PeerRingPage`] adds the other
//! end's accessors, so tests can act as xenstored.
//!
//! Data is copied out of the shared page exactly once, into caller memory,
//! before it is parsed: the peer cannot change bytes after they were
//! validated.

/// Size of each of the two data rings (`XENSTORE_RING_SIZE`).
pub const RING_SIZE: u32 = 1024;
/// [`RING_SIZE`] as `usize`.
pub const RING_SIZE_USIZE: usize = 1024;

/// Offset of `req[1024]`, the request ring (guest to xenstored).
pub const REQ_OFFSET: usize = 0;
/// Offset of `rsp[1024]`, the response ring (xenstored to guest).
pub const RSP_OFFSET: usize = 1024;
/// Offset of `req_cons` (written by xenstored).
pub const REQ_CONS_OFFSET: usize = 2048;
/// Offset of `req_prod` (written by the guest).
pub const REQ_PROD_OFFSET: usize = 2052;
/// Offset of `rsp_cons` (written by the guest).
pub const RSP_CONS_OFFSET: usize = 2056;
/// Offset of `rsp_prod` (written by xenstored).
pub const RSP_PROD_OFFSET: usize = 2060;
/// Offset of `server_features` (written by xenstored only).
pub const SERVER_FEATURES_OFFSET: usize = 2064;
/// Offset of `connection` (see [`ConnectionState`]).
pub const CONNECTION_OFFSET: usize = 2068;
/// Offset of `error` (see [`ServerError`]).
pub const ERROR_OFFSET: usize = 2072;
/// Offset of `evtchn_port`.
pub const EVTCHN_PORT_OFFSET: usize = 2076;
/// Size of the interface structure (it lives in one 4 KiB page).
pub const INTERFACE_LEN: usize = 2080;

/// Server feature bit: ring reconnection (`XENSTORE_SERVER_FEATURE_RECONNECTION`).
pub const FEATURE_RECONNECTION: u32 = 1;
/// Server feature bit: the `error` field is valid (`XENSTORE_SERVER_FEATURE_ERROR`).
pub const FEATURE_ERROR: u32 = 2;
/// Server feature bit: watches with depth (`XENSTORE_SERVER_FEATURE_WATCHDEPTH`).
pub const FEATURE_WATCHDEPTH: u32 = 4;
/// Server feature bit: `DOMID_ANY` in permissions (`XENSTORE_SERVER_FEATURE_DOMID_ANY`).
pub const FEATURE_DOMID_ANY: u32 = 8;

/// `connection` value: the steady state (`XENSTORE_CONNECTED`).
pub const CONNECTION_CONNECTED: u32 = 0;
/// `connection` value: reconnect in progress (`XENSTORE_RECONNECT`).
pub const CONNECTION_RECONNECT: u32 = 1;

/// `error` value: no error.
pub const ERROR_NONE: u32 = 0;
/// `error` value: communication problem (event channel not functional).
pub const ERROR_COMM: u32 = 1;
/// `error` value: inconsistent producer or consumer index.
pub const ERROR_RINGIDX: u32 = 2;
/// `error` value: protocol violation (payload too long).
pub const ERROR_PROTO: u32 = 3;

/// The `server_features` bitmap. Unknown bits are ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerFeatures(pub u32);

impl ServerFeatures {
    /// Whether the server supports ring reconnection.
    pub const fn reconnection(self) -> bool {
        self.0 & FEATURE_RECONNECTION != 0
    }

    /// Whether the server reports errors in the `error` field.
    pub const fn error(self) -> bool {
        self.0 & FEATURE_ERROR != 0
    }

    /// Whether `WATCH` accepts a depth argument.
    pub const fn watch_depth(self) -> bool {
        self.0 & FEATURE_WATCHDEPTH != 0
    }

    /// Whether permissions may use `DOMID_ANY`.
    pub const fn domid_any(self) -> bool {
        self.0 & FEATURE_DOMID_ANY != 0
    }
}

/// The `connection` field (meaningful only with [`FEATURE_RECONNECTION`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// 0: the ring is connected.
    Connected,
    /// 1: a reconnect is in progress; ignore everything else until it
    /// returns to [`ConnectionState::Connected`].
    Reconnect,
    /// Any other value (not defined by the protocol).
    Unknown(u32),
}

impl ConnectionState {
    /// Decodes the raw field; never fails.
    pub const fn from_u32(v: u32) -> ConnectionState {
        match v {
            CONNECTION_CONNECTED => ConnectionState::Connected,
            CONNECTION_RECONNECT => ConnectionState::Reconnect,
            other => ConnectionState::Unknown(other),
        }
    }
}

/// The `error` field (meaningful only with [`FEATURE_ERROR`]).
///
/// Any non-zero value means the server stopped talking to us; values not
/// listed in the protocol are accepted as [`ServerError::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerError {
    /// 0: no error.
    None,
    /// 1: communication problem.
    Comm,
    /// 2: invalid ring index.
    RingIdx,
    /// 3: protocol violation.
    Proto,
    /// Another non-zero value ("some error").
    Unknown(u32),
}

impl ServerError {
    /// Decodes the raw field; never fails.
    pub const fn from_u32(v: u32) -> ServerError {
        match v {
            ERROR_NONE => ServerError::None,
            ERROR_COMM => ServerError::Comm,
            ERROR_RINGIDX => ServerError::RingIdx,
            ERROR_PROTO => ServerError::Proto,
            other => ServerError::Unknown(other),
        }
    }

    /// Whether this is any error.
    pub const fn is_error(self) -> bool {
        !matches!(self, ServerError::None)
    }
}

/// Ring index errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// `prod - cons` (wrapping) exceeds [`RING_SIZE`]: corrupt or hostile
    /// peer. The values read are included for logging.
    BadIndexes {
        /// Consumer index read.
        cons: u32,
        /// Producer index read.
        prod: u32,
    },
}

/// Position of a free-running index in the ring (`MASK_XENSTORE_IDX`).
pub const fn mask_index(idx: u32) -> usize {
    (idx & (RING_SIZE - 1)) as usize
}

/// Validates a pair of indexes and returns the number of unread bytes
/// (`prod - cons`, wrapping), which is at most [`RING_SIZE`].
pub const fn check_indexes(cons: u32, prod: u32) -> Result<u32, RingError> {
    let pending = prod.wrapping_sub(cons);
    if pending > RING_SIZE {
        Err(RingError::BadIndexes { cons, prod })
    } else {
        Ok(pending)
    }
}

/// The contiguous free region a producer may write next: `(offset, len)`
/// in the data ring. `len` is 0 when the ring is full; a second call after
/// publishing covers the part that wraps around.
pub const fn writable_chunk(cons: u32, prod: u32) -> Result<(usize, usize), RingError> {
    let pending = match check_indexes(cons, prod) {
        Ok(p) => p,
        Err(e) => return Err(e),
    };
    let free = RING_SIZE.saturating_sub(pending);
    let off = mask_index(prod);
    let to_end = RING_SIZE_USIZE.saturating_sub(off);
    let len = if (free as usize) < to_end {
        free as usize
    } else {
        to_end
    };
    Ok((off, len))
}

/// The contiguous unread region a consumer may read next: `(offset, len)`
/// in the data ring. `len` is 0 when the ring is empty; a second call after
/// publishing covers the part that wraps around.
pub const fn readable_chunk(cons: u32, prod: u32) -> Result<(usize, usize), RingError> {
    let pending = match check_indexes(cons, prod) {
        Ok(p) => p,
        Err(e) => return Err(e),
    };
    let off = mask_index(cons);
    let to_end = RING_SIZE_USIZE.saturating_sub(off);
    let len = if (pending as usize) < to_end {
        pending as usize
    } else {
        to_end
    };
    Ok((off, len))
}

/// Access to the shared ring page, from the guest's point of view.
///
/// Index accessors must perform exactly one (volatile) access of the field
/// per call; the algorithms here read each index once per step and work on
/// that snapshot. Data accessors copy between the ring and local memory:
/// callers in this module always pass `off + len <= RING_SIZE`, but since
/// the methods are safe, implementations must stay in bounds for any
/// arguments (e.g. copy nothing if the range does not fit).
pub trait RingPage {
    /// Reads `req_cons` (written by the peer).
    fn req_cons(&self) -> u32;
    /// Reads `req_prod` (ours).
    fn req_prod(&self) -> u32;
    /// Writes `req_prod`.
    fn set_req_prod(&self, v: u32);
    /// Reads `rsp_cons` (ours).
    fn rsp_cons(&self) -> u32;
    /// Reads `rsp_prod` (written by the peer).
    fn rsp_prod(&self) -> u32;
    /// Writes `rsp_cons`.
    fn set_rsp_cons(&self, v: u32);
    /// Copies `src` into `req[off..off + src.len()]`.
    fn write_req(&self, off: usize, src: &[u8]);
    /// Copies `rsp[off..off + dst.len()]` into `dst`.
    fn read_rsp(&self, off: usize, dst: &mut [u8]);
    /// Read barrier (`virt_rmb()`): orders earlier reads before later reads.
    fn read_barrier(&self);
    /// Write barrier (`virt_wmb()`): orders earlier writes before later writes.
    fn write_barrier(&self);
    /// Full barrier (`virt_mb()`): orders earlier reads and writes before
    /// later reads and writes.
    fn full_barrier(&self);
}

/// The peer's (xenstored's) side of the page, for fakes and tests.
pub trait PeerRingPage: RingPage {
    /// Writes `req_cons`.
    fn set_req_cons(&self, v: u32);
    /// Writes `rsp_prod`.
    fn set_rsp_prod(&self, v: u32);
    /// Copies `req[off..off + dst.len()]` into `dst`.
    fn read_req(&self, off: usize, dst: &mut [u8]);
    /// Copies `src` into `rsp[off..off + src.len()]`.
    fn write_rsp(&self, off: usize, src: &[u8]);
}

/// `n <= RING_SIZE` as `u32`.
fn ring_len(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(0).min(RING_SIZE)
}

/// The producer's loop of [`ring_write`] (and of the peer's [`peer_write_rsp`]): the two
/// rings differ only in their fields, which the caller passes in as accessors.
fn produce<P: RingPage + ?Sized>(
    page: &P,
    src: &[u8],
    cons_of: impl Fn(&P) -> u32,
    prod_of: impl Fn(&P) -> u32,
    copy_in: impl Fn(&P, usize, &[u8]),
    publish: impl Fn(&P, u32),
) -> Result<usize, RingError> {
    if src.is_empty() {
        // Corrupt indexes are reported even when there is nothing to write.
        check_indexes(cons_of(page), prod_of(page))?;
        return Ok(0);
    }
    let mut done = 0usize;
    loop {
        let rest = src.get(done..).unwrap_or(&[]);
        if rest.is_empty() {
            break;
        }
        let cons = cons_of(page);
        let prod = prod_of(page);
        let (off, avail) = writable_chunk(cons, prod)?;
        if avail == 0 {
            break;
        }
        page.full_barrier();
        let n = avail.min(rest.len());
        copy_in(page, off, rest.get(..n).unwrap_or(&[]));
        page.write_barrier();
        publish(page, prod.wrapping_add(ring_len(n)));
        done = done.saturating_add(n);
    }
    Ok(done)
}

/// The consumer's loop of [`ring_read`] (and of the peer's [`peer_read_req`]), with the ring's
/// fields passed in as accessors like [`produce`]'s.
fn consume<P: RingPage + ?Sized>(
    page: &P,
    dst: &mut [u8],
    cons_of: impl Fn(&P) -> u32,
    prod_of: impl Fn(&P) -> u32,
    copy_out: impl Fn(&P, usize, &mut [u8]),
    publish: impl Fn(&P, u32),
) -> Result<usize, RingError> {
    if dst.is_empty() {
        // Corrupt indexes are reported even when there is no room to read into.
        check_indexes(cons_of(page), prod_of(page))?;
        return Ok(0);
    }
    let mut done = 0usize;
    loop {
        let rest = match dst.get_mut(done..) {
            Some(r) if !r.is_empty() => r,
            _ => break,
        };
        let cons = cons_of(page);
        let prod = prod_of(page);
        if cons == prod {
            break;
        }
        let (off, avail) = readable_chunk(cons, prod)?;
        if avail == 0 {
            break;
        }
        page.read_barrier();
        let n = avail.min(rest.len());
        if let Some(chunk) = rest.get_mut(..n) {
            copy_out(page, off, chunk);
        }
        page.full_barrier();
        publish(page, cons.wrapping_add(ring_len(n)));
        done = done.saturating_add(n);
    }
    Ok(done)
}

/// Writes as much of `src` as fits into the request ring and publishes it;
/// returns the number of bytes written (0 if the ring is full).
///
/// Each step follows Linux's `xb_write()`:
///
/// 1. read `req_cons` and `req_prod` once and validate them;
/// 2. [`full_barrier`](RingPage::full_barrier): the data must be written
///    only *after* reading the consumer index, or we could overwrite bytes
///    the peer has not consumed yet;
/// 3. copy into the contiguous free chunk;
/// 4. [`write_barrier`](RingPage::write_barrier): the peer must not see the
///    new producer index before the data;
/// 5. publish `req_prod += n`.
///
/// The loop repeats (at most a few times: each step writes at least one
/// byte) to fill the part that wraps around. The caller then asks
/// [`request_needs_notify`] whether to notify the peer. On
/// [`RingError::BadIndexes`] nothing more is written; bytes published by
/// earlier steps of the same call stay published.
pub fn ring_write<P: RingPage + ?Sized>(page: &P, src: &[u8]) -> Result<usize, RingError> {
    produce(
        page,
        src,
        P::req_cons,
        P::req_prod,
        P::write_req,
        P::set_req_prod,
    )
}

/// Reads as many bytes as available (up to `dst.len()`) from the response
/// ring and releases the space; returns the number of bytes read (0 if the
/// ring is empty).
///
/// Each step follows Linux's `xb_read()`:
///
/// 1. read `rsp_cons` and `rsp_prod` once; stop if equal; validate them;
/// 2. [`read_barrier`](RingPage::read_barrier): the data must be read only
///    *after* reading the producer index, or we could read stale bytes;
/// 3. copy out of the contiguous unread chunk;
/// 4. [`full_barrier`](RingPage::full_barrier): the peer must not see the
///    freed space before our reads of it are complete;
/// 5. publish `rsp_cons += n`.
///
/// The caller then asks [`response_needs_notify`] whether to notify the
/// peer (only a peer that found the ring full waits for that).
pub fn ring_read<P: RingPage + ?Sized>(page: &P, dst: &mut [u8]) -> Result<usize, RingError> {
    consume(
        page,
        dst,
        P::rsp_cons,
        P::rsp_prod,
        P::read_rsp,
        P::set_rsp_cons,
    )
}

/// Whether the peer must be notified after [`ring_write`] published
/// `written` bytes starting at producer index `start_prod`.
///
/// Only a consumer that had caught up (its index somewhere in
/// `start_prod..start_prod + written`) may be asleep waiting for data. A
/// consumer still behind `start_prod` re-reads `req_prod` after publishing
/// its own index, and the full barrier here, between our publish and our
/// read of `req_cons`, means one of the two sides sees the other's store.
/// This is Linux's `xb_write()` rule (`prod <= req_cons`), with the barrier
/// it leaves to the following hypercall made explicit.
pub fn request_needs_notify<P: RingPage + ?Sized>(page: &P, start_prod: u32, written: u32) -> bool {
    if written == 0 {
        return false;
    }
    page.full_barrier();
    page.req_cons().wrapping_sub(start_prod) < written
}

/// Whether the peer must be notified after [`ring_read`] consumed `read`
/// bytes starting at consumer index `start_cons`.
///
/// A producer waits for an event only when it found the response ring full,
/// i.e. when it saw a consumer index `c` (with `start_cons <= c`) and
/// produced up to `c + RING_SIZE`. After our publish and a full barrier,
/// either the producer sees our new consumer index or we see its producer
/// index at least `RING_SIZE` past `start_cons`. Linux's `xb_read()` uses
/// the same test (`rsp_prod - cons >= XENSTORE_RING_SIZE`).
pub fn response_needs_notify<P: RingPage + ?Sized>(page: &P, start_cons: u32, read: u32) -> bool {
    if read == 0 {
        return false;
    }
    page.full_barrier();
    page.rsp_prod().wrapping_sub(start_cons) >= RING_SIZE
}

/// Peer side of [`ring_write`]: consumes up to `dst.len()` bytes of the
/// request ring, with the same barrier discipline as [`ring_read`].
pub fn peer_read_req<P: PeerRingPage + ?Sized>(
    page: &P,
    dst: &mut [u8],
) -> Result<usize, RingError> {
    consume(
        page,
        dst,
        P::req_cons,
        P::req_prod,
        P::read_req,
        P::set_req_cons,
    )
}

/// Peer side of [`ring_read`]: produces as much of `src` as fits into the
/// response ring, with the same barrier discipline as [`ring_write`].
pub fn peer_write_rsp<P: PeerRingPage + ?Sized>(page: &P, src: &[u8]) -> Result<usize, RingError> {
    produce(
        page,
        src,
        P::rsp_cons,
        P::rsp_prod,
        P::write_rsp,
        P::set_rsp_prod,
    )
}
