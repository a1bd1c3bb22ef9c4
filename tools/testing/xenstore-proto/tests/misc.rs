// SPDX-License-Identifier: GPL-2.0

//! ReqTable, paths, tokens and states.

use xenstore_proto::path::{join, validate, PathError, PathKind};
use xenstore_proto::reqtable::{ReqIdError, ReqTable, MAX_SLOTS};
use xenstore_proto::state::{strstate, StateParseError, XenbusState};
use xenstore_proto::token::{self, TOKEN_MAX, TOKEN_PREFIX};
use xenstore_proto::wire::{ABS_PATH_MAX, REL_PATH_MAX};

// ---------------------------------------------------------------- ReqTable

#[test]
fn reqtable_exhaustion_and_reuse() {
    let mut t = ReqTable::<4>::new();
    assert_eq!(t.capacity(), 4);
    let mut ids = Vec::new();
    for i in 0..4 {
        let (slot, id) = t.alloc().unwrap();
        assert_ne!(id, 0);
        assert_eq!(t.lookup(id), Ok(slot));
        assert_eq!(t.in_flight(), i + 1);
        ids.push((slot, id));
    }
    assert!(t.is_full());
    assert_eq!(t.alloc(), None);
    // All slots distinct.
    let mut slots: Vec<usize> = ids.iter().map(|&(s, _)| s).collect();
    slots.sort();
    assert_eq!(slots, vec![0, 1, 2, 3]);

    // Free one and reuse it: new generation, old id is rejected.
    let (slot, old_id) = ids[2];
    assert!(t.free(slot));
    assert!(!t.free(slot), "double free is a no-op");
    assert_eq!(t.lookup(old_id), Err(ReqIdError::NotInFlight));
    let (slot2, new_id) = t.alloc().unwrap();
    assert_eq!(slot2, slot);
    assert_ne!(new_id, old_id);
    assert_eq!(t.lookup(new_id), Ok(slot));
    assert_eq!(t.lookup(old_id), Err(ReqIdError::Stale));
    assert_eq!(t.req_id(slot), Some(new_id));

    // take = lookup + free.
    assert_eq!(t.take(new_id), Ok(slot));
    assert_eq!(t.take(new_id), Err(ReqIdError::NotInFlight));
    assert_eq!(t.in_flight(), 3);
    assert_eq!(t.req_id(slot), None);

    t.free_all();
    assert_eq!(t.in_flight(), 0);
    for &(_, id) in &ids {
        assert!(t.lookup(id).is_err());
    }
    assert!(!t.free(99));
    assert!(!t.is_in_flight(99));
}

#[test]
fn reqtable_id_zero_never_allocated() {
    // N = 1: no slot bits, the id is the generation alone.
    let mut t = ReqTable::<1>::new();
    assert_eq!(ReqTable::<1>::SLOT_BITS, 0);
    let mut last = 0;
    for _ in 0..10_000 {
        let (slot, id) = t.alloc().unwrap();
        assert_eq!(slot, 0);
        assert_ne!(id, 0);
        assert_ne!(id, last);
        last = id;
        t.free(slot);
    }
    assert_eq!(t.lookup(0), Err(ReqIdError::Zero));
}

#[test]
fn reqtable_generation_wraps_without_zero() {
    // N = 1: generation is the whole id; start just before the wrap.
    let mut t = ReqTable::<1>::with_seed(u32::MAX - 2);
    let ids: Vec<u32> = (0..4)
        .map(|_| {
            let (s, id) = t.alloc().unwrap();
            t.free(s);
            id
        })
        .collect();
    assert_eq!(ids, vec![u32::MAX - 1, u32::MAX, 1, 2]);

    // Largest table: 16 slot bits, 16 generation bits.
    assert_eq!(ReqTable::<MAX_SLOTS>::SLOT_BITS, 16);
    let mut t = Box::new(ReqTable::<MAX_SLOTS>::with_seed(0xffff));
    let (slot, id) = t.alloc().unwrap();
    assert_eq!(slot, 0);
    assert_eq!(id, 1 << 16);
    let (slot, id) = t.alloc().unwrap();
    assert_eq!((slot, id), (1, (1 << 16) | 1));

    // N = 4: 2 slot bits, 30 generation bits; seed is masked.
    let mut t = ReqTable::<4>::with_seed(u32::MAX);
    let (slot, id) = t.alloc().unwrap();
    assert_eq!((slot, id), (0, 1 << 2));
    assert_eq!(t.lookup(id), Ok(0));

    // Ids of one slot are all distinct over many reuses.
    let mut t = ReqTable::<2>::new();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..100_000 {
        let (s, id) = t.alloc().unwrap();
        assert_ne!(id, 0);
        assert_eq!(id & 1, s as u32);
        assert!(seen.insert(id));
        t.free(s);
    }
}

