// SPDX-License-Identifier: GPL-2.0

//! Reply parsing and the errno table.

use xenstore_proto::errno::{self, errno_from_wire, wire_body, wire_name, XsErrno, XSD_ERRORS};
use xenstore_proto::wire::{
    directory, directory_part, domain_path, error_of, perms, single_string, strings,
    transaction_id, watch_event, Perm, PermKind, WireError,
};

fn collect(payload: &[u8]) -> Result<Vec<Vec<u8>>, WireError> {
    Ok(strings(payload)?.map(|s| s.to_vec()).collect())
}

#[test]
fn errno_table_order_and_values() {
    let expected: [(&str, i32); 16] = [
        ("EINVAL", 22),
        ("EACCES", 13),
        ("EEXIST", 17),
        ("EISDIR", 21),
        ("ENOENT", 2),
        ("ENOMEM", 12),
        ("ENOSPC", 28),
        ("EIO", 5),
        ("ENOTEMPTY", 39),
        ("ENOSYS", 38),
        ("EROFS", 30),
        ("EBUSY", 16),
        ("EAGAIN", 11),
        ("EISCONN", 106),
        ("E2BIG", 7),
        ("EPERM", 1),
    ];
    assert_eq!(XSD_ERRORS.len(), expected.len());
    for (e, (name, num)) in XSD_ERRORS.iter().zip(expected) {
        assert_eq!(e.name, name);
        assert_eq!(e.errno, num);
    }
    assert_eq!(errno::EINVAL, 22);
    assert_eq!(errno::EISCONN, 106);
}

#[test]
fn every_error_string_maps_to_errno_and_back() {
    for e in XSD_ERRORS {
        assert_eq!(errno_from_wire(e.name.as_bytes()), (e.errno, true));
        let x = XsErrno::from_wire(e.name.as_bytes());
        assert_eq!(x.errno(), e.errno);
        assert!(x.is_known());
        assert_eq!(x.wire_name(), e.name);
        assert_eq!(wire_name(e.errno), Some(e.name));
        assert_eq!(wire_name(-e.errno), Some(e.name));
        assert_eq!(XsErrno::from_errno(-e.errno), Some(x));
        // As a whole ERROR payload.
        let mut payload = e.name.as_bytes().to_vec();
        payload.push(0);
        assert_eq!(error_of(&payload), x);
        assert_eq!(wire_body(e.errno), Some(&payload[..]));
        assert_eq!(wire_body(-e.errno), Some(&payload[..]));
    }
}

#[test]
fn unknown_error_is_einval_but_flagged() {
    for name in [
        &b"EWHATEVER"[..],
        b"",
        b"einval",
        b"EINVAL ",
        b" EINVAL",
        b"EINVALX",
        b"EINVA",
        b"\xff\xfe",
    ] {
        let x = XsErrno::from_wire(name);
        assert_eq!(x.errno(), 22, "{name:?}");
        assert!(!x.is_known(), "{name:?}");
        assert_eq!(x.wire_name(), "EINVAL");
        assert_eq!(errno_from_wire(name), (22, false));
    }
    // The real EINVAL is known.
    assert!(XsErrno::from_wire(b"EINVAL").is_known());
    for e in [0, 3, 4, 99, 1000, i32::MIN, i32::MAX] {
        assert_eq!(wire_name(e), None, "{e}");
        assert_eq!(wire_body(e), None, "{e}");
        assert_eq!(XsErrno::from_errno(e), None);
    }
}

#[test]
fn error_payload_forms() {
    // Name up to the first NUL, like strcmp() in Linux's get_error().
    assert_eq!(error_of(b"ENOENT\0"), XsErrno::from_wire(b"ENOENT"));
    assert_eq!(error_of(b"ENOENT"), XsErrno::from_wire(b"ENOENT"));
    assert_eq!(error_of(b"ENOENT\0junk\0"), XsErrno::from_wire(b"ENOENT"));
    assert!(!error_of(b"").is_known());
    assert!(!error_of(b"\0ENOENT\0").is_known());
    assert_eq!(error_of(b"\0").errno(), 22);
}

