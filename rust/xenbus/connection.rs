// SPDX-License-Identifier: GPL-2.0

//! The one xenstore connection of this kernel: bring-up, the ring I/O thread, the event
//! channel interrupt, suspend and resume.
//!
//! Bring-up follows the C core's order: `xenbus_rs_init` (postcore) finds the store, maps the
//! ring and starts the threads; `xenbus_rs_probe_initcall` (device) marks xenstore ready and runs
//! the notifier chain, which is when the kernel's users (shutdown watch, xenfs, frontends) start
//! talking. HVM guests whose callback vector is not working yet are probed later, from
//! `xen_set_callback_via`.

use crate::{
    bus::DeviceStates,
    comms::Engine,
    request::{ReaderWake, Reply, Request, WaitMode},
    ring::SharedRing,
    store::{self, Location},
    thread::{self, ThreadBody},
    watch::Watches,
    xs::{IoWake, Store},
};
use core::ptr::NonNull;
use kernel::{
    bindings,
    prelude::*,
    sync::{
        atomic::{Acquire, Atomic, Relaxed, Release},
        Arc,
    },
    xen::{self, xenstore::proto::ring::CONNECTION_CONNECTED},
};

/// The xenstore connection.
pub(crate) struct Core {
    pub(crate) store: Arc<Store>,
    pub(crate) watches: Arc<Watches>,
    pub(crate) device_states: Arc<DeviceStates>,
    kind: Kind,
    irq: Atomic<i32>,
    ready: Atomic<bool>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pv,
    Hvm,
}

static CORE: Atomic<*mut Core> = Atomic::new(core::ptr::null_mut());

/// The connection, once `xenbus_rs_init` has set it up.
pub(crate) fn get() -> Option<&'static Core> {
    let core = CORE.load(Acquire);
    // SAFETY: `CORE` is set once, to a leaked `KBox<Core>` that is never freed.
    unsafe { core.as_ref() }
}

struct IoThread;

impl ThreadBody for IoThread {
    fn run(self: Arc<Self>) {
        let Some(core) = get() else { return };
        // Replies may be needed to make progress on memory reclaim (a block frontend that
        // reconnects): never recurse into I/O to allocate.
        // SAFETY: Sets a flag of the current task; it is never restored (the thread never ends).
        let _ = unsafe { bindings::memalloc_noio_save() };
        loop {
            let ring = core.store.engine.page();
            core.store
                .engine
                .pump(&*core.watches, &*core.store, || ring.server_error());
            // The store interrupt stays masked from when it fired until the ring is drained:
            // xenstored notifies on every read and write it makes, and while we are pumping
            // anyway those notifications need neither an upcall here nor a vCPU kick in Xen.
            // Unmasking re-raises an event that came in meanwhile, which kicks `wake` again.
            core.end_of_interrupt();
            core.store.wake.wait();
        }
    }
}

/// The store event channel's interrupt before the core exists: wake the late-init probe thread.
///
/// # Safety
///
/// Bound by [`bind_wake_irq`], whose caller keeps the `IoWake` alive while the handler is bound.
unsafe extern "C" fn wake_interrupt(_irq: c_int, dev_id: *mut c_void) -> bindings::irqreturn_t {
    // SAFETY: `dev_id` is the `IoWake` given to `bind_wake_irq`, alive while the handler is bound.
    let wake = unsafe { &*dev_id.cast::<IoWake>() };
    wake.kick();
    bindings::irqreturn::IRQ_HANDLED
}