#[test]
fn reqtable_seeded_instances_reject_each_others_ids() {
    let mut a = ReqTable::<8>::with_seed(1000);
    let mut b = ReqTable::<8>::with_seed(5000);
    let (_, ida) = a.alloc().unwrap();
    let (_, idb) = b.alloc().unwrap();
    assert_eq!(a.lookup(idb), Err(ReqIdError::Stale));
    assert_eq!(b.lookup(ida), Err(ReqIdError::Stale));
}

#[test]
fn reqtable_slot_bits() {
    assert_eq!(ReqTable::<1>::SLOT_BITS, 0);
    assert_eq!(ReqTable::<2>::SLOT_BITS, 1);
    assert_eq!(ReqTable::<3>::SLOT_BITS, 2);
    assert_eq!(ReqTable::<4>::SLOT_BITS, 2);
    assert_eq!(ReqTable::<5>::SLOT_BITS, 3);
    assert_eq!(ReqTable::<256>::SLOT_BITS, 8);
    assert_eq!(ReqTable::<257>::SLOT_BITS, 9);
}

#[test]
fn reqtable_bad_slot_for_non_power_of_two() {
    let mut t = ReqTable::<3>::new();
    let (_, id) = t.alloc().unwrap();
    // Slot 3 does not exist (2 slot bits).
    let fake = (id & !3) | 3;
    assert_eq!(t.lookup(fake), Err(ReqIdError::BadSlot));
}

#[test]
fn reqtable_random_ids_never_panic() {
    let mut t = ReqTable::<32>::new();
    let mut live = Vec::new();
    for _ in 0..20 {
        live.push(t.alloc().unwrap().1);
    }
    // xorshift, deterministic.
    let mut x: u32 = 0x1234_5678;
    let mut accepted = 0;
    for _ in 0..1_000_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        if t.lookup(x).is_ok() {
            accepted += 1;
            assert!(live.contains(&x));
        }
    }
    for id in [0u32, 1, u32::MAX, 0x8000_0000, 31, 32] {
        let _ = t.lookup(id);
    }
    assert!(accepted <= 20);
    for &id in &live {
        assert!(t.lookup(id).is_ok());
    }
}

// -------------------------------------------------------------------- path

#[test]
fn path_valid() {
    let cases: &[(&[u8], PathKind)] = &[
        (b"/", PathKind::Absolute),
        (b"/local", PathKind::Absolute),
        (b"/local/domain/0/backend/vbd/1/51712", PathKind::Absolute),
        (b"/a-b_c/D9", PathKind::Absolute),
        (b"device", PathKind::Relative),
        (b"device/vif/0/state", PathKind::Relative),
        (b"a", PathKind::Relative),
        (b"-", PathKind::Relative),
        (b"@introduceDomain", PathKind::Special),
        (b"@releaseDomain", PathKind::Special),
        (b"@releaseDomain/5", PathKind::Special),
    ];
    for &(p, kind) in cases {
        assert_eq!(validate(p), Ok(kind), "{:?}", String::from_utf8_lossy(p));
    }
}

#[test]
fn path_invalid() {
    let cases: &[(&[u8], PathError)] = &[
        (b"", PathError::Empty),
        (b"//", PathError::DoubleSlash),
        (b"/a//b", PathError::DoubleSlash),
        (b"a//b", PathError::DoubleSlash),
        (b"/a/", PathError::TrailingSlash),
        (b"a/", PathError::TrailingSlash),
        (b"/a b", PathError::InvalidChar),
        (b"/a\0b", PathError::InvalidChar),
        (b"/a.b", PathError::InvalidChar),
        (b"/a:b", PathError::InvalidChar),
        (b"/\xc3\xa9", PathError::InvalidChar),
        (b"/a\n", PathError::InvalidChar),
        (b"/a@b", PathError::MisplacedAt),
        (b"a@", PathError::MisplacedAt),
        (b"@", PathError::MisplacedAt),
        (b"@@x", PathError::MisplacedAt),
        (b"@releaseDomain/", PathError::TrailingSlash),
    ];
    for &(p, err) in cases {
        assert_eq!(validate(p), Err(err), "{:?}", String::from_utf8_lossy(p));
    }
}

#[test]
fn path_length_limits() {
    let abs = [b"/".to_vec(), vec![b'a'; ABS_PATH_MAX - 1]].concat();
    assert_eq!(validate(&abs), Ok(PathKind::Absolute));
    let abs = [b"/".to_vec(), vec![b'a'; ABS_PATH_MAX]].concat();
    assert_eq!(validate(&abs), Err(PathError::TooLong));
    let rel = vec![b'a'; REL_PATH_MAX];
    assert_eq!(validate(&rel), Ok(PathKind::Relative));
    let rel = vec![b'a'; REL_PATH_MAX + 1];
    assert_eq!(validate(&rel), Err(PathError::TooLong));
    let special = [b"@".to_vec(), vec![b'a'; ABS_PATH_MAX - 1]].concat();
    assert_eq!(validate(&special), Ok(PathKind::Special));
    let huge = vec![b'/'; 1 << 20];
    assert_eq!(validate(&huge), Err(PathError::TooLong));
}

