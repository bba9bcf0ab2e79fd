//! Webhook parsing against Meta-shaped fixtures, and a property test that no
//! body, however odd, makes the parser panic.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use wa_smile::conversation::{intent_for_button, Intent};
use wa_smile::outbox::MessageStatus;
use wa_smile::webhook::{
    events, parse, parse_events, sign, verify_signature, MessageKind, SignatureError, WebhookEvent,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/whatsapp/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn only_event(name: &str) -> WebhookEvent {
    let events = parse_events(&fixture(name)).expect("fixture parses");
    assert_eq!(events.len(), 1, "{name}: {events:?}");
    events.into_iter().next().unwrap()
}

const KNOWN_VECTOR: &str =
    "sha256=45d2e6edaee15c8987f1f3b2226a2d1e567badfc9b54edd5850553b3831c0ad9";

#[test]
fn signature_matches_the_documented_vector_over_the_exact_bytes() {
    let body = fixture("webhook-text.json");
    assert_eq!(
        verify_signature(b"test-app-secret", &body, Some(KNOWN_VECTOR)),
        Ok(())
    );
    assert_eq!(sign(b"test-app-secret", &body), KNOWN_VECTOR);
    let upper = KNOWN_VECTOR.replace("sha256=", "SHA256=").to_uppercase();
    assert_eq!(
        verify_signature(b"test-app-secret", &body, Some(&upper)),
        Ok(())
    );
}

#[test]
fn tampered_bodies_and_bad_headers_are_rejected() {
    let body = fixture("webhook-text.json");
    let secret = b"test-app-secret";
    // Re-serialising turns \ud83d\ude4f into a raw emoji: the signature no longer holds.
    let reserialised =
        serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&body).unwrap()).unwrap();
    assert_eq!(
        verify_signature(secret, &reserialised, Some(KNOWN_VECTOR)),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_signature(b"other-secret", &body, Some(KNOWN_VECTOR)),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_signature(secret, &body, None),
        Err(SignatureError::Missing)
    );
    assert_eq!(
        verify_signature(secret, &body, Some("")),
        Err(SignatureError::Missing)
    );
    for bad in [
        "45d2e6ed",
        "sha1=45d2",
        "sha256=zz",
        "sha256=45d2e6ed",
        "sha256=",
    ] {
        assert_eq!(
            verify_signature(secret, &body, Some(bad)),
            Err(SignatureError::Malformed),
            "{bad}"
        );
    }
    assert_eq!(
        verify_signature(b"", &body, Some(KNOWN_VECTOR)),
        Err(SignatureError::NoSecret)
    );
}

#[test]
fn text_message_becomes_an_inbound_event() {
    let WebhookEvent::InboundMessage(m) = only_event("webhook-text.json") else {
        panic!("not a message");
    };
    assert!(m.wamid.starts_with("wamid."));
    assert_eq!(m.from.as_deref(), Some("6281234567890"));
    assert_eq!(m.profile_name.as_deref(), Some("Budi Santoso"));
    assert_eq!(m.phone_number_id.as_deref(), Some("106540352242922"));
    assert_eq!(m.timestamp, Utc.timestamp_opt(1_795_514_400, 0).unwrap());
    assert_eq!(m.text(), Some("Baik, saya bayar besok ya 🙏"));
    assert_eq!(m.context_id, None);
    let c =
        wa_smile::conversation::classify(m.text().unwrap(), m.timestamp, chrono_tz::Asia::Jakarta);
    assert_eq!(c.intent, Intent::PromiseToPay);
}

#[test]
fn template_quick_reply_carries_its_payload_and_context() {
    let WebhookEvent::InboundMessage(m) = only_event("webhook-template-quick-reply.json") else {
        panic!("not a message");
    };
    assert!(matches!(m.kind, MessageKind::Button { .. }));
    assert_eq!(m.payload(), Some("PAID:INV-2026-0042"));
    assert_eq!(m.text(), Some("Sudah bayar"));
    assert!(m
        .context_id
        .as_deref()
        .is_some_and(|c| c.starts_with("wamid.")));
    assert_eq!(
        intent_for_button(m.payload().unwrap()),
        Some((Intent::AlreadyPaid, None))
    );
}

#[test]
fn interactive_button_reply_is_parsed() {
    let WebhookEvent::InboundMessage(m) = only_event("webhook-button-reply.json") else {
        panic!("not a message");
    };
    assert_eq!(
        m.kind,
        MessageKind::ButtonReply {
            id: Some("pay_now:INV-2026-0042".into()),
            title: Some("Bayar sekarang".into())
        }
    );
    assert_eq!(m.payload(), Some("pay_now:INV-2026-0042"));
}