/// The store interrupt of the running core, bound with a late EOI: the channel stays masked
/// until `xen_irq_lateeoi`. xenstored notifies after each of its reads and writes, up to four
/// times per request; only a notification that leaves the pump something to do wakes the
/// caller reading the ring (see [`Core::await_reply`]) or else the I/O thread, which unmask
/// when they go idle (see [`Core::end_of_interrupt`]). The others, such as "I read your
/// request", are acknowledged here at once.
///
/// # Safety
///
/// Bound by [`Core::bind_irq`] with the core's `Store` as `dev_id`; the core is never freed.
unsafe extern "C" fn store_interrupt(irq: c_int, dev_id: *mut c_void) -> bindings::irqreturn_t {
    // SAFETY: `dev_id` is the core's `Store` (see above).
    let store = unsafe { &*dev_id.cast::<Store>() };
    let engine = &store.engine;
    if engine.has_work(engine.page().server_error()) {
        store.wake.owe_eoi();
        // The seated caller's request alone is in flight: this is its reply (or an event).
        // With more in flight, the I/O thread delivers to everyone, the seated caller too.
        if !(engine.in_flight() <= 1 && store.reader.kick()) {
            store.wake.kick();
        }
    } else if let Ok(irq) = c_uint::try_from(irq) {
        // SAFETY: `irq` is this handler's interrupt, bound with a late EOI and owed one now.
        unsafe { bindings::xen_irq_lateeoi(irq, 0) };
    }
    bindings::irqreturn::IRQ_HANDLED
}

/// Binds event channel `evtchn` to `handler` with `cookie` as its `dev_id`; returns the irq.
///
/// # Safety
///
/// `handler` must be an `irq_handler_t` for `cookie`, which must stay valid until the irq is
/// freed (`free_irq` with `cookie`), or forever if it never is.
unsafe fn bind_evtchn(
    evtchn: u32,
    name: &'static CStr,
    handler: bindings::irq_handler_t,
    cookie: *const c_void,
    late_eoi: bool,
) -> Result<c_int> {
    let bind = if late_eoi {
        bindings::bind_evtchn_to_irqhandler_lateeoi
    } else {
        bindings::bind_evtchn_to_irqhandler
    };
    // SAFETY: Per the function's contract.
    let irq = unsafe { bind(evtchn, handler, 0, name.as_char_ptr(), cookie.cast_mut()) };
    if irq < 0 {
        pr_err!(
            "binding the xenstore event channel {} failed: {}\n",
            evtchn,
            irq
        );
        return Err(Error::from_errno(irq));
    }
    Ok(irq)
}

/// Binds event channel `evtchn` to an interrupt that kicks `wake`; returns the irq.
///
/// # Safety
///
/// `wake` must stay valid until the irq is freed (`free_irq` with `wake` as the cookie), or
/// forever if it never is.
pub(crate) unsafe fn bind_wake_irq(
    evtchn: u32,
    name: &'static CStr,
    wake: &IoWake,
) -> Result<c_int> {
    let wake: *const IoWake = wake;
    // SAFETY: `wake_interrupt` takes an `IoWake`, which the caller keeps valid while bound.
    unsafe { bind_evtchn(evtchn, name, Some(wake_interrupt), wake.cast(), false) }
}

fn set_domain_type(kind: bindings::xenstore_init) {
    // SAFETY: Plain store to an exported variable that is only written during bring-up.
    unsafe { bindings::xen_store_domain_type = kind };
}

