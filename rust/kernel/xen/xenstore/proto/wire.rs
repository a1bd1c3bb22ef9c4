// SPDX-License-Identifier: GPL-2.0

//! The xenstore wire protocol (`xen/include/public/io/xs_wire.h`,
//! `docs/misc/xenstore.txt`).
//!
//! Every message, in both directions, is a 16-byte [`Header`] (four native
//! endian `u32`: type, request id, transaction id, payload length) followed
//! by `len` bytes of payload, with `len <= PAYLOAD_MAX`. Payloads are mostly
//! NUL-terminated strings.
//!
//! This module provides:
//!
//! - [`MsgType`] and the protocol limits;
//! - request encoding without allocation ([`Part`], [`Request`]);
//! - reply parsing on `(Header, &[u8])` ([`error_of`], [`strings`],
//!   [`watch_event`], [`transaction_id`], [`directory_part`], [`perms`], ...);
//! - [`MessageReader`], a streaming assembler that accepts the byte stream in
//!   arbitrary pieces, and [`MessageWriter`], which tracks how much of an
//!   encoded message has been pushed into the ring.
//!
//! Nothing in this module panics on any input: all received data is
//! treated as hostile.

use super::errno::XsErrno;

/// Size of [`Header`] on the wire (`sizeof(struct xsd_sockmsg)`).
pub const HEADER_LEN: usize = 16;
/// Maximum payload length in either direction (`XENSTORE_PAYLOAD_MAX`).
/// A header announcing more is a fatal protocol error.
pub const PAYLOAD_MAX: usize = 4096;
/// Maximum length of an absolute path (`XENSTORE_ABS_PATH_MAX`).
pub const ABS_PATH_MAX: usize = 3072;
/// Maximum length of a relative path (`XENSTORE_REL_PATH_MAX`).
pub const REL_PATH_MAX: usize = 2048;
/// Maximum size of a whole message (header and payload).
pub const MESSAGE_MAX: usize = HEADER_LEN + PAYLOAD_MAX;
/// Maximum number of decimal digits of a `u64`.
pub const DECIMAL_MAX: usize = 20;
/// Maximum length of one permission string (kind letter and a `u32` domid,
/// without NUL).
pub const PERM_MAX: usize = 11;
/// Maximum number of [`Part`]s in a [`Request`].
pub const MAX_PARTS: usize = 4;

/// Xenstore message types (`enum xsd_sockmsg_type`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MsgType {
    /// `XS_CONTROL` (formerly `XS_DEBUG`).
    Control = 0,
    /// `XS_DIRECTORY`: list the children of a node.
    Directory = 1,
    /// `XS_READ`: read the value of a node.
    Read = 2,
    /// `XS_GET_PERMS`: read the permissions of a node.
    GetPerms = 3,
    /// `XS_WATCH`: register a watch.
    Watch = 4,
    /// `XS_UNWATCH`: remove a watch.
    Unwatch = 5,
    /// `XS_TRANSACTION_START`.
    TransactionStart = 6,
    /// `XS_TRANSACTION_END`.
    TransactionEnd = 7,
    /// `XS_INTRODUCE` (dom0 tools only).
    Introduce = 8,
    /// `XS_RELEASE` (dom0 tools only).
    Release = 9,
    /// `XS_GET_DOMAIN_PATH`.
    GetDomainPath = 10,
    /// `XS_WRITE`: write the value of a node.
    Write = 11,
    /// `XS_MKDIR`: create a node.
    Mkdir = 12,
    /// `XS_RM`: remove a node and its children.
    Rm = 13,
    /// `XS_SET_PERMS`: set the permissions of a node.
    SetPerms = 14,
    /// `XS_WATCH_EVENT`: asynchronous watch notification (request id 0).
    WatchEvent = 15,
    /// `XS_ERROR`: error reply, payload is an errno name.
    Error = 16,
    /// `XS_IS_DOMAIN_INTRODUCED` (dom0 tools only).
    IsDomainIntroduced = 17,
    /// `XS_RESUME` (dom0 tools only).
    Resume = 18,
    /// `XS_SET_TARGET` (dom0 tools only).
    SetTarget = 19,
    /// `XS_RESET_WATCHES`: drop all watches and transactions of the caller.
    /// (Type 20, `XS_RESTRICT`, has been removed from the protocol.)
    ResetWatches = 21,
    /// `XS_DIRECTORY_PART`: list children in chunks.
    DirectoryPart = 22,
    /// `XS_GET_FEATURE`.
    GetFeature = 23,
    /// `XS_SET_FEATURE`.
    SetFeature = 24,
    /// `XS_GET_QUOTA`.
    GetQuota = 25,
    /// `XS_SET_QUOTA`.
    SetQuota = 26,
    /// `XS_INVALID`: guaranteed never to be a valid type.
    Invalid = 0xffff,
}

impl MsgType {
    /// `XS_DEBUG`, the old name of [`MsgType::Control`].
    pub const DEBUG: MsgType = MsgType::Control;

