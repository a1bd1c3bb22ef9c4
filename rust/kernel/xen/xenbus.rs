// SPDX-License-Identifier: GPL-2.0

//! Xenbus frontend drivers.
//!
//! A frontend driver binds to the devices the toolstack lists under `device/<type>/<id>` in the
//! domain's xenstore home and talks to the backend (in another domain) through shared memory
//! pages, an event channel and xenstore. This module provides:
//!
//! - the driver model, shaped like the other bus abstractions ([`kernel::pci`],
//!   [`kernel::auxiliary`]): a [`Driver`] trait, a device id table ([`xenbus_device_table!`],
//!   which also emits the `xen:<type>` module aliases) and [`module_xenbus_driver!`];
//! - [`Device`], with the node names, the other end and the device state;
//! - RAII resources shared with the other end: [`SharedRing`] and [`FrontRing`] (granted ring
//!   pages, the ring protocol of `xen/interface/io/ring.h`), [`EventChannel`] (an event channel
//!   bound to an interrupt handler) and [`GrantedPage`] (a data page granted to the other end).
//!
//! Drivers register through `__xenbus_register_frontend()`, so they work with either xenbus
//! core. `Documentation/xen/xenbus-rust.rst` walks through a complete frontend
//! (`samples/rust/rust_xen_vbd.rs`).
//!
//! C header: [`include/xen/xenbus.h`](srctree/include/xen/xenbus.h)

use crate::{
    bindings, device,
    device_id::{self, IdTable as _, RawDeviceId},
    driver,
    error::{from_result, to_result},
    fmt,
    irq::Handler,
    page::Page,
    prelude::*,
    str::CString,
    transmute::{AsBytes, FromBytes},
    types::Opaque,
    ThisModule,
};
use core::{
    marker::{PhantomData, PhantomPinned},
    mem::ManuallyDrop,
    ptr::{self, NonNull},
};

pub use super::xenstore::proto::state::XenbusState;
use super::xenstore::PathStr;

/// Xen pages are 4 KiB, whatever the kernel's page size.
pub const XEN_PAGE_SIZE: usize = 4096;

/// At most this many pages in one [`SharedRing`] (`XENBUS_MAX_RING_GRANTS`).
pub const MAX_RING_PAGES: usize = 16;

/// `INVALID_GRANT_REF`.
const INVALID_GRANT_REF: bindings::grant_ref_t = bindings::grant_ref_t::MAX;

/// `DOMID_INVALID`.
const DOMID_INVALID: u16 = 0x7ff4;

/// A grant reference: the handle another domain uses to map one of our pages.
pub type GrantRef = bindings::grant_ref_t;

fn state_from_raw(v: bindings::xenbus_state) -> XenbusState {
    XenbusState::from_u32(v).unwrap_or(XenbusState::Unknown)
}

/// A xenbus device id: the device type (`vbd`, `vif`, ...), at most 31 bytes.
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct DeviceId(bindings::xenbus_device_id);

impl DeviceId {
    /// An id for devices of type `devicetype`.
    ///
    /// `devicetype` must be shorter than 32 bytes and contain no NUL (checked at build time
    /// when used in a constant, as [`xenbus_device_table!`] does).
    #[inline(always)]
    pub const fn new(devicetype: &str) -> Self {
        let bytes = devicetype.as_bytes();
        build_assert!(!bytes.is_empty() && bytes.len() < 32);
        let mut id = bindings::xenbus_device_id {
            devicetype: [0; 32],
        };
        let mut i = 0;
        while i < bytes.len() {
            build_assert!(bytes[i] != 0);
            id.devicetype[i] = bytes[i];
            i += 1;
        }
        Self(id)
    }
}

// SAFETY: `DeviceId` is a `#[repr(transparent)]` wrapper of `struct xenbus_device_id` and adds
// no invariant.
unsafe impl RawDeviceId for DeviceId {
    type RawType = bindings::xenbus_device_id;
}

/// A zero-terminated table of [`DeviceId`]s with the driver's information for each.
///
/// Made by [`xenbus_device_table!`]. `struct xenbus_device_id` has no field for driver data, so
/// the information is kept next to the ids and found by the index of the matched id.
pub struct IdArray<U: 'static, const N: usize> {
    ids: device_id::IdArray<DeviceId, (), N>,
    info: [&'static U; N],
}

impl<U: 'static, const N: usize> IdArray<U, N> {
    /// Builds a table; `ids[i]` goes with `info[i]`.
    pub const fn new(ids: [DeviceId; N], info: [&'static U; N]) -> Self {
        Self {
            ids: device_id::IdArray::new_without_index(ids),
            info,
        }
    }
}

/// A device id table of a [`Driver`], see [`IdTable`].
pub trait DeviceIdTable<U: 'static>: Sync {
    /// The zero-terminated array of ids, for C.
    fn as_ptr(&self) -> *const bindings::xenbus_device_id;

    /// The information for `id`, a pointer into this table (as the bus passes to `probe`).
    fn info(&self, id: *const bindings::xenbus_device_id) -> Option<&'static U>;
}

