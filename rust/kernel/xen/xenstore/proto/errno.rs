// SPDX-License-Identifier: GPL-2.0

//! Xenstore error names and Linux errno numbers.
//!
//! Xenstore reports failures as a message of type `ERROR` whose payload is the
//! *name* of an errno value followed by a NUL (for example `b"ENOENT\0"`), see
//! `docs/misc/xenstore.txt` ("Error replies") and `xsd_errors[]` in
//! `xen/include/public/io/xs_wire.h`. This module maps those names to the
//! Linux (generic, as used on x86 and arm64) errno numbers and back.
//!
//! All errno numbers in this module are *positive*, like the values in the C
//! `xsd_errors[]` table; kernel callers negate them when returning an error.

/// `EPERM`: operation not permitted.
pub const EPERM: i32 = 1;
/// `ENOENT`: no such file or directory.
pub const ENOENT: i32 = 2;
/// `EIO`: I/O error.
pub const EIO: i32 = 5;
/// `E2BIG`: argument list too long (xenstore: reply would be too large).
pub const E2BIG: i32 = 7;
/// `EAGAIN`: try again (xenstore: transaction conflict).
pub const EAGAIN: i32 = 11;
/// `ENOMEM`: out of memory.
pub const ENOMEM: i32 = 12;
/// `EACCES`: permission denied.
pub const EACCES: i32 = 13;
/// `EBUSY`: device or resource busy.
pub const EBUSY: i32 = 16;
/// `EEXIST`: file exists.
pub const EEXIST: i32 = 17;
/// `EISDIR`: is a directory.
pub const EISDIR: i32 = 21;
/// `EINVAL`: invalid argument.
pub const EINVAL: i32 = 22;
/// `ENOSPC`: no space left on device (xenstore: quota exceeded).
pub const ENOSPC: i32 = 28;
/// `EROFS`: read-only file system.
pub const EROFS: i32 = 30;
/// `ENOSYS`: function not implemented (xenstore: unknown message type).
pub const ENOSYS: i32 = 38;
/// `ENOTEMPTY`: directory not empty.
pub const ENOTEMPTY: i32 = 39;
/// `EISCONN`: transport endpoint is already connected.
pub const EISCONN: i32 = 106;

/// One entry of the xenstore error table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XsdError {
    /// Positive Linux errno number.
    pub errno: i32,
    /// Name as transmitted on the wire (without the trailing NUL).
    pub name: &'static str,
}

/// Defines [`XSD_ERRORS`] and [`wire_body`] from one list of names, so the two cannot
/// disagree.
macro_rules! xsd_errors {
    ($($errno:ident),* $(,)?) => {
        /// The xenstore error table, in protocol order (the order of `xsd_errors[]`
        /// in Xen's `xs_wire.h`; Linux's copy of the header stops at `E2BIG`, newer
        /// Xen versions add `EPERM`).
        pub const XSD_ERRORS: [XsdError; [$(stringify!($errno)),*].len()] = [$(XsdError {
            errno: $errno,
            name: stringify!($errno),
        }),*];

        /// The whole payload of an `ERROR` reply for `errno`: its wire name and the NUL.
        ///
        /// For replies made without xenstored (the `/dev/xen/xenbus` device answers some
        /// requests itself): a static body needs no allocation. The sign of `errno` is
        /// ignored; `None` for errno values xenstore has no name for, as [`wire_name`].
        #[inline]
        pub fn wire_body(errno: i32) -> Option<&'static [u8]> {
            match errno.unsigned_abs() as i32 {
                $($errno => Some(concat!(stringify!($errno), "\0").as_bytes()),)*
                _ => None,
            }
        }
    };
}

xsd_errors!(
    EINVAL, EACCES, EEXIST, EISDIR, ENOENT, ENOMEM, ENOSPC, EIO, ENOTEMPTY, ENOSYS, EROFS, EBUSY,
    EAGAIN, EISCONN, E2BIG, EPERM
);

/// The error carried by a xenstore `ERROR` reply.
///
/// An unknown error name is mapped to [`EINVAL`], exactly like Linux's
/// `get_error()` in `drivers/xen/xenbus/xenbus_xs.c`, but [`XsErrno::is_known`]
/// tells the caller so that it can log the unexpected name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XsErrno {
    errno: i32,
    known: bool,
}

impl XsErrno {
    /// Looks up an error name as sent by xenstore.
    ///
    /// `name` must not include the trailing NUL (use
    /// [`super::wire::error_of`] to decode a whole `ERROR` payload).
    /// The comparison is exact and case sensitive.
    pub fn from_wire(name: &[u8]) -> XsErrno {
        for e in XSD_ERRORS.iter() {
            if e.name.as_bytes() == name {
                return XsErrno {
                    errno: e.errno,
                    known: true,
                };
            }
        }
        XsErrno {
            errno: EINVAL,
            known: false,
        }
    }

    /// Builds a value from a known errno number (sign ignored).
    ///
    /// Returns `None` if xenstore has no name for this errno.
    pub fn from_errno(errno: i32) -> Option<XsErrno> {
        let abs = errno.unsigned_abs();
        for e in XSD_ERRORS.iter() {
            if e.errno.unsigned_abs() == abs {
                return Some(XsErrno {
                    errno: e.errno,
                    known: true,
                });
            }
        }
        None
    }

    /// The positive Linux errno number ([`EINVAL`] for unknown names).
    pub const fn errno(self) -> i32 {
        self.errno
    }

    /// Whether the name was one of [`XSD_ERRORS`].
    pub const fn is_known(self) -> bool {
        self.known
    }

    /// The wire name of [`XsErrno::errno`] (`"EINVAL"` for unknown names).
    pub fn wire_name(self) -> &'static str {
        match wire_name(self.errno) {
            Some(n) => n,
            None => "EINVAL",
        }
    }
}

/// Maps an error name (without trailing NUL) to `(errno, known)`.
///
/// Unknown names give `(EINVAL, false)`, like Linux's `get_error()`.
pub fn errno_from_wire(name: &[u8]) -> (i32, bool) {
    let e = XsErrno::from_wire(name);
    (e.errno(), e.is_known())
}

/// Maps an errno number to its xenstore wire name (without NUL).
///
/// The sign of `errno` is ignored so that both `ENOENT` and `-ENOENT` work.
/// Returns `None` for errno values xenstore has no name for; callers that
/// synthesize error replies (e.g. the `/dev/xen/xenbus` device) typically
/// fall back to `"EINVAL"` in that case.
pub fn wire_name(errno: i32) -> Option<&'static str> {
    let abs = errno.unsigned_abs();
    for e in XSD_ERRORS.iter() {
        if e.errno.unsigned_abs() == abs {
            return Some(e.name);
        }
    }
    None
}