    /// Converts a raw type; `None` for unknown values (including the
    /// removed type 20).
    pub const fn from_u32(value: u32) -> Option<MsgType> {
        Some(match value {
            0 => MsgType::Control,
            1 => MsgType::Directory,
            2 => MsgType::Read,
            3 => MsgType::GetPerms,
            4 => MsgType::Watch,
            5 => MsgType::Unwatch,
            6 => MsgType::TransactionStart,
            7 => MsgType::TransactionEnd,
            8 => MsgType::Introduce,
            9 => MsgType::Release,
            10 => MsgType::GetDomainPath,
            11 => MsgType::Write,
            12 => MsgType::Mkdir,
            13 => MsgType::Rm,
            14 => MsgType::SetPerms,
            15 => MsgType::WatchEvent,
            16 => MsgType::Error,
            17 => MsgType::IsDomainIntroduced,
            18 => MsgType::Resume,
            19 => MsgType::SetTarget,
            21 => MsgType::ResetWatches,
            22 => MsgType::DirectoryPart,
            23 => MsgType::GetFeature,
            24 => MsgType::SetFeature,
            25 => MsgType::GetQuota,
            26 => MsgType::SetQuota,
            0xffff => MsgType::Invalid,
            _ => return None,
        })
    }

    /// The raw value.
    pub const fn as_u32(self) -> u32 {
        self as u32
    }

    /// The protocol name without `XS_` prefix (as printed by xenstored),
    /// e.g. `"TRANSACTION_START"`.
    pub const fn name(self) -> &'static str {
        match self {
            MsgType::Control => "CONTROL",
            MsgType::Directory => "DIRECTORY",
            MsgType::Read => "READ",
            MsgType::GetPerms => "GET_PERMS",
            MsgType::Watch => "WATCH",
            MsgType::Unwatch => "UNWATCH",
            MsgType::TransactionStart => "TRANSACTION_START",
            MsgType::TransactionEnd => "TRANSACTION_END",
            MsgType::Introduce => "INTRODUCE",
            MsgType::Release => "RELEASE",
            MsgType::GetDomainPath => "GET_DOMAIN_PATH",
            MsgType::Write => "WRITE",
            MsgType::Mkdir => "MKDIR",
            MsgType::Rm => "RM",
            MsgType::SetPerms => "SET_PERMS",
            MsgType::WatchEvent => "WATCH_EVENT",
            MsgType::Error => "ERROR",
            MsgType::IsDomainIntroduced => "IS_DOMAIN_INTRODUCED",
            MsgType::Resume => "RESUME",
            MsgType::SetTarget => "SET_TARGET",
            MsgType::ResetWatches => "RESET_WATCHES",
            MsgType::DirectoryPart => "DIRECTORY_PART",
            MsgType::GetFeature => "GET_FEATURE",
            MsgType::SetFeature => "SET_FEATURE",
            MsgType::GetQuota => "GET_QUOTA",
            MsgType::SetQuota => "SET_QUOTA",
            MsgType::Invalid => "INVALID",
        }
    }
}

/// Errors of request encoding and reply parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// A header announces, or an encoded request would need, a payload
    /// longer than [`PAYLOAD_MAX`]. Received: fatal for the connection.
    PayloadTooLong,
    /// The output buffer is too small for the encoded message.
    BufferTooSmall,
    /// A [`Part::Str`] contains a NUL byte (it would split the string).
    EmbeddedNul,
    /// A [`Part::Perms`] without any entry (`SET_PERMS` needs at least
    /// the owner entry).
    EmptyPerms,
    /// More than [`MAX_PARTS`] parts were given to [`Request::new`].
    TooManyParts,
    /// A reply that must consist of NUL-terminated strings does not end
    /// with a NUL (like Linux's `split_strings()`, this is rejected).
    Unterminated,
    /// A reply has the wrong number of strings (e.g. a watch event that is
    /// not exactly path and token).
    StringCount,
    /// An empty string where none is allowed (e.g. an empty child name).
    EmptyString,
    /// Not a canonical unsigned decimal number, or it overflows.
    BadNumber,
    /// `TRANSACTION_START` returned id 0, which means "no transaction".
    ZeroTxId,
    /// A malformed permission string.
    BadPerm,
    /// A `DIRECTORY_PART` chunk that has no children but is not the last
    /// one: following it would loop forever.
    NoProgress,
    /// [`MessageWriter::load_raw`]: `header.len` differs from the payload
    /// length.
    LengthMismatch,
    /// [`MessageReader::commit`] / [`MessageWriter::advance`] with more
    /// bytes than outstanding.
    Overrun,
    /// [`MessageWriter::load`] while a message is still being sent.
    Busy,
}

/// A message header (`struct xsd_sockmsg`), in host representation.
///
/// Fields are raw `u32`s because a received header may contain anything;
/// use [`Header::msg_type`] and [`Header::check`] to interpret it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Header {
    /// Message type, see [`MsgType`].
    pub ty: u32,
    /// Request id, echoed in the reply; 0 in watch events.
    pub req_id: u32,
    /// Transaction id, 0 if not in a transaction.
    pub tx_id: u32,
    /// Payload length in bytes.
    pub len: u32,
}

impl Header {
    /// Builds a header.
    pub const fn new(ty: MsgType, req_id: u32, tx_id: u32, len: u32) -> Header {
        Header {
            ty: ty as u32,
            req_id,
            tx_id,
            len,
        }
    }

