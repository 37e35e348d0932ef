//! Property tests: every encoder/decoder pair round-trips, and decoding arbitrary bytes never panics.

use proptest::prelude::*;
use wopr_identity::{PublicId, RotationReason, RotationRecord};
use wopr_proto::channel::{Direction, OpeningKey, SealingKey};
use wopr_proto::codec::{Reader, Writer};
use wopr_proto::frame::{FrameDecoder, MAX_FRAME, decode_frame, encode_frame};
use wopr_proto::handshake::{HandshakeMessage, Hello, HelloAck, Reject};
use wopr_proto::invite::{Capabilities, InviteToken};
use wopr_proto::message::{Claim, DoneStatus, Envelope, ErrorMessage, Inject, Log, Message};
use wopr_proto::{Decode, Encode, ErrorCode};

fn key() -> impl Strategy<Value = PublicId> {
    any::<[u8; 32]>().prop_map(PublicId)
}

fn sig() -> impl Strategy<Value = [u8; 64]> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&a);
        s[32..].copy_from_slice(&b);
        s
    })
}

fn session_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._:()-]{1,40}"
}

fn text() -> impl Strategy<Value = String> {
    ".{0,64}"
}

fn caps() -> impl Strategy<Value = Capabilities> {
    (1u8..=3).prop_map(|b| Capabilities::from_bits(b).unwrap())
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        Just(ErrorCode::Rejected),
        Just(ErrorCode::Invalid),
        Just(ErrorCode::RateLimited),
        Just(ErrorCode::VersionMismatch),
        Just(ErrorCode::Unauthorized),
    ]
}

fn versions() -> impl Strategy<Value = Vec<u16>> {
    prop::collection::vec(any::<u16>(), 0..=16)
}

fn hello() -> impl Strategy<Value = Hello> {
    (versions(), key(), any::<[u8; 32]>(), any::<u64>(), any::<[u8; 32]>(), sig()).prop_map(
        |(versions, static_key, ephemeral, timestamp_ms, nonce, signature)| Hello {
            versions,
            static_key,
            ephemeral,
            timestamp_ms,
            nonce,
            signature,
        },
    )
}

fn ack() -> impl Strategy<Value = HelloAck> {
    (any::<u16>(), hello()).prop_map(|(version, h)| HelloAck {
        version,
        versions: h.versions,
        static_key: h.static_key,
        ephemeral: h.ephemeral,
        timestamp_ms: h.timestamp_ms,
        nonce: h.nonce,
        signature: h.signature,
    })
}

fn handshake_message() -> impl Strategy<Value = HandshakeMessage> {
    prop_oneof![
        hello().prop_map(HandshakeMessage::Hello),
        ack().prop_map(HandshakeMessage::HelloAck),
        (error_code(), text()).prop_map(|(code, message)| HandshakeMessage::Reject(Reject { code, message })),
    ]
}

fn token() -> impl Strategy<Value = InviteToken> {
    (
        (key(), any::<[u8; 32]>(), key()),
        prop::collection::vec(session_name(), 1..=4),
        caps(),
        any::<u64>(),
        any::<[u8; 16]>(),
        prop::collection::vec("[0-9a-z.:/\\[\\]]{0,40}", 0..=8),
        sig(),
    )
        .prop_map(
            |(
                (issuer, issuer_encrypt_pub, subject),
                sessions,
                capabilities,
                expires_ms,
                nonce,
                hints,
                signature,
            )| {
                InviteToken {
                    issuer,
                    issuer_encrypt_pub,
                    subject,
                    sessions,
                    capabilities,
                    expires_ms,
                    nonce,
                    hints,
                    signature,
                }
            },
        )
}

fn rotation() -> impl Strategy<Value = RotationRecord> {
    (key(), key(), any::<[u8; 32]>(), 1u8..=3, any::<u64>(), sig(), sig()).prop_map(
        |(old_key, new_key, new_encrypt_pub, reason, timestamp, old_sig, new_sig)| RotationRecord {
            old_key,
            new_key,
            new_encrypt_pub,
            reason: RotationReason::from_code(reason).unwrap(),
            timestamp,
            old_sig,
            new_sig,
        },
    )
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (key(), session_name(), text(), any::<u8>(), sig()).prop_map(
            |(author, session, text, hop_count, signature)| Message::Inject(Inject {
                author,
                session,
                text,
                hop_count,
                signature
            })
        ),
        (key(), session_name(), text(), sig()).prop_map(|(author, session, text, signature)| Message::Log(
            Log { author, session, text, signature }
        )),
        text().prop_map(|text| Message::InjectDelta { text }),
        prop_oneof![
            Just(DoneStatus::Completed),
            Just(DoneStatus::Logged),
            Just(DoneStatus::Failed),
            Just(DoneStatus::Cancelled)
        ]
        .prop_map(|status| Message::InjectDone { status }),
        (session_name(), text()).prop_map(|(name, detail)| Message::ToolEvent { name, detail }),
        (key(), token(), sig()).prop_map(|(author, token, signature)| Message::Claim(Claim {
            author,
            token,
            signature
        })),
        (prop::collection::vec(session_name(), 0..=4), caps())
            .prop_map(|(sessions, capabilities)| Message::ClaimAccepted { sessions, capabilities }),
        rotation().prop_map(Message::Rotation),
        (error_code(), text(), any::<Option<u64>>()).prop_map(|(code, message, retry_after_ms)| {
            Message::Error(ErrorMessage { code, message, retry_after_ms })
        }),
    ]
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (any::<[u8; 16]>(), any::<u64>(), message()).prop_map(|(n, t, m)| Envelope::new(n, t, m))
}

fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..512)
}

