// SPDX-License-Identifier: GPL-2.0

//! Moving messages between the request table and the shared ring.
//!
//! [`Engine`] owns both directions of the ring. Callers [`Engine::submit`] requests, which get a
//! request id from the table and wait in a FIFO; [`Engine::pump`], run by the ring I/O thread,
//! by the caller in the reader seat (`Core::await_reply`) or by a test, copies queued requests
//! into the ring (a message may take many passes when the ring is full), assembles incoming
//! messages (likewise), hands watch events to an [`EventSink`] and replies to their requests,
//! matched by `req_id` in any order.
//!
//! Locking: the two halves of the ring have a mutex each, taken in this order: `rx` (the response
//! ring and the message being assembled: only the pump), then `tx` (the request ring and the
//! message being copied in: the pump, and submitters, who only try it), then `queue` (a
//! spinlock, taken briefly by everyone). The pump therefore reads replies while submitters
//! write requests. Suspend holds both mutexes to keep everyone off the ring. No lock is held
//! while a caller waits for its reply.
//!
//! Anything wrong on the ring (indexes more than a ring apart, a header longer than the
//! protocol allows, xenstored's `error` field set) makes the connection unusable: every pending
//! and future request fails with `EIO` and one message says why. A reply for an unknown
//! `req_id` is dropped with a rate-limited message.

use crate::{
    bytes,
    ratelimit::{warn_ratelimited, RateLimit},
    request::{Completed, Reply, Request, WaitMode},
};
use kernel::{
    new_condvar, new_mutex, new_spinlock,
    prelude::*,
    sync::{
        atomic::{Atomic, Full, Relaxed},
        Arc, CondVar, Mutex, SpinLock,
    },
    xen::xenstore::proto::{
        reqtable::ReqTable,
        ring::{
            request_needs_notify, response_needs_notify, ring_read, ring_write, RingError, RingPage,
        },
        wire::{self, Header, MessageReader, MessageWriter, MsgType},
    },
};

/// Requests queued or on the wire at once. Callers beyond this wait for a free slot.
pub(crate) const MAX_IN_FLIGHT: usize = 128;

/// Kicks the other end (xenstored) after we changed the ring.
pub(crate) trait Peer: Sync {
    /// Signals the event channel.
    fn notify(&self);
}

/// Receives watch events read from the ring.
pub(crate) trait EventSink: Sync {
    /// `payload` is the raw `WATCH_EVENT` payload, still to be validated.
    fn watch_event(&self, payload: &[u8]);
}

/// Why the connection was given up.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Fatal {
    /// Response ring indexes more than a ring apart.
    ResponseIndexes { cons: u32, prod: u32 },
    /// Request ring indexes more than a ring apart.
    RequestIndexes { cons: u32, prod: u32 },
    /// A message header announced more than `XENSTORE_PAYLOAD_MAX` bytes.
    HeaderLength(u32),
    /// xenstored set the ring's `error` field.
    ServerError(u32),
}

/// A FIFO of slot numbers with room for every slot.
struct SlotFifo {
    slots: [u16; MAX_IN_FLIGHT],
    head: usize,
    len: usize,
}

impl SlotFifo {
    fn push(&mut self, slot: usize) -> bool {
        if self.len >= MAX_IN_FLIGHT {
            return false;
        }
        let at = (self.head + self.len) % MAX_IN_FLIGHT;
        // `slot < MAX_IN_FLIGHT <= u16::MAX` (the table hands out slots below its capacity).
        self.slots[at] = slot as u16;
        self.len += 1;
        true
    }

    fn pop(&mut self) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let slot = usize::from(self.slots[self.head]);
        self.head = (self.head + 1) % MAX_IN_FLIGHT;
        self.len -= 1;
        Some(slot)
    }

    fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

struct QueueState {
    table: ReqTable<MAX_IN_FLIGHT>,
    slots: KVec<Option<Arc<Request>>>,
    to_send: SlotFifo,
    /// Per slot: its request has left `to_send` for the ring. Only then is a reply for it
    /// accepted; xenstored cannot answer what it has not read, and taking a queued request
    /// out of the table would leave its slot in `to_send`, to be sent again once reused.
    on_wire: [bool; MAX_IN_FLIGHT],
    fatal: Option<Fatal>,
    /// Submitters waiting for a free slot (freeing one wakes them only if there are any).
    slot_waiters: u32,
}

