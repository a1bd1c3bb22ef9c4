// SPDX-License-Identifier: GPL-2.0

//! Rate limiting for messages a peer or a user can trigger at will.

use kernel::{
    new_spinlock,
    prelude::*,
    sync::SpinLock,
    time::{Delta, Instant, Monotonic},
};

/// At most `BURST` messages per `INTERVAL`; the rest are counted and reported with the next
/// message that gets through. (The kernel crate has no `printk_ratelimit` yet.)
#[pin_data]
pub(crate) struct RateLimit {
    #[pin]
    window: SpinLock<Window>,
}

struct Window {
    start: Option<Instant<Monotonic>>,
    printed: u32,
    suppressed: u32,
}

const BURST: u32 = 10;
const INTERVAL: Delta = Delta::from_millis(5000);

impl RateLimit {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            window <- new_spinlock!(Window { start: None, printed: 0, suppressed: 0 }, "xenbus_rs_ratelimit"),
        })
    }

    /// Whether a message may be printed now; `Some(n)` also reports `n` suppressed ones.
    pub(crate) fn check(&self) -> Option<u32> {
        let mut w = self.window.lock();
        let expired = match w.start {
            None => true,
            Some(start) => start.elapsed() > INTERVAL,
        };
        if expired {
            w.start = Some(Instant::now());
            w.printed = 0;
        }
        if w.printed >= BURST {
            w.suppressed = w.suppressed.saturating_add(1);
            return None;
        }
        w.printed += 1;
        Some(core::mem::take(&mut w.suppressed))
    }
}

/// `pr_warn!` through a [`RateLimit`].
macro_rules! warn_ratelimited {
    ($limit:expr, $($arg:tt)*) => {
        if let Some(suppressed) = $limit.check() {
            if suppressed > 0 {
                kernel::pr_warn!("{} similar messages suppressed\n", suppressed);
            }
            kernel::pr_warn!($($arg)*);
        }
    };
}
pub(crate) use warn_ratelimited;
