// SPDX-License-Identifier: GPL-2.0

//! Late bring-up of an HVM or PVH domain whose store comes after the kernel boots.
//!
//! With dom0less or Hyperlaunch, xenstored may start after this domain: the toolstack leaves
//! `HVM_PARAM_STORE_PFN` all ones, or the ring's `connection` field not `CONNECTED`, and signals
//! the store event channel once the ring is set up. As the C core does (`xenbus_late_init`,
//! `xenbus_probe_thread`), a temporary handler on that event channel wakes a thread, which maps
//! the ring when its frame is known, checks that it is connected and then starts the core and
//! tells the kernel that xenstore is ready. Until then every xenstore call fails with `ENODEV`.
//!
//! The handler is released with `free_irq`, not unbound: unbinding would close the event
//! channel, which the core binds again for its own interrupt.

use crate::{
    connection,
    ring::SharedRing,
    store::{self, XenHvmParams},
    thread::{self, ThreadBody},
    xs::IoWake,
};
use core::ptr::NonNull;
use kernel::{
    bindings,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc,
    },
    xen::xenstore::proto::ring::CONNECTION_CONNECTED,
};

/// The waiting state, shared by the temporary interrupt handler and the probe thread.
#[pin_data]
struct LateInit {
    evtchn: u32,
    irq: Atomic<i32>,
    #[pin]
    wake: IoWake,
}

static PENDING: Atomic<bool> = Atomic::new(false);

/// Whether this domain is still waiting for its store (the device initcall then has nothing to
/// probe yet, and must not report an error).
pub(crate) fn pending() -> bool {
    PENDING.load(Relaxed)
}

/// Waits for the store on event channel `evtchn`; `page` is the ring if its frame is already
/// known (mapped, but not connected yet).
pub(crate) fn start(evtchn: u32, page: Option<NonNull<u8>>) -> Result {
    connection::set_domain_type_hvm();
    // SAFETY: Plain store to an exported variable, written only during bring-up and resume.
    unsafe { bindings::xen_store_evtchn = evtchn as c_int };
    let late = Arc::pin_init(
        try_pin_init!(LateInit {
            evtchn,
            irq: Atomic::new(-1),
            wake <- IoWake::new(),
        }),
        GFP_KERNEL,
    )?;
    // SAFETY: `late.wake` stays valid until `free_irq` in the probe thread, which holds a
    // reference to `late` until then; if the thread cannot be started, the irq is freed below
    // before `late` is dropped.
    let irq = unsafe { connection::bind_wake_irq(evtchn, c"xenstore_late_init", &late.wake) }?;
    late.irq.store(irq, Relaxed);
    PENDING.store(true, Relaxed);
    let probe = ProbeThread {
        late: late.clone(),
        page: page.map(|p| p.as_ptr() as usize),
    };
    let spawned = Arc::new(probe, GFP_KERNEL)
        .map_err(Error::from)
        .and_then(|probe| thread::spawn(c"xenbus_probe", probe));
    if let Err(e) = spawned {
        PENDING.store(false, Relaxed);
        free_wake_irq(&late);
        return Err(e);
    }
    // xenstored may have finished before our handler existed: look once without an event.
    late.wake.kick();
    Ok(())
}

/// Releases the temporary handler (once: by the probe thread, or by `start` if that thread could
/// not be started).
fn free_wake_irq(late: &LateInit) {
    let wake: *const IoWake = &late.wake;
    // SAFETY: `irq` was bound in `start` with `wake` as its cookie and is freed only once.
    unsafe { bindings::free_irq(late.irq.load(Relaxed) as c_uint, wake.cast_mut().cast()) };
}

struct ProbeThread {
    late: Arc<LateInit>,
    /// Address of the mapped ring, once its frame is known.
    page: Option<usize>,
}

/// Why the probe thread stopped looking.
enum Unusable {
    /// `HVM_PARAM_STORE_PFN` names a frame that cannot be mapped.
    Unmappable(u64),
}

impl ProbeThread {
    /// The ring once its frame is known and it is connected; `Ok(None)` while still waiting.
    fn connected_ring(
        &self,
        page: &mut Option<NonNull<u8>>,
    ) -> Result<Option<NonNull<u8>>, Unusable> {
        let mapped = match *page {
            Some(mapped) => mapped,
            None => {
                let Some(pfn) = store::late_store_pfn(&XenHvmParams) else {
                    return Ok(None);
                };
                let mapped = connection::map_hvm_page(pfn).ok_or(Unusable::Unmappable(pfn))?;
                *page = Some(mapped);
                mapped
            }
        };
        // SAFETY: `mapped` is the store page, mapped above or at init and never unmapped.
        let ring = unsafe { SharedRing::new(mapped) };
        Ok((ring.connection() == CONNECTION_CONNECTED).then_some(mapped))
    }
}

impl ThreadBody for ProbeThread {
    fn run(self: Arc<Self>) {
        let mut page = self.page.and_then(|p| NonNull::new(p as *mut u8));
        let ring = loop {
            self.late.wake.wait();
            match self.connected_ring(&mut page) {
                Ok(Some(ring)) => break Ok(ring),
                Ok(None) => {}
                Err(e) => break Err(e),
            }
        };
        free_wake_irq(&self.late);
        let core = match ring {
            Ok(ring) => connection::bring_up_hvm(ring, self.late.evtchn),
            // One message and no retry: each further event would only fail the same way.
            Err(Unusable::Unmappable(pfn)) => {
                pr_err!(
                    "cannot map the xenstore ring (HVM_PARAM_STORE_PFN {:#x})\n",
                    pfn
                );
                Err(EINVAL)
            }
        };
        PENDING.store(false, Relaxed);
        match core {
            Ok(core) => {
                pr_info!("xenstore is ready: late initialisation done\n");
                if !core.defer_for_callback() {
                    core.probe();
                }
            }
            Err(e) => pr_err!(
                "late xenstore bring-up failed ({:?}): xenstore disabled\n",
                e
            ),
        }
    }
}
