//! The officers' admin UI over HTTP, on both backends: login and sessions,
//! branch boundaries (by URL guessing too), CSRF, login throttling, case
//! actions, and untrusted text rendered inert.

use crate::support;

use axum::http::StatusCode;
use support::*;
use wa_smile::testing;

#[tokio::test]
async fn pages_need_a_login_and_answer_with_security_headers() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        let mut c = app.browser();
        for uri in ["/", "/cases", &format!("/cases/{}", s.case_a), "/dashboard"] {
            let r = c.get(uri).await;
            assert!(r.status.is_redirection(), "{} {uri}: {}", t.name, r.status);
            let to = r.location();
            assert!(
                to == "/login" || (uri == "/" && to == "/cases"),
                "{uri} → {to}"
            );
        }
        let r = c.get("/login").await;
        assert_eq!(r.status, StatusCode::OK);
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        assert!(r.headers.contains_key("referrer-policy"));
        assert!(c.get("/static/htmx.min.js").await.body.contains("htmx"));
    }
}

#[tokio::test]
async fn login_sets_a_safe_cookie_and_logout_ends_the_session() {
    for app in TestApp::all().await {
        let t = &app.t;
        seed(&t.db).await;
        let mut c = app.browser();
        let r = c.login("officer_a", PASSWORD).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", t.name);
        let cookie = r
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|v| v.starts_with("wa_smile_session="))
            .unwrap();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
        assert!(
            !cookie.contains("Secure"),
            "http public_url: no Secure flag"
        );
        let page = c.get("/cases").await;
        assert_eq!(page.status, StatusCode::OK);
        let csrf = csrf_field(&page.body);
        // Logout without the token is refused; with it the session is gone.
        assert_eq!(
            c.post_form("/logout", &[]).await.status,
            StatusCode::FORBIDDEN
        );
        let r = c.post_form("/logout", &[("csrf", &csrf)]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert!(c.get("/cases").await.status.is_redirection());
    }
}

#[tokio::test]
async fn secure_cookie_flag_when_public_url_is_https() {
    let app = TestApp::builder()
        .env("WA_SMILE__SERVER__PUBLIC_URL", "https://smile.example")
        .on(testing::sqlite().await.unwrap())
        .await;
    seed(app.db()).await;
    let mut c = app.browser();
    let r = c.login("officer_a", PASSWORD).await;
    let cookies: Vec<_> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies.iter().all(|c| c.contains("; Secure")),
        "{cookies:?}"
    );
}

#[tokio::test]
async fn wrong_passwords_are_throttled_even_for_the_right_one_afterwards() {
    for app in TestApp::all().await {
        let t = &app.t;
        seed(&t.db).await;
        let mut c = app.browser();
        for _ in 0..5 {
            let r = c.login("officer_a", "salah-salah-salah").await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", t.name);
            assert!(r.body.contains("salah"));
        }
        let r = c.login("officer_a", PASSWORD).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(!c.cookies.iter().any(|(k, _)| k == "wa_smile_session"));
        // Another user from the same place is not locked out by that.
        assert_eq!(
            c.login("officer_b", PASSWORD).await.status,
            StatusCode::SEE_OTHER
        );
    }
}

