//! Announce and lookup times on a local mainline testnet (10 nodes on 127.0.0.1), as ratios to one raw
//! BEP44 GET and one raw PUT of a 1,000-byte item measured in the same run on the same testnet. A DHT
//! query ends when every queried node answered or timed out, so the raw figures are the yardstick:
//! `cargo bench -p wopr-rendezvous`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mainline::{Dht, MutableItem, SigningKey, Testnet};
use wopr_identity::Identity;
use wopr_rendezvous::Rendezvous;

const ROUNDS: usize = 5;
const MEMBERS: usize = 5;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = f.await;
    (out, start.elapsed())
}

fn main() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let net =
        tokio::task::spawn_blocking(|| Testnet::builder(10).build().expect("testnet")).await.expect("task");
    let bootstrap = net.bootstrap.clone();
    let raw = tokio::task::spawn_blocking(move || Dht::builder().bootstrap(&bootstrap).build().expect("dht"))
        .await
        .expect("task")
        .as_async();
    assert!(raw.bootstrapped().await);
    let mut nodes = Vec::new();
    for _ in 0..MEMBERS + 1 {
        nodes.push(Rendezvous::start(Some(net.bootstrap.clone())).await.expect("rendezvous node"));
    }
    let (joiner, members) = nodes.split_last().expect("nodes");
    let ids: Vec<Identity> = (0..MEMBERS).map(|_| Identity::generate()).collect();
    let hints = vec!["127.0.0.1:4433".to_string(), "https://relay.example/".to_string()];

    let (mut raw_get, mut raw_put, mut announce, mut lookup) = (vec![], vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        // Reference: a fresh key each round, so the PUT needs its own GET for tokens as an announce does.
        let signer = SigningKey::from_bytes(&[round as u8 + 1; 32]);
        let item = MutableItem::new(signer.clone(), &[0x42; 1000], 1, None);
        let (_, t) = timed(raw.get_mutable_most_recent(&signer.verifying_key().to_bytes(), None)).await;
        raw_get.push(t);
        let (res, t) = timed(raw.put_mutable(item, None)).await;
        res.expect("raw put");
        raw_put.push(t);

        for (node, id) in members.iter().zip(&ids) {
            let (res, t) = timed(node.announce("bench", id, &hints)).await;
            res.expect("announce");
            announce.push(t);
        }
        let (found, t) = timed(joiner.lookup("bench", now_ms())).await;
        assert_eq!(found.expect("lookup").len(), MEMBERS);
        lookup.push(t);
    }

    let (get, put) = (median(raw_get), median(raw_put));
    let (ann, look) = (median(announce), median(lookup));
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!("testnet of 10 nodes, {ROUNDS} rounds, {MEMBERS} members (medians)");
    println!("raw BEP44 get (reference)      {get:>10.3?}");
    println!("raw BEP44 put, tokens cached   {put:>10.3?}");
    println!("announce (read, put, confirm)  {ann:>10.3?}  = {:.2} x raw get", ratio(ann, get));
    println!("lookup (2 slots x 4 buckets)   {look:>10.3?}  = {:.2} x raw get", ratio(look, get));
}
