// SPDX-License-Identifier: GPL-2.0

//! Rust xenbus frontend sample: reads sector 0 of a Xen virtual block device.
//!
//! It binds to `vbd` devices (like `xen-blkfront`, which must not be loaded at the same time)
//! and connects to the backend (`blkback`) with the standard handshake:
//!
//! 1. probe: allocate a one-page ring granted to the backend, an event channel and a data
//!    page; switch to Initialising (after a previous unbind the device is Closed);
//! 2. backend InitWait: publish `ring-ref` and `event-channel` in one xenstore transaction,
//!    switch to Initialised;
//! 3. backend Connected: issue one `BLKIF_OP_READ` of sector 0 into the data page, wait for
//!    the response (the event channel's interrupt), log the bytes, switch to Connected;
//! 4. remove (`echo vbd-51712 > /sys/bus/xen/drivers/rust_xen_vbd/unbind`; the bus holds a
//!    reference to the module while the driver is bound): switch to Closing, wait for the
//!    backend to close, switch to Closed, wait for the backend to be Closed (it has unmapped
//!    our pages); dropping the data then ends the grants and frees the pages.
//!
//! After a successful read it logs `read sector 0 ok: <text>` (the bytes up to the first NUL,
//! non-printable ones as `?`); tests parse that line.

use kernel::{
    bindings,
    device::{Bound, Core},
    irq::{Handler, IrqReturn},
    new_condvar, new_spinlock_irq,
    prelude::*,
    str::BStr,
    sync::{Arc, CondVar, CondVarTimeoutResult, SpinLockIrq},
    time::{delay::fsleep, msecs_to_jiffies, Delta},
    transmute::{AsBytes, FromBytes},
    xen::{
        xenbus::{self, Device, EventChannel, FrontRing, GrantedPage, XenbusState},
        xenstore::{self, PathStr},
    },
};

/// `BLKIF_MAX_SEGMENTS_PER_REQUEST`.
const MAX_SEGMENTS: usize = bindings::BLKIF_MAX_SEGMENTS_PER_REQUEST as usize;
/// The id of our only request, echoed in the response.
const REQUEST_ID: u64 = 0x5242_4453_4543_0000;
/// How long the backend gets to answer the read, and to close.
const TIMEOUT_MS: u32 = 5000;
/// How many bytes of sector 0 are logged (at most).
const SHOWN: usize = 64;

/// One segment of a request (`struct blkif_request_segment`).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Segment {
    gref: u32,
    first_sect: u8,
    last_sect: u8,
    _pad: u16,
}

/// A read or write request (`struct blkif_request` with `u.rw`).
///
/// The C struct is packed, but its fields are naturally aligned, so this unpacked struct has
/// the same layout (checked below against the bindings) and no padding.
#[repr(C)]
#[derive(Clone, Copy)]
struct RwRequest {
    operation: u8,
    nr_segments: u8,
    handle: u16,
    _pad1: u32,
    id: u64,
    sector_number: u64,
    seg: [Segment; MAX_SEGMENTS],
}

// SAFETY: `RwRequest` and `Segment` are `repr(C)` structs of integers without padding (the
// sizes are checked below), so all their bytes are initialised.
unsafe impl AsBytes for RwRequest {}

/// A response (`struct blkif_response`).
#[repr(C)]
#[derive(Clone, Copy)]
struct Response {
    id: u64,
    operation: u8,
    _pad: u8,
    status: i16,
    _pad2: u32,
}

// SAFETY: `Response` is a `repr(C)` struct of integers: any bit pattern is a valid value.
unsafe impl FromBytes for Response {}

macro_rules! rw_offset {
    ($field:ident) => {
        core::mem::offset_of!(bindings::blkif_request, u)
            + core::mem::offset_of!(bindings::blkif_request_rw, $field)
    };
}

kernel::static_assert!(size_of::<Segment>() == size_of::<bindings::blkif_request_segment>());
kernel::static_assert!(size_of::<RwRequest>() == size_of::<bindings::blkif_request>());
kernel::static_assert!(core::mem::offset_of!(RwRequest, nr_segments) == rw_offset!(nr_segments));
kernel::static_assert!(core::mem::offset_of!(RwRequest, handle) == rw_offset!(handle));
kernel::static_assert!(core::mem::offset_of!(RwRequest, id) == rw_offset!(id));
kernel::static_assert!(
    core::mem::offset_of!(RwRequest, sector_number) == rw_offset!(sector_number)
);
kernel::static_assert!(core::mem::offset_of!(RwRequest, seg) == rw_offset!(seg));
kernel::static_assert!(size_of::<Response>() == size_of::<bindings::blkif_response>());
kernel::static_assert!(
    core::mem::offset_of!(Response, status)
        == core::mem::offset_of!(bindings::blkif_response, status)
);

type Ring = FrontRing<RwRequest, Response>;

