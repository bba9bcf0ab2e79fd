//! Phrases of our own, beyond the dev set: informal, Javanese-flavoured,
//! misspelt and English replies, per intent and per date form.

use super::*;
use chrono::{NaiveDate, TimeZone};
use chrono_tz::Asia::{Jakarta, Jayapura, Makassar};

/// Tuesday 3 March 2026, 10:15 WIB.
fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 3, 3, 15, 0).unwrap()
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn check(intent: Intent, phrases: &[&str]) {
    let misses: Vec<String> = phrases
        .iter()
        .map(|p| (p, classify(p, at(), Jakarta)))
        .filter(|(_, c)| c.intent != intent)
        .map(|(p, c)| format!("{p:?} → {}", c.intent))
        .collect();
    assert!(misses.is_empty(), "expected {intent}: {misses:#?}");
}

#[test]
fn promises_with_a_date() {
    let cases: &[(&str, NaiveDate)] = &[
        ("Baik, saya bayar besok ya 🙏", d(2026, 3, 4)),
        ("insya allah besok sore kami tf", d(2026, 3, 4)),
        ("sesok nggih pak, kulo transfer", d(2026, 3, 4)),
        ("tomorrow I will pay", d(2026, 3, 4)),
        ("ok bu, lusa dibayar", d(2026, 3, 5)),
        ("tgl 10 ya pak", d(2026, 3, 10)),
        ("kami lunasi tanggal 15 bulan depan", d(2026, 4, 15)),
        ("tanggal 1 kami bayar", d(2026, 4, 1)),
        ("diusahakan jumat ini", d(2026, 3, 6)),
        ("hari kamis kami setor", d(2026, 3, 5)),
        ("rabu depan pak", d(2026, 3, 11)),
        ("30/3 kami bayar", d(2026, 3, 30)),
        ("paling telat 15-4", d(2026, 4, 15)),
        ("20 april insyaallah", d(2026, 4, 20)),
        ("tgl 5 okt", d(2026, 10, 5)),
        ("siang ini saya transfer", d(2026, 3, 3)),
        ("skrg lagi otw ke bank, hari ini dibayar", d(2026, 3, 3)),
        ("pertengahan bulan ya bu", d(2026, 3, 15)),
        ("pertengahan bulan depan kami lunasi", d(2026, 4, 15)),
        ("3 hari lagi pak", d(2026, 3, 6)),
        ("tidak bisa hari ini, besok saja", d(2026, 3, 4)),
        ("terima kasih, besok kami transfer", d(2026, 3, 4)),
        ("oke siap, tgl 20 kami bayar", d(2026, 3, 20)),
        ("bisa bayar tanggal 25?", d(2026, 3, 25)),
        ("next week we pay", d(2026, 3, 13)),
    ];
    let misses: Vec<String> = cases
        .iter()
        .map(|(p, want)| (p, want, classify(p, at(), Jakarta)))
        .filter(|(_, want, c)| c.intent != Intent::PromiseToPay || c.promised_date != Some(**want))
        .map(|(p, want, c)| format!("{p:?}: want {want}, got {} {:?}", c.intent, c.promised_date))
        .collect();
    assert!(misses.is_empty(), "{misses:#?}");
}

#[test]
fn promises_within_a_range() {
    let cases: &[(&str, NaiveDate, NaiveDate)] = &[
        ("pekan depan kami bayar", d(2026, 3, 9), d(2026, 3, 14)),
        ("mg dpn ya", d(2026, 3, 9), d(2026, 3, 14)),
        ("akhir bulan kami lunasi", d(2026, 3, 25), d(2026, 3, 31)),
        ("akhir bln pak", d(2026, 3, 25), d(2026, 3, 31)),
        ("tanggal tua ya", d(2026, 3, 25), d(2026, 3, 31)),
        ("awal bulan depan", d(2026, 4, 1), d(2026, 4, 10)),
        (
            "tanggal muda pak, nunggu gajian",
            d(2026, 4, 1),
            d(2026, 4, 10),
        ),
        ("bulan depan ya bu", d(2026, 4, 1), d(2026, 4, 30)),
    ];
    for (p, from, to) in cases {
        let c = classify(p, at(), Jakarta);
        assert_eq!(c.intent, Intent::PromiseToPay, "{p:?}");
        let got = c
            .promised_date
            .unwrap_or_else(|| panic!("{p:?} has no date"));
        assert!(
            *from <= got && got <= *to,
            "{p:?}: {got} not in {from}..{to}"
        );
    }
}

