//! Runs one behaviour case (`accepted` in `v3.json`, `negative` in `v3-negative.json`) through the code.
//!
//! A case names a `check` (which function of the protocol it exercises), gives every input of it, and says
//! what must come out: for an accepted case the outputs, for a negative one the error (a stable name, see
//! `docs/PROTOCOL.md` §13), the code the refusal carries on the wire, and the exact Rust error. The
//! checker reads only the committed JSON, so these are the same inputs an independent implementation sees.

use std::collections::HashSet;

use serde_json::{Value, json};
use wopr_identity::{PublicId, RotationRecord};
use wopr_proto::channel::{ChannelError, OpeningKey};
use wopr_proto::codec::{CodecError, Decode, Encode};
use wopr_proto::discovery::{Offer, PeerTable, ProfileError, TopicMessage};
use wopr_proto::frame::{FrameError, decode_frame};
use wopr_proto::friend::{FriendAccept, FriendError, FriendRequest};
use wopr_proto::handshake::{HandshakeError, HandshakeMessage, HandshakeRandom, Initiator, respond};
use wopr_proto::invite::{InviteError, InviteToken, verify_claim};
use wopr_proto::message::{Envelope, Message, MessageError};
use wopr_proto::replay::{ReplayError, ReplayWindow};

use crate::fixtures::{array, bytes, identity_named, key, name_of, u64_of};

/// Why a case's check refused: the error's stable name, its wire code (if it has one) and its `Debug` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub error: String,
    pub code: Option<u8>,
    pub rust_error: String,
}

impl Refusal {
    fn new(error: impl Into<String>, code: Option<u8>, debug: &impl std::fmt::Debug) -> Self {
        Refusal { error: error.into(), code, rust_error: format!("{debug:?}") }
    }
}