    /// Serialises the header (native endian, like the C struct).
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let [t0, t1, t2, t3] = self.ty.to_ne_bytes();
        let [r0, r1, r2, r3] = self.req_id.to_ne_bytes();
        let [x0, x1, x2, x3] = self.tx_id.to_ne_bytes();
        let [l0, l1, l2, l3] = self.len.to_ne_bytes();
        [
            t0, t1, t2, t3, r0, r1, r2, r3, x0, x1, x2, x3, l0, l1, l2, l3,
        ]
    }

    /// Deserialises a header. No validation: see [`Header::check`].
    pub fn from_bytes(bytes: &[u8; HEADER_LEN]) -> Header {
        let [t0, t1, t2, t3, r0, r1, r2, r3, x0, x1, x2, x3, l0, l1, l2, l3] = *bytes;
        Header {
            ty: u32::from_ne_bytes([t0, t1, t2, t3]),
            req_id: u32::from_ne_bytes([r0, r1, r2, r3]),
            tx_id: u32::from_ne_bytes([x0, x1, x2, x3]),
            len: u32::from_ne_bytes([l0, l1, l2, l3]),
        }
    }

    /// Deserialises a header from the first [`HEADER_LEN`] bytes of
    /// `bytes`; `None` if there are fewer.
    pub fn from_slice(bytes: &[u8]) -> Option<Header> {
        let head: &[u8; HEADER_LEN] = bytes.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Header::from_bytes(head))
    }

    /// Checks the length limit: `len > PAYLOAD_MAX` is a protocol error.
    ///
    /// The type is deliberately not checked (use [`Header::msg_type`]):
    /// an unknown type can still be skipped safely once its length is known.
    pub fn check(&self) -> Result<(), WireError> {
        if self.payload_len() > PAYLOAD_MAX {
            Err(WireError::PayloadTooLong)
        } else {
            Ok(())
        }
    }

    /// The decoded type, `None` if unknown.
    pub const fn msg_type(&self) -> Option<MsgType> {
        MsgType::from_u32(self.ty)
    }

    /// `len` as `usize` (saturating on targets where it would not fit).
    pub fn payload_len(&self) -> usize {
        usize::try_from(self.len).unwrap_or(usize::MAX)
    }
}

/// Number of decimal digits of `v` (at least 1).
pub const fn decimal_len(v: u64) -> usize {
    let mut n: usize = 1;
    let mut rest = v / 10;
    while rest != 0 {
        n = n.saturating_add(1);
        rest /= 10;
    }
    n
}

/// Formats `v` in decimal into `out` and returns the digits (a prefix of
/// `out`, without NUL).
pub fn format_decimal(v: u64, out: &mut [u8; DECIMAL_MAX]) -> &[u8] {
    let len = decimal_len(v);
    let mut rest = v;
    let mut i = len;
    while i > 0 {
        i = i.saturating_sub(1);
        if let Some(d) = out.get_mut(i) {
            // `rest % 10` is < 10: the cast is exact.
            *d = b'0'.wrapping_add((rest % 10) as u8);
        }
        rest /= 10;
    }
    out.get(..len).unwrap_or(&[])
}

/// Parses a canonical unsigned decimal `u64`: one or more ASCII digits, no
/// sign, no whitespace, no leading zero (except `"0"` itself), no overflow.
///
/// Leading zeros are rejected because C clients parse several xenstore
/// numbers with `strtoul(s, NULL, 0)`, which would read them as octal.
pub fn decimal_u64(s: &[u8]) -> Result<u64, WireError> {
    if s.is_empty() || (s.len() > 1 && s.first() == Some(&b'0')) {
        return Err(WireError::BadNumber);
    }
    let mut acc: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return Err(WireError::BadNumber);
        }
        acc = acc
            .checked_mul(10)
            .and_then(|a| a.checked_add(u64::from(b.wrapping_sub(b'0'))))
            .ok_or(WireError::BadNumber)?;
    }
    Ok(acc)
}

/// Like [`decimal_u64`], for values that must fit a `u32`.
pub fn decimal_u32(s: &[u8]) -> Result<u32, WireError> {
    u32::try_from(decimal_u64(s)?).map_err(|_| WireError::BadNumber)
}

/// Access rights of one permission entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PermKind {
    /// `n`: no access.
    None,
    /// `r`: read only.
    Read,
    /// `w`: write only.
    Write,
    /// `b`: read and write.
    Both,
}

impl PermKind {
    /// The wire letter (`n`, `r`, `w` or `b`).
    pub const fn as_char(self) -> u8 {
        match self {
            PermKind::None => b'n',
            PermKind::Read => b'r',
            PermKind::Write => b'w',
            PermKind::Both => b'b',
        }
    }

    /// Decodes a wire letter.
    pub const fn from_char(c: u8) -> Option<PermKind> {
        match c {
            b'n' => Some(PermKind::None),
            b'r' => Some(PermKind::Read),
            b'w' => Some(PermKind::Write),
            b'b' => Some(PermKind::Both),
            _ => None,
        }
    }
}

/// One permission entry, `<letter><domid>` on the wire (e.g. `r5`).
///
/// In a permission list the first entry names the owner of the node (who
/// always has full access) and its kind is the access for every domain not
/// listed later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Perm {
    /// Access rights.
    pub kind: PermKind,
    /// Domain id (xenstore domids fit 16 bits; any `u32` is representable).
    pub domid: u32,
}

