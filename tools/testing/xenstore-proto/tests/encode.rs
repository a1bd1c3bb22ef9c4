// SPDX-License-Identifier: GPL-2.0

//! Byte-exact request encodings, written by hand from docs/misc/xenstore.txt.

use xenstore_proto::wire::{
    decimal_len, decimal_u32, decimal_u64, format_decimal, Header, MessageWriter, MsgType, Part,
    Perm, PermKind, Request, WireError, DECIMAL_MAX, HEADER_LEN, MAX_PARTS, MESSAGE_MAX,
    PAYLOAD_MAX, PERM_MAX,
};

/// The expected header bytes, built field by field.
fn hdr(ty: u32, req_id: u32, tx_id: u32, len: u32) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&ty.to_ne_bytes());
    v.extend_from_slice(&req_id.to_ne_bytes());
    v.extend_from_slice(&tx_id.to_ne_bytes());
    v.extend_from_slice(&len.to_ne_bytes());
    v
}

fn msg(ty: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = hdr(ty, req_id, tx_id, payload.len() as u32);
    v.extend_from_slice(payload);
    v
}

fn enc(req: &Request<'_>, req_id: u32, tx_id: u32) -> Vec<u8> {
    let mut buf = [0u8; MESSAGE_MAX];
    let n = req.encode(req_id, tx_id, &mut buf).expect("encode");
    assert_eq!(n, HEADER_LEN + req.payload_len());
    buf[..n].to_vec()
}

#[test]
fn msg_type_values_match_xs_wire_h() {
    let table: &[(u32, MsgType, &str)] = &[
        (0, MsgType::Control, "CONTROL"),
        (1, MsgType::Directory, "DIRECTORY"),
        (2, MsgType::Read, "READ"),
        (3, MsgType::GetPerms, "GET_PERMS"),
        (4, MsgType::Watch, "WATCH"),
        (5, MsgType::Unwatch, "UNWATCH"),
        (6, MsgType::TransactionStart, "TRANSACTION_START"),
        (7, MsgType::TransactionEnd, "TRANSACTION_END"),
        (8, MsgType::Introduce, "INTRODUCE"),
        (9, MsgType::Release, "RELEASE"),
        (10, MsgType::GetDomainPath, "GET_DOMAIN_PATH"),
        (11, MsgType::Write, "WRITE"),
        (12, MsgType::Mkdir, "MKDIR"),
        (13, MsgType::Rm, "RM"),
        (14, MsgType::SetPerms, "SET_PERMS"),
        (15, MsgType::WatchEvent, "WATCH_EVENT"),
        (16, MsgType::Error, "ERROR"),
        (17, MsgType::IsDomainIntroduced, "IS_DOMAIN_INTRODUCED"),
        (18, MsgType::Resume, "RESUME"),
        (19, MsgType::SetTarget, "SET_TARGET"),
        (21, MsgType::ResetWatches, "RESET_WATCHES"),
        (22, MsgType::DirectoryPart, "DIRECTORY_PART"),
        (23, MsgType::GetFeature, "GET_FEATURE"),
        (24, MsgType::SetFeature, "SET_FEATURE"),
        (25, MsgType::GetQuota, "GET_QUOTA"),
        (26, MsgType::SetQuota, "SET_QUOTA"),
        (0xffff, MsgType::Invalid, "INVALID"),
    ];
    for &(v, t, name) in table {
        assert_eq!(t as u32, v);
        assert_eq!(t.as_u32(), v);
        assert_eq!(MsgType::from_u32(v), Some(t), "{v}");
        assert_eq!(t.name(), name);
    }
    assert_eq!(MsgType::DEBUG, MsgType::Control);
    // Removed XS_RESTRICT and everything unlisted.
    for v in [20u32, 27, 28, 100, 0xfffe, 0x1_0000, u32::MAX] {
        assert_eq!(MsgType::from_u32(v), None, "{v}");
    }
    let known = (0..=0x1_0000u32)
        .filter(|&v| MsgType::from_u32(v).is_some())
        .count();
    assert_eq!(known, table.len());
}

