// SPDX-License-Identifier: GPL-2.0

//! Watch tokens.
//!
//! Every `WATCH` request carries an opaque token that xenstore echoes back in
//! each `WATCH_EVENT`. Linux's C core uses the hexadecimal address of the
//! `struct xenbus_watch` as token and looks it up in its watch list; this
//! module instead encodes a watch-table slot `id` and a `generation` counter
//! as `xbrs:<id>:<generation>` (ASCII, unsigned decimal, no leading zeros),
//! so that a token can be validated without trusting any pointer and a stale
//! event for a removed-and-reused slot can be recognised.

use super::wire::{decimal_u32, format_decimal, DECIMAL_MAX};

/// The prefix of every token produced by [`format`].
pub const TOKEN_PREFIX: &[u8] = b"xbrs:";

/// Maximum length of a token produced by [`format`] (without NUL):
/// prefix, two `u32` in decimal (10 digits each) and one separator.
pub const TOKEN_MAX: usize = TOKEN_PREFIX.len() + 10 + 1 + 10;

/// Copies `src` to `out` at `*len` and advances `*len` (silently truncating
/// at the end of `out`, which cannot happen for the sizes used here).
fn put(out: &mut [u8], len: &mut usize, src: &[u8]) {
    for (dst, b) in out.iter_mut().skip(*len).zip(src.iter()) {
        *dst = *b;
        *len = len.saturating_add(1);
    }
}

/// Formats the token for watch slot `id` with `generation` into `out` and
/// returns the token bytes (a prefix of `out`, without NUL).
pub fn format(id: u32, generation: u32, out: &mut [u8; TOKEN_MAX]) -> &[u8] {
    let mut len = 0;
    let mut digits = [0u8; DECIMAL_MAX];
    put(out, &mut len, TOKEN_PREFIX);
    put(out, &mut len, format_decimal(u64::from(id), &mut digits));
    put(out, &mut len, b":");
    put(
        out,
        &mut len,
        format_decimal(u64::from(generation), &mut digits),
    );
    out.get(..len).unwrap_or(&[])
}

/// Parses a token produced by [`format`], returning `(id, generation)`.
///
/// Strict: the token must be exactly what [`format`] would produce for the
/// returned pair (canonical decimal without leading zeros, so there is
/// exactly one accepted spelling per pair); anything else (user-space
/// tokens, Linux pointer tokens, garbage, a trailing NUL) gives `None`.
pub fn parse(token: &[u8]) -> Option<(u32, u32)> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let sep = rest.iter().position(|&b| b == b':')?;
    let id = decimal_u32(rest.get(..sep)?).ok()?;
    let generation = decimal_u32(rest.get(sep.checked_add(1)?..)?).ok()?;
    Some((id, generation))
}
