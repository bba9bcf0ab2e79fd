//! `wa-smile demo`: a self-contained tour on a fresh SQLite database with
//! synthetic branch data, imported through the real CSV import, scanned,
//! then served. The same generator feeds the scale benchmark.

use crate::config::Config;
use crate::import::{import_csv, ImportContext, Kind, Options};
use crate::store::Db;
use anyhow::{Context, Result};
use chrono::{DateTime, Datelike, Duration, Utc};
use rand::{Rng, SeedableRng};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What to generate.
pub struct Synthetic {
    pub employers: usize,
    pub bills_per_employer: usize,
    /// Share of bills already overdue at `at`, in percent.
    pub overdue_percent: u32,
    pub at: DateTime<Utc>,
    pub seed: u64,
}

const PREFIXES: [&str; 4] = ["PT", "PT", "CV", "UD"];
const WORDS: [&str; 24] = [
    "Sinar",
    "Maju",
    "Jaya",
    "Abadi",
    "Mandiri",
    "Sejahtera",
    "Riau",
    "Lancar",
    "Berkah",
    "Karya",
    "Sentosa",
    "Makmur",
    "Bintang",
    "Samudra",
    "Nusantara",
    "Mulia",
    "Prima",
    "Agung",
    "Cahaya",
    "Harapan",
    "Sumber",
    "Rezeki",
    "Tunas",
    "Perkasa",
];
const CONTACTS: [&str; 12] = [
    "Ibu Sari",
    "Bapak Budi",
    "Ibu Dewi",
    "Bapak Agus",
    "Ibu Rina",
    "Bapak Hendra",
    "Ibu Wulan",
    "Bapak Fajar",
    "Ibu Nurul",
    "Bapak Yusuf",
    "Ibu Lestari",
    "Bapak Rahmat",
];
const BRANCHES: [(&str, &str); 4] = [
    ("Pekanbaru", "Asia/Jakarta"),
    ("Medan", "Asia/Jakarta"),
    ("Makassar", "Asia/Makassar"),
    ("Jayapura", "Asia/Jayapura"),
];

/// Writes `employers.csv` and `bills.csv` into `dir` in CONTRACT's format.
/// Every 50th employer has no WhatsApp number (their case goes to an officer).
pub fn write_csv(dir: &Path, spec: &Synthetic) -> Result<(PathBuf, PathBuf)> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(spec.seed);
    let emp_path = dir.join("employers.csv");
    let mut w = BufWriter::new(std::fs::File::create(&emp_path)?);
    writeln!(w, "npp,name,branch,wa_phone,contact_name,timezone")?;
    for i in 0..spec.employers {
        let name = format!(
            "{} {} {}",
            PREFIXES[i % PREFIXES.len()],
            WORDS[rng.random_range(0..WORDS.len())],
            WORDS[rng.random_range(0..WORDS.len())]
        );
        let (branch, zone) = BRANCHES[i % BRANCHES.len()];
        let phone = if i % 50 == 49 {
            String::new()
        } else {
            format!("0812{:08}", i)
        };
        writeln!(
            w,
            "{:08},{name},{branch},{phone},{},{zone}",
            i + 1,
            CONTACTS[i % CONTACTS.len()]
        )?;
    }
    w.flush()?;

    let bill_path = dir.join("bills.csv");
    let mut w = BufWriter::new(std::fs::File::create(&bill_path)?);
    writeln!(w, "npp,period,amount,due_date,payment_code")?;
    let today = spec.at.date_naive();
    let first =
        crate::domain::Period::of_date(today - Duration::days(31 * spec.bills_per_employer as i64));
    for i in 0..spec.employers {
        let mut period = first;
        for _ in 0..spec.bills_per_employer {
            // Contributions in thousands of rupiah, as payroll produces them.
            let amount = rng.random_range(500..60_000) * 1000;
            // Overdue bills fell due 1–90 days ago; the rest fall due soon.
            let due = if rng.random_range(0..100) < spec.overdue_percent {
                today - Duration::days(rng.random_range(1..=90))
            } else {
                today + Duration::days(rng.random_range(1..=60))
            };
            let code = format!(
                "{:011}",
                (i as u64 + 1) * 100 + u64::from(period.month()) + u64::from(due.day())
            );
            writeln!(w, "{:08},{period},{amount},{due},{code}", i + 1)?;
            period = period.next();
        }
    }
    w.flush()?;
    Ok((emp_path, bill_path))
}