impl Perm {
    /// Builds a permission entry.
    pub const fn new(kind: PermKind, domid: u32) -> Perm {
        Perm { kind, domid }
    }

    /// Parses one entry (without NUL): a kind letter followed by a canonical
    /// decimal domid (see [`decimal_u32`]).
    pub fn parse(s: &[u8]) -> Result<Perm, WireError> {
        let (&c, digits) = s.split_first().ok_or(WireError::BadPerm)?;
        let kind = PermKind::from_char(c).ok_or(WireError::BadPerm)?;
        let domid = decimal_u32(digits).map_err(|_| WireError::BadPerm)?;
        Ok(Perm { kind, domid })
    }

    /// Formats the entry into `out` and returns it (without NUL).
    pub fn format<'b>(&self, out: &'b mut [u8; PERM_MAX]) -> &'b [u8] {
        let mut digits = [0u8; DECIMAL_MAX];
        let d = format_decimal(u64::from(self.domid), &mut digits);
        let mut len: usize = 0;
        if let Some(first) = out.first_mut() {
            *first = self.kind.as_char();
            len = 1;
        }
        for (dst, src) in out.iter_mut().skip(1).zip(d.iter()) {
            *dst = *src;
            len = len.saturating_add(1);
        }
        out.get(..len).unwrap_or(&[])
    }

    /// Length of the formatted entry, without NUL.
    pub const fn encoded_len(&self) -> usize {
        // `u32` -> `u64` is lossless; `From` is not usable in a `const fn`.
        decimal_len(self.domid as u64).saturating_add(1)
    }
}

/// One element of a request payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part<'a> {
    /// A string, sent followed by a NUL. Must not contain NUL.
    Str(&'a [u8]),
    /// Raw bytes, sent as they are (e.g. the value of `WRITE`).
    Raw(&'a [u8]),
    /// A number, sent as decimal digits followed by a NUL.
    Decimal(u64),
    /// A non-empty permission list, each entry followed by a NUL.
    Perms(&'a [Perm]),
}

impl Part<'_> {
    /// Encoded length in bytes (saturating; too long parts are rejected by
    /// the encoder anyway).
    pub fn encoded_len(&self) -> usize {
        match *self {
            Part::Str(s) => s.len().saturating_add(1),
            Part::Raw(s) => s.len(),
            Part::Decimal(v) => decimal_len(v).saturating_add(1),
            Part::Perms(ps) => ps.iter().fold(0usize, |acc, p| {
                acc.saturating_add(p.encoded_len()).saturating_add(1)
            }),
        }
    }

    fn check(&self) -> Result<(), WireError> {
        match *self {
            Part::Str(s) if s.contains(&0) => Err(WireError::EmbeddedNul),
            Part::Perms([]) => Err(WireError::EmptyPerms),
            _ => Ok(()),
        }
    }
}

/// Writes consecutive pieces into a byte buffer without ever panicking.
struct Cursor<'b> {
    out: &'b mut [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn put(&mut self, src: &[u8]) -> Result<(), WireError> {
        let end = self
            .pos
            .checked_add(src.len())
            .ok_or(WireError::BufferTooSmall)?;
        self.out
            .get_mut(self.pos..end)
            .ok_or(WireError::BufferTooSmall)?
            .copy_from_slice(src);
        self.pos = end;
        Ok(())
    }

    fn put_part(&mut self, part: &Part<'_>) -> Result<(), WireError> {
        match *part {
            Part::Str(s) => {
                self.put(s)?;
                self.put(&[0])
            }
            Part::Raw(s) => self.put(s),
            Part::Decimal(v) => {
                let mut buf = [0u8; DECIMAL_MAX];
                self.put(format_decimal(v, &mut buf))?;
                self.put(&[0])
            }
            Part::Perms(ps) => {
                for p in ps {
                    let mut buf = [0u8; PERM_MAX];
                    self.put(p.format(&mut buf))?;
                    self.put(&[0])?;
                }
                Ok(())
            }
        }
    }
}

/// A request ready to be encoded: a type and up to [`MAX_PARTS`] parts.
///
/// The typed constructors build exactly the payloads of
/// `docs/misc/xenstore.txt`; they do not validate paths (use
/// [`super::path::validate`]). Encoding rejects payloads longer than
/// [`PAYLOAD_MAX`] and strings with embedded NULs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    ty: MsgType,
    parts: [Part<'a>; MAX_PARTS],
    count: usize,
}

