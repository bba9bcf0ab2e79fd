//! Writing and reading the export formats.

use super::{Cell, ColType, Consumer, ExportKind, Manifest};
use anyhow::{anyhow, bail, Context, Result};
use chrono::NaiveDateTime;
use rust_xlsxwriter::{Format, Workbook, XlsxError};
use std::path::Path;

/// Flush the CSV buffer to the output past this size.
const FLUSH_BYTES: usize = 64 * 1024;
/// The data rows one worksheet can hold (the header takes one).
const XLSX_MAX_ROWS: u64 = 1_048_575;

/// CSV: UTF-8 with a BOM, RFC 4180 quoting, canonical cell texts.
pub(crate) struct CsvOut {
    w: csv::Writer<Vec<u8>>,
}

impl CsvOut {
    pub fn new(kind: ExportKind) -> Result<Self> {
        let mut buf = Vec::with_capacity(FLUSH_BYTES * 2);
        buf.extend_from_slice("\u{feff}".as_bytes());
        let mut w = csv_writer(buf);
        w.write_record(kind.columns().iter().map(|c| c.name))?;
        Ok(Self { w })
    }
}

fn csv_writer(buf: Vec<u8>) -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(buf)
}

impl Consumer for CsvOut {
    fn push(&mut self, cells: &[Cell]) -> Result<()> {
        self.w
            .write_record(cells.iter().map(Cell::canonical))
            .context("failed to encode a CSV row")
    }

    fn take_output(&mut self, force: bool) -> Option<Vec<u8>> {
        if !force && self.w.get_ref().len() < FLUSH_BYTES {
            return None;
        }
        let w = std::mem::replace(&mut self.w, csv_writer(Vec::with_capacity(FLUSH_BYTES * 2)));
        let buf = w.into_inner().ok()?;
        (!buf.is_empty()).then_some(buf)
    }
}

/// A streamed JSON array of objects keyed by column name, canonical texts
/// (empty cells are null).
pub(crate) struct JsonOut {
    names: Vec<&'static str>,
    buf: Vec<u8>,
    first: bool,
}

impl JsonOut {
    pub fn new(kind: ExportKind) -> Self {
        Self {
            names: kind.columns().iter().map(|c| c.name).collect(),
            buf: b"[".to_vec(),
            first: true,
        }
    }
}

fn json_object(names: &[&'static str], cells: &[Cell]) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (n, c) in names.iter().zip(cells) {
        let v = match c {
            Cell::Empty => serde_json::Value::Null,
            Cell::Int(i) => (*i).into(),
            other => other.canonical().into(),
        };
        m.insert((*n).to_owned(), v);
    }
    serde_json::Value::Object(m)
}

impl Consumer for JsonOut {
    fn push(&mut self, cells: &[Cell]) -> Result<()> {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
        serde_json::to_writer(&mut self.buf, &json_object(&self.names, cells))?;
        Ok(())
    }

    fn take_output(&mut self, force: bool) -> Option<Vec<u8>> {
        if force {
            self.buf.push(b']');
            return Some(std::mem::take(&mut self.buf));
        }
        (self.buf.len() >= FLUSH_BYTES).then(|| std::mem::take(&mut self.buf))
    }
}

/// Collects JSON objects (small API answers).
pub(crate) struct Collect {
    names: Vec<&'static str>,
    pub rows: Vec<serde_json::Value>,
}

impl Collect {
    pub fn new(kind: ExportKind) -> Self {
        Self {
            names: kind.columns().iter().map(|c| c.name).collect(),
            rows: Vec::new(),
        }
    }
}

impl Consumer for Collect {
    fn push(&mut self, cells: &[Cell]) -> Result<()> {
        self.rows.push(json_object(&self.names, cells));
        Ok(())
    }
}

/// XLSX: a constant-memory data worksheet (rows spill to a temporary file)
/// with typed cells, a frozen header and an autofilter, then a `Manifest`
/// sheet.
pub(crate) struct XlsxOut {
    wb: Workbook,
    kind: ExportKind,
    row: u32,
    money: Format,
    date: Format,
    datetime: Format,
    header: Format,
}

fn xlsx(e: XlsxError) -> anyhow::Error {
    anyhow!("XLSX: {e}")
}

