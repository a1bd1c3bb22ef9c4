// SPDX-License-Identifier: GPL-2.0

//! Xenstore operations: build a request, send it, wait, turn the reply into a result.
//!
//! Errors are the protocol's error strings mapped to errno exactly as `xsd_errors` lists them; a
//! reply of an unexpected type is `EINVAL` (as in the C core). The suspend gate counts requests
//! in flight and open kernel transactions, so that `xs_suspend` can wait for them to finish.

use crate::{
    bytes,
    comms::{Engine, Peer},
    ratelimit::{warn_ratelimited, RateLimit},
    request::{Reply, ReplySink, Request, WaitMode},
    ring::SharedRing,
    watch::WatchWire,
};
use kernel::{
    bindings, new_condvar, new_spinlock, new_spinlock_irq,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, CondVar, SpinLock, SpinLockIrq,
    },
    xen::xenstore::proto::wire::{self, MsgType, Part, Perm},
};

/// Wakes the ring I/O thread (from interrupt context too).
#[pin_data]
pub(crate) struct IoWake {
    #[pin]
    kicked: SpinLockIrq<bool>,
    #[pin]
    cond: CondVar,
    /// The interrupt fired and its event channel waits to be unmasked (late EOI).
    eoi_owed: Atomic<bool>,
}

impl IoWake {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            kicked <- new_spinlock_irq!(false, "xenbus_rs_kick"),
            cond <- new_condvar!("xenbus_rs_io_wait"),
            eoi_owed: Atomic::new(false),
        })
    }

    /// The event channel's interrupt fired: its EOI is owed (whoever pumps next pays it).
    pub(crate) fn owe_eoi(&self) {
        self.eoi_owed.store(true, Relaxed);
    }

    /// Whether an EOI is owed; clears the debt.
    pub(crate) fn take_eoi(&self) -> bool {
        self.eoi_owed.xchg(false, Relaxed)
    }

    /// Asks the I/O thread to look at the ring and the queue.
    pub(crate) fn kick(&self) {
        *self.kicked.lock() = true;
        self.cond.notify_one();
    }

    /// Sleeps until kicked (interruptibly: the I/O thread is a kernel thread without signals,
    /// and an idle one must not look hung).
    pub(crate) fn wait(&self) {
        let mut kicked = self.kicked.lock();
        while !*kicked {
            let _ = self.cond.wait_interruptible(&mut kicked);
        }
        *kicked = false;
    }
}

/// The one caller at a time that reads the ring for its own reply (see
/// `Core::await_reply`): while it sits, the store interrupt wakes it instead of the I/O thread,
/// which saves a thread hop on every round trip.
#[pin_data]
pub(crate) struct ReaderSeat {
    /// The seated caller's request, kicked from the interrupt (an irq-safe lock for that).
    #[pin]
    seated: SpinLockIrq<Option<Arc<Request>>>,
}

impl ReaderSeat {
    fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            seated <- new_spinlock_irq!(None, "xenbus_rs_reader_seat"),
        })
    }

    /// Takes the seat for the caller waiting for `req`, unless another caller has it.
    pub(crate) fn try_sit(&self, req: &Arc<Request>) -> bool {
        let mut seated = self.seated.lock();
        if seated.is_some() {
            return false;
        }
        *seated = Some(req.clone());
        true
    }

    /// Gives the seat up; returns the request to drop outside the lock.
    pub(crate) fn leave(&self) -> Option<Arc<Request>> {
        self.seated.lock().take()
    }

    /// From the store interrupt: wakes the seated caller; false if nobody sits.
    pub(crate) fn kick(&self) -> bool {
        match &*self.seated.lock() {
            Some(req) => {
                req.kick();
                true
            }
            None => false,
        }
    }
}

struct GateState {
    users: u32,
    suspending: bool,
    generation: u64,
}

/// Requests in flight plus open kernel transactions, and the suspend flag.
///
/// Every request passes it twice, once on the ring I/O thread (userspace replies): a spinlock,
/// as the C core's `xs_state_lock`, so that a preempted holder never puts others to sleep.
#[pin_data]
pub(crate) struct Gate {
    #[pin]
    state: SpinLock<GateState>,
    #[pin]
    changed: CondVar,
}