/// `postcore_initcall`: find and map the store, start the threads, bind the interrupt.
///
/// An HVM or PVH domain whose store is not there yet (`HVM_PARAM_STORE_PFN` all ones, or a ring
/// that is not `CONNECTED`) hands over to [`crate::late_init`], which finishes the bring-up when
/// the store event channel fires.
pub(crate) fn init() -> Result {
    if !xen::is_xen_domain() {
        return Err(ENODEV);
    }
    set_domain_type(bindings::xenstore_init_XS_UNKNOWN);
    let (kind, location) = if xen::is_pv_domain() {
        let (mfn, evtchn) = store::pv_start_info().ok_or(ENODEV)?;
        (Kind::Pv, store::locate_pv(mfn, evtchn))
    } else {
        (
            Kind::Hvm,
            store::locate_hvm(&store::XenHvmParams, xen::is_initial_domain())?,
        )
    };
    let (page, evtchn) = match location {
        Location::Local => {
            set_domain_type(bindings::xenstore_init_XS_LOCAL);
            pr_info!("this domain runs xenstored itself (dom0): not supported by the Rust core, xenstore disabled\n");
            return Err(ENODEV);
        }
        Location::Pv { mfn, evtchn } => {
            // SAFETY: The toolstack gave us this frame for the store; it is part of our memory
            // and mapped in the kernel's direct map.
            let page = unsafe { bindings::xen_gfn_to_virt(mfn as c_ulong) }.cast::<u8>();
            (NonNull::new(page).ok_or(ENOMEM)?, evtchn)
        }
        Location::Hvm { pfn, evtchn } => match map_hvm_page(pfn) {
            Some(page) => (page, evtchn),
            None => {
                pr_err!(
                    "cannot map the xenstore ring (HVM_PARAM_STORE_PFN {:#x})\n",
                    pfn
                );
                return Err(EINVAL);
            }
        },
        Location::HvmLate { evtchn } => {
            pr_info!("xenstore is not ready yet (HVM_PARAM_STORE_PFN unset): waiting for it\n");
            return crate::late_init::start(evtchn, None);
        }
    };
    if kind == Kind::Hvm {
        // SAFETY: `page` is the mapped store page, never unmapped.
        let ring = unsafe { SharedRing::new(page) };
        if ring.connection() != CONNECTION_CONNECTED {
            pr_info!("xenstore ring is not connected yet: waiting for it\n");
            return crate::late_init::start(evtchn, Some(page));
        }
    }
    bring_up(kind, page, evtchn).map(|_| ())
}

/// Starts the core on a mapped, connected ring: the engine, the I/O and watch threads and the
/// store interrupt. Xenstore is usable by the kernel after [`Core::probe`].
pub(crate) fn bring_up_hvm(page: NonNull<u8>, evtchn: u32) -> Result<&'static Core> {
    bring_up(Kind::Hvm, page, evtchn)
}

fn bring_up(kind: Kind, page: NonNull<u8>, evtchn: u32) -> Result<&'static Core> {
    // SAFETY: `page` is the mapped store page, never unmapped (the core lives forever).
    let ring = unsafe { SharedRing::new(page) };
    let (quiescent, cons, prod) = ring.quiesce_responses();
    if !quiescent {
        pr_err!("request ring is not quiescent ({:#x}:{:#x})\n", cons, prod);
    }
    let features = ring.server_features();
    let engine = Engine::new(ring)?;
    let store = Store::new(engine, evtchn)?;
    let watches = Watches::new()?;
    let device_states = DeviceStates::new()?;
    let core = KBox::new(
        Core {
            store,
            watches,
            device_states,
            kind,
            irq: Atomic::new(-1),
            ready: Atomic::new(false),
        },
        GFP_KERNEL,
    )?;
    let core = KBox::into_raw(core);
    CORE.store(core, Release);
    let core = get().ok_or(ENODEV)?;
    set_domain_type(if kind == Kind::Pv {
        bindings::xenstore_init_XS_PV
    } else {
        bindings::xenstore_init_XS_HVM
    });
    // SAFETY: Plain stores to exported variables, written only during bring-up and resume.
    unsafe {
        bindings::xen_store_evtchn = evtchn as c_int;
        bindings::xen_store_interface = page.as_ptr().cast();
    }
    thread::spawn(c"xenbus", Arc::new(IoThread, GFP_KERNEL)?)?;
    core.watches.start()?;
    core.bind_irq()?;
    if kind == Kind::Pv {
        // SAFETY: Plain store to an exported flag; PV stores are usable from here on.
        unsafe { bindings::xenstored_ready = 1 };
    }
    let kind_name = if kind == Kind::Pv { "PV" } else { "HVM" };
    pr_info!(
        "Rust xenstore core: {} ring, event channel {}, server features {:#x}\n",
        kind_name,
        evtchn,
        features
    );
    pr_info!(
        "memory: {} bytes per watch + its path, {} bytes per open /dev/xen/xenbus\n",
        crate::watch::entry_bytes(),
        crate::dev::file_bytes()
    );
    Ok(core)
}

