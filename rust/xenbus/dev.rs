// SPDX-License-Identifier: GPL-2.0

//! `/dev/xen/xenbus` (and `/proc/xen/xenbus` through xenfs): userspace's door to xenstore.
//!
//! Userspace writes raw `xsd_sockmsg` messages, in any number of `write()`s and several per
//! `write()`, and reads replies and watch events. As in the C device:
//!
//! - the buffer holds at most 4096 bytes including the 16-byte header: a header announcing more
//!   is `E2BIG`, a write that would overflow it is `EINVAL`, and the partial message is dropped;
//! - `WATCH`/`UNWATCH` are handled here: the kernel registers its own watch and hands events to
//!   the file with the user's token; the reply is a synthesized `OK`;
//! - transactions are tracked per file: a `tx_id` the file does not own gets an `ENOENT` error
//!   reply, a `TRANSACTION_END` body other than `T`/`F` an `EINVAL` one, and a transaction from
//!   before a suspend/resume `EAGAIN` on commit (an abort is answered `OK`);
//! - every other type is forwarded to xenstored with the user's `req_id` restored in the reply,
//!   except `RESET_WATCHES`, which would drop every watch of the kernel and is refused (`EACCES`).
//!
//! Bounds (the C device has none): [`MAX_OUTSTANDING`] requests in flight plus unread replies
//! (a writer beyond it waits, or gets `EAGAIN` with `O_NONBLOCK`: no reply is ever dropped),
//! [`MAX_QUEUED_EVENTS`] unread watch events (newer events are dropped and counted, like
//! FreeBSD's cap of 1000), [`MAX_WATCHES`] watches and [`MAX_TRANSACTIONS`] transactions per
//! file. Closing the file aborts its transactions and removes its watches; the memory itself
//! may be freed later on the ring thread, which never blocks for it.

use crate::{
    bytes,
    ratelimit::{warn_ratelimited, RateLimit},
    request::{Reply, ReplySink, Request, WaitMode},
    watch::{without_nul, WatchSink, Watches},
    xs::Store,
};
use kernel::{
    new_condvar, new_mutex, new_spinlock,
    prelude::*,
    sync::{
        atomic::{Acquire, Atomic, Relaxed, Release},
        poll::PollCondVarBox,
        Arc, ArcBorrow, CondVar, Mutex, SpinLock,
    },
    uaccess::{UserSliceReader, UserSliceWriter},
    xen::xenstore::proto::{
        errno::wire_body,
        wire::{self, Header, MsgType, HEADER_LEN},
    },
};

/// Requests in flight plus replies not yet read, per file.
pub(crate) const MAX_OUTSTANDING: usize = 128;
/// Watch events not yet read, per file.
pub(crate) const MAX_QUEUED_EVENTS: usize = 1000;
/// Watches per file.
pub(crate) const MAX_WATCHES: usize = 256;
/// Open transactions per file.
pub(crate) const MAX_TRANSACTIONS: usize = 64;
/// The message buffer: header and payload together, as the C device.
const BUFFER_MAX: usize = wire::PAYLOAD_MAX;
/// Bytes a reader copies out per pass over the queue (through a buffer on its stack).
const READ_CHUNK: usize = 256;

/// A message waiting to be read: the header apart from the body, so that a reply from xenstored
/// is queued with the payload it came in, without another allocation and copy.
struct Queued {
    header: [u8; HEADER_LEN],
    body: Body,
    is_event: bool,
}

enum Body {
    /// A reply's payload or a watch event.
    Owned(KVec<u8>),
    /// A reply the device makes itself (`OK`, an error name): nothing to allocate or free.
    Static(&'static [u8]),
}

impl Queued {
    fn new(header: Header, body: Body, is_event: bool) -> Self {
        Self {
            header: header.to_bytes(),
            body,
            is_event,
        }
    }

    fn body(&self) -> &[u8] {
        match &self.body {
            Body::Owned(v) => v,
            Body::Static(b) => b,
        }
    }

