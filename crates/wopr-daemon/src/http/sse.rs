//! Server-sent events from a channel of typed events.

use std::convert::Infallible;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Serialize;
use tokio::sync::mpsc;

/// An SSE response that sends each event of `rx`, named by `name`, as JSON, until the sender goes.
pub fn stream<T: Serialize + Send + 'static>(
    rx: mpsc::UnboundedReceiver<T>,
    name: fn(&T) -> &'static str,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = futures::stream::unfold(rx, move |mut rx| async move {
        let item = rx.recv().await?;
        let event = Event::default().event(name(&item)).json_data(&item).unwrap_or_default();
        Some((Ok(event), rx))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}
