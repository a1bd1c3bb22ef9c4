// SPDX-License-Identifier: GPL-2.0

//! Watches: registration, event delivery and the dispatcher threads.
//!
//! Every watch gets a slot and a generation; its xenstore token is `xbrs:<slot>:<generation>`
//! ([`token`]), so an event is matched by looking the pair up, never by trusting a pointer read
//! back from the ring. Events wait in one FIFO, bounded per watch ([`MAX_PENDING_PER_WATCH`],
//! the XSA-349 defence) and in total ([`MAX_QUEUED_EVENTS`]).
//!
//! Callbacks run on dispatcher threads, in process context without locks, so they may block and
//! may call xenstore. Dispatcher 0 delivers everything in arrival order, one callback at a time,
//! like the C core's xenwatch thread. If it has been stuck in one callback for [`STALL`], the
//! next dispatcher starts delivering the events of *other* watches, and so on: one slow callback
//! cannot stall every other watch forever. Callbacks of one watch never run concurrently.
//!
//! Unregistering removes the watch from the table (no new events), sends `UNWATCH`, discards
//! queued events and waits for a running callback of that watch to return — unless the caller is
//! that very callback, which may unregister its own watch.

use crate::{
    bytes,
    comms::EventSink,
    ratelimit::{warn_ratelimited, RateLimit},
    thread::{self, ThreadBody},
};
use core::ptr::NonNull;
use kernel::{
    bindings, new_condvar, new_mutex,
    prelude::*,
    sync::{Arc, CondVar, Mutex},
    time::{Delta, Instant, Monotonic},
    xen::xenstore::proto::{token, wire},
};

/// Events that may wait for one watch; beyond that new events for it are dropped.
pub(crate) const MAX_PENDING_PER_WATCH: u32 = 1000;
/// Events that may wait in total.
pub(crate) const MAX_QUEUED_EVENTS: usize = 8192;
/// Registered watches at most (xenstored's own default quota is 128 per domain).
pub(crate) const MAX_WATCHES: usize = 4096;
/// Dispatcher threads: one in normal operation, the others step in when it is stuck.
pub(crate) const DISPATCHERS: usize = 3;
/// How long a callback may run before the next dispatcher helps out.
pub(crate) const STALL: Delta = Delta::from_millis(2000);

/// Bytes the core keeps per registered watch, besides the copy of its path (and user token).
pub(crate) const fn entry_bytes() -> usize {
    core::mem::size_of::<Option<Entry>>()
}

/// Receives the events of a watch registered for userspace (`/dev/xen/xenbus`).
pub(crate) trait WatchSink: Send + Sync {
    /// One event: the path xenstored reported and the token the user chose. Called from the
    /// ring I/O thread with the watch table locked: must not block.
    fn event(&self, path: &[u8], user_token: &[u8]);
}

/// Who is told about a watch's events.
#[derive(Clone)]
pub(crate) enum Client {
    /// A `struct xenbus_watch` registered through the C ABI; the registrant keeps it alive and
    /// unmoved until `unregister_xenbus_watch` returns. Its callback runs on a dispatcher.
    C(NonNull<bindings::xenbus_watch>),
    /// A userspace watch: events go straight to the file's bounded queue, no dispatcher.
    User(Arc<dyn WatchSink>),
}

// SAFETY: The C API requires `struct xenbus_watch` to stay valid until it is unregistered and
// allows its callback to run on any thread.
unsafe impl Send for Client {}

struct Entry {
    generation: u32,
    client: Client,
    /// NUL-terminated path, kept for `UNWATCH` and for re-registration after resume.
    path: KVec<u8>,
    /// The token a userspace registrant chose (empty for C watches).
    user_token: KVec<u8>,
    pending: u32,
    dropped: u64,
}

struct Event {
    slot: u32,
    generation: u32,
    /// `path\0token\0`.
    data: KVec<u8>,
    path_len: usize,
}

#[derive(Clone, Copy, Default)]
struct Dispatcher {
    task: Option<NonNull<bindings::task_struct>>,
    running: Option<(u32, u32)>,
    since: Option<Instant<Monotonic>>,
}