impl XlsxOut {
    pub fn new(kind: ExportKind) -> Result<Self> {
        let mut wb = Workbook::new();
        let header = Format::new().set_bold();
        let ws = wb.add_worksheet_with_constant_memory().map_err(xlsx)?;
        ws.set_name(kind.sheet_name()).map_err(xlsx)?;
        for (i, c) in kind.columns().iter().enumerate() {
            let width = match c.ty {
                ColType::Text => 18.0,
                ColType::Int => 10.0,
                ColType::Money => 16.0,
                ColType::Date => 12.0,
                ColType::DateTime => 20.0,
            };
            ws.set_column_width(i as u16, width).map_err(xlsx)?;
        }
        // Sheet-level settings are fine to set first in constant memory.
        ws.set_freeze_panes(1, 0).map_err(xlsx)?;
        for (i, c) in kind.columns().iter().enumerate() {
            ws.write_string_with_format(0, i as u16, c.name, &header)
                .map_err(xlsx)?;
        }
        Ok(Self {
            wb,
            kind,
            row: 0,
            money: Format::new().set_num_format("\"Rp\"#,##0"),
            date: Format::new().set_num_format("yyyy-mm-dd"),
            datetime: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            header,
        })
    }

    /// Closes the data sheet (autofilter over what was written), adds the
    /// manifest sheet and writes the workbook to a temporary file.
    pub fn finish(mut self, m: &Manifest) -> Result<std::fs::File> {
        let cols = self.kind.columns().len() as u16;
        let ws = self.wb.worksheet_from_index(0).map_err(xlsx)?;
        ws.autofilter(0, 0, self.row, cols - 1).map_err(xlsx)?;
        self.keterangan()?;
        let ms = self.wb.add_worksheet();
        ms.set_name("Manifest").map_err(xlsx)?;
        ms.set_column_width(0, 20).map_err(xlsx)?;
        ms.set_column_width(1, 70).map_err(xlsx)?;
        let rows: Vec<(&str, String)> = vec![
            ("export", m.kind.as_str().to_owned()),
            ("from", m.filters.from.to_string()),
            ("to", m.filters.to.to_string()),
            ("branch", m.filters.branch.clone().unwrap_or_default()),
            ("row_count", m.row_count.to_string()),
            ("audit_head_seq", m.audit_head_seq.to_string()),
            ("audit_head_hash", m.audit_head_hash.clone()),
            ("data_sha256", m.data_sha256.clone()),
            ("generated_at", m.generated_at.to_rfc3339()),
            ("generated_by", super::neutralise(&m.generated_by)),
            ("manifest_json", serde_json::to_string(m)?),
        ];
        ms.write_string_with_format(0, 0, "key", &self.header)
            .map_err(xlsx)?;
        ms.write_string_with_format(0, 1, "value", &self.header)
            .map_err(xlsx)?;
        for (i, (k, v)) in rows.iter().enumerate() {
            ms.write_string(i as u32 + 1, 0, *k).map_err(xlsx)?;
            ms.write_string(i as u32 + 1, 1, v).map_err(xlsx)?;
        }
        let mut f = tempfile::tempfile().context("cannot create a temporary file")?;
        self.wb
            .save_to_writer(std::io::BufWriter::new(&mut f))
            .map_err(xlsx)?;
        use std::io::Seek;
        f.rewind()?;
        Ok(f)
    }
}

impl XlsxOut {
    /// The `Keterangan` sheet: each column's Indonesian heading and meaning,
    /// then the Indonesian label of every code a column holds (status,
    /// stage, event kind, intent). The data sheet keeps the machine codes,
    /// which the manifest hashes.
    fn keterangan(&mut self) -> Result<()> {
        let ks = self.wb.add_worksheet();
        ks.set_name("Keterangan").map_err(xlsx)?;
        ks.set_column_width(0, 22).map_err(xlsx)?;
        ks.set_column_width(1, 26).map_err(xlsx)?;
        ks.set_column_width(2, 80).map_err(xlsx)?;
        for (i, h) in ["Kolom", "Judul", "Keterangan"].iter().enumerate() {
            ks.write_string_with_format(0, i as u16, *h, &self.header)
                .map_err(xlsx)?;
        }
        let mut r = 1u32;
        for c in self.kind.columns() {
            let (label, meaning) = super::rows::column_label(c.name);
            ks.write_string(r, 0, c.name).map_err(xlsx)?;
            ks.write_string(r, 1, label).map_err(xlsx)?;
            ks.write_string(r, 2, meaning).map_err(xlsx)?;
            r += 1;
        }
        for (column, codes) in super::rows::code_labels(self.kind) {
            r += 1;
            ks.write_string_with_format(r, 0, format!("Kode kolom {column}"), &self.header)
                .map_err(xlsx)?;
            ks.write_string_with_format(r, 1, "Arti", &self.header)
                .map_err(xlsx)?;
            r += 1;
            for (code, label) in codes {
                ks.write_string(r, 0, code).map_err(xlsx)?;
                ks.write_string(r, 1, label).map_err(xlsx)?;
                r += 1;
            }
        }
        Ok(())
    }
}

