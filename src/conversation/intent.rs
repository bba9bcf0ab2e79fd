//! Ordered rules over normalised tokens. The order is the policy: the first
//! rule that fires wins, so the most consequential readings come first
//! (a wrong number or an opt-out must never be mistaken for a promise, and a
//! dispute hidden behind "sudah bayar" must reach an officer).
//!
//! Atoms: `a|b` alternatives, `x*` a prefix, matched on the word or its stem
//! (see [`Normalized::matches`]).

use super::dates;
use super::normalize::{EmojiTone, Normalized};
use super::Intent;
use chrono::NaiveDate;

/// Verbs and channels that mean money moved (or will).
const PAY: &str = "bayar*|dibayar|terbayar|kebayar|transfer*|ditransfer|setor*|disetor|lunas|lunasi|dilunasi|paid|bukti|teller|atm|mbanking|urus|diurus|proses|diproses|beres*|selesai|diselesaikan|kelar";
/// Verbs of a payment still to come.
const PAY_FUTURE: &str = "bayar*|dibayar|transfer*|ditransfer|setor*|lunas*|dilunasi|urus*|diurus|proses*|diproses|selesai*|diselesaikan|tindaklanjuti|ditindaklanjuti|bereskan|diberes*|beres*|lunasin";
/// Words marking something already done.
const DONE: &str = "sudah|telah|barusan|kemarin|tadi|done|baru|already";
const NEGATION: &str = "belum|tidak|jangan|bukan";
const EMPLOYEES: &str =
    "karyawan*|pegawai*|pekerja*|buruh|tk|tenaga|anggota|peserta*|staf|orangnya";
const CHANNEL: &str = "kirim*|dikirim|wa|diwa|hubungi|dihubungi|hubung*|ganggu*|telepon|ditelepon|pesan|spam|reminder|pengingat|tagih*|ditagih|broadcast|notif*|chatting|kontak";

/// What the rules make of a reply: the winning intent, how sure they are,
/// and the next reading that fired, so a caller can ask rather than guess.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub intent: Intent,
    pub date: Option<NaiveDate>,
    /// 0..1: how strong the winning rule's evidence is, lowered when a
    /// reading with a different consequence also fired.
    pub confidence: f64,
    /// The best other reading whose consequence differs (promise vs paid,
    /// opt-out vs complaint), if any fired.
    pub runner_up: Option<Intent>,
    /// A second request made in its own clause of the same reply
    /// ("sudah bayar september, yg oktober tgl 30": a promise and a claim).
    pub also: Option<Intent>,
}

pub fn decide(n: &Normalized, today: NaiveDate) -> Decision {
    if let Some(mixed) = mixed(n, today) {
        return mixed;
    }
    let fired = readings(n, today);
    let (intent, date, strength) = fired
        .first()
        .copied()
        .unwrap_or((Intent::Unknown, None, 0.3));
    let runner_up = fired
        .iter()
        .skip(1)
        .find(|(i, _, _)| consequence(*i) != consequence(intent) && consequence(*i) != SOFT)
        .map(|(i, _, s)| (*i, *s));
    // A competing reading that would do something else halves the margin.
    let confidence = match runner_up {
        Some((_, rival)) => strength * (1.0 - 0.5 * rival),
        None => strength,
    };
    Decision {
        intent,
        date,
        confidence: (confidence * 100.0).round() / 100.0,
        runner_up: runner_up.map(|(i, _)| i),
        also: None,
    }
}

/// Two statements in separate clauses that each stand on their own: a
/// dated promise beside a payment claim or a request for the code or the
/// amount. The promise leads (it decides when the bot speaks again); the
/// other is recorded too.
fn mixed(n: &Normalized, today: NaiveDate) -> Option<Decision> {
    let clauses = n.clauses();
    if clauses.len() < 2 {
        return None;
    }
    let leads: Vec<(Intent, Option<NaiveDate>, f64)> = clauses
        .iter()
        .filter_map(|c| readings(c, today).first().copied())
        .filter(|(i, _, _)| consequence(*i) != SOFT)
        .collect();
    let promise = leads
        .iter()
        .find(|(i, d, _)| *i == Intent::PromiseToPay && d.is_some())?;
    let other = leads.iter().find(|(i, _, _)| {
        matches!(
            i,
            Intent::AlreadyPaid | Intent::PaymentLinkRequest | Intent::AmountInquiry
        )
    })?;
    // Anything else said alongside (a dispute, an opt-out) is not a plain
    // pair: the whole-message reading decides.
    if leads
        .iter()
        .any(|(i, _, _)| *i != Intent::PromiseToPay && *i != other.0)
    {
        return None;
    }
    Some(Decision {
        intent: Intent::PromiseToPay,
        date: promise.1,
        confidence: (promise.2.min(other.2) * 100.0).round() / 100.0,
        runner_up: None,
        also: Some(other.0),
    })
}