/// Imports `files` in order through the real CSV import; `what` names
/// them in the error.
async fn import_files<'a>(
    db: &Db,
    ctx: &ImportContext,
    files: impl IntoIterator<Item = (Kind, &'a Path)>,
    what: &str,
) -> Result<()> {
    for (kind, path) in files {
        let options = Options {
            dry_run: false,
            progress: false,
        };
        import_csv(db, ctx, kind, path, options)
            .await
            .map_err(|e| anyhow::anyhow!("demo {what} failed to import: {e}"))?;
    }
    Ok(())
}

/// Imports the synthetic files through the real CSV import.
pub async fn import(db: &Db, config: &Config, employers: &Path, bills: &Path) -> Result<()> {
    let ctx = ImportContext {
        calendar: config.calendar(),
        default_tz: config.timezone(),
        actor: "demo".into(),
        thanks: None,
    };
    import_files(
        db,
        &ctx,
        [(Kind::Employers, employers), (Kind::Bills, bills)],
        "data",
    )
    .await
}

/// A branch office of the tour: its code in `employers.csv`, the contact
/// its employers are told about, its zone and the basis wage (UMP) its
/// contributions are computed on.
struct Branch {
    code: &'static str,
    name: &'static str,
    phone: &'static str,
    zone: &'static str,
    ump: i64,
    /// (company, PIC — empty when SMILE has none)
    employers: &'static [(&'static str, &'static str)],
}