impl<'a> Request<'a> {
    const fn from_parts(ty: MsgType, parts: [Part<'a>; MAX_PARTS], count: usize) -> Self {
        Request { ty, parts, count }
    }

    const fn one(ty: MsgType, a: Part<'a>) -> Self {
        Self::from_parts(ty, [a, Part::Raw(&[]), Part::Raw(&[]), Part::Raw(&[])], 1)
    }

    const fn two(ty: MsgType, a: Part<'a>, b: Part<'a>) -> Self {
        Self::from_parts(ty, [a, b, Part::Raw(&[]), Part::Raw(&[])], 2)
    }

    /// A request of any type with the given parts (at most [`MAX_PARTS`]).
    pub fn new(ty: MsgType, parts: &[Part<'a>]) -> Result<Self, WireError> {
        if parts.len() > MAX_PARTS {
            return Err(WireError::TooManyParts);
        }
        let mut all = [Part::Raw(&[]); MAX_PARTS];
        for (dst, src) in all.iter_mut().zip(parts.iter()) {
            *dst = *src;
        }
        Ok(Self::from_parts(ty, all, parts.len()))
    }

    /// A request whose payload is `payload` verbatim (used to forward
    /// messages written by user space to `/dev/xen/xenbus`).
    pub const fn raw(ty: MsgType, payload: &'a [u8]) -> Self {
        Self::one(ty, Part::Raw(payload))
    }

    /// `READ <path>|` — reply: the raw value (no NUL added).
    pub const fn read(path: &'a [u8]) -> Self {
        Self::one(MsgType::Read, Part::Str(path))
    }

    /// `WRITE <path>|<value>` — the value is sent without trailing NUL.
    pub const fn write(path: &'a [u8], value: &'a [u8]) -> Self {
        Self::two(MsgType::Write, Part::Str(path), Part::Raw(value))
    }

    /// `MKDIR <path>|`.
    pub const fn mkdir(path: &'a [u8]) -> Self {
        Self::one(MsgType::Mkdir, Part::Str(path))
    }

    /// `RM <path>|`.
    pub const fn rm(path: &'a [u8]) -> Self {
        Self::one(MsgType::Rm, Part::Str(path))
    }

    /// `DIRECTORY <path>|` — reply: `<child>|*`, see [`strings`].
    pub const fn directory(path: &'a [u8]) -> Self {
        Self::one(MsgType::Directory, Part::Str(path))
    }

    /// `DIRECTORY_PART <path>|<offset>|` — reply: see [`directory_part`].
    ///
    /// `offset` is the byte offset into the complete child list; start with
    /// 0 and add [`DirectoryPart::consumed`] of each reply.
    pub const fn directory_part(path: &'a [u8], offset: u32) -> Self {
        // `u32` -> `u64` is lossless; `From` is not usable in a `const fn`.
        Self::two(
            MsgType::DirectoryPart,
            Part::Str(path),
            Part::Decimal(offset as u64),
        )
    }

    /// `GET_PERMS <path>|` — reply: see [`perms`].
    pub const fn get_perms(path: &'a [u8]) -> Self {
        Self::one(MsgType::GetPerms, Part::Str(path))
    }

    /// `SET_PERMS <path>|<perm>|+` — `perms[0]` is the owner and default.
    pub const fn set_perms(path: &'a [u8], perms: &'a [Perm]) -> Self {
        Self::two(MsgType::SetPerms, Part::Str(path), Part::Perms(perms))
    }

    /// `WATCH <path>|<token>|`.
    pub const fn watch(path: &'a [u8], token: &'a [u8]) -> Self {
        Self::two(MsgType::Watch, Part::Str(path), Part::Str(token))
    }

    /// `WATCH <path>|<token>|<depth>|` — only valid if the server advertises
    /// `XENSTORE_SERVER_FEATURE_WATCHDEPTH`.
    pub const fn watch_depth(path: &'a [u8], token: &'a [u8], depth: u32) -> Self {
        Self::from_parts(
            MsgType::Watch,
            [
                Part::Str(path),
                Part::Str(token),
                // `u32` -> `u64` is lossless; `From` is not usable in a `const fn`.
                Part::Decimal(depth as u64),
                Part::Raw(&[]),
            ],
            3,
        )
    }

    /// `UNWATCH <path>|<token>|`.
    pub const fn unwatch(path: &'a [u8], token: &'a [u8]) -> Self {
        Self::two(MsgType::Unwatch, Part::Str(path), Part::Str(token))
    }

    /// `TRANSACTION_START |` (a single NUL) — must be sent with tx_id 0;
    /// reply: see [`transaction_id`].
    pub const fn transaction_start() -> Self {
        Self::one(MsgType::TransactionStart, Part::Str(b""))
    }

    /// `TRANSACTION_END T|` (commit) or `F|` (abort).
    pub const fn transaction_end(commit: bool) -> Self {
        let flag: &'static [u8] = if commit { b"T" } else { b"F" };
        Self::one(MsgType::TransactionEnd, Part::Str(flag))
    }

    /// `GET_DOMAIN_PATH <domid>|` — reply: `<path>|`, see [`domain_path`].
    pub const fn get_domain_path(domid: u32) -> Self {
        // `u32` -> `u64` is lossless; `From` is not usable in a `const fn`.
        Self::one(MsgType::GetDomainPath, Part::Decimal(domid as u64))
    }

    /// `RESET_WATCHES |`.
    pub const fn reset_watches() -> Self {
        Self::one(MsgType::ResetWatches, Part::Str(b""))
    }

    /// The message type.
    pub const fn msg_type(&self) -> MsgType {
        self.ty
    }

    /// The parts of the payload.
    pub fn parts(&self) -> &[Part<'a>] {
        self.parts.get(..self.count).unwrap_or(&[])
    }

    /// Payload length in bytes (saturating).
    pub fn payload_len(&self) -> usize {
        self.parts()
            .iter()
            .fold(0usize, |acc, p| acc.saturating_add(p.encoded_len()))
    }

    /// Validates the parts and returns the payload length.
    fn checked_payload_len(&self) -> Result<usize, WireError> {
        for p in self.parts() {
            p.check()?;
        }
        let len = self.payload_len();
        if len > PAYLOAD_MAX {
            return Err(WireError::PayloadTooLong);
        }
        Ok(len)
    }

    /// The header this request is sent with.
    pub fn header(&self, req_id: u32, tx_id: u32) -> Result<Header, WireError> {
        let len = self.checked_payload_len()?;
        let len = u32::try_from(len).map_err(|_| WireError::PayloadTooLong)?;
        Ok(Header::new(self.ty, req_id, tx_id, len))
    }

    /// Writes only the payload to the start of `out`; returns its length.
    pub fn encode_payload(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let len = self.checked_payload_len()?;
        if out.len() < len {
            return Err(WireError::BufferTooSmall);
        }
        let mut cur = Cursor { out, pos: 0 };
        for p in self.parts() {
            cur.put_part(p)?;
        }
        Ok(cur.pos)
    }

    /// Writes header and payload to the start of `out` and returns the
    /// total length. Nothing is written if an error is returned.
    pub fn encode(&self, req_id: u32, tx_id: u32, out: &mut [u8]) -> Result<usize, WireError> {
        let header = self.header(req_id, tx_id)?;
        let total = HEADER_LEN
            .checked_add(header.payload_len())
            .ok_or(WireError::PayloadTooLong)?;
        if out.len() < total {
            return Err(WireError::BufferTooSmall);
        }
        let mut cur = Cursor { out, pos: 0 };
        cur.put(&header.to_bytes())?;
        for p in self.parts() {
            cur.put_part(p)?;
        }
        Ok(cur.pos)
    }
}

/// The error of an `ERROR` reply payload (`<ERRNAME>|`).
///
/// The name is taken up to the first NUL (or the whole payload if there is
/// none), which is what Linux's `strcmp()`-based `get_error()` sees. Unknown
/// names give `EINVAL` with [`XsErrno::is_known`] false.
pub fn error_of(payload: &[u8]) -> XsErrno {
    let name = match payload.iter().position(|&b| b == 0) {
        Some(n) => payload.get(..n).unwrap_or(&[]),
        None => payload,
    };
    XsErrno::from_wire(name)
}

/// Iterator over the NUL-terminated strings of a payload (each yielded
/// without its NUL). Created by [`strings`].
#[derive(Clone, Debug)]
pub struct Strings<'a> {
    rest: &'a [u8],
}

impl<'a> Strings<'a> {
    /// The bytes not yet iterated over (each string with its NUL).
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Strings<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        match self.rest.iter().position(|&b| b == 0) {
            Some(n) => {
                let s = self.rest.get(..n).unwrap_or(&[]);
                self.rest = self.rest.get(n.saturating_add(1)..).unwrap_or(&[]);
                Some(s)
            }
            None => {
                // Unreachable for values built by `strings()`, which checks
                // termination; yield the tail rather than panic.
                let s = self.rest;
                self.rest = &[];
                Some(s)
            }
        }
    }
}