struct State {
    entries: KVec<Option<Entry>>,
    next_generation: u32,
    queue: KVec<Option<Event>>,
    head: usize,
    queued: usize,
    dispatchers: [Dispatcher; DISPATCHERS],
}

impl State {
    /// Whether watch `(slot, generation)` is registered.
    fn is_live(&self, slot: u32, generation: u32) -> bool {
        matches!(self.entries.get(slot as usize), Some(Some(e)) if e.generation == generation)
    }
}

// SAFETY: The raw pointers inside refer to C objects that may be used from any thread (see
// `Client`) or to kernel threads, which are only compared, never dereferenced.
unsafe impl Send for State {}

/// What registering needs from the store: sending `WATCH` and `UNWATCH`.
pub(crate) trait WatchWire: Sync {
    /// Sends `WATCH path token`.
    fn watch(&self, path: &[u8], token: &[u8]) -> Result;
    /// Sends `UNWATCH path token`.
    fn unwatch(&self, path: &[u8], token: &[u8]) -> Result;
}

/// The watch table, event queue and dispatcher threads.
#[pin_data]
pub(crate) struct Watches {
    #[pin]
    state: Mutex<State>,
    #[pin]
    changed: CondVar,
    #[pin]
    limit: RateLimit,
}

impl Watches {
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Self {
                state <- new_mutex!(State {
                    entries: KVec::new(),
                    next_generation: 1,
                    queue: KVec::new(),
                    head: 0,
                    queued: 0,
                    dispatchers: [Dispatcher::default(); DISPATCHERS],
                }, "xenbus_rs_watches"),
                changed <- new_condvar!("xenbus_rs_watches_changed"),
                limit <- RateLimit::new(),
            }),
            GFP_KERNEL,
        )
    }

    /// Starts the dispatcher threads.
    pub(crate) fn start(self: &Arc<Self>) -> Result {
        for index in 0..DISPATCHERS {
            let body = Arc::new(
                DispatcherThread {
                    watches: self.clone(),
                    index,
                },
                GFP_KERNEL,
            )?;
            let name = if index == 0 {
                c"xenwatch"
            } else {
                c"xenwatch-rescue"
            };
            let task = thread::spawn(name, body)?;
            if let Some(d) = self.state.lock().dispatchers.get_mut(index) {
                d.task = NonNull::new(task);
            }
        }
        Ok(())
    }

    /// Registers a C watch and sends `WATCH`. Fails with `EEXIST` if it is registered already.
    pub(crate) fn register_c(
        &self,
        wire: &dyn WatchWire,
        watch: NonNull<bindings::xenbus_watch>,
    ) -> Result {
        // SAFETY: The caller passes a valid `struct xenbus_watch` (C API contract).
        let node = unsafe { (*watch.as_ptr()).node };
        if node.is_null() {
            return Err(EINVAL);
        }
        // SAFETY: `node` is a NUL-terminated string owned by the registrant.
        let node = unsafe { CStr::from_char_ptr(node) };
        if self.find_c(watch).is_some() {
            return Err(EEXIST);
        }
        // SAFETY: `watch` is valid (see above); `nr_pending` is ours to maintain.
        unsafe { (*watch.as_ptr()).nr_pending = 0 };
        self.register(wire, Client::C(watch), node.to_bytes(), b"")
            .map(drop)
    }

    /// Registers a watch for userspace; returns its handle for [`Watches::unregister`].
    pub(crate) fn register_user(
        &self,
        wire: &dyn WatchWire,
        sink: Arc<dyn WatchSink>,
        path: &[u8],
        user_token: &[u8],
    ) -> Result<(u32, u32)> {
        self.register(wire, Client::User(sink), path, user_token)
    }

    fn register(
        &self,
        wire: &dyn WatchWire,
        client: Client,
        path: &[u8],
        user_token: &[u8],
    ) -> Result<(u32, u32)> {
        let mut stored_path = KVec::with_capacity(path.len() + 1, GFP_KERNEL)?;
        stored_path.extend_from_slice(path, GFP_KERNEL)?;
        stored_path.push(0, GFP_KERNEL)?;
        let mut stored_token = KVec::new();
        stored_token.extend_from_slice(user_token, GFP_KERNEL)?;
        let (slot, generation) = {
            let mut st = self.state.lock();
            let slot = match st.entries.iter().position(Option::is_none) {
                Some(slot) => slot,
                None if st.entries.len() < MAX_WATCHES => {
                    st.entries.push(None, GFP_KERNEL)?;
                    st.entries.len() - 1
                }
                None => return Err(ENOSPC),
            };
            let generation = st.next_generation;
            st.next_generation = st.next_generation.checked_add(1).unwrap_or(1);
            let entry = Entry {
                generation,
                client,
                path: stored_path,
                user_token: stored_token,
                pending: 0,
                dropped: 0,
            };
            if let Some(e) = st.entries.get_mut(slot) {
                *e = Some(entry);
            }
            (slot as u32, generation)
        };
        // The table entry exists before `WATCH` goes out: the event xenstored sends on
        // registration may arrive before the reply.
        let mut tok = [0u8; token::TOKEN_MAX];
        let tok = token::format(slot, generation, &mut tok);
        match wire.watch(path, tok) {
            // The token is this registration's alone, so xenstored knows it from us: a resume
            // that released our `WATCH` re-registered the table, this entry included, first.
            Ok(()) => {}
            Err(e) if e == EEXIST => {}
            Err(e) => {
                let mut st = self.state.lock();
                self.remove_locked(&mut st, slot, generation);
                return Err(e);
            }
        }
        Ok((slot, generation))
    }

    fn find_c(&self, watch: NonNull<bindings::xenbus_watch>) -> Option<(u32, u32)> {
        let st = self.state.lock();
        st.entries.iter().enumerate().find_map(|(slot, e)| match e {
            Some(Entry {
                client: Client::C(p),
                generation,
                ..
            }) if *p == watch => Some((slot as u32, *generation)),
            _ => None,
        })
    }

    /// Unregisters a C watch (see the module documentation for the guarantees).
    pub(crate) fn unregister_c(
        &self,
        wire: &dyn WatchWire,
        watch: NonNull<bindings::xenbus_watch>,
    ) {
        let Some((slot, generation)) = self.find_c(watch) else {
            pr_warn!(
                "unregister_xenbus_watch: watch {:p} is not registered\n",
                watch.as_ptr()
            );
            return;
        };
        self.unregister(wire, slot, generation);
        // SAFETY: `watch` is valid until this function returns (C API contract).
        unsafe { (*watch.as_ptr()).nr_pending = 0 };
    }

    /// Removes watch `(slot, generation)`, sends `UNWATCH`, drops its queued events and waits
    /// for a running callback of it (unless the caller is that callback).
    pub(crate) fn unregister(&self, wire: &dyn WatchWire, slot: u32, generation: u32) {
        let removed = {
            let mut st = self.state.lock();
            if st.is_live(slot, generation) {
                let entry = st.entries.get_mut(slot as usize).and_then(Option::take);
                self.discard_locked(&mut st, slot, generation);
                entry
            } else {
                None
            }
        };
        let Some(entry) = removed else {
            return;
        };
        let mut tok = [0u8; token::TOKEN_MAX];
        let tok = token::format(slot, generation, &mut tok);
        if let Err(e) = wire.unwatch(without_nul(&entry.path), tok) {
            pr_warn!(
                "failed to release watch {}: {:?}\n",
                BStrDisplay(without_nul(&entry.path)),
                e
            );
        }
        drop(entry);
        self.wait_not_running(slot, generation);
    }

    /// Waits until no dispatcher other than the caller runs a callback of `(slot, generation)`.
    fn wait_not_running(&self, slot: u32, generation: u32) {
        let mut st = self.state.lock();
        loop {
            let busy_elsewhere = st.dispatchers.iter().any(|d| {
                d.running == Some((slot, generation))
                    && !d.task.is_some_and(|t| thread::is_current(t.as_ptr()))
            });
            if !busy_elsewhere {
                return;
            }
            self.changed.wait(&mut st);
        }
    }

    fn remove_locked(&self, st: &mut State, slot: u32, generation: u32) {
        if let Some(e) = st.entries.get_mut(slot as usize) {
            if e.as_ref().is_some_and(|e| e.generation == generation) {
                *e = None;
            }
        }
        self.discard_locked(st, slot, generation);
    }

    /// Drops the queued events of one watch.
    fn discard_locked(&self, st: &mut State, slot: u32, generation: u32) {
        let head = st.head;
        let mut discarded = 0;
        for ev in st.queue.iter_mut().skip(head) {
            if ev
                .as_ref()
                .is_some_and(|ev| ev.slot == slot && ev.generation == generation)
            {
                *ev = None;
                discarded += 1;
            }
        }
        st.queued -= discarded;
    }

    /// Paths and tokens of every registered watch (to re-register them after resume).
    pub(crate) fn reregister_all(&self, wire: &dyn WatchWire) {
        let mut i = 0;
        loop {
            let next = {
                let st = self.state.lock();
                let mut found = None;
                while let Some(slot) = st.entries.get(i) {
                    if let Some(e) = slot {
                        let mut path = KVec::new();
                        if path.extend_from_slice(&e.path, GFP_KERNEL).is_ok() {
                            found = Some((i as u32, e.generation, path));
                        }
                        break;
                    }
                    i += 1;
                }
                found
            };
            let Some((slot, generation, path)) = next else {
                return;
            };
            let mut tok = [0u8; token::TOKEN_MAX];
            let tok = token::format(slot, generation, &mut tok);
            match wire.watch(without_nul(&path), tok) {
                // (`EEXIST`: its registrant's own `WATCH`, held up by the suspend, came first.)
                Err(e) if e != EEXIST => pr_warn!(
                    "re-registering watch {} after resume failed: {:?}\n",
                    BStrDisplay(without_nul(&path)),
                    e
                ),
                _ => {
                    // Unregistered since we looked: its `UNWATCH` may have gone out before our
                    // `WATCH`, which would leave xenstored watching for nobody.
                    let live = self.state.lock().is_live(slot, generation);
                    if !live {
                        let _ = wire.unwatch(without_nul(&path), tok);
                    }
                }
            }
            i += 1;
        }
    }

    fn deliver(&self, payload: &[u8]) {
        let Ok((path, tok)) = wire::watch_event(payload) else {
            warn_ratelimited!(
                self.limit,
                "dropped a malformed watch event ({} bytes)\n",
                payload.len()
            );
            return;
        };
        let Some((slot, generation)) = token::parse(tok) else {
            warn_ratelimited!(self.limit, "dropped a watch event with a foreign token\n");
            return;
        };
        let mut st = self.state.lock();
        let Some(Some(entry)) = st.entries.get(slot as usize) else {
            return; // A watch that was just unregistered: expected, not worth a message.
        };
        if entry.generation != generation {
            return;
        }
        let client = entry.client.clone();
        if let Client::User(sink) = &client {
            // Userspace watches are bounded by the file's own queue; no dispatcher involved.
            sink.event(path, &entry.user_token);
            return;
        }
        let mut data = KVec::new();
        if data
            .reserve(path.len() + tok.len() + 2, GFP_KERNEL)
            .is_err()
        {
            warn_ratelimited!(self.limit, "dropped a watch event: out of memory\n");
            return;
        }
        // Capacity was reserved above, so these cannot fail.
        let _ = bytes::append(&mut data, path);
        let _ = data.push(0, GFP_KERNEL);
        let _ = bytes::append(&mut data, tok);
        let _ = data.push(0, GFP_KERNEL);
        let event = Event {
            slot,
            generation,
            data,
            path_len: path.len(),
        };
        if let Client::C(w) = &client {
            let w = *w;
            // SAFETY: Registered watches are valid until unregistered, which needs this lock.
            let will_handle = unsafe { (*w.as_ptr()).will_handle };
            if let Some(will_handle) = will_handle {
                let (p, t) = event.strings();
                // SAFETY: `w` is valid (see above); `p` and `t` point into `event.data`, which
                // holds both strings NUL-terminated and outlives the call.
                if !unsafe { will_handle(w.as_ptr(), p, t) } {
                    return;
                }
            }
        }
        let queued = st.queued;
        let Some(Some(entry)) = st.entries.get_mut(slot as usize) else {
            return;
        };
        if entry.pending >= MAX_PENDING_PER_WATCH || queued >= MAX_QUEUED_EVENTS {
            entry.dropped += 1;
            let (pending, dropped) = (entry.pending, entry.dropped);
            warn_ratelimited!(
                self.limit,
                "watch {} has {} pending events ({} queued in all): dropped one (total {})\n",
                BStrDisplay(without_nul(&entry.path)),
                pending,
                queued,
                dropped
            );
            return;
        }
        entry.pending += 1;
        let pending = entry.pending;
        if let Client::C(w) = &client {
            // SAFETY: As above; `nr_pending` mirrors our count for the registrant's will_handle.
            unsafe { (*w.as_ptr()).nr_pending = pending };
        }
        if st.queue.push(Some(event), GFP_KERNEL).is_err() {
            if let Some(Some(entry)) = st.entries.get_mut(slot as usize) {
                entry.pending -= 1;
            }
            warn_ratelimited!(self.limit, "dropped a watch event: out of memory\n");
            return;
        }
        st.queued += 1;
        self.changed.notify_all();
    }

    /// The next event dispatcher `index` may deliver, taken out of the queue.
    fn pick(&self, st: &mut State, index: usize) -> Option<(Event, Client)> {
        if index > 0 {
            let all_stuck = st
                .dispatchers
                .iter()
                .take(index)
                .all(|d| d.since.is_some_and(|since| since.elapsed() > STALL));
            if !all_stuck {
                return None;
            }
        }
        let head = st.head;
        let len = st.queue.len();
        let mut found = None;
        for i in head..len {
            let Some(Some(ev)) = st.queue.get(i) else {
                continue;
            };
            let key = (ev.slot, ev.generation);
            if !st.is_live(ev.slot, ev.generation) {
                if let Some(slot) = st.queue.get_mut(i) {
                    *slot = None;
                }
                st.queued -= 1;
                continue;
            }
            if st.dispatchers.iter().any(|d| d.running == Some(key)) {
                continue;
            }
            found = Some(i);
            break;
        }
        // Advance past leading holes and compact now and then.
        while st.head < st.queue.len() && matches!(st.queue.get(st.head), Some(None)) {
            st.head += 1;
        }
        if let Some(i) = found {
            let ev = st.queue.get_mut(i).and_then(Option::take)?;
            st.queued -= 1;
            let entry = st
                .entries
                .get_mut(ev.slot as usize)
                .and_then(Option::as_mut)?;
            entry.pending = entry.pending.saturating_sub(1);
            let client = entry.client.clone();
            if let Client::C(w) = &client {
                // SAFETY: Registered watches are valid until unregistered, which needs this lock.
                unsafe { (*w.as_ptr()).nr_pending = entry.pending };
            }
            self.compact(st);
            return Some((ev, client));
        }
        self.compact(st);
        None
    }

    /// Drops the holes taken events and discarded ones leave, once they are at least half the
    /// queue. Holes before `head` are not enough: while dispatcher 0 is stuck in a callback,
    /// `head` stays at that watch's next event and the helpers take events from behind it, so
    /// the holes pile up in the middle, and without this the queue would grow by one entry
    /// per event however few are live (`queued`, at most `MAX_QUEUED_EVENTS`).
    fn compact(&self, st: &mut State) {
        let len = st.queue.len();
        if st.head == len {
            st.queue.clear();
            st.head = 0;
        } else if len >= 64 && st.queued * 2 <= len {
            // Every live event is `Some` and every entry before `head` is a hole: what remains
            // is the live events in their order, `head` at the first.
            st.queue.retain(|ev| ev.is_some());
            st.head = 0;
        }
    }

    fn dispatch_loop(&self, index: usize) {
        let mut st = self.state.lock();
        loop {
            if let Some((ev, client)) = self.pick(&mut st, index) {
                let key = (ev.slot, ev.generation);
                if let Some(d) = st.dispatchers.get_mut(index) {
                    d.running = Some(key);
                    d.since = Some(Instant::now());
                }
                drop(st);
                ev.run(client);
                drop(ev);
                st = self.state.lock();
                if let Some(d) = st.dispatchers.get_mut(index) {
                    d.running = None;
                    d.since = None;
                }
                self.changed.notify_all();
                continue;
            }
            // Dispatcher 0 sleeps until notified; helpers also look again when a callback may
            // have become stuck.
            if index == 0 || st.queued == 0 {
                let _ = self.changed.wait_interruptible(&mut st);
            } else {
                let _ = self
                    .changed
                    .wait_interruptible_timeout(&mut st, kernel::time::msecs_to_jiffies(500));
            }
        }
    }
}