/// Readings that change nothing by themselves (a question, a greeting):
/// they never compete with one that acts.
const SOFT: u8 = 6;

/// What the bot does about an intent, coarsely: two intents in the same
/// group compete harmlessly, two in different groups do not.
fn consequence(i: Intent) -> u8 {
    match i {
        Intent::PromiseToPay => 1,
        Intent::AlreadyPaid => 2,
        Intent::OptOut | Intent::WrongNumber => 3,
        Intent::Dispute
        | Intent::Complaint
        | Intent::InstallmentRequest
        | Intent::OfficerRequest => 4,
        Intent::PaymentLinkRequest | Intent::AmountInquiry => 5,
        Intent::Question | Intent::Acknowledgement | Intent::Unknown => SOFT,
    }
}

/// Every reading whose rule fires, in the policy's order, each with the
/// strength of its evidence (0..1).
fn readings(n: &Normalized, today: NaiveDate) -> Vec<(Intent, Option<NaiveDate>, f64)> {
    let mut out = Vec::new();
    if n.is_empty() {
        let intent = match n.emoji {
            EmojiTone::Negative => (Intent::Complaint, 0.7),
            EmojiTone::Positive => (Intent::Acknowledgement, 0.8),
            EmojiTone::Neutral => (Intent::Acknowledgement, 0.5),
            EmojiTone::None if n.question_mark => (Intent::Question, 0.5),
            EmojiTone::None => (Intent::Unknown, 0.3),
        };
        out.push((intent.0, None, intent.1));
        return out;
    }
    let date = dates::resolve(n, today);
    // A claim is made in one clause: "sudah bayar, besok kirim bukti" claims,
    // "insyaallah 1 desember sudah lunas" plans.
    let paid = n.clauses().iter().any(|c| {
        let d = dates::resolve(c, today);
        paid_claim(c, planned(c, d, today), d.is_some())
    });

    let mut push = |i: Intent, d: Option<NaiveDate>, s: f64| {
        if !out.iter().any(|(x, _, _)| *x == i) {
            out.push((i, d, s));
        }
    };
    if wrong_number(n) {
        push(Intent::WrongNumber, None, 0.9);
    }
    if opt_out(n) {
        push(Intent::OptOut, None, 0.9);
    }
    if strong_complaint(n) {
        push(Intent::Complaint, None, 0.85);
    }
    if dispute(n, paid) {
        push(Intent::Dispute, None, 0.8);
    }
    if paid {
        push(Intent::AlreadyPaid, None, 0.85);
    }
    if installment(n, date.is_some()) {
        push(Intent::InstallmentRequest, None, 0.8);
    }
    if weak_complaint(n) {
        push(Intent::Complaint, None, 0.6);
    }
    if officer(n) {
        push(Intent::OfficerRequest, None, 0.8);
    }
    if payment_link(n) {
        push(Intent::PaymentLinkRequest, None, 0.85);
    }
    if amount(n) {
        push(Intent::AmountInquiry, None, 0.8);
    }
    if legitimacy_question(n) {
        push(Intent::Question, None, 0.8);
    }
    if let Some(d) = date {
        // "besok kantor buka?" and "besok saya kabari" name a day without
        // promising to pay on it.
        let pays = has_word(n, PAY_FUTURE);
        let follow_up = has_word(
            n,
            "cek|dicek|kabari|dikabari|kabar*|tanyakan|ditanyakan|sampaikan|disampaikan|konfirmasi|dikonfirmasi|info*|hubungi|bukti*",
        );
        if pays || (!n.question_mark && !follow_up) {
            push(Intent::PromiseToPay, Some(d), if pays { 0.9 } else { 0.75 });
        }
    }
    if undated_promise(n) {
        push(Intent::PromiseToPay, None, 0.7);
    }
    if question(n) {
        push(Intent::Question, None, 0.55);
    }
    if acknowledgement(n) {
        push(Intent::Acknowledgement, None, 0.7);
    }
    out
}