    fn len(&self) -> usize {
        HEADER_LEN + self.body().len()
    }

    /// The bytes from offset `at` to the end of the header or of the body.
    fn chunk(&self, at: usize) -> &[u8] {
        match at.checked_sub(HEADER_LEN) {
            None => self.header.get(at..).unwrap_or(&[]),
            Some(in_body) => self.body().get(in_body..).unwrap_or(&[]),
        }
    }
}

struct ReadQueue {
    items: KVec<Queued>,
    head: usize,
    /// Bytes of `items[head]` already read.
    cursor: usize,
    events: usize,
    outstanding: usize,
    dropped_events: u64,
    /// Writers waiting in `reserve_reply` (reading a reply wakes them only if there are any).
    space_waiters: u32,
}

struct UserWatch {
    slot: u32,
    generation: u32,
    path: KVec<u8>,
    token: KVec<u8>,
}

#[derive(Clone, Copy)]
struct Tx {
    /// 0 while the `TRANSACTION_START` reply is outstanding.
    id: u32,
    /// Resume generation when it started.
    generation: u64,
}

struct WriteState {
    buf: KVec<u8>,
    watches: KVec<UserWatch>,
}

/// One open `/dev/xen/xenbus`.
#[pin_data]
pub(crate) struct XsFile {
    store: Arc<Store>,
    watches: Arc<Watches>,
    #[pin]
    write: Mutex<WriteState>,
    #[pin]
    txs: SpinLock<KVec<Tx>>,
    #[pin]
    queue: Mutex<ReadQueue>,
    /// Held by a reader while it copies out (see [`XsFile::read`]).
    #[pin]
    read_turn: Mutex<()>,
    /// Readers and `poll` wait here (freed with `kfree_rcu`: dropping never blocks).
    readable: PollCondVarBox,
    #[pin]
    space: CondVar,
    #[pin]
    limit: RateLimit,
    closed: Atomic<bool>,
    /// Whether `queue` holds unread messages; written under its lock, read by `poll` without.
    has_data: Atomic<bool>,
}

/// Bytes per open file: the state itself, its poll wait queue and the write buffer.
pub(crate) const fn file_bytes() -> usize {
    core::mem::size_of::<XsFile>()
        + core::mem::size_of::<kernel::sync::poll::PollCondVar>()
        + BUFFER_MAX
}

/// An `ERROR` reply made here; an errno xenstore has no name for is reported as `EIO`.
fn error_reply(hdr: &Header, errno: Error) -> Queued {
    let body = wire_body(errno.to_errno()).unwrap_or(b"EIO\0");
    synthesized(MsgType::Error.as_u32(), hdr, body)
}

/// A reply made here rather than by xenstored; `body` includes its NUL.
fn synthesized(ty: u32, hdr: &Header, body: &'static [u8]) -> Queued {
    let h = Header {
        ty,
        req_id: hdr.req_id,
        tx_id: hdr.tx_id,
        len: body.len() as u32,
    };
    Queued::new(h, Body::Static(body), false)
}

impl XsFile {
    pub(crate) fn new(store: Arc<Store>, watches: Arc<Watches>) -> Result<Arc<Self>> {
        let buf = KVec::with_capacity(BUFFER_MAX, GFP_KERNEL)?;
        Arc::pin_init(
            try_pin_init!(Self {
                store,
                watches,
                write <- new_mutex!(WriteState { buf, watches: KVec::new() }, "xenbus_rs_file_write"),
                txs <- new_spinlock!(KVec::new(), "xenbus_rs_file_txs"),
                queue <- new_mutex!(ReadQueue {
                    items: KVec::new(),
                    head: 0,
                    cursor: 0,
                    events: 0,
                    outstanding: 0,
                    dropped_events: 0,
                    space_waiters: 0,
                }, "xenbus_rs_file_queue"),
                read_turn <- new_mutex!((), "xenbus_rs_file_read_turn"),
                readable: PollCondVarBox::new(c"xenbus_rs_file_readable", kernel::static_lock_class!())?,
                space <- new_condvar!("xenbus_rs_file_space"),
                limit <- RateLimit::new(),
                closed: Atomic::new(false),
                has_data: Atomic::new(false),
            }),
            GFP_KERNEL,
        )
    }