/// Runs `check` on `input`. `identities` is the committed list of identities (names and seeds).
pub fn run(check: &str, input: &Value, identities: &Value) -> Result<Value, Refusal> {
    let key = |field: &str| key(identities, &input[field]);
    match check {
        "public_id" => {
            let text = input["text"].as_str().expect("text");
            PublicId::parse(text)
                .map(|id| json!({ "key": id.to_hex() }))
                .map_err(|e| Refusal::new("InvalidPublicKey", None, &e))
        }
        "frame" => decode_frame(&bytes(&input["frame"]))
            .map(|body| json!({ "body": hex::encode(body) }))
            .map_err(|e| frame_refusal(&e)),
        "sealed" => {
            let mut open = OpeningKey::new(&array(&input["key"]), &bytes(&input["aad"]));
            let frames = input["frames"].as_array().expect("frames");
            let mut last = Err(Refusal::new("NoFrame", None, &"no frame"));
            for frame in frames {
                let wire = bytes(frame);
                last = match decode_frame(&wire) {
                    Ok(body) => open
                        .open(body)
                        .map(|plain| json!({ "plaintext": hex::encode(plain) }))
                        .map_err(|e| channel_refusal(&e)),
                    Err(e) => Err(frame_refusal(&e)),
                };
            }
            last
        }
        "handshake_respond" => {
            let responder = identity_named(identities, input["responder"].as_str().expect("responder"));
            let hello = match decode_handshake(&input["hello"])? {
                HandshakeMessage::Hello(h) => h,
                _ => return Err(handshake_refusal(&HandshakeError::Unexpected { expected: "Hello" })),
            };
            let random = HandshakeRandom::new(
                array(&input["responder_ephemeral_secret"]),
                array(&input["responder_nonce"]),
            );
            respond(&responder, &key("remote"), &hello, random, u64_of(&input["now_ms"]))
                .map(|(ack, _)| json!({ "ack": hex::encode(ack.to_bytes()), "version": ack.version }))
                .map_err(|e| handshake_refusal(&e))
        }
        "handshake_finish" => {
            let initiator = identity_named(identities, input["initiator"].as_str().expect("initiator"));
            let random = HandshakeRandom::new(
                array(&input["initiator_ephemeral_secret"]),
                array(&input["initiator_nonce"]),
            );
            let (state, hello) =
                Initiator::start(&initiator, key("responder"), random, u64_of(&input["start_ms"]));
            assert_eq!(hex::encode(hello.to_bytes()), input["hello"], "the initiator's Hello");
            let reply = decode_handshake(&input["reply"])?;
            state
                .finish(&reply, u64_of(&input["now_ms"]))
                .map(|s| json!({ "version": s.version(), "transcript_hash": hex::encode(s.transcript_hash()) }))
                .map_err(|e| handshake_refusal(&e))
        }
        "envelope_decode" => Envelope::from_bytes(&bytes(&input["envelope"]))
            .map(|env| json!({ "type": env.message.type_byte() }))
            .map_err(|e| Refusal::new(codec_name(&e), Some(3), &e)),
        "envelope_verify" => {
            let env = Envelope::from_bytes(&bytes(&input["envelope"]))
                .map_err(|e| message_refusal(&MessageError::from(e)))?;
            env.verify_from(&key("recipient"), &key("remote")).map_err(|e| message_refusal(&e))?;
            let author = env.verify(&key("recipient")).map_err(|e| message_refusal(&e))?;
            Ok(json!({ "author": author.map(|a| name_of(&a)) }))
        }
        "replay" => {
            let mut window =
                ReplayWindow::with_limits(u64_of(&input["window_ms"]), u64_of(&input["capacity"]) as usize);
            let check = |w: &mut ReplayWindow, m: &Value| {
                w.check(&array(&m["nonce"]), u64_of(&m["timestamp_ms"]), u64_of(&m["now_ms"]))
            };
            for earlier in input["accepted_before"].as_array().expect("accepted_before") {
                check(&mut window, earlier).unwrap_or_else(|e| panic!("{earlier} must be accepted: {e}"));
            }
            check(&mut window, input).map(|()| json!({})).map_err(|e| replay_refusal(&e))
        }
        "invite_parse" => {
            let uri = input["uri"].as_str().expect("uri");
            InviteToken::parse(uri, u64_of(&input["now_ms"]))
                .map(|t| json!({ "token": hex::encode(t.to_bytes()) }))
                .map_err(|e| invite_refusal(&e))
        }
        "invite_claim" => {
            let token = InviteToken::from_bytes(&bytes(&input["token"])).expect("the token decodes");
            let mut used: HashSet<[u8; 16]> =
                input["used_nonces"].as_array().expect("used_nonces").iter().map(array).collect();
            let claim = verify_claim(&token, &key("issuer"), &key("claimant"), u64_of(&input["now_ms"]))
                .map_err(|e| invite_refusal(&e))?;
            claim
                .consume(&mut used)
                .map(|t| json!({ "sessions": t.sessions, "capabilities": t.capabilities.bits() }))
                .map_err(|e| invite_refusal(&e))
        }
        "rotation_json" => {
            let text = input["json"].as_str().expect("json");
            let record: RotationRecord =
                serde_json::from_str(text).map_err(|e| Refusal::new("Json", None, &e.to_string()))?;
            record.verify().map_err(|e| Refusal::new("BadSignature", None, &e))?;
            Ok(json!({ "signed_bytes": hex::encode(record.signed_bytes()) }))
        }
        "friend_request_line" => {
            let me = key("me");
            let request = FriendRequest::parse_line(input["line"].as_str().expect("line"))
                .map_err(|e| friend_refusal(&e))?;
            request.verify(&me, u64_of(&input["now_ms"])).map_err(|e| friend_refusal(&e))?;
            Ok(json!({ "request": hex::encode(request.to_bytes()) }))
        }
        "friend_request" => {
            let request = FriendRequest::parse(&bytes(&input["request"])).map_err(|e| friend_refusal(&e))?;
            request.verify(&key("me"), u64_of(&input["now_ms"])).map_err(|e| friend_refusal(&e))?;
            Ok(json!({ "line": request.to_line() }))
        }
        "friend_accept" => {
            let accept = FriendAccept::parse(&bytes(&input["accept"])).map_err(|e| friend_refusal(&e))?;
            let pending: Vec<FriendRequest> = input["pending"]
                .as_array()
                .expect("pending")
                .iter()
                .map(|p| FriendRequest::parse(&bytes(p)).expect("a pending request decodes"))
                .collect();
            let answered = accept
                .verify_among(&key("me"), u64_of(&input["now_ms"]), &pending)
                .map_err(|e| friend_refusal(&e))?;
            let index = pending.iter().position(|p| p == answered).expect("one of them");
            Ok(json!({ "line": accept.to_line(), "answers": index }))
        }
        "friend_accept_line" => {
            let accept = FriendAccept::parse_line(input["line"].as_str().expect("line"))
                .map_err(|e| friend_refusal(&e))?;
            let pending = FriendRequest::parse_line(input["pending"].as_str().expect("pending"))
                .expect("the pending request parses");
            accept.verify(&key("me"), u64_of(&input["now_ms"]), &pending).map_err(|e| friend_refusal(&e))?;
            Ok(json!({ "accept": hex::encode(accept.to_bytes()) }))
        }
        "topic_message" => {
            let topic = input["topic"].as_str().expect("topic");
            let mut table = table_of(input, identities);
            for earlier in input["before"].as_array().expect("before") {
                let m = TopicMessage::parse(&bytes(&earlier["message"])).expect("an earlier message parses");
                let t = earlier["topic"].as_str().expect("topic");
                let offer = table.offer(t, &m, u64_of(&earlier["now_ms"]));
                assert!(
                    matches!(offer, Offer::New | Offer::Updated { .. } | Offer::Withdrawn),
                    "{earlier} must be taken, got {offer:?}"
                );
            }
            let message = TopicMessage::parse(&bytes(&input["message"])).map_err(|e| profile_refusal(&e))?;
            let now_ms = u64_of(&input["now_ms"]);
            let mut result = match message {
                // Each profile of a share on its own: one refused does not refuse the others.
                TopicMessage::Share(share) => {
                    let offers: Vec<Value> = TopicMessage::Share(share)
                        .into_listings()
                        .iter()
                        .map(|m| match offer_json(&table.offer(topic, m, now_ms)) {
                            Ok(v) => v,
                            Err(refusal) => json!({ "refused": refusal.error }),
                        })
                        .collect();
                    json!({ "offer": "Share", "offers": offers })
                }
                message => offer_json(&table.offer(topic, &message, now_ms))?,
            };
            let mut listed: Vec<String> =
                table.peers(Some(topic)).map(|(_, e)| name_of(&e.profile.author)).collect();
            listed.sort();
            result["listed"] = json!(listed);
            Ok(result)
        }
        "connect_request" => {
            let env = Envelope::from_bytes(&bytes(&input["envelope"]))
                .map_err(|e| message_refusal(&MessageError::from(e)))?;
            env.verify_from(&key("recipient"), &key("remote")).map_err(|e| message_refusal(&e))?;
            let Message::ConnectRequest(m) = &env.message else { panic!("a connect-request envelope") };
            m.check_profile(u64_of(&input["now_ms"]))
                .map_err(|e| Refusal::new(format!("Profile.{}", profile_error_name(&e)), Some(3), &e))?;
            Ok(
                json!({ "author": name_of(&m.author), "topic": m.topic, "session": m.session, "note": m.note }),
            )
        }
        other => panic!("unknown check {other:?}"),
    }
}