impl Gate {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            state <- new_spinlock!(GateState { users: 0, suspending: false, generation: 0 }, "xenbus_rs_gate"),
            changed <- new_condvar!("xenbus_rs_gate_changed"),
        })
    }

    pub(crate) fn enter(&self, counts_transaction: bool) {
        let mut st = self.state.lock();
        // While a suspend waits, new requests wait too, unless others are still in flight
        // (they may be the steps of an open transaction that must finish first).
        while st.suspending && st.users == 0 {
            self.changed.wait(&mut st);
        }
        st.users = st
            .users
            .saturating_add(if counts_transaction { 2 } else { 1 });
    }

    pub(crate) fn exit(&self, release: u32) {
        let mut st = self.state.lock();
        st.users = st.users.saturating_sub(release);
        // Only a suspend waits for the count to reach zero (and requests wait only during one).
        if st.users == 0 && st.suspending {
            self.changed.notify_all();
        }
    }

    /// Blocks new requests and waits for the ones in flight and for open transactions.
    pub(crate) fn suspend(&self) {
        let mut st = self.state.lock();
        st.suspending = true;
        while st.users > 0 {
            self.changed.wait(&mut st);
        }
    }

    /// Lets requests through again; `new_generation` marks a real resume.
    pub(crate) fn release(&self, new_generation: bool) {
        let mut st = self.state.lock();
        st.suspending = false;
        if new_generation {
            st.generation = st.generation.wrapping_add(1);
        }
        self.changed.notify_all();
    }

    /// Increases with every resume (transactions from before a resume are gone).
    pub(crate) fn generation(&self) -> u64 {
        self.state.lock().generation
    }

    /// Requests in flight and open kernel transactions (for the KUnit cases).
    #[cfg(CONFIG_XEN_XENBUS_CORE_RUST_KUNIT_TEST)]
    pub(crate) fn users_for_test(&self) -> u32 {
        self.state.lock().users
    }
}

/// A xenstore connection: the ring engine, the event channel to xenstored, the I/O wake-up and
/// the suspend gate.
#[pin_data]
pub(crate) struct Store {
    pub(crate) engine: Arc<Engine<SharedRing>>,
    /// Our end of the store event channel (0 until bound; renumbered by a resume).
    pub(crate) evtchn: Atomic<u32>,
    #[pin]
    pub(crate) wake: IoWake,
    #[pin]
    pub(crate) reader: ReaderSeat,
    #[pin]
    pub(crate) gate: Gate,
    #[pin]
    limit: RateLimit,
}

/// A reply payload, or the errno xenstored (or the ring) answered with.
pub(crate) type XsResult = Result<KVec<u8>>;