    /// Waits (interruptibly) for room for one more reply and takes it.
    fn reserve_reply(&self, nonblock: bool) -> Result {
        let mut q = self.queue.lock();
        while q.outstanding >= MAX_OUTSTANDING {
            if nonblock {
                return Err(EAGAIN);
            }
            q.space_waiters += 1;
            let interrupted = self.space.wait_interruptible(&mut q);
            q.space_waiters -= 1;
            if interrupted {
                return Err(ERESTARTSYS);
            }
        }
        q.outstanding += 1;
        Ok(())
    }

    fn unreserve_reply(&self) {
        let mut q = self.queue.lock();
        q.outstanding = q.outstanding.saturating_sub(1);
        self.space.notify_all();
    }

    /// Queues a reply whose slot was reserved.
    fn push_reply(&self, reply: Queued) {
        let mut q = self.queue.lock();
        if q.items.push(reply, GFP_KERNEL).is_err() {
            q.outstanding = q.outstanding.saturating_sub(1);
            warn_ratelimited!(self.limit, "dropped a reply: out of memory\n");
            return;
        }
        self.has_data.store(true, Release);
        self.readable.notify_all();
    }

    /// `write()`: buffers bytes and acts on every complete message.
    pub(crate) fn write(&self, reader: UserSliceReader, nonblock: bool) -> Result<usize> {
        let len = reader.len();
        let mut w = self.write.lock();
        if len == 0 {
            return Ok(0);
        }
        if len > BUFFER_MAX - w.buf.len() {
            w.buf.clear();
            return Err(EINVAL);
        }
        // Within the capacity reserved at open: no allocation, and no zeroing first.
        reader.read_all(&mut w.buf, GFP_KERNEL)?;
        loop {
            let Some(hdr) = Header::from_slice(&w.buf) else {
                return Ok(len); // Not even the header yet.
            };
            let total = HEADER_LEN.saturating_add(hdr.len as usize);
            if total > BUFFER_MAX {
                w.buf.clear();
                return Err(E2BIG);
            }
            if w.buf.len() < total {
                return Ok(len);
            }
            let result = self.act(&mut w, &hdr, total, nonblock);
            // The message is consumed whatever happened to it; keep what follows it.
            let rest = w.buf.len() - total;
            w.buf.copy_within(total.., 0);
            w.buf.truncate(rest);
            if let Err(e) = result {
                w.buf.clear();
                return Err(e);
            }
        }
    }

    fn act(&self, w: &mut WriteState, hdr: &Header, total: usize, nonblock: bool) -> Result {
        self.reserve_reply(nonblock)?;
        let result = match MsgType::from_u32(hdr.ty) {
            Some(MsgType::Watch) | Some(MsgType::Unwatch) => self.watch_command(w, hdr, total),
            _ => self.forward(hdr, w.buf.get(HEADER_LEN..total).unwrap_or(&[])),
        };
        if result.is_err() {
            self.unreserve_reply();
        }
        result
    }

    fn reply_now(&self, reply: Queued) -> Result {
        self.push_reply(reply);
        Ok(())
    }

