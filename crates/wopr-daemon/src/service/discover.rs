//! Discovery and the friend protocol: topics, profiles, connect-requests, friends and their rules.
//!
//! The answers are free functions of a node (or of the home, for what only reads or writes
//! `friends.json` and `config.json`), so the CLI runs the same code on a node of its own when no daemon
//! runs; the core's methods run them on the daemon's node.

use serde_json::Value;
use wopr_p2p::discovery::settings::content_text;
use wopr_p2p::discovery::{DiscoverStatus, PeerView, PendingView, TopicStatus};
use wopr_p2p::{FriendOutcome, Node};
use wopr_store::{Config, ConfigKey, Friend, Home, Source};

use super::error::Kind;
use super::types::{
    ConnectReply, ConnectRequest, Decided, FriendAcceptReply, FriendList, PeersQuery, ProfileSet, RuleChange,
    SuggestedProfile, TopicChange,
};
use super::{ApiError, ApiResult, Core};

/// What the owner's AI is asked when it writes the profile (`discover profile generate`).
pub const PROFILE_PROMPT: &str = "Write this agent's public discovery profile: one JSON object, under 2,000 \
bytes, saying what it offers and looks for, for example {\"name\": \"...\", \"skills\": [\"...\"]}. \
Everyone in the topic sees it, so include no secrets, keys or private details. Answer with the JSON object only.";

/// The JSON object in an AI's answer to [`PROFILE_PROMPT`] (models wrap it in prose or code fences). An
/// answer without one is the provider's failure (HTTP 502), not the caller's.
pub fn profile_from_answer(text: &str) -> ApiResult<Value> {
    let object = text.find('{').zip(text.rfind('}')).and_then(|(a, b)| (a < b).then(|| &text[a..=b]));
    object.and_then(|o| serde_json::from_str::<Value>(o).ok()).filter(Value::is_object).ok_or_else(|| {
        let excerpt: String = text.chars().take(200).collect();
        ApiError::failure(format!(
            "the AI's answer is not a JSON object ({excerpt:?}); try again, or set it yourself with `wopr discover profile set '<json>'`"
        ))
        .of_kind(Kind::Upstream)
    })
}

/// Joins `topic`.
pub async fn join(node: &Node, topic: &str) -> ApiResult<TopicChange> {
    let changed = node.join(topic).await?;
    Ok(TopicChange { topic: topic.to_string(), changed })
}

/// Leaves `topic`, withdrawing the profile there.
pub async fn leave(node: &Node, topic: &str) -> ApiResult<TopicChange> {
    if node.leave(topic).await? {
        return Ok(TopicChange { topic: topic.to_string(), changed: true });
    }
    Err(ApiError::invalid(format!("not in topic {topic:?} (see `wopr discover topics`)"))
        .of_kind(Kind::NotFound))
}

/// The peers seen now, filtered as `q` asks (`only`: keys or short ids, comma-separated).
pub fn peers(node: &Node, q: &PeersQuery) -> Vec<PeerView> {
    let mut peers = node.discovered(q.topic.as_deref(), q.all);
    let only: Vec<&str> =
        q.only.iter().flat_map(|o| o.split(',')).map(str::trim).filter(|k| !k.is_empty()).collect();
    if !only.is_empty() {
        peers.retain(|p| only.iter().any(|k| p.id == *k || p.public_key == *k));
    }
    peers
}

/// Stores `content` as `discover.profile` (refusing what does not fit one announce) and has `node`,
/// if one runs, announce it in every topic.
pub fn set_profile(home: &Home, node: Option<&Node>, content: &Value) -> ApiResult<ProfileSet> {
    let text = content_text(content)?;
    Config::of(home).set(&ConfigKey::parse("discover.profile")?, content.clone())?;
    if let Some(node) = node {
        node.reload_discovery()?;
    }
    Ok(ProfileSet { bytes: text.len(), announced: node.is_some() })
}

/// Asks a peer seen in a topic for mutual trust.
pub async fn connect(node: &Node, req: &ConnectRequest) -> ApiResult<ConnectReply> {
    let c = node.connect(&req.peer, req.session.as_deref(), &req.message).await?;
    Ok(ConnectReply { accepted: true, peer: c.peer, reason: c.reason })
}

/// Accepts or declines a waiting connect-request.
pub fn decide(node: &Node, peer: &str, accept: bool) -> ApiResult<Decided> {
    let key = node.decide_connect(peer, accept).map_err(|e| ApiError::from(e).of_kind(Kind::NotFound))?;
    Ok(Decided { peer: key.to_hex(), accepted: accept })
}

/// Sends a friend request.
pub async fn friend_request(node: &Node, target: &str) -> ApiResult<FriendOutcome> {
    Ok(node.friend_request(target).await?)
}

