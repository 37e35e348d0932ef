//! Protocol v3 and its transport, each figure printed next to a reference measured in the same run:
//!
//! 1. v3 handshakes per second (`Initiator::start`, `respond`, `finish`, with the messages encoded and
//!    decoded, in memory) against the raw crypto a handshake needs: 2 Ed25519 signs, 2 key decodes and
//!    strict verifies, 2 X25519 Diffie-Hellmans.
//! 2. Inject round trip without AI on an established loopback connection between two [`Node`]s (the
//!    backend answers one short delta at once), p50 and p99, against a 1 KiB echo on a fresh
//!    bidirectional stream between two plain iroh endpoints on their own ALPN, in the same process.
//! 3. Signed, encrypted 1 KiB messages per second on one core (an `Inject` envelope signed and sealed
//!    with the channel keys; then opened, decoded and verified) against raw AES-256-GCM on 1 KiB plus one
//!    Ed25519 signature (or strict verification) per message.
//! 4. New connection set-up: an inject to a peer with no pooled connection (iroh connect, v3 handshake,
//!    then the request), against a raw iroh connect (and connect plus one 1 KiB echo) to a plain endpoint.
//!
//! Everything runs on 127.0.0.1 with relays and address lookups disabled. The receiving node's per-peer
//! limits are raised through `NodeConfig::limits` so that 500 requests a minute measure the node, not its
//! limiter (the production default allows 30 injects a minute). `WOPR_BENCH_REQUESTS` sets the measured
//! round trips (default 500) and `WOPR_BENCH_CONNECTS` the measured connections (default 100). Network
//! samples alternate between WOPR and the reference, so load from other work hits both alike; on a
//! shared machine the figures still swing from run to run. Run with `cargo bench -p wopr-p2p --bench p2p`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, Key, KeyInit, Nonce};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use iroh::endpoint::{Connection, VarInt, presets};
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use iroh::{Endpoint, EndpointAddr, RelayMode, TransportAddr};
use tokio::sync::mpsc;
use wopr_identity::{Identity, PublicId};
use wopr_p2p::{BoxFuture, Limit, Node, NodeConfig, PeerLimits, SessionBackend, create_invite};
use wopr_proto::handshake::{HandshakeMessage, HandshakeRandom, Initiator, Session, respond};
use wopr_proto::message::{Envelope, Inject, Message};
use wopr_proto::{Decode, Encode, frame};
use wopr_store::{Capability, Home};

const ECHO_ALPN: &[u8] = b"wopr-bench/echo";
const KIB: usize = 1024;
const SESSION: &str = "bench";
/// Rounds of each throughput figure; the median round is reported.
const ROUNDS: usize = 5;
/// Length of one throughput round.
const ROUND: Duration = Duration::from_millis(400);
const WARMUP: usize = 100;

fn main() {
    let requests = env_count("WOPR_BENCH_REQUESTS", 500);
    let connects = env_count("WOPR_BENCH_CONNECTS", 100);
    let (a, b) = (Identity::generate(), Identity::generate());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");

    println!("WOPR P2P benchmarks (release build, 127.0.0.1, relays disabled)");
    let crypto = HandshakeCrypto::new(&a, &b);
    let (v3, raw) = alternate(|| handshake(&a, &b), || crypto.run());
    println!("\n1. v3 handshakes, in memory");
    println!("   v3 start + respond + finish        {v3:>8.0} /s");
    println!("   raw 2 sign, 2 verify, 2 X25519 DH  {raw:>8.0} /s   ratio {:.2}", v3 / raw);

    let network = runtime.block_on(Network::start());
    runtime.block_on(network.round_trips(requests));
    messages(&a, &b);
    runtime.block_on(network.connections(connects));
    runtime.block_on(network.shutdown());
}

// ---- 1. handshakes ------------------------------------------------------------------------------