impl Store {
    pub(crate) fn new(engine: Arc<Engine<SharedRing>>, evtchn: u32) -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Self {
                engine,
                evtchn: Atomic::new(evtchn),
                wake <- IoWake::new(),
                reader <- ReaderSeat::new(),
                gate <- Gate::new(),
                limit <- RateLimit::new(),
            }),
            GFP_KERNEL,
        )
    }

    /// Sends `req` in transaction `tx` and returns the reply payload.
    pub(crate) fn call(&self, req: &wire::Request<'_>, tx: u32, mode: WaitMode) -> XsResult {
        let ty = req.msg_type();
        let mut payload = bytes::zeroed(req.payload_len())?;
        req.encode_payload(&mut payload).map_err(|_| EINVAL)?;
        self.call_raw(ty, tx, payload, mode, true)
    }

    /// Sends an already encoded payload. `kernel_tx` says whether a `TRANSACTION_START` opens a
    /// transaction that holds off suspend until its `TRANSACTION_END` (kernel callers), or not
    /// (userspace, whose transactions become stale across a resume instead).
    pub(crate) fn call_raw(
        &self,
        ty: MsgType,
        tx: u32,
        payload: KVec<u8>,
        mode: WaitMode,
        kernel_tx: bool,
    ) -> XsResult {
        let opens_tx = kernel_tx && ty == MsgType::TransactionStart;
        self.gate.enter(opens_tx);
        let outcome = self.send_and_wait(ty, tx, payload, mode);
        let mut release = 1;
        match (&outcome, ty) {
            // A transaction that did not open gives back its extra count right away.
            (Err(_), MsgType::TransactionStart) if opens_tx => release += 1,
            // Ending a kernel transaction gives it back (unless xenstored did not know it).
            (r, MsgType::TransactionEnd) if kernel_tx && !matches!(r, Err(e) if *e == ENOENT) => {
                release += 1
            }
            _ => {}
        }
        self.gate.exit(release);
        outcome
    }

    /// Sends a request from userspace without waiting: the outcome goes to `sink` (tagged
    /// with `cookie`), which must call [`Store::user_done`] once it has it. Waits (killably)
    /// only for a free request slot.
    pub(crate) fn submit_user(
        &self,
        ty: u32,
        tx: u32,
        payload: KVec<u8>,
        sink: Arc<dyn ReplySink>,
        cookie: u32,
    ) -> Result {
        if payload.len() > wire::PAYLOAD_MAX {
            return Err(E2BIG);
        }
        self.gate.enter(false);
        let submitted = Request::with_sink(ty, tx, payload, Some(sink), cookie)
            .and_then(|req| self.engine.submit(req, WaitMode::Killable));
        match submitted {
            Ok(()) => {
                self.send_queued();
                Ok(())
            }
            Err(e) => {
                self.gate.exit(1);
                Err(e)
            }
        }
    }

    /// A userspace request got its outcome (see [`Store::submit_user`]).
    pub(crate) fn user_done(&self) {
        self.gate.exit(1);
    }

    fn send_and_wait(&self, ty: MsgType, tx: u32, payload: KVec<u8>, mode: WaitMode) -> XsResult {
        if payload.len() > wire::PAYLOAD_MAX {
            return Err(E2BIG);
        }
        let req = Request::new(ty.as_u32(), tx, payload)?;
        self.engine.submit(req.clone(), mode)?;
        self.send_queued();
        let reply = match crate::connection::get() {
            Some(core) if core::ptr::eq(&*core.store, self) => core.await_reply(&req, mode)?,
            // A store of the KUnit tests, pumped by the test itself.
            _ => req.wait(mode)?,
        };
        self.check_reply(ty, reply)
    }

    /// Sends queued requests from here if the ring is free, else leaves them to the I/O thread.
    fn send_queued(&self) {
        if self.engine.send_now(self) {
            self.wake.kick();
        }
    }

    /// Turns a reply into the caller's result: `ERROR` replies into their errno, a reply of
    /// another type than the request's into `EINVAL`.
    pub(crate) fn check_reply(&self, ty: MsgType, reply: Reply) -> XsResult {
        if reply.ty == MsgType::Error.as_u32() {
            let err = wire::error_of(&reply.payload);
            if !err.is_known() {
                warn_ratelimited!(
                    self.limit,
                    "xenstored gave an unknown error, treating it as EINVAL\n"
                );
            }
            return Err(Error::from_errno(-err.errno()));
        }
        if reply.ty != ty.as_u32() {
            warn_ratelimited!(
                self.limit,
                "unexpected reply type {}, expected {}\n",
                reply.ty,
                ty.as_u32()
            );
            return Err(EINVAL);
        }
        Ok(reply.payload)
    }

    pub(crate) fn read(&self, tx: u32, path: &[u8], mode: WaitMode) -> XsResult {
        self.call(&wire::Request::read(path), tx, mode)
    }

    pub(crate) fn write(&self, tx: u32, path: &[u8], value: &[u8], mode: WaitMode) -> Result {
        self.call(&wire::Request::write(path, value), tx, mode)
            .map(drop)
    }

    pub(crate) fn get_perms(&self, tx: u32, path: &[u8], mode: WaitMode) -> XsResult {
        self.call(&wire::Request::get_perms(path), tx, mode)
    }

    pub(crate) fn set_perms(&self, tx: u32, path: &[u8], perms: &[Perm], mode: WaitMode) -> Result {
        let req = wire::Request::new(MsgType::SetPerms, &[Part::Str(path), Part::Perms(perms)])
            .map_err(|_| EINVAL)?;
        self.call(&req, tx, mode).map(drop)
    }

    pub(crate) fn get_domain_path(&self, domid: u32, mode: WaitMode) -> XsResult {
        self.call(&wire::Request::get_domain_path(domid), 0, mode)
    }

    /// Starts a transaction; returns its id.
    pub(crate) fn transaction_start(&self, mode: WaitMode) -> Result<u32> {
        let reply = self.call(&wire::Request::transaction_start(), 0, mode)?;
        self.opened_transaction(&reply)
    }

    /// The id in the payload of a kernel caller's `TRANSACTION_START` reply.
    pub(crate) fn opened_transaction(&self, payload: &[u8]) -> Result<u32> {
        wire::transaction_id(payload).map_err(|_| {
            // Nobody ends a transaction whose id they never got: give back the count that
            // `call_raw` keeps for it, or the next suspend would wait for it forever.
            self.gate.exit(1);
            EIO
        })
    }

    /// Commits (`commit`) or aborts a transaction; a conflict is `EAGAIN`.
    pub(crate) fn transaction_end(&self, tx: u32, commit: bool, mode: WaitMode) -> Result {
        self.call(&wire::Request::transaction_end(commit), tx, mode)
            .map(drop)
    }

    pub(crate) fn reset_watches(&self) -> Result {
        self.call(
            &wire::Request::reset_watches(),
            0,
            WaitMode::Uninterruptible,
        )
        .map(drop)
    }

    /// The children of `path` as `name\0name\0...`. Directories whose listing does not fit in
    /// one reply (xenstored answers `E2BIG`) are read with `DIRECTORY_PART`, restarting when the
    /// directory changes between parts.
    pub(crate) fn directory(&self, tx: u32, path: &[u8], mode: WaitMode) -> XsResult {
        match self.call(&wire::Request::directory(path), tx, mode) {
            Err(e) if e == E2BIG => self.directory_in_parts(tx, path, mode),
            other => {
                let reply = other?;
                // Every name must be NUL-terminated (Linux's split_strings rejects it too).
                if reply.last().is_some_and(|&b| b != 0) {
                    return Err(EIO);
                }
                Ok(reply)
            }
        }
    }

    fn directory_in_parts(&self, tx: u32, path: &[u8], mode: WaitMode) -> XsResult {
        const ATTEMPTS: u32 = 8;
        const MAX_TOTAL: usize = 1 << 20;
        'attempt: for _ in 0..ATTEMPTS {
            let mut all = KVec::new();
            let mut offset: u32 = 0;
            let mut generation = None;
            loop {
                let reply = self.call(&wire::Request::directory_part(path, offset), tx, mode)?;
                let part = wire::directory_part(&reply).map_err(|_| EIO)?;
                match generation {
                    None => generation = Some(part.gencnt),
                    Some(g) if g != part.gencnt => continue 'attempt,
                    Some(_) => {}
                }
                for child in part.children {
                    bytes::append(&mut all, child)?;
                    all.push(0, GFP_KERNEL)?;
                }
                if all.len() > MAX_TOTAL {
                    return Err(E2BIG);
                }
                if part.complete {
                    return Ok(all);
                }
                offset = offset
                    .checked_add(u32::try_from(part.consumed).map_err(|_| EIO)?)
                    .ok_or(EIO)?;
            }
        }
        Err(EAGAIN)
    }
}

impl Peer for Store {
    fn notify(&self) {
        let port = self.evtchn.load(Relaxed);
        if port != 0 {
            // SAFETY: Sending on our own store event channel has no memory-safety preconditions.
            unsafe { bindings::notify_remote_via_evtchn(port) };
        }
    }
}

impl WatchWire for Store {
    fn watch(&self, path: &[u8], token: &[u8]) -> Result {
        self.call(
            &wire::Request::watch(path, token),
            0,
            WaitMode::Uninterruptible,
        )
        .map(drop)
    }

    fn unwatch(&self, path: &[u8], token: &[u8]) -> Result {
        self.call(
            &wire::Request::unwatch(path, token),
            0,
            WaitMode::Uninterruptible,
        )
        .map(drop)
    }
}