/// Splits a payload made of NUL-terminated strings (`<s>|*`, e.g. a
/// `DIRECTORY` reply).
///
/// An empty payload has no strings. A non-empty payload whose last byte is
/// not NUL is rejected, like Linux's `split_strings()` does.
pub fn strings(payload: &[u8]) -> Result<Strings<'_>, WireError> {
    match payload.last() {
        None | Some(0) => Ok(Strings { rest: payload }),
        Some(_) => Err(WireError::Unterminated),
    }
}

/// Alias of [`strings`] for `DIRECTORY` replies (`<child>|*`).
pub fn directory(payload: &[u8]) -> Result<Strings<'_>, WireError> {
    strings(payload)
}

/// A payload that must be exactly one NUL-terminated string (`<s>|`);
/// returns the string without NUL.
pub fn single_string(payload: &[u8]) -> Result<&[u8], WireError> {
    let mut it = strings(payload)?;
    let s = it.next().ok_or(WireError::StringCount)?;
    if it.next().is_some() {
        return Err(WireError::StringCount);
    }
    Ok(s)
}

/// The `GET_DOMAIN_PATH` reply (`<path>|`).
pub fn domain_path(payload: &[u8]) -> Result<&[u8], WireError> {
    single_string(payload)
}

/// A `WATCH_EVENT` payload (`<path>|<token>|`): returns `(path, token)`.
///
/// Exactly two NUL-terminated strings are required (Linux's
/// `xs_watch_msg()` requires two strings; this is slightly stricter in also
/// requiring the second NUL, which xenstored always sends).
pub fn watch_event(payload: &[u8]) -> Result<(&[u8], &[u8]), WireError> {
    let mut it = strings(payload)?;
    let path = it.next().ok_or(WireError::StringCount)?;
    let token = it.next().ok_or(WireError::StringCount)?;
    if it.next().is_some() {
        return Err(WireError::StringCount);
    }
    Ok((path, token))
}

/// The `TRANSACTION_START` reply (`<id>|`): a canonical decimal `u32`
/// followed by exactly one NUL.
///
/// Id 0 is rejected ([`WireError::ZeroTxId`]): it means "no transaction",
/// and accepting it would silently run the "transaction" non-atomically.
pub fn transaction_id(payload: &[u8]) -> Result<u32, WireError> {
    let id = decimal_u32(single_string(payload)?)?;
    if id == 0 {
        return Err(WireError::ZeroTxId);
    }
    Ok(id)
}