#[test]
fn statuses_carry_callback_data_and_errors() {
    for (name, want) in [
        ("webhook-status-sent.json", Some(MessageStatus::Sent)),
        (
            "webhook-status-delivered.json",
            Some(MessageStatus::Delivered),
        ),
        ("webhook-status-read.json", Some(MessageStatus::Read)),
        ("webhook-status-failed.json", Some(MessageStatus::Failed)),
    ] {
        let WebhookEvent::Status(s) = only_event(name) else {
            panic!("{name}: not a status");
        };
        assert_eq!(s.status, want, "{name}");
        assert_eq!(s.recipient.as_deref(), Some("6281234567890"));
        assert!(s
            .callback_data
            .as_deref()
            .is_some_and(|c| c.starts_with("reminder:")));
        assert!(s.wamid.starts_with("wamid."));
        if want == Some(MessageStatus::Failed) {
            let e = s.error.expect("failed status has an error");
            assert_eq!(e.code, Some(131_026));
            assert_eq!(e.title.as_deref(), Some("Message undeliverable"));
            assert_eq!(
                e.error_data.and_then(|d| d.details).as_deref(),
                Some("Message Undeliverable.")
            );
        } else {
            assert!(s.error.is_none());
        }
    }
}

#[test]
fn batches_are_flattened_across_entries_and_changes() {
    let body = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "1", "changes": [
                {"field": "messages", "value": {
                    "metadata": {"phone_number_id": "P"},
                    "messages": [
                        {"from": "6281111111111", "id": "wamid.A", "timestamp": "1795514400", "type": "text", "text": {"body": "stop"}},
                        {"from": "6281111111111", "id": "wamid.B", "timestamp": 1795514401, "type": "sticker", "sticker": {"id": "m1", "mime_type": "image/webp"}}
                    ],
                    "statuses": [{"id": "wamid.C", "status": "deleted", "timestamp": "1795514402", "recipient_id": "6281111111111"}]
                }},
                {"field": "account_update", "value": {"event": "X"}}
            ]},
            {"id": "2", "changes": [
                {"field": "messages", "value": {
                    "errors": [{"code": 131000, "title": "Something went wrong"}],
                    "messages": [
                        {"from": "6282222222222", "id": "wamid.D", "timestamp": "1795514403", "type": "interactive",
                         "interactive": {"type": "list_reply", "list_reply": {"id": "row-1", "title": "Rincian", "description": "d"}}},
                        {"from": "6282222222222", "id": "wamid.E", "timestamp": "1795514404", "type": "unsupported",
                         "errors": [{"code": 131051, "title": "Message type unknown", "error_data": {"details": "x"}}]},
                        {"from": "6282222222222", "id": "wamid.F", "timestamp": "1795514405", "type": "hologram", "hologram": {}},
                        {"from": "6282222222222", "id": "wamid.G", "timestamp": "1795514406", "type": "location", "location": {"latitude": -6.2, "longitude": 106.8}},
                        {"from": "6282222222222", "id": "wamid.H", "timestamp": "1795514407", "type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "👍"}},
                        {"from": "6282222222222", "id": "wamid.I", "timestamp": "1795514408", "type": "system", "system": {"body": "changed", "new_wa_id": "6283333333333", "type": "user_changed_number"}},
                        {"id": "wamid.J", "type": "text"},
                        "garbage"
                    ]
                }}
            ]},
            42
        ]
    });
    let events = events(&parse(body.to_string().as_bytes()).unwrap());
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match e {
            WebhookEvent::InboundMessage(m) => {
                format!("msg {} {:?}", m.wamid, std::mem::discriminant(&m.kind))
            }
            WebhookEvent::Status(s) => format!(
                "status {} {}",
                s.wamid,
                s.status.map_or("unknown", |st| st.as_str())
            ),
            WebhookEvent::Error { error, .. } => format!("error {:?}", error.code),
            WebhookEvent::OtherField { field } => format!("field {field:?}"),
            WebhookEvent::Invalid { what, .. } => format!("invalid {what}"),
        })
        .collect();
    assert_eq!(events.len(), 14, "{kinds:#?}");
    let msg = |id: &str| {
        events.iter().find_map(|e| match e {
            WebhookEvent::InboundMessage(m) if m.wamid == id => Some(m.clone()),
            _ => None,
        })
    };
    assert_eq!(msg("wamid.A").unwrap().text(), Some("stop"));
    assert_eq!(
        msg("wamid.A").unwrap().phone_number_id.as_deref(),
        Some("P")
    );
    assert!(matches!(
        msg("wamid.B").unwrap().kind,
        MessageKind::Sticker(_)
    ));
    assert!(matches!(
        msg("wamid.D").unwrap().kind,
        MessageKind::ListReply { .. }
    ));
    assert_eq!(msg("wamid.D").unwrap().payload(), Some("row-1"));
    let MessageKind::Unsupported { errors } = msg("wamid.E").unwrap().kind else {
        panic!("not unsupported");
    };
    assert_eq!(errors[0].code, Some(131_051));
    assert_eq!(
        msg("wamid.F").unwrap().kind,
        MessageKind::Other {
            type_name: Some("hologram".into())
        }
    );
    assert!(matches!(
        msg("wamid.G").unwrap().kind,
        MessageKind::Location(_)
    ));
    assert!(matches!(
        msg("wamid.H").unwrap().kind,
        MessageKind::Reaction { .. }
    ));
    assert!(matches!(
        msg("wamid.I").unwrap().kind,
        MessageKind::System(_)
    ));
    assert!(kinds.contains(&"status wamid.C unknown".to_owned()));
    assert!(kinds.contains(&"error Some(131000)".to_owned()));
    assert!(kinds.contains(&"field Some(\"account_update\")".to_owned()));
    // wamid.J has no timestamp, "garbage" is no object, 42 is no entry.
    assert_eq!(
        kinds.iter().filter(|k| k.starts_with("invalid")).count(),
        3,
        "{kinds:#?}"
    );
}