/// One complete handshake between `a` and `b`, through the wire encoding.
fn handshake(a: &Identity, b: &Identity) -> (Session, Session) {
    let now = wopr_store::now_ms();
    let (initiator, hello) = Initiator::start(a, b.public_id(), HandshakeRandom::generate(), now);
    let HandshakeMessage::Hello(hello) = through_wire(HandshakeMessage::Hello(hello)) else { unreachable!() };
    let (ack, responder) =
        respond(b, &a.public_id(), &hello, HandshakeRandom::generate(), now).expect("respond");
    let initiator = initiator.finish(&through_wire(HandshakeMessage::HelloAck(ack)), now).expect("finish");
    (initiator, responder)
}

fn through_wire(m: HandshakeMessage) -> HandshakeMessage {
    HandshakeMessage::from_bytes(&m.to_bytes()).expect("decode")
}

/// The public-key operations of one handshake, done directly with the crypto crates.
struct HandshakeCrypto {
    signers: [(SigningKey, [u8; 32]); 2],
    secrets: [x25519_dalek::StaticSecret; 2],
    publics: [x25519_dalek::PublicKey; 2],
}

impl HandshakeCrypto {
    fn new(a: &Identity, b: &Identity) -> Self {
        let signer = |id: &Identity| (SigningKey::from_bytes(&id.signing_seed()), *id.public_id().as_bytes());
        let secret = |n: u8| x25519_dalek::StaticSecret::from([n; 32]);
        let (ea, eb) = (secret(1), secret(2));
        let publics = [(&eb).into(), (&ea).into()];
        HandshakeCrypto { signers: [signer(a), signer(b)], secrets: [ea, eb], publics }
    }

    /// Each side signs once and verifies the other's signature (decoding its key, as it arrives as
    /// bytes), and each side runs one Diffie-Hellman.
    fn run(&self) {
        let msg = [7u8; 120]; // about the size of a Hello's signed bytes
        for (signer, public) in &self.signers {
            let sig = signer.sign(black_box(&msg));
            let key = VerifyingKey::from_bytes(black_box(public)).expect("key");
            key.verify_strict(&msg, &sig).expect("verify");
        }
        for (secret, public) in self.secrets.iter().zip(&self.publics) {
            black_box(secret.diffie_hellman(black_box(public)));
        }
    }
}

// ---- 3. messages --------------------------------------------------------------------------------

fn messages(a: &Identity, b: &Identity) {
    let (mut initiator, mut responder) = handshake(a, b);
    let (mut seal, _) = initiator.channel().expect("keys");
    let (_, mut open) = responder.channel().expect("keys");
    let (a_id, b_id) = (a.public_id(), b.public_id());
    // The envelope's plaintext (nonce, time, type, author, session, text, signature) is exactly 1 KiB.
    let overhead = inject_envelope(a, &b_id, String::new()).to_bytes().len();
    let text = "x".repeat(KIB - overhead);
    let envelope = |text: &str| inject_envelope(a, &b_id, text.to_string()).to_bytes();
    assert_eq!(envelope(&text).len(), KIB);

    let (mut send_rates, mut recv_rates, mut raw_send, mut raw_recv) = (vec![], vec![], vec![], vec![]);
    let raw = RawMessages::new(a);
    for _ in 0..ROUNDS {
        let (frames, secs) = timed_batch(|| seal.seal_frame(&envelope(&text)).expect("seal"));
        send_rates.push(frames.len() as f64 / secs);
        let start = Instant::now();
        for f in &frames {
            let plain = open.open(frame::decode_frame(f).expect("frame")).expect("open");
            Envelope::from_bytes(&plain).expect("decode").verify_from(&b_id, &a_id).expect("verify");
        }
        recv_rates.push(frames.len() as f64 / start.elapsed().as_secs_f64());
        let (sealed, secs) = timed_batch(|| raw.seal());
        raw_send.push(sealed.len() as f64 / secs);
        let start = Instant::now();
        sealed.iter().for_each(|m| raw.open(m));
        raw_recv.push(sealed.len() as f64 / start.elapsed().as_secs_f64());
    }
    let (s, r, rs, rr) = (median(send_rates), median(recv_rates), median(raw_send), median(raw_recv));
    println!("\n3. signed and encrypted 1 KiB messages, one core");
    println!(
        "   v3 sign + seal      {s:>8.0} /s   raw AES-256-GCM + sign    {rs:>8.0} /s   ratio {:.2}",
        s / rs
    );
    println!(
        "   v3 open + verify    {r:>8.0} /s   raw AES-256-GCM + verify  {rr:>8.0} /s   ratio {:.2}",
        r / rr
    );
    println!("   target >= 10000 /s: {}", met(s.min(r) >= 10_000.0));
}

