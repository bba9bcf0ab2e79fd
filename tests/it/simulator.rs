//! The built-in simulator as a Cloud API stand-in: Meta's response and
//! error shapes, failure injection, media upload and download, and the
//! phone's signed webhooks (replies, taps, a blocked number's 131026).

use serde_json::{json, Value};
use std::time::Duration;
use wa_smile::simulator::{sign, Simulator, SimulatorOptions};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &str = "test-app-secret";

async fn hook() -> MockServer {
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/webhooks/whatsapp"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    hook
}

fn options(hook: &MockServer) -> SimulatorOptions {
    SimulatorOptions {
        latency: Duration::from_millis(1),
        webhook_url: Some(format!("{}/webhooks/whatsapp", hook.uri())),
        app_secret: SECRET.into(),
        status_delays: [Duration::from_millis(20); 3],
        ..Default::default()
    }
}

fn text(to: &str) -> Value {
    json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
           "type": "text", "text": {"body": "Halo"}, "biz_opaque_callback_data": "7"})
}

async fn send(base: &str, body: &Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("{base}/v25.0/100000000000001/messages"))
        .bearer_auth("simulator-token")
        .json(body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// The webhook bodies the simulator posted, each checked for its signature.
async fn webhooks(hook: &MockServer) -> Vec<Value> {
    hook.received_requests()
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let sig = r
                .headers
                .get("x-hub-signature-256")
                .unwrap()
                .to_str()
                .unwrap();
            assert_eq!(sig, sign(SECRET, &r.body), "every webhook is signed");
            serde_json::from_slice(&r.body).unwrap()
        })
        .collect()
}

