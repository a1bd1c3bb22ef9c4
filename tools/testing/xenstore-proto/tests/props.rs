// SPDX-License-Identifier: GPL-2.0

//! Property tests.

use proptest::collection::vec;
use proptest::prelude::*;

use xenstore_proto::errno::XsErrno;
use xenstore_proto::mem_page::MemPage;
use xenstore_proto::path;
use xenstore_proto::reqtable::ReqTable;
use xenstore_proto::ring::{
    check_indexes, peer_read_req, peer_write_rsp, readable_chunk, ring_read, ring_write,
    writable_chunk,
};
use xenstore_proto::state::XenbusState;
use xenstore_proto::token;
use xenstore_proto::wire::{
    self, decimal_u32, decimal_u64, directory_part, error_of, format_decimal, perms, single_string,
    strings, transaction_id, watch_event, Header, MessageReader, MsgType, Perm, PermKind, Request,
    WireError, DECIMAL_MAX, HEADER_LEN, MESSAGE_MAX, PAYLOAD_MAX,
};

/// A byte string without NUL, usable as a `Part::Str`.
fn nul_free(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(1u8..=255, 0..max)
}

fn path_bytes() -> impl Strategy<Value = Vec<u8>> {
    "(/|@)?[A-Za-z0-9_-]{1,12}(/[A-Za-z0-9_-]{1,12}){0,6}".prop_map(|s| s.into_bytes())
}

fn perm() -> impl Strategy<Value = Perm> {
    (0u8..4, any::<u32>()).prop_map(|(k, d)| {
        let kind = [
            PermKind::None,
            PermKind::Read,
            PermKind::Write,
            PermKind::Both,
        ][k as usize];
        Perm::new(kind, d)
    })
}