/// The response half: the message being assembled.
struct RxState {
    reader: MessageReader,
}

/// The request half: the message being copied into the ring.
struct TxState {
    writer: MessageWriter,
    /// The request whose bytes `writer` holds (kept alive until fully written).
    writing: Option<Arc<Request>>,
    /// As many empty entries as the table has slots: swapped with the table's entries when
    /// every request must fail at once, so that failing needs no memory.
    spare_slots: KVec<Option<Arc<Request>>>,
}

/// Counters for diagnostics and tests.
pub(crate) struct Stats {
    pub(crate) replies: Atomic<u64>,
    pub(crate) unknown_replies: Atomic<u64>,
    pub(crate) watch_events: Atomic<u64>,
    pub(crate) notifications: Atomic<u64>,
}

/// Both directions of one xenstore ring.
#[pin_data]
pub(crate) struct Engine<P: RingPage + Send + Sync> {
    page: P,
    #[pin]
    queue: SpinLock<QueueState>,
    #[pin]
    slot_free: CondVar,
    #[pin]
    rx: Mutex<RxState>,
    #[pin]
    tx: Mutex<TxState>,
    #[pin]
    unknown_limit: RateLimit,
    /// Set while suspended: the pump leaves the ring alone.
    paused: Atomic<bool>,
    /// Whether `queue.fatal` is set, for the checks on every pass that need no details.
    failed: Atomic<bool>,
    /// A submitter queued a request and may have found `tx` taken: the holder writes it after
    /// all (see [`Engine::send_now`]).
    tx_wanted: Atomic<bool>,
    /// A request waits for room in the full request ring: xenstored's next notification is
    /// work for the pump (see [`Engine::has_work`]).
    tx_stalled: Atomic<bool>,
    /// Requests in the table, mirrored for the store interrupt (which cannot take `queue`).
    in_flight: Atomic<u32>,
    pub(crate) stats: Stats,
}

impl<P: RingPage + Send + Sync> Engine<P> {
    /// An engine over `page`, with every slot free.
    pub(crate) fn new(page: P) -> Result<Arc<Self>> {
        let empty_slots = || -> Result<KVec<Option<Arc<Request>>>> {
            let mut slots = KVec::with_capacity(MAX_IN_FLIGHT, GFP_KERNEL)?;
            for _ in 0..MAX_IN_FLIGHT {
                slots.push(None, GFP_KERNEL)?;
            }
            Ok(slots)
        };
        let slots = empty_slots()?;
        let spare_slots = empty_slots()?;
        Arc::pin_init(
            try_pin_init!(Self {
                page,
                queue <- new_spinlock!(QueueState {
                    table: ReqTable::new(),
                    slots,
                    to_send: SlotFifo { slots: [0; MAX_IN_FLIGHT], head: 0, len: 0 },
                    on_wire: [false; MAX_IN_FLIGHT],
                    fatal: None,
                    slot_waiters: 0,
                }, "xenbus_rs_queue"),
                slot_free <- new_condvar!("xenbus_rs_slot_free"),
                rx <- new_mutex!(RxState { reader: MessageReader::new() }, "xenbus_rs_rx"),
                tx <- new_mutex!(TxState {
                    writer: MessageWriter::new(),
                    writing: None,
                    spare_slots,
                }, "xenbus_rs_tx"),
                unknown_limit <- RateLimit::new(),
                paused: Atomic::new(false),
                failed: Atomic::new(false),
                tx_wanted: Atomic::new(false),
                tx_stalled: Atomic::new(false),
                in_flight: Atomic::new(0),
                stats: Stats {
                    replies: Atomic::new(0),
                    unknown_replies: Atomic::new(0),
                    watch_events: Atomic::new(0),
                    notifications: Atomic::new(0),
                },
            }),
            GFP_KERNEL,
        )
    }

