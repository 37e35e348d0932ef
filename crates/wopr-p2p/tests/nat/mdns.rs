//! LAN discovery by mDNS: nodes on one bridged LAN (network namespaces; multicast does not work on
//! loopback) find each other's ids with no address given, relays off, and reach each other by id alone.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use wopr_identity::PublicId;
use wopr_p2p::{NodeConfig, PeerPath, RelayChoice, create_invite};
use wopr_store::{Capability, Home};

use crate::common::TestNode;
use crate::netns::{LanSegment, NsThread, require_root_and_tools};
use crate::poll;

/// How long mDNS may take to find a peer (announcements every ~0.7 s; generous for a loaded CI).
const FIND: Duration = Duration::from_secs(30);
/// How long a claim without any address is given to (wrongly) get through.
const NO_ADDRESS: Duration = Duration::from_secs(5);

/// A node on its own thread inside host `i` of the LAN.
struct LanHost {
    node: Arc<TestNode>,
    ns: NsThread,
}

impl LanHost {
    async fn start(lan: &LanSegment, i: usize, mdns: bool) -> LanHost {
        let ns = NsThread::start(lan.host(i));
        let config = NodeConfig {
            relay: RelayChoice::Disabled,
            bind: Some(SocketAddr::from(([0, 0, 0, 0], 0))),
            mdns,
            ..NodeConfig::loopback()
        };
        let node = ns
            .run(async move {
                let dir = tempfile::tempdir().unwrap();
                let home = Home::at(dir.path().join("wopr"));
                let identity = home.init_identity(false).unwrap();
                TestNode::start_with(dir, home, identity, config).await
            })
            .await;
        LanHost { node: Arc::new(node), ns }
    }

    fn lan_peers(&self) -> BTreeSet<PublicId> {
        self.node.node.lan_peers().borrow().clone()
    }

    /// Claims `token` from inside the namespace, at most `limit`.
    async fn claim(&self, token: String, limit: Duration) -> Result<Result<PublicId, String>, ()> {
        let node = self.node.clone();
        self.ns
            .run(async move {
                tokio::time::timeout(limit, node.node.claim(&token))
                    .await
                    .map(|r| r.map(|p| p.public_key).map_err(|e| e.to_string()))
                    .map_err(|_| ())
            })
            .await
    }

    async fn shutdown(self) {
        let LanHost { node, ns } = self;
        let node = Arc::into_inner(node).expect("no request still holds the node");
        ns.run(async move { node.node.shutdown().await }).await;
    }
}

/// An invite from `issuer` to `subject` with no address hints at all: only a lookup can find the issuer.
fn addressless_invite(issuer: &LanHost, subject: &LanHost) -> String {
    let sessions = ["dev".to_string()];
    create_invite(&issuer.node.identity(), &subject.node.id(), &sessions, &[Capability::Inject], None, vec![])
        .unwrap()
}

#[tokio::test]
async fn on_a_bridged_lan_mdns_finds_peers_by_id_and_a_claim_needs_no_address() {
    require_root_and_tools();
    let lan = LanSegment::build(3);
    let a = LanHost::start(&lan, 0, true).await;
    let b = LanHost::start(&lan, 1, true).await;
    // C has mDNS off: it neither advertises nor looks up.
    let c = LanHost::start(&lan, 2, false).await;
    let (a_id, b_id, c_id) = (a.node.id(), b.node.id(), c.node.id());

    let met =
        poll(FIND, || (a.lan_peers().contains(&b_id) && b.lan_peers().contains(&a_id)).then_some(())).await;
    assert!(
        met.is_some(),
        "A and B never saw each other by mDNS within {FIND:?}: A saw {:?}, B saw {:?}",
        a.lan_peers(),
        b.lan_peers()
    );
    assert!(c.lan_peers().is_empty(), "a node with mDNS off lists LAN peers");
    assert!(c.node.node.lan_peers().has_changed().is_err(), "the LAN channel of a node without mDNS is open");

    // A reaches B by id alone: the invite names no address, relays are off, A has no record of B.
    let token = addressless_invite(&b, &a);
    let issuer = a.claim(token, FIND).await.expect("the claim finishes").expect("A claims B's invite by id");
    assert_eq!(issuer, b_id);
    let b_ip = IpAddr::from(LanSegment::ip(1));
    let path = a.node.node.path_to(&b_id);
    assert!(matches!(path, Some(PeerPath::Direct(addr)) if addr.ip() == b_ip), "A→B path: {path:?}");

    // C, without mDNS, cannot find B from its id: the lookup, not luck, is what found it.
    let token = addressless_invite(&b, &c);
    let refused = c.claim(token, NO_ADDRESS).await;
    assert!(!matches!(refused, Ok(Ok(_))), "C found B with mDNS off and no address: {refused:?}");
    // And C never advertised: neither A nor B lists it.
    assert!(!a.lan_peers().contains(&c_id) && !b.lan_peers().contains(&c_id), "C was seen on the LAN");

    a.shutdown().await;
    b.shutdown().await;
    c.shutdown().await;
    drop(lan);
}
