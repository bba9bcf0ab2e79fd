//! Turns an informal Indonesian WhatsApp reply into canonical tokens: lower
//! case, no punctuation, slang and Javanese expanded, enclitics stemmed.

/// How the emoji in a message lean, for replies that are nothing but emoji.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmojiTone {
    #[default]
    None,
    Positive,
    Negative,
    Neutral,
}

/// A reply reduced to what the rules look at.
#[derive(Debug, Clone, Default)]
pub struct Normalized {
    /// Canonical words, in order.
    pub words: Vec<String>,
    /// The same words with Indonesian affixes stripped (`pembayarannya` → `bayar`).
    pub stems: Vec<String>,
    pub question_mark: bool,
    pub exclamation: bool,
    pub emoji: EmojiTone,
    /// Where each clause starts (token indices, the first always 0 when
    /// there are words): sentences and comma-separated parts, so "sudah
    /// bayar september, yg oktober tgl 30" is read as two statements.
    pub clause_starts: Vec<usize>,
}

impl Normalized {
    /// The canonical words joined by single spaces.
    pub fn text(&self) -> String {
        self.words.join(" ")
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Whether token `i` matches `atom`: alternatives separated by `|`, each
    /// exact or (ending in `*`) a prefix, tried on the word and on its stem.
    pub fn matches(&self, i: usize, atom: &str) -> bool {
        let (Some(w), Some(s)) = (self.words.get(i), self.stems.get(i)) else {
            return false;
        };
        atom.split('|').any(|alt| match alt.strip_suffix('*') {
            Some(prefix) => w.starts_with(prefix) || s.starts_with(prefix),
            None => w == alt || s == alt,
        })
    }

    /// Positions where the space-separated `pattern` matches consecutive tokens.
    pub fn find(&self, pattern: &str) -> Vec<usize> {
        let atoms: Vec<&str> = pattern.split_whitespace().collect();
        if atoms.is_empty() || atoms.len() > self.len() {
            return Vec::new();
        }
        (0..=self.len() - atoms.len())
            .filter(|&start| {
                atoms
                    .iter()
                    .enumerate()
                    .all(|(k, a)| self.matches(start + k, a))
            })
            .collect()
    }

    pub fn has(&self, pattern: &str) -> bool {
        !self.find(pattern).is_empty()
    }

    pub fn has_any(&self, patterns: &[&str]) -> bool {
        patterns.iter().any(|p| self.has(p))
    }

    /// `a` followed by `b` with at most `gap` tokens between them.
    pub fn near(&self, a: &str, b: &str, gap: usize) -> bool {
        (0..self.len()).any(|i| {
            self.matches(i, a)
                && (i + 1..=(i + 1 + gap).min(self.len() - 1)).any(|j| self.matches(j, b))
        })
    }

    /// Whether token `i` is preceded, within `window` tokens, by `atom`.
    pub fn preceded_by(&self, i: usize, atom: &str, window: usize) -> bool {
        (i.saturating_sub(window)..i).any(|j| self.same_clause(i, j) && self.matches(j, atom))
    }

    /// The clauses as their own replies (each keeps the message's emoji and
    /// marks; a question mark counts for the clause it ends).
    pub fn clauses(&self) -> Vec<Normalized> {
        let mut starts = self.clause_starts.clone();
        starts.push(self.len());
        starts
            .windows(2)
            .filter(|w| w[0] < w[1])
            .map(|w| Normalized {
                words: self.words[w[0]..w[1]].to_vec(),
                stems: self.stems[w[0]..w[1]].to_vec(),
                question_mark: self.question_mark,
                exclamation: self.exclamation,
                emoji: self.emoji,
                clause_starts: vec![0],
            })
            .collect()
    }

    /// Whether tokens `i` and `j` are in the same clause.
    pub fn same_clause(&self, i: usize, j: usize) -> bool {
        let (lo, hi) = (i.min(j), i.max(j));
        !self.clause_starts.iter().any(|&s| lo < s && s <= hi)
    }

    /// Words that are not fillers (honorifics, particles).
    pub fn content_words(&self) -> Vec<&str> {
        self.words
            .iter()
            .map(String::as_str)
            .filter(|w| !is_filler(w))
            .collect()
    }
}

/// Honorifics and particles that carry no intent of their own.
pub fn is_filler(w: &str) -> bool {
    matches!(
        w,
        "pak"
            | "bu"
            | "bapak"
            | "ibu"
            | "kak"
            | "mas"
            | "mbak"
            | "min"
            | "gan"
            | "bos"
            | "bang"
            | "dik"
            | "kok"
            | "dong"
            | "deh"
            | "sih"
            | "nih"
            | "lah"
            | "kah"
            | "loh"
            | "lho"
            | "kan"
            | "toh"
            | "yah"
            | "nah"
            | "ya"
            | "yang"
            | "ini"
            | "itu"
            | "kami"
            | "saya"
            | "sir"
            | "madam"
            | "maam"
            | "please"
            | "mohon"
            | "tolong"
    )
}

/// Normalises `text` for the intent rules and the date resolver.
pub fn normalize(text: &str) -> Normalized {
    let mut out = Normalized::default();
    let lower = english_contractions(&text.to_lowercase());
    let chars: Vec<char> = lower.chars().collect();
    let mut buf = String::with_capacity(lower.len());
    let mut tones = (0u32, 0u32, 0u32);
    for (i, &c) in chars.iter().enumerate() {
        let prev = if i > 0 { chars[i - 1] } else { ' ' };
        let next = chars.get(i + 1).copied().unwrap_or(' ');
        match c {
            c if c.is_alphanumeric() => buf.push(c),
            // wa'alaikumsalam, jum'at: the apostrophe joins one word.
            '\'' | '’' | '`' | '‘' if prev.is_alphabetic() && next.is_alphabetic() => {}
            // Keep day/month separators for 30/10, 30-10 and thousands in 1.500.000.
            '/' | '-' | '.' if prev.is_ascii_digit() && next.is_ascii_digit() => {
                buf.push(if c == '.' { '.' } else { '/' })
            }
            '?' | '¿' => {
                out.question_mark = true;
                buf.push_str(CLAUSE_BREAK);
            }
            '!' | '¡' => {
                out.exclamation = true;
                buf.push_str(CLAUSE_BREAK);
            }
            ',' | '.' | ';' | ':' | '\n' => buf.push_str(CLAUSE_BREAK),
            _ => {
                match emoji_tone(c) {
                    EmojiTone::Positive => tones.0 += 1,
                    EmojiTone::Negative => tones.1 += 1,
                    EmojiTone::Neutral => tones.2 += 1,
                    EmojiTone::None => {}
                }
                buf.push(' ');
            }
        }
    }
    out.emoji = if tones.1 > 0 && tones.1 >= tones.0 {
        EmojiTone::Negative
    } else if tones.0 > 0 {
        EmojiTone::Positive
    } else if tones.2 > 0 {
        EmojiTone::Neutral
    } else {
        EmojiTone::None
    };

    // Acronyms written in capitals (SIPP, JHT) are names, not stretched slang.
    let acronyms: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3 && w.chars().all(|c| c.is_uppercase()))
        .map(str::to_lowercase)
        .collect();
    let mut words: Vec<String> = Vec::new();
    for raw in buf.split_whitespace() {
        if raw == CLAUSE_BREAK.trim() {
            words.push(raw.to_owned());
            continue;
        }
        let pieces = split_letters_digits(&unreduplicate(raw));
        for (k, piece) in pieces.iter().enumerate() {
            if acronyms.contains(piece) && expand(piece).is_none() {
                words.push(piece.clone());
                continue;
            }
            // "25th": kept for `numbers_to_digits`.
            if matches!(piece.as_str(), "st" | "nd" | "rd" | "th")
                && k > 0
                && pieces[k - 1].bytes().all(|b| b.is_ascii_digit())
            {
                words.push(piece.clone());
                continue;
            }
            // "2x", "3 x": so many times (instalments, or paid twice).
            if piece == "x" && k > 0 && pieces[k - 1].bytes().all(|b| b.is_ascii_digit()) {
                words.push("kali".to_owned());
                continue;
            }
            let piece = collapse_repeats(piece);
            match canonical(&piece) {
                Some(c) => words.extend(c.split(' ').map(str::to_owned)),
                None => words.push(piece),
            }
        }
    }
    for w in numbers_to_digits(rewrite_phrases(words)) {
        if w == CLAUSE_BREAK.trim() {
            if out.clause_starts.last() != Some(&out.words.len()) {
                out.clause_starts.push(out.words.len());
            }
        } else {
            out.words.push(w);
        }
    }
    if out.clause_starts.first() != Some(&0) {
        out.clause_starts.insert(0, 0);
    }
    out.clause_starts.retain(|&s| s == 0 || s < out.words.len());
    if out.words.is_empty() {
        out.clause_starts.clear();
    }
    out.stems = out.words.iter().map(|w| stem(w)).collect();
    out
}