    /// The ring page.
    pub(crate) fn page(&self) -> &P {
        &self.page
    }

    /// Why the connection is unusable, if it is (for the KUnit cases; the core itself acts on
    /// the fatal error where it is found).
    #[cfg(CONFIG_XEN_XENBUS_CORE_RUST_KUNIT_TEST)]
    pub(crate) fn fatal(&self) -> Option<Fatal> {
        self.queue.lock().fatal
    }

    /// Queues `req` for sending; waits (as `mode` says) while every slot is taken.
    pub(crate) fn submit(&self, req: Arc<Request>, mode: WaitMode) -> Result {
        let mut q = self.queue.lock();
        loop {
            if q.fatal.is_some() {
                return Err(EIO);
            }
            if let Some((slot, _req_id)) = q.table.alloc() {
                if let Some(entry) = q.slots.get_mut(slot) {
                    *entry = Some(req);
                }
                if let Some(sent) = q.on_wire.get_mut(slot) {
                    *sent = false;
                }
                if !q.to_send.push(slot) {
                    // Cannot happen: every slot fits in the FIFO. Undo rather than lose it.
                    q.table.free(slot);
                    if let Some(entry) = q.slots.get_mut(slot) {
                        *entry = None;
                    }
                    return Err(EBUSY);
                }
                self.note_in_flight(&q);
                return Ok(());
            }
            q.slot_waiters += 1;
            let killed = match mode {
                WaitMode::Uninterruptible => {
                    self.slot_free.wait(&mut q);
                    false
                }
                WaitMode::Killable => self.slot_free.wait_killable(&mut q),
            };
            q.slot_waiters -= 1;
            if killed {
                return Err(EINTR);
            }
        }
    }

    /// Like [`Engine::submit`] but never waits (for the pump's own requests).
    pub(crate) fn try_submit(&self, req: Arc<Request>) -> Result {
        let mut q = self.queue.lock();
        if q.fatal.is_some() {
            return Err(EIO);
        }
        let (slot, _) = q.table.alloc().ok_or(EBUSY)?;
        if let Some(entry) = q.slots.get_mut(slot) {
            *entry = Some(req);
        }
        if let Some(sent) = q.on_wire.get_mut(slot) {
            *sent = false;
        }
        if !q.to_send.push(slot) {
            q.table.free(slot);
            if let Some(entry) = q.slots.get_mut(slot) {
                *entry = None;
            }
            return Err(EBUSY);
        }
        self.note_in_flight(&q);
        Ok(())
    }

    fn note_in_flight(&self, q: &QueueState) {
        self.in_flight.store(q.table.in_flight() as u32, Relaxed);
    }

