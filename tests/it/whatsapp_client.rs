//! The WhatsApp Cloud API client against wiremock standing in for
//! graph.facebook.com: the exact JSON and headers of each message kind
//! (compared with Meta-shaped fixtures), and how every failure is classified.

use secrecy::SecretString;
use serde_json::{json, Value};
use std::time::Duration;
use wa_smile::config::WhatsappConfig;
use wa_smile::domain::WaId;
use wa_smile::messages::{Catalog, MessageContext};
use wa_smile::whatsapp::{
    ErrorClass, Interactive, MessageContent, OutgoingMessage, ReplyButton, RetryAfter, SendError,
    TemplateMessage, WhatsappClient,
};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const PHONE_NUMBER_ID: &str = "106540352242922";
const TOKEN: &str = "test-access-token";
const MESSAGES_PATH: &str = "/v25.0/106540352242922/messages";

fn fixture(name: &str) -> Value {
    let text = match name {
        "send-template-request" => include_str!("../fixtures/whatsapp/send-template-request.json"),
        "send-text-request" => include_str!("../fixtures/whatsapp/send-text-request.json"),
        "send-interactive-buttons-request" => {
            include_str!("../fixtures/whatsapp/send-interactive-buttons-request.json")
        }
        "send-success-response" => include_str!("../fixtures/whatsapp/send-success-response.json"),
        "error-130429" => include_str!("../fixtures/whatsapp/error-130429.json"),
        "error-131047-sync" => include_str!("../fixtures/whatsapp/error-131047-sync.json"),
        "error-131056" => include_str!("../fixtures/whatsapp/error-131056.json"),
        "error-132000" => include_str!("../fixtures/whatsapp/error-132000.json"),
        "error-132001" => include_str!("../fixtures/whatsapp/error-132001.json"),
        "error-190" => include_str!("../fixtures/whatsapp/error-190.json"),
        "error-1-api-unknown" => include_str!("../fixtures/whatsapp/error-1-api-unknown.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).expect("fixture is JSON")
}

/// A Meta error body in the fixtures' shape, for codes without a fixture.
fn meta_error(code: i64, message: &str) -> Value {
    json!({
        "error": {
            "message": format!("(#{code}) {message}"),
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": message},
            "fbtrace_id": "Ftest"
        }
    })
}

fn config(server: &MockServer) -> WhatsappConfig {
    WhatsappConfig {
        api_base: server.uri(),
        api_version: "v25.0".into(),
        phone_number_id: PHONE_NUMBER_ID.into(),
        access_token: SecretString::from(TOKEN),
        app_secret: SecretString::from(""),
        verify_token: SecretString::from(""),
        messages_per_second: 80,
        daily_unique_recipients: 2000,
        template_language: "id".into(),
        waba_id: String::new(),
        unknown_outcome_grace_secs: 600,
        worker_heartbeat_timeout_secs: 60,
    }
}

fn client(server: &MockServer) -> WhatsappClient {
    WhatsappClient::new(&config(server), Duration::from_secs(2)).unwrap()
}

fn budi() -> WaId {
    WaId::parse("+6281234567890").unwrap()
}

fn text_message() -> OutgoingMessage {
    OutgoingMessage::new(
        &budi(),
        MessageContent::text(
            "Terima kasih, Pak Budi. Kami catat janji bayar Anda untuk besok (25 Nov).",
        ),
    )
    .with_callback_data("reply:INV-2026-0042")
}

/// Answers every send with `response`; the test then inspects what arrived.
async fn respond_with(server: &MockServer, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(response)
        .mount(server)
        .await;
}

async fn accept_all(server: &MockServer) {
    respond_with(
        server,
        ResponseTemplate::new(200).set_body_json(fixture("send-success-response")),
    )
    .await;
}

async fn only_request(server: &MockServer) -> Request {
    let mut received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 1, "expected exactly one request");
    received.remove(0)
}

fn body_of(request: &Request) -> Value {
    serde_json::from_slice(&request.body).expect("request body is JSON")
}

async fn failure(server: &MockServer, response: ResponseTemplate) -> SendError {
    respond_with(server, response).await;
    client(server)
        .send(&text_message())
        .await
        .expect_err("the send should fail")
}

#[tokio::test]
async fn template_message_is_posted_exactly_as_meta_documents_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("send-success-response")))
        .expect(1)
        .mount(&server)
        .await;
    let expected = fixture("send-template-request");
    let template: TemplateMessage = serde_json::from_value(expected["template"].clone()).unwrap();
    let msg = OutgoingMessage::new(&budi(), MessageContent::template(template))
        .with_callback_data("reminder:8f3a2c10-7b1e-4d2a-9c55-0e6b1d2f4a91:attempt:1");

    let receipt = client(&server).send(&msg).await.unwrap();

    assert_eq!(body_of(&only_request(&server).await), expected);
    assert_eq!(
        receipt.message_id,
        "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABEYEjdDMkU5QTQxQjA1RDNGNjhFMQA="
    );
    assert_eq!(receipt.wa_id.as_deref(), Some("6281234567890"));
    assert_eq!(receipt.message_status, None);
}