/// Marks the end of a clause in the token stream; never a word itself.
const CLAUSE_BREAK: &str = " \u{1} ";

/// "we'll", "I'm", "don't": the apostrophe would otherwise glue them into
/// one unknown word.
fn english_contractions(s: &str) -> String {
    s.replace(['’', '‘'], "'")
        .replace("n't", " not")
        .replace("'ll", " will")
        .replace("'re", " are")
        .replace("'ve", " have")
        .replace("'m", " am")
        .replace("'d", " would")
}

/// The canonical form of one chat token: a known abbreviation, a one-slip
/// typo, a word written without its vowels (`dbyr`, `mlm`, `prshn`), with a
/// clipped `-ny(a)` (`totalny`, `orgnya`) or a bare `d-` prefix (`dtrf`).
fn canonical(w: &str) -> Option<String> {
    if let Some(e) = expand(w) {
        return Some(e.to_owned());
    }
    if LEXICON.contains(&w) || w.chars().any(|c| !c.is_ascii_lowercase()) {
        return None;
    }
    if let Some(t) = correct_typo(w) {
        return Some(t.to_owned());
    }
    if let Some(f) = fill_vowels(w) {
        return Some(f.to_owned());
    }
    // `-nya` clipped or glued to an abbreviation: `totalny`, `orgnya`.
    for suffix in ["nya", "ny"] {
        if let Some(rest) = w.strip_suffix(suffix).filter(|r| r.len() >= 2) {
            let base = expand(rest)
                .filter(|e| !e.contains(' '))
                .or_else(|| LEXICON.contains(&rest).then_some(rest))
                .or_else(|| fill_vowels(rest));
            if let Some(b) = base {
                return Some(format!("{b}nya"));
            }
        }
    }
    // The passive `di-` written as a bare `d`: `dtrf`, `dbyr`, `dcicil`.
    if let Some(rest) = w
        .strip_prefix('d')
        .filter(|r| r.len() >= 2 && !r.starts_with('i'))
    {
        let verb = expand(rest)
            .or_else(|| LEXICON.contains(&rest).then_some(rest))
            .or_else(|| fill_vowels(rest))
            .map(|v| v.strip_prefix("di").unwrap_or(v));
        if let Some(v) = verb.filter(|v| PASSIVE_VERBS.contains(v)) {
            return Some(format!("di{v}"));
        }
    }
    None
}

/// Verbs whose passive (`dibayar`, `ditransfer`) people shorten to `d…`.
const PASSIVE_VERBS: &[&str] = &[
    "bayar", "bayarkan", "transfer", "cicil", "kirim", "tagih", "lunas", "lunasi", "setor",
    "telepon", "hubungi", "proses", "urus", "cek", "hapus", "blokir",
];