#[test]
fn promises_without_a_date_ask_for_one() {
    let phrases = [
        "nanti kami bayar",
        "nanti ya pak",
        "setelah gajian",
        "nunggu dana cair dulu",
        "kalau dana sudah cair langsung kami transfer",
        "segera kami lunasi",
        "secepatnya kami bayar",
        "insyaallah kami bayar",
        "iya pak nanti diurus",
        "akan kami proses",
        "sedang diproses bagian keuangan",
        "mangke kulo bayar",
        "will pay soon",
        "siap, akan segera kami selesaikan",
        "belum bayar pak",
        "blm sempat transfer",
    ];
    check(Intent::PromiseToPay, &phrases);
    for p in phrases {
        assert_eq!(classify(p, at(), Jakarta).promised_date, None, "{p:?}");
    }
}

#[test]
fn already_paid() {
    check(
        Intent::AlreadyPaid,
        &[
            "sudah",
            "sudah pak",
            "sdh bayar bu",
            "sampun mbayar",
            "wis tak transfer wingi",
            "sudah dibayarkan tanggal 2",
            "kemarin sudah kami setor",
            "udah lunas semua",
            "sudah lunas pak terima kasih",
            "barusan transfer",
            "tadi siang sudah bayar via mandiri",
            "already paid",
            "paid",
            "sudah bayar lewat atm bca",
            "ini bukti transfernya",
            "pembayaran sudah kami lakukan kemarin",
            "udah tf ya pak",
            "sudah saya bayar lewat mbanking",
        ],
    );
}

#[test]
fn negated_payment_is_not_a_claim() {
    for p in [
        "belum bayar",
        "blm tf pak",
        "tidak bisa bayar",
        "belum lunas",
    ] {
        assert_ne!(
            classify(p, at(), Jakarta).intent,
            Intent::AlreadyPaid,
            "{p:?}"
        );
    }
}

#[test]
fn payment_link_requests() {
    check(
        Intent::PaymentLinkRequest,
        &[
            "minta kode iuran",
            "kirimkan kode pembayarannya",
            "nomor virtual account nya berapa",
            "no rek nya mana",
            "link pembayaran dong",
            "transfer ke mana pak?",
            "cara bayarnya gimana?",
            "bayar lewat mana ya",
            "via apa bayarnya",
            "kode billingnya pak",
            "send the payment link please",
        ],
    );
}

#[test]
fn amount_inquiries() {
    check(
        Intent::AmountInquiry,
        &[
            "berapa?",
            "total semuanya berapa",
            "tunggakan kami berapa pak",
            "jumlah yang harus dibayar berapa?",
            "brp tagihan bulan ini",
            "dendanya brp bu",
            "minta rincian tagihan",
            "detail tunggakannya",
            "periode mana saja yang belum?",
            "berapa bulan yang nunggak?",
            "sisa kekurangannya berapa",
            "pinten totale",
        ],
    );
}

#[test]
fn installment_requests() {
    check(
        Intent::InstallmentRequest,
        &[
            "bisa dicicil?",
            "boleh diangsur 3x?",
            "mohon keringanan pak",
            "bisa bayar setengah dulu",
            "bayar bertahap bisa?",
            "dendanya bisa dikurangi?",
            "minta penghapusan denda",
            "bisa ditunda pembayarannya?",
            "kami tidak mampu bayar sekaligus",
            "lagi susah pak, belum ada pemasukan",
            "installment possible?",
        ],
    );
}