/// Sets what kind of store this domain has, for the C code that reads `xen_store_domain_type`.
pub(crate) fn set_domain_type_hvm() {
    set_domain_type(bindings::xenstore_init_XS_HVM);
}

pub(crate) fn map_hvm_page(pfn: u64) -> Option<NonNull<u8>> {
    // Xen pages are 4 KiB whatever the kernel's page size (`XEN_PAGE_SIZE`).
    const XEN_PAGE_SIZE: u64 = 4096;
    let phys = pfn.checked_mul(XEN_PAGE_SIZE)?;
    // SAFETY: Maps one page of guest memory that Xen designated as the store ring.
    let page = unsafe {
        bindings::memremap(
            phys as bindings::resource_size_t,
            XEN_PAGE_SIZE as usize,
            bindings::MEMREMAP_WB as c_ulong,
        )
    };
    NonNull::new(page.cast::<u8>())
}

impl Core {
    fn bind_irq(&self) -> Result {
        let store: *const Store = &*self.store;
        // SAFETY: `store_interrupt` takes a `Store`; the core's lives as long as the core, which
        // is never freed.
        let irq = unsafe {
            bind_evtchn(
                self.store.evtchn.load(Relaxed),
                c"xenbus",
                Some(store_interrupt),
                store.cast(),
                true,
            )
        }?;
        self.irq.store(irq, Relaxed);
        Ok(())
    }

    /// Unmasks the store event channel if its interrupt woke us since the last call (see
    /// [`store_interrupt`]). An interrupt after the check kicks the I/O thread, which calls this
    /// again before it sleeps.
    fn end_of_interrupt(&self) {
        if !self.store.wake.take_eoi() {
            return;
        }
        let irq = self.irq.load(Relaxed);
        if let Ok(irq) = c_uint::try_from(irq) {
            // SAFETY: `irq` is the store interrupt bound in `bind_irq`, never freed.
            unsafe { bindings::xen_irq_lateeoi(irq, 0) };
        }
    }

    /// Waits for the reply to `req`, which the caller has submitted. If no other caller does,
    /// this one sits in the reader seat: while its request is the only one in flight, the
    /// store interrupt wakes it directly and it reads the ring itself, instead of waking the
    /// I/O thread, which would only wake it in turn. (With several requests in flight the I/O
    /// thread serves them all: a busy caller woken for everyone's replies would not preempt
    /// other busy tasks, a kernel thread that mostly sleeps does.) Whatever else it reads
    /// (replies for others, watch events) it hands on exactly as the I/O thread would.
    pub(crate) fn await_reply(&self, req: &Arc<Request>, mode: WaitMode) -> Result<Reply> {
        let store = &*self.store;
        if !store.reader.try_sit(req) {
            return req.wait(mode);
        }
        // Like the I/O thread: allocating while we hold the ring must not wait for block I/O
        // that may itself wait for a reply.
        // SAFETY: Sets a flag of the current task, restored below before returning.
        let noio = unsafe { bindings::memalloc_noio_save() };
        let engine = &store.engine;
        let ring = engine.page();
        // Every notification with work either kicks us, and we pump, or the I/O thread, which
        // completes `req` if its reply came (waking us as it would any waiter).
        let outcome = loop {
            match req.wait_or_kick(mode) {
                ReaderWake::Outcome(outcome) => break Some(outcome),
                ReaderWake::Kicked => {
                    engine.pump(&*self.watches, store, || ring.server_error());
                    self.end_of_interrupt();
                }
                ReaderWake::Killed => break None,
            }
        };
        drop(store.reader.leave());
        // SAFETY: Restores what `memalloc_noio_save` returned above, on the same task.
        unsafe { bindings::memalloc_noio_restore(noio) };
        // Notifications now go to the I/O thread; one that kicked us since our last pass has
        // left its work (and maybe its EOI) to us: hand both over.
        self.end_of_interrupt();
        if engine.has_work(ring.server_error()) {
            store.wake.kick();
        }
        outcome.unwrap_or_else(|| req.give_up())
    }