/// Words chat writers shorten by dropping vowels, and real words that
/// must stay themselves. A vowel-less token maps to the one word here with
/// the same consonants (one `n`, `h` or `r` may be dropped too: `stgh`).
const LEXICON: &[&str] = &[
    "dibayar",
    "dibayarkan",
    "bayarkan",
    "bayar",
    "ditransfer",
    "transfer",
    "kemarin",
    "malam",
    "pagi",
    "siang",
    "sore",
    "sama",
    "orang",
    "kayak",
    "kayaknya",
    "bukan",
    "salah",
    "kirim",
    "karyawan",
    "keluar",
    "semua",
    "setengah",
    "dulu",
    "perusahaan",
    "tagih",
    "ditagih",
    "terus",
    "masih",
    "tapi",
    "lunas",
    "belum",
    "sudah",
    "bisa",
    "sini",
    "sana",
    "nanti",
    "bulan",
    "depan",
    "minggu",
    "tanggal",
    "hari",
    "besok",
    "lusa",
    "cicil",
    "dicicil",
    "kode",
    "nomor",
    "berapa",
    "total",
    "denda",
    "info",
    "tolong",
    "telepon",
    "mohon",
    "kasih",
    "terima",
    "gajian",
    "mau",
    "tidak",
    "jangan",
    "lagi",
    "pesan",
    "iuran",
    "tunggakan",
    "rekening",
    "bukti",
    "kapan",
    "kenapa",
    "siapa",
    "banyak",
    "sekarang",
    "langsung",
    "pembayaran",
    "sebelum",
    "setelah",
    "hubungi",
    "petugas",
    "kantor",
    "cabang",
    "karena",
    "saja",
    "baik",
    "minta",
    "boleh",
    "usah",
    "kalau",
    "dana",
    "uang",
    "gaji",
    "sih",
    "bos",
    "hp",
    "bank",
    "bri",
    "bni",
    "bca",
    "btn",
    "bsi",
    "mandiri",
    "atm",
    "va",
    "qris",
    "pt",
    "cv",
    "ini",
    "itu",
    "ada",
    "bagian",
    "keuangan",
    "proses",
    "urus",
    "setor",
    "resmi",
    "kerja",
    "tahun",
    "lalu",
    "cek",
    "hapus",
    "blokir",
    "tutup",
    "ganti",
    "punya",
    "milik",
    "sms",
    "jam",
    "kami",
    "saya",
    "kita",
    "dari",
    "untuk",
    "dengan",
    "yang",
    "pak",
    "bu",
    "ya",
    // real words that look like shorthand for another one above
    "siap",
    "sip",
    "oke",
    "tunggu",
    "maaf",
    "tahu",
    "kaya",
    "saat",
    "buat",
    "juga",
    "atau",
    "akan",
    "mana",
    "kamu",
    "dia",
    "jadi",
    "beli",
    "bila",
    "baru",
    "sini",
    "situ",
    "sampai",
    "pas",
    "pun",
    "per",
    "tiap",
    "via",
    "lewat",
    "kas",
    "sisa",
    "biar",
    "coba",
    "kok",
    "nah",
    "bank",
    "kali",
    "bos",
    "tim",
    "staf",
    "hrd",
    "pic",
    "spt",
    "npwp",
    "nik",
    "npp",
    "sipp",
];

/// The lexicon word `w` abbreviates by dropping vowels, if exactly one fits.
fn fill_vowels(w: &str) -> Option<&'static str> {
    let vowel = |c: char| matches!(c, 'a' | 'e' | 'i' | 'o' | 'u');
    // Two vowels left is still shorthand (`kluar`, `kryawan`); more is a word.
    let vowels = w.chars().filter(|c| vowel(*c)).count();
    if w.len() < 2 || vowels > 2 {
        return None;
    }
    let skeleton = |x: &str| -> String { x.chars().filter(|c| !vowel(*c)).collect() };
    let sk = skeleton(w);
    if sk.len() < 2 {
        return None;
    }
    let first = w.chars().next()?;
    let fits = |cand: &str| {
        if !cand.starts_with(first) || !is_subsequence(w, cand) {
            return false;
        }
        let full = skeleton(cand);
        if vowels == 2 {
            return full == sk && cand.len() > w.len();
        }
        full == sk
            || (full.len() == sk.len() + 1
                && sk.len() >= 3
                && !w.chars().any(vowel)
                && is_subsequence(&sk, &full)
                && full
                    .chars()
                    .zip(sk.chars().chain(std::iter::once(' ')))
                    .find(|(a, b)| a != b)
                    .is_some_and(|(a, _)| matches!(a, 'n' | 'h' | 'r')))
    };
    let mut hits = LEXICON.iter().filter(|c| fits(c));
    let one = hits.next()?;
    hits.next().is_none().then_some(*one)
}

fn is_subsequence(short: &str, long: &str) -> bool {
    let mut it = long.chars();
    short.chars().all(|c| it.any(|l| l == c))
}

/// `kirim2` → `kirim`, `mudah2an` → `mudahmudahan`: the `2` doubles the word
/// (Indonesian reduplication), it is not a number — except after a date
/// word (`tgl2` is the 2nd).
fn unreduplicate(raw: &str) -> String {
    let Some(pos) = raw.find('2') else {
        return raw.to_owned();
    };
    let (word, rest) = raw.split_at(pos);
    let tail = &rest[1..];
    let date_word = matches!(
        word,
        "tgl"
            | "tg"
            | "tanggal"
            | "bln"
            | "bulan"
            | "jam"
            | "jm"
            | "pukul"
            | "hari"
            | "no"
            | "nomor"
    );
    if word.len() < 3 || !word.chars().all(|c| c.is_alphabetic()) || date_word {
        return raw.to_owned();
    }
    match tail {
        "" => word.to_owned(),
        "an" | "nya" => format!("{word}{word}{tail}"),
        _ => raw.to_owned(),
    }
}

