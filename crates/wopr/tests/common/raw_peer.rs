//! A peer that speaks protocol v3 by hand over its own iroh endpoint, so a test can send what an honest
//! node never would (forged signatures, replays, oversized frames, terminal escapes). Included with
//! `#[path = "common/raw_peer.rs"] mod raw_peer;` by the tests that need it.
#![allow(dead_code)]

use std::net::SocketAddr;

use iroh::endpoint::{Connection, RecvStream, presets};
use iroh::{Endpoint, EndpointAddr, RelayMode, SecretKey, TransportAddr};
use wopr_identity::{Identity, PublicId};
use wopr_proto::channel::SealingKey;
use wopr_proto::frame::encode_frame;
use wopr_proto::handshake::{HandshakeMessage, HandshakeRandom, Initiator, Session};
use wopr_proto::message::{Envelope, Message};
use wopr_proto::{Decode, Encode};

/// An endpoint on 127.0.0.1 with `identity`'s key, no relay and no address lookup.
pub async fn endpoint(identity: &Identity) -> Endpoint {
    Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Disabled)
        .clear_address_lookup()
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")
        .unwrap()
        .secret_key(SecretKey::from_bytes(&identity.signing_seed()))
        .bind()
        .await
        .unwrap()
}

/// One frame's body, or `None` when the stream ends first.
pub async fn read_frame(recv: &mut RecvStream) -> Option<Vec<u8>> {
    let mut header = [0u8; 4];
    recv.read_exact(&mut header).await.ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
    recv.read_exact(&mut body).await.ok()?;
    Some(body)
}

/// A connection to a victim node with a completed handshake.
pub struct RawPeer {
    _endpoint: Endpoint,
    pub identity: Identity,
    victim: PublicId,
    conn: Connection,
    session: Session,
}

impl RawPeer {
    /// Connects to `victim` at `addr` and runs the v3 handshake as `identity`.
    pub async fn connect(identity: Identity, victim: PublicId, addr: SocketAddr) -> RawPeer {
        let endpoint = endpoint(&identity).await;
        let id = iroh::EndpointId::from_bytes(victim.as_bytes()).unwrap();
        let conn = endpoint
            .connect(EndpointAddr::from_parts(id, [TransportAddr::Ip(addr)]), wopr_proto::ALPN)
            .await
            .unwrap();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        let (init, hello) =
            Initiator::start(&identity, victim, HandshakeRandom::generate(), wopr_store::now_ms());
        send.write_all(&encode_frame(&HandshakeMessage::Hello(hello).to_bytes()).unwrap()).await.unwrap();
        send.finish().unwrap();
        let reply = HandshakeMessage::from_bytes(&read_frame(&mut recv).await.unwrap()).unwrap();
        let session = init.finish(&reply, wopr_store::now_ms()).unwrap();
        RawPeer { _endpoint: endpoint, identity, victim, conn, session }
    }

    /// An envelope of `message`, fresh and signed by this peer for the victim.
    pub fn signed(&self, message: Message) -> Envelope {
        let mut env = Envelope::new(wopr_identity::random_bytes(), wopr_store::now_ms(), message);
        env.sign(&self.identity, &self.victim).unwrap();
        env
    }

    /// Opens a request stream, writes what `raw` makes with the stream's sealing key, and returns the
    /// answer's messages up to its `InjectDone` or `Error`.
    pub async fn request(&mut self, raw: impl FnOnce(&mut SealingKey) -> Vec<u8>) -> Vec<Message> {
        let (mut send, mut recv) = self.conn.open_bi().await.unwrap();
        let (mut seal, mut open) = self.session.stream_channel(u64::from(send.id())).unwrap();
        let bytes = raw(&mut seal);
        // The victim may stop reading an oversized frame early; its answer still comes.
        let _ = send.write_all(&bytes).await;
        let _ = send.finish();
        let mut answer = Vec::new();
        while let Some(body) = read_frame(&mut recv).await {
            let message = Envelope::from_bytes(&open.open(&body).unwrap()).unwrap().message;
            let last = matches!(message, Message::InjectDone { .. } | Message::Error(_));
            answer.push(message);
            if last {
                break;
            }
        }
        answer
    }

    /// Sends `env`, sealed, on a stream of its own; returns the answer.
    pub async fn send(&mut self, env: &Envelope) -> Vec<Message> {
        let bytes = env.to_bytes();
        self.request(|seal| seal.seal_frame(&bytes).unwrap()).await
    }
}