/// An inject envelope as the client sends it: fresh nonce and time, signed by `author` for `recipient`.
fn inject_envelope(author: &Identity, recipient: &PublicId, text: String) -> Envelope {
    let nonce = wopr_identity::random_bytes();
    let mut env = Envelope::new(nonce, wopr_store::now_ms(), Message::Inject(Inject::new(SESSION, text, 0)));
    env.sign(author, recipient).expect("sign");
    env
}

/// The reference for messages: AES-256-GCM over 1 KiB with counter nonces, and an Ed25519 signature.
struct RawMessages {
    cipher: Aes256Gcm,
    signer: SigningKey,
    verifier: VerifyingKey,
    counter: std::cell::Cell<u64>,
}

/// A raw sealed message: its counter, ciphertext, tag, and the signature over the plaintext.
type RawSealed = (u64, Vec<u8>, [u8; 16], ed25519_dalek::Signature);

impl RawMessages {
    fn new(id: &Identity) -> Self {
        let signer = SigningKey::from_bytes(&id.signing_seed());
        let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from([3u8; 32]));
        RawMessages { cipher, verifier: signer.verifying_key(), signer, counter: Default::default() }
    }

    fn nonce(n: u64) -> Nonce<Aes256Gcm> {
        let mut bytes = [0u8; 12];
        bytes[4..].copy_from_slice(&n.to_be_bytes());
        Nonce::<Aes256Gcm>::from(bytes)
    }

    fn seal(&self) -> RawSealed {
        let n = self.counter.replace(self.counter.get() + 1);
        let mut buf = vec![0x5a; KIB];
        let signature = self.signer.sign(&buf);
        let tag = self.cipher.encrypt_inout_detached(&Self::nonce(n), b"aad", buf.as_mut_slice().into());
        (n, buf, tag.expect("seal").into(), signature)
    }

    fn open(&self, (n, ciphertext, tag, signature): &RawSealed) {
        let mut buf = ciphertext.clone();
        let nonce = Self::nonce(*n);
        self.cipher
            .decrypt_inout_detached(&nonce, b"aad", buf.as_mut_slice().into(), tag.into())
            .expect("open");
        self.verifier.verify_strict(&buf, signature).expect("verify");
    }
}

// ---- 2 and 4. the network -----------------------------------------------------------------------

/// Three nodes and the raw echo pair. Alice serves; Bob and Carol each claimed an inject invite from her.
struct Network {
    echo: RawEcho,
    alice: Peer,
    bob: Peer,
    carol: Peer,
    target: String,
}

impl Network {
    async fn start() -> Network {
        let echo = RawEcho::start().await;
        let alice = Peer::start(bench_limits()).await;
        let bob = Peer::start(PeerLimits::default()).await;
        let carol = Peer::start(PeerLimits::default()).await;
        for client in [&bob, &carol] {
            let token = create_invite(
                &alice.identity(),
                &client.node.id(),
                &[SESSION.to_string()],
                &[Capability::Inject],
                None,
                alice.node.addr_hints(),
            )
            .expect("invite");
            client.node.claim(&token).await.expect("claim");
        }
        let target = alice.node.id().to_hex();
        Network { echo, alice, bob, carol, target }
    }