/// A parsed `DIRECTORY_PART` reply.
#[derive(Clone, Debug)]
pub struct DirectoryPart<'a> {
    /// Generation count of the node. If it differs between the chunks of
    /// one listing the node changed: restart at offset 0.
    pub gencnt: u64,
    /// The child names in this chunk (without the end marker).
    pub children: Strings<'a>,
    /// Whether this is the last chunk.
    pub complete: bool,
    /// Bytes of child list in this chunk (names and their NULs, without the
    /// end marker): add to the offset of the next request.
    pub consumed: usize,
}

/// Parses a `DIRECTORY_PART` reply: `<gencnt>|<child>|*`, where the last
/// chunk additionally ends with an empty string (one extra NUL).
///
/// This is what xenstored's `send_directory_part()` produces (the reply for
/// an offset at or past the end is `<gencnt>|` plus the empty string) and
/// what libxenstore's `xs_directory_part()` relies on. Rejected: missing or
/// malformed generation, unterminated payload, empty child names, and a
/// non-final chunk without any child ([`WireError::NoProgress`]).
pub fn directory_part(payload: &[u8]) -> Result<DirectoryPart<'_>, WireError> {
    let mut it = strings(payload)?;
    let gen = it.next().ok_or(WireError::StringCount)?;
    let gencnt = decimal_u64(gen)?;
    let rest = it.remaining();
    // `rest` is empty or ends with NUL (checked by `strings`). It is
    // complete if its last string is empty: `rest` is exactly "\0" or ends
    // with "\0\0".
    let complete = rest == [0] || rest.ends_with(&[0, 0]);
    let list = if complete {
        rest.get(..rest.len().saturating_sub(1)).unwrap_or(&[])
    } else {
        rest
    };
    if list.first() == Some(&0) || list.windows(2).any(|w| w == [0, 0]) {
        return Err(WireError::EmptyString);
    }
    if !complete && list.is_empty() {
        return Err(WireError::NoProgress);
    }
    Ok(DirectoryPart {
        gencnt,
        children: Strings { rest: list },
        complete,
        consumed: list.len(),
    })
}

/// Iterator over a validated permission list. Created by [`perms`].
#[derive(Clone, Debug)]
pub struct Perms<'a> {
    inner: Strings<'a>,
}

impl Iterator for Perms<'_> {
    type Item = Perm;

    fn next(&mut self) -> Option<Perm> {
        // Every entry was validated by `perms()`; stop rather than panic if
        // that invariant were ever broken.
        Perm::parse(self.inner.next()?).ok()
    }
}

/// Parses a `GET_PERMS` reply (`<perm>|+`): at least one entry, all valid.
/// The first entry is the owner (and default access).
pub fn perms(payload: &[u8]) -> Result<Perms<'_>, WireError> {
    let it = strings(payload)?;
    let mut n = 0usize;
    for s in it.clone() {
        Perm::parse(s)?;
        n = n.saturating_add(1);
    }
    if n == 0 {
        return Err(WireError::StringCount);
    }
    Ok(Perms { inner: it })
}

/// Reassembles messages from a byte stream delivered in arbitrary pieces.
///
/// Feed bytes with [`push`](Self::push) (copying) or with
/// [`spare_mut`](Self::spare_mut) + [`commit`](Self::commit) (to read from
/// the ring straight into the buffer). The reader never consumes bytes past
/// the end of the current message. Once [`message`](Self::message) returns
/// `Some`, handle the message and call [`reset`](Self::reset) before
/// feeding more.
///
/// The header is validated as soon as its 16 bytes are in: a length above
/// [`PAYLOAD_MAX`] makes the reader fail with [`WireError::PayloadTooLong`]
/// (and keep failing) until [`reset`](Self::reset); the stream is then out
/// of sync and the connection must be treated as broken.
#[derive(Clone)]
pub struct MessageReader {
    buf: [u8; MESSAGE_MAX],
    filled: usize,
    failed: bool,
}

impl Default for MessageReader {
    fn default() -> Self {
        Self::new()
    }
}

impl MessageReader {
    /// An idle reader.
    pub const fn new() -> Self {
        MessageReader {
            buf: [0; MESSAGE_MAX],
            filled: 0,
            failed: false,
        }
    }

    /// Forgets any partial or complete message and any error.
    pub fn reset(&mut self) {
        self.filled = 0;
        self.failed = false;
    }

    /// Whether no byte of a message has been received since the last reset.
    pub fn is_idle(&self) -> bool {
        self.filled == 0 && !self.failed
    }

    /// Whether the reader is in the failed state (bad header seen).
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// The header, once all of its bytes are in (even if invalid).
    pub fn header(&self) -> Option<Header> {
        if self.filled < HEADER_LEN {
            return None;
        }
        Header::from_slice(&self.buf)
    }

    /// Total size of the current message, if its header is in and valid.
    fn total(&self) -> Option<usize> {
        let h = self.header()?;
        h.check().ok()?;
        HEADER_LEN.checked_add(h.payload_len())
    }