#[test]
fn header_layout_and_round_trip() {
    let h = Header {
        ty: 11,
        req_id: 0x0102_0304,
        tx_id: 0xa0b0_c0d0,
        len: 5,
    };
    let b = h.to_bytes();
    assert_eq!(b.to_vec(), hdr(11, 0x0102_0304, 0xa0b0_c0d0, 5));
    #[cfg(target_endian = "little")]
    assert_eq!(
        b,
        [11, 0, 0, 0, 4, 3, 2, 1, 0xd0, 0xc0, 0xb0, 0xa0, 5, 0, 0, 0]
    );
    assert_eq!(Header::from_bytes(&b), h);
    assert_eq!(Header::from_slice(&b), Some(h));
    assert_eq!(Header::from_slice(&b[..15]), None);
    let mut longer = b.to_vec();
    longer.extend_from_slice(b"junk");
    assert_eq!(Header::from_slice(&longer), Some(h));
    assert_eq!(h.msg_type(), Some(MsgType::Write));
    assert_eq!(Header::new(MsgType::Write, 0x0102_0304, 0xa0b0_c0d0, 5), h);
}

#[test]
fn header_len_limit() {
    let mut h = Header::new(MsgType::Read, 1, 0, 4096);
    assert_eq!(h.check(), Ok(()));
    h.len = 4097;
    assert_eq!(h.check(), Err(WireError::PayloadTooLong));
    h.len = u32::MAX;
    assert_eq!(h.check(), Err(WireError::PayloadTooLong));
    h.len = 0;
    assert_eq!(h.check(), Ok(()));
    // An unknown type is not a length error.
    h.ty = 12345;
    assert_eq!(h.check(), Ok(()));
    assert_eq!(h.msg_type(), None);
}

#[test]
fn encode_read() {
    assert_eq!(
        enc(&Request::read(b"device/vif/0/state"), 7, 0),
        msg(2, 7, 0, b"device/vif/0/state\0")
    );
}

#[test]
fn encode_write_value_has_no_nul() {
    assert_eq!(
        enc(&Request::write(b"/a", b"xy"), 1, 9),
        [hdr(11, 1, 9, 5), b"/a\0xy".to_vec()].concat()
    );
    // Empty value and binary value are sent verbatim.
    assert_eq!(
        enc(&Request::write(b"/a", b""), 2, 0),
        msg(11, 2, 0, b"/a\0")
    );
    assert_eq!(
        enc(&Request::write(b"/a", b"\0\xff\0"), 3, 0),
        msg(11, 3, 0, b"/a\0\0\xff\0")
    );
}

#[test]
fn encode_mkdir_rm_directory_get_perms() {
    assert_eq!(
        enc(&Request::mkdir(b"/x/y"), 4, 3),
        msg(12, 4, 3, b"/x/y\0")
    );
    assert_eq!(enc(&Request::rm(b"/x/y"), 5, 3), msg(13, 5, 3, b"/x/y\0"));
    assert_eq!(
        enc(&Request::directory(b"/local/domain"), 6, 0),
        msg(1, 6, 0, b"/local/domain\0")
    );
    assert_eq!(enc(&Request::get_perms(b"/"), 7, 0), msg(3, 7, 0, b"/\0"));
}

#[test]
fn encode_directory_part() {
    assert_eq!(
        enc(&Request::directory_part(b"/local/domain", 0), 8, 0),
        msg(22, 8, 0, b"/local/domain\x000\0")
    );
    assert_eq!(
        enc(&Request::directory_part(b"/d", 4093), 9, 2),
        msg(22, 9, 2, b"/d\x004093\0")
    );
    assert_eq!(
        enc(&Request::directory_part(b"/d", u32::MAX), 9, 2),
        msg(22, 9, 2, b"/d\x004294967295\0")
    );
}

