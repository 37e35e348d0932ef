//! The A2A door (Agent2Agent 1.0, JSON-RPC binding): a signed agent card at
//! `/.well-known/agent-card.json` whose skills are the sessions, and `POST /a2a` answering
//! `SendMessage` and `SendStreamingMessage` (and their 0.3 names `message/send`, `message/stream`).
//! A call names its session in the message's (or the request's) `metadata.session`; with one session
//! that one is used. The caller holds the daemon's token, so its turns are the owner's, under the same
//! rules as the CLI's.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Http;
use super::extract::Body;
use super::sessions::{interrupted, spawn_owner_inject};
use crate::service::types::{InjectEvent, Problem};
use crate::service::{ApiError, Core};

/// The card's JSON-RPC endpoint.
pub const A2A_PATH: &str = "/a2a";

/// The card without its signature, as the signer canonicalizes it: only fields that hold something
/// (the A2A SDK drops empty strings, lists and objects before checking), keys sorted.
fn unsigned_card(core: &Core, identity: &wopr_identity::Identity) -> Result<Value, ApiError> {
    let id = crate::service::identity_view(identity);
    let base = core.api_address().unwrap_or("http://127.0.0.1:7437").to_string();
    let skills: Vec<Value> = core
        .sessions()?
        .into_iter()
        .map(|s| {
            json!({
                "id": s.name, "name": s.name,
                "description": format!("The WOPR session {}: one conversation with its own context and history.", s.name),
                "tags": ["wopr-session"],
            })
        })
        .collect();
    let mut card = json!({
        "name": format!("WOPR {}", id.short_id),
        "description": format!("The sessions of the WOPR installation {}, each an AI conversation with persistent context.", id.public_key),
        "supportedInterfaces": [{"url": format!("{base}{A2A_PATH}"), "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
        "version": env!("CARGO_PKG_VERSION"),
        "capabilities": {"streaming": true},
        "securitySchemes": {"bearer": {"httpAuthSecurityScheme": {
            "scheme": "Bearer",
            "description": "The token in $WOPR_HOME/daemon-token (`wopr daemon token`)",
        }}},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
    });
    if !skills.is_empty() {
        card["skills"] = Value::Array(skills);
    }
    Ok(card)
}

/// RFC 8785 canonical JSON for what the card holds (strings, booleans, arrays, objects): keys sorted,
/// no whitespace. serde_json's maps are sorted, and it escapes strings as RFC 8785 does.
fn canonical(v: &Value) -> String {
    v.to_string()
}

/// The agent card, signed with the identity key (a detached JWS, `alg: EdDSA`, `kid` the WOPR id).
pub fn signed_card(core: &Core) -> Result<Value, ApiError> {
    // One read of the identity: the card describes the key that signs it, even mid-rotation.
    let identity = core
        .home()
        .load_identity()?
        .ok_or_else(|| ApiError::failure("no identity yet: run `wopr id init`"))?
        .identity;
    let mut card = unsigned_card(core, &identity)?;
    let header = json!({"alg": "EdDSA", "kid": identity.public_id().to_hex(), "typ": "JOSE"});
    let protected = URL_SAFE_NO_PAD.encode(canonical(&header));
    let payload = URL_SAFE_NO_PAD.encode(canonical(&card));
    let signature = identity
        .sign_jws(&protected, &payload)
        .ok_or_else(|| ApiError::failure("could not sign the agent card"))?;
    card["signatures"] = json!([{"protected": protected, "signature": URL_SAFE_NO_PAD.encode(signature)}]);
    Ok(card)
}

/// The A2A agent card.
#[utoipa::path(get, path = "/.well-known/agent-card.json", tag = "a2a",
    responses((status = 200, description = "An A2A 1.0 AgentCard, signed", body = Object), (status = 401, body = Problem)))]
pub async fn card(State(http): State<Http>) -> Response {
    match signed_card(&http.core) {
        Ok(c) => Json(c).into_response(),
        Err(e) => super::problem::HttpError(e).into_response(),
    }
}

fn rpc_error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn rpc_result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// Which protocol shapes a call wants: 1.0 (`SendMessage`) or 0.3 (`message/send`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    V1,
    V03,
}

struct Call {
    session: String,
    text: String,
    context_id: String,
    shape: Shape,
}

fn random_id() -> String {
    crate::token::random_secret()[..32].to_string()
}

/// Reads a `SendMessage` call: the text parts of its message, and the session it is for.
fn read_call(core: &Core, params: &Value, shape: Shape) -> Result<Call, String> {
    let message = params.get("message").filter(|m| m.is_object()).ok_or("params.message is missing")?;
    let parts = message.get("parts").and_then(Value::as_array).ok_or("message.parts is missing")?;
    let text: Vec<&str> = parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect();
    if text.is_empty() {
        return Err("the message has no text part (this agent reads text only)".into());
    }
    let named = |v: &Value| {
        v.get("metadata").and_then(|m| m.get("session")).and_then(Value::as_str).map(str::to_string)
    };
    let sessions = core.sessions().map_err(|e| e.message)?;
    let session = match named(message).or_else(|| named(params)) {
        Some(s) => s,
        None if sessions.len() == 1 => sessions[0].name.clone(),
        None => {
            let names: Vec<_> = sessions.iter().map(|s| s.name.as_str()).collect();
            return Err(format!("name the session in metadata.session (one of: {})", names.join(", ")));
        }
    };
    if !sessions.iter().any(|s| s.name == session) {
        return Err(format!("no session named {session:?}"));
    }
    let context_id =
        message.get("contextId").and_then(Value::as_str).map(str::to_string).unwrap_or_else(random_id);
    Ok(Call { session, text: text.join("\n"), context_id, shape })
}