impl Event {
    fn strings(&self) -> (*const c_char, *const c_char) {
        let base = self.data.as_ptr();
        // `data` is `path\0token\0` and `path_len` is the length of `path`, so both pointers
        // stay inside it.
        (base.cast(), base.wrapping_add(self.path_len + 1).cast())
    }

    fn run(&self, client: Client) {
        match client {
            // Userspace watches never reach the dispatcher queue.
            Client::User(_) => {}
            Client::C(w) => {
                // SAFETY: The watch is registered (events of unregistered watches are discarded
                // under the lock before `unregister_c` returns, and it waits for this call).
                let callback = unsafe { (*w.as_ptr()).callback };
                if let Some(callback) = callback {
                    let (p, t) = self.strings();
                    // SAFETY: As above; the strings live in `self.data` for the whole call.
                    unsafe { callback(w.as_ptr(), p, t) };
                }
            }
        }
    }
}

impl EventSink for Watches {
    fn watch_event(&self, payload: &[u8]) {
        self.deliver(payload)
    }
}

/// Hooks for the KUnit tests (`tests.rs`), which drive the queue without dispatcher threads.
#[cfg(CONFIG_XEN_XENBUS_CORE_RUST_KUNIT_TEST)]
impl Watches {
    /// The slot and generation of a registered C watch.
    pub(crate) fn key_for_test(
        &self,
        watch: NonNull<bindings::xenbus_watch>,
    ) -> Option<(u32, u32)> {
        self.find_c(watch)
    }

