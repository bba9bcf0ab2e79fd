//! The labelled dev set of employer replies, as received on Tuesday
//! 3 March 2026 at 10:15 WIB: intents at least 95% right, every date right.

use chrono::{DateTime, NaiveDate, Utc};
use wa_smile::conversation::{classify, Intent};

struct Row {
    text: String,
    intent: Intent,
    date: Option<(NaiveDate, NaiveDate)>,
}

fn rows() -> Vec<Row> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/replies-dev.csv");
    let mut reader = csv::Reader::from_path(path).expect("dev set is readable");
    reader
        .records()
        .map(|r| {
            let r = r.expect("well-formed row");
            let date = match &r[2] {
                "" => None,
                s => {
                    let (from, to) = s.split_once("..").unwrap_or((s, s));
                    Some((from.parse().unwrap(), to.parse().unwrap()))
                }
            };
            Row {
                text: r[0].to_owned(),
                intent: r[1].parse().expect("a contract intent"),
                date,
            }
        })
        .collect()
}

fn received_at() -> DateTime<Utc> {
    // 10:15 WIB is 03:15 UTC.
    "2026-03-03T03:15:00Z".parse().unwrap()
}

#[test]
fn dev_set_intents_are_at_least_95_percent_right_and_every_date_is_right() {
    let rows = rows();
    assert!(rows.len() >= 80, "the dev set has {} rows", rows.len());
    let mut intent_misses = Vec::new();
    let mut date_misses = Vec::new();
    for row in &rows {
        let got = classify(&row.text, received_at(), chrono_tz::Asia::Jakarta);
        if got.intent != row.intent {
            intent_misses.push(format!(
                "{:?}: want {}, got {}",
                row.text, row.intent, got.intent
            ));
        }
        if let Some((from, to)) = row.date {
            let ok = got.promised_date.is_some_and(|d| from <= d && d <= to);
            if !ok {
                date_misses.push(format!(
                    "{:?}: want {from}..{to}, got {:?}",
                    row.text, got.promised_date
                ));
            }
        } else if row.intent == Intent::PromiseToPay && got.promised_date.is_some() {
            date_misses.push(format!(
                "{:?}: want no date, got {:?}",
                row.text, got.promised_date
            ));
        }
    }
    for m in intent_misses.iter().chain(&date_misses) {
        println!("miss: {m}");
    }
    let right = rows.len() - intent_misses.len();
    let accuracy = right as f64 / rows.len() as f64;
    println!(
        "intents right: {right}/{} ({:.1}%)",
        rows.len(),
        accuracy * 100.0
    );
    assert!(accuracy >= 0.95, "intent accuracy {accuracy:.3} below 0.95");
    assert!(date_misses.is_empty(), "date misses: {date_misses:#?}");
}

#[test]
fn classification_serialises_as_the_cli_prints_it() {
    let c = classify(
        "besok kami transfer pak",
        received_at(),
        chrono_tz::Asia::Jakarta,
    );
    let v = serde_json::to_value(c).unwrap();
    let mut keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["confidence", "intent", "promised_date"]);
    assert_eq!(v["intent"], "promise_to_pay");
    assert_eq!(v["promised_date"], "2026-03-04");
    assert!((0.0..=1.0).contains(&v["confidence"].as_f64().unwrap()));
    let c = classify("ok", received_at(), chrono_tz::Asia::Jakarta);
    let v = serde_json::to_value(c).unwrap();
    assert_eq!(v["intent"], "acknowledgement");
    assert_eq!(v["promised_date"], serde_json::Value::Null);
}

#[test]
fn dev_set_survives_shouting_courtesies_and_stray_punctuation() {
    let rows = rows();
    let mut misses = Vec::new();
    let mut total = 0;
    for row in &rows {
        let variants = [
            row.text.to_uppercase(),
            format!("{} pak", row.text),
            format!("Mohon maaf, {}", row.text),
            format!("{}..", row.text.replace(' ', "  ")),
            format!("Selamat pagi bu, {}", row.text),
        ];
        for v in variants {
            total += 1;
            let got = classify(&v, received_at(), chrono_tz::Asia::Jakarta);
            if got.intent != row.intent {
                misses.push(format!("{v:?}: want {}, got {}", row.intent, got.intent));
            }
        }
    }
    for m in &misses {
        println!("miss: {m}");
    }
    let accuracy = 1.0 - misses.len() as f64 / total as f64;
    assert!(
        accuracy >= 0.95,
        "perturbed accuracy {accuracy:.3}: {misses:#?}"
    );
}

/// The figures `wa-smile classify --eval` gives on every labelled set in the
/// repository, held to floors set from measurement (README, "Reply
/// understanding"): the dev set, the styles it lacked (shorthand, formal
/// letters, number words, English, Malay, mixed intents) and the held-out
/// set that was written before tuning and never tuned on.
#[test]
fn every_labelled_set_scores_above_its_floor() {
    use wa_smile::conversation::eval::{read_labelled, score};
    let sets = [
        ("replies-dev.csv", 0.98),
        ("replies-styles.csv", 0.97),
        ("replies-holdout.csv", 0.96),
    ];
    let mut failures = Vec::new();
    for (file, floor) in sets {
        let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
        let rows = read_labelled(std::fs::File::open(&path).unwrap())
            .unwrap_or_else(|e| panic!("{file}: {e:#?}"));
        assert!(rows.len() >= 80, "{file} has only {} rows", rows.len());
        let report = score(&rows, received_at(), chrono_tz::Asia::Jakarta);
        println!("{}", report.render(file));
        if report.accuracy < floor {
            failures.push(format!("{file}: {:.3} below {floor}", report.accuracy));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
