//! Prometheus metrics: the names in one place, and a recorder installed once
//! per process (tests build many apps in one process).

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

pub const MESSAGES_SENT: &str = "wa_smile_messages_sent_total";
pub const MESSAGES_FAILED: &str = "wa_smile_messages_failed_total";
pub const MESSAGES_RETRIED: &str = "wa_smile_messages_retried_total";
pub const MESSAGES_SKIPPED: &str = "wa_smile_messages_skipped_total";
pub const MESSAGES_DEFERRED: &str = "wa_smile_messages_deferred_total";
pub const MESSAGE_STATUSES: &str = "wa_smile_message_statuses_total";
pub const OUTBOX_DEPTH: &str = "wa_smile_outbox_depth";
pub const SCAN_DURATION: &str = "wa_smile_scan_duration_seconds";
pub const SCAN_LAST_SUCCESS: &str = "wa_smile_scan_last_success_timestamp_seconds";
pub const OUTBOX_OLDEST_DUE_AGE: &str = "wa_smile_outbox_oldest_due_age_seconds";
pub const DELIVERY_HALTED: &str = "wa_smile_delivery_halted";
pub const OPERATOR_ALERTS: &str = "wa_smile_operator_alerts_total";
pub const OUTCOME_WRITE_RETRIES: &str = "wa_smile_delivery_outcome_write_retries_total";
pub const DELIVERY_PACE: &str = "wa_smile_delivery_pace_per_second";
pub const DELIVERY_SLOTS_DROPPED: &str = "wa_smile_delivery_shared_slots_dropped_total";
pub const MESSAGES_RESENT_UNKNOWN: &str = "wa_smile_messages_resent_after_unknown_total";
pub const WORKER_RESTARTS: &str = "wa_smile_worker_restarts_total";
/// Reserved for the webhook handler: label `kind` (message, status, error…).
pub const WEBHOOKS_RECEIVED: &str = "webhooks_received_total";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed on first use. None if another global
/// recorder was installed first (metrics then go there).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(SCAN_DURATION.into()),
                    &[0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0],
                )
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full(crate::http::ops::HTTP_DURATION.into()),
                    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0],
                )
                .ok()?
                .install_recorder()
                .ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(MESSAGES_SENT, "Messages accepted by the Cloud API, by kind");
    describe_counter!(MESSAGES_FAILED, "Messages failed for good, by reason");
    describe_counter!(
        MESSAGES_RETRIED,
        "Send attempts put back for a retry, by reason"
    );
    describe_counter!(
        MESSAGES_SKIPPED,
        "Queued messages not sent at send-time re-check, by reason"
    );
    describe_counter!(
        MESSAGES_DEFERRED,
        "Messages made to wait (window, caps, tier), by reason"
    );
    describe_counter!(MESSAGE_STATUSES, "Status webhooks recorded, by status");
    describe_gauge!(OUTBOX_DEPTH, "Outbox rows by state");
    describe_gauge!(
        SCAN_LAST_SUCCESS,
        Unit::Seconds,
        "When the last overdue scan finished (Unix time)"
    );
    describe_gauge!(
        OUTBOX_OLDEST_DUE_AGE,
        Unit::Seconds,
        "How long the oldest due queued message has waited"
    );
    describe_gauge!(
        crate::templates_status::TEMPLATES_METRIC,
        "Message templates by Meta status"
    );
    describe_counter!(
        crate::meta_events::WEBHOOKS_METRIC,
        "WhatsApp webhook changes by field and outcome (signature: refused)"
    );
    describe_counter!(
        crate::http::ops::HTTP_REQUESTS,
        "HTTP requests by route, method and status"
    );
    describe_histogram!(
        crate::http::ops::HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency by route"
    );
    describe_histogram!(SCAN_DURATION, Unit::Seconds, "Overdue scan duration");
    describe_gauge!(DELIVERY_HALTED, "1 while sending is halted, by flag");
    describe_counter!(
        DELIVERY_SLOTS_DROPPED,
        "Slots of the send budget shared on PostgreSQL left unused because the sender woke too late for them"
    );
    describe_gauge!(
        DELIVERY_PACE,
        "Messages per second the pacer allows after Meta's last throughput error"
    );
    describe_counter!(
        OUTCOME_WRITE_RETRIES,
        "Delivery outcome writes retried because the database was busy or failed"
    );
    describe_counter!(
        MESSAGES_RESENT_UNKNOWN,
        "Messages queued again without knowing whether Meta took the earlier attempt (timeout, dead worker), by reason"
    );
    describe_counter!(
        WORKER_RESTARTS,
        "Background workers restarted after an error or a panic, by worker"
    );
    describe_counter!(
        OPERATOR_ALERTS,
        "Conditions an operator must act on, by kind"
    );
    describe_counter!(
        WEBHOOKS_RECEIVED,
        "WhatsApp webhook events received, by kind"
    );
    // Present at zero from the start, so dashboards and alerts see them.
    metrics::counter!(WEBHOOKS_RECEIVED, "kind" => "status").absolute(0);
    metrics::counter!(MESSAGES_SENT, "kind" => "template").absolute(0);
}

/// Records one scan's duration.
pub fn scan_finished(elapsed: std::time::Duration) {
    metrics::histogram!(SCAN_DURATION).record(elapsed.as_secs_f64());
    metrics::gauge!(SCAN_LAST_SUCCESS).set(chrono::Utc::now().timestamp() as f64);
}