const STORY_BRANCHES: &[Branch] = &[
    Branch {
        code: "JKT-SLB",
        name: "BPJS Ketenagakerjaan Cabang Jakarta Salemba",
        phone: "021-3900175",
        zone: "Asia/Jakarta",
        ump: 5_396_000,
        employers: &[
            ("PT Sumber Rezeki Logistik", "Ibu Sari Wulandari"),
            ("CV Karya Mandiri Teknik", "Bapak Hendra Gunawan"),
            ("PT Arunika Digital Kreasi", "Rizky Pratama"),
            ("Koperasi Karyawan Bina Sejahtera", "Ibu Hj. Siti Aminah"),
            (
                "Yayasan Pendidikan Cahaya Ilmu",
                "Bapak Drs. Bambang Sutrisno",
            ),
            ("PT Mitra Boga Nusantara", ""),
            ("UD Sentosa Jaya Abadi", "Pak Ahmad Fauzi"),
            ("Klinik Pratama Sehat Bersama", "dr. Rina Marpaung"),
        ],
    },
    Branch {
        code: "PKU",
        name: "BPJS Ketenagakerjaan Cabang Pekanbaru Kota",
        phone: "0761-7870175",
        zone: "Asia/Jakarta",
        ump: 3_508_000,
        employers: &[
            ("PT Riau Sawit Lestari", "Bapak Rahmat Hidayat"),
            ("CV Melayu Anugerah Konstruksi", "Ibu Nurul Hasanah"),
            ("Koperasi Unit Desa Tani Makmur", "Syahrul Efendi"),
            ("PT Siak Prima Transportasi", "Bapak H. Zulkifli"),
            ("CV Lancang Kuning Percetakan", ""),
            ("Yayasan Al-Hikmah Pekanbaru", "Ibu Fitri Handayani"),
            ("PT Kampar Agro Mandiri", "Budi Santoso"),
        ],
    },
    Branch {
        code: "PTK",
        name: "BPJS Ketenagakerjaan Cabang Pontianak",
        phone: "0561-7370175",
        zone: "Asia/Pontianak",
        ump: 2_878_000,
        employers: &[
            ("PT Borneo Kayu Utama", "Bapak Hendrik Lim"),
            ("CV Khatulistiwa Elektrik", "Siti Aisyah"),
            ("Koperasi Simpan Pinjam Kapuas Jaya", "Ibu Yuliana"),
            ("PT Sambas Perikanan Terpadu", "Pak Agus Salim"),
            ("UD Pontianak Baru", ""),
        ],
    },
    Branch {
        code: "MKS",
        name: "BPJS Ketenagakerjaan Cabang Makassar",
        phone: "0411-4660175",
        zone: "Asia/Makassar",
        ump: 3_657_000,
        employers: &[
            ("PT Toraja Kopi Nusantara", "Andi Baso Rahman"),
            ("CV Losari Bahari", "Ibu Andi Fatimah"),
            ("PT Celebes Semen Logistik", "Bapak Daeng Rudi"),
            ("Koperasi Nelayan Paotere", "Haji Mustari"),
            ("Yayasan Rumah Sakit Bhakti Sulawesi", "dr. Ikhsan Malik"),
            ("PT Bugis Makmur Perkasa", ""),
            ("CV Gowa Sentosa", "Ibu Rosmiati"),
        ],
    },
    Branch {
        code: "DPS",
        name: "BPJS Ketenagakerjaan Cabang Denpasar",
        phone: "0361-2270175",
        zone: "Asia/Makassar",
        ump: 2_996_000,
        employers: &[
            ("PT Bali Tirta Wisata", "I Made Suartana"),
            ("CV Ubud Kriya Lestari", "Ibu Ni Luh Ayu Sukmawati"),
            ("Koperasi Serba Usaha Dewata", "Bapak I Ketut Arsana"),
            ("PT Segara Resort Management", "Putu Wulandari"),
            ("UD Sanur Mandiri", ""),
        ],
    },
    Branch {
        code: "JAP",
        name: "BPJS Ketenagakerjaan Cabang Jayapura",
        phone: "0967-5330175",
        zone: "Asia/Jayapura",
        ump: 4_285_000,
        employers: &[
            ("PT Cenderawasih Marine", "Bapak Yohanes Kogoya"),
            ("CV Sentani Teknik Utama", "Ibu Maria Rumbiak"),
            ("Koperasi Karyawan Port Numbay", "Yosias Wenda"),
            ("PT Papua Hijau Agrindo", "Bapak Frans Mayor"),
            ("Yayasan Kesehatan Tanah Papua", ""),
        ],
    },
];

/// One employer of the tour.
#[derive(Debug, Clone)]
pub struct StoryEmployer {
    pub npp: String,
    pub name: String,
    pub contact: String,
    pub branch: &'static str,
    pub zone: chrono_tz::Tz,
    /// `628…`, or None (no WhatsApp contact: the case goes to an officer).
    pub wa_id: Option<String>,
    /// Months in arrears at the tour's clock (0: paid up).
    pub arrears: u32,
}

/// The tour's data, written as SMILE would export it.
pub struct Story {
    pub employers: Vec<StoryEmployer>,
    pub bills: usize,
    pub payments: usize,
    pub files: [PathBuf; 3],
}