    fn watch_command(&self, w: &mut WriteState, hdr: &Header, total: usize) -> Result {
        let WriteState { buf, watches } = w;
        let body = buf.get(HEADER_LEN..total).unwrap_or(&[]);
        let mut parts = body.splitn(3, |&b| b == 0);
        let (path, token, rest) = (parts.next(), parts.next(), parts.next());
        // Both strings must be NUL-terminated inside the payload.
        let (Some(path), Some(token), Some(_)) = (path, token, rest) else {
            return self.reply_now(error_reply(hdr, EINVAL));
        };
        if hdr.ty == MsgType::Watch.as_u32() {
            if watches.len() >= MAX_WATCHES {
                return self.reply_now(error_reply(hdr, ENOSPC));
            }
            let sink: Arc<dyn WatchSink> = self.self_arc()?;
            let (slot, generation) = self
                .watches
                .register_user(&*self.store, sink, path, token)?;
            let mut p = KVec::new();
            let mut t = KVec::new();
            let stored = p
                .extend_from_slice(path, GFP_KERNEL)
                .and_then(|()| t.extend_from_slice(token, GFP_KERNEL))
                .and_then(|()| {
                    watches.push(
                        UserWatch {
                            slot,
                            generation,
                            path: p,
                            token: t,
                        },
                        GFP_KERNEL,
                    )
                });
            if stored.is_err() {
                self.watches.unregister(&*self.store, slot, generation);
                return Err(ENOMEM);
            }
        } else if let Some(i) = watches
            .iter()
            .position(|uw| uw.path == path && uw.token == token)
        {
            let uw = watches.remove(i).map_err(|_| EINVAL)?;
            self.watches
                .unregister(&*self.store, uw.slot, uw.generation);
        }
        self.reply_now(synthesized(hdr.ty, hdr, b"OK\0"))
    }

    /// Checks a message as the C device does (in its order) and sends it to xenstored, or
    /// answers it here. `body` is copied only when it goes to xenstored.
    fn forward(&self, hdr: &Header, body: &[u8]) -> Result {
        let ty = MsgType::from_u32(hdr.ty);
        if ty == Some(MsgType::ResetWatches) {
            return self.reply_now(error_reply(hdr, EACCES));
        }
        if ty == Some(MsgType::TransactionStart) {
            let generation = self.store.gate.generation();
            let mut txs = self.txs.lock();
            if txs.len() >= MAX_TRANSACTIONS {
                drop(txs);
                return self.reply_now(error_reply(hdr, ENOSPC));
            }
            txs.push(Tx { id: 0, generation }, GFP_ATOMIC)?;
        } else if hdr.tx_id != 0 && !self.txs.lock().iter().any(|t| t.id == hdr.tx_id) {
            return self.reply_now(error_reply(hdr, ENOENT));
        } else if ty == Some(MsgType::TransactionEnd) {
            let generation = self.store.gate.generation();
            let commit = match body {
                b"T\0" => true,
                b"F\0" => false,
                _ => return self.reply_now(error_reply(hdr, EINVAL)),
            };
            let mut txs = self.txs.lock();
            let stale = txs
                .iter()
                .position(|t| t.id == hdr.tx_id && t.generation != generation);
            if let Some(i) = stale.filter(|_| hdr.tx_id != 0) {
                let _ = txs.remove(i);
                drop(txs);
                return if commit {
                    self.reply_now(error_reply(hdr, EAGAIN))
                } else {
                    self.reply_now(synthesized(hdr.ty, hdr, b"OK\0"))
                };
            }
        }
        let submitted = (|| {
            let payload = bytes::copy_with_room(body, 0)?;
            let sink: Arc<dyn ReplySink> = self.self_arc()?;
            self.store
                .submit_user(hdr.ty, hdr.tx_id, payload, sink, hdr.req_id)
        })();
        if submitted.is_err() && ty == Some(MsgType::TransactionStart) {
            let mut txs = self.txs.lock();
            if let Some(i) = txs.iter().position(|t| t.id == 0) {
                let _ = txs.remove(i);
            }
        }
        submitted
    }