/// Number words as digits, so dates, spans and counts read the same
/// whichever way they were written: "dua puluh lima" → `25`, "tiga" → `3`,
/// "twenty five" → `25`, "30th" → `30`.
fn numbers_to_digits(words: Vec<String>) -> Vec<String> {
    fn unit(w: &str) -> Option<u32> {
        Some(match w {
            "satu" | "one" => 1,
            "dua" | "two" => 2,
            "tiga" | "three" => 3,
            "empat" | "four" => 4,
            "lima" | "five" => 5,
            "enam" | "six" => 6,
            "tujuh" | "seven" => 7,
            "delapan" | "eight" => 8,
            "sembilan" | "nine" => 9,
            _ => return None,
        })
    }
    fn whole(w: &str) -> Option<u32> {
        Some(match w {
            "sepuluh" | "ten" => 10,
            "sebelas" | "eleven" => 11,
            "twelve" => 12,
            "thirteen" => 13,
            "fourteen" => 14,
            "fifteen" => 15,
            "sixteen" => 16,
            "seventeen" => 17,
            "eighteen" => 18,
            "nineteen" => 19,
            "twenty" => 20,
            "thirty" => 30,
            _ => {
                if let Some(u) = w.strip_suffix("belas").and_then(unit) {
                    return Some(10 + u);
                }
                if let Some((t, u)) = w.split_once("puluh") {
                    let t = unit(t)?;
                    return match u {
                        "" => Some(t * 10),
                        u => Some(t * 10 + unit(u)?),
                    };
                }
                return None;
            }
        })
    }
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        let next = words.get(i + 1).map(String::as_str).unwrap_or("");
        let after = words.get(i + 2).map(String::as_str).unwrap_or("");
        let (value, used) = if let Some(u) = unit(w) {
            match next {
                "belas" => (Some(10 + u), 2),
                "puluh" => match unit(after) {
                    Some(v) => (Some(u * 10 + v), 3),
                    None => (Some(u * 10), 2),
                },
                _ => (Some(u), 1),
            }
        } else if let Some(v) = whole(w) {
            match unit(next) {
                Some(u) if v % 10 == 0 && v >= 20 => (Some(v + u), 2),
                _ => (Some(v), 1),
            }
        } else {
            (None, 1)
        };
        match value {
            Some(v) => out.push(v.to_string()),
            // "the 25th" is a day of the month.
            None if next_is_ordinal_suffix(w, next) => {
                out.push("tanggal".to_owned());
                out.push(w.to_owned());
                i += 1;
            }
            None => out.push(words[i].clone()),
        }
        i += used;
    }
    out
}

/// `25` followed by `th` (the letters were split from the digits).
fn next_is_ordinal_suffix(w: &str, next: &str) -> bool {
    !w.is_empty()
        && w.len() <= 2
        && w.bytes().all(|b| b.is_ascii_digit())
        && matches!(next, "st" | "nd" | "rd" | "th")
}

fn emoji_tone(c: char) -> EmojiTone {
    match c {
        '👍' | '👌' | '🙏' | '✅' | '✔' | '😊' | '🙂' | '😀' | '😁' | '😃' | '😄' | '👏' | '❤'
        | '♥' | '💪' | '🤝' | '☺' | '🆗' | '😉' | '🥰' | '😍' | '🤗' | '💯' | '👋' | '🫡'
        | '🌹' | '💐' | '🌷' | '🥹' => EmojiTone::Positive,
        '😡' | '🤬' | '😠' | '👎' | '😤' | '💢' | '🖕' | '😒' | '🙄' | '😾' => {
            EmojiTone::Negative
        }
        c if ('\u{1F300}'..='\u{1FAFF}').contains(&c) || ('\u{2600}'..='\u{27BF}').contains(&c) => {
            EmojiTone::Neutral
        }
        _ => EmojiTone::None,
    }
}

/// `tgl20` → `tgl 20`, `20okt` → `20 okt`; date tokens such as `30/10` stay whole.
fn split_letters_digits(raw: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut cur_digit: Option<bool> = None;
    for c in raw.chars() {
        let is_digit = c.is_ascii_digit() || c == '/' || c == '.';
        if let Some(d) = cur_digit {
            if d != is_digit && !cur.is_empty() {
                parts.push(std::mem::take(&mut cur));
            }
        }
        cur_digit = Some(is_digit);
        cur.push(c);
    }
    if !cur.is_empty() {
        parts.push(cur);
    }
    parts
}

/// Drops stretched letters: `okeee` → `oke`, `siapp` → `siap`, `yaa` → `ya`.
fn collapse_repeats(w: &str) -> String {
    if w.chars().any(|c| c.is_ascii_digit()) {
        return w.to_owned();
    }
    let mut out: Vec<char> = Vec::with_capacity(w.len());
    let chars: Vec<char> = w.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut j = i;
        while j < chars.len() && chars[j] == c {
            j += 1;
        }
        let run = j - i;
        out.push(c);
        // Doubled letters are real in `saat`, `maaf`, `tunggakan`; three or more never are.
        if run == 2 {
            out.push(c);
        }
        i = j;
    }
    // A doubled final letter is stretching (`siapp`, `okk`), except in English
    // words such as `call`, `staff`, `free`, `too`, `miss`.
    let n = out.len();
    if n >= 3
        && out[n - 1] == out[n - 2]
        && !matches!(out[n - 1], 'l' | 's' | 'f' | 'e' | 'o' | 't')
    {
        out.pop();
    }
    out.into_iter().collect()
}