/// Writes `employers.csv`, `bills.csv` and `payments.csv` for a tour at
/// `at`: employers of six branches in WIB, WITA and WIT, each with its
/// monthly contributions; the last 1–8 months unpaid for most of them, the
/// earlier ones paid on time. Due dates are left to the import (the 15th of
/// the following month, rolled past Sundays and holidays), so periods and
/// due dates always agree.
pub fn write_story(
    dir: &Path,
    at: DateTime<Utc>,
    calendar: &crate::domain::Calendar,
) -> Result<Story> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let today = at.with_timezone(&chrono_tz::Asia::Jakarta).date_naive();
    // The latest period already due: its due date is before today.
    let mut latest_overdue = crate::domain::Period::of_date(today);
    while calendar.due_date(latest_overdue) >= today {
        latest_overdue = prev_period(latest_overdue);
    }
    let files = [
        dir.join("employers.csv"),
        dir.join("bills.csv"),
        dir.join("payments.csv"),
    ];
    let mut emp = BufWriter::new(std::fs::File::create(&files[0])?);
    let mut bills = BufWriter::new(std::fs::File::create(&files[1])?);
    let mut pays = BufWriter::new(std::fs::File::create(&files[2])?);
    writeln!(emp, "npp,name,branch,wa_phone,contact_name,timezone")?;
    writeln!(bills, "npp,period,amount,payment_code")?;
    writeln!(pays, "npp,period,amount,paid_at,reference")?;
    let (mut n_bills, mut n_pays) = (0, 0);
    let mut employers = Vec::new();
    let mut used_npps = std::collections::HashSet::new();
    let mut k = 0usize;
    for branch in STORY_BRANCHES {
        let zone: chrono_tz::Tz = branch.zone.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        for (name, contact) in branch.employers {
            k += 1;
            let (npp, phone) = story_identity(&mut rng, k, &mut used_npps);
            // Months in arrears: many one or two, some long overdue, a few paid up.
            let arrears = match rng.random_range(0..100) {
                0..=11 => 0,
                12..=44 => 1,
                45..=66 => 2,
                67..=76 => 3,
                77..=84 => rng.random_range(4..=5),
                _ => rng.random_range(6..=8),
            };
            let headcount: i64 = match rng.random_range(0..10) {
                0..=5 => rng.random_range(4..40),
                6..=8 => rng.random_range(40..160),
                _ => rng.random_range(160..600),
            };
            // JHT 5.7% + JP 3% + JKK 0.24% + JKM 0.3% of wages near the UMP.
            let wage = branch.ump * rng.random_range(100..135) / 100;
            let paid_months = 3;
            let mut period = latest_overdue;
            for _ in 1..(arrears + paid_months) {
                period = prev_period(period);
            }
            let code_base: u64 = rng.random_range(10_000_000..99_999_999);
            for i in 0..(arrears + paid_months + 1) {
                let staff = (headcount + rng.random_range(-2..=2)).max(2);
                let amount = (staff * wage * 924 / 10_000) / 100 * 100;
                let code = format!("{code_base}{:03}", period.month() * 10 + i % 10);
                writeln!(bills, "{npp},{period},{amount},{}", &code[..11])?;
                n_bills += 1;
                // The oldest months were paid before their due date.
                if i < paid_months {
                    let due = calendar.due_date(period);
                    let paid = due - Duration::days(rng.random_range(1..=9));
                    writeln!(
                        pays,
                        "{npp},{period},{amount},{paid}T10:{:02}:00+07:00,TRX{}{}",
                        rng.random_range(0..60),
                        period.to_string().replace('-', ""),
                        &npp[..8]
                    )?;
                    n_pays += 1;
                }
                period = period.next();
            }
            let contact_field = if contact.contains(',') {
                format!("\"{contact}\"")
            } else {
                (*contact).to_owned()
            };
            writeln!(
                emp,
                "{npp},{name},{},{},{contact_field},{}",
                branch.code,
                phone.as_deref().unwrap_or(""),
                branch.zone
            )?;
            employers.push(StoryEmployer {
                npp,
                name: (*name).to_owned(),
                contact: (*contact).to_owned(),
                branch: branch.code,
                zone,
                wa_id: phone
                    .as_deref()
                    .and_then(|p| crate::domain::WaId::parse(p).ok())
                    .map(|w| w.as_str().to_owned()),
                arrears,
            });
        }
    }
    for w in [&mut emp, &mut bills, &mut pays] {
        w.flush()?;
    }
    Ok(Story {
        employers,
        bills: n_bills,
        payments: n_pays,
        files,
    })
}