/// What the interrupt handler and the reader share.
struct Io {
    ring: Ring,
    /// The response to our request, once the interrupt handler took it off the ring.
    response: Option<Response>,
    /// The backend broke the ring protocol.
    broken: bool,
}

#[pin_data]
struct Shared {
    #[pin]
    io: SpinLockIrq<Io>,
    /// Notified by the interrupt handler.
    #[pin]
    changed: CondVar,
}

impl Shared {
    fn new(ring: Ring) -> impl PinInit<Self> {
        pin_init!(Self {
            io <- new_spinlock_irq!(Io { ring, response: None, broken: false }, "rust_xen_vbd_io"),
            changed <- new_condvar!("rust_xen_vbd_changed"),
        })
    }
}

/// The event channel's interrupt handler: takes the responses off the ring.
struct Irq {
    shared: Arc<Shared>,
}

impl Handler for Irq {
    fn handle(&self) -> IrqReturn {
        let mut io = self.shared.io.lock();
        loop {
            loop {
                match io.ring.next_response() {
                    Ok(Some(rsp)) => io.response = Some(rsp),
                    Ok(None) => break,
                    Err(_) => {
                        io.broken = true;
                        break;
                    }
                }
            }
            if io.broken || !io.ring.final_check_for_responses() {
                break;
            }
        }
        drop(io);
        self.shared.changed.notify_all();
        IrqReturn::Handled
    }
}

/// The driver's data for one vbd.
#[pin_data]
struct Vbd {
    /// Declared first so that it is dropped first: no interrupt after this.
    #[pin]
    evtchn: EventChannel<Irq>,
    shared: Arc<Shared>,
    /// Sector 0 goes here.
    page: GrantedPage,
    /// The virtual device number (`<id>` in `device/vbd/<id>`).
    handle: u16,
}

impl Vbd {
    /// Publishes the ring and the event channel, then says Initialised.
    fn publish(&self, dev: &Device<Bound>) -> Result {
        let node = dev.path()?;
        let ring_ref = node.join(b"ring-ref")?;
        let event_channel = node.join(b"event-channel")?;
        let gref = {
            let io = self.shared.io.lock();
            io.ring.grant_refs().first().copied().ok_or(EINVAL)?
        };
        let port = self.evtchn.port();
        xenstore::transaction(10, |tx| {
            tx.write_fmt(&ring_ref, fmt!("{gref}"))?;
            tx.write_fmt(&event_channel, fmt!("{port}"))
        })?;
        dev.switch_state(XenbusState::Initialised)
    }

    /// Reads sector 0 into the data page and returns its first [`SHOWN`] bytes.
    fn read_sector0(&self) -> Result<[u8; SHOWN]> {
        let mut seg = [Segment::default(); MAX_SEGMENTS];
        if let Some(first) = seg.first_mut() {
            // One 512-byte sector: sector 0 of the page.
            *first = Segment {
                gref: self.page.gref(),
                first_sect: 0,
                last_sect: 0,
                _pad: 0,
            };
        }
        let req = RwRequest {
            operation: bindings::BLKIF_OP_READ as u8,
            nr_segments: 1,
            handle: self.handle,
            _pad1: 0,
            id: REQUEST_ID,
            sector_number: 0,
            seg,
        };
        let mut io = self.shared.io.lock();
        io.response = None;
        io.ring.push_request(&req)?;
        if io.ring.push_requests_and_check_notify() {
            self.evtchn.notify();
        }
        let mut left = msecs_to_jiffies(TIMEOUT_MS);
        let rsp = loop {
            if io.broken {
                return Err(EIO);
            }
            if let Some(rsp) = io.response.take() {
                break rsp;
            }
            match self
                .shared
                .changed
                .wait_interruptible_timeout(&mut io, left)
            {
                CondVarTimeoutResult::Woken { jiffies } => left = jiffies,
                CondVarTimeoutResult::Timeout => return Err(ETIMEDOUT),
                CondVarTimeoutResult::Signal { .. } => return Err(EINTR),
            }
        };
        drop(io);
        if rsp.id != REQUEST_ID
            || u32::from(rsp.operation) != bindings::BLKIF_OP_READ
            || i32::from(rsp.status) != bindings::BLKIF_RSP_OKAY as i32
        {
            pr_warn!(
                "response id {:#x} operation {} status {}\n",
                rsp.id,
                rsp.operation,
                rsp.status
            );
            return Err(EIO);
        }
        let mut data = [0u8; SHOWN];
        self.page.read(0, &mut data)?;
        Ok(data)
    }