#[tokio::test]
async fn text_message_is_posted_exactly_as_meta_documents_it() {
    let server = MockServer::start().await;
    accept_all(&server).await;

    client(&server).send(&text_message()).await.unwrap();

    let request = only_request(&server).await;
    assert_eq!(body_of(&request), fixture("send-text-request"));
    assert_eq!(
        request.headers.get("authorization").unwrap(),
        &format!("Bearer {TOKEN}")
    );
    assert_eq!(
        request.headers.get("content-type").unwrap(),
        "application/json"
    );
}

#[tokio::test]
async fn interactive_reply_buttons_are_posted_exactly_as_meta_documents_them() {
    let server = MockServer::start().await;
    accept_all(&server).await;
    let interactive = Interactive::reply_buttons(
        "Halo Pak Budi, tagihan Rp1.250.000 jatuh tempo 27 Nov 2026. Pilih salah satu:",
        vec![
            ReplyButton::new("pay_now:INV-2026-0042", "Bayar sekarang"),
            ReplyButton::new("paid:INV-2026-0042", "Sudah bayar"),
            ReplyButton::new("relief:INV-2026-0042", "Minta keringanan"),
        ],
    )
    .with_header("Tagihan INV-2026-0042")
    .with_footer("Balas STOP untuk berhenti");
    let msg = OutgoingMessage::new(&budi(), MessageContent::interactive(interactive));

    client(&server).send(&msg).await.unwrap();

    assert_eq!(
        body_of(&only_request(&server).await),
        fixture("send-interactive-buttons-request")
    );
}

#[tokio::test]
async fn a_reply_carries_the_context_message_id() {
    let server = MockServer::start().await;
    accept_all(&server).await;
    let msg = text_message().in_reply_to("wamid.INBOUND");

    client(&server).send(&msg).await.unwrap();

    let body = body_of(&only_request(&server).await);
    assert_eq!(body["context"], json!({"message_id": "wamid.INBOUND"}));
    assert_eq!(body["biz_opaque_callback_data"], "reply:INV-2026-0042");
}

#[tokio::test]
async fn a_reminder_from_the_catalog_goes_out_as_its_approved_template() {
    let server = MockServer::start().await;
    accept_all(&server).await;
    let catalog = Catalog::load().unwrap();
    let template = catalog
        .whatsapp_template("reminder_3", &MessageContext::sample(), "id")
        .unwrap();
    let msg = OutgoingMessage::new(&budi(), MessageContent::template(template))
        .with_callback_data("outbox:981");

    client(&server).send(&msg).await.unwrap();

    let body = body_of(&only_request(&server).await);
    assert_eq!(body["type"], "template");
    assert_eq!(body["biz_opaque_callback_data"], "outbox:981");
    let template = &body["template"];
    assert_eq!(template["name"], "wasmile_pengingat_iuran_3");
    assert_eq!(
        template["language"],
        json!({"policy": "deterministic", "code": "id"})
    );
    let components = template["components"].as_array().unwrap();
    assert_eq!(components[0]["type"], "body");
    assert_eq!(
        components[0]["parameters"][6],
        json!({"type": "text", "text": "Rp755.000 (perkiraan)"})
    );
    assert_eq!(
        components[3],
        json!({
            "type": "button",
            "sub_type": "quick_reply",
            "index": "2",
            "parameters": [{"type": "payload", "payload": "PAID:42"}]
        })
    );
}