#[test]
fn disputes() {
    check(
        Intent::Dispute,
        &[
            "perusahaan sudah tutup sejak 2024",
            "usaha kami sudah bangkrut",
            "pt sudah pailit",
            "pabrik sudah tidak produksi",
            "semua karyawan sudah di phk",
            "pegawai tinggal 2 orang, datanya salah",
            "sudah tidak punya karyawan",
            "jumlah tenaga kerja tidak sesuai",
            "gaji yang dilaporkan salah",
            "kami tidak pernah menunggak",
            "sudah bayar kok masih ditagih?",
            "udah lunas tp masih ada tunggakan",
            "kami bayar dobel bulan lalu",
            "nominalnya kebesaran",
            "tagihannya terlalu besar",
        ],
    );
}

#[test]
fn officer_requests() {
    check(
        Intent::OfficerRequest,
        &[
            "call me",
            "tolong hubungi saya",
            "bisa ditelpon?",
            "minta nomor petugasnya",
            "saya mau bicara sama orang bpjs",
            "ar nya siapa ya",
            "saya ke kantor cabang besok untuk ketemu petugas",
            "minta dihubungi cs",
            "telp sy aja pak",
        ],
    );
}

#[test]
fn opt_outs() {
    check(
        Intent::OptOut,
        &[
            "Stop",
            "stop kirim pesan",
            "STOP!!!",
            "berhenti",
            "tolong jangan kirim pesan lagi",
            "tidak usah wa saya",
            "jgn ganggu",
            "gak usah dihubungi lagi",
            "hapus nomor saya",
            "unsub",
            "ojo wa aku maneh",
        ],
    );
}

#[test]
fn wrong_numbers() {
    check(
        Intent::WrongNumber,
        &[
            "salah kirim",
            "maaf salah sambung",
            "wrong number",
            "ini nomor pribadi, bukan kantor",
            "saya tidak kenal perusahaan itu",
            "saya bukan pemilik usaha",
            "saya sudah resign dari pt tersebut",
            "sy sdh keluar dr perusahaan itu",
            "nomor ini sudah ganti pemilik",
            "bukan bagian saya",
        ],
    );
}

#[test]
fn complaints() {
    check(
        Intent::Complaint,
        &[
            "ganggu banget sih",
            "spam terus",
            "saya laporkan ke OJK",
            "tidak sopan kirim wa malam2",
            "kenapa sih wa terus tiap hari",
            "😡",
            "pelayanannya buruk",
            "berkali kali dikirimi pesan",
        ],
    );
}

#[test]
fn questions() {
    check(
        Intent::Question,
        &[
            "ini beneran dari bpjs?",
            "apakah ini resmi?",
            "jam buka kantor?",
            "kapan jatuh temponya?",
            "apa bedanya jht dan jp?",
            "kenapa ada denda?",
            "?",
            "bagaimana cara daftar online",
            "is this a scam?",
        ],
    );
}

#[test]
fn acknowledgements() {
    check(
        Intent::Acknowledgement,
        &[
            "👍",
            "🙏🙏",
            "okee",
            "siappp",
            "sip",
            "iya",
            "nggih",
            "matur nuwun",
            "thanks",
            "Waalaikumsalam wr wb",
            "waalaikum salam",
            "selamat pagi",
            "baik, akan kami cek dulu",
            "nanti saya sampaikan ke pimpinan",
            "noted with thanks",
            "ok bu",
        ],
    );
}

#[test]
fn unknown_and_empty() {
    for p in ["", "   ", "asdfgh", "..."] {
        assert_eq!(classify(p, at(), Jakarta).intent, Intent::Unknown, "{p:?}");
    }
}

#[test]
fn dates_follow_the_senders_zone_not_utc() {
    // 23:30 UTC on Monday 2 March is already Tuesday 3 March in WIB, WITA and WIT.
    let late_utc = Utc.with_ymd_and_hms(2026, 3, 2, 23, 30, 0).unwrap();
    for tz in [Jakarta, Makassar, Jayapura] {
        let c = classify("besok kami bayar", late_utc, tz);
        assert_eq!(c.promised_date, Some(d(2026, 3, 4)), "{tz}");
    }
    // 16:30 UTC is 23:30 WIB (still the 2nd) but 00:30 WITA and 01:30 WIT (the 3rd).
    let evening = Utc.with_ymd_and_hms(2026, 3, 2, 16, 30, 0).unwrap();
    assert_eq!(
        classify("besok", evening, Jakarta).promised_date,
        Some(d(2026, 3, 3))
    );
    assert_eq!(
        classify("besok", evening, Makassar).promised_date,
        Some(d(2026, 3, 4))
    );
    assert_eq!(
        classify("besok", evening, Jayapura).promised_date,
        Some(d(2026, 3, 4))
    );
    assert_eq!(
        classify("hari ini", evening, Jayapura).promised_date,
        Some(d(2026, 3, 3))
    );
}

