// SPDX-License-Identifier: GPL-2.0

//! One xenstore request and its reply.
//!
//! A request is shared (`Arc`) between the caller waiting for the reply and the ring I/O side
//! that sends it and delivers the reply. Each side holds its own reference while it touches the
//! request, so delivering a reply (which wakes the caller) can never race with the caller
//! freeing it: the C core's CVE-2025-37949 (`process_msg` touching a request after waking its
//! owner, who had already freed it) cannot happen here.

use kernel::{
    new_condvar, new_spinlock_irq,
    prelude::*,
    sync::{Arc, CondVar, SpinLockIrq},
};

/// A reply as it came from the ring: type and payload (copied out of the shared page).
pub(crate) struct Reply {
    /// Message type of the reply (`XS_ERROR` or the request's type, if xenstored behaves).
    pub(crate) ty: u32,
    /// The payload, without any terminator added.
    pub(crate) payload: KVec<u8>,
}

/// How a caller waits for its reply.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitMode {
    /// Like the C core: uninterruptible, no timeout (the C ABI promises this).
    Uninterruptible,
    /// A fatal signal ends the wait with `EINTR`; the request stays in flight and its reply
    /// is discarded when it arrives.
    Killable,
}

enum ReqState {
    /// Queued or on the wire.
    Pending,
    /// Reply (or failure) delivered and not yet collected.
    Done(Result<Reply>),
    /// Collected by the caller.
    Collected,
    /// The caller gave up waiting (fatal signal); the reply will be dropped.
    Abandoned,
}

/// The state and whether the store interrupt kicked the waiter (see [`Request::kick`]).
struct Slot {
    state: ReqState,
    kicked: bool,
}

/// Why [`Request::wait_or_kick`] returned.
pub(crate) enum ReaderWake {
    /// The outcome is in (and now collected).
    Outcome(Result<Reply>),
    /// The store interrupt fired: the ring may hold the reply.
    Kicked,
    /// A fatal signal ended a killable wait; the request is still pending.
    Killed,
}

/// Receives the outcome of a request nobody waits for (a request from `/dev/xen/xenbus`).
pub(crate) trait ReplySink: Send + Sync {
    /// Called once, from the ring I/O thread, with the request and its outcome.
    fn deliver(&self, req: &Request, outcome: Result<Reply>);
}

/// What the delivering side has to do after completing a request.
pub(crate) enum Completed {
    /// Nothing more: the caller will collect the reply.
    Delivered,
    /// Nobody is waiting any more. If this was a successful `TRANSACTION_START`, the
    /// transaction it opened must be aborted so that it does not leak in xenstored.
    Orphaned(Option<Reply>),
}

/// A xenstore request.
#[pin_data]
pub(crate) struct Request {
    /// Message type (raw: userspace may send types this side does not know).
    pub(crate) ty: u32,
    /// Transaction id (0 for none).
    pub(crate) tx_id: u32,
    /// Encoded payload.
    pub(crate) payload: KVec<u8>,
    /// Where the outcome goes when nobody waits for it.
    sink: Option<Arc<dyn ReplySink>>,
    /// Opaque to the core; the sink's own tag (the user's `req_id` for the device).
    pub(crate) cookie: u32,
    /// An irq-safe lock: the store interrupt kicks a caller that reads the ring itself.
    #[pin]
    state: SpinLockIrq<Slot>,
    #[pin]
    done: CondVar,
}

impl Request {
    /// Creates a request; `payload` is already encoded (see `proto::wire::Request`).
    pub(crate) fn new(ty: u32, tx_id: u32, payload: KVec<u8>) -> Result<Arc<Self>> {
        Self::with_sink(ty, tx_id, payload, None, 0)
    }