#[tokio::test]
async fn paced_template_reports_its_message_status_and_unknown_fields_are_ignored() {
    let server = MockServer::start().await;
    let mut response = fixture("send-success-response");
    response["messages"][0]["message_status"] = json!("held_for_quality_assessment");
    response["something_new"] = json!({"from": "v27"});
    respond_with(&server, ResponseTemplate::new(200).set_body_json(response)).await;

    let receipt = client(&server).send(&text_message()).await.unwrap();

    assert_eq!(
        receipt.message_status.as_deref(),
        Some("held_for_quality_assessment")
    );
}

#[tokio::test]
async fn throughput_limit_130429_is_retryable() {
    let server = MockServer::start().await;
    let err = failure(
        &server,
        ResponseTemplate::new(400).set_body_json(fixture("error-130429")),
    )
    .await;
    assert_eq!(err.meta_code(), Some(130429));
    assert_eq!(
        err.class(),
        ErrorClass::Retryable {
            retry_after: RetryAfter::Backoff
        }
    );
}

#[tokio::test]
async fn pair_rate_limit_131056_asks_for_four_to_the_n_seconds() {
    let server = MockServer::start().await;
    let err = failure(
        &server,
        ResponseTemplate::new(400).set_body_json(fixture("error-131056")),
    )
    .await;
    let ErrorClass::Retryable { retry_after } = err.class() else {
        panic!("131056 must be retryable: {err}");
    };
    assert_eq!(retry_after, RetryAfter::PairRateLimit);
    assert_eq!(retry_after.delay(2), Some(Duration::from_secs(16)));
}

#[tokio::test]
async fn service_and_call_limit_codes_are_retryable() {
    for code in [4, 80007, 2, 131000, 131016, 133004, 131057] {
        let server = MockServer::start().await;
        let err = failure(
            &server,
            ResponseTemplate::new(400).set_body_json(meta_error(code, "Service unavailable")),
        )
        .await;
        assert!(
            matches!(err.class(), ErrorClass::Retryable { .. }),
            "{code}: {err}"
        );
    }
}

/// Meta's code 1 ("API Unknown", usually with HTTP 500) is a server-side
/// hiccup: its documented remedy is to wait and retry, not to fail the
/// message and hand the case to an officer.
#[tokio::test]
async fn a_500_with_api_unknown_code_1_is_retryable() {
    let server = MockServer::start().await;
    let err = failure(
        &server,
        ResponseTemplate::new(500).set_body_json(fixture("error-1-api-unknown")),
    )
    .await;
    assert_eq!(err.meta_code(), Some(1), "{err}");
    assert_eq!(
        err.class(),
        ErrorClass::Retryable {
            retry_after: RetryAfter::Backoff
        },
        "{err}"
    );
}

#[tokio::test]
async fn outside_the_24_hour_window_131047_is_permanent_and_says_so() {
    let server = MockServer::start().await;
    let err = failure(
        &server,
        ResponseTemplate::new(400).set_body_json(fixture("error-131047-sync")),
    )
    .await;
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(err.is_outside_window());
    assert!(err.to_string().contains("B7hT2yUiOp3aSdF5gHjK8lZ"), "{err}");
}