#[test]
fn month_and_year_rollover() {
    let new_year_eve = Utc.with_ymd_and_hms(2026, 12, 31, 3, 0, 0).unwrap();
    let c = |t| classify(t, new_year_eve, Jakarta).promised_date;
    assert_eq!(c("besok kami bayar"), Some(d(2027, 1, 1)));
    assert_eq!(c("tgl 5 ya"), Some(d(2027, 1, 5)));
    assert_eq!(c("10/1 kami bayar"), Some(d(2027, 1, 10)));
    assert_eq!(c("senin depan"), Some(d(2027, 1, 4)));
    let end_of_feb = Utc.with_ymd_and_hms(2026, 2, 27, 3, 0, 0).unwrap();
    let c = |t| classify(t, end_of_feb, Jakarta).promised_date;
    assert_eq!(c("lusa kami bayar"), Some(d(2026, 3, 1)));
    assert_eq!(c("tgl 30 ya"), Some(d(2026, 3, 30)));
    assert_eq!(c("tgl 28 ya"), Some(d(2026, 2, 28)));
    assert_eq!(c("akhir bulan"), Some(d(2026, 2, 28)));
}

#[test]
fn only_promises_carry_a_date() {
    let c = classify("tlg tlp sy besok", at(), Jakarta);
    assert_eq!(c.intent, Intent::OfficerRequest);
    assert_eq!(c.promised_date, None);
}

#[test]
fn intent_names_round_trip() {
    for intent in Intent::ALL {
        assert_eq!(intent.as_str().parse::<Intent>(), Ok(intent));
        assert_eq!(
            serde_json::to_string(&intent).unwrap(),
            format!("\"{}\"", intent.as_str())
        );
    }
    assert!("promise".parse::<Intent>().is_err());
}

#[test]
fn buttons_map_to_intents() {
    assert_eq!(
        intent_for_button("PAY_LINK"),
        Some((Intent::PaymentLinkRequest, None))
    );
    assert_eq!(
        intent_for_button("PROMISE:42"),
        Some((Intent::PromiseToPay, Some(42)))
    );
    assert_eq!(
        intent_for_button("PAID:7"),
        Some((Intent::AlreadyPaid, Some(7)))
    );
    assert_eq!(
        intent_for_button("OFFICER"),
        Some((Intent::OfficerRequest, None))
    );
    assert_eq!(intent_for_button("STOP:1"), Some((Intent::OptOut, Some(1))));
    assert_eq!(
        intent_for_button("PAID:INV-2026-0042"),
        Some((Intent::AlreadyPaid, None))
    );
    assert_eq!(intent_for_button("pay_now:INV-1"), None);
    assert_eq!(intent_for_button(""), None);
}

