// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the core against an in-memory ring peer.
//!
//! [`MemPage`] is a xenstore interface page in ordinary kernel memory. The [`Engine`] under test
//! sees it through [`RingPage`], and [`FakeXenstored`] plays xenstored on it through
//! [`PeerRingPage`] with the protocol library's peer-side copy loops ([`peer_read_req`],
//! [`peer_write_rsp`]), so both ends follow the real ring discipline. A test drives the engine by
//! calling [`Engine::pump`] itself, as the ring I/O thread would: no thread is started, nothing
//! ever blocks, and the real xenstore ring is never touched.
//!
//! The helpers outside the test module return `Result`s or plain values; only the test functions
//! assert (KUnit's `assert!` ends the test thread at once, so it is never used with a lock held).

use crate::{
    comms::{Engine, EventSink, Peer},
    request::{Reply, ReplySink, Request, WaitMode},
};
use kernel::{
    new_mutex, new_spinlock,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex, SpinLock,
    },
    xen::xenstore::proto::{
        ring::{peer_read_req, peer_write_rsp, PeerRingPage, RingPage, RING_SIZE_USIZE},
        wire::{Header, MessageReader, MsgType},
    },
};

const READ: u32 = MsgType::Read.as_u32();
const DIRECTORY: u32 = MsgType::Directory.as_u32();
const WRITE: u32 = MsgType::Write.as_u32();
const ERROR: u32 = MsgType::Error.as_u32();
const WATCH_EVENT: u32 = MsgType::WatchEvent.as_u32();
const TRANSACTION_START: u32 = MsgType::TransactionStart.as_u32();
const TRANSACTION_END: u32 = MsgType::TransactionEnd.as_u32();

/// A copy of `s` in a `KVec`.
fn bytes(s: &[u8]) -> Result<KVec<u8>> {
    let mut v = KVec::with_capacity(s.len(), GFP_KERNEL)?;
    v.extend_from_slice(s, GFP_KERNEL)?;
    Ok(v)
}

/// `len` bytes of a pattern that differs with `seed` and does not repeat every ring size.
fn pattern(len: usize, seed: u8) -> Result<KVec<u8>> {
    let mut v = KVec::with_capacity(len, GFP_KERNEL)?;
    for i in 0..len {
        // `i % 251` is below 256: the cast is exact.
        v.push(((i % 251) as u8).wrapping_add(seed), GFP_KERNEL)?;
    }
    Ok(v)
}

/// The fields of `struct xenstore_domain_interface` the protocol uses, plus a record of
/// out-of-bounds data accesses.
struct RawPage {
    req: [u8; RING_SIZE_USIZE],
    rsp: [u8; RING_SIZE_USIZE],
    req_cons: u32,
    req_prod: u32,
    rsp_cons: u32,
    rsp_prod: u32,
    error: u32,
    /// Set if either side ever asked for bytes outside a data ring (they get none).
    out_of_bounds: bool,
}

/// Copies `src` into `ring[off..]`, or records an out-of-bounds access and copies nothing.
fn ring_store(ring: &mut [u8; RING_SIZE_USIZE], off: usize, src: &[u8], oob: &mut bool) {
    match ring.get_mut(off..off.saturating_add(src.len())) {
        Some(dst) => dst.copy_from_slice(src),
        None => *oob = true,
    }
}

/// Copies `ring[off..]` into `dst`, or records an out-of-bounds access and copies nothing.
fn ring_load(ring: &[u8; RING_SIZE_USIZE], off: usize, dst: &mut [u8], oob: &mut bool) {
    match ring.get(off..off.saturating_add(dst.len())) {
        Some(src) => dst.copy_from_slice(src),
        None => *oob = true,
    }
}

#[pin_data]
struct PageCell {
    #[pin]
    raw: SpinLock<RawPage>,
}

/// A xenstore interface page in ordinary memory, shared by the engine and the fake xenstored.
///
/// Every access takes the lock, which also orders it, so the barriers have nothing left to do.
/// Indexes and the `error` field can be set at will to play a hostile xenstored.
#[derive(Clone)]
struct MemPage(Arc<PageCell>);

impl MemPage {
    /// An idle page: all indexes at `req_start` (request ring) and `rsp_start` (response ring).
    fn new(req_start: u32, rsp_start: u32) -> Result<Self> {
        let initial = RawPage {
            req: [0; RING_SIZE_USIZE],
            rsp: [0; RING_SIZE_USIZE],
            req_cons: req_start,
            req_prod: req_start,
            rsp_cons: rsp_start,
            rsp_prod: rsp_start,
            error: 0,
            out_of_bounds: false,
        };
        let cell = Arc::pin_init(
            pin_init!(PageCell { raw <- new_spinlock!(initial, "xenbus_rs_test_page") }),
            GFP_KERNEL,
        )?;
        Ok(Self(cell))
    }

    fn with<R>(&self, f: impl FnOnce(&mut RawPage) -> R) -> R {
        let mut guard = self.0.raw.lock();
        f(&mut guard)
    }

    fn error(&self) -> u32 {
        self.with(|p| p.error)
    }

    fn set_error(&self, v: u32) {
        self.with(|p| p.error = v)
    }

    fn out_of_bounds(&self) -> bool {
        self.with(|p| p.out_of_bounds)
    }
}

impl RingPage for MemPage {
    fn req_cons(&self) -> u32 {
        self.with(|p| p.req_cons)
    }

    fn req_prod(&self) -> u32 {
        self.with(|p| p.req_prod)
    }

    fn set_req_prod(&self, v: u32) {
        self.with(|p| p.req_prod = v)
    }

    fn rsp_cons(&self) -> u32 {
        self.with(|p| p.rsp_cons)
    }

    fn rsp_prod(&self) -> u32 {
        self.with(|p| p.rsp_prod)
    }

    fn set_rsp_cons(&self, v: u32) {
        self.with(|p| p.rsp_cons = v)
    }

    fn write_req(&self, off: usize, src: &[u8]) {
        self.with(|p| ring_store(&mut p.req, off, src, &mut p.out_of_bounds))
    }

    fn read_rsp(&self, off: usize, dst: &mut [u8]) {
        self.with(|p| ring_load(&p.rsp, off, dst, &mut p.out_of_bounds))
    }

    fn read_barrier(&self) {}

    fn write_barrier(&self) {}

    fn full_barrier(&self) {}
}

impl PeerRingPage for MemPage {
    fn set_req_cons(&self, v: u32) {
        self.with(|p| p.req_cons = v)
    }

    fn set_rsp_prod(&self, v: u32) {
        self.with(|p| p.rsp_prod = v)
    }

    fn read_req(&self, off: usize, dst: &mut [u8]) {
        self.with(|p| ring_load(&p.req, off, dst, &mut p.out_of_bounds))
    }

    fn write_rsp(&self, off: usize, src: &[u8]) {
        self.with(|p| ring_store(&mut p.rsp, off, src, &mut p.out_of_bounds))
    }
}

/// A message xenstored received.
struct Msg {
    header: Header,
    payload: KVec<u8>,
}