#[test]
fn encode_set_perms_mirage_vector() {
    // ocaml-xenstore lib_test/xs_test.ml: SET_PERMS "/" [r5, w2, b3].
    let perms = [
        Perm::new(PermKind::Read, 5),
        Perm::new(PermKind::Write, 2),
        Perm::new(PermKind::Both, 3),
    ];
    assert_eq!(
        enc(&Request::set_perms(b"/", &perms), 10, 0),
        msg(14, 10, 0, b"/\0r5\0w2\0b3\0")
    );
    let perms = [
        Perm::new(PermKind::None, 0),
        Perm::new(PermKind::Read, 65535),
    ];
    assert_eq!(
        enc(&Request::set_perms(b"/local/domain/1/x", &perms), 11, 4),
        msg(14, 11, 4, b"/local/domain/1/x\0n0\0r65535\0")
    );
}

#[test]
fn encode_set_perms_empty_rejected() {
    let mut buf = [0u8; MESSAGE_MAX];
    assert_eq!(
        Request::set_perms(b"/", &[]).encode(1, 0, &mut buf),
        Err(WireError::EmptyPerms)
    );
}

#[test]
fn encode_watch_unwatch() {
    assert_eq!(
        enc(&Request::watch(b"backend/vbd", b"xbrs:3:1"), 12, 0),
        msg(4, 12, 0, b"backend/vbd\0xbrs:3:1\0")
    );
    assert_eq!(
        enc(&Request::unwatch(b"@releaseDomain", b"tok"), 13, 0),
        msg(5, 13, 0, b"@releaseDomain\0tok\0")
    );
    assert_eq!(
        enc(&Request::watch_depth(b"/a", b"t", 1), 14, 0),
        msg(4, 14, 0, b"/a\0t\x001\0")
    );
}

#[test]
fn encode_transactions() {
    assert_eq!(
        enc(&Request::transaction_start(), 15, 0),
        msg(6, 15, 0, b"\0")
    );
    assert_eq!(
        enc(&Request::transaction_end(true), 16, 77),
        msg(7, 16, 77, b"T\0")
    );
    assert_eq!(
        enc(&Request::transaction_end(false), 17, 77),
        msg(7, 17, 77, b"F\0")
    );
}

#[test]
fn encode_get_domain_path_and_reset_watches() {
    assert_eq!(
        enc(&Request::get_domain_path(0), 18, 0),
        msg(10, 18, 0, b"0\0")
    );
    assert_eq!(
        enc(&Request::get_domain_path(32753), 18, 0),
        msg(10, 18, 0, b"32753\0")
    );
    assert_eq!(enc(&Request::reset_watches(), 19, 0), msg(21, 19, 0, b"\0"));
}

#[test]
fn encode_raw_and_generic() {
    assert_eq!(
        enc(&Request::raw(MsgType::Read, b"/a\0"), 20, 0),
        msg(2, 20, 0, b"/a\0")
    );
    assert_eq!(
        enc(&Request::raw(MsgType::Read, b""), 20, 0),
        msg(2, 20, 0, b"")
    );
    let r = Request::new(MsgType::Control, &[Part::Str(b"log"), Part::Str(b"on")]).unwrap();
    assert_eq!(enc(&r, 21, 0), msg(0, 21, 0, b"log\0on\0"));
    assert_eq!(r.parts().len(), 2);
    assert_eq!(r.msg_type(), MsgType::Control);
    let five = [Part::Raw(b""); MAX_PARTS + 1];
    assert_eq!(
        Request::new(MsgType::Read, &five),
        Err(WireError::TooManyParts)
    );
    let r = Request::new(MsgType::Read, &[]).unwrap();
    assert_eq!(enc(&r, 1, 0), msg(2, 1, 0, b""));
}

#[test]
fn encode_payload_only() {
    let mut buf = [0u8; 32];
    let n = Request::write(b"/a", b"xy")
        .encode_payload(&mut buf)
        .unwrap();
    assert_eq!(&buf[..n], b"/a\0xy");
    let h = Request::write(b"/a", b"xy").header(3, 4).unwrap();
    assert_eq!(h, Header::new(MsgType::Write, 3, 4, 5));
}