#[test]
fn mixed_and_regional_phrasing() {
    use Intent::*;
    let cases: &[(&str, Intent)] = &[
        ("done ya pak", AlreadyPaid),
        ("Sampun kulo bayar wingi", AlreadyPaid),
        ("sudah saya tf tadi, tolong dicek", AlreadyPaid),
        ("Sudah diterima belum pembayaran kami?", AlreadyPaid),
        ("I already paid yesterday", AlreadyPaid),
        ("tgl 25 kami bayar lunas ya pak", PromiseToPay),
        ("Nggih pak, mangke kulo transfer", PromiseToPay),
        ("Dereng pak", PromiseToPay),
        ("Belum gajian pak", PromiseToPay),
        ("habis lebaran ya pak", PromiseToPay),
        ("Masih menunggu dana dari pusat", PromiseToPay),
        ("Sabar pak, pasti dibayar", PromiseToPay),
        ("Mboten saget bayar sakniki", InstallmentRequest),
        ("Boleh dibayar 2 kali?", InstallmentRequest),
        ("Boleh bayar per bulan?", InstallmentRequest),
        ("Bisa minta perpanjangan waktu?", InstallmentRequest),
        ("Kami belum mampu membayar", InstallmentRequest),
        ("karyawan tinggal 1, yang lain sudah keluar", Dispute),
        ("Saya sudah pensiun, perusahaan sudah tutup", Dispute),
        ("maaf pak kami tidak punya tunggakan", Dispute),
        ("Kami keberatan dengan tagihan ini", Dispute),
        ("lho kok ada denda?", Dispute),
        (
            "Saya sudah bayar bulan lalu tapi kok masih ada tagihan",
            Dispute,
        ),
        ("Sudah bukan karyawan di sana", WrongNumber),
        ("salah orang pak", WrongNumber),
        ("Mohon info total tunggakan", AmountInquiry),
        ("How much do I owe?", AmountInquiry),
        ("Kalau telat kena denda berapa persen?", Question),
        ("Kapan batas pembayarannya?", Question),
        ("Maaf, dengan siapa ini?", Question),
        ("Tiap hari ditelepon, mengganggu sekali", Complaint),
        ("saya sudah muak ditagih terus", Complaint),
        ("Ngapain wa terus sih", Complaint),
        ("Jangan chat saya terus", OptOut),
        ("saya tanyakan dulu ke atasan", Acknowledgement),
        (
            "Oke nanti saya sampaikan ke bagian keuangan",
            Acknowledgement,
        ),
        (
            "Terima kasih pak, sudah kami terima pesannya",
            Acknowledgement,
        ),
        (
            "mohon maaf mengganggu, minta rincian tagihan",
            AmountInquiry,
        ),
        ("Please call me tomorrow", OfficerRequest),
        ("tolong hub saya", OfficerRequest),
        ("udah beres pak", AlreadyPaid),
        ("Sudah diurus sama bagian keuangan", AlreadyPaid),
        ("sudah kami proses kemarin", AlreadyPaid),
        ("akan kami proses", PromiseToPay),
        ("total tagihan?", AmountInquiry),
        ("jumlah tunggakan?", AmountInquiry),
        ("kami sudah tidak pakai BPJS", Dispute),
        ("kami sudah mengajukan penonaktifan", Dispute),
        ("Perusahaan sudah tidak ada", Dispute),
        ("Kok tagihannya naik?", Dispute),
        ("Saya bukan pemiliknya", WrongNumber),
        ("Saya keberatan dihubungi lewat WA", OptOut),
        ("Mohon hapus data saya", OptOut),
        ("Maaf pak, bulan ini belum bisa", PromiseToPay),
        ("Sudah ya pak, barusan", AlreadyPaid),
        ("SDH BYR PAK", AlreadyPaid),
        ("Tidak bisa login SIPP", Unknown),
        ("Iya bu, nanti kami kabari", Acknowledgement),
        ("Kantor BPJS terdekat dimana?", Question),
        ("Mau bayar via mobile banking gimana?", PaymentLinkRequest),
        ("Karyawan sudah tidak ada", Dispute),
        ("Kami sudah lapor non aktif", Dispute),
        ("Saya akan lapor ke ombudsman", Complaint),
        ("Kenapa terus-terusan kirim pesan?", Complaint),
        ("Bisa bayar di Indomaret?", Question),
        ("Tidak bisa bayar full", InstallmentRequest),
        ("Oke, nanti kami bayar setelah dana masuk", PromiseToPay),
        ("sudah pak kemarin", AlreadyPaid),
        ("Tes", Unknown),
        ("sudha bayar", AlreadyPaid),
        ("atos bayar", AlreadyPaid),
        ("udeh bayar", AlreadyPaid),
        ("hatur nuhun", Acknowledgement),
        ("engke dibayar", PromiseToPay),
        ("wokeh", Acknowledgement),
        ("besok saya kabari", Acknowledgement),
        ("sudah transfer, mau kirim bukti", AlreadyPaid),
        ("sudah bayar, besok saya kirim buktinya", AlreadyPaid),
        ("besok kami transfer, sudah siap dananya", PromiseToPay),
        ("Senin kantor buka?", Question),
        ("Jatuh tempo tanggal berapa?", Question),
        ("Kemarin hari senin saya sudah bayar", AlreadyPaid),
        ("Boleh minta nomor telepon AR nya?", OfficerRequest),
    ];
    let misses: Vec<String> = cases
        .iter()
        .map(|(p, want)| (p, want, classify(p, at(), Jakarta)))
        .filter(|(_, want, c)| c.intent != **want)
        .map(|(p, want, c)| format!("{p:?}: want {want}, got {}", c.intent))
        .collect();
    assert!(misses.is_empty(), "{misses:#?}");
}

