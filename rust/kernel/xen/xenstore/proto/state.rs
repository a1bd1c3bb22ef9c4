// SPDX-License-Identifier: GPL-2.0

//! Xenbus device states (`enum xenbus_state` in `xen/interface/io/xenbus.h`).
//!
//! Frontends and backends publish their state as a decimal number in the
//! `state` node of their xenstore directory.

/// The state of one end of a split (frontend/backend) device.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum XenbusState {
    /// 0: unknown or not yet published.
    Unknown = 0,
    /// 1: initialising.
    Initialising = 1,
    /// 2: finished early initialisation, waiting for the other end.
    InitWait = 2,
    /// 3: initialised, waiting for a connection.
    Initialised = 3,
    /// 4: connected.
    Connected = 4,
    /// 5: the device is being closed.
    Closing = 5,
    /// 6: the device is closed.
    Closed = 6,
    /// 7: reconfiguration requested.
    Reconfiguring = 7,
    /// 8: reconfiguration done.
    Reconfigured = 8,
}

/// Why a xenstore value could not be parsed as a [`XenbusState`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateParseError {
    /// The value is not a plain unsigned decimal number (or is absurdly long).
    NotANumber,
    /// The value is a decimal number, but not a known state (0..=8).
    OutOfRange,
}

/// Longest accepted decimal state value, in bytes (leading zeros included).
const STATE_VALUE_MAX: usize = 16;

impl XenbusState {
    /// All states, in numeric order.
    pub const ALL: [XenbusState; 9] = [
        XenbusState::Unknown,
        XenbusState::Initialising,
        XenbusState::InitWait,
        XenbusState::Initialised,
        XenbusState::Connected,
        XenbusState::Closing,
        XenbusState::Closed,
        XenbusState::Reconfiguring,
        XenbusState::Reconfigured,
    ];

    /// Converts a raw number to a state; `None` if it is not in 0..=8.
    pub const fn from_u32(value: u32) -> Option<XenbusState> {
        Some(match value {
            0 => XenbusState::Unknown,
            1 => XenbusState::Initialising,
            2 => XenbusState::InitWait,
            3 => XenbusState::Initialised,
            4 => XenbusState::Connected,
            5 => XenbusState::Closing,
            6 => XenbusState::Closed,
            7 => XenbusState::Reconfiguring,
            8 => XenbusState::Reconfigured,
            _ => return None,
        })
    }

    /// The raw number of the state.
    pub const fn as_u32(self) -> u32 {
        self as u32
    }

    /// The name of the state, identical to Linux's `xenbus_strstate()`.
    pub const fn as_str(self) -> &'static str {
        match self {
            XenbusState::Unknown => "Unknown",
            XenbusState::Initialising => "Initialising",
            XenbusState::InitWait => "InitWait",
            XenbusState::Initialised => "Initialised",
            XenbusState::Connected => "Connected",
            XenbusState::Closing => "Closing",
            XenbusState::Closed => "Closed",
            XenbusState::Reconfiguring => "Reconfiguring",
            XenbusState::Reconfigured => "Reconfigured",
        }
    }

    /// Parses a state from the raw value of a xenstore `state` node.
    ///
    /// Accepted: one or more ASCII digits (leading zeros allowed, at most
    /// 16 bytes) whose value is 0..=8. Nothing else is accepted — no sign, no
    /// whitespace, no trailing NUL, no hexadecimal. Writers (Linux's
    /// `xenbus_switch_state()`, libxl, QEMU) all use `"%d"`, so this is
    /// stricter than Linux's `sscanf("%d")` only for malformed values, which
    /// callers should treat like Linux treats a failed read (as
    /// [`XenbusState::Unknown`], or as a protocol error).
    pub fn parse(value: &[u8]) -> Result<XenbusState, StateParseError> {
        if value.is_empty() || value.len() > STATE_VALUE_MAX {
            return Err(StateParseError::NotANumber);
        }
        let mut acc: u64 = 0;
        for &b in value {
            if !b.is_ascii_digit() {
                return Err(StateParseError::NotANumber);
            }
            // At most 16 digits: cannot overflow a u64.
            acc = acc
                .wrapping_mul(10)
                .wrapping_add(u64::from(b.wrapping_sub(b'0')));
        }
        match u32::try_from(acc) {
            Ok(v) => XenbusState::from_u32(v).ok_or(StateParseError::OutOfRange),
            Err(_) => Err(StateParseError::OutOfRange),
        }
    }

    /// The decimal representation written to xenstore (`"0"` ..= `"8"`).
    pub const fn as_value(self) -> &'static [u8] {
        match self {
            XenbusState::Unknown => b"0",
            XenbusState::Initialising => b"1",
            XenbusState::InitWait => b"2",
            XenbusState::Initialised => b"3",
            XenbusState::Connected => b"4",
            XenbusState::Closing => b"5",
            XenbusState::Closed => b"6",
            XenbusState::Reconfiguring => b"7",
            XenbusState::Reconfigured => b"8",
        }
    }
}

/// Like Linux's `xenbus_strstate()`: the state name, or `"INVALID"` for a
/// number outside 0..=8.
pub const fn strstate(value: u32) -> &'static str {
    match XenbusState::from_u32(value) {
        Some(s) => s.as_str(),
        None => "INVALID",
    }
}