impl<U: Sync + 'static, const N: usize> DeviceIdTable<U> for IdArray<U, N> {
    fn as_ptr(&self) -> *const bindings::xenbus_device_id {
        self.ids.as_ptr()
    }

    fn info(&self, id: *const bindings::xenbus_device_id) -> Option<&'static U> {
        let offset = (id as usize).checked_sub(self.as_ptr() as usize)?;
        let size = core::mem::size_of::<bindings::xenbus_device_id>();
        if offset % size != 0 {
            return None;
        }
        self.info.get(offset / size).copied()
    }
}

/// The device id table type of [`Driver::ID_TABLE`].
pub type IdTable<U> = &'static dyn DeviceIdTable<U>;

/// Copies a string into a `.modinfo` entry (used by [`xenbus_device_table!`]).
#[doc(hidden)]
#[inline(always)]
pub const fn __modinfo<const N: usize>(s: &str) -> [u8; N] {
    let bytes = s.as_bytes();
    build_assert!(bytes.len() == N);
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Declares the device id table of a xenbus driver and its module aliases (`xen:<type>`, which
/// the bus puts in `MODALIAS` uevents).
///
/// # Examples
///
/// ```
/// use kernel::xen::xenbus::{self, DeviceIdTable};
///
/// struct Info {
///     max_segments: u32,
/// }
///
/// kernel::xenbus_device_table!(TABLE, Info, [("vbd", Info { max_segments: 11 })]);
///
/// let table: xenbus::IdTable<Info> = &TABLE;
/// assert_eq!(table.info(table.as_ptr()).map(|i| i.max_segments), Some(11));
/// assert!(table.info(table.as_ptr().wrapping_add(1)).is_none());
/// ```
#[macro_export]
macro_rules! xenbus_device_table {
    ($table_name:ident, $id_info_type:ty, [$(($devtype:literal, $info:expr $(,)?)),* $(,)?]) => {
        static $table_name: $crate::xen::xenbus::IdArray<
            $id_info_type,
            { <[&str]>::len(&[$($devtype,)*]) },
        > = $crate::xen::xenbus::IdArray::new(
            [$($crate::xen::xenbus::DeviceId::new($devtype),)*],
            [$(&$info,)*],
        );

        $(
            const _: () = {
                const ALIAS: &str = ::core::concat!("alias=xen:", $devtype, "\0");
                #[cfg(MODULE)]
                #[cfg_attr(not(target_os = "macos"), link_section = ".modinfo")]
                #[used(compiler)]
                static MODALIAS: [u8; ALIAS.len()] = $crate::xen::xenbus::__modinfo(ALIAS);
            };
        )*
    };
}

/// Declares a kernel module that registers one xenbus frontend driver.
///
/// # Examples
///
/// ```ignore
/// kernel::module_xenbus_driver! {
///     type: MyFrontend,
///     name: "my_frontend",
///     authors: ["..."],
///     description: "...",
///     license: "GPL",
/// }
/// ```
#[macro_export]
macro_rules! module_xenbus_driver {
    ($($f:tt)*) => {
        $crate::module_driver!(<T>, $crate::xen::xenbus::Adapter<T>, { $($f)* });
    };
}

/// A xenbus frontend driver.
///
/// The bus calls [`Driver::probe`] for a device of a type in [`Driver::ID_TABLE`] once it has
/// found the backend (`backend` and `backend-id` in the device's node). From then until
/// [`Driver::remove`], [`Driver::otherend_changed`] reports every state change of the backend
/// (and the backend's state right after probe). The driver's data ([`Driver::Data`]) is dropped
/// after `remove`; release the resources shared with the backend (rings, grants, event
/// channels) by dropping them there, after the backend has let go of them (closed).
pub trait Driver {
    /// Information the driver keeps for each device id (see [`xenbus_device_table!`]).
    type IdInfo: 'static;

    /// The driver's data for a bound device.
    ///
    /// It is shared between the callbacks, which may run concurrently (the backend's state
    /// changes come from the watch thread), hence `Sync`.
    type Data<'bound>: Send + Sync + 'bound;

    /// The device types the driver handles.
    const ID_TABLE: IdTable<Self::IdInfo>;

    /// Whether the device may be bound again after `remove` (`allow_rebind`): without it, the
    /// bus switches the device to Closed after `remove`.
    const ALLOW_REBIND: bool = false;

    /// Whether boot (and registration) should not wait long for the device to connect
    /// (`not_essential`): 30 s at most instead of 270 s.
    const NOT_ESSENTIAL: bool = false;

    /// Binds the driver to `dev`.
    fn probe<'bound>(
        dev: &'bound Device<device::Core<'_>>,
        id_info: &'bound Self::IdInfo,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound;

    /// The other end's state changed to `state`; `otherend` is its xenstore directory.
    ///
    /// Runs in process context on the xenbus watch thread: it may sleep, but blocks the
    /// delivery of other watch events while it runs.
    fn otherend_changed<'bound>(
        dev: &'bound Device<device::Bound>,
        this: Pin<&Self::Data<'bound>>,
        otherend: &PathStr,
        state: XenbusState,
    );

    /// Unbinds the driver from `dev` (the driver is removed, or the device goes away).
    ///
    /// [`Driver::otherend_changed`] is no longer called. This is the place for a graceful
    /// disconnect (Closing, then Closed); resources are released when the data is dropped.
    fn remove<'bound>(dev: &'bound Device<device::Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        let _ = (dev, this);
    }

    /// The domain is about to be suspended (or migrated, or checkpointed).
    fn suspend<'bound>(
        dev: &'bound Device<device::Core<'_>>,
        this: Pin<&Self::Data<'bound>>,
    ) -> Result {
        let _ = (dev, this);
        Ok(())
    }

    /// The domain has been resumed: the backend may be a new one (see [`Device::otherend`]);
    /// resources shared with the old one must be set up again.
    fn resume<'bound>(
        dev: &'bound Device<device::Core<'_>>,
        this: Pin<&Self::Data<'bound>>,
    ) -> Result {
        let _ = (dev, this);
        Ok(())
    }
}