    /// 2. Bob injects on his established connection; the echo runs on its established connection.
    async fn round_trips(&self, requests: usize) {
        let (mut v3, mut raw) = (Vec::new(), Vec::new());
        for i in 0..WARMUP + requests {
            let wopr = timed(self.bob.inject(&self.target)).await;
            let echo = timed(self.echo.round_trip(&self.echo.conn)).await;
            if i >= WARMUP {
                v3.push(wopr);
                raw.push(echo);
            }
        }
        let (v3, raw) = (Percentiles::of(v3), Percentiles::of(raw));
        println!("\n2. inject round trip without AI, established connection ({requests} requests)");
        println!("   v3 inject, one delta back   {v3}");
        println!("   raw iroh 1 KiB stream echo  {raw}");
        let ratio = v3.p50 / raw.p50;
        println!(
            "   ratio p50/p50 {ratio:.2} (p99/p99 {:.2})   target p50 < 0.5 ms: {}; within 3x of raw: {}",
            v3.p99 / raw.p99,
            met(v3.p50 < 0.5),
            met(ratio <= 3.0)
        );
    }

    /// 4. Carol drops her pooled connection before each inject, so each one connects and shakes hands.
    async fn connections(&self, connects: usize) {
        let alice = self.alice.node.id();
        let (mut v3, mut connect, mut connect_echo) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..10 + connects {
            self.carol.node.disconnect(&alice);
            let wopr = timed(self.carol.inject(&self.target)).await;
            let (conn, raw) = timed_value(self.echo.connect()).await;
            conn.close(VarInt::from_u32(0), b"done");
            let (conn, raw_echo) = timed_value(async {
                let conn = self.echo.connect().await;
                self.echo.round_trip(&conn).await;
                conn
            })
            .await;
            conn.close(VarInt::from_u32(0), b"done");
            if i >= 10 {
                v3.push(wopr);
                connect.push(raw);
                connect_echo.push(raw_echo);
            }
        }
        let (v3, connect) = (Percentiles::of(v3), Percentiles::of(connect));
        println!("\n4. new connection: connect + v3 handshake + first inject ({connects} connections)");
        println!("   v3 connect, handshake, inject   {v3}");
        println!("   raw iroh connect                {connect}");
        println!("   raw iroh connect + 1 KiB echo   {}", Percentiles::of(connect_echo));
        println!("   ratio p50/p50 {:.2}   target p50 < 5 ms: {}", v3.p50 / connect.p50, met(v3.p50 < 5.0));
    }

    async fn shutdown(self) {
        for peer in [self.alice, self.bob, self.carol] {
            peer.node.shutdown().await;
        }
        self.echo.router.shutdown().await.expect("router shutdown");
    }
}

/// Limits high enough that the benchmark's request rate never reaches them.
fn bench_limits() -> PeerLimits {
    let unlimited = Limit { per_minute: 1_000_000, per_hour: 10_000_000 };
    PeerLimits { requests: unlimited, injects: unlimited, logs: unlimited, ..PeerLimits::default() }
}

/// A node on loopback in a temporary home, answering every inject with one short delta.
struct Peer {
    node: Node,
    home: Home,
    _dir: tempfile::TempDir,
}

impl Peer {
    async fn start(limits: PeerLimits) -> Peer {
        let dir = tempfile::tempdir().expect("temp dir");
        let home = Home::at(dir.path().join("wopr"));
        let identity = home.init_identity(false).expect("identity");
        let config = NodeConfig { limits, ..NodeConfig::loopback() };
        let node = Node::start(identity, home.clone(), config, Arc::new(OneDelta)).await.expect("node");
        Peer { node, home, _dir: dir }
    }

    fn identity(&self) -> Identity {
        self.home.load_identity().expect("identity").expect("identity").identity
    }

    async fn inject(&self, peer: &str) {
        let mut answer = String::new();
        self.node.inject(peer, SESSION, "ping", |d| answer.push_str(d)).await.expect("inject");
        assert_eq!(answer, "pong");
    }
}

#[derive(Debug)]
struct OneDelta;