impl Consumer for XlsxOut {
    fn push(&mut self, cells: &[Cell]) -> Result<()> {
        if u64::from(self.row) >= XLSX_MAX_ROWS {
            bail!("more than {XLSX_MAX_ROWS} rows do not fit one worksheet: export CSV or a shorter range");
        }
        self.row += 1;
        let r = self.row;
        let ws = self.wb.worksheet_from_index(0).map_err(xlsx)?;
        for (i, c) in cells.iter().enumerate() {
            let col = i as u16;
            match c {
                Cell::Empty => {}
                Cell::Text(_) => {
                    ws.write_string(r, col, c.canonical()).map_err(xlsx)?;
                }
                Cell::Int(n) => {
                    ws.write_number(r, col, *n as f64).map_err(xlsx)?;
                }
                Cell::Money(m) => {
                    // XLSX stores every number as an IEEE double, so the cell
                    // must be one: the nearest double to the exact decimal
                    // text (exact for whole rupiah up to 2^53). The canonical
                    // text the manifest hashes stays the exact decimal.
                    let v: f64 = super::money_text(*m).parse().expect("decimal text");
                    ws.write_number_with_format(r, col, v, &self.money)
                        .map_err(xlsx)?;
                }
                Cell::Date(d) => {
                    ws.write_date_with_format(r, col, d, &self.date)
                        .map_err(xlsx)?;
                }
                Cell::DateTime(t) => {
                    ws.write_datetime_with_format(r, col, t, &self.datetime)
                        .map_err(xlsx)?;
                }
            }
        }
        Ok(())
    }
}

/// An export read back: its canonical rows (header first) and the manifest
/// embedded in it (XLSX) or beside it (CSV sidecar), if found.
pub struct ReadExport {
    pub format: super::ExportFormat,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub manifest: Option<Manifest>,
}

/// Reads an export file (CSV or XLSX, by its content) into canonical rows.
/// `kind` decides the column types of an XLSX; when None it is taken from
/// the embedded manifest.
pub fn read_export(path: &Path, kind: Option<ExportKind>) -> Result<ReadExport> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.starts_with(b"PK\x03\x04") {
        read_xlsx(path, kind)
    } else {
        read_csv(&bytes, path)
    }
}

fn read_csv(bytes: &[u8], path: &Path) -> Result<ReadExport> {
    let body = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut all = Vec::new();
    for rec in r.records() {
        let rec = rec.context("the CSV is malformed")?;
        all.push(rec.iter().map(str::to_owned).collect::<Vec<_>>());
    }
    if all.is_empty() {
        bail!("{} is empty", path.display());
    }
    let header = all.remove(0);
    let side = super::sidecar_path(path);
    let manifest = match std::fs::read(&side) {
        Ok(b) => Some(
            serde_json::from_slice(&b)
                .with_context(|| format!("{} is not a manifest", side.display()))?,
        ),
        Err(_) => None,
    };
    Ok(ReadExport {
        format: super::ExportFormat::Csv,
        header,
        rows: all,
        manifest,
    })
}