/// The `k`th story employer's NPP (unique among `used`) and WhatsApp
/// number, if it has one.
fn story_identity(
    rng: &mut rand::rngs::StdRng,
    k: usize,
    used: &mut std::collections::HashSet<String>,
) -> (String, Option<String>) {
    let npp = loop {
        let n = format!("{:08}", rng.random_range(1_000_000..99_999_999u32));
        if used.insert(n.clone()) {
            break n;
        }
    };
    // A few branch offices register divisions of one company.
    let npp = if k.is_multiple_of(9) {
        format!("{npp}-01")
    } else {
        npp
    };
    // Two employers have no WhatsApp number in SMILE.
    let phone = if k.is_multiple_of(17) {
        None
    } else {
        Some(format!(
            "08{}{:08}",
            ["11", "12", "13", "21", "22", "52", "53", "56", "57", "77", "78", "95"]
                [rng.random_range(0..12)],
            rng.random_range(0..100_000_000u32)
        ))
    };
    (npp, phone)
}

fn prev_period(p: crate::domain::Period) -> crate::domain::Period {
    let first = p.first_day();
    crate::domain::Period::of_date(first - Duration::days(1))
}

/// The tour's clock: `wall` itself when it is a working morning or
/// afternoon (08.30–17.30 WIB, so every zone's sending window is open),
/// else 09.00 WIB on the next such day.
pub fn story_clock(wall: DateTime<Utc>, config: &Config) -> (DateTime<Utc>, bool) {
    use chrono::{NaiveTime, TimeZone};
    let wib = chrono_tz::Asia::Jakarta;
    let policy = config.policy();
    let calendar = config.calendar();
    let local = wall.with_timezone(&wib);
    let (from, to) = (
        NaiveTime::from_hms_opt(8, 30, 0).expect("valid"),
        NaiveTime::from_hms_opt(17, 30, 0).expect("valid"),
    );
    let sending_day = |d: chrono::NaiveDate| {
        policy.window.days.contains(&d.weekday()) && calendar.holiday(d).is_none()
    };
    if sending_day(local.date_naive()) && local.time() >= from && local.time() < to {
        return (wall, false);
    }
    let mut day = local.date_naive();
    if local.time() >= from {
        day = day.succ_opt().expect("date in range");
    }
    while !sending_day(day) {
        day = day.succ_opt().expect("date in range");
    }
    let at = wib
        .from_local_datetime(&day.and_time(NaiveTime::from_hms_opt(9, 0, 0).expect("valid")))
        .earliest()
        .expect("WIB has no gaps")
        .with_timezone(&Utc);
    (at, true)
}

/// `Rabu, 2 Desember 2026 09.00 WIB`.
fn local_time(at: DateTime<Utc>) -> String {
    let l = at.with_timezone(&chrono_tz::Asia::Jakarta);
    format!(
        "{} {} WIB",
        crate::messages::filters::format_tanggal(l.date_naive()),
        l.format("%H.%M")
    )
}

/// Waits until the simulator has posted every status webhook it scheduled
/// and the app has settled them (statuses settle off the request path).
async fn settle(simulator: &crate::simulator::SimulatorHandle) {
    for _ in 0..200 {
        if simulator.pending_statuses() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
}

/// The tour's configuration: its own database, the simulator, the address
/// it listens on (bound before anything is sent: the simulator's status
/// webhooks come back to it) and the story's branches.
async fn tour_config(
    config: Config,
    db_path: &Path,
) -> Result<(Config, tokio::net::TcpListener, String)> {
    let mut config = config;
    config.database.url = format!("sqlite://{}", db_path.display());
    config.simulator.enabled = true;
    let listener = tokio::net::TcpListener::bind(&config.server.bind)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (set WA_SMILE__SERVER__BIND)",
                config.server.bind
            )
        })?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    config.server.public_url = base.clone();
    // The simulator signs its webhooks with the same app secret the webhook
    // route checks; a tour without one gets its own random secret.
    if secrecy::ExposeSecret::expose_secret(&config.whatsapp.app_secret).is_empty() {
        config.whatsapp.app_secret = crate::accounts::random_secret().into();
    }
    config.messages.branch = STORY_BRANCHES
        .iter()
        .map(|b| crate::config::BranchContactConfig {
            code: b.code.into(),
            name: b.name.into(),
            phone: b.phone.into(),
            address: String::new(),
        })
        .collect();

    Ok((config, listener, base))
}