#[test]
fn spans_and_month_names_resolve() {
    let c = |t| classify(t, at(), Jakarta);
    assert_eq!(c("akhir maret ya pak").promised_date, Some(d(2026, 3, 31)));
    assert_eq!(
        c("awal april insyaallah").promised_date,
        Some(d(2026, 4, 5))
    );
    assert_eq!(
        c("Saya minta waktu 2 minggu").promised_date,
        Some(d(2026, 3, 17))
    );
    assert_eq!(
        c("dalam 5 hari kami lunasi").promised_date,
        Some(d(2026, 3, 8))
    );
    assert_eq!(
        c("I will pay next monday").promised_date,
        Some(d(2026, 3, 9))
    );
    assert_eq!(
        c("tgl dua puluh kami bayar").promised_date,
        Some(d(2026, 3, 20))
    );
    assert_eq!(c("minngu depan").intent, Intent::PromiseToPay);
    let past = c("10/3/2025 kami bayar");
    assert_eq!(
        (past.intent, past.promised_date),
        (Intent::PromiseToPay, None)
    );
    assert_eq!(
        c("ok noted, will pay on friday").promised_date,
        Some(d(2026, 3, 6))
    );
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_text_at_any_instant(text in "\\PC{0,80}", secs in -8_000_000_000_000i64..8_000_000_000_000i64) {
            let at = DateTime::from_timestamp(secs, 0).unwrap_or_default();
            let c = classify(&text, at, Jakarta);
            prop_assert!(c.promised_date.is_none() || c.intent == Intent::PromiseToPay);
        }

        #[test]
        fn date_words_at_the_ends_of_time(
            words in prop::collection::vec(prop::sample::select(vec![
                "besok", "lusa", "tgl", "31", "30/12", "senin", "depan", "minggu", "akhir",
                "bulan", "awal", "ini", "hari", "lagi", "3", "desember", "jan", "tanggal", "muda",
                "bayar", "sudah", "belum", "?", "jumat", "2100", "29/2",
            ]), 0..8),
            at in prop::sample::select(vec![
                DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::UNIX_EPOCH,
            ]),
        ) {
            let text = words.join(" ");
            for tz in [Jakarta, Makassar, Jayapura] {
                let _ = classify(&text, at, tz);
            }
        }
    }
}