#[test]
fn embedded_nul_rejected() {
    let mut buf = [0u8; 64];
    assert_eq!(
        Request::read(b"/a\0b").encode(1, 0, &mut buf),
        Err(WireError::EmbeddedNul)
    );
    assert_eq!(
        Request::watch(b"/a", b"t\0").encode(1, 0, &mut buf),
        Err(WireError::EmbeddedNul)
    );
    // Raw parts may contain NULs.
    assert!(Request::write(b"/a", b"\0").encode(1, 0, &mut buf).is_ok());
}

#[test]
fn payload_limit_exact() {
    let mut buf = vec![0u8; MESSAGE_MAX + 100];
    // "/a\0" + value: payload = 3 + value.len().
    let value = vec![b'v'; PAYLOAD_MAX - 3];
    let r = Request::write(b"/a", &value);
    assert_eq!(r.payload_len(), PAYLOAD_MAX);
    assert_eq!(r.encode(1, 0, &mut buf), Ok(MESSAGE_MAX));
    let value = vec![b'v'; PAYLOAD_MAX - 2];
    let r = Request::write(b"/a", &value);
    assert_eq!(r.payload_len(), PAYLOAD_MAX + 1);
    assert_eq!(r.encode(1, 0, &mut buf), Err(WireError::PayloadTooLong));
    assert_eq!(r.header(1, 0), Err(WireError::PayloadTooLong));
    let big = vec![b'p'; 100_000];
    assert_eq!(
        Request::read(&big).encode(1, 0, &mut buf),
        Err(WireError::PayloadTooLong)
    );
}

#[test]
fn output_buffer_too_small_writes_nothing() {
    let r = Request::write(b"/a", b"xy");
    for size in 0..HEADER_LEN + 5 {
        let mut buf = vec![0xeeu8; size];
        assert_eq!(r.encode(1, 0, &mut buf), Err(WireError::BufferTooSmall));
        assert!(buf.iter().all(|&b| b == 0xee), "size {size}");
    }
    let mut buf = vec![0u8; HEADER_LEN + 5];
    assert_eq!(r.encode(1, 0, &mut buf), Ok(HEADER_LEN + 5));
    let mut small = [0u8; 4];
    assert_eq!(r.encode_payload(&mut small), Err(WireError::BufferTooSmall));
}

#[test]
fn perm_parse_and_format() {
    for (s, kind, domid) in [
        (&b"n0"[..], PermKind::None, 0u32),
        (b"r5", PermKind::Read, 5),
        (b"w2", PermKind::Write, 2),
        (b"b3", PermKind::Both, 3),
        (b"b4294967295", PermKind::Both, u32::MAX),
    ] {
        let p = Perm::parse(s).unwrap();
        assert_eq!(p, Perm::new(kind, domid));
        let mut out = [0u8; PERM_MAX];
        assert_eq!(p.format(&mut out), s);
        assert_eq!(p.encoded_len(), s.len());
        assert_eq!(PermKind::from_char(s[0]), Some(kind));
        assert_eq!(kind.as_char(), s[0]);
    }
    for bad in [
        &b""[..],
        b"r",
        b"x1",
        b"R1",
        b"r-1",
        b"r+1",
        b"r 1",
        b"r1 ",
        b"r01",
        b"r0x10",
        b"r4294967296",
        b"rr1",
        b"1",
        b"r1\0",
    ] {
        assert_eq!(Perm::parse(bad), Err(WireError::BadPerm), "{bad:?}");
    }
}