#[test]
fn username_only_users_keep_their_user_id() {
    let body = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "contacts": [{"wa_id": "", "user_id": "ID.1234567890", "profile": {"name": "Sari"}}],
            "messages": [{"from": "", "id": "wamid.U", "timestamp": "1795514400", "type": "text", "text": {"body": "ok"}}],
            "statuses": [{"id": "wamid.S", "status": "read", "timestamp": "1795514400", "recipient_id": "", "recipient_user_id": "ID.1234567890"}]
        }}]}]
    });
    let events = parse_events(body.to_string().as_bytes()).unwrap();
    let WebhookEvent::InboundMessage(m) = &events[0] else {
        panic!("not a message")
    };
    assert_eq!(m.from, None);
    assert_eq!(m.user_id.as_deref(), Some("ID.1234567890"));
    assert_eq!(m.profile_name.as_deref(), Some("Sari"));
    let WebhookEvent::Status(s) = &events[1] else {
        panic!("not a status")
    };
    assert_eq!(s.recipient, None);
    assert_eq!(s.recipient_user_id.as_deref(), Some("ID.1234567890"));
}

#[test]
fn non_json_and_non_object_bodies_are_errors() {
    assert!(parse(b"not json").is_err());
    assert!(parse(b"[1,2]").is_err());
    assert!(parse(b"").is_err());
    assert_eq!(parse_events(b"{}").unwrap(), vec![]);
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("messages"),
            Just("text"),
            Just("button"),
            Just("interactive"),
            Just("statuses"),
            Just("failed"),
            Just("1795514400"),
            Just(""),
            Just("list_reply")
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        let key = prop_oneof![
            Just("object".to_owned()),
            Just("entry".to_owned()),
            Just("changes".to_owned()),
            Just("field".to_owned()),
            Just("value".to_owned()),
            Just("messages".to_owned()),
            Just("statuses".to_owned()),
            Just("errors".to_owned()),
            Just("contacts".to_owned()),
            Just("id".to_owned()),
            Just("from".to_owned()),
            Just("timestamp".to_owned()),
            Just("type".to_owned()),
            Just("text".to_owned()),
            Just("body".to_owned()),
            Just("interactive".to_owned()),
            Just("button_reply".to_owned()),
            Just("list_reply".to_owned()),
            Just("status".to_owned()),
            Just("code".to_owned()),
            Just("error_data".to_owned()),
            Just("metadata".to_owned()),
            "[a-z_]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(key, inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_events(&bytes);
        let _ = verify_signature(b"k", &bytes, Some("sha256=00"));
    }

    #[test]
    fn arbitrary_json_never_panics(value in arb_json()) {
        let raw = serde_json::to_vec(&value).unwrap();
        match parse_events(&raw) {
            Ok(_) => prop_assert!(value.is_object()),
            Err(_) => prop_assert!(!value.is_object()),
        }
    }

    #[test]
    fn arbitrary_envelopes_never_panic(messages in prop::collection::vec(arb_json(), 0..4),
                                       statuses in prop::collection::vec(arb_json(), 0..4)) {
        let body = serde_json::json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
                "messages": messages, "statuses": statuses
            }}]}]
        });
        let events = parse_events(body.to_string().as_bytes()).unwrap();
        prop_assert_eq!(events.len(), messages.len() + statuses.len());
    }
}
