//! Liveness and readiness as a load balancer sees them.

use crate::support::TestApp;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

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