#[tokio::test]
async fn template_problems_132000_and_132001_are_permanent() {
    for name in ["error-132000", "error-132001"] {
        let server = MockServer::start().await;
        let err = failure(
            &server,
            ResponseTemplate::new(400).set_body_json(fixture(name)),
        )
        .await;
        assert_eq!(err.class(), ErrorClass::Permanent, "{name}");
        let SendError::Api { error, .. } = &err else {
            panic!("{name}: {err}");
        };
        assert!(
            error.details().unwrap().contains("param")
                || error.details().unwrap().contains("template")
        );
    }
}

#[tokio::test]
async fn undeliverable_invalid_parameter_and_other_permanent_codes_are_permanent() {
    for code in [131026, 131049, 131051, 132015, 132016, 100, 131008, 131009] {
        let server = MockServer::start().await;
        let err = failure(
            &server,
            ResponseTemplate::new(400).set_body_json(meta_error(code, "Bad request")),
        )
        .await;
        assert_eq!(err.class(), ErrorClass::Permanent, "{code}");
    }
}

#[tokio::test]
async fn expired_token_190_raises_an_operator_alert_class() {
    let server = MockServer::start().await;
    let err = failure(
        &server,
        ResponseTemplate::new(401).set_body_json(fixture("error-190")),
    )
    .await;
    assert_eq!(err.class(), ErrorClass::AuthExpired);
    assert!(!err.to_string().contains(TOKEN));
}

#[tokio::test]
async fn restricted_account_368_or_131031_pauses_all_sending() {
    for code in [368, 131031] {
        let server = MockServer::start().await;
        let err = failure(
            &server,
            ResponseTemplate::new(403).set_body_json(meta_error(code, "Account restricted")),
        )
        .await;
        assert_eq!(err.class(), ErrorClass::AccountRestricted, "{code}");
    }
}

#[tokio::test]
async fn the_error_code_decides_not_the_http_status() {
    let server = MockServer::start().await;
    let err = failure(
        &server,
        ResponseTemplate::new(500).set_body_json(fixture("error-132000")),
    )
    .await;
    assert_eq!(err.class(), ErrorClass::Permanent, "a 500 carrying 132000");

    let server = MockServer::start().await;
    let err = failure(
        &server,
        ResponseTemplate::new(400).set_body_json(fixture("error-131056")),
    )
    .await;
    assert!(matches!(err.class(), ErrorClass::Retryable { .. }));

    let server = MockServer::start().await;
    let err = failure(
        &server,
        ResponseTemplate::new(400).set_body_json(fixture("error-190")),
    )
    .await;
    assert_eq!(err.class(), ErrorClass::AuthExpired, "a 400 carrying 190");
}

#[tokio::test]
async fn a_slow_api_times_out_and_is_retryable() {
    let server = MockServer::start().await;
    respond_with(
        &server,
        ResponseTemplate::new(200)
            .set_body_json(fixture("send-success-response"))
            .set_delay(Duration::from_secs(3)),
    )
    .await;
    let client = WhatsappClient::new(&config(&server), Duration::from_millis(200)).unwrap();

    let err = client.send(&text_message()).await.unwrap_err();

    assert!(matches!(err, SendError::Timeout(_)), "{err:?}");
    assert_eq!(
        err.class(),
        ErrorClass::Retryable {
            retry_after: RetryAfter::Backoff
        }
    );
}

#[tokio::test]
async fn http_429_is_retried_later_and_the_next_attempt_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "3")
                .set_body_json(fixture("error-130429")),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    accept_all(&server).await;
    let client = client(&server);

    let err = client.send(&text_message()).await.unwrap_err();
    assert_eq!(
        err.class(),
        ErrorClass::Retryable {
            retry_after: RetryAfter::Exactly(Duration::from_secs(3))
        }
    );
    let receipt = client.send(&text_message()).await.unwrap();
    assert!(receipt.message_id.starts_with("wamid."));
}