    /// Creates a request whose outcome goes to `sink` instead of a waiter.
    pub(crate) fn with_sink(
        ty: u32,
        tx_id: u32,
        payload: KVec<u8>,
        sink: Option<Arc<dyn ReplySink>>,
        cookie: u32,
    ) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                ty,
                tx_id,
                payload,
                sink,
                cookie,
                state <- new_spinlock_irq!(
                    Slot { state: ReqState::Pending, kicked: false },
                    "xenbus_rs_request"
                ),
                done <- new_condvar!("xenbus_rs_request_done"),
            }),
            GFP_KERNEL,
        )
    }

    /// Delivers the outcome. Only the first delivery counts.
    pub(crate) fn complete(&self, outcome: Result<Reply>) -> Completed {
        if let Some(sink) = &self.sink {
            let first = {
                let mut slot = self.state.lock();
                let first = matches!(slot.state, ReqState::Pending);
                slot.state = ReqState::Collected;
                first
            };
            if first {
                sink.deliver(self, outcome);
            }
            return Completed::Delivered;
        }
        let mut slot = self.state.lock();
        match slot.state {
            ReqState::Pending => {
                slot.state = ReqState::Done(outcome);
                self.done.notify_all();
                Completed::Delivered
            }
            ReqState::Abandoned => {
                slot.state = ReqState::Collected;
                Completed::Orphaned(outcome.ok())
            }
            ReqState::Done(_) | ReqState::Collected => Completed::Delivered,
        }
    }

    /// Waits for the outcome and takes it.
    pub(crate) fn wait(&self, mode: WaitMode) -> Result<Reply> {
        let mut slot = self.state.lock();
        loop {
            match core::mem::replace(&mut slot.state, ReqState::Collected) {
                ReqState::Done(outcome) => return outcome,
                ReqState::Pending => {
                    slot.state = ReqState::Pending;
                    match mode {
                        WaitMode::Uninterruptible => self.done.wait(&mut slot),
                        WaitMode::Killable => {
                            if self.done.wait_killable(&mut slot) && Self::abandon(&mut slot.state)
                            {
                                return Err(EINTR);
                            }
                        }
                    }
                }
                ReqState::Collected | ReqState::Abandoned => return Err(EINVAL),
            }
        }
    }

    /// For a caller that reads the ring itself: waits until the outcome is in (taking it) or
    /// the store interrupt kicks (see [`Request::kick`]), whichever comes first.
    pub(crate) fn wait_or_kick(&self, mode: WaitMode) -> ReaderWake {
        let mut slot = self.state.lock();
        loop {
            match core::mem::replace(&mut slot.state, ReqState::Collected) {
                ReqState::Done(outcome) => return ReaderWake::Outcome(outcome),
                ReqState::Pending => slot.state = ReqState::Pending,
                ReqState::Collected | ReqState::Abandoned => {
                    return ReaderWake::Outcome(Err(EINVAL))
                }
            }
            if slot.kicked {
                slot.kicked = false;
                return ReaderWake::Kicked;
            }
            match mode {
                WaitMode::Uninterruptible => self.done.wait(&mut slot),
                WaitMode::Killable => {
                    if self.done.wait_killable(&mut slot) {
                        return ReaderWake::Killed;
                    }
                }
            }
        }
    }

    /// Wakes the caller in [`Request::wait_or_kick`] (from the store interrupt).
    pub(crate) fn kick(&self) {
        self.state.lock().kicked = true;
        self.done.notify_all();
    }

    /// A killed caller gives up: returns the outcome if it came in after all, else `EINTR`
    /// (and a reply still to come will be dropped).
    pub(crate) fn give_up(&self) -> Result<Reply> {
        let mut slot = self.state.lock();
        match core::mem::replace(&mut slot.state, ReqState::Collected) {
            ReqState::Done(outcome) => outcome,
            ReqState::Pending => {
                slot.state = ReqState::Abandoned;
                Err(EINTR)
            }
            ReqState::Collected | ReqState::Abandoned => Err(EINVAL),
        }
    }

    /// The waiter gives up: a reply still to come will be dropped. Only a pending request can
    /// be abandoned; returns whether it was.
    fn abandon(state: &mut ReqState) -> bool {
        if matches!(*state, ReqState::Pending) {
            *state = ReqState::Abandoned;
            true
        } else {
            false
        }
    }
}

/// Hooks for the KUnit tests (`tests.rs`), which run single-threaded and must never block.
#[cfg(CONFIG_XEN_XENBUS_CORE_RUST_KUNIT_TEST)]
impl Request {
    /// Whether an outcome waits to be collected, i.e. [`Request::wait`] would return at once.
    pub(crate) fn is_done_for_test(&self) -> bool {
        matches!(self.state.lock().state, ReqState::Done(_))
    }

    /// Gives up waiting as [`Request::wait`] does on a fatal signal (without needing one).
    pub(crate) fn abandon_for_test(&self) -> bool {
        Self::abandon(&mut self.state.lock().state)
    }
}