fn encode(req: &Request<'_>, req_id: u32, tx_id: u32) -> Result<Vec<u8>, WireError> {
    let mut buf = vec![0u8; MESSAGE_MAX];
    let n = req.encode(req_id, tx_id, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// Encodes, then reassembles through a MessageReader.
fn round_trip(req: &Request<'_>, req_id: u32, tx_id: u32) -> Option<(Header, Vec<u8>)> {
    let bytes = encode(req, req_id, tx_id).ok()?;
    let mut r = MessageReader::new();
    assert_eq!(r.push(&bytes), Ok(bytes.len()));
    let (h, p) = r.message().expect("complete");
    assert_eq!(h.msg_type(), Some(req.msg_type()));
    assert_eq!((h.req_id, h.tx_id), (req_id, tx_id));
    assert_eq!(h.len as usize, p.len());
    Some((h, p.to_vec()))
}

fn split_first_string(p: &[u8]) -> (&[u8], &[u8]) {
    let n = p.iter().position(|&b| b == 0).expect("NUL");
    (&p[..n], &p[n + 1..])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn write_round_trip(path in nul_free(100), value in vec(any::<u8>(), 0..5000),
                        req_id in any::<u32>(), tx_id in any::<u32>()) {
        let req = Request::write(&path, &value);
        match round_trip(&req, req_id, tx_id) {
            Some((_, p)) => {
                let (got_path, got_value) = split_first_string(&p);
                prop_assert_eq!(got_path, &path[..]);
                prop_assert_eq!(got_value, &value[..]);
            }
            None => {
                prop_assert!(path.len() + 1 + value.len() > PAYLOAD_MAX);
                prop_assert_eq!(encode(&req, req_id, tx_id), Err(WireError::PayloadTooLong));
            }
        }
    }

    #[test]
    fn single_path_requests_round_trip(path in nul_free(200), which in 0usize..5) {
        let req = match which {
            0 => Request::read(&path),
            1 => Request::mkdir(&path),
            2 => Request::rm(&path),
            3 => Request::directory(&path),
            _ => Request::get_perms(&path),
        };
        let (_, p) = round_trip(&req, 1, 2).expect("fits");
        prop_assert_eq!(single_string(&p), Ok(&path[..]));
    }

    #[test]
    fn watch_round_trip(path in path_bytes(), tok in nul_free(40), unwatch in any::<bool>()) {
        let req = if unwatch { Request::unwatch(&path, &tok) } else { Request::watch(&path, &tok) };
        let (_, p) = round_trip(&req, 3, 0).expect("fits");
        // WATCH payload has the same shape as a WATCH_EVENT.
        prop_assert_eq!(watch_event(&p), Ok((&path[..], &tok[..])));
    }

    #[test]
    fn directory_part_request_round_trip(path in path_bytes(), off in any::<u32>()) {
        let (_, p) = round_trip(&Request::directory_part(&path, off), 4, 0).expect("fits");
        let v: Vec<&[u8]> = strings(&p).unwrap().collect();
        prop_assert_eq!(v.len(), 2);
        prop_assert_eq!(v[0], &path[..]);
        prop_assert_eq!(decimal_u32(v[1]), Ok(off));
    }

    #[test]
    fn set_perms_round_trip(path in path_bytes(), ps in vec(perm(), 1..40)) {
        let req = Request::set_perms(&path, &ps);
        match round_trip(&req, 5, 6) {
            Some((_, p)) => {
                let (got_path, rest) = split_first_string(&p);
                prop_assert_eq!(got_path, &path[..]);
                let got: Vec<Perm> = perms(rest).unwrap().collect();
                prop_assert_eq!(got, ps);
            }
            None => prop_assert!(req.payload_len() > PAYLOAD_MAX),
        }
    }

    #[test]
    fn domain_path_and_transaction_requests(domid in any::<u32>(), commit in any::<bool>()) {
        let (_, p) = round_trip(&Request::get_domain_path(domid), 7, 0).unwrap();
        prop_assert_eq!(decimal_u32(single_string(&p).unwrap()), Ok(domid));
        let (_, p) = round_trip(&Request::transaction_end(commit), 8, 9).unwrap();
        prop_assert_eq!(p, if commit { b"T\0".to_vec() } else { b"F\0".to_vec() });
    }

    #[test]
    fn decimal_round_trip(v in any::<u64>()) {
        let mut buf = [0u8; DECIMAL_MAX];
        let s = format_decimal(v, &mut buf).to_vec();
        prop_assert_eq!(decimal_u64(&s), Ok(v));
        let mut reply = s.clone();
        reply.push(0);
        match u32::try_from(v) {
            Ok(0) => prop_assert_eq!(transaction_id(&reply), Err(WireError::ZeroTxId)),
            Ok(x) => prop_assert_eq!(transaction_id(&reply), Ok(x)),
            Err(_) => prop_assert_eq!(transaction_id(&reply), Err(WireError::BadNumber)),
        }
    }

    #[test]
    fn token_round_trip(id in any::<u32>(), gen in any::<u32>()) {
        let mut buf = [0u8; token::TOKEN_MAX];
        let t = token::format(id, gen, &mut buf).to_vec();
        prop_assert_eq!(token::parse(&t), Some((id, gen)));
        prop_assert!(path::validate(&t).is_err(), "tokens contain ':'");
    }

    #[test]
    fn token_parse_accepts_only_canonical(bytes in vec(any::<u8>(), 0..40)) {
        if let Some((id, gen)) = token::parse(&bytes) {
            let mut buf = [0u8; token::TOKEN_MAX];
            prop_assert_eq!(token::format(id, gen, &mut buf), &bytes[..]);
        }
    }

    #[test]
    fn reader_random_splits_equal_whole_parse(
        msgs in vec((any::<u32>(), any::<u32>(), vec(any::<u8>(), 0..600)), 1..6),
        cuts in vec(any::<proptest::sample::Index>(), 0..20),
    ) {
        let mut stream = Vec::new();
        for (ty, id, payload) in &msgs {
            let h = Header { ty: *ty, req_id: *id, tx_id: 0, len: payload.len() as u32 };
            stream.extend_from_slice(&h.to_bytes());
            stream.extend_from_slice(payload);
        }
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort();
        let mut r = MessageReader::new();
        let mut got = Vec::new();
        for w in points.windows(2) {
            let mut piece = &stream[w[0]..w[1]];
            while !piece.is_empty() {
                let n = r.push(piece).unwrap();
                piece = &piece[n..];
                if let Some((h, p)) = r.message() {
                    got.push((h.ty, h.req_id, p.to_vec()));
                    r.reset();
                }
            }
        }
        prop_assert!(r.is_idle());
        prop_assert_eq!(got, msgs);
    }

    #[test]
    fn ring_preserves_stream(
        data in vec(any::<u8>(), 0..6000),
        req_start in any::<u32>(),
        rsp_start in any::<u32>(),
        write_sizes in vec(1usize..1500, 1..30),
        read_sizes in vec(1usize..1500, 1..30),
    ) {
        let page = MemPage::with_indexes(req_start, rsp_start);
        // Guest -> peer on the request ring.
        let mut sent = 0;
        let mut received = Vec::new();
        let mut i = 0;
        while received.len() < data.len() {
            let w = write_sizes[i % write_sizes.len()];
            let end = (sent + w).min(data.len());
            sent += ring_write(&page, &data[sent..end]).unwrap();
            let mut buf = vec![0u8; read_sizes[i % read_sizes.len()]];
            let n = peer_read_req(&page, &mut buf).unwrap();
            received.extend_from_slice(&buf[..n]);
            i += 1;
            prop_assert!(i < 10_000);
        }
        prop_assert_eq!(&received, &data);
        // Peer -> guest on the response ring.
        let mut sent = 0;
        let mut received = Vec::new();
        let mut i = 0;
        while received.len() < data.len() {
            let w = write_sizes[i % write_sizes.len()];
            let end = (sent + w).min(data.len());
            sent += peer_write_rsp(&page, &data[sent..end]).unwrap();
            let mut buf = vec![0u8; read_sizes[i % read_sizes.len()]];
            let n = ring_read(&page, &mut buf).unwrap();
            received.extend_from_slice(&buf[..n]);
            i += 1;
            prop_assert!(i < 10_000);
        }
        prop_assert_eq!(&received, &data);
        prop_assert_eq!(page.req_prod.get(), req_start.wrapping_add(data.len() as u32));
        prop_assert_eq!(page.rsp_cons.get(), rsp_start.wrapping_add(data.len() as u32));
        prop_assert_eq!(page.out_of_bounds.get(), 0);
    }

    #[test]
    fn ring_ops_never_go_out_of_bounds(
        req_cons in any::<u32>(), req_prod in any::<u32>(),
        rsp_cons in any::<u32>(), rsp_prod in any::<u32>(),
        len in 0usize..3000,
    ) {
        let page = MemPage::new();
        page.req_cons.set(req_cons);
        page.req_prod.set(req_prod);
        page.rsp_cons.set(rsp_cons);
        page.rsp_prod.set(rsp_prod);
        let src = vec![0x5a; len];
        let mut dst = vec![0u8; len];
        let w = ring_write(&page, &src);
        let r = ring_read(&page, &mut dst);
        prop_assert_eq!(w.is_err(), check_indexes(req_cons, req_prod).is_err());
        prop_assert_eq!(r.is_err(), check_indexes(rsp_cons, rsp_prod).is_err());
        if let Ok(n) = w {
            prop_assert!(n <= len);
            prop_assert_eq!(page.req_prod.get(), req_prod.wrapping_add(n as u32));
        }
        if let Ok(n) = r {
            prop_assert!(n <= len);
        }
        let _ = peer_read_req(&page, &mut dst);
        let _ = peer_write_rsp(&page, &src);
        prop_assert_eq!(page.out_of_bounds.get(), 0);
        for (cons, prod) in [(req_cons, req_prod), (rsp_cons, rsp_prod)] {
            for (off, n) in [readable_chunk(cons, prod), writable_chunk(cons, prod)]
                .into_iter()
                .flatten()
            {
                prop_assert!(off + n <= 1024);
            }
        }
    }

    #[test]
    fn parsers_never_panic(bytes in vec(any::<u8>(), 0..300)) {
        let _ = error_of(&bytes);
        let _ = XsErrno::from_wire(&bytes);
        if let Ok(it) = strings(&bytes) {
            let n: usize = it.map(|s| s.len() + 1).sum();
            prop_assert_eq!(n, bytes.len());
        }
        let _ = single_string(&bytes);
        let _ = watch_event(&bytes);
        let _ = transaction_id(&bytes);
        if let Ok(p) = directory_part(&bytes) {
            let n: usize = p.children.clone().map(|s| s.len() + 1).sum();
            prop_assert_eq!(n, p.consumed);
            prop_assert!(p.children.clone().all(|c| !c.is_empty()));
            prop_assert!(p.complete || p.consumed > 0);
        }
        if let Ok(it) = perms(&bytes) {
            prop_assert!(it.count() >= 1);
        }
        let _ = decimal_u64(&bytes);
        let _ = decimal_u32(&bytes);
        let _ = Perm::parse(&bytes);
        let _ = path::validate(&bytes);
        let _ = token::parse(&bytes);
        let _ = XenbusState::parse(&bytes);
        let _ = Header::from_slice(&bytes).map(|h| (h.check(), h.msg_type()));
        let mut out = [0u8; 64];
        let _ = path::join(&bytes, &bytes, &mut out);
        let _ = wire::directory(&bytes);
    }

    #[test]
    fn reader_never_panics_on_garbage(stream in vec(any::<u8>(), 0..9000), step in 1usize..5000) {
        let mut r = MessageReader::new();
        let mut rest = &stream[..];
        while !rest.is_empty() {
            let piece = &rest[..step.min(rest.len())];
            match r.push(piece) {
                Ok(n) => {
                    if r.message().is_some() {
                        let (h, p) = r.message().unwrap();
                        prop_assert!(p.len() <= PAYLOAD_MAX);
                        prop_assert_eq!(h.len as usize, p.len());
                        r.reset();
                    } else {
                        prop_assert_eq!(n, piece.len());
                    }
                    rest = &rest[n..];
                }
                Err(e) => {
                    prop_assert_eq!(e, WireError::PayloadTooLong);
                    prop_assert!(r.header().unwrap().len as usize > PAYLOAD_MAX);
                    r.reset();
                    rest = &rest[piece.len().min(HEADER_LEN)..];
                }
            }
        }
    }

    #[test]
    fn path_validate_consistent_with_rules(p in vec(prop_oneof![
        Just(b'/'), Just(b'a'), Just(b'Z'), Just(b'0'), Just(b'-'), Just(b'_'), Just(b'@'),
        Just(b'.'), Just(0u8)], 0..20)) {
        let ok = !p.is_empty()
            && p.iter().all(|&b| b.is_ascii_alphanumeric() || b"-/_@".contains(&b))
            && !p.windows(2).any(|w| w == b"//")
            && (p.len() == 1 || p.last() != Some(&b'/'))
            && !p.iter().skip(1).any(|&b| b == b'@')
            && p != b"@";
        prop_assert_eq!(path::validate(&p).is_ok(), ok, "{:?}", String::from_utf8_lossy(&p));
    }

    #[test]
    fn join_matches_linux(dir in nul_free(30), node in nul_free(30)) {
        let mut out = [0u8; 80];
        let n = path::join(&dir, &node, &mut out).unwrap();
        let expected = if node.is_empty() {
            dir.clone()
        } else {
            [&dir[..], b"/", &node[..]].concat()
        };
        prop_assert_eq!(&out[..n], &expected[..]);
    }

    #[test]
    fn reqtable_model(ops in vec((any::<bool>(), any::<u32>()), 0..400)) {
        let mut t = ReqTable::<8>::new();
        let mut live: Vec<(usize, u32)> = Vec::new();
        let mut dead: Vec<u32> = Vec::new();
        for (alloc, x) in ops {
            if alloc {
                match t.alloc() {
                    Some((slot, id)) => {
                        prop_assert_ne!(id, 0);
                        prop_assert!(live.iter().all(|&(s, _)| s != slot));
                        live.push((slot, id));
                    }
                    None => prop_assert_eq!(live.len(), 8),
                }
            } else if !live.is_empty() {
                let (slot, id) = live.swap_remove(x as usize % live.len());
                prop_assert_eq!(t.take(id), Ok(slot));
                dead.push(id);
            }
            prop_assert_eq!(t.in_flight(), live.len());
            for &(slot, id) in &live {
                prop_assert_eq!(t.lookup(id), Ok(slot));
            }
            for &id in &dead {
                prop_assert!(t.lookup(id).is_err());
            }
            if let Ok(slot) = t.lookup(x) {
                prop_assert!(live.contains(&(slot, x)));
            }
        }
    }

    #[test]
    fn directory_part_reassembly(names in vec("[a-z0-9_-]{1,40}", 0..400), gen in any::<u64>()) {
        let mut all = Vec::new();
        for n in &names {
            all.extend_from_slice(n.as_bytes());
            all.push(0);
        }
        let mut genbuf = [0u8; DECIMAL_MAX];
        let mut gen_s = format_decimal(gen, &mut genbuf).to_vec();
        gen_s.push(0);
        // Like xenstored's send_directory_part().
        let server = |off: usize| -> Vec<u8> {
            if off >= all.len() {
                return [gen_s.clone(), vec![0]].concat();
            }
            let maxlen = PAYLOAD_MAX - gen_s.len() - 1;
            let (mut len, mut pos) = (0, off);
            loop {
                let l = all[pos..].iter().position(|&b| b == 0).unwrap();
                if len + l >= maxlen { break; }
                len += l + 1;
                pos += l + 1;
                if off + len == all.len() { break; }
            }
            let mut out = gen_s.clone();
            out.extend_from_slice(&all[off..off + len]);
            if off + len == all.len() { out.push(0); }
            out
        };
        let mut got = Vec::new();
        let mut off = 0;
        loop {
            let reply = server(off);
            prop_assert!(reply.len() <= PAYLOAD_MAX);
            let p = directory_part(&reply).unwrap();
            prop_assert_eq!(p.gencnt, gen);
            got.extend(p.children.clone().map(|c| String::from_utf8(c.to_vec()).unwrap()));
            off += p.consumed;
            if p.complete { break; }
        }
        prop_assert_eq!(got, names);
    }

    #[test]
    fn header_round_trip(ty in any::<u32>(), req_id in any::<u32>(), tx_id in any::<u32>(), len in any::<u32>()) {
        let h = Header { ty, req_id, tx_id, len };
        prop_assert_eq!(Header::from_bytes(&h.to_bytes()), h);
        prop_assert_eq!(h.check().is_ok(), len as usize <= PAYLOAD_MAX);
        prop_assert_eq!(h.msg_type().map(MsgType::as_u32), MsgType::from_u32(ty).map(|t| t as u32));
    }
}