fn agent_message(call: &Call, text: &str) -> Value {
    match call.shape {
        Shape::V1 => {
            json!({"messageId": random_id(), "contextId": call.context_id, "role": "ROLE_AGENT", "parts": [{"text": text}]})
        }
        Shape::V03 => {
            json!({"kind": "message", "messageId": random_id(), "contextId": call.context_id, "role": "agent", "parts": [{"kind": "text", "text": text}]})
        }
    }
}

/// One JSON-RPC call on the A2A binding.
#[utoipa::path(post, path = "/a2a", tag = "a2a", request_body = Object,
    responses((status = 200, description = "A JSON-RPC response; for `SendStreamingMessage` a `text/event-stream` of them", body = Object),
        (status = 401, body = Problem)))]
pub async fn rpc(State(http): State<Http>, Body(req): Body<Value>) -> Response {
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    if !req.is_object() {
        let status = axum::http::StatusCode::BAD_REQUEST;
        return super::problem::problem(status, "not JSON-RPC", "a JSON-RPC request is a JSON object");
    }
    if req.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Json(rpc_error(&id, -32600, "not a JSON-RPC 2.0 request")).into_response();
    }
    let method = req.get("method").and_then(Value::as_str).unwrap_or("");
    let (stream, shape) = match method {
        "SendMessage" => (false, Shape::V1),
        "SendStreamingMessage" => (true, Shape::V1),
        "message/send" => (false, Shape::V03),
        "message/stream" => (true, Shape::V03),
        other => {
            return Json(rpc_error(&id, -32601, &format!("method {other:?} is not offered here")))
                .into_response();
        }
    };
    let params = req.get("params").cloned().unwrap_or(Value::Null);
    let call = match read_call(&http.core, &params, shape) {
        Ok(c) => c,
        Err(why) => return Json(rpc_error(&id, -32602, &why)).into_response(),
    };
    let (mut rx, done_rx) = spawn_owner_inject(&http.core, call.session.clone(), call.text.clone());
    if !stream {
        drop(rx);
        return match done_rx.await {
            Ok(Ok(done)) => {
                let message = agent_message(&call, &done.text);
                let result = match shape {
                    Shape::V1 => json!({"message": message}),
                    Shape::V03 => message,
                };
                Json(rpc_result(&id, result)).into_response()
            }
            Ok(Err(e)) => Json(rpc_error(&id, -32603, &e.message)).into_response(),
            Err(_) => Json(rpc_error(&id, -32603, &interrupted().message)).into_response(),
        };
    }
    let task_id = random_id();
    let (out_tx, out_rx) = mpsc::unbounded_channel::<Event>();
    tokio::spawn(async move {
        let send = |v: Value| {
            let _ = out_tx.send(Event::default().data(rpc_result(&id, v).to_string()));
        };
        let status = |state: &str, message: Option<Value>| {
            let mut s = BTreeMap::new();
            s.insert("state", json!(state));
            if let Some(m) = message {
                s.insert("message", m);
            }
            s
        };
        let ctx = call.context_id.clone();
        match call.shape {
            Shape::V1 => send(
                json!({"task": {"id": task_id, "contextId": ctx, "status": status("TASK_STATE_WORKING", None)}}),
            ),
            Shape::V03 => {
                send(json!({"kind": "task", "id": task_id, "contextId": ctx, "status": {"state": "working"}}))
            }
        }
        let mut first = true;
        while let Some(ev) = rx.recv().await {
            let InjectEvent::Delta { text } = ev else { continue };
            let update = match call.shape {
                Shape::V1 => json!({"artifactUpdate": {"taskId": task_id, "contextId": ctx, "append": !first,
                    "artifact": {"artifactId": "answer", "parts": [{"text": text}]}}}),
                Shape::V03 => {
                    json!({"kind": "artifact-update", "taskId": task_id, "contextId": ctx, "append": !first,
                    "artifact": {"artifactId": "answer", "parts": [{"kind": "text", "text": text}]}})
                }
            };
            first = false;
            send(update);
        }
        let (state, message) = match done_rx.await {
            Ok(Ok(done)) => ("COMPLETED", agent_message(&call, &done.text)),
            Ok(Err(e)) => ("FAILED", agent_message(&call, &e.message)),
            Err(_) => ("FAILED", agent_message(&call, &interrupted().message)),
        };
        match call.shape {
            Shape::V1 => send(json!({"statusUpdate": {"taskId": task_id, "contextId": ctx,
                "status": status(&format!("TASK_STATE_{state}"), Some(message))}})),
            Shape::V03 => {
                send(json!({"kind": "status-update", "taskId": task_id, "contextId": ctx, "final": true,
                "status": {"state": state.to_lowercase(), "message": message}}))
            }
        }
    });
    let events = futures::stream::unfold(out_rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok::<_, std::convert::Infallible>(e), rx))
    });
    Sse::new(events).into_response()
}
