//! Request ids and the access log.
//!
//! Every request gets a random id, sent back as `X-Dropbox-Request-Id` on every answer
//! (Dropbox's header name, which its SDKs show in their errors) and carried by every log line
//! written while the request runs, so a user's report can be found in the log.
//!
//! With the access log on, one line per request is written (target `cubby::access`) when
//! its answer has been sent or abandoned, in logfmt: method, route, status, bytes sent,
//! duration, request id, account id and client address. A route is the API route's name or
//! the path pattern the router matched (`/s/{token}/{name}`): never a token, a file's path,
//! a query string or a password.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use http_body::Body as _;
use tracing::Instrument;

use crate::AppState;

/// The header that carries the request id.
pub const REQUEST_ID_HEADER: &str = "x-dropbox-request-id";

/// The id of the request being served (a request extension).
#[derive(Clone, Debug)]
pub(crate) struct RequestId(pub String);

/// What a handler learned that the access log names (a response extension): the API route
/// and the account that called it.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub route: &'static str,
    pub account: Option<String>,
}

/// The middleware: gives the request its id and, if the log is on, logs its answer.
pub(crate) async fn layer(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let id = cubby_core::hash::hex(&cubby_store::random_bytes::<8>());
    req.extensions_mut().insert(RequestId(id.clone()));
    let line = state.access_log.then(|| Line {
        method: req.method().to_string(),
        pattern: req
            .extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_owned()),
        addr: crate::web::client_addr(req.extensions()),
        id: id.clone(),
        started: Instant::now(),
        route: None,
        account: None,
        status: 0,
    });
    let span = tracing::info_span!("request", id = %id);
    let mut resp = next.run(req).instrument(span).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    let Some(mut line) = line else {
        return resp;
    };
    line.status = resp.status().as_u16();
    if let Some(c) = resp.extensions().get::<Caller>() {
        line.route = Some(c.route);
        line.account = c.account.clone();
    }
    resp.map(|inner| {
        Body::new(Counted {
            inner,
            bytes: 0,
            line: Some(line),
        })
    })
}

/// One access-log line, written when the body is done.
struct Line {
    method: String,
    pattern: Option<String>,
    addr: String,
    id: String,
    started: Instant,
    route: Option<&'static str>,
    account: Option<String>,
    status: u16,
}

impl Line {
    fn write(self, bytes: u64, complete: bool) {
        let route = match (self.route, &self.pattern) {
            (Some(r), _) => r,
            (None, Some(p)) => p.as_str(),
            (None, None) => "unmatched",
        };
        tracing::info!(
            target: "cubby::access",
            method = %self.method,
            route = %route,
            status = self.status,
            bytes,
            ms = format_args!("{:.1}", self.started.elapsed().as_secs_f64() * 1000.0),
            request_id = %self.id,
            account = %self.account.as_deref().unwrap_or("-"),
            addr = %self.addr,
            complete,
        );
    }
}

/// A response body that counts what it sends and logs its line at the end (or when the
/// client goes away first: `complete=false`).
struct Counted {
    inner: Body,
    bytes: u64,
    line: Option<Line>,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes += data.len() as u64;
                }
            }
            Poll::Ready(None) => {
                if let Some(line) = self.line.take() {
                    line.write(self.bytes, true);
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(line) = self.line.take() {
            // An empty body may be dropped without being polled to its end.
            let complete = self.inner.is_end_stream();
            line.write(self.bytes, complete);
        }
    }
}
