//! `orderflow ui`: the dead-letter page. Failure groups, their dead letters with headers and
//! body, and replay, delete and edit-and-retry, each behind a confirmation page and a CSRF token.
//!
//! Every action runs the CLI's own operation ([`crate::replay`], [`crate::remove`],
//! [`crate::edit`]), so the page keeps the CLI's rules: a copy is confirmed before its dead
//! letter is acked, and what an action does not touch is handed back.
//!
//! - [`csrf`]: the token every form carries, and the same-origin check on every POST.
//! - [`pages`]: the HTML (server-rendered, no script).
//! - [`routes`]: what each URL reads or does.

pub mod csrf;
pub mod pages;
pub mod routes;

use crate::target::Target;
use anyhow::Context;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// Serves the page on `listen` until Ctrl-C or SIGTERM; prints where once it listens.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(target: Target, listen: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "the dead-letter page has no login of its own: anyone who reaches this address can \
             replay and delete dead letters; put it behind an authenticating proxy"
        );
    }
    println!(
        "dead-letter page on http://{addr}/ (vhost '{}')",
        target.vhost
    );
    let app = routes::router(target, csrf::Token::random());
    axum::serve(listener, app)
        .with_graceful_shutdown(stopped())
        .await
        .context("serving the dead-letter page")
}

/// Ctrl-C or SIGTERM.
async fn stopped() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