/// Whether a clause speaks of the future, so that even "sudah lunas" in it
/// is what will be true then ("insyaallah 5 nop sudah lunas", "minggu depan
/// sudah kami lunasi", "baru bisa bayar januari"). A past day (kemarin,
/// tadi, bulan lalu) always makes it a report.
fn planned(c: &Normalized, date: Option<NaiveDate>, today: NaiveDate) -> bool {
    if dates::mentions_past(c) || has_word(c, "lalu|sejak") {
        return false;
    }
    let strong = has_word(c, FUTURE)
        || c.has("baru bisa|boleh|ada|mau|dapat|sanggup|siap")
        || c.has("mau|ingin|hendak bayar*|transfer*|lunas*|setor*");
    // A day ahead: a rolled-over "tgl 2" after "sudah bayar" is a day
    // already gone, so a plainly done clause needs "besok"/"depan" too.
    let ahead = date.is_some_and(|d| d > today && (d - today).num_days() <= 200);
    let near_words = has_word(c, "besok|lusa|depan|nanti|akhir|awal|pertengahan|lagi");
    let plainly_done = c.near("sudah|telah", PAY, 2) || c.near("sudah|telah", DONE_ACTS, 2);
    strong || (near_words && (ahead || !plainly_done)) || (ahead && !plainly_done)
}

/// Verbs of carrying something out, which with "sudah/telah" and a payment
/// noun report a payment ("pembayaran telah kami lakukan").
const DONE_ACTS: &str = "lakukan|melakukan|dilakukan|laksanakan|dilaksanakan|selesaikan|diselesaikan|kirimkan|dikirimkan|bayarkan|dibayarkan|setorkan|disetorkan";

/// Words that put a payment in the future whatever else the clause says.
const FUTURE: &str = "insyaallah|semoga|akan|menyusul|rencana*|direncanakan|rencanakan|jadwal*|dijadwalkan|jadwalkan|usahakan|diusahakan|upayakan|diupayakan|pasti|targetkan|ditargetkan|bermaksud|berencana";

/// Nouns that make a following payment word a name, not an act: "kode
/// bayar", "bukti transfer", "cara pembayaran".
const PAY_NOUN_HEADS: &str = "kode|nomor|link|tautan|cara|metode|struk|va|rekening|rincian|info*|jumlah|total|tagihan|tempat|channel|jalur";

/// A payment verb at `i` that is an act (not "kode bayar") and not negated.
fn pay_act(n: &Normalized, i: usize, atom: &str) -> bool {
    n.matches(i, atom) && !n.preceded_by(i, PAY_NOUN_HEADS, 1)
}

fn has_word(n: &Normalized, atom: &str) -> bool {
    (0..n.len()).any(|i| n.matches(i, atom))
}

/// `a` and `b` within `gap` tokens of each other, in either order.
fn together(n: &Normalized, a: &str, b: &str, gap: usize) -> bool {
    n.near(a, b, gap) || n.near(b, a, gap)
}

fn negated(n: &Normalized, i: usize) -> bool {
    n.preceded_by(i, NEGATION, 2)
}

/// "sudah bayar", "udh tf td pagi", "lunas", "paid", "bukti transfer", a
/// bare "sudah". Not "belum bayar", not "besok sudah kami transfer".
fn paid_claim(n: &Normalized, future_only: bool, dated: bool) -> bool {
    if future_only {
        return false;
    }
    if has_word(n, "paid") && !n.has("tidak|belum paid") {
        return true;
    }
    // "lunas" with a date and nothing done is a plan: "tgl 25 kami bayar lunas".
    let lunas = (0..n.len()).any(|i| n.matches(i, "lunas") && !negated(n, i));
    if lunas && (has_word(n, DONE) || !dated) {
        return true;
    }
    // "Sudah diterima belum pembayaran kami?": asking after a payment made.
    if n.has("pembayaran|transferan|setoran kami|saya")
        && has_word(n, "sudah|masuk|diterima|terima|cek|dicek")
    {
        return true;
    }
    if n.has("bukti transfer*|bayar*|setor*|tf|pembayaran") {
        return true;
    }
    // "pembayaran telah kami lakukan", "sudah kami laksanakan transfernya".
    if n.near("sudah|telah", DONE_ACTS, 2)
        && has_word(
            n,
            "pembayaran|transfer*|setoran|iuran|tunggakan|tagihan|bayar*",
        )
        && !has_word(n, NEGATION)
    {
        return true;
    }
    let verb_done = (0..n.len()).any(|i| {
        pay_act(n, i, PAY)
            && !negated(n, i)
            && !n.preceded_by(i, "akan|mau|nanti|siap|bisa|segera|rencana*", 2)
            && (n.preceded_by(i, DONE, 3)
                || (i + 1..(i + 4).min(n.len()))
                    .any(|j| n.matches(j, "kemarin|tadi|barusan|sudah")))
    });
    if verb_done {
        return true;
    }
    // A bare "sudah (pak)" answering a reminder means it is paid.
    let content = n.content_words();
    !content.is_empty()
        && (content.contains(&"sudah") || content.contains(&"done"))
        && content.iter().all(|w| {
            matches!(
                *w,
                "sudah"
                    | "done"
                    | "makasih"
                    | "oke"
                    | "kok"
                    | "semua"
                    | "ya"
                    | "barusan"
                    | "tadi"
                    | "kemarin"
                    | "beres"
                    | "selesai"
                    | "kelar"
                    | "clear"
            )
        })
}