/// Employer replies sent in the morning, one per employer from the first:
/// what each one is, and its text.
const MORNING_REPLIES: [(&str, &str); 4] = [
    ("a promise", "Baik Pak, insyaallah besok kami bayar"),
    (
        "\"sudah bayar\"",
        "Sudah kami bayar kemarin lewat teller BRI",
    ),
    (
        "a request for the payment link",
        "Tolong kirimkan link pembayarannya",
    ),
    (
        "a dispute",
        "Mohon maaf, tagihan ini tidak sesuai. Karyawan kami sudah keluar semua sejak Agustus",
    ),
];

/// The morning's replies, typed on the employers' phones and posted as
/// signed webhooks; what was replied, in order.
async fn morning_replies(
    phone: &crate::simulator::Phone,
    reachable: &[&StoryEmployer],
) -> Result<Vec<&'static str>> {
    let mut replied = Vec::new();
    for ((what, text), e) in MORNING_REPLIES.iter().zip(reachable.iter()) {
        let wa_id = e.wa_id.as_deref().expect("reachable");
        phone.open_chat(wa_id).await;
        phone
            .reply(wa_id, text)
            .await
            .with_context(|| format!("the demo's reply ({what}) did not reach the webhook"))?;
        replied.push(*what);
    }
    Ok(replied)
}

/// Employer `p` pays every overdue bill this morning: the payment is
/// imported and the next scan resolves its case.
async fn pay_everything(
    db: &Db,
    config: &Config,
    ctx: &ImportContext,
    scan_ctx: &crate::scan::ScanContext,
    dir: &Path,
    p: &StoryEmployer,
) -> Result<()> {
    let path = dir.join("payments-today.csv");
    let view = crate::cases::case_id_for_npp(db, &p.npp).await?;
    if let Some(id) = view {
        if let Some(c) = crate::cases::load(db, &config.policy(), id, crate::time::now()).await? {
            let mut w = BufWriter::new(std::fs::File::create(&path)?);
            writeln!(w, "npp,period,amount,paid_at,reference")?;
            for b in c.bills.iter().filter(|b| b.overdue) {
                writeln!(
                    w,
                    "{},{},{},{},TRX{}{}",
                    p.npp,
                    b.period,
                    b.amount,
                    crate::time::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    b.period.to_string().replace('-', ""),
                    &p.npp[..8]
                )?;
            }
            w.flush()?;
            drop(w);
            import_files(db, ctx, [(Kind::Payments, path.as_path())], "payment").await?;
            crate::scan::run(db, scan_ctx, crate::time::now()).await?;
        }
    }
    Ok(())
}