/// The misses the issue names, and their kind: tense decides promise vs
/// claim, a payment word after "kode" names a thing, "2x" is instalments.
#[test]
fn tense_and_speech_act_decide_between_promise_claim_and_request() {
    let oct = Utc.with_ymd_and_hms(2026, 10, 21, 2, 40, 0).unwrap();
    let nov = Utc.with_ymd_and_hms(2026, 11, 27, 9, 5, 0).unwrap();
    let c = classify("insya allah 1 desember sudah lunas", oct, Jakarta);
    assert_eq!(
        (c.intent, c.promised_date),
        (Intent::PromiseToPay, Some(d(2026, 12, 1)))
    );
    let c = classify("minggu depan sudah kami lunasi", oct, Jakarta);
    assert_eq!(c.intent, Intent::PromiseToPay);
    // A plain report stays a report, with or without a rolled-over day.
    assert_eq!(
        classify("sudah bayar tgl 2", oct, Jakarta).intent,
        Intent::AlreadyPaid
    );
    assert_eq!(
        classify("kemarin sudah lunas", oct, Jakarta).intent,
        Intent::AlreadyPaid
    );
    let c = classify(
        "bisa kirim kode bayarnya lagi? yg kemarin hilang",
        oct,
        Jakarta,
    );
    assert_eq!(c.intent, Intent::PaymentLinkRequest);
    let c = classify("Januari tahun depan baru bisa bayar", nov, Jakarta);
    assert_eq!(
        (c.intent, c.promised_date),
        (Intent::PromiseToPay, Some(d(2027, 1, 5)))
    );
    let c = classify("by end of this month", oct, Jakarta);
    assert_eq!(
        (c.intent, c.promised_date),
        (Intent::PromiseToPay, Some(d(2026, 10, 31)))
    );
    assert_eq!(
        classify("boleh bayar 2x pak?", oct, Jakarta).intent,
        Intent::InstallmentRequest
    );
    // A period just past is the bill's, not a day: no promise for September.
    assert_eq!(
        classify("sudah bayar september", oct, Jakarta).intent,
        Intent::AlreadyPaid
    );
}

#[test]
fn two_statements_in_one_reply_are_both_kept() {
    let oct = Utc.with_ymd_and_hms(2026, 10, 21, 2, 40, 0).unwrap();
    let c = classify("sudah bayar september, yg oktober tgl 30", oct, Jakarta);
    assert_eq!(
        (c.intent, c.promised_date),
        (Intent::PromiseToPay, Some(d(2026, 10, 30)))
    );
    assert_eq!(c.also, Some(Intent::AlreadyPaid));
    let c = classify(
        "tolong kirim kode bayarnya, hari ini kami transfer",
        oct,
        Jakarta,
    );
    assert_eq!(c.also, Some(Intent::PaymentLinkRequest));
    // A receipt to follow is not a second payment.
    let c = classify("sudah bayar, besok saya kirim buktinya", oct, Jakarta);
    assert_eq!((c.intent, c.also), (Intent::AlreadyPaid, None));
}

#[test]
fn a_promise_and_a_claim_in_one_clause_compete_and_lower_the_confidence() {
    let clear = classify("besok kami transfer", at(), Jakarta);
    assert!(clear.confidence >= 0.85, "{clear:?}");
    assert_eq!(clear.runner_up, None);
    // Paid on the 30th of last month, or paying on the 30th of this one?
    let torn = classify("sudah bayar tgl 30", at(), Jakarta);
    assert!(torn.confidence < clear.confidence, "{torn:?}");
    assert!(torn.runner_up.is_some(), "{torn:?}");
    assert!(classify("sedang rapat", at(), Jakarta).confidence < 0.5);
}

#[test]
fn chat_shorthand_number_words_english_and_malay_normalise() {
    let t = |s: &str| normalize(s).text();
    assert_eq!(t("udh dbyr kmrn mlm"), "sudah dibayar kemarin malam");
    assert_eq!(t("sm orgnya udh dtrf"), "sama orangnya sudah ditransfer");
    assert_eq!(t("prshn udh tutup"), "perusahaan sudah tutup");
    assert_eq!(t("totalny brp"), "totalnya berapa");
    assert_eq!(t("jgn kirim2 lg"), "jangan kirim lagi");
    assert_eq!(t("tgl2"), "tanggal 2");
    assert_eq!(t("bayar 2x"), "bayar 2 kali");
    assert_eq!(t("tanggal dua puluh lima"), "tanggal 25");
    assert_eq!(t("on the 30th"), "on the tanggal 30");
    assert_eq!(t("We'll pay next friday"), "kami akan bayar jumat depan");
    assert_eq!(t("minggu hadapan saya bayar"), "minggu depan saya bayar");
    assert_eq!(t("hujung bulan"), "akhir bulan");
    // Real words stay themselves.
    assert_eq!(t("siap, ditunggu"), "siap ditunggu");
    assert_eq!(t("lewat bank"), "lewat bank");
    assert_eq!(
        normalize("sudah bayar, yg oktober tgl 30").clause_starts,
        [0, 2]
    );
}