/// The registration adapter of xenbus frontend drivers, see [`module_xenbus_driver!`].
pub struct Adapter<T: Driver>(T);

// SAFETY:
// - `bindings::xenbus_driver` is a C type declared as `repr(C)`.
// - `T::Data` is the type of the driver's device private data.
// - `struct xenbus_driver` embeds a `struct device_driver` at `DEVICE_DRIVER_OFFSET`.
unsafe impl<T: Driver + 'static> driver::DriverLayout for Adapter<T> {
    type DriverType = bindings::xenbus_driver;
    type DriverData<'bound> = T::Data<'bound>;
    const DEVICE_DRIVER_OFFSET: usize = core::mem::offset_of!(bindings::xenbus_driver, driver);
}

// SAFETY: `unregister` is only called after a successful `register` of the same driver.
unsafe impl<T: Driver + 'static> driver::RegistrationOps for Adapter<T> {
    unsafe fn register(
        xdrv: &Opaque<Self::DriverType>,
        name: &'static CStr,
        module: &'static ThisModule,
    ) -> Result {
        // SAFETY: The driver is not registered yet: its fields are ours to set.
        unsafe {
            let d = xdrv.get();
            (*d).name = name.as_char_ptr();
            (*d).ids = T::ID_TABLE.as_ptr();
            (*d).allow_rebind = T::ALLOW_REBIND;
            (*d).not_essential = T::NOT_ESSENTIAL;
            (*d).probe = Some(Self::probe_callback);
            (*d).remove = Some(Self::remove_callback);
            (*d).otherend_changed = Some(Self::otherend_changed_callback);
            (*d).suspend = Some(Self::suspend_callback);
            (*d).resume = Some(Self::resume_callback);
        }
        // SAFETY: `xdrv` is a valid driver that stays pinned until `unregister`; `name` is a
        // static NUL-terminated string.
        to_result(unsafe {
            bindings::__xenbus_register_frontend(xdrv.get(), module.as_ptr(), name.as_char_ptr())
        })
    }

    unsafe fn unregister(xdrv: &Opaque<Self::DriverType>) {
        // SAFETY: `xdrv` was registered (the trait's contract).
        unsafe { bindings::xenbus_unregister_driver(xdrv.get()) }
    }
}

