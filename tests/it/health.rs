//! Liveness and readiness as a load balancer sees them.

use crate::support::TestApp;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use std::sync::Arc;
use tower::ServiceExt;
use wa_smile::config::Config;
use wa_smile::http::{router, AppState};
use wa_smile::testing;

async fn status(app: axum::Router, path: &str) -> StatusCode {
    app.oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn readyz_follows_the_database_and_healthz_does_not() {
    for test_app in TestApp::all().await {
        let (t, app) = (&test_app.t, test_app.router.clone());
        assert_eq!(
            status(app.clone(), "/healthz").await,
            StatusCode::OK,
            "{}",
            t.name
        );
        assert_eq!(
            status(app.clone(), "/readyz").await,
            StatusCode::OK,
            "{}",
            t.name
        );
        t.db.close().await;
        assert_eq!(
            status(app.clone(), "/readyz").await,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            t.name
        );
        assert_eq!(status(app, "/healthz").await, StatusCode::OK, "{}", t.name);
    }
}

async fn get(app: axum::Router, path: &str) -> (StatusCode, String) {
    use http_body_util::BodyExt;
    let res = app
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// A worker that panics when told; its restart waits for the gate, so the
/// test sees it down for as long as it needs to, without timing anything.
#[tokio::test]
async fn readyz_is_503_with_the_reason_while_a_worker_is_down_and_200_after() {
    use tokio::sync::Notify;
    use wa_smile::supervise::{Backoff, Supervisor};
    const NAME: &str = "health-test worker";
    let t = testing::sqlite().await.unwrap();
    let gate = Arc::new(Notify::new());
    let workers = Arc::new(Supervisor::new(Backoff::Gate(gate.clone())));
    let app = router(AppState {
        db: t.db.clone(),
        config: Arc::new(Config::from_sources(None, Vec::new()).unwrap()),
        workers: workers.clone(),
    });
    let fail = Arc::new(Notify::new());
    let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let worker = workers.spawn(NAME, {
        let (fail, runs) = (fail.clone(), runs.clone());
        move || {
            let fail = fail.clone();
            runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                fail.notified().await;
                panic!("worker blew up");
            }
        }
    });
    workers.wait_until(|w| w[NAME].down.is_none()).await;
    assert_eq!(
        get(app.clone(), "/readyz").await,
        (StatusCode::OK, "ready".into())
    );

    fail.notify_one();
    workers.wait_until(|w| w[NAME].restarts == 1).await;
    let (status, reason) = get(app.clone(), "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reason,
        format!("{NAME} panicked: worker blew up (restarting)")
    );
    let (_, metrics) = get(app.clone(), "/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l == format!("wa_smile_worker_restarts_total{{worker=\"{NAME}\"}} 1")),
        "{metrics}"
    );

    gate.notify_one();
    workers.wait_until(|w| w[NAME].down.is_none()).await;
    assert_eq!(
        runs.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "started again"
    );
    assert_eq!(
        get(app.clone(), "/readyz").await,
        (StatusCode::OK, "ready".into())
    );

    // Shutting down stops the worker; a stopped worker is not ready either.
    workers.shutdown();
    fail.notify_one();
    worker.await.unwrap();
    let (status, reason) = get(app, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reason, format!("{NAME} stopped"));
}
