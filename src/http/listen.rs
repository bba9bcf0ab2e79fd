//! The accept loop. `axum::serve` gives no header-read deadline (hyper's
//! needs a timer it does not set) and no bound on open connections, so one
//! client trickling a header line every few seconds could hold thousands of
//! connections open. Here each connection is HTTP/1 with a header deadline,
//! and a connection beyond `max_connections` is closed at once.
//!
//! hyper's header timeout also runs while a keep-alive connection is idle
//! between requests, so on its own it closes every connection idle for
//! 10 s; a client reusing the connection at that moment sends its request
//! into a closing socket and fails (issue 9's import-under-load benchmark
//! lost 84 status webhooks that way). Each connection therefore gets its
//! own timer: a request's headers still have `header_read_timeout` from
//! their first byte, and an idle keep-alive connection stays open for
//! `idle_timeout`, longer than the clients' own pools keep it.

use crate::config::ServerConfig;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// What bounds the connections of one server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time to send a request's whole header block, from its first byte
    /// (or, for a connection's first request, from the accept).
    pub header_read_timeout: Duration,
    /// How long a keep-alive connection may stay idle between requests.
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// Longer than the idle timeout of common HTTP client pools (hyper and
/// reqwest, Go: 90 s), so the client, not the server, ends an idle
/// connection and never sends a request into one being closed.
pub const KEEP_ALIVE_IDLE: Duration = Duration::from_secs(120);

impl Limits {
    pub fn from_config(server: &ServerConfig) -> Self {
        Limits {
            header_read_timeout: server.header_read_timeout(),
            idle_timeout: KEEP_ALIVE_IDLE.max(server.header_read_timeout()),
            max_connections: server.max_connections as usize,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then waits for
/// the open connections' in-flight requests. Each request carries
/// `ConnectInfo<SocketAddr>` (the peer), as `axum::serve` would give it.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics::counter!("http_connections_refused_total").increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let activity = Arc::new(Activity::default());
        let mut builder = builder.clone();
        builder.timer(HeadTimer {
            activity: activity.clone(),
            limits,
        });
        let requests = activity.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            requests.requests.fetch_add(1, Ordering::Relaxed);
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req.map(Body::new))
        });
        let io = TokioIo::new(Counted {
            stream,
            activity: activity.clone(),
        });
        let conn = graceful.watch(builder.serve_connection(io, service));
        tokio::spawn(async move {
            // A timed-out or reset connection is the client's business.
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// What one connection has done: bytes read (by its stream) and requests
/// received (by its service), for its header timer.
#[derive(Default)]
struct Activity {
    reads: AtomicU64,
    requests: AtomicU64,
}

/// The connection's stream, counting the bytes it reads.
struct Counted {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.activity
                .reads
                .fetch_add(read as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// One connection's timer. hyper asks it for one thing only, the deadline
/// for the next request's headers, each time it starts waiting for them.
struct HeadTimer {
    activity: Arc<Activity>,
    limits: Limits,
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HeadDeadline::fixed(tokio::time::Instant::now() + duration))
    }

    fn sleep_until(&self, _: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let now = tokio::time::Instant::now();
        if self.activity.requests.load(Ordering::Relaxed) == 0 {
            // The first request: its headers are due from the accept.
            return Box::pin(HeadDeadline::fixed(now + self.limits.header_read_timeout));
        }
        Box::pin(HeadDeadline {
            sleep: Box::pin(tokio::time::sleep_until(now + self.limits.idle_timeout)),
            idle: Some(Idle {
                activity: self.activity.clone(),
                reads_at_start: self.activity.reads.load(Ordering::Relaxed),
                header_read_timeout: self.limits.header_read_timeout,
            }),
        })
    }
}

/// When hyper gives up waiting for a request's headers. Between keep-alive
/// requests that is `idle_timeout`, until the next request's first byte
/// arrives; from then on `header_read_timeout`.
struct HeadDeadline {
    sleep: Pin<Box<tokio::time::Sleep>>,
    /// While the connection is idle between requests.
    idle: Option<Idle>,
}

struct Idle {
    activity: Arc<Activity>,
    reads_at_start: u64,
    header_read_timeout: Duration,
}

impl HeadDeadline {
    fn fixed(deadline: tokio::time::Instant) -> Self {
        HeadDeadline {
            sleep: Box::pin(tokio::time::sleep_until(deadline)),
            idle: None,
        }
    }
}

impl Future for HeadDeadline {
    type Output = ();

    /// hyper polls this after every read that did not complete the headers,
    /// so a request's first byte is seen here as soon as it is read.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if let Some(idle) = &this.idle {
            if idle.activity.reads.load(Ordering::Relaxed) != idle.reads_at_start {
                let deadline = tokio::time::Instant::now() + idle.header_read_timeout;
                this.sleep.as_mut().reset(deadline);
                this.idle = None;
            }
        }
        this.sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HeadDeadline {}