impl<T: Driver + 'static> Adapter<T> {
    extern "C" fn probe_callback(
        xdev: *mut bindings::xenbus_device,
        id: *const bindings::xenbus_device_id,
    ) -> c_int {
        // SAFETY: The bus probes with a valid device and the device lock held, for the duration
        // of the call. INVARIANT: `xdev` is valid for the duration of `probe_callback()`.
        let dev = unsafe { &*xdev.cast::<Device<device::CoreInternal<'_>>>() };
        from_result(|| {
            // `id` is the entry of `T::ID_TABLE` that matched.
            let info = T::ID_TABLE.info(id).ok_or(ENODEV)?;
            let data = T::probe(dev, info);
            dev.as_ref().set_drvdata(data)?;
            Ok(0)
        })
    }

    extern "C" fn remove_callback(xdev: *mut bindings::xenbus_device) {
        // SAFETY: The bus removes with a valid device and the device lock held.
        let dev = unsafe { &*xdev.cast::<Device<device::CoreInternal<'_>>>() };
        // SAFETY: `remove` only follows a successful `probe_callback`, which stored a
        // `Pin<KBox<T::Data>>`; it is dropped later, by the driver core's post-unbind callback.
        let data = unsafe { dev.as_ref().drvdata_borrow::<T::Data<'_>>() };
        T::remove(dev, data);
    }

    extern "C" fn otherend_changed_callback(
        xdev: *mut bindings::xenbus_device,
        state: bindings::xenbus_state,
    ) {
        // SAFETY: The bus watches the other end only while the device is bound: from after a
        // successful probe until `remove` (which unregisters the watch first, waiting for this
        // callback).
        let dev = unsafe { &*xdev.cast::<Device<device::BoundInternal>>() };
        // SAFETY: As above: the driver data was stored by `probe_callback` and is still there.
        let data = unsafe { dev.as_ref().drvdata_borrow::<T::Data<'_>>() };
        // SAFETY: `otherend` is set before the watch is registered and freed only after it has
        // been unregistered; it is NULL or a NUL-terminated string.
        let otherend = unsafe { (*xdev).otherend };
        if otherend.is_null() {
            return;
        }
        // SAFETY: See above.
        let otherend = unsafe { CStr::from_char_ptr(otherend) };
        let Ok(otherend) = PathStr::new(otherend) else {
            return;
        };
        T::otherend_changed(dev, data, otherend, state_from_raw(state));
    }

    extern "C" fn suspend_callback(xdev: *mut bindings::xenbus_device) -> c_int {
        // SAFETY: PM callbacks run with the device lock held, for bound devices only.
        let dev = unsafe { &*xdev.cast::<Device<device::CoreInternal<'_>>>() };
        // SAFETY: The device is bound: `probe_callback` stored the data.
        let data = unsafe { dev.as_ref().drvdata_borrow::<T::Data<'_>>() };
        from_result(|| T::suspend(dev, data).map(|()| 0))
    }

    extern "C" fn resume_callback(xdev: *mut bindings::xenbus_device) -> c_int {
        // SAFETY: PM callbacks run with the device lock held, for bound devices only.
        let dev = unsafe { &*xdev.cast::<Device<device::CoreInternal<'_>>>() };
        // SAFETY: The device is bound: `probe_callback` stored the data.
        let data = unsafe { dev.as_ref().drvdata_borrow::<T::Data<'_>>() };
        from_result(|| T::resume(dev, data).map(|()| 0))
    }
}

/// A xenbus device (`struct xenbus_device`).
///
/// # Invariants
///
/// A [`Device`] instance represents a valid `struct xenbus_device` created by the xenbus core;
/// `nodename` and `devicetype` are NUL-terminated strings that live as long as the device.
#[repr(transparent)]
pub struct Device<Ctx: device::DeviceContext = device::Normal>(
    Opaque<bindings::xenbus_device>,
    PhantomData<Ctx>,
);

impl<Ctx: device::DeviceContext> Device<Ctx> {
    fn as_raw(&self) -> *mut bindings::xenbus_device {
        self.0.get()
    }

    /// The device's xenstore directory, e.g. `device/vbd/51712`.
    pub fn nodename(&self) -> &CStr {
        // SAFETY: By the type invariant `nodename` is a NUL-terminated string that lives as
        // long as the device.
        unsafe { CStr::from_char_ptr((*self.as_raw()).nodename) }
    }

    /// The device type, e.g. `vbd`.
    pub fn devicetype(&self) -> &CStr {
        // SAFETY: By the type invariant `devicetype` is a NUL-terminated string that lives as
        // long as the device.
        unsafe { CStr::from_char_ptr((*self.as_raw()).devicetype) }
    }

    /// The device's xenstore directory as a path.
    pub fn path(&self) -> Result<&PathStr> {
        PathStr::new(self.nodename())
    }
}

impl Device<device::Core<'_>> {
    /// The other end's xenstore directory, e.g. `/local/domain/0/backend/vbd/5/51712`.
    ///
    /// Only available in `probe`, `remove`, `suspend` and `resume` (where it cannot change; a
    /// resume may change it); [`Driver::otherend_changed`] gets it as an argument.
    pub fn otherend(&self) -> Result<&PathStr> {
        // SAFETY: The bus sets `otherend` before probe and changes it only in its own probe,
        // remove and resume paths, which hold the device lock like our caller.
        let p = unsafe { (*self.as_raw()).otherend };
        if p.is_null() {
            return Err(ENODEV);
        }
        // SAFETY: See above: a NUL-terminated string, stable while the device lock is held.
        PathStr::new(unsafe { CStr::from_char_ptr(p) })
    }
}

impl Device<device::Bound> {
    /// The id of the other end's domain (`DOMID_INVALID` if the bus has not read it).
    pub fn otherend_id(&self) -> u16 {
        // SAFETY: The field is valid; the bus writes it only in probe and resume.
        let id = unsafe { ptr::read_volatile(&raw const (*self.as_raw()).otherend_id) };
        u16::try_from(id).unwrap_or(DOMID_INVALID)
    }

    /// The state this end last switched to (see [`Device::switch_state`]).
    pub fn state(&self) -> XenbusState {
        // SAFETY: The field is valid; it is a plain integer updated by `xenbus_switch_state()`.
        state_from_raw(unsafe { ptr::read_volatile(&raw const (*self.as_raw()).state) })
    }

    /// Publishes a new state of this end in xenstore (nothing happens if it is the current
    /// one). Failures are reported with [`Device::fatal`] by the core.
    pub fn switch_state(&self, state: XenbusState) -> Result {
        // SAFETY: `self` is a valid, bound device.
        to_result(unsafe { bindings::xenbus_switch_state(self.as_raw(), state.as_u32()) })
    }

    /// Switches to Closed and wakes up a shutdown waiting for this device
    /// (`xenbus_frontend_closed()`); for a backend that went to Closing on its own.
    pub fn frontend_closed(&self) -> Result {
        // SAFETY: `self` is a valid, bound device.
        to_result(unsafe { bindings::xenbus_frontend_closed(self.as_raw()) })
    }

    /// Reads the state of the end whose xenstore directory is `dir` (Unknown if unreadable).
    pub fn read_state(&self, dir: &PathStr) -> XenbusState {
        // SAFETY: `self` is a valid device; `dir` is NUL-terminated.
        state_from_raw(unsafe {
            bindings::xenbus_read_driver_state(self.as_raw(), dir.as_char_ptr())
        })
    }

    /// Reports an error: in the kernel log and in xenstore (`error/<nodename>/error`).
    pub fn error(&self, err: Error, args: fmt::Arguments<'_>) {
        self.report(bindings::xenbus_dev_error, err, args)
    }

    /// Reports a fatal error like [`Device::error`] and switches the device to Closing.
    pub fn fatal(&self, err: Error, args: fmt::Arguments<'_>) {
        self.report(bindings::xenbus_dev_fatal, err, args)
    }

    fn report(&self, report: ReportFn, err: Error, args: fmt::Arguments<'_>) {
        let msg = CString::try_from_fmt(args);
        let msg = msg.as_deref().unwrap_or(c"(no memory for the message)");
        // SAFETY: `report` is `xenbus_dev_error` or `xenbus_dev_fatal`; `self` is a valid device;
        // the format takes one string argument, `msg`.
        unsafe {
            report(
                self.as_raw(),
                err.to_errno(),
                c"%s".as_char_ptr(),
                msg.as_char_ptr(),
            )
        };
    }
}

/// `xenbus_dev_error` and `xenbus_dev_fatal`.
type ReportFn = unsafe extern "C" fn(*mut bindings::xenbus_device, c_int, *const c_char, ...);

// SAFETY: `Device` is a transparent wrapper of a type that doesn't depend on `Device`'s generic
// argument.
kernel::impl_device_context_deref!(unsafe { Device });
kernel::impl_device_context_into_aref!(Device);

// SAFETY: Instances of `Device` are always reference-counted.
unsafe impl crate::sync::aref::AlwaysRefCounted for Device {
    fn inc_ref(&self) {
        // SAFETY: The existence of a shared reference guarantees that the refcount is non-zero.
        unsafe { bindings::get_device(self.as_ref().as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        let xdev: *mut bindings::xenbus_device = obj.cast().as_ptr();
        // SAFETY: `xdev` points to a valid `struct xenbus_device` (type invariant).
        let dev = unsafe { &raw mut (*xdev).dev };
        // SAFETY: The safety requirements guarantee that the refcount is non-zero.
        unsafe { bindings::put_device(dev) }
    }
}

impl<Ctx: device::DeviceContext> AsRef<device::Device<Ctx>> for Device<Ctx> {
    fn as_ref(&self) -> &device::Device<Ctx> {
        // SAFETY: By the type invariant `self.as_raw()` is a valid `struct xenbus_device`.
        let dev = unsafe { &raw mut (*self.as_raw()).dev };
        // SAFETY: `dev` points to a valid `struct device`.
        unsafe { device::Device::from_raw(dev) }
    }
}

// SAFETY: `Device` is a transparent wrapper of `struct xenbus_device`, whose `dev` field is at
// `OFFSET`.
unsafe impl<Ctx: device::DeviceContext> device::AsBusDevice<Ctx> for Device<Ctx> {
    const OFFSET: usize = core::mem::offset_of!(bindings::xenbus_device, dev);
}

// SAFETY: A `Device` is always reference-counted and can be released from any thread.
unsafe impl Send for Device {}

// SAFETY: The methods of `Device<Normal>` only read immutable fields.
unsafe impl Sync for Device {}

// SAFETY: The methods of `Device<Bound>` read integers with volatile reads and call C functions
// that may be used concurrently.
unsafe impl Sync for Device<device::Bound> {}

/// Ring pages granted to the other end (`xenbus_setup_ring()`), taken back and freed on drop
/// (`xenbus_teardown_ring()`).
///
/// The memory is shared with another domain, which may change it at any time: it is only
/// reachable through a raw pointer ([`SharedRing::as_ptr`]); use [`FrontRing`] for the
/// standard ring protocol.
///
/// Drop it only once the other end has unmapped it (it has switched to Closed), or the pages
/// stay granted until it does.
pub struct SharedRing {
    vaddr: NonNull<u8>,
    nr_pages: u32,
    grefs: [GrantRef; MAX_RING_PAGES],
}

// SAFETY: The ring is only accessed through raw pointers; it can be torn down from any thread.
unsafe impl Send for SharedRing {}

// SAFETY: `&SharedRing` only hands out the (raw) address and the grant references.
unsafe impl Sync for SharedRing {}

impl SharedRing {
    /// Allocates `nr_pages` (1..=[`MAX_RING_PAGES`]) zeroed Xen pages and grants them to the
    /// other end of `dev`.
    pub fn new(dev: &Device<device::Bound>, nr_pages: u32) -> Result<Self> {
        if nr_pages == 0 || nr_pages as usize > MAX_RING_PAGES {
            return Err(EINVAL);
        }
        let mut vaddr: *mut c_void = ptr::null_mut();
        let mut grefs = [INVALID_GRANT_REF; MAX_RING_PAGES];
        // SAFETY: `dev` is a valid device; `vaddr` is writable; `grefs` has room for
        // `nr_pages` references.
        to_result(unsafe {
            bindings::xenbus_setup_ring(
                dev.as_raw(),
                GFP_KERNEL.as_raw(),
                &mut vaddr,
                nr_pages,
                grefs.as_mut_ptr(),
            )
        })?;
        let vaddr = NonNull::new(vaddr.cast::<u8>()).ok_or(ENOMEM)?;
        Ok(Self {
            vaddr,
            nr_pages,
            grefs,
        })
    }

    /// The grant references of the pages, in order.
    pub fn grant_refs(&self) -> &[GrantRef] {
        self.grefs.get(..self.nr_pages as usize).unwrap_or(&[])
    }

    /// The address of the first page.
    pub fn as_ptr(&self) -> *mut u8 {
        self.vaddr.as_ptr()
    }

    /// The size in bytes.
    pub fn size(&self) -> usize {
        self.nr_pages as usize * XEN_PAGE_SIZE
    }
}

impl Drop for SharedRing {
    fn drop(&mut self) {
        let mut vaddr = self.vaddr.as_ptr().cast::<c_void>();
        // SAFETY: The pages and references come from `xenbus_setup_ring()` with `nr_pages`.
        unsafe {
            bindings::xenbus_teardown_ring(&mut vaddr, self.nr_pages, self.grefs.as_mut_ptr())
        };
    }
}

/// Offset of the ring entries in a shared ring (after `req_prod`, `req_event`, `rsp_prod`,
/// `rsp_event` and 48 bytes of padding).
const RING_HEADER: usize = 64;

/// The front end of a shared ring of requests `Req` and responses `Rsp`, as declared in C by
/// `DEFINE_RING_TYPES(name, Req, Rsp)` in `xen/interface/io/ring.h`.
///
/// Requests are copied into the ring with [`FrontRing::push_request`] and published with
/// [`FrontRing::push_requests_and_check_notify`]; responses are copied out with
/// [`FrontRing::next_response`]. The other end is not trusted: a response index beyond the
/// requests in flight is an error, and `Rsp` must accept any bit pattern ([`FromBytes`]).
pub struct FrontRing<Req, Rsp> {
    ring: SharedRing,
    req_prod_pvt: u32,
    rsp_cons: u32,
    nr_ents: u32,
    _types: PhantomData<fn(Req) -> Rsp>,
}

impl<Req: AsBytes, Rsp: FromBytes> FrontRing<Req, Rsp> {
    /// Bytes per ring entry: the size of the C union of `Req` and `Rsp`.
    const ENTRY_SIZE: usize = {
        let size = if size_of::<Req>() > size_of::<Rsp>() {
            size_of::<Req>()
        } else {
            size_of::<Rsp>()
        };
        let align = if align_of::<Req>() > align_of::<Rsp>() {
            align_of::<Req>()
        } else {
            align_of::<Rsp>()
        };
        size.div_ceil(align) * align
    };

    /// Sets up a ring in `nr_pages` pages granted to the other end of `dev`
    /// (`SHARED_RING_INIT` and `FRONT_RING_INIT`).
    pub fn new(dev: &Device<device::Bound>, nr_pages: u32) -> Result<Self> {
        if Self::ENTRY_SIZE == 0 || align_of::<Req>() > 8 || align_of::<Rsp>() > 8 {
            return Err(EINVAL);
        }
        let ring = SharedRing::new(dev, nr_pages)?;
        let entries = (ring.size() - RING_HEADER) / Self::ENTRY_SIZE;
        let entries = u32::try_from(entries).map_err(|_| EINVAL)?;
        if entries == 0 {
            return Err(EINVAL);
        }
        // `__RING_SIZE()`: rounded down to a power of two.
        let nr_ents = 1u32 << (31 - entries.leading_zeros());
        let this = Self {
            ring,
            req_prod_pvt: 0,
            rsp_cons: 0,
            nr_ents,
            _types: PhantomData,
        };
        // The pages are zeroed; the event indices start at 1.
        this.write_index(1, 1);
        this.write_index(3, 1);
        Ok(this)
    }

    /// Index field `n` of the shared header: 0 `req_prod`, 1 `req_event`, 2 `rsp_prod`,
    /// 3 `rsp_event`.
    fn index_ptr(&self, n: usize) -> *mut u32 {
        // `n < 4`: inside the first page, aligned (the page is).
        self.ring.as_ptr().wrapping_add(n * 4).cast()
    }

    fn read_index(&self, n: usize) -> u32 {
        // SAFETY: `index_ptr` is a valid, aligned `u32` of the shared page.
        unsafe { ptr::read_volatile(self.index_ptr(n)) }
    }

    fn write_index(&self, n: usize, v: u32) {
        // SAFETY: `index_ptr` is a valid, aligned `u32` of the shared page.
        unsafe { ptr::write_volatile(self.index_ptr(n), v) }
    }

    fn entry_ptr(&self, idx: u32) -> *mut u8 {
        let slot = (idx & (self.nr_ents - 1)) as usize;
        // `RING_HEADER + nr_ents * ENTRY_SIZE <= size()` by the choice of `nr_ents`.
        self.ring
            .as_ptr()
            .wrapping_add(RING_HEADER + slot * Self::ENTRY_SIZE)
    }

    /// The grant references of the ring pages, to publish in xenstore (`ring-ref`).
    pub fn grant_refs(&self) -> &[GrantRef] {
        self.ring.grant_refs()
    }

    /// The number of entries (`RING_SIZE`).
    pub fn size(&self) -> u32 {
        self.nr_ents
    }

    /// Requests that can still be pushed (`RING_FREE_REQUESTS`).
    pub fn free_requests(&self) -> u32 {
        self.nr_ents
            .saturating_sub(self.req_prod_pvt.wrapping_sub(self.rsp_cons))
    }

    /// Copies `req` into the next free entry (`RING_GET_REQUEST`); `EBUSY` if the ring is
    /// full. The other end sees it after [`FrontRing::push_requests_and_check_notify`].
    pub fn push_request(&mut self, req: &Req) -> Result {
        if self.free_requests() == 0 {
            return Err(EBUSY);
        }
        let dst = self.entry_ptr(self.req_prod_pvt);
        for (i, &b) in req.as_bytes().iter().enumerate() {
            // SAFETY: `dst` has `ENTRY_SIZE >= size_of::<Req>()` bytes in the shared ring.
            unsafe { ptr::write_volatile(dst.wrapping_add(i), b) };
        }
        self.req_prod_pvt = self.req_prod_pvt.wrapping_add(1);
        Ok(())
    }

    /// Publishes the pushed requests; whether the other end must be notified
    /// (`RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`).
    pub fn push_requests_and_check_notify(&mut self) -> bool {
        let old = self.read_index(0);
        let new = self.req_prod_pvt;
        // SAFETY: A memory barrier, no preconditions: the other end sees the requests before
        // the new producer index.
        unsafe { bindings::virt_wmb() };
        self.write_index(0, new);
        // SAFETY: As above: the other end sees the new index before we read `req_event`.
        unsafe { bindings::virt_mb() };
        let event = self.read_index(1);
        new.wrapping_sub(event) < new.wrapping_sub(old)
    }

    /// Responses waiting to be consumed (`RING_HAS_UNCONSUMED_RESPONSES`).
    pub fn has_unconsumed_responses(&self) -> bool {
        self.read_index(2) != self.rsp_cons
    }

    /// Copies out the next response, if any. `EIO` if the other end claims more responses
    /// than there are requests in flight.
    pub fn next_response(&mut self) -> Result<Option<Rsp>> {
        let prod = self.read_index(2);
        // SAFETY: A memory barrier, no preconditions: read the responses after the index.
        unsafe { bindings::virt_rmb() };
        let ready = prod.wrapping_sub(self.rsp_cons);
        if ready == 0 {
            return Ok(None);
        }
        if ready > self.req_prod_pvt.wrapping_sub(self.rsp_cons) {
            return Err(EIO);
        }
        let src = self.entry_ptr(self.rsp_cons);
        let mut rsp = core::mem::MaybeUninit::<Rsp>::uninit();
        let dst = rsp.as_mut_ptr().cast::<u8>();
        for i in 0..size_of::<Rsp>() {
            // SAFETY: `src` has `ENTRY_SIZE >= size_of::<Rsp>()` bytes in the shared ring;
            // `dst` has `size_of::<Rsp>()` writable bytes.
            unsafe { dst.add(i).write(ptr::read_volatile(src.wrapping_add(i))) };
        }
        self.rsp_cons = self.rsp_cons.wrapping_add(1);
        // SAFETY: Every byte was written above, and `Rsp: FromBytes` accepts any bytes.
        Ok(Some(unsafe { rsp.assume_init() }))
    }

    /// Asks for an event at the next response unless one is already there; whether there are
    /// responses to consume (`RING_FINAL_CHECK_FOR_RESPONSES`).
    pub fn final_check_for_responses(&mut self) -> bool {
        if self.has_unconsumed_responses() {
            return true;
        }
        self.write_index(3, self.rsp_cons.wrapping_add(1));
        // SAFETY: A memory barrier, no preconditions: `rsp_event` is visible before we look
        // at `rsp_prod` again.
        unsafe { bindings::virt_mb() };
        self.has_unconsumed_responses()
    }
}

/// An event channel to the other end, bound to an interrupt handler; closed on drop.
///
/// `T::handle` runs in hard interrupt context. [`EventChannel::notify`] signals the other end.
#[pin_data(PinnedDrop)]
pub struct EventChannel<T: Handler + 'static> {
    #[pin]
    handler: T,
    port: bindings::evtchn_port_t,
    irq: c_int,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: The handler is `Sync` (it runs on any CPU); the channel can be closed from any thread.
unsafe impl<T: Handler + Send + 'static> Send for EventChannel<T> {}

// SAFETY: `&EventChannel` gives access to the `Sync` handler and integers.
unsafe impl<T: Handler + 'static> Sync for EventChannel<T> {}

impl<T: Handler + 'static> EventChannel<T> {
    /// Allocates an event channel to the other end of `dev` (`xenbus_alloc_evtchn()`) and binds
    /// it to `handler` (`bind_evtchn_to_irqhandler()`); `name` shows in `/proc/interrupts`.
    pub fn new(
        dev: &Device<device::Bound>,
        name: &'static CStr,
        handler: impl PinInit<T, Error>,
    ) -> impl PinInit<Self, Error> {
        let xdev = dev.as_raw();
        try_pin_init!(&this in Self {
            handler <- handler,
            port: 0,
            irq: 0,
            _pin: PhantomPinned,
            _: {
                let mut port: bindings::evtchn_port_t = 0;
                // SAFETY: `xdev` is a valid, bound device; `port` is writable.
                to_result(unsafe { bindings::xenbus_alloc_evtchn(xdev, &mut port) })?;
                // SAFETY: `port` is ours; the callback matches `irq_handler_t`; `name` is
                // static; the cookie points to `Self`, whose other fields are initialised and
                // which stays pinned until `drop` unbinds the handler.
                let irq = unsafe {
                    bindings::bind_evtchn_to_irqhandler(
                        port,
                        Some(Self::handle_callback),
                        0,
                        name.as_char_ptr(),
                        this.as_ptr().cast(),
                    )
                };
                if irq <= 0 {
                    // SAFETY: `port` was allocated above and is not bound.
                    unsafe { bindings::xenbus_free_evtchn(xdev, port) };
                    Err::<(), Error>(if irq < 0 { Error::from_errno(irq) } else { EINVAL })?;
                }
                // SAFETY: `this` is the object being initialised; the handler only reads the
                // `handler` field, not these.
                unsafe {
                    (&raw mut (*this.as_ptr()).port).write(port);
                    (&raw mut (*this.as_ptr()).irq).write(irq);
                }
            },
        })
    }

    /// The event channel port, to publish in xenstore (`event-channel`).
    pub fn port(&self) -> u32 {
        self.port
    }

    /// Signals the other end.
    pub fn notify(&self) {
        // SAFETY: `irq` is bound to our event channel until `drop`.
        unsafe { bindings::notify_remote_via_irq(self.irq) };
    }

    /// The handler.
    pub fn handler(&self) -> &T {
        &self.handler
    }

    /// # Safety
    ///
    /// Called by the interrupt core only, with the cookie [`EventChannel::new`] bound.
    unsafe extern "C" fn handle_callback(
        _irq: c_int,
        cookie: *mut c_void,
    ) -> bindings::irqreturn_t {
        let this = cookie.cast_const().cast::<Self>();
        // SAFETY: The cookie is the `EventChannel` that bound this handler, pinned and alive
        // until it unbinds it (which waits for running handlers); `handler` is initialised.
        let handler = unsafe { &(*this).handler };
        bindings::irqreturn_t(T::handle(handler) as c_uint)
    }
}

#[pinned_drop]
impl<T: Handler + 'static> PinnedDrop for EventChannel<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: `irq` was bound with `self` as cookie in `new`. Unbinding waits for running
        // handlers and closes the event channel.
        unsafe {
            bindings::unbind_from_irqhandler(
                self.irq as c_uint,
                ptr::from_ref::<Self>(&*self).cast_mut().cast(),
            )
        };
    }
}

/// A page granted to the other end, for data; on drop the grant is ended and the page freed
/// (later, if the other end still has it mapped).
///
/// The page is shared: it is only read and written with volatile copies.
pub struct GrantedPage {
    page: ManuallyDrop<Page>,
    vaddr: NonNull<u8>,
    gref: GrantRef,
}

// SAFETY: The page is only accessed through volatile copies; the grant can be ended from any
// thread.
unsafe impl Send for GrantedPage {}

// SAFETY: See above; `&GrantedPage` does not give references into the page.
unsafe impl Sync for GrantedPage {}

impl GrantedPage {
    /// Allocates a zeroed page and grants the other end of `dev` access to it: read-only if
    /// `readonly`, else read-write (e.g. for the other end to put data read from a disk).
    pub fn new(dev: &Device<device::Bound>, readonly: bool) -> Result<Self> {
        crate::static_assert!(crate::page::PAGE_SIZE == XEN_PAGE_SIZE);
        let page = Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?;
        // SAFETY: `page` is a valid, allocated page (not highmem on x86-64).
        let vaddr = unsafe { bindings::xen_page_address(page.as_ptr()) };
        let vaddr = NonNull::new(vaddr.cast::<u8>()).ok_or(ENOMEM)?;
        // SAFETY: `page` is a valid page.
        let gfn = unsafe { bindings::xen_page_to_gfn(page.as_ptr()) };
        // SAFETY: Grants the other end access to our page; no other preconditions.
        let r = unsafe {
            bindings::gnttab_grant_foreign_access(dev.otherend_id(), gfn, c_int::from(readonly))
        };
        let gref = GrantRef::try_from(r).map_err(|_| Error::from_errno(r))?;
        Ok(Self {
            page: ManuallyDrop::new(page),
            vaddr,
            gref,
        })
    }

    /// The grant reference, for the other end.
    pub fn gref(&self) -> GrantRef {
        self.gref
    }

    /// Copies `out.len()` bytes from `offset` in the page.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result {
        let end = offset.checked_add(out.len()).ok_or(EINVAL)?;
        if end > XEN_PAGE_SIZE {
            return Err(EINVAL);
        }
        for (i, b) in out.iter_mut().enumerate() {
            // SAFETY: `offset + i < XEN_PAGE_SIZE`: inside the page.
            *b = unsafe { ptr::read_volatile(self.vaddr.as_ptr().add(offset + i)) };
        }
        Ok(())
    }

    /// Copies `data` to `offset` in the page.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result {
        let end = offset.checked_add(data.len()).ok_or(EINVAL)?;
        if end > XEN_PAGE_SIZE {
            return Err(EINVAL);
        }
        for (i, &b) in data.iter().enumerate() {
            // SAFETY: `offset + i < XEN_PAGE_SIZE`: inside the page.
            unsafe { ptr::write_volatile(self.vaddr.as_ptr().add(offset + i), b) };
        }
        Ok(())
    }
}

impl Drop for GrantedPage {
    fn drop(&mut self) {
        // SAFETY: `gref` grants `page`; `gnttab_end_foreign_access()` takes over our reference
        // to the page and frees it once the grant is no longer in use. `page` is not used
        // again (it is in a `ManuallyDrop` that is never dropped).
        unsafe { bindings::gnttab_end_foreign_access(self.gref, self.page.as_ptr()) };
    }
}