/// A login for the tour (its password random and shown once) and what to
/// try, on the employers the morning left untouched.
async fn print_tour(
    db: &Db,
    config: &Config,
    base: &str,
    reachable: &[&StoryEmployer],
) -> Result<()> {
    // A login for the tour; the password is random and shown once.
    let password = crate::accounts::random_secret()[..16].to_owned();
    crate::accounts::add_user(db, "admin", &password, crate::accounts::Role::Admin, None).await?;
    let untouched: Vec<&&StoryEmployer> =
        reachable.iter().skip(MORNING_REPLIES.len() + 1).collect();
    let case_url = match untouched.first() {
        Some(e) => match crate::cases::case_id_for_npp(db, &e.npp).await? {
            Some(id) => format!("{base}/cases/{id}"),
            None => format!("{base}/cases"),
        },
        None => format!("{base}/cases"),
    };
    println!();
    println!("Tour");
    println!("  admin UI:   {base}/cases — log in as `admin` with password {password}");
    println!("  phone page: {base}/simulator — each employer's WhatsApp, as they see it");
    println!(
        "  webhook:    POST {base}/webhooks/whatsapp, X-Hub-Signature-256 with app secret {}",
        secrecy::ExposeSecret::expose_secret(&config.whatsapp.app_secret)
    );
    println!("  three things to try:");
    if let Some(e) = untouched.first() {
        println!(
            "   1. open {} (NPP {}) at {base}/simulator/{} and type *besok kami bayar*, then look at the officer's case page {}",
            e.name,
            e.npp,
            e.wa_id.as_deref().unwrap_or_default(),
            case_url
        );
    }
    if let Some(e) = untouched.get(1) {
        println!(
            "   2. open {} (NPP {}) at {base}/simulator/{}, tap *Janji bayar* and answer with a date (*tanggal 10*); the case turns `promised`",
            e.name,
            e.npp,
            e.wa_id.as_deref().unwrap_or_default()
        );
    }
    if let Some(e) = untouched.get(2) {
        println!(
            "   3. open {} (NPP {}) at {base}/simulator/{}, send the photo *bukti transfer* or block the business, and see what the officer's case list says",
            e.name,
            e.npp,
            e.wa_id.as_deref().unwrap_or_default()
        );
    }
    if let Some(e) = reachable.first() {
        println!(
            "  CLI:        WA_SMILE__DATABASE__URL={} wa-smile case show {}",
            config.database.url, e.npp
        );
    }
    Ok(())
}

/// Starts the built-in simulator and points the configuration's Cloud API
/// at it.
async fn start_simulator(
    config: &mut Config,
    base: &str,
) -> Result<crate::simulator::SimulatorHandle> {
    let sim_opts = crate::simulator::SimulatorOptions {
        webhook_url: Some(format!("{base}/webhooks/whatsapp")),
        app_secret: secrecy::ExposeSecret::expose_secret(&config.whatsapp.app_secret).to_owned(),
        status_delays: [
            std::time::Duration::from_millis(300),
            std::time::Duration::from_millis(900),
            std::time::Duration::from_millis(1500),
        ],
        // Every delivered reminder is read: the simulator picks which
        // messages to mark read by their arrival order, which concurrent
        // sends shuffle, so with a share the tour's employer who "promised
        // after reading the reminder" sometimes had an unread one.
        read_percent: 100,
        ..Default::default()
    };
    let (sim_url, simulator) = crate::simulator::Simulator::start(sim_opts.clone()).await?;
    config.whatsapp.api_base = sim_url.clone();
    config.whatsapp.access_token = sim_opts.access_token.clone().into();
    if config.whatsapp.phone_number_id.is_empty() {
        config.whatsapp.phone_number_id = "100000000000001".into();
    }
    Ok(simulator)
}

/// Writes the tour's data, gives the simulated phones its contacts and
/// imports it through the real CSV import.
async fn import_story(
    db: &Db,
    config: &Config,
    dir: &Path,
    phone: &crate::simulator::Phone,
) -> Result<(Story, ImportContext)> {
    let story = write_story(dir, crate::time::now(), &config.calendar())?;
    phone.add_contacts(story.employers.iter().filter_map(|e| {
        Some(crate::simulator::Contact {
            wa_id: e.wa_id.clone()?,
            name: if e.contact.is_empty() {
                e.name.clone()
            } else {
                e.contact.clone()
            },
            company: e.name.clone(),
            npp: Some(e.npp.clone()),
            timezone: e.zone,
        })
    }));
    let ctx = ImportContext {
        calendar: config.calendar(),
        default_tz: config.timezone(),
        actor: "demo".into(),
        thanks: None,
    };
    let files = [Kind::Employers, Kind::Bills, Kind::Payments]
        .into_iter()
        .zip(story.files.iter().map(PathBuf::as_path));
    import_files(db, &ctx, files, "data").await?;
    Ok((story, ctx))
}