#[tokio::test]
async fn login_without_its_csrf_token_is_refused() {
    let app = TestApp::builder()
        .on(testing::sqlite().await.unwrap())
        .await;
    let t = &app.t;
    seed(&t.db).await;
    let mut c = app.browser();
    let r = c
        .post_form(
            "/login",
            &[("username", "officer_a"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_officer_sees_and_acts_on_their_own_branch_only() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        let mut c = app.browser();
        let csrf = c.login_ok("officer_a").await;
        let list = c.get("/cases").await;
        assert!(
            list.body.contains("10000001") && list.body.contains("10000002"),
            "{}",
            t.name
        );
        assert!(!list.body.contains("20000001") && !list.body.contains("Dumai Sentosa"));
        // Asking for branch B by filter finds nothing.
        let r = c.get(&format!("/cases?branch={BRANCH_B}&status=all")).await;
        assert!(!r.body.contains("20000001"));
        // Guessing B's case id: not found, for reading and for every action.
        assert_eq!(
            c.get(&format!("/cases/{}", s.case_b)).await.status,
            StatusCode::NOT_FOUND
        );
        for action in ["note", "resolve", "pause", "assign", "template", "contact"] {
            let r = c
                .post_form(
                    &format!("/cases/{}/actions/{action}", s.case_b),
                    &[
                        ("csrf", &csrf),
                        ("text", "x"),
                        ("reason", "x"),
                        ("until", "2030-01-01"),
                    ],
                )
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{action}");
        }
        let events = wa_smile::case_log::for_case(&t.db, s.case_b).await.unwrap();
        assert!(events.iter().all(|e| !e.actor.starts_with("officer:")));
        // Nor the dashboard, which is for supervisors.
        assert_eq!(c.get("/dashboard").await.status, StatusCode::FORBIDDEN);
        assert_eq!(c.get("/cases/99999").await.status, StatusCode::NOT_FOUND);
        assert_eq!(c.get("/cases/abc").await.status, StatusCode::NOT_FOUND);

        // The admin sees both branches; the supervisor gets the dashboard.
        let mut admin = app.browser();
        admin.login_ok("admin").await;
        let all = admin.get("/cases").await;
        assert!(all.body.contains("20000001") && all.body.contains("10000001"));
        assert_eq!(
            admin.get(&format!("/cases/{}", s.case_b)).await.status,
            StatusCode::OK
        );
        let mut sup = app.browser();
        sup.login_ok("super_a").await;
        let d = sup.get("/dashboard").await;
        assert_eq!(d.status, StatusCode::OK);
        assert!(!d.body.contains(BRANCH_B));
    }
}

#[tokio::test]
async fn state_changes_without_the_csrf_token_are_refused() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        let mut c = app.browser();
        let csrf = c.login_ok("officer_a").await;
        let uri = format!("/cases/{}/actions/note", s.case_a);
        for fields in [
            vec![("text", "tanpa token")],
            vec![("text", "salah"), ("csrf", "0000")],
        ] {
            let r = c.post_form(&uri, &fields).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", t.name);
        }
        // Another session's token does not work either.
        let mut other = app.browser();
        let other_csrf = other.login_ok("officer_a").await;
        assert_ne!(other_csrf, csrf);
        let r = c
            .post_form(&uri, &[("text", "x"), ("csrf", &other_csrf)])
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let events = wa_smile::case_log::for_case(&t.db, s.case_a).await.unwrap();
        assert!(!events.iter().any(|e| e.kind == "note_added"));
        // The htmx header carries it as well as the field.
        let r = c
            .send(
                axum::http::Request::post(&uri)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("x-csrf-token", &csrf)
                    .body(axum::body::Body::from("text=lewat+header"))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
    }
}

#[tokio::test]
async fn case_actions_are_recorded_in_the_case_log_and_the_audit_trail() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        let mut c = app.browser();
        let csrf = c.login_ok("officer_a").await;
        let act = |a: &str| format!("/cases/{}/actions/{a}", s.case_a);
        let future = (now() + chrono::Duration::days(5)).date_naive().to_string();
        let steps: Vec<(&str, Vec<(&str, &str)>)> = vec![
            ("note", vec![("text", "Sudah ditelepon, PIC minta rincian")]),
            ("assign", vec![("assignee", "officer_a")]),
            ("pause", vec![("until", &future)]),
            ("resume", vec![]),
            ("promise", vec![("date", &future), ("note", "via telepon")]),
            (
                "template",
                vec![
                    ("message", "amount_breakdown"),
                    ("key", "00112233445566778899aabbccddeeff"),
                ],
            ),
            (
                "contact",
                vec![
                    ("wa_phone", "081299998888"),
                    ("contact_name", "Bapak Budi"),
                    ("consent", "true"),
                ],
            ),
            ("dispute", vec![("reason", "Karyawan sudah keluar")]),
            (
                "resolve",
                vec![
                    ("reason", "paid_outside"),
                    ("note", "Dibayar langsung di kantor cabang"),
                    ("confirm", "true"),
                ],
            ),
        ];
        for (a, mut fields) in steps {
            fields.push(("csrf", &csrf));
            let r = c.post_form(&act(a), &fields).await;
            assert_eq!(
                r.status,
                StatusCode::SEE_OTHER,
                "{} {a}: {}",
                t.name,
                r.body
            );
        }
        let kinds: Vec<String> = wa_smile::case_log::for_case(&t.db, s.case_a)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.actor == "officer:officer_a")
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                "note_added",
                "assigned",
                "paused",
                "resumed",
                "promise_to_pay",
                "message_queued",
                "contact_updated",
                "dispute_raised",
                "case_resolved"
            ],
            "{}",
            t.name
        );
        let audit =
            t.db.query("SELECT COUNT(*) AS n FROM audit_log WHERE actor = 'officer:officer_a'")
                .fetch_one(&t.db)
                .await
                .unwrap()
                .get::<i64>("n")
                .unwrap();
        assert!(audit >= 10, "{audit}");
        assert!(wa_smile::audit::verify(&t.db)
            .await
            .unwrap()
            .broken
            .is_none());
        let row = t
            .db
            .query("SELECT e.wa_id, c.status FROM cases c JOIN employers e ON e.id = c.employer_id WHERE c.id = $1")
            .bind(s.case_a)
            .fetch_one(&t.db)
            .await
            .unwrap();
        assert_eq!(row.get::<String>("wa_id").unwrap(), "6281299998888");
        assert_eq!(row.get::<String>("status").unwrap(), "resolved");
        // Every queued message of the resolved case was cancelled.
        let queued: i64 =
            t.db.query("SELECT COUNT(*) AS n FROM outbox WHERE case_id = $1 AND state = 'queued'")
                .bind(s.case_a)
                .fetch_one(&t.db)
                .await
                .unwrap()
                .get("n")
                .unwrap();
        assert_eq!(queued, 0);
        // The note shows in the timeline.
        let page = c.get(&format!("/cases/{}", s.case_a)).await;
        assert!(page.body.contains("Sudah ditelepon, PIC minta rincian"));
    }
}