/// Appends a whole message (header and payload) to `out`.
fn append_msg(out: &mut KVec<u8>, ty: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> Result {
    let len = u32::try_from(payload.len()).map_err(|_| EINVAL)?;
    out.extend_from_slice(
        &Header {
            ty,
            req_id,
            tx_id,
            len,
        }
        .to_bytes(),
        GFP_KERNEL,
    )?;
    out.extend_from_slice(payload, GFP_KERNEL)?;
    Ok(())
}

/// xenstored's side of the ring: reassembles and records requests, sends queued bytes.
struct FakeXenstored {
    reader: KBox<MessageReader>,
    received: KVec<Msg>,
    outbox: KVec<u8>,
    sent: usize,
}

impl FakeXenstored {
    fn new() -> Result<Self> {
        Ok(Self {
            reader: KBox::new(MessageReader::new(), GFP_KERNEL)?,
            received: KVec::new(),
            outbox: KVec::new(),
            sent: 0,
        })
    }

    /// Consumes at most `max` request bytes; complete messages go to `received`.
    fn receive_at_most(&mut self, page: &MemPage, max: usize) -> Result<usize> {
        let mut done = 0usize;
        while done < max {
            let spare = self.reader.spare_mut();
            let want = spare.len().min(max - done);
            let chunk = spare.get_mut(..want).ok_or(EINVAL)?;
            let n = peer_read_req(page, chunk).map_err(|_| EPROTO)?;
            if n == 0 {
                break;
            }
            self.reader.commit(n).map_err(|_| EPROTO)?;
            done += n;
            if let Some((header, payload)) = self.reader.message() {
                let payload = bytes(payload)?;
                self.received.push(Msg { header, payload }, GFP_KERNEL)?;
                self.reader.reset();
            }
        }
        Ok(done)
    }

    /// Consumes every request byte available.
    fn receive(&mut self, page: &MemPage) -> Result<usize> {
        self.receive_at_most(page, usize::MAX)
    }

    /// The messages received so far (forgotten here).
    fn take_received(&mut self) -> KVec<Msg> {
        core::mem::take(&mut self.received)
    }

    /// Queues a message for the response ring.
    fn queue(&mut self, ty: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> Result {
        append_msg(&mut self.outbox, ty, req_id, tx_id, payload)
    }

    /// Queues raw bytes (e.g. a hostile header) for the response ring.
    fn queue_raw(&mut self, raw: &[u8]) -> Result {
        self.outbox.extend_from_slice(raw, GFP_KERNEL)?;
        Ok(())
    }

    /// Answers every received message with its own type, ids and payload.
    fn echo_all(&mut self) -> Result {
        for m in self.received.iter() {
            append_msg(
                &mut self.outbox,
                m.header.ty,
                m.header.req_id,
                m.header.tx_id,
                &m.payload,
            )?;
        }
        self.received.clear();
        Ok(())
    }

    /// Writes at most `max` queued bytes into the response ring (fewer if it is full).
    fn flush_at_most(&mut self, page: &MemPage, max: usize) -> Result<usize> {
        let pending = self.outbox.get(self.sent..).unwrap_or(&[]);
        let chunk = pending.get(..max.min(pending.len())).unwrap_or(&[]);
        let n = peer_write_rsp(page, chunk).map_err(|_| EPROTO)?;
        self.sent += n;
        if self.sent >= self.outbox.len() {
            self.outbox.clear();
            self.sent = 0;
        }
        Ok(n)
    }

    /// Writes as much of the queued bytes as fits.
    fn flush(&mut self, page: &MemPage) -> Result<usize> {
        self.flush_at_most(page, usize::MAX)
    }
}

/// Counts event channel kicks.
struct Kicks {
    count: Atomic<u64>,
}

impl Peer for Kicks {
    fn notify(&self) {
        self.count.fetch_add(1, Relaxed);
    }
}

/// Records the watch events the engine hands over.
#[pin_data]
struct Events {
    #[pin]
    got: Mutex<KVec<KVec<u8>>>,
}

impl EventSink for Events {
    fn watch_event(&self, payload: &[u8]) {
        // On allocation failure the event is lost and the test's comparison fails.
        if let Ok(copy) = bytes(payload) {
            let _ = self.got.lock().push(copy, GFP_KERNEL);
        }
    }
}

impl Events {
    /// Whether exactly `expected` arrived, in this order.
    fn are(&self, expected: &[&[u8]]) -> bool {
        let got = self.got.lock();
        got.len() == expected.len() && got.iter().zip(expected).all(|(g, e)| g[..] == **e)
    }
}

/// What a [`ReplySink`] got: the request's cookie and its outcome.
struct Delivery {
    cookie: u32,
    outcome: Result<(u32, KVec<u8>)>,
}

/// Records outcomes of requests nobody waits for (the `/dev/xen/xenbus` path).
#[pin_data]
struct Deliveries {
    #[pin]
    got: Mutex<KVec<Delivery>>,
}

impl ReplySink for Deliveries {
    fn deliver(&self, req: &Request, outcome: Result<Reply>) {
        let d = Delivery {
            cookie: req.cookie,
            outcome: outcome.map(|r| (r.ty, r.payload)),
        };
        let _ = self.got.lock().push(d, GFP_KERNEL);
    }
}

impl Deliveries {
    fn count(&self) -> usize {
        self.got.lock().len()
    }

    /// Whether delivery `i` is a reply of type `ty` with `payload` for `cookie`.
    fn is_reply(&self, i: usize, cookie: u32, ty: u32, payload: &[u8]) -> bool {
        let got = self.got.lock();
        matches!(got.get(i), Some(Delivery { cookie: c, outcome: Ok((t, p)) })
            if *c == cookie && *t == ty && p[..] == *payload)
    }

    /// Whether delivery `i` is the failure `err` for `cookie`.
    fn is_error(&self, i: usize, cookie: u32, err: Error) -> bool {
        let got = self.got.lock();
        matches!(got.get(i), Some(Delivery { cookie: c, outcome: Err(e) }) if *c == cookie && *e == err)
    }
}

/// An engine over a [`MemPage`], the fake xenstored on the same page, and the engine's event
/// sink and peer.
struct Rig {
    engine: Arc<Engine<MemPage>>,
    xs: FakeXenstored,
    events: Pin<KBox<Events>>,
    kicks: Kicks,
}

impl Rig {
    fn new() -> Result<Self> {
        Self::with_indexes(0, 0)
    }

    /// A rig whose ring indexes start at `req_start` and `rsp_start`.
    fn with_indexes(req_start: u32, rsp_start: u32) -> Result<Self> {
        Ok(Self {
            engine: Engine::new(MemPage::new(req_start, rsp_start)?)?,
            xs: FakeXenstored::new()?,
            events: KBox::pin_init(
                pin_init!(Events { got <- new_mutex!(KVec::new()) }),
                GFP_KERNEL,
            )?,
            kicks: Kicks {
                count: Atomic::new(0),
            },
        })
    }

    fn page(&self) -> &MemPage {
        self.engine.page()
    }

    /// One pass of the ring I/O thread; the page's `error` field is the server error.
    fn pump(&self) {
        let page = self.engine.page();
        self.engine
            .pump(&*self.events, &self.kicks, || page.error());
    }

    /// Queues a request as a kernel caller would (without waiting for a slot).
    fn submit(&self, ty: u32, tx_id: u32, payload: &[u8]) -> Result<Arc<Request>> {
        let req = Request::new(ty, tx_id, bytes(payload)?)?;
        self.engine.try_submit(req.clone())?;
        Ok(req)
    }

    fn receive(&mut self) -> Result<usize> {
        self.xs.receive(self.engine.page())
    }

    fn flush(&mut self) -> Result<usize> {
        self.xs.flush(self.engine.page())
    }

    fn flush_at_most(&mut self, max: usize) -> Result<usize> {
        self.xs.flush_at_most(self.engine.page(), max)
    }

    /// Pumps and lets xenstored read and write until neither side moves; returns the rounds.
    fn settle(&mut self) -> Result<u32> {
        for round in 1..=10_000 {
            self.pump();
            let read = self.receive()?;
            let written = self.flush()?;
            if read == 0 && written == 0 {
                return Ok(round);
            }
        }
        Err(ETIMEDOUT)
    }

    fn replies(&self) -> u64 {
        self.engine.stats.replies.load(Relaxed)
    }

    fn unknown_replies(&self) -> u64 {
        self.engine.stats.unknown_replies.load(Relaxed)
    }

    /// Whether a new request is refused with `EIO`, both ways of submitting (neither waits:
    /// a dead connection fails before looking for a slot).
    fn refuses_requests(&self) -> Result<bool> {
        let a = Request::new(READ, 0, bytes(b"/late\0")?)?;
        let b = Request::new(READ, 0, bytes(b"/late\0")?)?;
        let tried = self.engine.try_submit(a);
        let waited = self.engine.submit(b, WaitMode::Uninterruptible);
        Ok(matches!(tried, Err(e) if e == EIO) && matches!(waited, Err(e) if e == EIO))
    }
}

/// The outcome of `req`, if it has one; never blocks.
fn outcome(req: &Request) -> Option<Result<Reply>> {
    if req.is_done_for_test() {
        Some(req.wait(WaitMode::Uninterruptible))
    } else {
        None
    }
}

/// Whether `req` completed with a reply of type `ty` carrying exactly `payload`.
fn replied_with(req: &Request, ty: u32, payload: &[u8]) -> bool {
    matches!(outcome(req), Some(Ok(r)) if r.ty == ty && r.payload[..] == *payload)
}

/// Whether `req` completed with the error `err`.
fn failed_with(req: &Request, err: Error) -> bool {
    matches!(outcome(req), Some(Err(e)) if e == err)
}

/// Sends a `len`-byte `WRITE` request, letting xenstored consume after every pump, until
/// xenstored has it; returns the request and the number of pumps it took.
fn send_big(rig: &mut Rig, len: usize) -> Result<(Arc<Request>, u32)> {
    let req = rig.submit(WRITE, 0, &pattern(len, 1)?)?;
    for round in 1..=100 {
        rig.pump();
        rig.receive()?;
        if !rig.xs.received.is_empty() {
            return Ok((req, round));
        }
    }
    Err(ETIMEDOUT)
}

/// Answers the message xenstored received with a `len`-byte reply, written as the ring allows
/// with a pump after each write; returns the number of pumps until `req` completed.
fn answer_big(rig: &mut Rig, req: &Request, len: usize) -> Result<u32> {
    let msgs = rig.xs.take_received();
    let first = msgs.first().ok_or(EINVAL)?;
    rig.xs
        .queue(first.header.ty, first.header.req_id, 0, &pattern(len, 2)?)?;
    for round in 1..=100 {
        rig.flush()?;
        rig.pump();
        if req.is_done_for_test() {
            return Ok(round);
        }
    }
    Err(ETIMEDOUT)
}

/// Parameters for `locate_hvm`.
struct FakeParams {
    evtchn: Result<u64>,
    pfn: Result<u64>,
}

impl crate::store::HvmParams for FakeParams {
    fn get(&self, index: u32) -> Result<u64> {
        match index {
            kernel::xen::hvm_param::STORE_EVTCHN => self.evtchn,
            kernel::xen::hvm_param::STORE_PFN => self.pfn,
            _ => Err(EINVAL),
        }
    }
}

#[kunit_tests(xenbus_rs_core)]
mod cases {
    use super::*;
    use crate::{
        comms::{Fatal, MAX_IN_FLIGHT},
        request::ReaderWake,
        ring::SharedRing,
        // KUnit's `assert!` declares a `Location` type of its own inside the asserted expression.
        store::{late_store_pfn, locate_hvm, locate_pv, Location as Loc},
        watch::{WatchWire, Watches},
        xs::Store,
    };
    use core::ptr::NonNull;
    use kernel::bindings;
    use kernel::xen::xenstore::proto::{
        reqtable::ReqTable,
        ring::{ERROR_RINGIDX, RING_SIZE},
        token,
        wire::{HEADER_LEN, PAYLOAD_MAX},
    };

    #[test]
    fn replies_out_of_order() -> Result {
        let mut rig = Rig::new()?;
        let a = rig.submit(READ, 0, b"/a\0")?;
        let b = rig.submit(READ, 0, b"/b\0")?;
        let c = rig.submit(READ, 0, b"/c\0")?;
        rig.settle()?;
        let msgs = rig.xs.take_received();
        assert_eq!(msgs.len(), 3);
        assert!(msgs[0].payload[..] == *b"/a\0" && msgs[1].payload[..] == *b"/b\0");
        assert!(msgs[2].payload[..] == *b"/c\0" && msgs.iter().all(|m| m.header.ty == READ));
        assert!(msgs[0].header.req_id != msgs[1].header.req_id);
        assert!(msgs[1].header.req_id != msgs[2].header.req_id);
        assert!(msgs[0].header.req_id != msgs[2].header.req_id);
        assert!(rig.kicks.count.load(Relaxed) > 0);
        for (m, reply) in msgs.iter().zip([b"ra\0", b"rb\0", b"rc\0"]).rev() {
            rig.xs.queue(READ, m.header.req_id, 0, reply)?;
        }
        rig.settle()?;
        assert!(replied_with(&a, READ, b"ra\0"));
        assert!(replied_with(&b, READ, b"rb\0"));
        assert!(replied_with(&c, READ, b"rc\0"));
        assert_eq!(rig.replies(), 3);
        assert_eq!(rig.unknown_replies(), 0);
        assert!(rig.engine.fatal().is_none());
        assert!(!rig.page().out_of_bounds());
        Ok(())
    }

    #[test]
    fn oversized_reply_header_is_fatal() -> Result {
        let mut rig = Rig::new()?;
        let a = rig.submit(READ, 0, b"/a\0")?;
        let b = rig.submit(READ, 0, b"/b\0")?;
        rig.settle()?;
        let msgs = rig.xs.take_received();
        assert_eq!(msgs.len(), 2);
        let too_long = PAYLOAD_MAX as u32 + 1;
        let header = Header {
            ty: READ,
            req_id: msgs[0].header.req_id,
            tx_id: 0,
            len: too_long,
        };
        rig.xs.queue_raw(&header.to_bytes())?;
        rig.xs.queue_raw(&[0xaa; 64])?;
        rig.settle()?;
        assert_eq!(rig.engine.fatal(), Some(Fatal::HeaderLength(too_long)));
        assert!(failed_with(&a, EIO));
        assert!(failed_with(&b, EIO));
        assert!(rig.refuses_requests()?);
        // A well-formed reply afterwards is not looked at.
        rig.xs.queue(READ, msgs[1].header.req_id, 0, b"late\0")?;
        rig.settle()?;
        assert_eq!(rig.replies(), 0);
        assert!(rig.engine.fatal() == Some(Fatal::HeaderLength(too_long)));
        assert!(!rig.page().out_of_bounds());
        Ok(())
    }

    #[test]
    fn reply_with_unknown_req_id_is_dropped() -> Result {
        let mut rig = Rig::new()?;
        let a = rig.submit(READ, 0, b"/a\0")?;
        rig.settle()?;
        let msgs = rig.xs.take_received();
        assert_eq!(msgs.len(), 1);
        let id = msgs[0].header.req_id;
        // The same slot with another generation, a slot not in flight, and id 0.
        let stale = id.wrapping_add(MAX_IN_FLIGHT as u32);
        rig.xs.queue(READ, stale, 0, b"stale\0")?;
        rig.xs.queue(READ, id ^ 1, 0, b"idle\0")?;
        rig.xs.queue(READ, 0, 0, b"zero\0")?;
        rig.settle()?;
        assert_eq!(rig.unknown_replies(), 3);
        assert_eq!(rig.replies(), 0);
        assert!(!a.is_done_for_test());
        assert!(rig.engine.fatal().is_none());
        rig.xs.queue(READ, id, 0, b"right\0")?;
        rig.settle()?;
        assert!(replied_with(&a, READ, b"right\0"));
        assert_eq!(rig.replies(), 1);
        assert_eq!(rig.unknown_replies(), 3);
        assert!(!rig.page().out_of_bounds());
        Ok(())
    }

    #[test]
    fn reply_for_a_request_not_yet_on_the_ring_is_dropped() -> Result {
        let mut rig = Rig::new()?;
        // The engine's table hands out ids as a fresh table does.
        let mut ids = ReqTable::<MAX_IN_FLIGHT>::new();
        let (_, big_id) = ids.alloc().ok_or(EINVAL)?;
        let (_, small_id) = ids.alloc().ok_or(EINVAL)?;
        let big = rig.submit(WRITE, 0, &pattern(3000, 1)?)?;
        let small = rig.submit(READ, 0, b"/small\0")?;
        // The ring takes the first 1024 bytes of `big`; `small` waits its turn.
        rig.pump();
        rig.xs.queue(READ, small_id, 0, b"early\0")?;
        rig.flush()?;
        rig.pump();
        assert_eq!(rig.unknown_replies(), 1);
        assert!(!small.is_done_for_test());
        // Both go out once, in order, and the real answers complete them.
        for _ in 0..100 {
            rig.pump();
            rig.receive()?;
            if rig.xs.received.len() >= 2 {
                break;
            }
        }
        let msgs = rig.xs.take_received();
        assert_eq!(msgs.len(), 2);
        assert!(msgs[0].header.req_id == big_id && msgs[1].header.req_id == small_id);
        rig.xs.queue(READ, small_id, 0, b"right\0")?;
        rig.xs.queue(WRITE, big_id, 0, b"OK\0")?;
        rig.settle()?;
        assert!(replied_with(&small, READ, b"right\0"));
        assert!(replied_with(&big, WRITE, b"OK\0"));
        assert!(rig.xs.take_received().is_empty());
        assert_eq!(rig.unknown_replies(), 1);
        assert!(rig.engine.fatal().is_none());
        Ok(())
    }

    /// A `Store` over a zeroed page that nothing pumps (an idle interface page), for the parts
    /// of a store that do not touch the ring.
    struct IdleStore {
        // Fields drop in declaration order: the store before the page its ring maps.
        store: Arc<Store>,
        _page: KBox<[u32; 1024]>,
    }

    impl IdleStore {
        fn new() -> Result<Self> {
            let mut page = KBox::new([0u32; 1024], GFP_KERNEL)?;
            let base = NonNull::from(&mut *page).cast::<u8>();
            // SAFETY: `base` points to 4096 bytes owned by `page`, aligned for the `u32` fields.
            // `page` is freed only after `store`, which alone owns the ring (field order above;
            // the tests never clone `store`), and moving the box does not move the page.
            let ring = unsafe { SharedRing::new(base) };
            Ok(Self {
                store: Store::new(Engine::new(ring)?, 0)?,
                _page: page,
            })
        }
    }

    /// A xenstored that accepts every `WATCH` and `UNWATCH`.
    struct AcceptingWire;

    impl WatchWire for AcceptingWire {
        fn watch(&self, _path: &[u8], _token: &[u8]) -> Result {
            Ok(())
        }

        fn unwatch(&self, _path: &[u8], _token: &[u8]) -> Result {
            Ok(())
        }
    }

    /// A watch event for `key` as xenstored sends it: `path\0token\0`.
    fn watch_event_for(key: (u32, u32), path: &[u8]) -> Result<KVec<u8>> {
        let mut tok = [0u8; token::TOKEN_MAX];
        let mut payload = bytes(path)?;
        payload.push(0, GFP_KERNEL)?;
        payload.extend_from_slice(token::format(key.0, key.1, &mut tok), GFP_KERNEL)?;
        payload.push(0, GFP_KERNEL)?;
        Ok(payload)
    }

    #[test]
    fn watch_queue_stays_bounded_behind_a_stuck_callback() -> Result {
        let wire = AcceptingWire;
        let watches = Watches::new()?;
        let mut stuck = c_watch(c"/stuck")?;
        let mut busy = c_watch(c"/busy")?;
        let (stuck, busy) = (NonNull::from(&mut *stuck), NonNull::from(&mut *busy));
        watches.register_c(&wire, stuck)?;
        watches.register_c(&wire, busy)?;
        let stuck_key = watches.key_for_test(stuck).ok_or(EINVAL)?;
        let busy_key = watches.key_for_test(busy).ok_or(EINVAL)?;
        // A helper is stuck in a callback of `stuck`, whose next event heads the queue;
        // dispatcher 0 serves `busy` from behind it, leaving a hole per event.
        watches.set_running_for_test(1, Some(stuck_key));
        watches.watch_event(&watch_event_for(stuck_key, b"/stuck")?);
        let event = watch_event_for(busy_key, b"/busy")?;
        let mut served = 0;
        let mut longest = 0;
        for _ in 0..5000 {
            watches.watch_event(&event);
            if watches.pick_for_test() == Some(busy_key) {
                served += 1;
            }
            longest = longest.max(watches.queue_for_test().0);
        }
        let (entries, live) = watches.queue_for_test();
        watches.set_running_for_test(1, None);
        let next = watches.pick_for_test();
        watches.unregister_c(&wire, stuck);
        watches.unregister_c(&wire, busy);
        assert_eq!(served, 5000);
        assert_eq!(live, 1);
        // Holes are dropped once they are half the queue (and it has 64 entries).
        assert!(entries <= 64 && longest <= 64);
        assert!(next == Some(stuck_key));
        Ok(())
    }

    /// A C-API watch on `node`, as a C caller would fill in before `register_xenbus_watch`.
    fn c_watch(node: &'static CStr) -> Result<KBox<bindings::xenbus_watch>> {
        let mut w = KBox::new(pin_init::zeroed::<bindings::xenbus_watch>(), GFP_KERNEL)?;
        w.node = node.as_char_ptr();
        Ok(w)
    }

    /// A xenstored that already knows every token it is asked to watch.
    struct WatchedAlreadyWire;

    impl WatchWire for WatchedAlreadyWire {
        fn watch(&self, _path: &[u8], _token: &[u8]) -> Result {
            Err(EEXIST)
        }

        fn unwatch(&self, _path: &[u8], _token: &[u8]) -> Result {
            Ok(())
        }
    }

    #[test]
    fn watch_already_registered_by_a_resume_stays_registered() -> Result {
        let watches = Watches::new()?;
        let mut w = c_watch(c"/raced")?;
        let w = NonNull::from(&mut *w);
        // The registrant's `WATCH` was held up by a suspend, and the resume's re-registration
        // sent this entry's token first: xenstored watches for us, so must the table.
        let registered = watches.register_c(&WatchedAlreadyWire, w);
        let key = watches.key_for_test(w);
        watches.unregister_c(&AcceptingWire, w);
        assert!(registered.is_ok());
        assert!(key.is_some());
        Ok(())
    }

    /// A xenstored during a resume's re-registration; while it handles the `WATCH` for `key`,
    /// that watch is unregistered (its `UNWATCH` reaches xenstored first).
    struct UnregisteringWire {
        watches: Arc<Watches>,
        key: (u32, u32),
        watches_sent: Atomic<u32>,
        unwatches_sent: Atomic<u32>,
    }

    impl WatchWire for UnregisteringWire {
        fn watch(&self, _path: &[u8], token: &[u8]) -> Result {
            self.watches_sent.fetch_add(1, Relaxed);
            let mut tok = [0u8; token::TOKEN_MAX];
            if token == token::format(self.key.0, self.key.1, &mut tok) {
                self.watches
                    .unregister(&AcceptingWire, self.key.0, self.key.1);
            }
            Ok(())
        }

        fn unwatch(&self, _path: &[u8], _token: &[u8]) -> Result {
            self.unwatches_sent.fetch_add(1, Relaxed);
            Ok(())
        }
    }

    #[test]
    fn watch_unregistered_during_reregistration_is_unwatched() -> Result {
        let watches = Watches::new()?;
        let mut w = c_watch(c"/leaving")?;
        let w = NonNull::from(&mut *w);
        watches.register_c(&AcceptingWire, w)?;
        let key = watches.key_for_test(w).ok_or(EINVAL)?;
        let wire = UnregisteringWire {
            watches: watches.clone(),
            key,
            watches_sent: Atomic::new(0),
            unwatches_sent: Atomic::new(0),
        };
        watches.reregister_all(&wire);
        let left = watches.key_for_test(w);
        if left.is_some() {
            watches.unregister_c(&AcceptingWire, w);
        }
        assert!(left.is_none());
        assert_eq!(wire.watches_sent.load(Relaxed), 1);
        // Without the second `UNWATCH`, xenstored would keep a watch for nobody.
        assert_eq!(wire.unwatches_sent.load(Relaxed), 1);
        Ok(())
    }

    #[test]
    fn reply_of_unexpected_type_completes_request() -> Result {
        let mut rig = Rig::new()?;
        let a = rig.submit(READ, 0, b"/a\0")?;
        let b = rig.submit(READ, 0, b"/b\0")?;
        rig.settle()?;
        let msgs = rig.xs.take_received();
        assert_eq!(msgs.len(), 2);
        rig.xs.queue(0x1234, msgs[0].header.req_id, 0, b"huh\0")?;
        rig.xs.queue(DIRECTORY, msgs[1].header.req_id, 0, b"x\0")?;
        rig.settle()?;
        // The engine delivers whatever type came; the xs layer judges it (next test).
        assert!(replied_with(&a, 0x1234, b"huh\0"));
        assert!(replied_with(&b, DIRECTORY, b"x\0"));
        assert!(rig.engine.fatal().is_none());
        Ok(())
    }

    #[test]
    fn store_maps_reply_types_to_errors() -> Result {
        let idle = IdleStore::new()?;
        let store = &idle.store;
        let reply = |ty: u32, payload: &[u8]| -> Result<Reply> {
            Ok(Reply {
                ty,
                payload: bytes(payload)?,
            })
        };

        let ok = store.check_reply(MsgType::Read, reply(READ, b"value")?);
        assert!(matches!(ok, Ok(ref v) if v[..] == *b"value"));
        let enoent = store.check_reply(MsgType::Read, reply(ERROR, b"ENOENT\0")?);
        assert!(matches!(enoent, Err(e) if e == ENOENT));
        let eacces = store.check_reply(MsgType::Write, reply(ERROR, b"EACCES\0")?);
        assert!(matches!(eacces, Err(e) if e == EACCES));
        let eagain = store.check_reply(MsgType::TransactionEnd, reply(ERROR, b"EAGAIN\0")?);
        assert!(matches!(eagain, Err(e) if e == EAGAIN));
        let unknown_error = store.check_reply(MsgType::Read, reply(ERROR, b"EWHATEVER\0")?);
        assert!(matches!(unknown_error, Err(e) if e == EINVAL));
        let unknown_type = store.check_reply(MsgType::Read, reply(0x1234, b"huh\0")?);
        assert!(matches!(unknown_type, Err(e) if e == EINVAL));
        let other_type = store.check_reply(MsgType::Read, reply(DIRECTORY, b"x\0")?);
        assert!(matches!(other_type, Err(e) if e == EINVAL));

        drop(idle);
        Ok(())
    }

    #[test]
    fn response_index_jump_is_fatal() -> Result {
        for jump in [RING_SIZE + 1, 0x8000_0000] {
            let mut rig = Rig::new()?;
            let a = rig.submit(READ, 0, b"/a\0")?;
            rig.settle()?;
            let msgs = rig.xs.take_received();
            assert_eq!(msgs.len(), 1);
            // A real reply sits in the ring, but the producer index claims far more.
            rig.xs.queue(READ, msgs[0].header.req_id, 0, b"v\0")?;
            rig.flush()?;
            let cons = rig.page().rsp_cons();
            let prod = cons.wrapping_add(jump);
            rig.page().set_rsp_prod(prod);
            rig.pump();
            assert_eq!(
                rig.engine.fatal(),
                Some(Fatal::ResponseIndexes { cons, prod })
            );
            assert_eq!(rig.page().rsp_cons(), cons);
            assert_eq!(rig.replies(), 0);
            assert!(failed_with(&a, EIO));
            assert!(rig.refuses_requests()?);
            rig.pump();
            assert!(!rig.page().out_of_bounds());
        }
        Ok(())
    }

    #[test]
    fn request_index_corruption_is_fatal() -> Result {
        for ahead in [true, false] {
            let mut rig = Rig::new()?;
            let a = rig.submit(READ, 0, b"/a\0")?;
            rig.settle()?;
            assert_eq!(rig.xs.take_received().len(), 1);
            let prod = rig.page().req_prod();
            let cons = if ahead {
                prod.wrapping_add(1)
            } else {
                prod.wrapping_sub(RING_SIZE + 1)
            };
            rig.page().set_req_cons(cons);
            let b = rig.submit(READ, 0, b"/b\0")?;
            rig.pump();
            assert_eq!(
                rig.engine.fatal(),
                Some(Fatal::RequestIndexes { cons, prod })
            );
            assert_eq!(rig.page().req_prod(), prod);
            assert!(failed_with(&a, EIO));
            assert!(failed_with(&b, EIO));
            assert!(rig.refuses_requests()?);
            assert!(!rig.page().out_of_bounds());
        }
        Ok(())
    }

    #[test]
    fn reply_split_into_single_bytes() -> Result {
        let mut rig = Rig::new()?;
        let req = rig.submit(READ, 0, b"/split\0")?;
        rig.settle()?;
        let msgs = rig.xs.take_received();
        assert_eq!(msgs.len(), 1);
        let payload = pattern(300, 3)?;
        rig.xs.queue(READ, msgs[0].header.req_id, 0, &payload)?;
        let total = HEADER_LEN + payload.len();
        for i in 0..total {
            assert_eq!(rig.flush_at_most(1)?, 1);
            rig.pump();
            // Every byte is taken off the ring at once, and only the last one completes.
            assert_eq!(rig.page().rsp_cons(), rig.page().rsp_prod());
            assert!(i + 1 == total || !req.is_done_for_test());
        }
        rig.settle()?;
        assert!(replied_with(&req, READ, &payload));
        assert_eq!(rig.replies(), 1);
        assert!(rig.engine.fatal().is_none());
        assert!(!rig.page().out_of_bounds());
        Ok(())
    }

    #[test]
    fn server_error_field_is_fatal() -> Result {
        let mut rig = Rig::new()?;
        let a = rig.submit(READ, 0, b"/a\0")?;
        rig.settle()?;
        assert_eq!(rig.xs.take_received().len(), 1);
        assert!(rig.engine.fatal().is_none());
        rig.page().set_error(ERROR_RINGIDX);
        let prod = rig.page().req_prod();
        let b = rig.submit(READ, 0, b"/b\0")?;
        rig.pump();
        assert_eq!(rig.engine.fatal(), Some(Fatal::ServerError(ERROR_RINGIDX)));
        assert_eq!(rig.page().req_prod(), prod);
        assert!(failed_with(&a, EIO));
        assert!(failed_with(&b, EIO));
        assert!(rig.refuses_requests()?);
        Ok(())
    }

    #[test]
    fn messages_larger_than_the_ring() -> Result {
        let mut rig = Rig::new()?;
        let (req, pumps_out) = send_big(&mut rig, 3000)?;
        // 3016 bytes through a 1024-byte ring: at least three pumps.
        assert!(pumps_out >= 3);
        assert_eq!(rig.xs.received.len(), 1);
        assert!(rig.xs.received[0].header.ty == WRITE && rig.xs.received[0].header.len == 3000);
        assert!(rig.xs.received[0].payload[..] == pattern(3000, 1)?[..]);
        let pumps_in = answer_big(&mut rig, &req, 4000)?;
        assert!(pumps_in >= 4);
        assert!(replied_with(&req, WRITE, &pattern(4000, 2)?));
        assert_eq!(rig.replies(), 1);
        assert!(!rig.page().out_of_bounds());
        Ok(())
    }

    #[test]
    fn only_replies_and_stalled_requests_need_the_pump() -> Result {
        let mut rig = Rig::new()?;
        assert!(!rig.engine.has_work(0));
        // xenstored reads a request (and notifies): nothing for the pump.
        let req = rig.submit(READ, 0, b"/a\0")?;
        rig.pump();
        rig.receive()?;
        assert!(!rig.engine.has_work(0));
        // Its reply (even a part of it) is.
        rig.xs.echo_all()?;
        rig.flush_at_most(3)?;
        assert!(rig.engine.has_work(0));
        rig.flush()?;
        rig.pump();
        assert!(replied_with(&req, READ, b"/a\0"));
        assert!(!rig.engine.has_work(0));
        // A request waiting for room in the request ring is, until it is all written.
        let big = rig.submit(WRITE, 0, &pattern(3000, 1)?)?;
        rig.pump();
        assert!(rig.engine.has_work(0));
        let (mut rounds, mut sent) = (0, false);
        while rounds < 10 && !sent {
            rig.receive()?;
            rig.pump();
            sent = !rig.engine.has_work(0);
            rounds += 1;
        }
        assert!(sent);
        rig.receive()?;
        assert!(rig.xs.received.len() == 1 && rig.xs.received[0].header.len == 3000);
        assert!(!big.is_done_for_test());
        // The ring's error field always is.
        assert!(rig.engine.has_work(ERROR_RINGIDX));
        Ok(())
    }

    #[test]
    fn unreadable_transaction_id_releases_the_suspend_gate() -> Result {
        let idle = IdleStore::new()?;
        let store = &idle.store;
        // What `call_raw` leaves for a kernel `TRANSACTION_START` that xenstored answered:
        // one count, held until the transaction ends.
        store.gate.enter(true);
        store.gate.exit(1);
        let zero = store.opened_transaction(b"0\0");
        // Nothing holds off a suspend now (it would wait forever otherwise).
        let users_after_bad_reply = store.gate.users_for_test();
        store.gate.enter(true);
        store.gate.exit(1);
        let good = store.opened_transaction(b"17\0");
        let users_after_good_reply = store.gate.users_for_test();
        drop(idle);
        assert!(matches!(zero, Err(e) if e == EIO));
        assert_eq!(users_after_bad_reply, 0);
        assert!(matches!(good, Ok(17)));
        assert_eq!(users_after_good_reply, 1);
        Ok(())
    }

    #[test]
    fn reader_seat_kicks_its_caller_and_hands_over_the_outcome() -> Result {
        let mut rig = Rig::new()?;
        // The seat lives in a `Store`; one over an idle page is enough for it.
        let idle = IdleStore::new()?;
        let store = &idle.store;

        let a = rig.submit(READ, 0, b"/a\0")?;
        assert_eq!(rig.engine.in_flight(), 1);
        let b = rig.submit(READ, 0, b"/b\0")?;
        assert_eq!(rig.engine.in_flight(), 2);

        // Nobody sits: the interrupt must fall back to the I/O thread.
        assert!(!store.reader.kick());
        assert!(store.reader.try_sit(&a));
        assert!(!store.reader.try_sit(&b));
        assert!(store.reader.kick());
        assert!(matches!(
            a.wait_or_kick(WaitMode::Killable),
            ReaderWake::Kicked
        ));
        // The kick is consumed; the reply (delivered by whoever pumps) is what ends the wait.
        rig.pump();
        rig.receive()?;
        rig.xs.echo_all()?;
        rig.flush()?;
        rig.pump();
        assert_eq!(rig.engine.in_flight(), 0);
        let got = a.wait_or_kick(WaitMode::Killable);
        assert!(matches!(got, ReaderWake::Outcome(Ok(ref r)) if r.payload[..] == *b"/a\0"));
        assert!(store.reader.leave().is_some_and(|r| Arc::ptr_eq(&r, &a)));
        assert!(!store.reader.kick());

        // A caller that gives up while its request is pending gets EINTR; the late reply is
        // dropped rather than delivered.
        let c = rig.submit(READ, 0, b"/c\0")?;
        assert!(matches!(c.give_up(), Err(e) if e == EINTR));
        // `b` was answered above; a request that has its outcome gives that up instead.
        assert!(matches!(b.give_up(), Ok(ref r) if r.payload[..] == *b"/b\0"));
        rig.settle()?;
        rig.xs.echo_all()?;
        rig.settle()?;
        assert_eq!(rig.engine.in_flight(), 0);
        assert!(!c.is_done_for_test());

        drop(idle);
        Ok(())
    }

    #[test]
    fn submitter_leaves_its_request_to_the_ring_holder() -> Result {
        let mut rig = Rig::new()?;
        rig.submit(READ, 0, b"/a\0")?;
        // Someone else is writing: the submitter neither waits nor asks for the I/O thread.
        let kick_wanted = rig
            .engine
            .with_tx_held_for_test(|| rig.engine.send_now(&rig.kicks));
        assert!(!kick_wanted);
        assert_eq!(rig.receive()?, 0);
        // The holder's pass (here the pump's) writes it.
        rig.pump();
        rig.receive()?;
        let msgs = rig.xs.take_received();
        assert!(msgs.len() == 1 && msgs[0].payload[..] == *b"/a\0");
        Ok(())
    }

    #[test]
    fn submitter_sends_its_own_request() -> Result {
        let mut rig = Rig::new()?;
        let a = rig.submit(READ, 0, b"/a\0")?;
        // The ring is free: the request goes out without the pump, and xenstored is told.
        assert!(!rig.engine.send_now(&rig.kicks));
        assert_eq!(rig.kicks.count.load(Relaxed), 1);
        rig.receive()?;
        let msgs = rig.xs.take_received();
        assert!(msgs.len() == 1 && msgs[0].payload[..] == *b"/a\0");
        // While suspended the ring is left alone and the I/O thread is asked to take over.
        rig.engine.pause(true);
        let b = rig.submit(READ, 0, b"/b\0")?;
        assert!(rig.engine.send_now(&rig.kicks));
        assert_eq!(rig.receive()?, 0);
        rig.engine.pause(false);
        rig.pump();
        rig.receive()?;
        let msgs2 = rig.xs.take_received();
        assert!(msgs2.len() == 1 && msgs2[0].payload[..] == *b"/b\0");
        // A message larger than the ring: the submitter writes what fits and asks for the pump,
        // which writes the rest as xenstored makes room.
        rig.submit(WRITE, 0, &pattern(3000, 1)?)?;
        assert!(rig.engine.send_now(&rig.kicks));
        let mut pumps = 0;
        while rig.receive().is_ok() && rig.xs.received.is_empty() && pumps < 100 {
            rig.pump();
            pumps += 1;
        }
        assert_eq!(rig.xs.received.len(), 1);
        assert!(rig.xs.received[0].payload[..] == pattern(3000, 1)?[..]);
        // 3016 bytes, 1024 written by the submitter: two more passes at least.
        assert!(pumps >= 2);
        for (m, reply) in Iterator::chain(msgs.iter(), msgs2.iter()).zip([b"ra\0", b"rb\0"]) {
            rig.xs.queue(READ, m.header.req_id, 0, reply)?;
        }
        rig.settle()?;
        assert!(replied_with(&a, READ, b"ra\0") && replied_with(&b, READ, b"rb\0"));
        Ok(())
    }

    #[test]
    fn kicks_only_when_xenstored_may_sleep() -> Result {
        let mut rig = Rig::new()?;
        let kicks = |rig: &Rig| rig.kicks.count.load(Relaxed);
        // Empty request ring: xenstored may be asleep.
        let a = rig.submit(READ, 0, b"/a\0")?;
        rig.pump();
        assert_eq!(kicks(&rig), 1);
        // xenstored has not consumed `a` yet, so it is awake and will find `b` itself.
        let b = rig.submit(READ, 0, b"/b\0")?;
        rig.pump();
        assert_eq!(kicks(&rig), 1);
        rig.receive()?;
        let msgs = rig.xs.take_received();
        assert_eq!(msgs.len(), 2);
        // Small replies leave room in the response ring: xenstored never waited for space.
        for (m, reply) in msgs.iter().zip([b"ra\0", b"rb\0"]) {
            rig.xs.queue(READ, m.header.req_id, 0, reply)?;
        }
        rig.flush()?;
        rig.pump();
        assert!(replied_with(&a, READ, b"ra\0") && replied_with(&b, READ, b"rb\0"));
        assert_eq!(kicks(&rig), 1);
        // A reply that fills the response ring: xenstored waits for space and is told.
        let (big, _) = send_big(&mut rig, 10)?;
        let before = kicks(&rig);
        answer_big(&mut rig, &big, 3000)?;
        assert!(kicks(&rig) > before);
        assert!(replied_with(&big, WRITE, &pattern(3000, 2)?));
        Ok(())
    }

    #[test]
    fn indexes_wrap_at_2_32() -> Result {
        const REQ_START: u32 = 0xffff_fc00;
        const RSP_START: u32 = 0xffff_fffb;
        let mut rig = Rig::with_indexes(REQ_START, RSP_START)?;
        let (req, _) = send_big(&mut rig, 3000)?;
        assert!(
            rig.xs.received.len() == 1 && rig.xs.received[0].payload[..] == pattern(3000, 1)?[..]
        );
        answer_big(&mut rig, &req, 4000)?;
        assert!(replied_with(&req, WRITE, &pattern(4000, 2)?));
        let page = rig.page();
        assert_eq!(page.req_prod(), REQ_START.wrapping_add(16 + 3000));
        assert!(page.req_prod() < REQ_START && page.req_cons() == page.req_prod());
        assert_eq!(page.rsp_cons(), RSP_START.wrapping_add(16 + 4000));
        assert!(page.rsp_cons() < RSP_START && page.rsp_prod() == page.rsp_cons());
        // And small messages keep working past the wrap.
        let small = rig.submit(READ, 0, b"/after\0")?;
        rig.settle()?;
        rig.xs.echo_all()?;
        rig.settle()?;
        assert!(replied_with(&small, READ, b"/after\0"));
        assert!(rig.engine.fatal().is_none());
        assert!(!rig.page().out_of_bounds());
        Ok(())
    }

    #[test]
    fn full_table_refuses_then_recovers() -> Result {
        let mut rig = Rig::new()?;
        let mut reqs = KVec::with_capacity(MAX_IN_FLIGHT, GFP_KERNEL)?;
        for i in 0..MAX_IN_FLIGHT {
            // `i < 128` fits a `u16`.
            reqs.push(rig.submit(READ, 0, &(i as u16).to_le_bytes())?, GFP_KERNEL)?;
        }
        let extra = Request::new(READ, 0, bytes(b"/extra\0")?)?;
        assert!(matches!(rig.engine.try_submit(extra.clone()), Err(e) if e == EBUSY));
        rig.settle()?;
        assert_eq!(rig.xs.received.len(), MAX_IN_FLIGHT);
        assert!(matches!(rig.engine.try_submit(extra.clone()), Err(e) if e == EBUSY));
        rig.xs.echo_all()?;
        rig.settle()?;
        assert_eq!(rig.replies(), MAX_IN_FLIGHT as u64);
        for (i, req) in reqs.iter().enumerate() {
            assert!(replied_with(req, READ, &(i as u16).to_le_bytes()));
        }
        assert!(rig.engine.try_submit(extra.clone()).is_ok());
        rig.settle()?;
        rig.xs.echo_all()?;
        rig.settle()?;
        assert!(replied_with(&extra, READ, b"/extra\0"));
        assert!(rig.engine.fatal().is_none());
        Ok(())
    }

    #[test]
    fn watch_events_reach_the_sink() -> Result {
        let mut rig = Rig::new()?;
        let req = rig.submit(READ, 0, b"/w\0")?;
        rig.settle()?;
        let msgs = rig.xs.take_received();
        assert_eq!(msgs.len(), 1);
        let id = msgs[0].header.req_id;
        let big = pattern(2000, 4)?;
        rig.xs
            .queue(WATCH_EVENT, 0, 0, b"/local/domain/1/x\0tok\0")?;
        // Malformed ones, one of them carrying a pending request's id: still events.
        rig.xs.queue(WATCH_EVENT, id, 0, b"no-terminator")?;
        rig.xs.queue(WATCH_EVENT, 0, 0, b"")?;
        rig.xs.queue(WATCH_EVENT, 0, 7, &big)?;
        rig.xs.queue(READ, id, 0, b"value\0")?;
        rig.settle()?;
        let expected: [&[u8]; 4] = [b"/local/domain/1/x\0tok\0", b"no-terminator", b"", &big];
        assert!(rig.events.are(&expected));
        assert_eq!(rig.engine.stats.watch_events.load(Relaxed), 4);
        assert!(replied_with(&req, READ, b"value\0"));
        assert_eq!(rig.replies(), 1);
        assert_eq!(rig.unknown_replies(), 0);
        assert!(!rig.page().out_of_bounds());
        Ok(())
    }

    #[test]
    fn sink_requests_get_one_outcome() -> Result {
        let deliveries = Arc::pin_init(
            pin_init!(Deliveries { got <- new_mutex!(KVec::new()) }),
            GFP_KERNEL,
        )?;
        let sink: Arc<dyn ReplySink> = deliveries.clone();
        let mut rig = Rig::new()?;
        let a = Request::with_sink(READ, 0, bytes(b"/a\0")?, Some(sink.clone()), 7)?;
        let b = Request::with_sink(READ, 0, bytes(b"/b\0")?, Some(sink), 8)?;
        rig.engine.try_submit(a)?;
        rig.engine.try_submit(b)?;
        rig.settle()?;
        let msgs = rig.xs.take_received();
        assert_eq!(msgs.len(), 2);
        rig.xs.queue(READ, msgs[0].header.req_id, 0, b"va\0")?;
        rig.xs.queue(READ, msgs[0].header.req_id, 0, b"again\0")?;
        rig.settle()?;
        assert_eq!(deliveries.count(), 1);
        assert!(deliveries.is_reply(0, 7, READ, b"va\0"));
        assert_eq!(rig.unknown_replies(), 1);
        rig.page().set_error(ERROR_RINGIDX);
        rig.pump();
        rig.pump();
        assert_eq!(deliveries.count(), 2);
        assert!(deliveries.is_error(1, 8, EIO));
        Ok(())
    }

    #[test]
    fn abandoned_request_reply_is_dropped() -> Result {
        let mut rig = Rig::new()?;
        let req = rig.submit(READ, 0, b"/gone\0")?;
        rig.settle()?;
        let msgs = rig.xs.take_received();
        assert_eq!(msgs.len(), 1);
        assert!(req.abandon_for_test());
        rig.xs.queue(READ, msgs[0].header.req_id, 0, b"late\0")?;
        rig.settle()?;
        // Matched (not an unknown id), freed, and dropped rather than kept for a waiter.
        assert_eq!(rig.replies(), 1);
        assert_eq!(rig.unknown_replies(), 0);
        assert!(!req.is_done_for_test());
        assert_eq!(rig.xs.received.len(), 0);
        // Its slot is free again: the whole table can be filled.
        for _ in 0..MAX_IN_FLIGHT {
            rig.submit(READ, 0, b"/x\0")?;
        }
        assert!(rig.engine.fatal().is_none());
        Ok(())
    }

    #[test]
    fn abandoned_transaction_start_is_ended() -> Result {
        let mut rig = Rig::new()?;
        let start = rig.submit(TRANSACTION_START, 0, b"\0")?;
        rig.settle()?;
        let msgs = rig.xs.take_received();
        assert_eq!(msgs.len(), 1);
        assert!(start.abandon_for_test());
        rig.xs
            .queue(TRANSACTION_START, msgs[0].header.req_id, 0, b"42\0")?;
        rig.settle()?;
        let msgs = rig.xs.take_received();
        assert_eq!(msgs.len(), 1);
        let end = &msgs[0];
        assert!(end.header.ty == TRANSACTION_END && end.header.tx_id == 42);
        assert!(end.header.len == 2 && end.payload[..] == *b"F\0");
        rig.xs
            .queue(TRANSACTION_END, end.header.req_id, 42, b"OK\0")?;
        rig.settle()?;
        assert_eq!(rig.replies(), 2);
        assert_eq!(rig.unknown_replies(), 0);
        assert_eq!(rig.xs.received.len(), 0);

        // A start that failed, or returned no usable id, opened nothing: nothing to end.
        for (ty, payload) in [(ERROR, &b"EAGAIN\0"[..]), (TRANSACTION_START, &b"0\0"[..])] {
            let start = rig.submit(TRANSACTION_START, 0, b"\0")?;
            rig.settle()?;
            let msgs = rig.xs.take_received();
            assert_eq!(msgs.len(), 1);
            assert!(start.abandon_for_test());
            rig.xs.queue(ty, msgs[0].header.req_id, 0, payload)?;
            rig.settle()?;
            assert_eq!(rig.xs.received.len(), 0);
        }
        // Nor does one whose caller is still waiting.
        let start = rig.submit(TRANSACTION_START, 0, b"\0")?;
        rig.settle()?;
        let msgs = rig.xs.take_received();
        assert_eq!(msgs.len(), 1);
        rig.xs
            .queue(TRANSACTION_START, msgs[0].header.req_id, 0, b"43\0")?;
        rig.settle()?;
        assert!(replied_with(&start, TRANSACTION_START, b"43\0"));
        assert_eq!(rig.xs.received.len(), 0);
        assert_eq!(rig.replies(), 5);
        Ok(())
    }

    #[test]
    fn pause_and_reset_after_resume() -> Result {
        let mut rig = Rig::new()?;
        let a = rig.submit(READ, 0, b"/a\0")?;
        rig.settle()?;
        let msgs = rig.xs.take_received();
        assert_eq!(msgs.len(), 1);
        rig.engine.pause(true);
        rig.xs.queue(READ, msgs[0].header.req_id, 0, b"va\0")?;
        rig.flush()?;
        let req_prod = rig.page().req_prod();
        let b = rig.submit(READ, 0, b"/b\0")?;
        rig.pump();
        // Paused: the ring is left alone both ways.
        assert!(rig.page().rsp_cons() != rig.page().rsp_prod());
        assert_eq!(rig.page().req_prod(), req_prod);
        assert!(!a.is_done_for_test() && !b.is_done_for_test());
        rig.engine.reset_after_resume();
        assert!(failed_with(&a, EAGAIN));
        assert!(failed_with(&b, EAGAIN));
        rig.engine.pause(false);
        // The reply to the forgotten request is now unknown; the connection works.
        rig.settle()?;
        assert_eq!(rig.unknown_replies(), 1);
        assert_eq!(rig.replies(), 0);
        let c = rig.submit(READ, 0, b"/c\0")?;
        rig.settle()?;
        rig.xs.echo_all()?;
        rig.settle()?;
        assert!(replied_with(&c, READ, b"/c\0"));
        assert!(rig.engine.fatal().is_none());
        Ok(())
    }

    #[test]
    fn locate_store_hvm_and_pv() {
        let params = |evtchn: Result<u64>, pfn: Result<u64>| FakeParams { evtchn, pfn };
        // The initial domain without a store event channel runs xenstored itself.
        assert_eq!(locate_hvm(&params(Ok(0), Err(EPERM)), true), Ok(Loc::Local));
        assert_eq!(locate_hvm(&params(Ok(0), Ok(0x1000)), false), Err(ENOENT));
        assert_eq!(locate_hvm(&params(Ok(5), Ok(0)), false), Err(ENOENT));
        assert_eq!(
            locate_hvm(&params(Ok(5), Ok(u64::MAX)), false),
            Ok(Loc::HvmLate { evtchn: 5 })
        );
        assert_eq!(
            locate_hvm(&params(Ok(5), Ok(0xfeff0)), false),
            Ok(Loc::Hvm {
                pfn: 0xfeff0,
                evtchn: 5
            })
        );
        assert_eq!(
            locate_hvm(&params(Ok(5), Ok(0xfeff0)), true),
            Ok(Loc::Hvm {
                pfn: 0xfeff0,
                evtchn: 5
            })
        );
        assert_eq!(
            locate_hvm(&params(Err(EPERM), Ok(0xfeff0)), false),
            Err(EPERM)
        );
        assert_eq!(locate_hvm(&params(Ok(5), Err(EFAULT)), false), Err(EFAULT));
        assert_eq!(
            locate_hvm(&params(Ok(1 << 32), Ok(0xfeff0)), false),
            Err(EINVAL)
        );
        // A domain waiting for its store maps the ring only once the frame is set.
        assert_eq!(late_store_pfn(&params(Ok(5), Ok(u64::MAX))), None);
        assert_eq!(late_store_pfn(&params(Ok(5), Ok(0))), None);
        assert_eq!(late_store_pfn(&params(Ok(5), Err(EPERM))), None);
        assert_eq!(late_store_pfn(&params(Ok(5), Ok(0xfeff0))), Some(0xfeff0));
        assert_eq!(locate_pv(0x1234, 0), Loc::Local);
        assert_eq!(
            locate_pv(0x1234, 3),
            Loc::Pv {
                mfn: 0x1234,
                evtchn: 3
            }
        );
    }
}