/// Slang, abbreviations, Javanese and English expanded to canonical Indonesian.
// One lookup table, one line per canonical word: its length is the
// vocabulary's, not logic to split.
fn expand(w: &str) -> Option<&'static str> {
    Some(match w {
        // sudah / belum / tidak
        "sdh" | "udh" | "udah" | "dah" | "sudh" | "sdah" | "sudahh" | "uda" | "udha" | "sampun"
        | "mpun" | "udeh" | "atos" | "parantos" | "wes" | "wis" | "uwis" | "uwes" | "sdhh"
        | "suda" | "sudaa" => "sudah",
        "blm" | "belom" | "blum" | "blom" | "dereng" | "durung" | "belon" => "belum",
        "ga" | "gak" | "nggak" | "ngga" | "engga" | "enggak" | "tdk" | "gk" | "g" | "ndak"
        | "nda" | "gag" | "kagak" | "ora" | "mboten" | "boten" | "tida" | "tidk" | "tdak"
        | "not" | "ngak" | "nggk" | "ngk" | "kaga" => "tidak",
        "jgn" | "jngn" | "jangn" | "ojo" | "dont" => "jangan",
        // dates
        "tgl" | "tg" | "tangal" | "tnggl" | "tggl" | "tanggl" | "tglnya" | "date" => "tanggal",
        "bsk" | "besuk" | "bsok" | "besok2" | "sesok" | "enjing" | "mbenjang" | "esok"
        | "tomorrow" | "tmrw" | "tmr" | "bsoknya" | "besoknya" => "besok",
        "lsa" | "lusa2" => "lusa",
        "mgg" | "mg" | "mggu" | "mingu" | "week" | "pekan" => "minggu",
        "dpn" | "dpan" | "dep" | "next" => "depan",
        "bln" | "bulan2" | "month" | "sasi" => "bulan",
        "skrg" | "skrang" | "skr" | "skarang" | "sekarang2" | "now" | "saiki" | "sakniki"
        | "sakmeniko" => "sekarang",
        "nnt" | "ntar" | "entar" | "nanti2" | "ntr" | "mangke" | "engke" | "engko" | "later"
        | "nti" => "nanti",
        "td" | "tdi" => "tadi",
        "kmrn" | "kmarin" | "kemaren" | "kmren" | "kmaren" | "wingi" | "yesterday" => "kemarin",
        "today" => "hari ini",
        "tonight" => "malam ini",
        "hr" => "hari",
        "jum" | "jmt" | "jumaat" | "friday" | "fri" => "jumat",
        "monday" | "mon" => "senin",
        "sel" | "tuesday" | "tue" => "selasa",
        "wednesday" | "wed" | "rebo" => "rabu",
        "thursday" | "thu" | "kemis" => "kamis",
        "sab" | "saturday" | "sat" | "setu" => "sabtu",
        "sunday" | "sun" | "ahad" => "minggu",
        "akhr" | "ahir" | "end" => "akhir",
        "tngh" => "tengah",
        // payment
        "tf" | "trf" | "trsf" | "trnsfr" | "transfr" | "trans" | "tranfer" | "tranfser"
        | "trasfer" | "transf" | "ditf" | "transferan" => "transfer",
        "byr" | "bayr" | "bayat" | "mbayar" | "pay" | "bayarr" => "bayar",
        "dibyr" | "dibyar" | "dibayarkan" => "dibayar",
        "lns" | "lunass" | "lunasin" => "lunas",
        "nyicil" | "nyicl" | "nyicilan" | "ngicil" | "cicil2" | "installment" | "instalment" => {
            "cicil"
        }
        "paid" => "paid",
        "payment" | "pembyran" | "pmbayaran" | "pembayran" => "pembayaran",
        "transferred" | "transfered" => "transfer",
        "owe" | "debt" | "arrears" => "utang",
        "amount" => "jumlah",
        "bill" | "bills" | "invoice2" => "tagihan",
        "fine" | "penalty" | "dnda" => "denda",
        "discount" => "diskon",
        "contact" => "kontak",
        "hub" | "hbgi" | "hubungin" | "hubungi2" | "hubgi" => "hubungi",
        "brp" | "brpa" | "berapaan" | "pinten" | "piro" | "brapa" | "bpa" => "berapa",
        "tgihan" | "tghn" | "tagihanya" => "tagihan",
        "rek" | "norek" => "rekening",
        "byrnya" => "bayarnya",
        // people and pronouns
        "sy" | "aku" | "gue" | "gw" | "ane" | "kulo" | "kula" | "sya" | "q" | "me" | "i" => "saya",
        "kmi" | "kami2" | "kita" | "we" | "us" => "kami",
        "kry" | "kary" | "karyawan2" | "krywn" | "karyawannya" | "pegawai2" | "employee"
        | "employees" | "staff" => "karyawan",
        "pt" | "cv" | "perusahaan2" | "company" => "perusahaan",
        "pic" | "pj" => "pic",
        "hrd" => "hrd",
        // communication
        "ditelpon" | "ditelfon" | "ditlpn" | "telponin" | "ditelponin" => "ditelepon",
        "tlp" | "telp" | "telpon" | "tlpn" | "telfon" | "tilp" | "tel" | "phone" | "call"
        | "ditelp" | "ditlp" | "telepon2" | "nelpon" | "telephone" | "calling" | "tlfn" | "tlf" => {
            "telepon"
        }
        "wa" | "whatsapp" | "whatsap" | "watsap" | "wasap" | "chat" | "japri" | "dm"
        | "message" | "msg" | "sms" | "pesan2" => "wa",
        "no" | "nmr" | "nomer" | "nomr" | "number" | "nmor" => "nomor",
        // connectives
        "dgn" | "dg" | "dng" | "dengan2" | "with" => "dengan",
        "yg" | "yng" | "ingkang" => "yang",
        "krn" | "karna" | "krna" | "soalnya" | "because" => "karena",
        "lg" | "lgi" | "agi" | "again" => "lagi",
        "utk" | "untk" | "tuk" | "for" => "untuk",
        "tp" | "tpi" | "tapi2" | "but" | "tetapi" | "namun" => "tapi",
        "sm" | "ama" | "sama2" => "sama",
        "dr" | "dri" | "from" => "dari",
        "krm" | "krim" | "kirimin" | "kirimkan" | "send" => "kirim",
        "tlg" | "tolongin" | "tlng" | "tulung" | "pls" | "plis" | "plz" | "mohon2" => "tolong",
        "gmn" | "gimana" | "gmna" | "bgmn" | "bgm" | "gmana" | "pripun" | "piye" | "how"
        | "gimn" => "bagaimana",
        "knp" | "kenapa2" | "ngapain" | "why" | "napa" | "knapa" => "kenapa",
        "sapa" | "sopo" | "who" => "siapa",
        "opo" | "what" => "apa",
        "dmn" | "dimn" | "where" => "dimana",
        "kmn" | "kmana" => "kemana",
        "bs" | "bsa" | "bisaa" | "isa" | "can" | "saget" | "iso" => "bisa",
        "sdg" | "sdang" => "sedang",
        "org" | "orng" => "orang",
        "bnyk" | "byk" | "bnyak" => "banyak",
        "smua" | "smw" | "semua2" | "semuanya" | "kabeh" | "all" => "semua",
        "dlu" | "dl" | "dulu2" => "dulu",
        "jd" | "jdi" => "jadi",
        "sdkt" | "dikit" => "sedikit",
        "aja" | "aj" | "saja2" => "saja",
        "msh" | "masi" | "masih2" | "isih" => "masih",
        "ad" | "enek" | "ono" => "ada",
        "sblm" | "sebelom" => "sebelum",
        "stlh" | "stelah" | "sesudah" | "abis" | "habis" | "bar" | "after" => "setelah",
        "gaji" | "gajihan" | "gajian2" | "payday" => "gajian",
        "sgr" | "sgera" | "soon" | "asap" => "secepatnya",
        "insyaallah" | "insyallah" | "insya" | "inshaallah" | "insha" | "insallah" | "isya"
        | "insaallah" | "inshallah" | "inysaallah" | "isnyaallah" | "ish" => "insyaallah",
        "mksh" | "makasih" | "makasi" | "mkasih" | "maksh" | "makasii" | "mksih" | "trims"
        | "trimakasih" | "terimakasih" | "thx" | "thanks" | "thank" | "tq" | "ty" | "tks"
        | "thanx" | "suwun" | "nuwun" | "nuhun" | "maturnuwun" | "trmksh" | "trmakasih"
        | "tengkyu" | "makacih" | "mkch" | "tx" => "makasih",
        "ok" | "oke" | "wokeh" | "woke" | "okey" | "okay" | "okee" | "okeh" | "oks" | "okei"
        | "k" | "okk" | "okey2" | "oce" | "oc" => "oke",
        "sip" | "siip" | "sipsip" => "sip",
        "siap2" | "siyap" | "ready" | "siapp" | "siaap" => "siap",
        "y" | "iya" | "iy" | "yaa" | "yup" | "yes" | "yess" | "yoi" | "njih" | "nggih"
        | "inggih" | "enggih" | "ho" | "yaps" | "ya2" | "ea" | "yo" | "iyaa" | "iyah" | "iye" => {
            "ya"
        }
        "bpk" | "bp" | "pk" => "pak",
        "ib" | "buk" | "bun" => "bu",
        "mba" | "mbk" => "mbak",
        "bgt" | "bngt" | "banget" => "sekali",
        "waalaikumsalam" | "walaikumsalam" | "waalaikum" | "waalaikumussalam" | "wlkmslm"
        | "waalaikumsalaam" | "walaikum" | "waalaikumsallam" | "wslm" | "wsalam"
        | "waalaykumsalam" => "waalaikumsalam",
        "assalamualaikum" | "asalamualaikum" | "assalamu" | "aslm" | "ass" | "assalamualaikom"
        | "asw" => "assalamualaikum",
        "stp" | "unsub" | "unsubscribe" | "stopp" | "stopped" | "berenti" | "brenti" | "brhnti" => {
            "stop"
        }
        "spamm" | "nyepam" | "nyepem" => "spam",
        "cs" => "cs",
        "info" | "inpo" | "infokan" => "info",
        "rincian" | "rinciannya" | "perincian" | "detail" | "details" | "detil" | "breakdown" => {
            "rincian"
        }
        // Malay
        "semalam" => "kemarin",
        "hadapan" => "depan",
        "hujung" => "akhir",
        "hantar" | "hantarkan" | "dihantar" => "kirim",
        "mesej" => "pesan",
        "nombor" => "nomor",
        "syarikat" => "perusahaan",
        "ansuran" => "cicilan",
        "ni" => "ini",
        "bayaran" => "pembayaran",
        "telefon" => "telepon",
        "kod" => "kode",
        // more chat Indonesian
        "klo" | "kalo" | "kl" => "kalau",
        "mudahmudahan" | "moga" | "mudah2an" | "semoga2" => "semoga",
        // English
        "will" | "shall" | "gonna" => "akan",
        "already" => "sudah",
        "settle" | "settled" => "lunasi",
        "half" => "setengah",
        "rest" | "remainder" | "balance" => "sisanya",
        "installments" | "instalments" => "cicil",
        "waive" | "waived" | "remove" | "removed" => "hapus",
        "fee" | "fees" | "fines" => "denda",
        "outstanding" | "arrear" => "tunggakan",
        "due" => "tagihan",
        "messaging" | "messages" | "texting" | "sending" => "wa",
        "my" => "saya",
        "our" => "kami",
        "closed" | "close" => "tutup",
        "operating" | "operate" | "operational" => "beroperasi",
        "anymore" => "lagi",
        "work" | "working" | "works" => "kerja",
        "only" => "hanya",
        "branch" => "cabang",
        "office" => "kantor",
        "keep" | "keeps" => "terus",
        "every" | "each" => "setiap",
        "day" | "days" => "hari",
        "weeks" => "minggu",
        "months" => "bulan",
        "wrong" => "salah",
        "morning" => "pagi",
        "afternoon" => "siang",
        "evening" => "sore",
        "night" => "malam",
        "this" => "ini",
        "last" => "lalu",
        "latest" => "lambat",
        "within" => "dalam",
        "beginning" | "early" => "awal",
        "middle" | "mid" => "pertengahan",
        "btw" | "eh" | "hmm" | "hm" | "emm" | "em" | "wkwk" | "hehe" | "hihi" | "haha"
        | "wkwkwk" => "hehe",
        _ => return None,
    })
}

