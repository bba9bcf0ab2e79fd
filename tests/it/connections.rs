//! The server's own bounds over real TCP: a client that trickles its
//! headers is cut off, and connections beyond the cap are closed. These
//! touch no storage beyond building the app, so SQLite alone serves.

use crate::support;

use std::time::{Duration, Instant};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wa_smile::testing;

/// Reads until the server closes the connection; how long that took, or
/// `None` if it was still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_disconnected_after_the_header_timeout() {
    let server = TestApp::builder()
        .env("WA_SMILE__SERVER__HEADER_READ_TIMEOUT_SECS", "1")
        .on(testing::sqlite().await.unwrap())
        .await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (mut read, mut write) = slow.into_split();
    // One more header line every 300 ms, never the blank line that ends them.
    let trickle = tokio::spawn(async move {
        for i in 0..30 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if write
                .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "still open after 5 s of trickled headers");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "closed only after {took:?}");
    trickle.abort();
    // A client that sends its request promptly is served as before.
    let r = reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_and_served_again_once_others_end() {
    let server = TestApp::builder()
        .env("WA_SMILE__SERVER__MAX_CONNECTIONS", "2")
        .on(testing::sqlite().await.unwrap())
        .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(server.addr).await.unwrap();
        // A served connection answers a request and stays open.
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = c.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(c);
    }
    let mut extra = TcpStream::connect(server.addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = [0u8; 256];
    let answered = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buf)).await;
    match answered {
        Ok(Ok(n)) => assert_eq!(n, 0, "a third connection was served: {:?}", &buf[..n]),
        Ok(Err(_)) => {} // reset: closed as well
        Err(_) => panic!("a third connection was left open"),
    }
    assert!(closed_within(&mut extra, Duration::from_secs(1))
        .await
        .is_some());
    drop(held);
    // The slots come back once the held connections end.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match reqwest::get(format!("{}/healthz", server.url)).await {
            Ok(r) if r.status().as_u16() == 200 => break,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("not served after the others ended: {other:?}"),
        }
    }
}

/// One request on `stream` and its whole answer: the status line, or
/// `None` if the server had closed the connection.
async fn get_healthz(stream: &mut TcpStream) -> Option<String> {
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .is_err()
    {
        return None;
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return None;
        }
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                return head.lines().next().map(str::to_owned);
            }
        }
    }
}

/// A pooled keep-alive connection that waited longer than the header
/// timeout between two requests is still open, so the second request is
/// answered (the server closing it at that moment made clients fail).
/// Idle for longer than the keep-alive bound, it is closed; and a request
/// begun after an idle wait still has only the header timeout. The server
/// runs with millisecond limits so the waits stay short.
#[tokio::test]
async fn a_keep_alive_connection_idle_past_the_header_timeout_still_serves_the_next_request() {
    let t = testing::sqlite().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = wa_smile::http::listen::Limits {
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(2_500),
        max_connections: 16,
    };
    let app = wa_smile::http::router(wa_smile::http::AppState {
        db: t.db.clone(),
        config: std::sync::Arc::new(config()),
        workers: Default::default(),
    });
    tokio::spawn(wa_smile::http::listen::serve(
        listener,
        app,
        limits,
        std::future::pending(),
    ));
    let mut c = TcpStream::connect(addr).await.unwrap();
    for _ in 0..3 {
        let status = get_healthz(&mut c).await;
        assert_eq!(
            status.as_deref(),
            Some("HTTP/1.1 200 OK"),
            "a request after waiting 3× the header timeout"
        );
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    // Idle past the keep-alive bound: closed by the server.
    let idle = Instant::now();
    assert!(closed_within(&mut c, Duration::from_secs(5))
        .await
        .is_some());
    assert!(
        idle.elapsed() >= Duration::from_millis(1_500),
        "{:?}",
        idle.elapsed()
    );
    // Half a header block after an idle wait is cut off after the header
    // timeout, not the idle one.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    assert!(get_healthz(&mut slow).await.is_some());
    tokio::time::sleep(Duration::from_millis(900)).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let cut = closed_within(&mut slow, Duration::from_secs(2)).await;
    assert!(
        cut.is_some_and(|d| d < Duration::from_millis(1_200)),
        "half a header block kept open: {cut:?}"
    );
}
