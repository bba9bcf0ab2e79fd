//! Scores the classifier on a labelled file (`wa-smile classify --eval`):
//! the dev set, the held-out set, or officers' corrections.
//!
//! The file is CSV with a header: `text,intent,promised_date[,received_at]`.
//! `intent` may list several acceptable intents (`already_paid|promise_to_pay`
//! for a reply that honestly says both); `promised_date` is a day or a
//! `FROM..TO` range. A row is right when the classified intent is one of the
//! acceptable ones and, for a promise, the classified date is inside the
//! labelled range — or absent when the row has none ("nanti kami bayar").

use super::{classify, Intent};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// One labelled reply.
#[derive(Debug, Clone)]
pub struct Labelled {
    /// The line in the file (the header is line 1).
    pub line: usize,
    pub text: String,
    /// Acceptable intents, the first being the labeller's main reading.
    pub intents: Vec<Intent>,
    pub date: Option<(NaiveDate, NaiveDate)>,
    pub received_at: Option<DateTime<Utc>>,
}

/// Reads a labelled file. Every bad row is reported as `line N, column C:
/// reason`; nothing is scored unless every row is good.
pub fn read_labelled<R: std::io::Read>(input: R) -> Result<Vec<Labelled>, Vec<String>> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let mut errors = Vec::new();
    match reader.headers() {
        Ok(h) => {
            let names: Vec<&str> = h.iter().map(str::trim).collect();
            if names.len() < 3 || names[..3] != ["text", "intent", "promised_date"] {
                errors.push(
                    "line 1: the header must be text,intent,promised_date[,received_at]".into(),
                );
                return Err(errors);
            }
        }
        Err(e) => return Err(vec![format!("line 1: {e}")]),
    }
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let r = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(format!("line {line}: {e}"));
                continue;
            }
        };
        if r.len() < 3 || r.len() > 4 {
            errors.push(format!(
                "line {line}: expected 3 or 4 columns, found {}",
                r.len()
            ));
            continue;
        }
        let mut bad = |column: &str, reason: String| {
            errors.push(format!("line {line}, column {column}: {reason}"));
        };
        let intents: Result<Vec<Intent>, _> = r[1]
            .split('|')
            .map(|s| s.trim().parse::<Intent>())
            .collect();
        let intents = match intents {
            Ok(v) if !v.is_empty() => v,
            Ok(_) => {
                bad("intent", "empty".into());
                continue;
            }
            Err(e) => {
                bad("intent", e.to_string());
                continue;
            }
        };
        let date = match parse_range(r[2].trim()) {
            Ok(d) => d,
            Err(e) => {
                bad("promised_date", e);
                continue;
            }
        };
        let received_at = match r.get(3).map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => match DateTime::parse_from_rfc3339(s) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(_) => {
                    bad("received_at", format!("`{s}` is not an RFC 3339 time"));
                    continue;
                }
            },
        };
        rows.push(Labelled {
            line,
            text: r[0].to_owned(),
            intents,
            date,
            received_at,
        });
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

fn parse_range(s: &str) -> Result<Option<(NaiveDate, NaiveDate)>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    let (from, to) = s.split_once("..").unwrap_or((s, s));
    let day = |d: &str| {
        d.trim()
            .parse::<NaiveDate>()
            .map_err(|_| format!("`{d}` is not a YYYY-MM-DD date"))
    };
    let (from, to) = (day(from)?, day(to)?);
    if to < from {
        return Err(format!("the range {from}..{to} ends before it starts"));
    }
    Ok(Some((from, to)))
}

/// Precision and recall of one intent over a file.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IntentScore {
    pub intent: Intent,
    /// Rows labelled with it (after resolving `a|b` labels, see [`score`]).
    pub support: usize,
    /// Rows classified as it.
    pub predicted: usize,
    /// Rows both labelled and classified as it.
    pub hits: usize,
    /// `hits / predicted`; `None` when nothing was classified as it.
    pub precision: Option<f64>,
    /// `hits / support`; `None` when nothing was labelled with it.
    pub recall: Option<f64>,
}

/// A row the classifier got wrong.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Miss {
    pub line: usize,
    pub text: String,
    pub expected: Vec<Intent>,
    pub expected_date: Option<String>,
    pub got: Intent,
    pub got_date: Option<NaiveDate>,
    pub confidence: f64,
    /// `intent` or `date`.
    pub wrong: &'static str,
}

/// What `classify --eval` prints.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub total: usize,
    pub correct: usize,
    /// `correct / total` (0 for an empty file).
    pub accuracy: f64,
    pub intents: Vec<IntentScore>,
    /// Labelled intent → classified intent → rows.
    pub confusion: BTreeMap<Intent, BTreeMap<Intent, usize>>,
    pub misses: Vec<Miss>,
}