    /// Bytes still needed to complete the current message (for the header
    /// first, then for the payload); 0 when complete or failed.
    pub fn wanted(&self) -> usize {
        if self.failed {
            return 0;
        }
        let target = if self.filled < HEADER_LEN {
            HEADER_LEN
        } else {
            self.total().unwrap_or(self.filled)
        };
        target.saturating_sub(self.filled)
    }

    /// The buffer space for the next [`wanted`](Self::wanted) bytes.
    pub fn spare_mut(&mut self) -> &mut [u8] {
        let end = self.filled.saturating_add(self.wanted());
        self.buf.get_mut(self.filled..end).unwrap_or(&mut [])
    }

    /// Records that the first `n` bytes of [`spare_mut`](Self::spare_mut)
    /// were filled; validates the header when it becomes complete.
    pub fn commit(&mut self, n: usize) -> Result<(), WireError> {
        if self.failed {
            return Err(WireError::PayloadTooLong);
        }
        if n > self.wanted() {
            return Err(WireError::Overrun);
        }
        let before = self.filled;
        self.filled = self.filled.saturating_add(n);
        if before < HEADER_LEN && self.filled >= HEADER_LEN {
            if let Some(h) = self.header() {
                if let Err(e) = h.check() {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Copies bytes from `input` (as many as the current message still
    /// needs) and returns how many were consumed. Any split of the stream
    /// is accepted, down to one byte per call.
    pub fn push(&mut self, input: &[u8]) -> Result<usize, WireError> {
        if self.failed {
            return Err(WireError::PayloadTooLong);
        }
        let mut consumed = 0;
        loop {
            let rest = input.get(consumed..).unwrap_or(&[]);
            let spare = self.spare_mut();
            let n = spare.len().min(rest.len());
            if n == 0 {
                break;
            }
            if let (Some(dst), Some(src)) = (spare.get_mut(..n), rest.get(..n)) {
                dst.copy_from_slice(src);
            }
            self.commit(n)?;
            consumed = consumed.saturating_add(n);
        }
        Ok(consumed)
    }

    /// The complete message, if any: its header and payload.
    pub fn message(&self) -> Option<(Header, &[u8])> {
        if self.failed {
            return None;
        }
        let total = self.total()?;
        if self.filled != total {
            return None;
        }
        let h = self.header()?;
        Some((h, self.buf.get(HEADER_LEN..total)?))
    }
}

/// Holds one encoded message and tracks how much of it has been sent, for
/// ring writes that may be partial.
///
/// Typical use: [`load`](Self::load) a request, then repeatedly write
/// [`pending`](Self::pending) to the ring and [`advance`](Self::advance)
/// by the number of bytes the ring accepted until
/// [`is_done`](Self::is_done).
#[derive(Clone)]
pub struct MessageWriter {
    buf: [u8; MESSAGE_MAX],
    len: usize,
    sent: usize,
}

impl Default for MessageWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl MessageWriter {
    /// An empty writer.
    pub const fn new() -> Self {
        MessageWriter {
            buf: [0; MESSAGE_MAX],
            len: 0,
            sent: 0,
        }
    }

    /// Whether a message is loaded and not completely sent.
    pub fn is_busy(&self) -> bool {
        self.sent < self.len
    }

    /// Whether everything loaded has been sent (also true when empty).
    pub fn is_done(&self) -> bool {
        !self.is_busy()
    }

    /// Encodes `req` as the message to send. Fails with
    /// [`WireError::Busy`] if the previous message is not completely sent
    /// (call [`reset`](Self::reset) to drop it).
    pub fn load(
        &mut self,
        req: &Request<'_>,
        req_id: u32,
        tx_id: u32,
    ) -> Result<Header, WireError> {
        if self.is_busy() {
            return Err(WireError::Busy);
        }
        let header = req.header(req_id, tx_id)?;
        let n = req.encode(req_id, tx_id, &mut self.buf)?;
        self.len = n;
        self.sent = 0;
        Ok(header)
    }

    /// Loads an already built header and payload (e.g. from user space).
    /// `header.len` must equal `payload.len()`, at most [`PAYLOAD_MAX`].
    pub fn load_raw(&mut self, header: &Header, payload: &[u8]) -> Result<(), WireError> {
        if self.is_busy() {
            return Err(WireError::Busy);
        }
        header.check()?;
        if header.payload_len() != payload.len() {
            return Err(WireError::LengthMismatch);
        }
        let total = HEADER_LEN
            .checked_add(payload.len())
            .ok_or(WireError::PayloadTooLong)?;
        let mut cur = Cursor {
            out: &mut self.buf,
            pos: 0,
        };
        cur.put(&header.to_bytes())?;
        cur.put(payload)?;
        self.len = total;
        self.sent = 0;
        Ok(())
    }

    /// The bytes not sent yet.
    pub fn pending(&self) -> &[u8] {
        self.buf.get(self.sent..self.len).unwrap_or(&[])
    }

    /// The whole loaded message.
    pub fn message(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Bytes already sent.
    pub fn sent(&self) -> usize {
        self.sent
    }

    /// Records that `n` more bytes were sent.
    pub fn advance(&mut self, n: usize) -> Result<(), WireError> {
        if n > self.pending().len() {
            return Err(WireError::Overrun);
        }
        self.sent = self.sent.saturating_add(n);
        Ok(())
    }

    /// Drops the loaded message.
    pub fn reset(&mut self) {
        self.len = 0;
        self.sent = 0;
    }
}