impl SessionBackend for OneDelta {
    fn inject<'a>(
        &'a self,
        _: PublicId,
        _: &'a str,
        _: &'a str,
        _: u8,
        deltas: mpsc::Sender<String>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { deltas.send("pong".into()).await.map_err(|e| e.to_string()) })
    }

    fn log<'a>(&'a self, _: PublicId, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// The reference: two plain iroh endpoints, one echoing whatever arrives on each stream.
struct RawEcho {
    client: Endpoint,
    server: EndpointAddr,
    conn: Connection,
    router: Router,
}

impl RawEcho {
    async fn start() -> RawEcho {
        let router = Router::builder(loopback_endpoint().await).accept(ECHO_ALPN, Echo).spawn();
        let socket = router.endpoint().bound_sockets()[0];
        let server = EndpointAddr::from_parts(router.endpoint().id(), [TransportAddr::Ip(socket)]);
        let client = loopback_endpoint().await;
        let conn = client.connect(server.clone(), ECHO_ALPN).await.expect("connect");
        RawEcho { client, server, conn, router }
    }

    async fn connect(&self) -> Connection {
        self.client.connect(self.server.clone(), ECHO_ALPN).await.expect("connect")
    }

    /// 1 KiB out and back on a new bidirectional stream, as WOPR opens one per request.
    async fn round_trip(&self, conn: &Connection) {
        let (mut send, mut recv) = conn.open_bi().await.expect("stream");
        send.write_all(&[0x5a; KIB]).await.expect("write");
        send.finish().expect("finish");
        let back = recv.read_to_end(2 * KIB).await.expect("read");
        assert_eq!(back.len(), KIB);
    }
}

async fn loopback_endpoint() -> Endpoint {
    Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Disabled)
        .clear_address_lookup()
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")
        .expect("bind address")
        .bind()
        .await
        .expect("endpoint")
}

#[derive(Debug, Clone)]
struct Echo;

impl ProtocolHandler for Echo {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            tokio::spawn(async move {
                if let Ok(data) = recv.read_to_end(2 * KIB).await {
                    let _ = send.write_all(&data).await;
                    let _ = send.finish();
                }
            });
        }
        Ok(())
    }
}

// ---- measuring ----------------------------------------------------------------------------------

/// Runs `subject` and `reference` in alternating rounds of [`ROUND`]; returns their median rates per second.
fn alternate<A, B>(mut subject: impl FnMut() -> A, mut reference: impl FnMut() -> B) -> (f64, f64) {
    let (mut s, mut r) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (done, secs) = timed_batch(|| black_box(subject()));
        s.push(done.len() as f64 / secs);
        let (done, secs) = timed_batch(|| black_box(reference()));
        r.push(done.len() as f64 / secs);
    }
    (median(s), median(r))
}

/// Calls `f` for one [`ROUND`]; returns the results and the seconds taken.
fn timed_batch<T>(mut f: impl FnMut() -> T) -> (Vec<T>, f64) {
    let mut out = Vec::new();
    let start = Instant::now();
    while start.elapsed() < ROUND {
        for _ in 0..16 {
            out.push(f());
        }
    }
    (out, start.elapsed().as_secs_f64())
}

async fn timed(f: impl Future<Output = ()>) -> f64 {
    timed_value(f).await.1
}

/// The value of `f` and how long it took, in milliseconds.
async fn timed_value<T>(f: impl Future<Output = T>) -> (T, f64) {
    let start = Instant::now();
    let value = f.await;
    (value, start.elapsed().as_secs_f64() * 1000.0)
}

/// Percentiles of round trips, in milliseconds.
struct Percentiles {
    p50: f64,
    p99: f64,
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "p50 {:>6.3} ms   p99 {:>6.3} ms", self.p50, self.p99)
    }
}

impl Percentiles {
    /// Nearest-rank percentiles of `samples`.
    fn of(mut samples: Vec<f64>) -> Percentiles {
        samples.sort_by(f64::total_cmp);
        let rank = |p: f64| samples[((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
        Percentiles { p50: rank(0.50), p99: rank(0.99) }
    }
}

fn median(v: Vec<f64>) -> f64 {
    Percentiles::of(v).p50
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(default)
}