/// Keywords worth recognising through one slip of the thumb.
const TYPO_TARGETS: &[&str] = &[
    "sudah",
    "bayar",
    "dibayar",
    "transfer",
    "besok",
    "minggu",
    "tanggal",
    "makasih",
    "terima",
    "lunas",
    "belum",
    "tagihan",
    "tunggakan",
    "berhenti",
    "jangan",
    "petugas",
    "karyawan",
    "telepon",
    "keringanan",
    "rincian",
    "kemarin",
    "berapa",
    "insyaallah",
    "sekarang",
    "selasa",
    "jumat",
    "sabtu",
    "pembayaran",
    "dicicil",
    "cicilan",
    "nomor",
    "kirim",
    "hubungi",
    "depan",
    "bulan",
    "tolong",
    "penipuan",
];

/// Real words one edit away from a keyword, which must stay themselves.
const NOT_TYPOS: &[&str] = &[
    "susah", "tinggal", "tanggul", "salam", "bulat", "bukan", "bulak", "depak", "kirin", "tolol",
    "sudut", "sudan", "nomer", "bayan", "bayam", "hubung", "lunak", "luna", "selama", "sabun",
    "jumpa", "besar", "beras", "bosok", "belom", "rincih", "kemari", "minggir", "berada", "pangan",
    "tanggap", "tangan", "bakar", "sudan", "tangga",
];