#[test]
fn path_join() {
    let mut out = [0u8; 64];
    let mut j = |d: &[u8], n: &[u8]| -> Vec<u8> {
        let len = join(d, n, &mut out).unwrap();
        out[..len].to_vec()
    };
    assert_eq!(j(b"device/vif", b"0"), b"device/vif/0");
    assert_eq!(j(b"device/vif/0", b""), b"device/vif/0");
    assert_eq!(j(b"/local/domain/1", b"state"), b"/local/domain/1/state");
    assert_eq!(j(b"", b"x"), b"/x");
    assert_eq!(j(b"", b""), b"");
    // Linux semantics: no special case for the root.
    assert_eq!(j(b"/", b"x"), b"//x");
    assert_eq!(validate(&j(b"/", b"x")), Err(PathError::DoubleSlash));

    let mut small = [0u8; 5];
    assert_eq!(join(b"ab", b"cd", &mut small), Ok(5));
    assert_eq!(&small, b"ab/cd");
    assert_eq!(
        join(b"ab", b"cde", &mut small),
        Err(PathError::BufferTooSmall)
    );
    assert_eq!(
        join(b"abcdef", b"", &mut small),
        Err(PathError::BufferTooSmall)
    );
    assert_eq!(join(b"", b"", &mut []), Ok(0));
}

// ------------------------------------------------------------------ token

#[test]
fn token_round_trip() {
    let mut buf = [0u8; TOKEN_MAX];
    for (id, gen) in [
        (0u32, 0u32),
        (1, 1),
        (9, 10),
        (12345, 678),
        (u32::MAX, u32::MAX),
        (0, u32::MAX),
    ] {
        let t = token::format(id, gen, &mut buf).to_vec();
        assert!(t.starts_with(TOKEN_PREFIX));
        assert_eq!(t, format!("xbrs:{id}:{gen}").into_bytes());
        assert!(t.len() <= TOKEN_MAX);
        assert!(t.is_ascii());
        assert_eq!(token::parse(&t), Some((id, gen)));
    }
    assert_eq!(token::format(u32::MAX, u32::MAX, &mut buf).len(), TOKEN_MAX);
}

#[test]
fn token_garbage_rejected() {
    for bad in [
        &b""[..],
        b"xbrs:",
        b"xbrs:1",
        b"xbrs:1:",
        b"xbrs::1",
        b"xbrs:1:2:3",
        b"xbrs:01:2",
        b"xbrs:1:02",
        b"xbrs:-1:2",
        b"xbrs:+1:2",
        b"xbrs: 1:2",
        b"xbrs:1:2 ",
        b"xbrs:1:2\0",
        b"xbrs:4294967296:1",
        b"xbrs:1:4294967296",
        b"XBRS:1:2",
        b"xbrs;1:2",
        b"ffff888004a1c000",
        b"1:2",
        b"xbrs:0x1:2",
        b"xbrs:1:\xff",
    ] {
        assert_eq!(
            token::parse(bad),
            None,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

// ------------------------------------------------------------------ state

#[test]
fn state_names_match_xenbus_strstate() {
    let expected = [
        "Unknown",
        "Initialising",
        "InitWait",
        "Initialised",
        "Connected",
        "Closing",
        "Closed",
        "Reconfiguring",
        "Reconfigured",
    ];
    for (i, name) in expected.iter().enumerate() {
        let s = XenbusState::from_u32(i as u32).unwrap();
        assert_eq!(s.as_str(), *name);
        assert_eq!(s.as_u32(), i as u32);
        assert_eq!(s as u32, i as u32);
        assert_eq!(XenbusState::ALL[i], s);
        assert_eq!(strstate(i as u32), *name);
        assert_eq!(s.as_value(), i.to_string().as_bytes());
        assert_eq!(XenbusState::parse(s.as_value()), Ok(s));
    }
    for v in [9u32, 10, 100, u32::MAX] {
        assert_eq!(XenbusState::from_u32(v), None);
        assert_eq!(strstate(v), "INVALID");
    }
}

#[test]
fn state_parse() {
    assert_eq!(XenbusState::parse(b"4"), Ok(XenbusState::Connected));
    assert_eq!(XenbusState::parse(b"04"), Ok(XenbusState::Connected));
    assert_eq!(XenbusState::parse(b"0"), Ok(XenbusState::Unknown));
    assert_eq!(XenbusState::parse(b"9"), Err(StateParseError::OutOfRange));
    assert_eq!(
        XenbusState::parse(b"4294967296"),
        Err(StateParseError::OutOfRange)
    );
    assert_eq!(
        XenbusState::parse(b"9999999999999999"),
        Err(StateParseError::OutOfRange)
    );
    for bad in [
        &b""[..],
        b"-1",
        b"+4",
        b" 4",
        b"4 ",
        b"4\n",
        b"4\0",
        b"0x4",
        b"four",
        b"00000000000000004",
    ] {
        assert_eq!(
            XenbusState::parse(bad),
            Err(StateParseError::NotANumber),
            "{bad:?}"
        );
    }
}