#[tokio::test]
async fn free_text_only_while_the_window_is_open() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        let mut c = app.browser();
        let csrf = c.login_ok("officer_a").await;
        let closed = c.get(&format!("/cases/{}", s.case_a)).await;
        assert!(!closed.body.contains("/actions/text"), "{}", t.name);
        let r = c
            .post_form(
                &format!("/cases/{}/actions/text", s.case_a),
                &[("csrf", &csrf), ("text", "Halo")],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.body.contains("Jendela 24 jam sudah tertutup"));
        let open = c.get(&format!("/cases/{}", s.case_a2)).await;
        assert!(open.body.contains("/actions/text") && open.body.contains("terbuka sampai"));
        let r = c
            .post_form(
                &format!("/cases/{}/actions/text", s.case_a2),
                &[("csrf", &csrf), ("text", "Halo Bu, rinciannya kami kirim")],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let kind: String =
            t.db.query("SELECT kind FROM outbox WHERE case_id = $1 AND message = 'free_text'")
                .bind(s.case_a2)
                .fetch_one(&t.db)
                .await
                .unwrap()
                .get("kind")
                .unwrap();
        assert_eq!(kind, "text");
    }
}

#[tokio::test]
async fn employer_names_and_replies_are_rendered_as_text() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        let mut c = app.browser();
        let csrf = c.login_ok("officer_a").await;
        let note = "<script>alert('note')</script>";
        c.post_form(
            &format!("/cases/{}/actions/note", s.case_a),
            &[("csrf", &csrf), ("text", note)],
        )
        .await;
        for uri in [
            "/cases".to_owned(),
            format!("/cases/{}", s.case_a),
            "/cases?q=%3Cscript%3E".to_owned(),
        ] {
            let body = c.get(&uri).await.body;
            for raw in [
                "<script>alert",
                "<img src=x",
                "<b>bold</b>",
                "onerror=alert",
            ] {
                // `onerror=` may only appear inside escaped text, never as
                // an attribute of a real tag.
                if raw == "onerror=alert" {
                    assert!(!body.contains("<img"), "{} {uri}", t.name);
                } else {
                    assert!(!body.contains(raw), "{} {uri}: {raw}", t.name);
                }
            }
            assert!(
                body.contains("&lt;script&gt;") || uri.starts_with("/cases?q"),
                "{uri}"
            );
        }
        let page = c.get(&format!("/cases/{}", s.case_a)).await.body;
        assert!(
            page.contains(
                "&lt;img src=x onerror=alert(&#x27;reply&#x27;)&gt;&lt;b&gt;bold&lt;&#x2f;b&gt;"
            ),
            "{page}"
        );
        // The search box echoes the query escaped, attribute-safe.
        let r = c.get("/cases?q=%22%3E%3Cscript%3Ex").await.body;
        assert!(!r.contains("\"><script>x"));
    }
}