#[test]
fn directory_with_and_without_trailing_nul() {
    assert_eq!(
        collect(b"a\0bb\0ccc\0").unwrap(),
        vec![b"a".to_vec(), b"bb".to_vec(), b"ccc".to_vec()]
    );
    assert_eq!(collect(b"").unwrap(), Vec::<Vec<u8>>::new());
    assert_eq!(collect(b"\0").unwrap(), vec![Vec::<u8>::new()]);
    assert_eq!(collect(b"a\0bb"), Err(WireError::Unterminated));
    assert_eq!(collect(b"a"), Err(WireError::Unterminated));
    assert!(directory(b"x\0").is_ok());
    assert_eq!(directory(b"x").err(), Some(WireError::Unterminated));
    let mut it = strings(b"a\0b\0").unwrap();
    assert_eq!(it.remaining(), b"a\0b\0");
    assert_eq!(it.next(), Some(&b"a"[..]));
    assert_eq!(it.remaining(), b"b\0");
    assert_eq!(it.next(), Some(&b"b"[..]));
    assert_eq!(it.next(), None);
    assert_eq!(it.next(), None);
}

#[test]
fn watch_event_string_counts() {
    assert_eq!(
        watch_event(b"/local/domain/1/device\0xbrs:1:2\0"),
        Ok((&b"/local/domain/1/device"[..], &b"xbrs:1:2"[..]))
    );
    assert_eq!(watch_event(b"\0\0"), Ok((&b""[..], &b""[..])));
    // One string.
    assert_eq!(watch_event(b"/a\0"), Err(WireError::StringCount));
    // Three strings.
    assert_eq!(watch_event(b"/a\0t\0x\0"), Err(WireError::StringCount));
    assert_eq!(watch_event(b"/a\0t\0\0"), Err(WireError::StringCount));
    // Zero strings.
    assert_eq!(watch_event(b""), Err(WireError::StringCount));
    // Unterminated token.
    assert_eq!(watch_event(b"/a\0t"), Err(WireError::Unterminated));
}

#[test]
fn transaction_id_edge_cases() {
    assert_eq!(transaction_id(b"1\0"), Ok(1));
    assert_eq!(transaction_id(b"42\0"), Ok(42));
    assert_eq!(transaction_id(b"4294967295\0"), Ok(u32::MAX));
    assert_eq!(transaction_id(b"4294967296\0"), Err(WireError::BadNumber));
    assert_eq!(transaction_id(b"0\0"), Err(WireError::ZeroTxId));
    assert_eq!(transaction_id(b"\0"), Err(WireError::BadNumber));
    assert_eq!(transaction_id(b""), Err(WireError::StringCount));
    assert_eq!(transaction_id(b"12a\0"), Err(WireError::BadNumber));
    assert_eq!(transaction_id(b"12"), Err(WireError::Unterminated));
    assert_eq!(transaction_id(b"12\0\0"), Err(WireError::StringCount));
    assert_eq!(transaction_id(b"12\0 3\0"), Err(WireError::StringCount));
    assert_eq!(transaction_id(b"012\0"), Err(WireError::BadNumber));
    assert_eq!(transaction_id(b"0x12\0"), Err(WireError::BadNumber));
    assert_eq!(transaction_id(b"-1\0"), Err(WireError::BadNumber));
    assert_eq!(transaction_id(b" 1\0"), Err(WireError::BadNumber));
}

#[test]
fn single_string_and_domain_path() {
    assert_eq!(
        domain_path(b"/local/domain/3\0"),
        Ok(&b"/local/domain/3"[..])
    );
    assert_eq!(single_string(b"\0"), Ok(&b""[..]));
    assert_eq!(single_string(b""), Err(WireError::StringCount));
    assert_eq!(single_string(b"a\0b\0"), Err(WireError::StringCount));
    assert_eq!(single_string(b"a"), Err(WireError::Unterminated));
}

fn children(p: &xenstore_proto::wire::DirectoryPart<'_>) -> Vec<Vec<u8>> {
    p.children.clone().map(|c| c.to_vec()).collect()
}