fn wrong_number(n: &Normalized) -> bool {
    if n.has_any(&[
        "salah nomor|sambung|orang|kirim|alamat|kontak|wa|nomer|penerima|kirim*",
        "wrong",
        "bukan nomor",
        "nomor pribadi",
        "tidak kenal",
        "tidak tahu perusahaan",
        "tidak ada hubungan",
    ]) {
        return true;
    }
    if n.near("bukan", "pic*|pemilik*|owner*|bagian*|pengurus*|hrd|orangnya|admin*|bendahara*|keuangan|penanggung*|wewenang*|urusan*|yang|punya|milik", 2)
        && !n.has("bukan karyawan*|pegawai*")
    {
        return true;
    }
    if n.has("saya bukan karyawan*|pegawai*|staf")
        || n.has("bukan karyawan*|pegawai*|staf di|disana|disitu|sana|situ|lagi")
    {
        return true;
    }
    if has_word(n, "nomor")
        && has_word(n, "ganti|pindah|dipakai|milik")
        && !has_word(n, EMPLOYEES)
        && !legitimacy_question(n)
    {
        return true;
    }
    // "saya (selaku staf) sudah tidak (lagi) bertugas/bekerja di sana".
    let left = (0..n.len()).any(|i| {
        n.matches(i, "tidak")
            && n.preceded_by(i, "saya", 6)
            && (i + 1..(i + 3).min(n.len())).any(|j| n.matches(j, "kerja|bekerja|bertugas|kerjo"))
    });
    if left {
        return true;
    }
    // The contact left the company: "saya sudah tidak kerja di PT itu".
    // "karyawan saya sudah keluar" is a dispute, so employees must not be the subject.
    if has_word(n, EMPLOYEES) {
        return false;
    }
    n.has_any(&[
        "tidak kerja|bekerja|kerjo di|disana|disitu|lagi",
        "tidak di perusahaan",
        "resign|keluar|pensiun dari",
    ]) || (n.near("saya", "resign|keluar|pensiun|pindah", 2)
        && !has_word(n, "tutup|bubar*|bangkrut|pailit"))
}