/// Classifies every row (at its own `received_at`, else `default_at`) and
/// scores it. For the per-intent figures and the confusion matrix a row
/// labelled `a|b` counts as the label the classifier chose when that is one
/// of them, else as its first label; the date is judged in the accuracy and
/// the misses only.
pub fn score(rows: &[Labelled], default_at: DateTime<Utc>, tz: chrono_tz::Tz) -> Report {
    let mut confusion: BTreeMap<Intent, BTreeMap<Intent, usize>> = BTreeMap::new();
    let mut misses = Vec::new();
    for row in rows {
        let c = classify(&row.text, row.received_at.unwrap_or(default_at), tz);
        let intent_ok = row.intents.contains(&c.intent);
        let date_ok = c.intent != Intent::PromiseToPay
            || match (row.date, c.promised_date) {
                (Some((from, to)), Some(d)) => from <= d && d <= to,
                (None, None) => true,
                _ => false,
            };
        let expected = if intent_ok { c.intent } else { row.intents[0] };
        *confusion
            .entry(expected)
            .or_default()
            .entry(c.intent)
            .or_default() += 1;
        if !(intent_ok && date_ok) {
            misses.push(Miss {
                line: row.line,
                text: row.text.clone(),
                expected: row.intents.clone(),
                expected_date: row.date.map(|(f, t)| {
                    if f == t {
                        f.to_string()
                    } else {
                        format!("{f}..{t}")
                    }
                }),
                got: c.intent,
                got_date: c.promised_date,
                confidence: c.confidence,
                wrong: if intent_ok { "date" } else { "intent" },
            });
        }
    }
    let intents = Intent::ALL
        .into_iter()
        .filter_map(|i| {
            let support: usize = confusion.get(&i).map_or(0, |r| r.values().sum());
            let predicted: usize = confusion.values().filter_map(|r| r.get(&i)).sum();
            let hits = confusion
                .get(&i)
                .and_then(|r| r.get(&i))
                .copied()
                .unwrap_or(0);
            (support > 0 || predicted > 0).then(|| IntentScore {
                intent: i,
                support,
                predicted,
                hits,
                precision: (predicted > 0).then(|| hits as f64 / predicted as f64),
                recall: (support > 0).then(|| hits as f64 / support as f64),
            })
        })
        .collect();
    let correct = rows.len() - misses.len();
    Report {
        total: rows.len(),
        correct,
        accuracy: if rows.is_empty() {
            0.0
        } else {
            correct as f64 / rows.len() as f64
        },
        intents,
        confusion,
        misses,
    }
}

impl Report {
    /// The report as people read it: the figures, the matrix (rows
    /// labelled, columns classified, in the order of [`Intent::ALL`]), then
    /// every miss.
    pub fn render(&self, name: &str) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{name}: {} of {} right, accuracy {:.1}%",
            self.correct,
            self.total,
            self.accuracy * 100.0
        );
        let pct = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{:.1}%", v * 100.0));
        let _ = writeln!(
            out,
            "\n{:<22} {:>9} {:>9} {:>8} {:>10}",
            "intent", "precision", "recall", "labelled", "classified"
        );
        for s in &self.intents {
            let _ = writeln!(
                out,
                "{:<22} {:>9} {:>9} {:>8} {:>10}",
                s.intent.as_str(),
                pct(s.precision),
                pct(s.recall),
                s.support,
                s.predicted
            );
        }
        let used: Vec<Intent> = self.intents.iter().map(|s| s.intent).collect();
        let _ = writeln!(
            out,
            "\nconfusion (rows labelled, columns classified): {}",
            used.iter()
                .enumerate()
                .map(|(k, i)| format!("{}={}", abbrev(k), i.as_str()))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let _ = write!(out, "{:<22}", "");
        for k in 0..used.len() {
            let _ = write!(out, " {:>4}", abbrev(k));
        }
        let _ = writeln!(out);
        for (k, row) in used.iter().enumerate() {
            let cells = self.confusion.get(row);
            let _ = write!(out, "{:<22}", format!("{} {}", abbrev(k), row.as_str()));
            for col in &used {
                let n = cells.and_then(|c| c.get(col)).copied().unwrap_or(0);
                let _ = write!(
                    out,
                    " {:>4}",
                    if n == 0 { ".".into() } else { n.to_string() }
                );
            }
            let _ = writeln!(out);
        }
        if !self.misses.is_empty() {
            let _ = writeln!(out, "\nmisses:");
        }
        for m in &self.misses {
            let want: Vec<&str> = m.expected.iter().map(|i| i.as_str()).collect();
            let _ = writeln!(
                out,
                "line {}: {:?}\n  labelled {}{}, classified {}{} (confidence {:.2})",
                m.line,
                m.text,
                want.join("|"),
                m.expected_date
                    .as_ref()
                    .map(|d| format!(" {d}"))
                    .unwrap_or_default(),
                m.got.as_str(),
                m.got_date.map(|d| format!(" {d}")).unwrap_or_default(),
                m.confidence
            );
        }
        out
    }
}

fn abbrev(k: usize) -> String {
    format!("c{k}")
}

impl PartialOrd for Intent {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Intent {
    /// The contract's order ([`Intent::ALL`]), so reports list intents as
    /// the contract does.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let pos = |i: &Intent| Intent::ALL.iter().position(|x| x == i);
        pos(self).cmp(&pos(other))
    }
}
