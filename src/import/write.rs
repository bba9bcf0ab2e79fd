//! Upserts by natural key: rows are compared with what is stored, so the
//! counts say what really changed and re-importing a file writes nothing.

use super::{BillRow, Counts, EmployerRow};
use crate::audit::AuditEntry;
use crate::domain::{Money, Npp, Period, WaId};
use crate::ledger;
use crate::store::{list_placeholders, rows_per_statement, values_placeholders, Backend, Tx, Zone};
use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};

/// An employer as stored, to compare with its row in the file.
#[derive(sqlx::FromRow)]
struct StoredEmployer {
    npp: Npp,
    name: String,
    branch: String,
    wa_id: Option<WaId>,
    contact_name: String,
    timezone: Zone,
}

/// A bill as stored, to compare with its row in the file.
#[derive(sqlx::FromRow)]
struct StoredBill {
    employer_id: i64,
    period: Period,
    amount_minor: Money,
    due_date: NaiveDate,
    payment_code: Option<String>,
    late_fee_minor: Option<Money>,
}

fn employer_json(name: &str, branch: &str, wa_id: Option<&str>, contact: &str, tz: &str) -> Value {
    json!({"name": name, "branch": branch, "wa_id": wa_id, "contact_name": contact, "timezone": tz})
}

pub async fn upsert_employers(
    tx: &mut Tx,
    rows: &[EmployerRow],
    actor: &str,
    at: DateTime<Utc>,
) -> Result<Counts> {
    let mut counts = Counts::default();
    let sql = format!(
        "SELECT npp, name, branch, wa_id, contact_name, timezone FROM employers WHERE npp IN ({})",
        list_placeholders(rows.len(), 1)
    );
    let mut q = tx.query(&sql);
    for r in rows {
        q = q.bind(r.npp.as_str().to_owned());
    }
    let mut existing = HashMap::new();
    for r in q.fetch_all_as::<StoredEmployer>(&mut *tx).await? {
        existing.insert(
            r.npp,
            employer_json(
                &r.name,
                &r.branch,
                r.wa_id.as_ref().map(WaId::as_str),
                &r.contact_name,
                r.timezone.0.name(),
            ),
        );
    }
    let mut new = Vec::new();
    for r in rows {
        let after = employer_json(
            &r.name,
            &r.branch,
            r.wa_id.as_ref().map(|w| w.as_str()),
            &r.contact_name,
            r.timezone.name(),
        );
        let entity = format!("employer:{}", r.npp);
        match existing.get(&r.npp) {
            None => {
                tx.audit(AuditEntry::new(at, actor, "employer.insert", entity).after(after));
                new.push(r);
            }
            Some(before) if *before == after => counts.unchanged += 1,
            Some(before) => {
                counts.updated += 1;
                // A new number from SMILE is a new contact: a wrong-number
                // flag on the old one no longer applies. Opt-outs stay until
                // an officer records consent.
                let number_changed = before["wa_id"] != after["wa_id"];
                let branch_moved = before["branch"] != after["branch"];
                tx.query(
                    "UPDATE employers SET name = $1, branch = $2, wa_id = $3, contact_name = $4, timezone = $5, updated_at = $6, \
                     contact_invalid_at = CASE WHEN $7 THEN NULL ELSE contact_invalid_at END WHERE npp = $8",
                )
                .bind(r.name.clone())
                .bind(r.branch.clone())
                .bind(r.wa_id.as_ref().map(|w| w.as_str().to_owned()))
                .bind(r.contact_name.clone())
                .bind(r.timezone.name().to_owned())
                .bind(at)
                .bind(number_changed)
                .bind(r.npp.as_str().to_owned())
                .execute(&mut *tx)
                .await?;
                if branch_moved {
                    crate::case::figures::employer_moved(tx, r.npp.as_str(), &r.branch).await?;
                }
                tx.audit(
                    AuditEntry::new(at, actor, "employer.update", entity)
                        .before(before.clone())
                        .after(after),
                );
            }
        }
    }
    counts.inserted = new.len() as u64;
    insert_employers(tx, &new, at).await?;
    Ok(counts)
}

