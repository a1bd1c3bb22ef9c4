// SPDX-License-Identifier: GPL-2.0

//! Xenstore path validation and joining.
//!
//! Rules (from `docs/misc/xenstore.txt` and xenstored's node name checks):
//!
//! - allowed bytes: ASCII letters and digits and `-` `/` `_` `@`;
//! - no empty path, no `//`, no trailing `/` except for the root `"/"`;
//! - absolute paths (starting with `/`) are at most [`ABS_PATH_MAX`] bytes,
//!   relative paths (relative to `/local/domain/<domid>`) at most
//!   [`REL_PATH_MAX`] bytes;
//! - `@` "should be avoided except to specify special watches": this module
//!   accepts it only as the first byte of a special watch path such as
//!   `@introduceDomain` or `@releaseDomain` (xenstored itself accepts `@`
//!   anywhere in a node name; a client-side check may be stricter).
//!
//! The limits count bytes of the path itself, without the NUL terminator.

use super::wire::{ABS_PATH_MAX, REL_PATH_MAX};

/// What kind of path a validated path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    /// Starts with `/` (including the root `"/"` itself).
    Absolute,
    /// Does not start with `/` or `@`; xenstored resolves it relative to the
    /// caller's domain path `/local/domain/<domid>`.
    Relative,
    /// A special watch path starting with `@` (e.g. `@releaseDomain`).
    /// Only meaningful for `WATCH`/`UNWATCH`.
    Special,
}

/// Why a path was rejected (or could not be joined).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// The path is empty.
    Empty,
    /// The path is longer than [`ABS_PATH_MAX`] (absolute or special) or
    /// [`REL_PATH_MAX`] (relative).
    TooLong,
    /// A byte other than ASCII alphanumerics and `-/_@` (this includes NUL).
    InvalidChar,
    /// Two consecutive `/`.
    DoubleSlash,
    /// A trailing `/` on a path other than `"/"`.
    TrailingSlash,
    /// An `@` that is not the first byte, or a special path that is only `@`.
    MisplacedAt,
    /// [`join`]: the output buffer is too small.
    BufferTooSmall,
}

/// Whether `b` may appear in a xenstore path.
pub const fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'@')
}

/// Validates a path (without NUL terminator) and tells its kind.
pub fn validate(path: &[u8]) -> Result<PathKind, PathError> {
    let first = match path.first() {
        Some(&b) => b,
        None => return Err(PathError::Empty),
    };
    let kind = match first {
        b'/' => PathKind::Absolute,
        b'@' => PathKind::Special,
        _ => PathKind::Relative,
    };
    let max = match kind {
        PathKind::Relative => REL_PATH_MAX,
        PathKind::Absolute | PathKind::Special => ABS_PATH_MAX,
    };
    if path.len() > max {
        return Err(PathError::TooLong);
    }
    if kind == PathKind::Special && path.len() == 1 {
        return Err(PathError::MisplacedAt);
    }
    let mut prev = 0u8;
    for (i, &b) in path.iter().enumerate() {
        if !is_path_byte(b) {
            return Err(PathError::InvalidChar);
        }
        if b == b'@' && i != 0 {
            return Err(PathError::MisplacedAt);
        }
        if b == b'/' && prev == b'/' {
            return Err(PathError::DoubleSlash);
        }
        prev = b;
    }
    if prev == b'/' && path.len() > 1 {
        return Err(PathError::TrailingSlash);
    }
    Ok(kind)
}

/// Joins `dir` and `node` like Linux's `join()` in `xenbus_xs.c`: an empty
/// `node` gives `dir` unchanged, anything else gives `dir/node`.
///
/// Writes the result (without NUL) to the start of `out` and returns its
/// length. No validation is done: as in Linux, `join(b"/", b"x")` gives
/// `"//x"`, which [`validate`] (and xenstored) reject; validate the result
/// before use.
pub fn join(dir: &[u8], node: &[u8], out: &mut [u8]) -> Result<usize, PathError> {
    let sep: &[u8] = if node.is_empty() { b"" } else { b"/" };
    let total = dir
        .len()
        .checked_add(sep.len())
        .and_then(|n| n.checked_add(node.len()))
        .ok_or(PathError::BufferTooSmall)?;
    let dst = out.get_mut(..total).ok_or(PathError::BufferTooSmall)?;
    let (d, rest) = dst.split_at_mut(dir.len());
    d.copy_from_slice(dir);
    let (s, n) = rest.split_at_mut(sep.len());
    s.copy_from_slice(sep);
    n.copy_from_slice(node);
    Ok(total)
}