fn opt_out(n: &Normalized) -> bool {
    let closure = has_word(
        n,
        "operasi|beroperasi|produksi|usaha|toko|pabrik|perusahaan|tutup|bisnis",
    );
    if has_word(n, "stop") && !closure {
        return true;
    }
    if n.has_any(&["stop|berhenti kirim*|mengirim|wa|hubungi|ganggu*|spam|tagih*|menagih|pesan"]) {
        return true;
    }
    // A bare "berhenti", give or take courtesies ("mohon maaf, berhenti").
    let content: Vec<&str> = n
        .content_words()
        .into_iter()
        .filter(|w| {
            !matches!(
                *w,
                "maaf"
                    | "selamat"
                    | "pagi"
                    | "siang"
                    | "sore"
                    | "malam"
                    | "makasih"
                    | "oke"
                    | "halo"
                    | "saja"
                    | "aja"
            )
        })
        .collect();
    if content.len() <= 2 && content.first().is_some_and(|w| *w == "berhenti") {
        return true;
    }
    // "jangan kirim lagi", "tidak usah wa saya", "gak mau dihubungi".
    let requests: Vec<usize> = (0..n.len())
        .filter(|&i| {
            n.matches(i, "jangan")
                || (n.matches(i, "tidak") && n.matches(i + 1, "usah|perlu|mau|ingin|butuh"))
        })
        .collect();
    if n.near(
        "keberatan|menolak|bersedia",
        "dihubungi|hubungi|wa|diwa|pesan|kirim*|dikirim|telepon|ditelepon|chat|sms",
        3,
    ) {
        return true;
    }
    let no_more = (0..n.len()).any(|i| {
        n.matches(i, "tidak")
            && (n.matches(i + 1, "lagi") || n.preceded_by(i, "mohon|tolong|harap|untuk|please", 2))
            && (i + 1..(i + 4).min(n.len())).any(|j| n.matches(j, CHANNEL))
    });
    if no_more {
        return true;
    }
    let asks_silence = requests.iter().any(|&i| {
        (i + 1..(i + 5).min(n.len()))
            .any(|j| n.matches(j, CHANNEL) || (n.matches(j, "lagi") && j == i + 1))
    });
    if asks_silence {
        return true;
    }
    n.has_any(&[
        "hapus*|dihapus|delete|remove|keluarkan nomor|saya|kontak|data",
        "blokir*|diblokir|block*",
        "opt out",
    ]) && !has_word(n, "denda*")
}

fn strong_complaint(n: &Normalized) -> bool {
    // "saya laporkan ke atasan" is passing it on, not a complaint.
    if n.near(
        "lapor|laporkan|melaporkan|laporin",
        "atasan|pimpinan|bos|direktur|owner|keuangan|pusat|manajemen|kantor|hrd",
        3,
    ) {
        return false;
    }
    // Reporting a change ("sudah lapor nonaktif", "lapor upah") is routine,
    // not a threat; reporting *someone* is.
    let reports = n
        .words
        .iter()
        .any(|w| matches!(w.as_str(), "lapor" | "laporkan" | "melaporkan" | "laporin"))
        && has_word(n, "ke|kepada|kalian|anda|kamu|berwajib|pihak")
        && !has_word(
            n,
            "nonaktif|penonaktifan|upah|gaji|data|karyawan*|perubahan|pengurangan",
        );
    // Surface words only: the stem of "upah yang dilaporkan" is "lapor" too.
    reports
        || n.words.iter().any(|w| {
            w.starts_with("viral")
                || matches!(
                    w.as_str(),
                    "ombudsman"
                        | "ojk"
                        | "polisi"
                        | "polda"
                        | "polres"
                        | "pengacara"
                        | "somasi"
                        | "diviralkan"
                        | "medsos"
                        | "sosmed"
                        | "pengaduan"
                        | "mengadu"
                        | "adukan"
                        | "komplain"
                        | "complain"
                        | "keluhan"
                        | "dpr"
                        | "dprd"
                        | "ylki"
                        | "menteri"
                )
        })
}

fn weak_complaint(n: &Normalized) -> bool {
    if n.emoji == EmojiTone::Negative {
        return true;
    }
    if has_word(
        n,
        "ganggu*|terganggu|mengganggu|spam|kesal|kecewa|jengkel|marah|kasar|teror*|meneror|resah|muak|bosan|capek|risih|annoying|parah|keterlaluan|sopan|ribet|buruk|jelek",
    ) && !n.near("maaf", "ganggu*|mengganggu", 2)
    {
        return true;
    }
    if n.has_any(&[
        "kurang ajar",
        "tiap|setiap hari",
        "terus menerus|terusan",
        "berkali kali",
        "berulang*",
    ]) {
        return true;
    }
    n.near(CHANNEL, "terus|mulu|melulu|trus", 1)
}