#[tokio::test]
async fn the_case_list_filters_sorts_and_counts() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        let mut c = app.browser();
        c.login_ok("admin").await;
        let r = c.get("/cases?q=sinar").await;
        assert!(
            r.body.contains("10000002") && !r.body.contains("10000001"),
            "{}",
            t.name
        );
        let r = c.get("/cases?q=2000").await;
        assert!(r.body.contains("20000001") && !r.body.contains("10000002"));
        let r = c.get("/cases?window_open=true").await;
        assert!(r.body.contains("10000002") && !r.body.contains("20000001"));
        let r = c.get("/cases?sort=days_overdue").await;
        let (a, a2) = (
            r.body.find("10000001").unwrap(),
            r.body.find("10000002").unwrap(),
        );
        assert!(a < a2, "the 40-day case comes first");
        let r = c.get("/cases?sort=arrears&status=resolved").await;
        assert!(r.body.contains("Tidak ada kasus"));
        assert_eq!(
            c.get("/cases?sort=bogus").await.status,
            StatusCode::BAD_REQUEST
        );
        let r = c.get(&format!("/cases/{}", s.case_a)).await;
        assert!(
            r.body.contains("perkiraan"),
            "estimated late fees are labelled"
        );
    }
}

/// The status codes of `n` logins sent at once over real HTTP.
async fn concurrent_logins(
    server: &Server,
    username: &str,
    passwords: Vec<String>,
) -> Vec<StatusCode> {
    let http = http_client();
    let csrf = login_csrf(&http, &server.url).await;
    let attempts = passwords.into_iter().map(|p| {
        let (http, url, csrf, username) = (
            http.clone(),
            server.url.clone(),
            csrf.clone(),
            username.to_owned(),
        );
        tokio::spawn(async move { http_login(&http, &url, &csrf, &username, &p, None).await })
    });
    let mut out = Vec::new();
    for a in attempts.collect::<Vec<_>>() {
        out.push(a.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_passwords_are_counted_before_any_is_checked() {
    for app in TestApp::all().await {
        let t = &app.t;
        seed(&t.db).await;
        let server = serve_app(&t.db, config()).await;
        let statuses = concurrent_logins(
            &server,
            "officer_a",
            (0..30).map(|i| format!("tebakan-salah-{i}")).collect(),
        )
        .await;
        let checked = statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count();
        let throttled = statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count();
        assert_eq!((checked, throttled), (5, 25), "{}: {statuses:?}", t.name);
        // 100 guesses at once, one of them right: at most five passwords
        // are ever checked, so the right one is refused unless it is among them.
        let mut guesses: Vec<String> = (0..100).map(|i| format!("tebakan-{i}")).collect();
        guesses[60] = PASSWORD.to_owned();
        let statuses = concurrent_logins(&server, "super_a", guesses).await;
        // Only failures are counted: when the right guess is among the
        // first five it logs in, is not a failure, and leaves room for one
        // more wrong guess to be checked. So: at most five wrong passwords
        // checked, at most one login, every other guess throttled.
        let wrong = statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count();
        let logged_in = statuses
            .iter()
            .filter(|s| **s == StatusCode::SEE_OTHER)
            .count();
        let throttled = statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count();
        assert!(wrong <= 5, "{}: {wrong} wrong passwords checked", t.name);
        assert!(logged_in <= 1, "{}: {statuses:?}", t.name);
        assert_eq!(
            wrong + logged_in + throttled,
            100,
            "{}: {statuses:?}",
            t.name
        );
    }
}

fn behind_proxy(trusted: &str) -> wa_smile::config::Config {
    let mut c = config();
    c.server.trusted_proxy_header = "X-Forwarded-For".into();
    c.server.trusted_proxies = vec![trusted.to_owned()];
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lockout_holds_for_one_client_only_up_to_a_slower_bound_per_username() {
    for app in TestApp::all().await {
        let t = &app.t;
        seed(&t.db).await;
        let server = serve_app(&t.db, behind_proxy("127.0.0.1")).await;
        let http = http_client();
        let csrf = login_csrf(&http, &server.url).await;
        let login = |user: &'static str, pw: &'static str, from: String| {
            let (http, url, csrf) = (http.clone(), server.url.clone(), csrf.clone());
            async move { http_login(&http, &url, &csrf, user, pw, Some(&from)).await }
        };
        for _ in 0..5 {
            let s = login("officer_a", "salah-salah", "10.0.0.1".into()).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{}", t.name);
        }
        // The guessing client is locked out, even with the right password…
        let s = login("officer_a", PASSWORD, "10.0.0.1".into()).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{}", t.name);
        // …the officer at another address is not (the proxy appends the
        // address it saw; what the client wrote before it is not believed).
        let s = login("officer_a", PASSWORD, "10.0.0.1, 10.0.0.2".into()).await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{}", t.name);
        // Many addresses guessing one username hit the slower global bound.
        for i in 0..45 {
            let s = login("officer_a", "salah-salah", format!("10.0.1.{i}")).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{} guess {i}", t.name);
        }
        let s = login("officer_a", PASSWORD, "10.0.2.1".into()).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{}", t.name);
        // An admin unlocks the login (audited), and the officer gets in.
        let cleared = wa_smile::accounts::unlock_user(&t.db, "officer_a", "cli")
            .await
            .unwrap();
        assert_eq!(cleared, 50);
        let s = login("officer_a", PASSWORD, "10.0.2.1".into()).await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{}", t.name);
        let audited =
            t.db.query("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'user.unlocked'")
                .fetch_one(&t.db)
                .await
                .unwrap()
                .get::<i64>("n")
                .unwrap();
        assert_eq!(audited, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarded_header_is_believed_only_from_a_configured_proxy() {
    for app in TestApp::all().await {
        let t = &app.t;
        seed(&t.db).await;
        for config in [config(), behind_proxy("10.9.9.9")] {
            wa_smile::accounts::unlock_user(&t.db, "officer_b", "cli")
                .await
                .unwrap();
            let server = serve_app(&t.db, config).await;
            let http = http_client();
            let csrf = login_csrf(&http, &server.url).await;
            for i in 0..5 {
                let from = format!("10.0.0.{i}");
                let s =
                    http_login(&http, &server.url, &csrf, "officer_b", "salah", Some(&from)).await;
                assert_eq!(s, StatusCode::UNAUTHORIZED, "{}", t.name);
            }
            // Every attempt came from 127.0.0.1, whatever the header said.
            let s = http_login(
                &http,
                &server.url,
                &csrf,
                "officer_b",
                PASSWORD,
                Some("10.0.0.99"),
            )
            .await;
            assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{}", t.name);
        }
    }
}

#[tokio::test]
async fn an_unknown_username_takes_as_long_as_a_wrong_password() {
    for app in TestApp::all().await {
        let t = &app.t;
        seed(&t.db).await;
        let time = |user: &'static str| {
            let mut c = app.browser();
            async move {
                let started = std::time::Instant::now();
                let r = c.login(user, "salah-salah-salah").await;
                assert_eq!(r.status, StatusCode::UNAUTHORIZED);
                started.elapsed()
            }
        };
        // The first unknown name pays for making the dummy hash; warm it.
        time("belum-ada").await;
        let mut wrong = Vec::new();
        let mut unknown = Vec::new();
        for user in ["tidak-ada-1", "tidak-ada-2", "tidak-ada-3"] {
            wrong.push(time("officer_a").await);
            unknown.push(time(user).await);
        }
        let (wrong, unknown) = (wrong.iter().min().unwrap(), unknown.iter().min().unwrap());
        assert!(
            *unknown * 2 >= *wrong,
            "{}: unknown user {unknown:?}, wrong password {wrong:?}",
            t.name
        );
    }
}

#[tokio::test]
async fn out_of_range_dashboard_dates_and_page_numbers_get_clear_answers() {
    for app in TestApp::all().await {
        let t = &app.t;
        seed(&t.db).await;
        seed_more(&t.db, 60).await;
        let mut c = app.browser();
        c.login_ok("super_a").await;
        for q in ["from=-262143-01-01", "to=+262142-12-31", "from=2026-13-40"] {
            let r = c.get(&format!("/dashboard?{q}")).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{} {q}", t.name);
            assert!(r.body.contains("Tanggal"), "{q}: {}", r.body);
        }
        assert_eq!(
            c.get("/dashboard?from=2026-01-01&to=2026-02-01")
                .await
                .status,
            StatusCode::OK
        );
        // 62 cases of branch A: two pages. A page past the end shows the
        // last page, labelled as such.
        let last = c.get("/cases?page=2").await;
        assert!(last.body.contains("halaman 2 dari 2"), "{}", last.body);
        let r = c.get("/cases?page=9223372036854775807").await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains("halaman 2 dari 2"), "{}", t.name);
        let rows = |html: &str| html.matches("href=\"/cases/").count();
        assert_eq!(rows(&r.body), rows(&last.body));
        let r = c.get("/cases?page=-5").await;
        assert!(r.body.contains("halaman 1 dari 2"), "{}", t.name);
    }
}

#[tokio::test]
async fn an_officer_s_contact_and_promise_get_the_same_limits_as_imports_and_notes() {
    for app in TestApp::all().await {
        let t = &app.t;
        let s = seed(&t.db).await;
        let mut c = app.browser();
        let csrf = c.login_ok("officer_a").await;
        let act = |a: &str| format!("/cases/{}/actions/{a}", s.case_a);
        let long_name = "B".repeat(100_000);
        for name in [long_name.as_str(), "Ibu\u{7}Sari", "Bapak\u{0}Budi"] {
            let r = c
                .post_form(&act("contact"), &[("contact_name", name), ("csrf", &csrf)])
                .await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", t.name);
        }
        let stored: String =
            t.db.query("SELECT contact_name FROM employers WHERE npp = $1")
                .bind(s.npp_a.clone())
                .fetch_one(&t.db)
                .await
                .unwrap()
                .get("contact_name")
                .unwrap();
        assert_eq!(stored, "Ibu Sari");
        // The officer is told what the CSV import says of the same name.
        let reason = wa_smile::import::contact_name("Ibu\u{7}Sari")
            .unwrap_err()
            .0;
        let r = c
            .post_form(
                &act("contact"),
                &[("contact_name", "Ibu\u{7}Sari"), ("csrf", &csrf)],
            )
            .await;
        assert!(r.body.contains(&reason), "{reason}");
        let future = (now() + chrono::Duration::days(5)).date_naive().to_string();
        let long_note = "n".repeat(wa_smile::case_actions::MAX_TEXT + 1);
        let r = c
            .post_form(
                &act("promise"),
                &[("date", &future), ("note", &long_note), ("csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", t.name);
        let promises = wa_smile::case_log::for_case(&t.db, s.case_a)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "promise_to_pay")
            .count();
        assert_eq!(promises, 0);
    }
}
