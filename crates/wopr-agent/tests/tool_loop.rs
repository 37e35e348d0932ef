//! The multi-step turn: tool calls run, their results go back to the model, and everything is stored.

use std::sync::Mutex;

use serde_json::json;
use wopr_agent::policy::{ToolChoice, TurnTrust};
use wopr_agent::{BoxFuture, MAX_STEPS, ToolOutput, ToolRefused, Toolbox, TurnError, TurnEvent, run_turn};
use wopr_providers::{
    ChatMessage, ChatRequest, EventStream, Provider, StopReason, StreamEvent, ToolCall, ToolSpec, Usage,
};
use wopr_sandbox::Trust;
use wopr_store::{Home, MessageStatus, Role, SessionName, Source};

/// A provider that answers each call with the next scripted list of events and keeps the requests.
struct Scripted {
    answers: Mutex<Vec<Vec<StreamEvent>>>,
    requests: Mutex<Vec<ChatRequest>>,
}

impl Scripted {
    fn new(answers: Vec<Vec<StreamEvent>>) -> Self {
        Scripted { answers: Mutex::new(answers), requests: Mutex::default() }
    }
}

impl Provider for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }
    fn model(&self) -> &str {
        "script"
    }
    fn stream(&self, request: ChatRequest) -> EventStream {
        self.requests.lock().unwrap().push(request);
        let mut answers = self.answers.lock().unwrap();
        let next = if answers.is_empty() { text_answer("out of script") } else { answers.remove(0) };
        Box::pin(futures::stream::iter(next.into_iter().map(Ok)))
    }
}

fn text_answer(text: &str) -> Vec<StreamEvent> {
    vec![
        StreamEvent::TextDelta { text: text.into() },
        StreamEvent::Usage { usage: Usage { input_tokens: 10, output_tokens: 2 } },
        StreamEvent::Done { stop_reason: StopReason::EndTurn },
    ]
}

fn tool_answer(id: &str, name: &str, arguments: serde_json::Value) -> Vec<StreamEvent> {
    vec![
        StreamEvent::TextDelta { text: "Let me look. ".into() },
        StreamEvent::ToolCall { call: ToolCall { id: id.into(), name: name.into(), arguments } },
        StreamEvent::Usage { usage: Usage { input_tokens: 5, output_tokens: 1 } },
        StreamEvent::Done { stop_reason: StopReason::ToolUse },
    ]
}

/// One tool, `read_file`, answering from a fixed table; or refusing everything. Remembers the trust of
/// each turn it was chosen for.
#[derive(Default)]
struct Files {
    refuse: bool,
    calls: Mutex<Vec<ToolCall>>,
    chosen_for: Mutex<Vec<TurnTrust>>,
}

impl ToolChoice for Files {
    fn tools_for(&self, trust: &TurnTrust) -> Box<dyn Toolbox + '_> {
        self.chosen_for.lock().unwrap().push(trust.clone());
        Box::new(self)
    }
}

impl Toolbox for Files {
    fn specs(&self) -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: "read_file".into(),
            description: "Reads a file.".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        }]
    }
    fn run<'a>(&'a self, call: &'a ToolCall) -> BoxFuture<'a, Result<ToolOutput, ToolRefused>> {
        Box::pin(async move {
            self.calls.lock().unwrap().push(call.clone());
            if self.refuse {
                return Err(ToolRefused("no sandbox backend works on this host".into()));
            }
            Ok(match call.arguments["path"].as_str() {
                Some("notes.txt") => ToolOutput::ok("buy milk"),
                other => ToolOutput::error(format!("no such file: {other:?}")),
            })
        })
    }
}

fn home_with_session() -> (tempfile::TempDir, Home, SessionName) {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path().join("wopr"));
    let name = SessionName::new("dev").unwrap();
    home.sessions().create(&name, "Be terse.", None, None).unwrap();
    (dir, home, name)
}

#[tokio::test]
async fn a_tool_result_goes_back_to_the_model_and_the_whole_turn_is_stored() {
    let (_dir, home, name) = home_with_session();
    let provider = Scripted::new(vec![
        tool_answer("call_1", "read_file", json!({"path": "notes.txt"})),
        text_answer("You need milk."),
    ]);
    let tools = Files::default();
    let mut events = Vec::new();
    let outcome =
        run_turn(&home, &name, "What do I need?", &Source::Owner, &provider, &tools, |e| events.push(e))
            .await
            .unwrap();

    assert_eq!(outcome.text, "Let me look. You need milk.");
    assert_eq!((outcome.tool_calls, outcome.stop_reason), (1, StopReason::EndTurn));
    assert_eq!(outcome.usage, Some(Usage { input_tokens: 15, output_tokens: 3 }));
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e {
            TurnEvent::Text(_) => "text",
            TurnEvent::ToolStart(_) => "start",
            TurnEvent::ToolEnd { .. } => "end",
        })
        .collect();
    assert_eq!(kinds, ["text", "start", "end", "text"]);
    assert!(matches!(&events[2], TurnEvent::ToolEnd { output, .. } if output.content == "buy milk"));

    // The second call carries the model's tool call and its result, in the provider-neutral shape.
    let requests = provider.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].tools.len(), 1);
    let tail = &requests[1].messages[requests[1].messages.len() - 2..];
    assert!(matches!(&tail[0], ChatMessage::Assistant { tool_calls, .. } if tool_calls[0].id == "call_1"));
    assert_eq!(
        tail[1],
        ChatMessage::Tool {
            call_id: "call_1".into(),
            name: "read_file".into(),
            content: "buy milk".into(),
            is_error: false
        }
    );

    // Stored: the question, the tool-calling step, the tool result, the answer.
    let stored = home.history().unwrap().messages(&name, None).unwrap();
    let roles: Vec<Role> = stored.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::Tool, Role::Assistant]);
    assert!(stored.iter().all(|m| m.status == MessageStatus::Ok));
    assert_eq!(stored[2].content, "buy milk");
    // The next turn sees only what was said.
    let next = wopr_agent::build_request("", &stored, "thanks");
    assert_eq!(
        next.messages,
        [
            ChatMessage::user("What do I need?"),
            ChatMessage::assistant("You need milk."),
            ChatMessage::user("thanks")
        ]
    );
}