fn read_xlsx(path: &Path, kind: Option<ExportKind>) -> Result<ReadExport> {
    use calamine::{open_workbook, Data, Reader, Xlsx};
    let mut wb: Xlsx<_> =
        open_workbook(path).with_context(|| format!("cannot open {}", path.display()))?;
    let manifest: Option<Manifest> = match wb.worksheet_range("Manifest") {
        Ok(range) => range
            .rows()
            .find(|r| matches!(r.first(), Some(Data::String(k)) if k == "manifest_json"))
            .and_then(|r| match r.get(1) {
                Some(Data::String(s)) => serde_json::from_str(s).ok(),
                _ => None,
            }),
        Err(_) => None,
    };
    let kind = kind
        .or(manifest.as_ref().map(|m| m.kind))
        .ok_or_else(|| anyhow!("{} has no manifest saying what it exports", path.display()))?;
    let cols = kind.columns();
    let range = wb
        .worksheet_range(kind.sheet_name())
        .with_context(|| format!("{} has no `{}` sheet", path.display(), kind.sheet_name()))?;
    let mut rows = range.rows();
    let header: Vec<String> = rows
        .next()
        .map(|r| r.iter().map(|d| d.to_string()).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for r in rows {
        let mut line = Vec::with_capacity(cols.len());
        for (i, c) in cols.iter().enumerate() {
            line.push(canonical_from_xlsx(r.get(i).unwrap_or(&Data::Empty), c.ty));
        }
        out.push(line);
    }
    Ok(ReadExport {
        format: super::ExportFormat::Xlsx,
        header,
        rows: out,
        manifest,
    })
}

/// The canonical text of an XLSX cell of a column of type `ty`.
fn canonical_from_xlsx(d: &calamine::Data, ty: ColType) -> String {
    use calamine::Data;
    let round_secs = |t: NaiveDateTime| -> NaiveDateTime {
        let ms = t.and_utc().timestamp_millis();
        let secs = (ms + 500).div_euclid(1000);
        chrono::DateTime::from_timestamp(secs, 0)
            .map(|x| x.naive_utc())
            .unwrap_or(t)
    };
    match (d, ty) {
        (Data::Empty, _) => String::new(),
        (Data::String(s), _) => s.clone(),
        (Data::Int(i), ColType::Money) => format!("{i}.00"),
        (Data::Float(f), ColType::Money) => format!("{f:.2}"),
        (Data::Int(i), _) => i.to_string(),
        (Data::Float(f), ColType::Int) if f.fract() == 0.0 => format!("{}", *f as i64),
        (Data::DateTime(x), ColType::Date) => x
            .as_datetime()
            .map(|t| round_secs(t).date().format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
        (Data::DateTime(x), _) => x
            .as_datetime()
            .map(|t| round_secs(t).format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default(),
        (Data::DateTimeIso(s), _) => s.clone(),
        (Data::Bool(b), _) => b.to_string(),
        (other, _) => other.to_string(),
    }
}

/// An export file reduced to what verification needs, streamed for CSV: a
/// SHA-256 per data row and its first cell, and the hash over all rows.
pub(crate) struct FileDigest {
    pub format: super::ExportFormat,
    pub header: Vec<String>,
    pub row_digests: Vec<[u8; 32]>,
    pub keys: Vec<String>,
    pub data_sha256: String,
    pub manifest: Option<Manifest>,
    /// XLSX rows (already in memory from the workbook reader).
    xlsx_rows: Option<Vec<Vec<String>>>,
}

fn row_digest(cells: &[String]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(super::canonical_line(cells)).into()
}

impl FileDigest {
    /// The file's data row `i` (0-based), read again.
    pub fn row(&self, path: &Path, i: usize) -> Option<Vec<String>> {
        if let Some(rows) = &self.xlsx_rows {
            return rows.get(i).cloned();
        }
        let f = std::fs::File::open(path).ok()?;
        let mut r = csv_reader(std::io::BufReader::new(f));
        r.records()
            .nth(i + 1)?
            .ok()
            .map(|rec| rec.iter().map(str::to_owned).collect())
    }
}

fn csv_reader<R: std::io::Read>(r: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(r)
}

/// Digests an export file (CSV streamed; XLSX through the workbook reader).
pub(crate) fn digest_export(path: &Path, kind: Option<ExportKind>) -> Result<FileDigest> {
    use sha2::Digest;
    let mut magic = [0u8; 4];
    {
        use std::io::Read;
        let mut f =
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let _ = f.read(&mut magic)?;
    }
    let mut all = sha2::Sha256::new();
    if &magic == b"PK\x03\x04" {
        let read = read_xlsx(path, kind)?;
        all.update(super::canonical_line(&read.header));
        let mut row_digests = Vec::with_capacity(read.rows.len());
        let mut keys = Vec::with_capacity(read.rows.len());
        for r in &read.rows {
            all.update(super::canonical_line(r));
            row_digests.push(row_digest(r));
            keys.push(r.first().cloned().unwrap_or_default());
        }
        return Ok(FileDigest {
            format: read.format,
            header: read.header,
            row_digests,
            keys,
            data_sha256: hex::encode(all.finalize()),
            manifest: read.manifest,
            xlsx_rows: Some(read.rows),
        });
    }
    let f = std::fs::File::open(path)?;
    let mut buf = std::io::BufReader::with_capacity(256 * 1024, f);
    {
        use std::io::BufRead;
        if buf.fill_buf()?.starts_with("\u{feff}".as_bytes()) {
            buf.consume(3);
        }
    }
    let mut r = csv_reader(buf);
    let mut header = None;
    let (mut row_digests, mut keys) = (Vec::new(), Vec::new());
    let mut rec = csv::StringRecord::new();
    while r.read_record(&mut rec).context("the CSV is malformed")? {
        let cells: Vec<String> = rec.iter().map(str::to_owned).collect();
        all.update(super::canonical_line(&cells));
        if header.is_none() {
            header = Some(cells);
            continue;
        }
        row_digests.push(row_digest(&cells));
        keys.push(cells.into_iter().next().unwrap_or_default());
    }
    let header = header.ok_or_else(|| anyhow!("{} is empty", path.display()))?;
    let side = super::sidecar_path(path);
    let manifest = match std::fs::read(&side) {
        Ok(b) => Some(
            serde_json::from_slice(&b)
                .with_context(|| format!("{} is not a manifest", side.display()))?,
        ),
        Err(_) => None,
    };
    Ok(FileDigest {
        format: super::ExportFormat::Csv,
        header,
        row_digests,
        keys,
        data_sha256: hex::encode(all.finalize()),
        manifest,
        xlsx_rows: None,
    })
}