    /// Marks xenstore ready and tells the kernel (the notifier chain). Runs once.
    pub(crate) fn probe(&self) {
        if self.ready.xchg(true, Relaxed) {
            return;
        }
        // SAFETY: Plain store to an exported flag.
        unsafe { bindings::xenstored_ready = 1 };
        if self.kind == Kind::Hvm {
            self.reset_watches();
        }
        // SAFETY: The glue's notifier call has no preconditions beyond process context.
        unsafe { bindings::xenbus_rs_notify_ready() };
    }

    /// After kexec, a new kernel must drop the watches its predecessor left behind.
    fn reset_watches(&self) {
        if xen::is_initial_domain() {
            return;
        }
        let feature = self.store.read(
            0,
            b"control/platform-feature-xs_reset_watches",
            WaitMode::Uninterruptible,
        );
        let enabled = matches!(feature, Ok(v) if v.first().is_some_and(|&b| b != b'0'));
        if enabled {
            if let Err(e) = self.store.reset_watches() {
                if e != EEXIST {
                    pr_warn!("xs_reset_watches failed: {:?}\n", e);
                }
            }
        }
    }

    /// Whether an HVM guest must wait for `xen_set_callback_via` before using the store.
    pub(crate) fn defer_for_callback(&self) -> bool {
        // SAFETY: Reads a flag set during early boot.
        self.kind == Kind::Hvm && !unsafe { bindings::xen_have_vector_callback }
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Relaxed)
    }

    /// `xs_suspend`: no new requests, wait for the ones in flight and for open transactions,
    /// then keep the I/O thread off the ring.
    pub(crate) fn suspend(&self) {
        self.store.gate.suspend();
        self.store.engine.pause(true);
    }

    /// `xs_resume`: the ring may have been reset and the event channel renumbered.
    pub(crate) fn resume(&self) {
        let evtchn = match self.kind {
            Kind::Pv => store::pv_start_info().map(|(_, e)| e),
            Kind::Hvm => {
                use crate::store::HvmParams;
                store::XenHvmParams
                    .get(kernel::xen::hvm_param::STORE_EVTCHN)
                    .ok()
                    .and_then(|v| u32::try_from(v).ok())
            }
        };
        match evtchn {
            Some(e) if e != 0 => self.store.evtchn.store(e, Relaxed),
            _ => pr_warn!("cannot update the xenstore event channel after resume\n"),
        }
        let evtchn = self.store.evtchn.load(Relaxed);
        // SAFETY: Plain store to an exported variable.
        unsafe { bindings::xen_store_evtchn = evtchn as c_int };
        // SAFETY: `irq` is the interrupt we bound at init; rebinding it is what the C core does.
        unsafe { bindings::rebind_evtchn_irq(evtchn, self.irq.load(Relaxed)) };
        self.store.engine.reset_after_resume();
        let (_, cons, prod) = self.store.engine.page().quiesce_responses();
        if cons != prod {
            pr_err!(
                "request ring is not quiescent after resume ({:#x}:{:#x})\n",
                cons,
                prod
            );
        }
        self.store.engine.pause(false);
        self.store.gate.release(true);
        self.store.wake.kick();
        self.watches.reregister_all(&*self.store);
    }

    /// `xs_suspend_cancel`: the suspend did not happen; carry on as before.
    pub(crate) fn suspend_cancel(&self) {
        self.store.engine.pause(false);
        self.store.gate.release(false);
        self.store.wake.kick();
    }
}