/// The table's answer to one announce or withdrawal, or its refusal (`Stale`, `Full`, a failed check).
fn offer_json(offer: &Offer) -> Result<Value, Refusal> {
    match offer {
        Offer::Updated { content_changed } => {
            Ok(json!({ "offer": "Updated", "content_changed": content_changed }))
        }
        Offer::New | Offer::Withdrawn | Offer::Unchanged | Offer::Ignored => {
            Ok(json!({ "offer": variant(offer) }))
        }
        Offer::Stale | Offer::Full => Err(Refusal::new(variant(offer), None, offer)),
        Offer::Refused(e) => Err(profile_refusal(e)),
    }
}

/// The peer table a `topic_message` case starts from: its node, joined topics, `only` list and capacity.
fn table_of(input: &Value, identities: &Value) -> PeerTable {
    let mut table =
        PeerTable::with_capacity(key(identities, &input["me"]), u64_of(&input["capacity"]) as usize);
    for t in input["joined"].as_array().expect("joined") {
        table.join(t.as_str().expect("topic"));
    }
    if let Some(only) = input["only"].as_array() {
        table.set_only(Some(only.iter().map(|k| key(identities, k)).collect()));
    }
    table
}

fn profile_error_name(e: &ProfileError) -> String {
    match e {
        ProfileError::Codec(c) => format!("Malformed.{}", codec_name(c)),
        ProfileError::Friend(f) => format!("Friend.{}", friend_refusal(f).error),
        other => variant(other),
    }
}

/// Topic messages are never answered: their refusals carry no code.
fn profile_refusal(e: &ProfileError) -> Refusal {
    Refusal::new(profile_error_name(e), None, e)
}

fn decode_handshake(v: &Value) -> Result<HandshakeMessage, Refusal> {
    HandshakeMessage::from_bytes(&bytes(v)).map_err(|e| handshake_refusal(&HandshakeError::from(e)))
}

/// The stable name of an error: its variant's name, as `Debug` prints it first.
fn variant(e: &impl std::fmt::Debug) -> String {
    format!("{e:?}").chars().take_while(char::is_ascii_alphanumeric).collect()
}

/// The stable name of a codec error: its variant.
fn codec_name(e: &CodecError) -> String {
    variant(e)
}

/// Frame and channel errors end the stream with an `Error` of code 3 ("bad frame", PROTOCOL.md §12.3).
fn frame_refusal(e: &FrameError) -> Refusal {
    Refusal::new(variant(e), Some(3), e)
}

fn channel_refusal(e: &ChannelError) -> Refusal {
    Refusal::new(variant(e), Some(3), e)
}

fn handshake_refusal(e: &HandshakeError) -> Refusal {
    let name = match e {
        HandshakeError::Malformed(c) => format!("Malformed.{}", codec_name(c)),
        other => variant(other),
    };
    Refusal::new(name, Some(e.code().as_u8()), e)
}

fn message_refusal(e: &MessageError) -> Refusal {
    let name = match e {
        MessageError::Malformed(c) => format!("Malformed.{}", codec_name(c)),
        other => variant(other),
    };
    Refusal::new(name, Some(e.code().as_u8()), e)
}

fn replay_refusal(e: &ReplayError) -> Refusal {
    Refusal::new(variant(e), Some(e.code().as_u8()), e)
}

fn invite_refusal(e: &InviteError) -> Refusal {
    let name = match e {
        InviteError::Invalid(c) => format!("Invalid.{}", codec_name(c)),
        other => variant(other),
    };
    Refusal::new(name, Some(e.code().as_u8()), e)
}

fn friend_refusal(e: &FriendError) -> Refusal {
    let name = match e {
        FriendError::Malformed(c) => format!("Malformed.{}", codec_name(c)),
        FriendError::BadField { field, .. } => format!("BadField.{field}"),
        other => variant(other),
    };
    Refusal::new(name, Some(e.code().as_u8()), e)
}