    /// `read()`: copies queued messages out; blocks unless `nonblock`.
    ///
    /// The queue's lock is never held across a copy to userspace, which can wait on slow
    /// memory (a FUSE or userfaultfd mapping) for as long as its owner likes: the ring thread
    /// queues replies and watch events for this file under that lock and must never wait for
    /// one reader. Bytes go through a small buffer instead, and `read_turn` keeps the
    /// readers of one file from interleaving (as the C device's `reply_mutex` does).
    pub(crate) fn read(&self, mut writer: UserSliceWriter, nonblock: bool) -> Result<usize> {
        let want = writer.len();
        let mut bounce = [0u8; READ_CHUNK];
        loop {
            let turn = self.read_turn.lock();
            let mut q = self.queue.lock();
            if q.head >= q.items.len() {
                // Wait without the turn, so that every waiting reader can be interrupted.
                drop(turn);
                if nonblock {
                    return Err(EAGAIN);
                }
                if self.readable.wait_interruptible(&mut q) {
                    return Err(ERESTARTSYS);
                }
                continue;
            }
            let mut done = 0;
            while done < want {
                let Some(item) = q.items.get(q.head) else {
                    break;
                };
                let chunk = item.chunk(q.cursor);
                let n = chunk.len().min(want - done).min(READ_CHUNK);
                let (Some(out), Some(src)) = (bounce.get_mut(..n), chunk.get(..n)) else {
                    break;
                };
                out.copy_from_slice(src);
                drop(q);
                if let Err(e) = writer.write_slice(out) {
                    return if done == 0 { Err(e) } else { Ok(done) };
                }
                done += n;
                // Only readers move the front, and they take turns: it is still the same.
                q = self.queue.lock();
                self.consume(&mut q, n);
            }
            return Ok(done);
        }
    }

    /// Marks `n` bytes at the front of the queue as read.
    fn consume(&self, q: &mut ReadQueue, n: usize) {
        let Some(item) = q.items.get(q.head) else {
            return;
        };
        let (item_len, was_event) = (item.len(), item.is_event);
        q.cursor += n;
        if q.cursor >= item_len {
            q.head += 1;
            q.cursor = 0;
            if was_event {
                q.events -= 1;
            } else {
                q.outstanding = q.outstanding.saturating_sub(1);
                if q.space_waiters > 0 {
                    self.space.notify_all();
                }
            }
        }
        if q.head >= q.items.len() {
            q.items.clear();
            q.head = 0;
            self.has_data.store(false, Relaxed);
        } else if q.head >= 64 {
            // Frees the items already read; the unread ones keep their order.
            let head = q.head;
            let mut index = 0;
            q.items.retain(|_| {
                index += 1;
                index > head
            });
            q.head = 0;
        }
    }

    /// Whether a `read()` would not block (for `poll`, without taking the queue's lock).
    pub(crate) fn readable(&self) -> bool {
        self.has_data.load(Acquire)
    }

    pub(crate) fn poll_condvar(&self) -> &kernel::sync::poll::PollCondVar {
        &self.readable
    }

    /// `release()`: aborts this file's transactions and removes its watches.
    pub(crate) fn close(&self) {
        self.closed.store(true, Release);
        let watches = core::mem::take(&mut self.write.lock().watches);
        for uw in watches.iter() {
            self.watches
                .unregister(&*self.store, uw.slot, uw.generation);
        }
        // Open transactions are ended here; starts still in flight stay listed, and their
        // reply (see `deliver`) aborts what they opened.
        let mut open = KVec::new();
        {
            let mut txs = self.txs.lock();
            txs.retain(|t| {
                if t.id != 0 {
                    let _ = open.push(t.id, GFP_ATOMIC);
                }
                t.id == 0
            });
        }
        for &id in open.iter() {
            let mut payload = KVec::new();
            if payload.extend_from_slice(b"F\0", GFP_KERNEL).is_ok() {
                let _ = self.store.call_raw(
                    MsgType::TransactionEnd,
                    id,
                    payload,
                    WaitMode::Uninterruptible,
                    false,
                );
            }
        }
        let mut q = self.queue.lock();
        q.items.clear();
        q.head = 0;
        q.cursor = 0;
        q.events = 0;
        self.has_data.store(false, Relaxed);
        self.space.notify_all();
    }