fn dispute(n: &Normalized, paid: bool) -> bool {
    // Paid yet still billed: the payment record is what is disputed.
    if has_word(n, "kok|naik") && has_word(n, "tagih*|tunggak*|denda*|iuran*") {
        return true;
    }
    if paid && n.has("dua|2 kali|kali") {
        return true;
    }
    if paid
        && has_word(n, "masih|kok|tapi|kenapa|tetap|tetep|malah")
        && has_word(n, "tagih*|ditagih|tunggak*|muncul|tercatat|masuk|update*|terupdate|denda*|belum|ada|terbaca")
    {
        return true;
    }
    if has_word(
        n,
        "tutup|ditutup|bubar*|dibubarkan|bangkrut|pailit|nonaktif|dinonaktifkan|nonaktifkan|vakum|keliru|kelebihan|dobel|double|ganda|keberatan|sanggah*|kebesaran|kemahalan|meninggal|wafat|almarhum",
    ) {
        return true;
    }
    if n.has_any(&[
        "gulung tikar",
        "tidak beroperasi|operasi|produksi|aktif|jalan|berjalan",
        "tidak ada kegiatan|usaha|aktivitas|operasional",
        "berhenti|stop beroperasi|operasi|produksi|usaha|berusaha",
        "usaha|perusahaan|toko sudah mati|dijual|berhenti|stop",
        "usaha|perusahaan|toko|pabrik sudah tidak ada",
        "usaha|perusahaan|toko|pabrik tidak ada",
        "tidak sesuai|cocok|benar|valid|akurat",
        "bukan segitu|sebesar|sebanyak",
        "tidak segitu|sebesar|sebanyak",
        "tidak pernah daftar*|terdaftar|mendaftar|menunggak|telat|ikut|punya",
        "tidak merasa",
        "tidak ada|punya tunggakan|utang|hutang|karyawan*|pegawai*",
        "tidak|belum pernah|ada|punya tunggakan|utang|hutang",
        "sudah tidak ikut|pakai|menggunakan|memakai|terdaftar|aktif|memakai",
        "penonaktifan|dinonaktifkan",
        "tidak menunggak",
        "tinggal saya sendiri*",
        "tinggal sendiri*",
        "lupa dinonaktifkan|nonaktif*|lapor*|dilaporkan|dikurangi|mengurangi|dihapus",
        "terlalu besar|mahal|banyak|tinggi",
        "besar|mahal|tinggi|banyak sekali",
        "kok besar|mahal|banyak|tinggi|bisa|ada|masih",
        "beda|berbeda dengan|sama",
        "bukan tunggakan*|tagihan*|karyawan*|pegawai*",
    ]) {
        return true;
    }
    if n.has("karyawan*|pegawai*|pekerja*|tk tinggal|hanya|cuma|tersisa|sisa")
        || n.has("karyawan*|pegawai*|pekerja* sudah tidak ada|aktif|bekerja|kerja")
        || n.has("karyawan*|pegawai*|pekerja* tidak ada")
    {
        return true;
    }
    // "…padahal sudah lunas": billed for what was paid.
    if n.near(
        "padahal|sedangkan|walaupun",
        "sudah|telah|bayar*|lunas|dibayar|transfer*|tiap|setiap|rutin",
        4,
    ) {
        return true;
    }
    if together(n, EMPLOYEES, "tinggal|hanya|cuma|tersisa|sisa", 2)
        || n.near(
            "tidak|sudah tidak",
            "beroperasi|operasi|produksi|operasional|aktif",
            2,
        ) && !has_word(n, "kode|link|va|nomor")
    {
        return true;
    }
    if together(n, EMPLOYEES, "keluar|resign|berhenti|phk|diphk|dirumahkan|habis|pindah|pensiun|meninggal|nonaktif|kosong|bubar", 5) {
        return true;
    }
    together(
        n,
        "salah|kurang|lebih",
        "data|jumlah|upah*|gaji*|tagih*|nominal|hitung*|perhitungan|nama|karyawan*|iuran*|periode|angka|total*|input|denda*|pegawai*|tenaga",
        3,
    ) && !has_word(n, "berapa")
}