/// The whole tour: data, a morning's reminders and replies, then the server
/// until Ctrl-C. `at` pretends the demo starts then (default: now).
pub async fn run(config: Config, data: Option<PathBuf>, at: Option<DateTime<Utc>>) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = data.unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let db_path = dir.join("wa-smile-demo.db");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db_path.display()));
    }
    let (mut config, listener, base) = tour_config(config, &db_path).await?;
    let wall = at.unwrap_or_else(chrono::Utc::now);
    let (clock, shifted) = story_clock(wall, &config);
    crate::time::run_clock_from(clock);
    println!("WA SMILE demo");
    if shifted {
        println!(
            "  clock:    {} — it is {} now, outside the sending window (Mon–Sat 08.00–20.00 in each employer's zone), so the demo runs on its own clock from a working morning, at real speed",
            local_time(clock),
            local_time(wall)
        );
    } else {
        println!(
            "  clock:    {} (inside the sending window)",
            local_time(clock)
        );
    }

    // The built-in simulator plays the Cloud API and the employers' phones.
    let simulator = start_simulator(&mut config, &base).await?;
    let phone = simulator.phone();
    crate::simulator::register_phone(phone.clone());
    let config = Arc::new(config);
    let db = Db::connect(&config.database.url, config.database.max_connections).await?;
    db.migrate().await?;

    let (story, ctx) = import_story(&db, &config, &dir, &phone).await?;
    println!(
        "  data:     {} employers in {} branches (WIB, WITA, WIT), {} bills, {} payments — CSV files in {}",
        story.employers.len(),
        STORY_BRANCHES.len(),
        story.bills,
        story.payments,
        dir.display()
    );

    // The server runs from here on: webhooks, the admin UI, /simulator, the
    // delivery worker that sends the bot's answers.
    let server = tokio::spawn(crate::serve::run(config.clone(), db.clone(), listener));

    let scan_ctx = crate::scan::ScanContext::from_config(&config)?;
    let scan = crate::scan::run(&db, &scan_ctx, crate::time::now()).await?;
    let catalog = crate::messages::shared().context("message templates")?;
    let deliverer = crate::delivery::Deliverer::from_config(&config, catalog)?;
    crate::delivery::deliver_due(&db, &deliverer, crate::time::now()).await?;
    settle(&simulator).await;
    let reminders = simulator.count();
    println!(
        "  scan:     {} cases opened, {} reminders queued and sent to the simulator (the Cloud API stand-in)",
        scan.cases_opened, reminders
    );

    // The morning's replies, typed on the employers' phones and posted as
    // signed webhooks to POST /webhooks/whatsapp.
    let reachable: Vec<&StoryEmployer> = story
        .employers
        .iter()
        .filter(|e| e.wa_id.as_ref().is_some_and(|w| !phone.chat(w).is_empty()))
        .collect();
    let replied = morning_replies(&phone, &reachable).await?;
    // One employer paid everything this morning: the payment comes in,
    // the next scan resolves the case.
    let payer = reachable.get(MORNING_REPLIES.len()).copied();
    if let Some(p) = payer {
        pay_everything(&db, &config, &ctx, &scan_ctx, &dir, p).await?;
    }
    // The bot's answers go out now rather than at the worker's next pass.
    let answers = crate::delivery::deliver_due(&db, &deliverer, crate::time::now()).await?;
    tracing::info!(
        sent = answers.sent,
        skipped = answers.skipped,
        "demo: answers delivered"
    );
    settle(&simulator).await;
    println!(
        "  replies:  {} already in — {} — each through the signed webhook; the bot has answered",
        replied.len(),
        replied.join(", ")
    );
    let page = crate::caselist::list(
        &db,
        None,
        &crate::caselist::Filter {
            status: "all".into(),
            ..Default::default()
        },
        crate::time::now().date_naive(),
        crate::time::now(),
    )
    .await?;
    let counts: Vec<String> = page
        .counts
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect();
    println!("  cases:    {}", counts.join(", "));

    print_tour(&db, &config, &base, &reachable).await?;
    println!("ready — Ctrl-C to stop");
    let result = server.await.context("the server task failed")?;
    drop(simulator);
    result
}