    /// Makes dispatcher `index` look busy in a callback of watch `key` (or idle).
    pub(crate) fn set_running_for_test(&self, index: usize, key: Option<(u32, u32)>) {
        if let Some(d) = self.state.lock().dispatchers.get_mut(index) {
            d.running = key;
        }
    }

    /// Takes the event dispatcher 0 would deliver next; returns its watch.
    pub(crate) fn pick_for_test(&self) -> Option<(u32, u32)> {
        let mut st = self.state.lock();
        self.pick(&mut st, 0)
            .map(|(ev, _)| (ev.slot, ev.generation))
    }

    /// Entries in the event queue, holes included, and the live events among them.
    pub(crate) fn queue_for_test(&self) -> (usize, usize) {
        let st = self.state.lock();
        (st.queue.len(), st.queued)
    }
}

struct DispatcherThread {
    watches: Arc<Watches>,
    index: usize,
}

impl ThreadBody for DispatcherThread {
    fn run(self: Arc<Self>) {
        self.watches.dispatch_loop(self.index);
    }
}

/// `bytes` without one trailing NUL.
pub(crate) fn without_nul(bytes: &[u8]) -> &[u8] {
    bytes.strip_suffix(&[0]).unwrap_or(bytes)
}

/// Displays untrusted bytes as text for log messages (non-printable bytes escaped).
pub(crate) struct BStrDisplay<'a>(pub(crate) &'a [u8]);

impl kernel::fmt::Display for BStrDisplay<'_> {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        for &b in self.0.iter().take(256) {
            if b.is_ascii_graphic() || b == b' ' {
                kernel::fmt::Write::write_char(f, b as char)?;
            } else {
                write!(f, "\\x{:02x}", b)?;
            }
        }
        Ok(())
    }
}