#[test]
fn directory_part_chunks() {
    // Middle chunk: no end marker.
    let p = directory_part(b"17\0a\0bc\0").unwrap();
    assert_eq!(p.gencnt, 17);
    assert_eq!(children(&p), vec![b"a".to_vec(), b"bc".to_vec()]);
    assert!(!p.complete);
    assert_eq!(p.consumed, 5);
    // Last chunk: children followed by an empty string.
    let p = directory_part(b"17\0d\0\0").unwrap();
    assert_eq!(children(&p), vec![b"d".to_vec()]);
    assert!(p.complete);
    assert_eq!(p.consumed, 2);
    // Offset at/after the end: generation and the empty string only.
    let p = directory_part(b"18446744073709551615\0\0").unwrap();
    assert_eq!(p.gencnt, u64::MAX);
    assert!(children(&p).is_empty());
    assert!(p.complete);
    assert_eq!(p.consumed, 0);
}

#[test]
fn directory_part_malformed() {
    assert_eq!(directory_part(b"").err(), Some(WireError::StringCount));
    assert_eq!(directory_part(b"17").err(), Some(WireError::Unterminated));
    assert_eq!(
        directory_part(b"17\0a").err(),
        Some(WireError::Unterminated)
    );
    assert_eq!(
        directory_part(b"x\0a\0\0").err(),
        Some(WireError::BadNumber)
    );
    assert_eq!(directory_part(b"\0a\0\0").err(), Some(WireError::BadNumber));
    // Empty child names in the middle.
    assert_eq!(
        directory_part(b"1\0\0a\0").err(),
        Some(WireError::EmptyString)
    );
    assert_eq!(
        directory_part(b"1\0a\0\0b\0").err(),
        Some(WireError::EmptyString)
    );
    assert_eq!(
        directory_part(b"1\0a\0\0\0").err(),
        Some(WireError::EmptyString)
    );
    assert_eq!(
        directory_part(b"1\0\0\0").err(),
        Some(WireError::EmptyString)
    );
    // Not complete and no children: would loop forever.
    assert_eq!(directory_part(b"1\0").err(), Some(WireError::NoProgress));
}

/// Simulates a client listing a directory with DIRECTORY_PART, against a
/// server implemented like xenstored's send_directory_part().
#[test]
fn directory_part_reassembly_like_libxenstore() {
    let names: Vec<Vec<u8>> = (0..700)
        .map(|i| format!("child-{i}").into_bytes())
        .collect();
    let mut all = Vec::new();
    for n in &names {
        all.extend_from_slice(n);
        all.push(0);
    }
    let server = |off: usize| -> Vec<u8> {
        let gen = b"99\0".to_vec();
        let maxlen = 4096 - gen.len() - 1;
        if off >= all.len() {
            return [gen, vec![0]].concat();
        }
        let mut len = 0;
        let mut pos = off;
        loop {
            let l = all[pos..].iter().position(|&b| b == 0).unwrap();
            if len + l >= maxlen {
                break;
            }
            len += l + 1;
            pos += l + 1;
            if off + len == all.len() {
                break;
            }
        }
        let mut out = gen;
        out.extend_from_slice(&all[off..off + len]);
        if off + len == all.len() {
            out.push(0);
        }
        assert!(out.len() <= 4096);
        out
    };
    let mut got = Vec::new();
    let mut off = 0usize;
    let mut chunks = 0;
    loop {
        let reply = server(off);
        let p = directory_part(&reply).unwrap();
        assert_eq!(p.gencnt, 99);
        got.extend(p.children.clone().map(|c| c.to_vec()));
        off += p.consumed;
        chunks += 1;
        if p.complete {
            break;
        }
    }
    assert!(chunks > 1);
    assert_eq!(got, names);
}

#[test]
fn perms_reply() {
    let v: Vec<Perm> = perms(b"n0\0r5\0b3\0").unwrap().collect();
    assert_eq!(
        v,
        vec![
            Perm::new(PermKind::None, 0),
            Perm::new(PermKind::Read, 5),
            Perm::new(PermKind::Both, 3)
        ]
    );
    assert_eq!(perms(b"w7\0").unwrap().count(), 1);
    assert_eq!(perms(b"").err(), Some(WireError::StringCount));
    assert_eq!(perms(b"r5").err(), Some(WireError::Unterminated));
    assert_eq!(perms(b"r5\0x1\0").err(), Some(WireError::BadPerm));
    assert_eq!(perms(b"r5\0\0").err(), Some(WireError::BadPerm));
}