    /// How many requests are queued or on the wire (a snapshot, for the store interrupt).
    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight.load(Relaxed)
    }

    /// Puts queued requests on the ring from the submitter's context, saving the I/O thread a
    /// wake-up per request. Returns whether the I/O thread must still run: the ring is paused,
    /// or a message did not fit.
    ///
    /// If someone else holds the request ring, they write our request: we raise `tx_wanted`
    /// before trying the lock, and every holder that writes (here and in [`Engine::pump`])
    /// clears and checks it after letting go, both with full barriers. Either our `try_lock`
    /// sees the ring free, or the holder sees the flag. No wake-up of the I/O thread for that.
    pub(crate) fn send_now(&self, peer: &dyn Peer) -> bool {
        self.tx_wanted.xchg(true, Full);
        loop {
            let Some(mut tx) = self.tx.try_lock() else {
                return false;
            };
            self.tx_wanted.xchg(false, Full);
            if self.paused.load(Relaxed) || self.failed.load(Relaxed) {
                return true;
            }
            let req_start = self.page.req_prod();
            match self.write_pass(&mut tx) {
                Ok(written) => {
                    if request_needs_notify(&self.page, req_start, written) {
                        self.stats.notifications.fetch_add(1, Relaxed);
                        peer.notify();
                    }
                    if tx.writer.is_busy() {
                        return true;
                    }
                }
                Err(f) => {
                    self.fail(f, &mut tx);
                    peer.notify();
                    return false;
                }
            }
            drop(tx);
            if !self.tx_wanted.xchg(false, Full) {
                return false;
            }
        }
    }

    /// Whether a notification from xenstored gives the pump something to do: a reply or event
    /// to read (also a partial one), a request waiting for ring space, or the ring's `error`
    /// field set. xenstored also notifies after every read of our requests, which needs
    /// nothing unless a request waits for space.
    ///
    /// No wake-up is lost: xenstored publishes its index before it notifies, and every writer
    /// that finds the ring full raises `tx_stalled` before it looks at the ring once more.
    pub(crate) fn has_work(&self, server_error: u32) -> bool {
        self.page.read_barrier();
        self.page.rsp_prod() != self.page.rsp_cons()
            || self.tx_stalled.load(Relaxed)
            || server_error != 0
    }

    /// Moves bytes both ways until neither direction makes progress.
    pub(crate) fn pump(
        &self,
        sink: &dyn EventSink,
        peer: &dyn Peer,
        server_error: impl Fn() -> u32,
    ) {
        let mut rx = self.rx.lock();
        loop {
            if self.failed.load(Relaxed) || self.paused.load(Relaxed) {
                return;
            }
            let err = server_error();
            if err != 0 {
                self.fail(Fatal::ServerError(err), &mut self.tx.lock());
                return;
            }
            let rsp_start = self.page.rsp_cons();
            let read = match self.read_pass(&mut rx, sink) {
                Ok(n) => n,
                Err(f) => {
                    self.fail(f, &mut self.tx.lock());
                    peer.notify();
                    return;
                }
            };
            let req_start = self.page.req_prod();
            let written = {
                let mut tx = self.tx.lock();
                self.tx_wanted.xchg(false, Full);
                match self.write_pass(&mut tx) {
                    Ok(n) => n,
                    Err(f) => {
                        self.fail(f, &mut tx);
                        peer.notify();
                        return;
                    }
                }
            };
            // A submitter who found `tx` taken left its request to us (see `send_now`).
            let wanted = self.tx_wanted.xchg(false, Full);
            if read == 0 && written == 0 && !wanted {
                return;
            }
            // xenstored sleeps only on an empty request ring or a full response ring: kick it
            // only then (every spurious event costs a hypercall here and a wake-up there).
            if response_needs_notify(&self.page, rsp_start, read)
                || request_needs_notify(&self.page, req_start, written)
            {
                self.stats.notifications.fetch_add(1, Relaxed);
                peer.notify();
            }
        }
    }

    /// Reads and dispatches what the response ring holds; returns the bytes consumed.
    fn read_pass(&self, rx: &mut RxState, sink: &dyn EventSink) -> Result<u32, Fatal> {
        let mut read: u32 = 0;
        loop {
            let n = match ring_read(&self.page, rx.reader.spare_mut()) {
                Ok(n) => n,
                Err(RingError::BadIndexes { cons, prod }) => {
                    return Err(Fatal::ResponseIndexes { cons, prod })
                }
            };
            if n == 0 {
                return Ok(read);
            }
            read = read.wrapping_add(n as u32);
            if rx.reader.commit(n).is_err() {
                let len = rx.reader.header().map(|h| h.len).unwrap_or(u32::MAX);
                return Err(Fatal::HeaderLength(len));
            }
            if let Some((header, payload)) = rx.reader.message() {
                self.dispatch(header, payload, sink);
                rx.reader.reset();
            }
        }
    }

    /// Copies queued requests into the request ring; returns the bytes published.
    fn write_pass(&self, tx: &mut TxState) -> Result<u32, Fatal> {
        let mut written: u32 = 0;
        loop {
            if !tx.writer.is_busy() {
                tx.writing = None;
                let Some((req, req_id)) = self.next_to_send() else {
                    return Ok(written);
                };
                let header = Header {
                    ty: req.ty,
                    req_id,
                    tx_id: req.tx_id,
                    len: req.payload.len() as u32,
                };
                if tx.writer.load_raw(&header, &req.payload).is_err() {
                    // Payloads are checked when requests are built; fail this one alone.
                    self.fail_request(req_id, EINVAL);
                    continue;
                }
                tx.writing = Some(req);
            }
            let mut n = self.write_some(tx)?;
            if n == 0 {
                // Full: say so before looking once more (see `has_work`).
                self.tx_stalled.store(true, Relaxed);
                self.page.full_barrier();
                n = self.write_some(tx)?;
                if n == 0 {
                    return Ok(written);
                }
            }
            self.tx_stalled.store(false, Relaxed);
            written = written.wrapping_add(n as u32);
            // `n` never exceeds what `pending()` offered.
            let _ = tx.writer.advance(n);
            if tx.writer.is_done() {
                tx.writer.reset();
                tx.writing = None;
            }
        }
    }

    /// Copies what the ring takes of the message being written.
    fn write_some(&self, tx: &TxState) -> Result<usize, Fatal> {
        ring_write(&self.page, tx.writer.pending()).map_err(|e| match e {
            RingError::BadIndexes { cons, prod } => Fatal::RequestIndexes { cons, prod },
        })
    }

    /// The next queued request and its wire `req_id`.
    fn next_to_send(&self) -> Option<(Arc<Request>, u32)> {
        let mut q = self.queue.lock();
        while let Some(slot) = q.to_send.pop() {
            let req_id = q.table.req_id(slot);
            if let (Some(id), Some(Some(req))) = (req_id, q.slots.get(slot)) {
                let req = req.clone();
                if let Some(sent) = q.on_wire.get_mut(slot) {
                    *sent = true;
                }
                return Some((req, id));
            }
        }
        None
    }

    /// Takes the request `req_id` out of the table, if it is there and on the wire.
    fn take_request(&self, req_id: u32) -> Option<Arc<Request>> {
        let mut q = self.queue.lock();
        let slot = q.table.lookup(req_id).ok()?;
        if !q.on_wire.get(slot).copied().unwrap_or(false) {
            return None;
        }
        q.table.free(slot);
        self.note_in_flight(&q);
        let req = q.slots.get_mut(slot).and_then(Option::take);
        if q.slot_waiters > 0 {
            self.slot_free.notify_all();
        }
        req
    }

    fn fail_request(&self, req_id: u32, err: Error) {
        if let Some(req) = self.take_request(req_id) {
            let _ = req.complete(Err(err));
        }
    }

    fn dispatch(&self, header: Header, payload: &[u8], sink: &dyn EventSink) {
        if header.ty == MsgType::WatchEvent.as_u32() {
            self.stats.watch_events.fetch_add(1, Relaxed);
            sink.watch_event(payload);
            return;
        }
        let Some(req) = self.take_request(header.req_id) else {
            self.stats.unknown_replies.fetch_add(1, Relaxed);
            warn_ratelimited!(
                self.unknown_limit,
                "dropped a reply for unknown req_id {} (type {}, {} bytes)\n",
                header.req_id,
                header.ty,
                header.len
            );
            return;
        };
        self.stats.replies.fetch_add(1, Relaxed);
        // One spare byte: C-API callers NUL-terminate the reply in place instead of copying it.
        let outcome = bytes::copy_with_room(payload, 1).map(|copy| Reply {
            ty: header.ty,
            payload: copy,
        });
        if let Completed::Orphaned(Some(reply)) = req.complete(outcome) {
            self.abort_orphaned_transaction(&req, &reply);
        }
    }

    /// A caller gave up on `TRANSACTION_START` but xenstored opened the transaction: end it,
    /// or it would count against the domain's transaction quota forever.
    fn abort_orphaned_transaction(&self, req: &Request, reply: &Reply) {
        let start = MsgType::TransactionStart.as_u32();
        if req.ty != start || reply.ty != start {
            return;
        }
        if let Ok(tx_id) = wire::transaction_id(&reply.payload) {
            self.abort_transaction_async(tx_id);
        }
    }

    /// Ends transaction `tx_id` with an abort, without waiting for the reply.
    pub(crate) fn abort_transaction_async(&self, tx_id: u32) {
        let Ok(mut payload) = KVec::with_capacity(2, GFP_KERNEL) else {
            return;
        };
        if payload.extend_from_slice(b"F\0", GFP_KERNEL).is_err() {
            return;
        }
        if let Ok(end) = Request::new(MsgType::TransactionEnd.as_u32(), tx_id, payload) {
            if self.try_submit(end).is_err() {
                pr_warn!("could not end orphaned transaction {}\n", tx_id);
            }
        }
    }

    /// Takes every request out of the table and sets the connection's `fatal` state; returns
    /// false (taking nothing) if `fatal` is an error and the connection already has one. The
    /// requests end up in `tx.spare_slots`, for [`Engine::complete_taken`].
    fn take_all(&self, tx: &mut TxState, fatal: Option<Fatal>) -> bool {
        let mut q = self.queue.lock();
        if fatal.is_some() && q.fatal.is_some() {
            return false;
        }
        q.fatal = fatal;
        self.failed.store(fatal.is_some(), Relaxed);
        q.to_send.clear();
        q.table.free_all();
        self.note_in_flight(&q);
        core::mem::swap(&mut q.slots, &mut tx.spare_slots);
        self.slot_free.notify_all();
        drop(q);
        tx.writer.reset();
        tx.writing = None;
        self.tx_stalled.store(false, Relaxed);
        true
    }

    /// Completes what [`Engine::take_all`] took with `err` (outside the queue lock: completing
    /// may deliver to a file), leaving the spare entries empty again.
    fn complete_taken(tx: &mut TxState, err: Error) {
        for entry in tx.spare_slots.iter_mut() {
            if let Some(req) = entry.take() {
                let _ = req.complete(Err(err));
            }
        }
    }

    /// Gives up the connection: every request fails with `EIO`, now and later. (A partial reply
    /// in `rx` stays until a resume resets the ring: nothing reads it before.)
    fn fail(&self, why: Fatal, tx: &mut TxState) {
        if !self.take_all(tx, Some(why)) {
            return;
        }
        match why {
            Fatal::ResponseIndexes { cons, prod } => pr_err!(
                "response ring indexes corrupt (cons {:#x}, prod {:#x}): xenstore unusable, requests fail with EIO\n",
                cons, prod
            ),
            Fatal::RequestIndexes { cons, prod } => pr_err!(
                "request ring indexes corrupt (cons {:#x}, prod {:#x}): xenstore unusable, requests fail with EIO\n",
                cons, prod
            ),
            Fatal::HeaderLength(len) => pr_err!(
                "message header announces {} bytes (max {}): xenstore unusable, requests fail with EIO\n",
                len, wire::PAYLOAD_MAX
            ),
            Fatal::ServerError(code) => pr_err!(
                "xenstored reports ring error {}: xenstore unusable, requests fail with EIO\n",
                code
            ),
        }
        Self::complete_taken(tx, EIO);
    }

    /// Starts over after a resume: no partial message survives, requests still in flight fail
    /// (xenstored forgot them), and the ring is usable again.
    pub(crate) fn reset_after_resume(&self) {
        let mut rx = self.rx.lock();
        let mut tx = self.tx.lock();
        rx.reader.reset();
        self.take_all(&mut tx, None);
        Self::complete_taken(&mut tx, EAGAIN);
    }

    /// Keeps the pump away from the ring (suspend) or lets it back. Pausing waits for a pass
    /// in progress to end. Requests left here by submitters (`tx_wanted`) are written by the
    /// pump that `xs_resume` and `xs_suspend_cancel` kick after unpausing.
    pub(crate) fn pause(&self, paused: bool) {
        self.paused.store(paused, Relaxed);
        drop(self.rx.lock());
        drop(self.tx.lock());
    }
}

/// Hooks for the KUnit tests (`tests.rs`).
#[cfg(CONFIG_XEN_XENBUS_CORE_RUST_KUNIT_TEST)]
impl<P: RingPage + Send + Sync> Engine<P> {
    /// Holds the request ring as a concurrent writer would, until the closure returns.
    pub(crate) fn with_tx_held_for_test<R>(&self, f: impl FnOnce() -> R) -> R {
        let _tx = self.tx.lock();
        f()
    }
}