#[test]
fn decimal_helpers() {
    let mut buf = [0u8; DECIMAL_MAX];
    for v in [0u64, 1, 9, 10, 99, 100, 4096, u32::MAX as u64, u64::MAX] {
        let s = format_decimal(v, &mut buf).to_vec();
        assert_eq!(s, v.to_string().into_bytes());
        assert_eq!(decimal_len(v), s.len());
        assert_eq!(decimal_u64(&s), Ok(v));
    }
    assert_eq!(
        decimal_u64(b"18446744073709551616"),
        Err(WireError::BadNumber)
    );
    assert_eq!(
        decimal_u64(b"99999999999999999999"),
        Err(WireError::BadNumber)
    );
    assert_eq!(decimal_u32(b"4294967295"), Ok(u32::MAX));
    assert_eq!(decimal_u32(b"4294967296"), Err(WireError::BadNumber));
    for bad in [
        &b""[..],
        b"-1",
        b"+1",
        b" 1",
        b"1 ",
        b"01",
        b"00",
        b"0x1",
        b"1a",
        b"\x001",
        b"1\0",
    ] {
        assert_eq!(decimal_u64(bad), Err(WireError::BadNumber), "{bad:?}");
    }
}

#[test]
fn message_writer_partial_sends() {
    let mut w = MessageWriter::new();
    assert!(w.is_done());
    assert!(!w.is_busy());
    assert_eq!(w.pending(), b"");
    let h = w.load(&Request::write(b"/a", b"xy"), 5, 6).unwrap();
    assert_eq!(h, Header::new(MsgType::Write, 5, 6, 5));
    let expected = msg(11, 5, 6, b"/a\0xy");
    assert_eq!(w.message(), &expected[..]);
    assert_eq!(w.pending(), &expected[..]);
    assert!(w.is_busy());
    // Cannot load over a message that is not sent yet.
    assert_eq!(w.load(&Request::read(b"/b"), 1, 0), Err(WireError::Busy));
    w.advance(3).unwrap();
    assert_eq!(w.pending(), &expected[3..]);
    assert_eq!(w.sent(), 3);
    assert_eq!(w.advance(1000), Err(WireError::Overrun));
    w.advance(expected.len() - 3).unwrap();
    assert!(w.is_done());
    assert_eq!(w.pending(), b"");
    assert_eq!(w.advance(1), Err(WireError::Overrun));
    // Done: a new message may be loaded.
    w.load(&Request::read(b"/b"), 1, 0).unwrap();
    assert_eq!(w.pending(), &msg(2, 1, 0, b"/b\0")[..]);
    w.reset();
    assert!(w.is_done());
    assert_eq!(w.message(), b"");
}

#[test]
fn message_writer_load_raw() {
    let mut w = MessageWriter::new();
    let h = Header::new(MsgType::Read, 9, 0, 3);
    w.load_raw(&h, b"/a\0").unwrap();
    assert_eq!(w.pending(), &msg(2, 9, 0, b"/a\0")[..]);
    w.reset();
    assert_eq!(
        w.load_raw(&Header::new(MsgType::Read, 9, 0, 4), b"/a\0"),
        Err(WireError::LengthMismatch)
    );
    let big = vec![0u8; PAYLOAD_MAX + 1];
    assert_eq!(
        w.load_raw(&Header::new(MsgType::Write, 9, 0, big.len() as u32), &big),
        Err(WireError::PayloadTooLong)
    );
    let max = vec![1u8; PAYLOAD_MAX];
    w.load_raw(&Header::new(MsgType::Write, 9, 0, max.len() as u32), &max)
        .unwrap();
    assert_eq!(w.pending().len(), MESSAGE_MAX);
    // A failed load leaves the loaded message alone.
    assert_eq!(w.load(&Request::read(b"/x"), 1, 0), Err(WireError::Busy));
    assert_eq!(w.pending().len(), MESSAGE_MAX);
}

#[test]
fn message_writer_rejects_bad_request_without_clobbering() {
    let mut w = MessageWriter::new();
    assert_eq!(
        w.load(&Request::read(b"a\0b"), 1, 0),
        Err(WireError::EmbeddedNul)
    );
    assert!(w.is_done());
    assert_eq!(w.message(), b"");
}