/// What `pick` takes from each webhook the simulator posted, once at
/// least `n` have arrived.
async fn webhooks_until(
    hook: &MockServer,
    n: usize,
    pick: impl Fn(&Value) -> Option<Value>,
) -> Vec<Value> {
    for _ in 0..100 {
        let all: Vec<Value> = webhooks(hook).await.iter().filter_map(&pick).collect();
        if all.len() >= n {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fewer than {n} such webhooks arrived");
}

async fn statuses_until(hook: &MockServer, n: usize) -> Vec<Value> {
    webhooks_until(hook, n, |w| {
        w["entry"][0]["changes"][0]["value"]["statuses"][0]
            .as_object()
            .cloned()
            .map(Value::Object)
    })
    .await
}

#[tokio::test]
async fn injected_failures_answer_with_metas_error_shape_for_the_chosen_share() {
    let hook = hook().await;
    let (base, sim) = Simulator::start(SimulatorOptions {
        fail_percent: 50,
        fail_code: 130429,
        ..options(&hook)
    })
    .await
    .unwrap();
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        outcomes.push(send(&base, &text("+6281234567890")).await);
    }
    let failed: Vec<&(u16, Value)> = outcomes.iter().filter(|(s, _)| *s != 200).collect();
    assert_eq!(failed.len(), 2, "{outcomes:?}");
    for (status, body) in failed {
        assert_eq!(*status, 429);
        assert_eq!(body["error"]["code"], 130429);
        assert_eq!(body["error"]["type"], "OAuthException");
        assert_eq!(body["error"]["message"], "(#130429) Rate limit hit");
        assert!(body["error"]["error_data"]["details"].is_string());
        assert!(body["error"]["fbtrace_id"].is_string());
    }
    let ok = outcomes.iter().find(|(s, _)| *s == 200).unwrap();
    assert_eq!(ok.1["contacts"][0]["wa_id"], "6281234567890");
    assert!(ok.1["messages"][0]["id"]
        .as_str()
        .unwrap()
        .starts_with("wamid."));
    assert_eq!(sim.count(), 2, "failed sends are not accepted");
}

#[tokio::test]
async fn a_failure_meta_reports_later_is_accepted_then_a_signed_failed_status() {
    let hook = hook().await;
    let (base, _sim) = Simulator::start(SimulatorOptions {
        fail_percent: 100,
        fail_code: 131026,
        ..options(&hook)
    })
    .await
    .unwrap();
    let (status, body) = send(&base, &text("6281234567890")).await;
    assert_eq!(status, 200);
    let wamid = body["messages"][0]["id"].as_str().unwrap().to_owned();
    let st = statuses_until(&hook, 1).await;
    assert_eq!(st[0]["id"], wamid.as_str());
    assert_eq!(st[0]["status"], "failed");
    assert_eq!(st[0]["biz_opaque_callback_data"], "7");
    assert_eq!(st[0]["errors"][0]["code"], 131026);
    // What the app parses it into.
    let raw = serde_json::to_vec(&webhooks(&hook).await[0]).unwrap();
    let events = wa_smile::webhook::parse_events(&raw).unwrap();
    assert!(matches!(
        &events[0],
        wa_smile::webhook::WebhookEvent::Status(s) if s.wamid == wamid
    ));
}

#[tokio::test]
async fn media_uploads_and_downloads_like_meta_with_the_bearer_token() {
    let hook = hook().await;
    let (base, _sim) = Simulator::start(options(&hook)).await.unwrap();
    let client = reqwest::Client::new();
    let png = b"\x89PNG fake receipt".to_vec();
    let mut body = b"--b0undary\r\nContent-Disposition: form-data; name=\"messaging_product\"\r\n\r\nwhatsapp\r\n--b0undary\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\nimage/png\r\n--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bukti.png\"\r\nContent-Type: image/png\r\n\r\n".to_vec();
    body.extend_from_slice(&png);
    body.extend_from_slice(b"\r\n--b0undary--\r\n");
    let res = client
        .post(format!("{base}/v25.0/100000000000001/media"))
        .bearer_auth("simulator-token")
        .header("content-type", "multipart/form-data; boundary=b0undary")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let id = res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let info: Value = client
        .get(format!("{base}/v25.0/{id}"))
        .bearer_auth("simulator-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["mime_type"], "image/png");
    assert_eq!(info["file_size"], png.len());
    let url = info["url"].as_str().unwrap();
    let anonymous = client.get(url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401, "the download needs the token");
    let file = client
        .get(url)
        .bearer_auth("simulator-token")
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.bytes().await.unwrap().to_vec(), png);
    let missing = client
        .get(format!("{base}/v25.0/123"))
        .bearer_auth("simulator-token")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn the_phone_replies_taps_and_blocks_as_meta_would_post_it() {
    let hook = hook().await;
    let (base, sim) = Simulator::start(options(&hook)).await.unwrap();
    let phone = sim.phone();
    let to = "6281234567890";
    // A reminder with quick replies, as the delivery worker sends it.
    let reminder = json!({"messaging_product": "whatsapp", "to": to, "type": "template",
    "template": {"name": "wasmile_pengingat_iuran_1", "language": {"code": "id"},
    "components": [
        {"type": "body", "parameters": (1..=8).map(|i| json!({"type": "text", "text": format!("p{i}")})).collect::<Vec<_>>()},
        {"type": "button", "sub_type": "quick_reply", "index": "1", "parameters": [{"type": "payload", "payload": "PROMISE:42"}]}
    ]}});
    let (status, sent) = send(&base, &reminder).await;
    assert_eq!(status, 200);
    let wamid = sent["messages"][0]["id"].as_str().unwrap().to_owned();
    let chat = phone.chat(to);
    assert_eq!(chat.len(), 1);
    match &chat[0].kind {
        wa_smile::simulator::ChatItemKind::Template { body, buttons, .. } => {
            assert!(body.starts_with("Yth. p1,"), "{body}");
            assert_eq!(buttons[0].title, "Janji bayar");
        }
        other => panic!("{other:?}"),
    }
    statuses_until(&hook, 3).await;

    phone.tap(to, "PROMISE").await.unwrap();
    phone.reply(to, "besok kami bayar").await.unwrap();
    let inbound: Vec<Value> = webhooks(&hook)
        .await
        .into_iter()
        .filter_map(|w| {
            w["entry"][0]["changes"][0]["value"]["messages"][0]
                .as_object()
                .cloned()
        })
        .map(Value::Object)
        .collect();
    assert_eq!(inbound.len(), 2);
    assert_eq!(inbound[0]["type"], "button");
    assert_eq!(inbound[0]["button"]["payload"], "PROMISE:42");
    assert_eq!(inbound[0]["context"]["id"], wamid.as_str());
    assert_eq!(inbound[1]["text"]["body"], "besok kami bayar");
    assert_eq!(inbound[1]["from"], to);

    // Blocked: the next send is accepted, then fails with 131026.
    phone.set_blocked(to, true);
    let (status, sent) = send(&base, &text(to)).await;
    assert_eq!(status, 200);
    let blocked = sent["messages"][0]["id"].as_str().unwrap().to_owned();
    let st = statuses_until(&hook, 4).await;
    let failed = st.iter().find(|s| s["id"] == blocked.as_str()).unwrap();
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["errors"][0]["code"], 131026);
}

/// The `message_template_status_update` events the simulator posted.
async fn template_events_until(hook: &MockServer, n: usize) -> Vec<Value> {
    webhooks_until(hook, n, |w| {
        let change = &w["entry"][0]["changes"][0];
        (change["field"] == "message_template_status_update").then(|| change["value"].clone())
    })
    .await
}

#[tokio::test]
async fn templates_are_registered_for_review_approved_by_webhook_and_can_be_paused() {
    let hook = hook().await;
    let (base, sim) = Simulator::start(options(&hook)).await.unwrap();
    let client = reqwest::Client::new();
    let url = format!("{base}/v25.0/1234567890/message_templates");
    let template = json!({
        "name": "reminder_1", "language": "id", "category": "UTILITY",
        "components": [
            {"type": "BODY", "text": "Yth. {{1}}, iuran {{2}} sebesar {{3}} belum kami terima.",
             "example": {"body_text": [["Bapak Agus", "Oktober 2026", "Rp1.500.000"]]}},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Minta link bayar"}]},
        ],
    });

    // Without the bearer token: Meta's 401.
    let res = client.post(&url).json(&template).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401);

    let res = client
        .post(&url)
        .bearer_auth("simulator-token")
        .json(&template)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["status"], "PENDING");
    assert_eq!(created["category"], "UTILITY");
    let id = created["id"].as_str().unwrap().to_owned();

    // The same name and language again is refused in Meta's error shape.
    let res = client
        .post(&url)
        .bearer_auth("simulator-token")
        .json(&template)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], 100);

    // A body whose examples do not match its parameters is refused.
    let mut bad = template.clone();
    bad["name"] = json!("reminder_2");
    bad["components"][0]["example"]["body_text"] = json!([["Bapak Agus"]]);
    let res = client
        .post(&url)
        .bearer_auth("simulator-token")
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);

    // Review ends with a signed status webhook, and the list shows it.
    let events = template_events_until(&hook, 1).await;
    assert_eq!(events[0]["event"], "APPROVED");
    assert_eq!(events[0]["message_template_id"], json!(id));
    assert_eq!(events[0]["message_template_name"], "reminder_1");
    let listed: Value = client
        .get(format!("{url}?name=reminder_1"))
        .bearer_auth("simulator-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(listed["data"][0]["status"], "APPROVED");
    assert_eq!(listed["data"][0]["language"], "id");

    // Meta pausing it for quality is announced the same way.
    let paused = sim
        .set_template_status("reminder_1", "id", "PAUSED")
        .await
        .unwrap();
    assert_eq!(paused.status, "PAUSED");
    let events = template_events_until(&hook, 2).await;
    assert_eq!(events[1]["event"], "PAUSED");
    assert_eq!(sim.templates(Some("reminder_1"))[0].status, "PAUSED");
    assert!(sim
        .set_template_status("missing", "id", "PAUSED")
        .await
        .is_none());
}
