// SPDX-License-Identifier: GPL-2.0

//! Finding xenstore: the ring page and the event channel.
//!
//! PV guests get both from `start_info` (`store_mfn`, `store_evtchn`). HVM and PVH guests read
//! the HVM parameters `HVM_PARAM_STORE_EVTCHN` and `HVM_PARAM_STORE_PFN`: a PFN of 0 means
//! xenstore was never set up (an error), all ones means "not yet" (dom0less, Hyperlaunch: wait
//! for the late-init event), and a ring whose `connection` is not `CONNECTED` must be waited
//! for as well. A domain without a store event channel runs xenstored itself (dom0): this core
//! does not support that and says so.
//!
//! The decisions are pure functions over [`HvmParams`] so that KUnit can check them with a
//! fake parameter source; [`XenHvmParams`] is the hypercall-backed one.

use kernel::{bindings, prelude::*};

/// Where the store is, as far as can be told at boot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Location {
    /// PV: ring at this machine frame, ready now.
    Pv { mfn: u64, evtchn: u32 },
    /// HVM/PVH: ring at this guest frame; `ready` is false until xenstored marks it connected.
    Hvm { pfn: u64, evtchn: u32 },
    /// HVM/PVH: the ring is not there yet; the event channel will fire when it is.
    HvmLate { evtchn: u32 },
    /// This domain runs xenstored itself (dom0 with a local store): not supported.
    Local,
}

/// Access to the HVM parameters.
pub(crate) trait HvmParams {
    /// Reads parameter `index`.
    fn get(&self, index: u32) -> Result<u64>;
}

/// The HVM parameters of this domain, through `HVMOP_get_param`.
pub(crate) struct XenHvmParams;

impl HvmParams for XenHvmParams {
    fn get(&self, index: u32) -> Result<u64> {
        let mut value = 0u64;
        // SAFETY: `value` is a valid location for the result.
        let ret = unsafe { bindings::hvm_get_parameter(index as c_int, &mut value) };
        if ret < 0 {
            return Err(Error::from_errno(ret));
        }
        Ok(value)
    }
}

/// Decides where the store of an HVM or PVH domain is.
pub(crate) fn locate_hvm(params: &dyn HvmParams, initial_domain: bool) -> Result<Location> {
    let evtchn = params.get(kernel::xen::hvm_param::STORE_EVTCHN)?;
    if evtchn == 0 && initial_domain {
        return Ok(Location::Local);
    }
    let evtchn = u32::try_from(evtchn).map_err(|_| EINVAL)?;
    if evtchn == 0 {
        pr_err!("HVM_PARAM_STORE_EVTCHN is 0: no xenstore for this domain\n");
        return Err(ENOENT);
    }
    let pfn = params.get(kernel::xen::hvm_param::STORE_PFN)?;
    match pfn {
        0 => {
            pr_err!("HVM_PARAM_STORE_PFN is 0: xenstore was not initialised for this domain\n");
            Err(ENOENT)
        }
        u64::MAX => Ok(Location::HvmLate { evtchn }),
        pfn => Ok(Location::Hvm { pfn, evtchn }),
    }
}

/// The ring frame of a domain waiting for its store, once the toolstack has set it: `None` while
/// `HVM_PARAM_STORE_PFN` is still unset (0 or all ones) or unreadable.
pub(crate) fn late_store_pfn(params: &dyn HvmParams) -> Option<u64> {
    match params.get(kernel::xen::hvm_param::STORE_PFN) {
        Ok(0 | u64::MAX) | Err(_) => None,
        Ok(pfn) => Some(pfn),
    }
}

/// Decides where the store of a PV domain is.
pub(crate) fn locate_pv(store_mfn: u64, store_evtchn: u32) -> Location {
    if store_evtchn == 0 {
        Location::Local
    } else {
        Location::Pv {
            mfn: store_mfn,
            evtchn: store_evtchn,
        }
    }
}

/// Reads `start_info` of a PV domain.
pub(crate) fn pv_start_info() -> Option<(u64, u32)> {
    // SAFETY: `xen_start_info` is set before any initcall runs in a PV domain and never
    // changes afterwards; it is only read here.
    let info = unsafe { bindings::xen_start_info };
    if info.is_null() {
        return None;
    }
    // SAFETY: `info` points to the start info page (see above).
    let (mfn, evtchn) = unsafe { ((*info).store_mfn, (*info).store_evtchn) };
    Some((mfn as u64, evtchn))
}
