//! Liveness and readiness as a load balancer sees them.

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
    for t in testing::all().await.unwrap() {
        let config = Arc::new(Config::from_sources(None, Vec::new()).unwrap());
        let app = router(AppState {
            db: t.db.clone(),
            config,
        });
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