#[tokio::test]
async fn http_429_without_a_body_is_retryable() {
    let server = MockServer::start().await;
    let err = failure(&server, ResponseTemplate::new(429)).await;
    assert!(
        matches!(err, SendError::Http { status: 429, .. }),
        "{err:?}"
    );
    assert!(matches!(err.class(), ErrorClass::Retryable { .. }));
}

#[tokio::test]
async fn a_500_with_an_html_body_is_retryable() {
    let server = MockServer::start().await;
    let err = failure(
        &server,
        ResponseTemplate::new(500).set_body_raw(
            "<html><body><h1>500 Internal Server Error</h1></body></html>",
            "text/html",
        ),
    )
    .await;
    assert!(
        matches!(err, SendError::Http { status: 500, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("Internal Server Error"), "{err}");
    assert!(matches!(err.class(), ErrorClass::Retryable { .. }));
}

#[tokio::test]
async fn an_unreachable_api_is_retryable() {
    let server = MockServer::start().await;
    let mut config = config(&server);
    // A port that was just free: nothing listens there (wiremock pools its
    // servers, so dropping one does not close its port).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    config.api_base = format!("http://127.0.0.1:{port}");

    let err = WhatsappClient::new(&config, Duration::from_secs(2))
        .unwrap()
        .send(&text_message())
        .await
        .unwrap_err();

    assert!(matches!(err, SendError::Transport(_)), "{err:?}");
    assert!(matches!(err.class(), ErrorClass::Retryable { .. }));
}

#[tokio::test]
async fn invalid_interactive_messages_are_refused_before_any_request() {
    let server = MockServer::start().await;
    accept_all(&server).await;
    let client = client(&server);
    let button = |id: &str, title: &str| ReplyButton::new(id, title);
    let cases = [
        (
            vec![
                button("a", "Satu"),
                button("b", "Dua"),
                button("c", "Tiga"),
                button("d", "Empat"),
            ],
            "1 to 3 reply buttons",
        ),
        (
            vec![button("a", "Minta keringanan iuran")],
            "1 to 20 allowed",
        ),
        (vec![button(&"x".repeat(257), "Bayar")], "1 to 256 allowed"),
        (
            vec![button("a", "Bayar"), button("a", "Sudah bayar")],
            "unique",
        ),
        (vec![], "1 to 3 reply buttons"),
    ];
    for (buttons, why) in cases {
        let msg = OutgoingMessage::new(
            &budi(),
            MessageContent::interactive(Interactive::reply_buttons("Pilih salah satu:", buttons)),
        );
        let err = client.send(&msg).await.unwrap_err();
        assert!(matches!(err, SendError::Invalid(_)), "{err:?}");
        assert!(err.to_string().contains(why), "{why}: {err}");
        assert_eq!(err.class(), ErrorClass::Permanent);
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn callback_data_over_512_characters_is_refused_before_any_request() {
    let server = MockServer::start().await;
    accept_all(&server).await;
    let msg = text_message().with_callback_data("x".repeat(513));

    let err = client(&server).send(&msg).await.unwrap_err();

    assert!(
        err.to_string().contains("biz_opaque_callback_data"),
        "{err}"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_client_never_prints_its_token() {
    let server = MockServer::start().await;
    let printed = format!("{:?}", client(&server));
    assert!(!printed.contains(TOKEN), "{printed}");
    assert!(printed.contains(MESSAGES_PATH), "{printed}");
}

/// Collects formatted log lines for one test.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_show_a_masked_number_and_no_message_content() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("send-success-response")))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    respond_with(
        &server,
        ResponseTemplate::new(400).set_body_json(fixture("error-131047-sync")),
    )
    .await;
    let client = client(&server);

    client.send(&text_message()).await.unwrap();
    client.send(&text_message()).await.unwrap_err();

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("6281******890"), "{text}");
    assert!(
        text.contains("reply:INV-2026-0042"),
        "the outbox id: {text}"
    );
    for secret in ["81234567", "Budi", "janji bayar", TOKEN] {
        assert!(!text.contains(secret), "{secret:?} in logs:\n{text}");
    }
}