/// Accepts a waiting request (by name or id) or a pasted `FRIEND_REQUEST` line, or takes a pasted
/// `FRIEND_ACCEPT` line.
pub async fn friend_accept(node: &Node, query: &str) -> ApiResult<FriendAcceptReply> {
    if query.trim_start().starts_with("FRIEND_ACCEPT") {
        let friend = node.friend_take_accept_line(query).await?;
        return Ok(FriendAcceptReply {
            friend,
            line: None,
            delivered: true,
            via_topic: None,
            undelivered_reason: None,
        });
    }
    let a = node.friend_accept(query).await?;
    let (delivered, via_topic, undelivered_reason) = match a.delivered {
        Ok(topic) => (true, topic, None),
        Err(why) => (false, None, Some(why)),
    };
    Ok(FriendAcceptReply { friend: a.friend, line: Some(a.line), delivered, via_topic, undelivered_reason })
}

/// Ends a friendship and revokes the friend's grant.
pub fn friend_remove(node: &Node, query: &str) -> ApiResult<Friend> {
    Ok(node.friend_remove(query)?)
}

/// Friends, requests waiting either way, and the auto-accept rules.
pub fn friend_list(home: &Home) -> ApiResult<FriendList> {
    let doc = home.friends().load()?;
    Ok(FriendList {
        friends: doc.friends,
        incoming: doc.incoming,
        outgoing: doc.outgoing,
        auto_accept: doc.auto_accept.patterns().to_vec(),
    })
}

/// Adds an auto-accept rule.
pub fn add_rule(home: &Home, pattern: &str) -> ApiResult<RuleChange> {
    let (rule, changed) = home.friends().add_rule(pattern)?;
    Ok(RuleChange { rule, changed })
}

/// Removes an auto-accept rule.
pub fn remove_rule(home: &Home, pattern: &str) -> ApiResult<RuleChange> {
    let rule = home.friends().remove_rule(pattern)?;
    Ok(RuleChange { rule, changed: true })
}

impl Core {
    /// [`join`] on the daemon's node.
    pub async fn discover_join(&self, topic: &str) -> ApiResult<TopicChange> {
        join(&*self.node().await?, topic).await
    }

    /// [`leave`] on the daemon's node.
    pub async fn discover_leave(&self, topic: &str) -> ApiResult<TopicChange> {
        leave(&*self.node().await?, topic).await
    }

    /// The joined topics.
    pub async fn discover_topics(&self) -> ApiResult<Vec<TopicStatus>> {
        Ok(self.node().await?.topics())
    }

    /// [`peers`] on the daemon's node.
    pub async fn discover_peers(&self, q: &PeersQuery) -> ApiResult<Vec<PeerView>> {
        Ok(peers(&*self.node().await?, q))
    }

    /// This node's profile, as announced (in `topic`, if given).
    pub async fn discover_profile(&self, topic: Option<&str>) -> ApiResult<PeerView> {
        Ok(self.node().await?.profile(topic)?)
    }

    /// [`set_profile`], announced by the daemon's node.
    pub async fn discover_set_profile(&self, content: &Value) -> ApiResult<ProfileSet> {
        if !content.is_object() {
            return Err(ApiError::invalid(
                "the profile content must be a JSON object, such as {\"name\": \"Alice\"}",
            ));
        }
        set_profile(&self.home, Some(&*self.node().await?), content)
    }

    /// Asks `session`'s AI for profile content, as an owner's turn in that session; nothing is
    /// published.
    pub async fn discover_generate(&self, session: &str) -> ApiResult<SuggestedProfile> {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let done = self.inject(session, PROFILE_PROMPT, Source::Owner, &tx).await?;
        Ok(SuggestedProfile { content: profile_from_answer(&done.text)? })
    }

    /// [`connect`] from the daemon's node.
    pub async fn discover_connect(&self, req: &ConnectRequest) -> ApiResult<ConnectReply> {
        connect(&*self.node().await?, req).await
    }

    /// Topics, bootstrap sources, the layers' settings.
    pub async fn discover_status(&self) -> ApiResult<DiscoverStatus> {
        Ok(self.node().await?.discover_status())
    }

    /// Connect-requests waiting for the owner.
    pub async fn connect_requests(&self) -> ApiResult<Vec<PendingView>> {
        Ok(self.node().await?.connect_requests())
    }

    /// [`decide`] on the daemon's node.
    pub async fn decide_connect(&self, peer: &str, accept: bool) -> ApiResult<Decided> {
        decide(&*self.node().await?, peer, accept)
    }

    /// [`friend_request`] from the daemon's node.
    pub async fn friend_request(&self, target: &str) -> ApiResult<FriendOutcome> {
        friend_request(&*self.node().await?, target).await
    }

    /// [`friend_accept`] on the daemon's node.
    pub async fn friend_accept(&self, query: &str) -> ApiResult<FriendAcceptReply> {
        friend_accept(&*self.node().await?, query).await
    }

    /// [`friend_remove`] on the daemon's node.
    pub async fn friend_remove(&self, query: &str) -> ApiResult<Friend> {
        friend_remove(&*self.node().await?, query)
    }

    /// [`friend_list`].
    pub fn friends(&self) -> ApiResult<FriendList> {
        friend_list(&self.home)
    }
}
