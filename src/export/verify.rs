//! `wa-smile audit verify --export FILE`: checks an export against its
//! manifest offline, then against the database.

use super::{
    format::{digest_export, FileDigest},
    header_line, produce, Cell, Consumer, ExportFormat, ExportKind, Hashing, Manifest,
};
use crate::domain::Policy;
use crate::store::Db;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The outcome of checking one export. `problems` is empty when the export
/// is intact and matches the database.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportVerification {
    pub kind: Option<ExportKind>,
    pub rows_in_file: u64,
    pub rows_in_database: u64,
    pub problems: Vec<String>,
}

impl ExportVerification {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Compares re-derived rows with the file's rows (by digest), in order.
struct Compare {
    kind: ExportKind,
    file: FileDigest,
    path: PathBuf,
    at: usize,
    first_difference: Option<String>,
}

impl Consumer for Compare {
    fn push(&mut self, cells: &[Cell]) -> Result<()> {
        let i = self.at;
        self.at += 1;
        if self.first_difference.is_some() {
            return Ok(());
        }
        let canon: Vec<String> = cells.iter().map(Cell::canonical).collect();
        let key = canon.first().cloned().unwrap_or_default();
        let first_col = self.kind.columns()[0].name;
        let digest: [u8; 32] = Sha256::digest(super::canonical_line(&canon)).into();
        match self.file.row_digests.get(i) {
            None => {
                self.first_difference = Some(format!(
                    "the database has a row the export lacks ({first_col} {key}, after the export's last row {i})"
                ));
            }
            Some(d) if *d != digest => {
                let fkey = &self.file.keys[i];
                if *fkey != key {
                    self.first_difference = Some(format!(
                        "data row {} is {first_col} {fkey} in the export but {first_col} {key} in the database (a row was removed or added)",
                        i + 1
                    ));
                } else {
                    let col = self
                        .file
                        .row(&self.path, i)
                        .and_then(|f| {
                            f.iter()
                                .zip(&canon)
                                .position(|(a, b)| a != b)
                                .or((f.len() != canon.len()).then_some(f.len().min(canon.len())))
                        })
                        .map(|c| {
                            self.kind
                                .columns()
                                .get(c)
                                .map_or("(extra column)", |c| c.name)
                        })
                        .unwrap_or("(unknown)");
                    self.first_difference = Some(format!(
                        "data row {} ({first_col} {key}) differs from the database in column `{col}`",
                        i + 1
                    ));
                }
            }
            Some(_) => {}
        }
        Ok(())
    }
}

/// Checks `file` (CSV or XLSX) against its manifest — `manifest_path`, else
/// the CSV's `FILE.manifest.json` sidecar or the XLSX's `Manifest` sheet —
/// then re-derives the rows from the database for the manifest's filters and
/// compares, and checks that the manifest's audit head is still in the chain.
pub async fn verify_export(
    db: &Db,
    file: &Path,
    manifest_path: Option<&Path>,
    policy: &Policy,
) -> Result<ExportVerification> {
    let given: Option<Manifest> = match manifest_path {
        Some(p) => Some(
            serde_json::from_slice(
                &std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
            )
            .with_context(|| format!("{} is not an export manifest", p.display()))?,
        ),
        None => None,
    };
    let read = digest_export(file, given.as_ref().map(|m| m.kind))?;
    let mut v = ExportVerification {
        kind: None,
        rows_in_file: read.row_digests.len() as u64,
        rows_in_database: 0,
        problems: Vec::new(),
    };
    let Some(m) = given.or(read.manifest.clone()) else {
        v.problems.push(format!(
            "no manifest for {} (expected {} or a Manifest sheet)",
            file.display(),
            super::sidecar_path(file).display()
        ));
        return Ok(v);
    };
    v.kind = Some(m.kind);
    // Offline: the file against its manifest.
    if read.header != header_line(m.kind) {
        v.problems
            .push("the header row differs from the export's columns".to_owned());
    }
    if read.format == ExportFormat::Csv {
        if let Some(expected) = &m.file_sha256 {
            if super::file_sha256(file)? != *expected {
                v.problems.push(
                    "the file's SHA-256 differs from the manifest's file_sha256 (the file was changed)"
                        .to_owned(),
                );
            }
        }
    }
    if v.rows_in_file != m.row_count {
        v.problems.push(format!(
            "the export has {} data row(s) but its manifest says {}",
            v.rows_in_file, m.row_count
        ));
    }
    if read.data_sha256 != m.data_sha256 {
        v.problems.push(
            "the data's SHA-256 differs from the manifest's data_sha256 (rows were changed, added or removed)"
                .to_owned(),
        );
    }
    // Against the database: the same filters give the same rows.
    let mut cmp = Hashing::new(
        Compare {
            kind: m.kind,
            file: read,
            path: file.to_path_buf(),
            at: 0,
            first_difference: None,
        },
        m.kind,
        None,
    );
    produce(db, &m.filters, policy, &mut cmp, &mut tokio::io::sink()).await?;
    v.rows_in_database = cmp.rows;
    if cmp.digest() != m.data_sha256 {
        v.problems.push(
            "the rows re-derived from the database do not match the manifest's data_sha256"
                .to_owned(),
        );
    }
    if let Some(d) = &cmp.inner.first_difference {
        v.problems.push(d.clone());
    } else if cmp.rows < v.rows_in_file {
        v.problems.push(format!(
            "the export has {} row(s) the database does not (after row {})",
            v.rows_in_file - cmp.rows,
            cmp.rows
        ));
    }
    // The chain head recorded at export time must still be in the chain.
    if m.audit_head_seq > 0 {
        let hash: Option<String> = db
            .query("SELECT hash FROM audit_log WHERE seq = $1")
            .bind(m.audit_head_seq)
            .fetch_optional_scalar(db)
            .await?;
        match hash {
            None => v.problems.push(format!(
                "the audit chain no longer has row {} (the manifest's head)",
                m.audit_head_seq
            )),
            Some(h) if h != m.audit_head_hash => v.problems.push(format!(
                "audit row {} no longer has the hash the manifest recorded",
                m.audit_head_seq
            )),
            Some(_) => {}
        }
    }
    Ok(v)
}