fn installment(n: &Normalized, dated: bool) -> bool {
    if has_word(
        n,
        "cicil*|dicicil|angsur*|diangsur|keringanan|ringan*|diringankan|sebagian|bertahap|setengah|separuh|dispensasi|relaksasi|restrukturisasi|pemutihan|diputihkan|potongan|diskon|penundaan|ditunda|tunda|dimundurkan|mundur*|kelonggaran|toleransi|nyicil",
    ) {
        return true;
    }
    if together(
        n,
        "denda*",
        "hapus*|dihapus|dihapuskan|dihilangkan|hilang*|gratis|bebas*|dibebaskan|dikurangi|kurang*|diskon|potong|dipotong|dihapuskan",
        3,
    ) {
        return true;
    }
    // "bayar 2x", "dibagi tiga kali pembayarannya": paying in parts.
    let times = (0..n.len()).any(|i| {
        n.words[i]
            .parse::<u32>()
            .is_ok_and(|k| (2..=12).contains(&k))
            && n.matches(i + 1, "kali|tahap|termin")
    });
    if (times && !has_word(n, "sudah|telah"))
        && has_word(
            n,
            "bayar*|pembayaran*|dibayar|lunas*|setor*|transfer*|cicil*|dibagi|bagi",
        )
        || n.near(
            "dibagi|bagi|pecah|split",
            "bayar*|pembayaran*|tagihan*|tunggakan*|2|3|4|dua|tiga",
            3,
        )
    {
        return true;
    }
    if has_word(n, "perpanjangan|diperpanjang|perpanjang")
        || n.has_any(&[
            "per|tiap|setiap bulan",
            "perbulan",
            "dibayar|bayar 2|dua|3|tiga|beberapa kali|tahap|termin",
        ])
    {
        return true;
    }
    if dated {
        return false;
    }
    if n.has("minta|beri|kasih|butuh waktu") {
        return true;
    }
    has_word(
        n,
        "kesulitan|sulit|susah|berat|krisis|sepi|lesu|rugi|merugi|seret|macet|bangkrut|defisit",
    ) || n.has_any(&[
        "tidak|belum mampu|sanggup|kuat",
        "tidak|belum bisa bayar*|melunasi|lunas*|transfer",
        "tidak ada dana|uang|duit|modal",
        "tidak punya dana|uang|duit",
    ])
}

fn officer(n: &Normalized) -> bool {
    let call = (0..n.len()).any(|i| {
        n.matches(
            i,
            "telepon|ditelepon|hubungi|dihubungi|hubung*|kontak|contact|vc|zoom|meet|meeting",
        ) && !n.preceded_by(i, "jangan|usah|perlu", 3)
    });
    // "Yth. Petugas, …" addresses the reader; it asks for no one.
    let person = (0..n.len()).any(|i| {
        n.matches(
            i,
            "petugas*|ar|officer|agent|operator|cs|admin|manusia|human|bicara|berbicara|ngobrol|bertemu|ketemu|jumpa|datang|kunjungi|dikunjungi|visit|mampir|diskusi|konsultasi|menemui|temui|marketing|pembina|supervisor|berkunjung",
        ) && !(i > 0 && n.matches(i - 1, "yth|kepada|dear|halo|hai|hi|hello|selamat"))
            && !(i == 0 && n.clause_starts.len() > 1 && n.clause_starts[1] <= 2)
    });
    call || person && !n.has("dari kantor")
}

fn payment_link(n: &Normalized) -> bool {
    // "Mau bayar via mobile banking gimana?": asking how to pay, not if.
    if n.question_mark
        && together(
            n,
            "bayar*|transfer*|setor*|pembayaran",
            "bagaimana|caranya",
            4,
        )
        && !has_word(n, "kalau|kalo|jika|apabila")
    {
        return true;
    }
    if has_word(n, "kode*|va|virtual|rekening|norek|link|tautan|billing|url") {
        return true;
    }
    if together(
        n,
        "bayar*|transfer*|setor*|pembayaran|bayarnya",
        "kemana|mana|dimana|caranya|cara|kmana",
        3,
    ) {
        return true;
    }
    if n.has_any(&[
        "bayarnya|pembayarannya|transfernya bagaimana",
        "bagaimana bayarnya|pembayarannya|transfernya",
    ]) {
        return true;
    }
    n.near("lewat|via|pakai|melalui|pake|ke", "apa|mana", 2) && !n.has("apa itu")
        || n.has("nomor pembayaran|bayar")
}