/// The keyword `w` was meant to be, if `w` is one edit (or one swap of
/// neighbours) away from exactly one and is not a real word itself.
fn correct_typo(w: &str) -> Option<&'static str> {
    if w.chars().count() < 5 || !w.chars().all(|c| c.is_ascii_lowercase()) || NOT_TYPOS.contains(&w)
    {
        return None;
    }
    // "lunasi", "kirimi" are inflections, not slips.
    let mut hits = TYPO_TARGETS.iter().filter(|t| {
        let inflected = w.starts_with(**t) && !w.ends_with(&t[t.len() - 1..].repeat(2));
        !inflected && one_edit(w, t)
    });
    let first = hits.next()?;
    hits.next().is_none().then_some(*first)
}

/// Optimal-string-alignment distance ≤ 1, for ASCII words.
fn one_edit(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a == b || a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (ra, rb) = (&a[prefix..], &b[prefix..]);
    match ra.len().cmp(&rb.len()) {
        std::cmp::Ordering::Equal => {
            ra[1..] == rb[1..]
                || (ra.len() >= 2 && ra[0] == rb[1] && ra[1] == rb[0] && ra[2..] == rb[2..])
        }
        std::cmp::Ordering::Greater => ra[1..] == *rb,
        std::cmp::Ordering::Less => *ra == rb[1..],
    }
}

/// Multi-word English and split forms joined into the canonical phrases.
fn rewrite_phrases(words: Vec<String>) -> Vec<String> {
    const REWRITES: &[(&[&str], &[&str])] = &[
        (&["depan", "minggu"], &["minggu", "depan"]),
        (&["ini", "bulan"], &["bulan", "ini"]),
        (&["ini", "minggu"], &["minggu", "ini"]),
        (&["lalu", "minggu"], &["minggu", "lalu"]),
        (&["lalu", "bulan"], &["bulan", "lalu"]),
        (&["ini", "pagi"], &["pagi", "ini"]),
        (&["akhir", "of", "ini", "bulan"], &["akhir", "bulan", "ini"]),
        (&["no", "longer"], &["tidak", "lagi"]),
        (&["nomor", "longer"], &["tidak", "lagi"]),
        (&["laid", "off"], &["phk"]),
        (&["late", "denda"], &["denda"]),
        (&["mudah", "mudahan"], &["semoga"]),
        (&["have", "transfer"], &["sudah", "transfer"]),
        (&["has", "transfer"], &["sudah", "transfer"]),
        (&["have", "paid"], &["paid"]),
        (&["have", "been", "paid"], &["paid"]),
        (&["has", "been", "paid"], &["paid"]),
        (&["depan", "bulan"], &["bulan", "depan"]),
        (&["akhir", "of", "month"], &["akhir", "bulan"]),
        (&["akhir", "of", "the", "month"], &["akhir", "bulan"]),
        (&["akhir", "of", "bulan"], &["akhir", "bulan"]),
        (&["akhir", "of", "the", "bulan"], &["akhir", "bulan"]),
        (&["terima", "kasih"], &["makasih"]),
        (&["trima", "kasih"], &["makasih"]),
        (&["terima", "ksh"], &["makasih"]),
        (&["matur", "nuwun"], &["makasih"]),
        (&["hatur", "makasih"], &["makasih"]),
        (&["you", "makasih"], &["makasih"]),
        (&["makasih", "you"], &["makasih"]),
        (&["wa", "alaikumsalam"], &["waalaikumsalam"]),
        (&["wa", "alaikum", "salam"], &["waalaikumsalam"]),
        (&["wa", "alaikumussalam"], &["waalaikumsalam"]),
        (&["assalamu", "alaikum"], &["assalamualaikum"]),
        (&["insya", "allah"], &["insyaallah"]),
        (&["insyaallah", "allah"], &["insyaallah"]),
        (&["in", "sya", "allah"], &["insyaallah"]),
        (&["tanggal", "tua"], &["akhir", "bulan"]),
        (&["already", "paid"], &["paid"]),
        (&["already", "bayar"], &["paid"]),
        (&["di", "bayar"], &["dibayar"]),
        (&["di", "transfer"], &["ditransfer"]),
        (&["di", "cicil"], &["dicicil"]),
        (&["virtual", "account"], &["va"]),
        (&["payment", "code"], &["kode", "bayar"]),
        (&["wrong", "nomor"], &["salah", "nomor"]),
        (&["saya", "am", "not"], &["saya", "bukan"]),
        (&["do", "tidak"], &["jangan"]),
        (&["non", "aktif"], &["nonaktif"]),
        (&["customer", "service"], &["cs"]),
        (&["weekend"], &["akhir", "minggu"]),
        (&["week", "end"], &["akhir", "minggu"]),
        (&["bagaimana", "much"], &["berapa"]),
        (&["bagaimana", "to", "bayar"], &["cara", "bayar"]),
        (&["bagaimana", "do", "saya", "bayar"], &["cara", "bayar"]),
        (&["bagaimana", "can", "saya", "bayar"], &["cara", "bayar"]),
        (&["bisa", "saya", "bayar"], &["bisa", "bayar"]),
        (&["talk", "to"], &["bicara", "dengan"]),
        (&["speak", "to"], &["bicara", "dengan"]),
        (&["speak", "with"], &["bicara", "dengan"]),
        (&["talk", "dengan"], &["bicara", "dengan"]),
        (&["speak", "dengan"], &["bicara", "dengan"]),
        (&["account", "representative"], &["ar"]),
    ];
    let mut out = Vec::with_capacity(words.len());
    let mut i = 0;
    'outer: while i < words.len() {
        for (from, to) in REWRITES {
            if words.len() - i >= from.len() && from.iter().zip(&words[i..]).all(|(a, b)| a == b) {
                out.extend(to.iter().map(|s| (*s).to_owned()));
                i += from.len();
                continue 'outer;
            }
        }
        // "end of the month", "beginning of next month": the Indonesian
        // order needs no "of" or "the".
        if matches!(words[i].as_str(), "of" | "the")
            && out
                .last()
                .is_some_and(|w: &String| matches!(w.as_str(), "akhir" | "awal" | "pertengahan"))
        {
            i += 1;
            continue;
        }
        // "next friday" → "jumat depan" (but "mgg dpn rabu" is already in order).
        if words[i] == "depan"
            && !(i > 0 && matches!(words[i - 1].as_str(), "minggu" | "pekan" | "bulan"))
            && words.get(i + 1).is_some_and(|w| {
                matches!(
                    w.as_str(),
                    "senin" | "selasa" | "rabu" | "kamis" | "jumat" | "sabtu"
                )
            })
        {
            out.push(words[i + 1].clone());
            out.push("depan".to_owned());
            i += 2;
            continue;
        }
        // Javanese "wis tak transfer" is "I have transferred"; elsewhere "tak" negates.
        if words[i] == "tak" && !(i > 0 && words[i - 1] == "sudah") {
            out.push("tidak".to_owned());
        } else if words[i] == "tak" {
            out.push("saya".to_owned());
        } else {
            out.push(words[i].clone());
        }
        i += 1;
    }
    out
}