    /// The backend is connected: read, log, say Connected.
    fn connect(&self, dev: &Device<Bound>, otherend: &PathStr) -> Result {
        let sectors = xenstore::read(&otherend.join(b"sectors")?)?;
        let sector_size = xenstore::read_u32_or(&otherend.join(b"sector-size")?, 512);
        dev_info!(
            dev,
            "backend connected: {} sectors of {} bytes\n",
            BStr::from_bytes(&sectors),
            sector_size
        );
        let data = self.read_sector0()?;
        let len = data.iter().position(|&b| b == 0).unwrap_or(data.len());
        let mut text = [b'?'; SHOWN];
        for (t, &b) in text.iter_mut().zip(data.iter().take(len)) {
            if b.is_ascii_graphic() {
                *t = b;
            }
        }
        let text = text.get(..len).unwrap_or(&[]);
        dev_info!(dev, "read sector 0 ok: {}\n", BStr::from_bytes(text));
        dev.switch_state(XenbusState::Connected)
    }
}

/// Polls the backend's state until `done` accepts it or [`TIMEOUT_MS`] passed.
fn wait_backend(
    dev: &Device<Bound>,
    otherend: &PathStr,
    done: impl Fn(XenbusState) -> bool,
) -> XenbusState {
    let mut state = dev.read_state(otherend);
    for _ in 0..TIMEOUT_MS / 10 {
        if done(state) {
            break;
        }
        fsleep(Delta::from_millis(10));
        state = dev.read_state(otherend);
    }
    state
}

struct VbdDriver;

kernel::xenbus_device_table!(VBD_TABLE, (), [("vbd", ())]);

impl xenbus::Driver for VbdDriver {
    type IdInfo = ();
    type Data<'bound> = Vbd;

    const ID_TABLE: xenbus::IdTable<()> = &VBD_TABLE;
    // Boot and `insmod` do not wait long for a device this sample fails to connect.
    const NOT_ESSENTIAL: bool = true;

    fn probe<'bound>(
        dev: &'bound Device<Core<'_>>,
        _info: &'bound (),
    ) -> impl PinInit<Vbd, Error> + 'bound {
        let handle = dev
            .nodename()
            .to_bytes()
            .rsplit(|&b| b == b'/')
            .next()
            .and_then(|id| core::str::from_utf8(id).ok())
            .and_then(|id| id.parse::<u16>().ok())
            .ok_or(EINVAL);
        let shared =
            Ring::new(dev, 1).and_then(|ring| Arc::pin_init(Shared::new(ring), GFP_KERNEL));
        let irq = shared
            .as_ref()
            .map(|s| Irq { shared: s.clone() })
            .map_err(|e| *e);
        if let Ok(otherend) = dev.otherend() {
            dev_info!(dev, "probing, backend {}\n", otherend);
        }
        // Only the `Bound` part of `dev` is needed from here on.
        let dev: &'bound Device<Bound> = dev;
        try_pin_init!(Vbd {
            evtchn <- EventChannel::new(dev, c"rust_xen_vbd", irq),
            shared: shared?,
            page: GrantedPage::new(dev, false)?,
            handle: handle?,
            _: {
                // After an earlier unbind the device is Closed: start over, the backend then
                // goes (back) to InitWait.
                if dev.state() != XenbusState::Initialising {
                    dev.switch_state(XenbusState::Initialising)?;
                }
            },
        })
    }

    fn otherend_changed<'bound>(
        dev: &'bound Device<Bound>,
        this: Pin<&Vbd>,
        otherend: &PathStr,
        state: XenbusState,
    ) {
        dev_dbg!(dev, "backend {} is {}\n", otherend, state.as_str());
        match state {
            XenbusState::InitWait if dev.state() == XenbusState::Initialising => {
                if let Err(e) = this.publish(dev) {
                    dev.fatal(e, fmt!("publishing the ring"));
                }
            }
            XenbusState::Connected if dev.state() == XenbusState::Initialised => {
                if let Err(e) = this.connect(dev, otherend) {
                    dev.fatal(e, fmt!("reading sector 0"));
                }
            }
            XenbusState::Closing => {
                let _ = dev.frontend_closed();
            }
            _ => {}
        }
    }

    fn remove<'bound>(dev: &'bound Device<Core<'_>>, _this: Pin<&Vbd>) {
        let Ok(otherend) = dev.otherend() else {
            return;
        };
        if matches!(
            dev.state(),
            XenbusState::Initialised | XenbusState::Connected
        ) {
            let _ = dev.switch_state(XenbusState::Closing);
            wait_backend(dev, otherend, |s| {
                matches!(
                    s,
                    XenbusState::Closing | XenbusState::Closed | XenbusState::Unknown
                )
            });
        }
        let _ = dev.switch_state(XenbusState::Closed);
        // The backend unmaps our ring and data page before it says Closed.
        let state = wait_backend(dev, otherend, |s| {
            matches!(s, XenbusState::Closed | XenbusState::Unknown)
        });
        dev_info!(dev, "disconnected, backend {}\n", state.as_str());
    }
}

kernel::module_xenbus_driver! {
    type: VbdDriver,
    name: "rust_xen_vbd",
    authors: ["xenbus-rs developers"],
    description: "Rust xenbus frontend sample: reads sector 0 of a Xen vbd",
    license: "GPL v2",
}