/// Inserts new employers: on SQLite as one JSON parameter (see
/// `audit::insert_sqlite` for why), on PostgreSQL as multi-row `VALUES`.
async fn insert_employers(tx: &mut Tx, new: &[&EmployerRow], at: DateTime<Utc>) -> Result<()> {
    if new.is_empty() {
        return Ok(());
    }
    if tx.backend() == Backend::Sqlite {
        let rows: Vec<Value> = new
            .iter()
            .map(|r| {
                json!([
                    r.npp.as_str(),
                    r.name,
                    r.branch,
                    r.wa_id.as_ref().map(|w| w.as_str()),
                    r.contact_name,
                    r.timezone.name()
                ])
            })
            .collect();
        tx.query(
            "INSERT INTO employers (npp, name, branch, wa_id, contact_name, timezone, created_at, updated_at) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, $2, $2 FROM json_each($1)",
        )
        .bind(Value::from(rows).to_string())
        .bind(at)
        .execute(&mut *tx)
        .await?;
        return Ok(());
    }
    for chunk in new.chunks(rows_per_statement(tx.backend(), 8)) {
        let sql = format!(
            "INSERT INTO employers (npp, name, branch, wa_id, contact_name, timezone, created_at, updated_at) VALUES {}",
            values_placeholders(chunk.len(), 8, 1)
        );
        let mut q = tx.query(&sql);
        for r in chunk {
            q = q
                .bind(r.npp.as_str().to_owned())
                .bind(r.name.clone())
                .bind(r.branch.clone())
                .bind(r.wa_id.as_ref().map(|w| w.as_str().to_owned()))
                .bind(r.contact_name.clone())
                .bind(r.timezone.name().to_owned())
                .bind(at)
                .bind(at);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

fn bill_json(amount: Money, due: NaiveDate, code: Option<&str>, late_fee: Option<Money>) -> Value {
    json!({"amount": amount, "due_date": due, "payment_code": code, "late_fee": late_fee})
}

pub async fn upsert_bills(
    tx: &mut Tx,
    rows: &[(i64, BillRow)],
    actor: &str,
    at: DateTime<Utc>,
) -> Result<Counts> {
    let mut counts = Counts::default();
    let employer_ids: Vec<i64> = rows
        .iter()
        .map(|(id, _)| *id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut existing = HashMap::new();
    for chunk in employer_ids.chunks(500) {
        let sql = format!(
            "SELECT employer_id, period, amount_minor, due_date, payment_code, late_fee_minor FROM bills WHERE employer_id IN ({})",
            list_placeholders(chunk.len(), 1)
        );
        let mut q = tx.query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all_as::<StoredBill>(&mut *tx).await? {
            existing.insert(
                (r.employer_id, r.period),
                bill_json(
                    r.amount_minor,
                    r.due_date,
                    r.payment_code.as_deref(),
                    r.late_fee_minor,
                ),
            );
        }
    }
    let mut new = Vec::new();
    for (employer_id, b) in rows {
        let after = bill_json(b.amount, b.due_date, b.payment_code.as_deref(), b.late_fee);
        let entity = format!("bill:{}:{}", b.npp, b.period);
        match existing.get(&(*employer_id, b.period)) {
            None => {
                tx.audit(AuditEntry::new(at, actor, "bill.insert", entity).after(after));
                new.push((*employer_id, b));
            }
            Some(before) if *before == after => counts.unchanged += 1,
            Some(before) => {
                counts.updated += 1;
                tx.query(
                    "UPDATE bills SET amount_minor = $1, due_date = $2, payment_code = $3, late_fee_minor = $4, updated_at = $5 \
                     WHERE employer_id = $6 AND period = $7",
                )
                .bind(b.amount.minor())
                .bind(b.due_date)
                .bind(b.payment_code.clone())
                .bind(b.late_fee.map(|m| m.minor()))
                .bind(at)
                .bind(*employer_id)
                .bind(b.period.to_string())
                .execute(&mut *tx)
                .await?;
                tx.audit(
                    AuditEntry::new(at, actor, "bill.update", entity)
                        .before(before.clone())
                        .after(after),
                );
            }
        }
    }
    counts.inserted = new.len() as u64;
    insert_bills(tx, &new, at).await?;
    // Payments may have arrived before their bill (or the amount changed):
    // settle against what was already paid.
    if counts.inserted + counts.updated > 0 {
        let with_payments = employers_with_payments(tx, &employer_ids).await?;
        ledger::settle_bills(tx, &with_payments, actor, at).await?;
        crate::case::figures::refresh(tx, &employer_ids, at).await?;
    }
    Ok(counts)
}

/// Inserts new bills, as `insert_employers` does employers.
async fn insert_bills(tx: &mut Tx, new: &[(i64, &BillRow)], at: DateTime<Utc>) -> Result<()> {
    if new.is_empty() {
        return Ok(());
    }
    if tx.backend() == Backend::Sqlite {
        let rows: Vec<Value> = new
            .iter()
            .map(|(employer_id, b)| {
                json!([
                    employer_id,
                    b.period.to_string(),
                    b.amount.minor(),
                    b.due_date.format("%F").to_string(),
                    b.payment_code,
                    b.late_fee.map(|m| m.minor())
                ])
            })
            .collect();
        tx.query(
            "INSERT INTO bills (employer_id, period, amount_minor, due_date, payment_code, late_fee_minor, created_at, updated_at) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, $2, $2 FROM json_each($1)",
        )
        .bind(Value::from(rows).to_string())
        .bind(at)
        .execute(&mut *tx)
        .await?;
        return Ok(());
    }
    for chunk in new.chunks(rows_per_statement(tx.backend(), 8)) {
        let sql = format!(
            "INSERT INTO bills (employer_id, period, amount_minor, due_date, payment_code, late_fee_minor, created_at, updated_at) VALUES {}",
            values_placeholders(chunk.len(), 8, 1)
        );
        let mut q = tx.query(&sql);
        for (employer_id, b) in chunk {
            q = q
                .bind(*employer_id)
                .bind(b.period.to_string())
                .bind(b.amount.minor())
                .bind(b.due_date)
                .bind(b.payment_code.clone())
                .bind(b.late_fee.map(|m| m.minor()))
                .bind(at)
                .bind(at);
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

async fn employers_with_payments(tx: &mut Tx, employer_ids: &[i64]) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    for chunk in employer_ids.chunks(500) {
        let sql = format!(
            "SELECT DISTINCT employer_id FROM payments WHERE employer_id IN ({})",
            list_placeholders(chunk.len(), 1)
        );
        let mut q = tx.query(&sql);
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&mut *tx).await? {
            out.push(r.first::<i64>()?);
        }
    }
    Ok(out)
}