/// A light Indonesian stemmer: enclitics, then one prefix, then `-kan`/`-an`.
/// Good enough to match `pembayarannya`, `dibayar`, `dicicil`, `tunggakan`;
/// a wrong stem only matters if it collides with a keyword, and rules also
/// match the surface word.
pub fn stem(w: &str) -> String {
    if w.chars().any(|c| c.is_ascii_digit()) || w.len() < 5 {
        return w.to_owned();
    }
    let mut s = w;
    for suffix in ["nya", "lah", "kah", "pun", "ku", "mu"] {
        if let Some(rest) = s.strip_suffix(suffix) {
            if rest.len() >= 4 {
                s = rest;
                break;
            }
        }
    }
    for prefix in [
        "meng", "peng", "mem", "pem", "men", "pen", "ber", "ter", "per", "di", "ke", "me",
    ] {
        if let Some(rest) = s.strip_prefix(prefix) {
            if rest.len() >= 4 {
                s = rest;
                break;
            }
        }
    }
    for suffix in ["kan", "an"] {
        if let Some(rest) = s.strip_suffix(suffix) {
            if rest.len() >= 4 {
                s = rest;
                break;
            }
        }
    }
    s.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slang_is_expanded_and_punctuation_dropped() {
        let n = normalize("Udh TF td pagi, bsk tgl20!!");
        assert_eq!(n.text(), "sudah transfer tadi pagi besok tanggal 20");
        assert!(n.exclamation);
        assert!(!n.question_mark);
    }

    #[test]
    fn stretched_letters_collapse() {
        assert_eq!(normalize("okeeee siappp").text(), "oke siap");
        assert_eq!(normalize("makasiiih").text(), "makasih");
        assert_eq!(normalize("call me").text(), "telepon saya");
    }

    #[test]
    fn apostrophes_join_and_dates_survive() {
        assert_eq!(normalize("Wa'alaikumsalam").text(), "waalaikumsalam");
        assert_eq!(normalize("jum'at 30/10").text(), "jumat 30/10");
        assert_eq!(normalize("tgl 30-10-2026").text(), "tanggal 30/10/2026");
    }

    #[test]
    fn emoji_tone_is_recorded() {
        let n = normalize("👍");
        assert!(n.is_empty());
        assert_eq!(n.emoji, EmojiTone::Positive);
        assert_eq!(normalize("😡😡").emoji, EmojiTone::Negative);
    }

    #[test]
    fn one_slip_typos_are_corrected_but_real_words_are_not() {
        assert_eq!(normalize("sudha bayar").text(), "sudah bayar");
        assert_eq!(normalize("sduah trnsfer").text(), "sudah transfer");
        assert_eq!(normalize("minngu depan").text(), "minggu depan");
        assert_eq!(normalize("tanggall 20").text(), "tanggal 20");
        assert_eq!(normalize("maksih").text(), "makasih");
        assert_eq!(normalize("susah").text(), "susah");
        assert_eq!(
            normalize("tinggal saya sendiri").text(),
            "tinggal saya sendiri"
        );
        assert_eq!(normalize("salam").text(), "salam");
    }

    #[test]
    fn stems_strip_affixes() {
        assert_eq!(stem("pembayarannya"), "bayar");
        assert_eq!(stem("dibayar"), "bayar");
        assert_eq!(stem("tagihannya"), "tagih");
        assert_eq!(stem("dicicil"), "cicil");
        assert_eq!(stem("bulan"), "bulan");
    }
}