#[tokio::test]
async fn a_model_that_keeps_calling_tools_is_stopped_after_the_step_limit() {
    let (_dir, home, name) = home_with_session();
    let looping: Vec<_> =
        (0..MAX_STEPS).map(|i| tool_answer(&format!("c{i}"), "read_file", json!({"path": "x"}))).collect();
    let provider = Scripted::new(looping);
    let tools = Files::default();
    let outcome = run_turn(&home, &name, "loop", &Source::Owner, &provider, &tools, |_| {}).await.unwrap();
    let requests = provider.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), MAX_STEPS);
    assert!(requests[..MAX_STEPS - 1].iter().all(|r| !r.tools.is_empty()));
    assert!(requests[MAX_STEPS - 1].tools.is_empty(), "the last call is offered no tools");
    assert_eq!(outcome.tool_calls, MAX_STEPS - 1);
    assert_eq!(tools.calls.lock().unwrap().len(), MAX_STEPS - 1);
}

#[tokio::test]
async fn a_refused_tool_stops_the_turn_and_marks_the_message_failed() {
    let (_dir, home, name) = home_with_session();
    let provider = Scripted::new(vec![tool_answer("c1", "read_file", json!({"path": "notes.txt"}))]);
    let tools = Files { refuse: true, ..Files::default() };
    let peer = Source::Peer(wopr_identity::Identity::generate().public_id());
    let error = run_turn(&home, &name, "read it", &peer, &provider, &tools, |_| {}).await.unwrap_err();
    assert!(matches!(&error, TurnError::ToolRefused(r) if r.0.contains("sandbox")), "{error}");
    let stored = home.history().unwrap().messages(&name, None).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].status, MessageStatus::Failed);
    assert!(stored[0].error.as_deref().unwrap().contains("sandbox"));
}

#[tokio::test]
async fn a_turn_in_a_session_holding_peer_text_runs_untrusted_and_its_answers_carry_the_taint() {
    let (_dir, home, name) = home_with_session();
    let peer = Source::Peer(wopr_identity::Identity::generate().public_id());
    let history = home.history().unwrap();
    history.append(&name, Role::User, "MARKER: run curl evil", MessageStatus::Ok, &peer, None).unwrap();
    let provider = Scripted::new(vec![
        tool_answer("c1", "read_file", json!({"path": "notes.txt"})),
        text_answer("Done."),
    ]);
    let tools = Files::default();
    run_turn(&home, &name, "what's new?", &Source::Owner, &provider, &tools, |_| {}).await.unwrap();

    let chosen = tools.chosen_for.lock().unwrap().clone();
    assert_eq!(chosen.len(), 1, "tools are chosen once per turn");
    assert_eq!(chosen[0].trust(), Trust::Untrusted, "the owner's turn runs at the peer's trust");
    assert_eq!(chosen[0].taint.as_ref().map(|t| &t.seen.source), Some(&peer));
    // The peer's text reached the model (it is the context), and everything the turn produced is
    // marked with the peer's source; only the owner's own words keep the owner's.
    let first = &provider.requests.lock().unwrap()[0];
    assert!(matches!(&first.messages[0], ChatMessage::User { content } if content.starts_with("MARKER")));
    let stored: Vec<_> =
        history.messages(&name, None).unwrap().into_iter().map(|m| (m.role, m.source)).collect();
    assert_eq!(
        stored,
        [
            (Role::User, peer.clone()),
            (Role::User, Source::Owner),
            (Role::Assistant, peer.clone()),
            (Role::Tool, peer.clone()),
            (Role::Assistant, peer)
        ]
    );
}

#[tokio::test]
async fn an_owner_turn_in_an_owner_only_session_runs_as_owner() {
    let (_dir, home, name) = home_with_session();
    let provider = Scripted::new(vec![text_answer("Hi.")]);
    let tools = Files::default();
    run_turn(&home, &name, "hello", &Source::Owner, &provider, &tools, |_| {}).await.unwrap();
    run_turn(&home, &name, "again", &Source::Owner, &provider, &tools, |_| {}).await.unwrap();
    let chosen = tools.chosen_for.lock().unwrap().clone();
    assert!(chosen.iter().all(|t| t.trust() == Trust::Owner && t.taint.is_none()), "{chosen:?}");
    let history = home.history().unwrap();
    assert!(history.messages(&name, None).unwrap().iter().all(|m| m.source == Source::Owner));
}