proptest! {
    #[test]
    fn codec_primitives_round_trip(a in any::<u8>(), b in any::<u16>(), c in any::<u32>(), d in any::<u64>(),
                                   s in ".{0,40}", v in prop::collection::vec(any::<u16>(), 0..20), o in any::<Option<u64>>()) {
        let mut w = Writer::new();
        w.u8(a).u16(b).u32(c).u64(d).str(&s);
        w.list(&v, |w, x| { w.u16(*x); });
        w.option(o.as_ref(), |w, x| { w.u64(*x); });
        let bytes = w.into_bytes();
        let mut r = Reader::new(&bytes);
        prop_assert_eq!(r.u8().unwrap(), a);
        prop_assert_eq!(r.u16().unwrap(), b);
        prop_assert_eq!(r.u32().unwrap(), c);
        prop_assert_eq!(r.u64().unwrap(), d);
        prop_assert_eq!(r.string("s", 1000).unwrap(), s);
        prop_assert_eq!(r.list("v", 100, 2, |r| r.u16()).unwrap(), v);
        prop_assert_eq!(r.option(|r| r.u64()).unwrap(), o);
        prop_assert!(r.finish().is_ok());
    }

    #[test]
    fn frames_round_trip_whatever_the_chunking(bodies in prop::collection::vec(garbage(), 0..5), chunk in 1usize..64) {
        let mut wire = Vec::new();
        for b in &bodies {
            let one = encode_frame(b).unwrap();
            prop_assert_eq!(decode_frame(&one).unwrap(), &b[..]);
            wire.extend(one);
        }
        let mut d = FrameDecoder::new();
        let mut out = Vec::new();
        for piece in wire.chunks(chunk) {
            out.extend(d.decode_all(piece).unwrap());
        }
        prop_assert_eq!(out, bodies);
        prop_assert!(d.finish().is_ok());
    }

    #[test]
    fn frame_decoding_arbitrary_bytes_never_panics(bytes in garbage(), chunk in 1usize..64) {
        let _ = decode_frame(&bytes);
        let mut d = FrameDecoder::new();
        for piece in bytes.chunks(chunk) {
            if let Ok(frames) = d.decode_all(piece) {
                for f in frames {
                    prop_assert!(f.len() <= MAX_FRAME);
                }
            }
        }
        let _ = d.finish();
    }

    #[test]
    fn handshake_messages_round_trip(m in handshake_message()) {
        let bytes = m.to_bytes();
        prop_assert_eq!(HandshakeMessage::from_bytes(&bytes).unwrap(), m.clone());
        match m {
            HandshakeMessage::Hello(h) => prop_assert_eq!(Hello::from_bytes(&bytes).unwrap(), h),
            HandshakeMessage::HelloAck(a) => prop_assert_eq!(HelloAck::from_bytes(&bytes).unwrap(), a),
            HandshakeMessage::Reject(r) => prop_assert_eq!(Reject::from_bytes(&bytes).unwrap(), r),
        }
    }

    #[test]
    fn handshake_decoding_arbitrary_bytes_never_panics(bytes in garbage()) {
        let _ = HandshakeMessage::from_bytes(&bytes);
        let _ = Hello::from_bytes(&bytes);
        let _ = HelloAck::from_bytes(&bytes);
    }

    #[test]
    fn envelopes_round_trip(e in envelope()) {
        prop_assert_eq!(Envelope::from_bytes(&e.to_bytes()).unwrap(), e);
    }

    #[test]
    fn envelope_decoding_arbitrary_bytes_never_panics(bytes in garbage()) {
        let _ = Envelope::from_bytes(&bytes);
    }

    #[test]
    fn truncated_encodings_are_errors_not_panics(e in envelope(), cut in any::<prop::sample::Index>()) {
        let bytes = e.to_bytes();
        let at = cut.index(bytes.len());
        prop_assert!(Envelope::from_bytes(&bytes[..at]).is_err());
    }

    #[test]
    fn corrupted_encodings_never_panic(e in envelope(), t in token(), flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..8)) {
        let mut env = e.to_bytes();
        let mut tok = t.to_bytes();
        for (at, x) in flips {
            let i = at.index(env.len());
            env[i] ^= x;
            let j = at.index(tok.len());
            tok[j] ^= x;
        }
        let _ = Envelope::from_bytes(&env);
        let _ = InviteToken::from_bytes(&tok);
    }

    #[test]
    fn invite_tokens_round_trip_as_bytes_and_uri(t in token()) {
        prop_assert_eq!(InviteToken::from_bytes(&t.to_bytes()).unwrap(), t.clone());
        prop_assert_eq!(InviteToken::decode_uri(&t.to_uri()).unwrap(), t);
    }

    #[test]
    fn invite_decoding_arbitrary_input_never_panics(bytes in garbage(), s in ".{0,200}") {
        let _ = InviteToken::from_bytes(&bytes);
        let _ = InviteToken::parse(&s, 0);
        let _ = InviteToken::parse(&format!("wop1://{s}"), 0);
    }

    #[test]
    fn sealed_frames_round_trip_in_order(key in any::<[u8; 32]>(), msgs in prop::collection::vec(garbage(), 1..5)) {
        let aad = Direction::ResponderToInitiator.label();
        let (mut s, mut o) = (SealingKey::new(&key, aad), OpeningKey::new(&key, aad));
        for m in &msgs {
            let framed = s.seal_frame(m).unwrap();
            prop_assert_eq!(&o.open(decode_frame(&framed).unwrap()).unwrap(), m);
        }
    }

    #[test]
    fn opening_arbitrary_bytes_never_panics_and_never_succeeds(key in any::<[u8; 32]>(), bytes in garbage()) {
        let mut o = OpeningKey::new(&key, Direction::InitiatorToResponder.label());
        prop_assert!(o.open(&bytes).is_err());
    }
}