    /// A reference to ourselves for sinks (the file is always in an `Arc`).
    fn self_arc(&self) -> Result<Arc<Self>> {
        // SAFETY: Every `XsFile` is created in an `Arc` (see `new`) and `self` is borrowed from a
        // live one, so the count stays above zero while the borrow exists.
        let borrowed = unsafe { ArcBorrow::from_raw(self) };
        Ok(borrowed.into())
    }
}

impl ReplySink for XsFile {
    fn deliver(&self, req: &Request, outcome: Result<Reply>) {
        let closed = self.closed.load(Acquire);
        let start = MsgType::TransactionStart.as_u32();
        // Bookkeeping under the spinlock; an abort (which allocates) only after dropping it.
        let mut abort = None;
        if req.ty == start || req.ty == MsgType::TransactionEnd.as_u32() {
            let mut txs = self.txs.lock();
            // Read again under the lock that `close` takes after setting it: either `close`
            // finds the id recorded here and ends the transaction, or we see the file closed
            // and abort it ourselves.
            let closed = self.closed.load(Acquire);
            if req.ty == start {
                let opened = match &outcome {
                    Ok(r) if r.ty == start => wire::transaction_id(&r.payload).ok(),
                    _ => None,
                };
                let pending = txs.iter().position(|t| t.id == 0);
                match (opened, pending) {
                    (Some(id), Some(i)) if !closed => {
                        if let Some(tx) = txs.get_mut(i) {
                            tx.id = id;
                        }
                    }
                    // Nobody will end it (the file is closed, or it was not tracked): abort
                    // it, or it counts against the domain's transaction quota forever.
                    (Some(id), pending) => {
                        if let Some(i) = pending {
                            let _ = txs.remove(i);
                        }
                        abort = Some(id);
                    }
                    (None, Some(i)) => {
                        let _ = txs.remove(i);
                    }
                    (None, None) => {}
                }
            } else if req.tx_id != 0 {
                // (An END with tx_id 0 belongs to no transaction; pending starts have id 0.)
                if let Some(i) = txs.iter().position(|t| t.id == req.tx_id) {
                    let _ = txs.remove(i);
                }
            }
        }
        if let Some(id) = abort {
            self.store.engine.abort_transaction_async(id);
        }
        self.store.user_done();
        if closed {
            return;
        }
        let hdr = Header {
            ty: req.ty,
            req_id: req.cookie,
            tx_id: req.tx_id,
            len: 0,
        };
        let msg = match outcome {
            Ok(reply) => {
                let h = Header {
                    ty: reply.ty,
                    len: reply.payload.len() as u32,
                    ..hdr
                };
                Queued::new(h, Body::Owned(reply.payload), false)
            }
            Err(e) => error_reply(&hdr, e),
        };
        self.push_reply(msg);
    }
}

impl WatchSink for XsFile {
    fn event(&self, path: &[u8], user_token: &[u8]) {
        if self.closed.load(Relaxed) {
            return;
        }
        let token = without_nul(user_token);
        let mut body = KVec::new();
        let built = body
            .reserve(path.len() + token.len() + 2, GFP_KERNEL)
            .map_err(Error::from)
            .and_then(|()| bytes::append(&mut body, path))
            .and_then(|()| body.push(0, GFP_KERNEL).map_err(Error::from))
            .and_then(|()| bytes::append(&mut body, token))
            .and_then(|()| body.push(0, GFP_KERNEL).map_err(Error::from));
        if built.is_err() {
            warn_ratelimited!(self.limit, "dropped a watch event: out of memory\n");
            return;
        }
        let h = Header {
            ty: MsgType::WatchEvent.as_u32(),
            req_id: 0,
            tx_id: 0,
            len: body.len() as u32,
        };
        let mut q = self.queue.lock();
        if q.events >= MAX_QUEUED_EVENTS {
            q.dropped_events += 1;
            let dropped = q.dropped_events;
            drop(q);
            warn_ratelimited!(
                self.limit,
                "a reader of /dev/xen/xenbus is {} watch events behind: dropped one (total {})\n",
                MAX_QUEUED_EVENTS,
                dropped
            );
            return;
        }
        let event = Queued::new(h, Body::Owned(body), true);
        if q.items.push(event, GFP_KERNEL).is_ok() {
            q.events += 1;
            self.has_data.store(true, Release);
            self.readable.notify_all();
        }
    }
}