fn amount(n: &Normalized) -> bool {
    if has_word(n, "persen|%|prosentase|persentase") {
        return false;
    }
    if together(
        n,
        "berapa",
        "total*|tunggak*|tagih*|jumlah*|iuran*|denda*|utang*|hutang*|nominal*|kewajiban*|semua|bayar*|harus|kurang*|sisa*|biaya*|itu|nya",
        3,
    ) {
        return true;
    }
    if n.near(
        "info*|minta|kirim*|dikirim|mohon|cek",
        "total*|jumlah*|tunggak*|tagih*|nominal*|utang*|hutang*",
        3,
    ) {
        return true;
    }
    if n.question_mark && n.near("apa|berapa", "total*|jumlah*|nominal*", 3) {
        return true;
    }
    if has_word(n, "rincian|rinci*|dirinci|nominal*") {
        return true;
    }
    // "sisanya berapa?" asks; "sisanya besok kami transfer" promises.
    if has_word(n, "sisa*|kekurangan*") && (n.question_mark || !has_word(n, PAY_FUTURE)) {
        return true;
    }
    if n.has_any(&[
        "bulan|periode|tahun apa|mana|berapa",
        "berapa bulan",
        "tagihan*|tunggakan* apa",
    ]) {
        return true;
    }
    if n.question_mark
        && has_word(
            n,
            "total*|jumlah*|nominal*|besarnya|tunggakannya|tagihannya",
        )
        && !has_word(n, "apa|kenapa|mengapa|bagaimana|kapan|siapa")
    {
        return true;
    }
    let content = n.content_words();
    (n.question_mark || content.len() <= 2)
        && content
            .iter()
            .all(|w| matches!(*w, "berapa" | "total" | "totalnya" | "jumlahnya" | "jadi"))
        && !content.is_empty()
}

fn legitimacy_question(n: &Normalized) -> bool {
    has_word(
        n,
        "penipu*|tipu*|hoax|hoaks|scam|palsu|resmi|asli|benarkah|beneran",
    )
}

fn undated_promise(n: &Normalized) -> bool {
    if has_word(
        n,
        "secepatnya|segera|diusahakan|usahakan|upayakan|diupayakan|insyaallah|secepat*",
    ) {
        return true;
    }
    if together(
        n,
        "setelah|tunggu*|nunggu*|menunggu|nungguin|kalau|begitu|pas|habis",
        "gajian|dana|cair*|pencairan|termin|proyek|invoice|customer|klien|uang|modal|tagihan|duit|pembayaran|lebaran|thr|idul|tahun|panen|pusat|owner|bos|pimpinan|direktur|acc|approval",
        3,
    ) {
        return true;
    }
    if n.has("belum gajian|cair|ada|dapat|terima|acc") {
        return true;
    }
    if n.content_words() == ["belum"] || n.has("belum bisa|sempat|ada") {
        return true;
    }
    if n.near(
        "nanti|akan|mau|siap|coba|bakal|will|pasti|insyaallah|usaha*|lagi|sedang|dalam",
        PAY_FUTURE,
        3,
    ) {
        return true;
    }
    if n.near("kami|saya", PAY_FUTURE, 1) && !n.question_mark {
        return true;
    }
    let not_yet = (0..n.len()).any(|i| {
        n.matches(i, "belum") && (i + 1..(i + 4).min(n.len())).any(|j| pay_act(n, j, PAY))
    });
    if not_yet {
        return true;
    }
    let content = n.content_words();
    content.contains(&"nanti")
        && content.iter().all(|w| {
            matches!(
                *w,
                "nanti" | "ya" | "oke" | "siap" | "baik" | "dulu" | "saja"
            )
        })
}

const QUESTION_WORDS: &str = "apa|apakah|bagaimana|kenapa|mengapa|kapan|siapa|dimana|kemana|berapa|bisakah|bolehkah|maksudnya|maksud|gimana";

fn question(n: &Normalized) -> bool {
    n.question_mark
        || n.matches(0, QUESTION_WORDS)
        || n.matches(0, "bisa|boleh")
        || has_word(
            n,
            "apakah|bagaimana|kenapa|mengapa|kapan|bisakah|bolehkah|maksudnya",
        )
}

fn acknowledgement(n: &Normalized) -> bool {
    has_word(
        n,
        "oke|sip|siap|baik|makasih|noted|ya|betul|benar|mantap|ditunggu|tunggu|waalaikumsalam|assalamualaikum|salam|pagi|siang|sore|malam|halo|hallo|hai|hi|hello|selamat|mengerti|paham|diterima|cek|dicek|dicheck|check|periksa|diperiksa|sampaikan|disampaikan|teruskan|diteruskan|koordinasi*|dikoordinasikan|info|informasi*|maaf|good|nice|alhamdulillah|aamiin|amin|sama|copy|roger|understood|dipelajari|catat|dicatat|shalom|om|tanyakan|ditanyakan|tanya|konfirmasi|dikonfirmasi|diskusikan|didiskusikan|sebentar|bentar|laksanakan|dilaksanakan|okay|terima|dapat|kabari|dikabari|kabar*",
    ) || n.emoji == EmojiTone::Positive
}
