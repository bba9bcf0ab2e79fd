//! Resolves the date an employer means ("besok", "tgl 5", "senin depan",
//! "30/10", "akhir bulan") against the day the message arrived, in the
//! employer's own zone.
//!
//! Choices where the language is vague (the contract only asks for a date
//! inside the range meant):
//! - a bare weekday names the next such day, today included ("jumat" said on
//!   a Friday is today: people answering a reminder mean the nearest one);
//!   "<weekday> depan" is that day in next week (weeks run Monday–Sunday);
//! - "minggu depan" → Friday of next week (inside Mon–Fri and Mon–Sat);
//! - "akhir bulan" → the last day of the month;
//! - "awal bulan", "tanggal muda", bare "bulan depan" → the 5th of next month;
//! - "minggu ini" → Friday of this week, or today when that has passed;
//! - `tanggal N` is this month when N ≥ today, else next month; `N/M` and
//!   `N <month>` roll to next year when already past; impossible dates are
//!   ignored rather than guessed.

use super::normalize::Normalized;
use chrono::{Datelike, Days, Months, NaiveDate, Weekday};

/// The first future (or today's) date expressed in `n`, if any.
pub fn resolve(n: &Normalized, today: NaiveDate) -> Option<NaiveDate> {
    (0..n.len())
        .filter(|&i| !ruled_out(n, i))
        .find_map(|i| at(n, i, today))
}

/// "tidak bisa hari ini, besok saja": a day the sender says they cannot make.
fn ruled_out(n: &Normalized, i: usize) -> bool {
    const UNABLE: &str = "bisa|sempat|dapat|mungkin|ada|keburu";
    let before = n.preceded_by(i, "tidak|belum", 3) && n.preceded_by(i, UNABLE, 2);
    // "bulan ini belum bisa": the refusal follows the day.
    let after = (i + 1..(i + 4).min(n.len()))
        .any(|j| n.same_clause(i, j) && n.matches(j, "tidak|belum") && n.matches(j + 1, UNABLE));
    before || after
}

/// Whether the message names a past day ("kemarin", "tadi"), which makes a
/// payment verb a claim rather than a promise.
pub fn mentions_past(n: &Normalized) -> bool {
    n.has_any(&[
        "kemarin",
        "tadi",
        "barusan",
        "baru saja",
        "baru tadi",
        "minggu lalu",
        "bulan lalu",
    ])
}

fn word(n: &Normalized, i: usize) -> &str {
    n.words.get(i).map(String::as_str).unwrap_or("")
}

fn at(n: &Normalized, i: usize, today: NaiveDate) -> Option<NaiveDate> {
    let w = word(n, i);
    let next = word(n, i + 1);
    let prev = if i > 0 { word(n, i - 1) } else { "" };
    match w {
        "hari" if next == "ini" => Some(today),
        "sekarang" => Some(today),
        "besok" if next == "lusa" => today.checked_add_days(Days::new(2)),
        "besok" => today.checked_add_days(Days::new(1)),
        "lusa" => today.checked_add_days(Days::new(2)),
        "tulat" => today.checked_add_days(Days::new(3)),
        "nanti" if matches!(next, "pagi" | "siang" | "sore" | "malam") => Some(today),
        "pagi" | "siang" | "sore" | "malam" if next == "ini" || next == "nanti" => Some(today),
        "tanggal" => tanggal(n, i, today),
        "akhir" | "awal" | "pertengahan" | "tengah" if month_name(next).is_some() => {
            let first = with_rollover(1, month_name(next)?, None, first_of(today))?;
            Some(match w {
                "akhir" => end_of_month(first),
                "awal" => first.with_day(5)?,
                _ => first.with_day(15)?,
            })
        }
        "akhir" => match next {
            "bulan" => Some(end_of_month(month_offset(n, i + 2, today)?)),
            "minggu" => this_or_next(today, Weekday::Sat),
            _ => None,
        },
        "awal" => match next {
            "bulan" => {
                let this = word(n, i + 2) == "ini" && today.day() <= 5;
                if this {
                    NaiveDate::from_ymd_opt(today.year(), today.month(), 5)
                } else {
                    fifth_of_next_month(today)
                }
            }
            "minggu" => next_week_monday(today),
            _ => None,
        },
        "pertengahan" | "tengah" if next == "bulan" => {
            // "pertengahan bulan depan" names next month; plain "pertengahan
            // bulan" means this month's, or next month's once it has passed.
            let month = month_offset(n, i + 2, today)?;
            let mut d = month.with_day(15)?;
            if d < today {
                d = d.checked_add_months(Months::new(1))?;
            }
            Some(d)
        }
        "bulan" if next == "depan" && prev != "tanggal" => fifth_of_next_month(today),
        "bulan" if next == "ini" && !matches!(prev, "akhir" | "awal") => Some(end_of_month(today)),
        "minggu" => minggu(n, i, today),
        "seminggu" if next == "lagi" => today.checked_add_days(Days::new(7)),
        "sebulan" if next == "lagi" => today.checked_add_months(Months::new(1)),
        // "November 10": month first, as English writes it.
        w if month_name(w).is_some() && number(next).is_some_and(|d| (1..=31).contains(&d)) => {
            let year = number(word(n, i + 2)).filter(|y| (2000..=2100).contains(y));
            with_rollover(number(next)?, month_name(w)?, year.map(|y| y as i32), today)
        }
        w if full_month_name(w)
            && !matches!(
                prev,
                "akhir" | "awal" | "pertengahan" | "tengah" | "sejak" | "dari" | "periode"
            )
            && number(prev).is_none() =>
        {
            bare_month(month_name(w)?, n, i, today)
        }
        w if weekday(w).is_some() => {
            let wd = weekday(w)?;
            let next_week = next == "depan"
                || (matches!(next, "minggu" | "pekan") && word(n, i + 2) == "depan");
            if next_week {
                weekday_in_next_week(today, wd)
            } else {
                this_or_next(today, wd)
            }
        }
        w => {
            if let Some(d) = slash_date(w, today) {
                return Some(d);
            }
            let num = number(w)?;
            match next {
                "hari" if within(n, i) => today.checked_add_days(Days::new(num.into())),
                "minggu" if within(n, i) => today.checked_add_days(Days::new(7 * u64::from(num))),
                "bulan" if within(n, i) => today.checked_add_months(Months::new(num)),
                _ if prev != "tanggal" => day_month(num, n, i + 1, today),
                _ => None,
            }
        }
    }
}

/// A month named alone ("Desember baru bisa", "Januari tahun depan"): the
/// 5th of it, as for "bulan depan". Only a month ahead counts — within the
/// next four, or any with "tahun depan" — because a month just past or this
/// one ("sudah bayar september") names the bill's period, not a day.
fn bare_month(month: u32, n: &Normalized, i: usize, today: NaiveDate) -> Option<NaiveDate> {
    let next_year = word(n, i + 1) == "tahun" && word(n, i + 2) == "depan";
    if next_year {
        return NaiveDate::from_ymd_opt(today.year() + 1, month, 5);
    }
    let ahead = (month + 12 - today.month()) % 12;
    if ahead == 0 || ahead > 4 {
        return None;
    }
    let year = if month > today.month() {
        today.year()
    } else {
        today.year() + 1
    };
    NaiveDate::from_ymd_opt(year, month, 5)
}

/// "3 hari lagi", "dalam 2 minggu", "waktu 2 minggu": a span from today.
fn within(n: &Normalized, i: usize) -> bool {
    let prev = if i > 0 { word(n, i - 1) } else { "" };
    matches!(word(n, i + 2), "lagi" | "kedepan" | "ke")
        || matches!(
            prev,
            "dalam" | "waktu" | "sekitar" | "kurang" | "maksimal" | "maks" | "paling" | "in"
        )
}

/// "tanggal N", "tanggal N bulan depan", "tanggal N <month>", "tanggal muda".
fn tanggal(n: &Normalized, i: usize, today: NaiveDate) -> Option<NaiveDate> {
    let next = word(n, i + 1);
    if next == "muda" {
        return fifth_of_next_month(today);
    }
    if let Some(d) = slash_date(next, today) {
        return Some(d);
    }
    let (day, used) = number_words(n, i + 1)?;
    let after = i + 1 + used;
    if let Some(d) = day_month(day, n, after, today) {
        return Some(d);
    }
    match (word(n, after), word(n, after + 1)) {
        ("bulan", "depan") => clamp_day(first_of_next_month(today)?, day),
        ("bulan", "ini") => clamp_day(first_of(today), day),
        _ => {
            if day < today.day() {
                clamp_day(first_of_next_month(today)?, day)
            } else {
                // A day this month lacks ("tgl 30" in February) is next month's.
                clamp_day(first_of(today), day)
                    .filter(|d| d.day() == day)
                    .or_else(|| clamp_day(first_of_next_month(today)?, day))
            }
        }
    }
}

/// "N <month> [year]" starting with the month at index `m`.
fn day_month(day: u32, n: &Normalized, m: usize, today: NaiveDate) -> Option<NaiveDate> {
    let month = month_name(word(n, m))?;
    let year = number(word(n, m + 1)).filter(|y| (2000..=2100).contains(y));
    with_rollover(day, month, year.map(|y| y as i32), today)
}

/// `30/10`, `30/10/2026`, `30/10/26` (day first, as Indonesians write).
fn slash_date(w: &str, today: NaiveDate) -> Option<NaiveDate> {
    let parts: Vec<&str> = w.split('/').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty() || p.len() > 4) {
        return None;
    }
    let day: u32 = parts[0].parse().ok()?;
    let month: u32 = parts[1].parse().ok()?;
    let year = match parts.get(2) {
        Some(y) if y.len() == 2 => Some(2000 + y.parse::<i32>().ok()?),
        Some(y) if y.len() == 4 => Some(y.parse::<i32>().ok()?),
        Some(_) => return None,
        None => None,
    };
    with_rollover(day, month, year, today)
}

fn with_rollover(day: u32, month: u32, year: Option<i32>, today: NaiveDate) -> Option<NaiveDate> {
    if let Some(y) = year {
        return NaiveDate::from_ymd_opt(y, month, day);
    }
    let d = NaiveDate::from_ymd_opt(today.year(), month, day)
        .or_else(|| NaiveDate::from_ymd_opt(today.year() + 1, month, day))?;
    if d < today {
        NaiveDate::from_ymd_opt(today.year() + 1, month, day)
    } else {
        Some(d)
    }
}

/// "minggu" is a week ("minggu depan", "minggu ini", "2 minggu lagi") unless
/// it is clearly the day ("hari minggu", "minggu pagi").
fn minggu(n: &Normalized, i: usize, today: NaiveDate) -> Option<NaiveDate> {
    let next = word(n, i + 1);
    let prev = if i > 0 { word(n, i - 1) } else { "" };
    if prev == "akhir" || prev == "awal" || number(prev).is_some() || prev == "se" {
        return None;
    }
    if let Some(k) = week_ordinal(n, i + 1) {
        return week_of_month(n, i + 1 + k.1, today, k.0);
    }
    let as_day = prev == "hari" || matches!(next, "pagi" | "siang" | "sore" | "malam");
    match next {
        "depan" if as_day => weekday_in_next_week(today, Weekday::Sun),
        // "minggu depan (hari) senin": that day of next week.
        "depan" if weekday(word(n, i + 2)).is_some() || weekday(word(n, i + 3)).is_some() => {
            let wd = weekday(word(n, i + 2)).or_else(|| weekday(word(n, i + 3)))?;
            weekday_in_next_week(today, wd)
        }
        "depan" => next_week_monday(today)?.checked_add_days(Days::new(4)),
        "ini" if !as_day => {
            let friday = this_or_next(today, Weekday::Fri)?;
            Some(if friday.iso_week() == today.iso_week() {
                friday
            } else {
                today
            })
        }
        "lalu" | "kemarin" => None,
        _ => this_or_next(today, Weekday::Sun),
    }
}

/// "kedua", "ke 2", "terakhir" after "minggu": (week number, tokens used).
/// Week 5 stands for the last week.
fn week_ordinal(n: &Normalized, i: usize) -> Option<(u32, usize)> {
    Some(match word(n, i) {
        "pertama" => (1, 1),
        "kedua" => (2, 1),
        "ketiga" => (3, 1),
        "keempat" => (4, 1),
        "terakhir" => (5, 1),
        "ke" => (number(word(n, i + 1)).filter(|k| (1..=5).contains(k))?, 2),
        _ => return None,
    })
}

/// The middle of week `k` of the month named at `m` (or this month, or
/// next month when that week is past).
fn week_of_month(n: &Normalized, m: usize, today: NaiveDate, k: u32) -> Option<NaiveDate> {
    let pick = |first: NaiveDate| {
        if k >= 5 {
            end_of_month(first).checked_sub_days(Days::new(3))
        } else {
            first.with_day(7 * (k - 1) + 4)
        }
    };
    let first = match (word(n, m), word(n, m + 1)) {
        ("bulan", "depan") => first_of_next_month(today)?,
        (w, _) if month_name(w).is_some() => {
            with_rollover(1, month_name(w)?, None, first_of(today))?
        }
        _ => first_of(today),
    };
    let d = pick(first)?;
    if d < today {
        pick(first_of_next_month(first)?)
    } else {
        Some(d)
    }
}

/// For "akhir bulan [ini|depan]": which month is meant.
fn month_offset(n: &Normalized, i: usize, today: NaiveDate) -> Option<NaiveDate> {
    match word(n, i) {
        "depan" => first_of_next_month(today),
        w => match month_name(w) {
            Some(m) => with_rollover(1, m, None, first_of(today)),
            None => Some(today),
        },
    }
}

fn first_of(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

fn first_of_next_month(d: NaiveDate) -> Option<NaiveDate> {
    first_of(d).checked_add_months(Months::new(1))
}

fn fifth_of_next_month(d: NaiveDate) -> Option<NaiveDate> {
    first_of_next_month(d)?.with_day(5)
}

fn end_of_month(d: NaiveDate) -> NaiveDate {
    first_of_next_month(d)
        .and_then(|f| f.pred_opt())
        .unwrap_or(d)
}

/// Day `day` of `first`'s month, or its last day when the month is shorter.
fn clamp_day(first: NaiveDate, day: u32) -> Option<NaiveDate> {
    if day == 0 || day > 31 {
        return None;
    }
    Some(first.with_day(day).unwrap_or_else(|| end_of_month(first)))
}

fn this_or_next(today: NaiveDate, wd: Weekday) -> Option<NaiveDate> {
    let ahead = (7 + wd.num_days_from_monday() - today.weekday().num_days_from_monday()) % 7;
    today.checked_add_days(Days::new(ahead.into()))
}

fn next_week_monday(today: NaiveDate) -> Option<NaiveDate> {
    today.checked_add_days(Days::new(
        (7 - today.weekday().num_days_from_monday()).into(),
    ))
}

fn weekday_in_next_week(today: NaiveDate, wd: Weekday) -> Option<NaiveDate> {
    next_week_monday(today)?.checked_add_days(Days::new(wd.num_days_from_monday().into()))
}

fn weekday(w: &str) -> Option<Weekday> {
    Some(match w {
        "senin" => Weekday::Mon,
        "selasa" => Weekday::Tue,
        "rabu" => Weekday::Wed,
        "kamis" => Weekday::Thu,
        "jumat" => Weekday::Fri,
        "sabtu" => Weekday::Sat,
        _ => return None,
    })
}

/// A month written out in full: an abbreviation alone ("mar", "des") or
/// English "may" is too often another word to be taken as a date.
fn full_month_name(w: &str) -> bool {
    w != "may" && month_name(w).is_some() && (w.len() >= 5 || matches!(w, "mei" | "juni" | "juli"))
}

pub(crate) fn month_name(w: &str) -> Option<u32> {
    Some(match w {
        "januari" | "jan" | "january" => 1,
        "februari" | "feb" | "pebruari" | "february" | "peb" => 2,
        "maret" | "mar" | "march" | "mrt" => 3,
        "april" | "apr" => 4,
        "mei" | "may" => 5,
        "juni" | "jun" | "june" => 6,
        "juli" | "jul" | "july" => 7,
        "agustus" | "agu" | "agt" | "ags" | "aug" | "august" | "agust" => 8,
        "september" | "sep" | "sept" => 9,
        "oktober" | "okt" | "oct" | "october" => 10,
        "november" | "nov" | "nop" | "nopember" => 11,
        "desember" | "des" | "dec" | "december" => 12,
        _ => return None,
    })
}

/// A day number written in digits or words: "20", "dua puluh", "duapuluh
/// lima", "sebelas", "tiga belas". Returns the value and tokens used.
fn number_words(n: &Normalized, i: usize) -> Option<(u32, usize)> {
    let w = word(n, i);
    if let Some(rest) = w.strip_suffix("belas").filter(|r| !r.is_empty()) {
        return Some((10 + number(rest)?, 1));
    }
    if let Some((tens, units)) = w.split_once("puluh") {
        let tens = number(tens)?;
        return match units {
            "" => match number(word(n, i + 1)).filter(|u| *u < 10) {
                Some(u) => Some((tens * 10 + u, 2)),
                None => Some((tens * 10, 1)),
            },
            u => Some((tens * 10 + number(u)?, 1)),
        };
    }
    let first = number(w)?;
    match word(n, i + 1) {
        "belas" if first < 10 => Some((10 + first, 2)),
        "puluh" if first < 10 => match number(word(n, i + 2)).filter(|u| *u < 10) {
            Some(u) => Some((first * 10 + u, 3)),
            None => Some((first * 10, 2)),
        },
        _ => Some((first, 1)),
    }
}

/// Digits or a small Indonesian number word.
fn number(w: &str) -> Option<u32> {
    if !w.is_empty() && w.len() <= 4 && w.bytes().all(|b| b.is_ascii_digit()) {
        return w.parse().ok();
    }
    Some(match w {
        "satu" | "se" => 1,
        "dua" => 2,
        "tiga" => 3,
        "empat" => 4,
        "lima" => 5,
        "enam" => 6,
        "tujuh" => 7,
        "delapan" => 8,
        "sembilan" => 9,
        "sepuluh" => 10,
        "sebelas" => 11,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::normalize::normalize;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    /// Tuesday 3 March 2026, the dev set's reference day.
    fn tue() -> NaiveDate {
        d(2026, 3, 3)
    }

    fn r(text: &str, today: NaiveDate) -> Option<NaiveDate> {
        resolve(&normalize(text), today)
    }

    #[test]
    fn relative_days() {
        assert_eq!(r("hari ini", tue()), Some(tue()));
        assert_eq!(r("besok", tue()), Some(d(2026, 3, 4)));
        assert_eq!(r("bsk", tue()), Some(d(2026, 3, 4)));
        assert_eq!(r("besuk", tue()), Some(d(2026, 3, 4)));
        assert_eq!(r("tomorrow", tue()), Some(d(2026, 3, 4)));
        assert_eq!(r("lusa", tue()), Some(d(2026, 3, 5)));
        assert_eq!(r("nanti sore", tue()), Some(tue()));
        assert_eq!(r("3 hari lagi", tue()), Some(d(2026, 3, 6)));
        assert_eq!(r("seminggu lagi", tue()), Some(d(2026, 3, 10)));
        assert_eq!(r("dua minggu lagi", tue()), Some(d(2026, 3, 17)));
    }

    #[test]
    fn tanggal_this_or_next_month() {
        assert_eq!(r("tgl 20", tue()), Some(d(2026, 3, 20)));
        assert_eq!(r("tanggal 3", tue()), Some(tue()));
        assert_eq!(r("tgl 2", tue()), Some(d(2026, 4, 2)));
        assert_eq!(r("tgl20", tue()), Some(d(2026, 3, 20)));
        assert_eq!(r("tanggal dua puluh", tue()), Some(d(2026, 3, 20)));
        assert_eq!(r("tgl duapuluh lima", tue()), Some(d(2026, 3, 25)));
        assert_eq!(r("tanggal lima belas", tue()), Some(d(2026, 3, 15)));
        assert_eq!(r("tanggal sebelas april", tue()), Some(d(2026, 4, 11)));
        assert_eq!(r("tgl 10 bulan depan", tue()), Some(d(2026, 4, 10)));
        assert_eq!(r("tanggal 5 april", tue()), Some(d(2026, 4, 5)));
        // A day this month lacks: the next month that has it.
        assert_eq!(r("tgl 31", d(2026, 4, 10)), Some(d(2026, 5, 31)));
        assert_eq!(r("tgl 31", d(2026, 1, 31)), Some(d(2026, 1, 31)));
        // Year rollover in December.
        assert_eq!(r("tgl 5", d(2026, 12, 20)), Some(d(2027, 1, 5)));
    }

    #[test]
    fn day_month_forms() {
        assert_eq!(r("30/10", tue()), Some(d(2026, 10, 30)));
        assert_eq!(r("30-10", tue()), Some(d(2026, 10, 30)));
        assert_eq!(r("5/1", tue()), Some(d(2027, 1, 5)));
        assert_eq!(r("10/3/2026", tue()), Some(d(2026, 3, 10)));
        assert_eq!(r("30 oktober", tue()), Some(d(2026, 10, 30)));
        assert_eq!(r("30 okt", tue()), Some(d(2026, 10, 30)));
        assert_eq!(r("2 jan", d(2026, 12, 28)), Some(d(2027, 1, 2)));
        assert_eq!(r("31/2", tue()), None);
        assert_eq!(r("jam 2", tue()), None);
    }

    #[test]
    fn weekdays() {
        assert_eq!(r("jumat", tue()), Some(d(2026, 3, 6)));
        assert_eq!(r("paling lambat jum'at", tue()), Some(d(2026, 3, 6)));
        assert_eq!(r("hari senin", tue()), Some(d(2026, 3, 9)));
        assert_eq!(r("selasa", tue()), Some(tue()));
        assert_eq!(r("senin depan", tue()), Some(d(2026, 3, 9)));
        assert_eq!(r("jumat depan", tue()), Some(d(2026, 3, 13)));
        assert_eq!(r("hari minggu", tue()), Some(d(2026, 3, 8)));
        assert_eq!(r("friday", tue()), Some(d(2026, 3, 6)));
        assert_eq!(r("jumat minggu depan", tue()), Some(d(2026, 3, 13)));
        assert_eq!(r("minggu depan hari senin", tue()), Some(d(2026, 3, 9)));
        assert_eq!(r("mgg dpn rabu", tue()), Some(d(2026, 3, 11)));
    }

    #[test]
    fn weeks_and_months() {
        let nw = r("minggu depan", tue()).unwrap();
        assert!((d(2026, 3, 9)..=d(2026, 3, 14)).contains(&nw));
        assert_eq!(r("next week", tue()), Some(nw));
        // Said on a Sunday, next week starts tomorrow.
        let sun = d(2026, 3, 8);
        let nw = r("mgg dpn", sun).unwrap();
        assert!((d(2026, 3, 9)..=d(2026, 3, 14)).contains(&nw));
        let eom = r("akhir bulan", tue()).unwrap();
        assert!((d(2026, 3, 25)..=d(2026, 3, 31)).contains(&eom));
        assert_eq!(r("akhir bulan depan", tue()), Some(d(2026, 4, 30)));
        assert_eq!(r("akhir bulan", d(2026, 2, 10)), Some(d(2026, 2, 28)));
        let bom = r("awal bulan", tue()).unwrap();
        assert!((d(2026, 4, 1)..=d(2026, 4, 10)).contains(&bom));
        assert_eq!(r("tgl muda", d(2026, 12, 15)), Some(d(2027, 1, 5)));
        assert_eq!(r("bulan depan", tue()), Some(d(2026, 4, 5)));
        assert_eq!(r("minggu ini", tue()), Some(d(2026, 3, 6)));
        assert_eq!(r("akhir maret", tue()), Some(d(2026, 3, 31)));
        assert_eq!(r("minggu kedua april", tue()), Some(d(2026, 4, 11)));
        assert_eq!(r("minggu ke 3 bulan depan", tue()), Some(d(2026, 4, 18)));
        assert_eq!(r("minggu terakhir bulan ini", tue()), Some(d(2026, 3, 28)));
        assert_eq!(r("weekend ini", tue()), Some(d(2026, 3, 7)));
        assert_eq!(r("sore nanti", tue()), Some(tue()));
        assert_eq!(r("awal april", tue()), Some(d(2026, 4, 5)));
        assert_eq!(r("awal januari", tue()), Some(d(2027, 1, 5)));
        assert_eq!(r("minggu ini", d(2026, 3, 7)), Some(d(2026, 3, 7)));
    }

    #[test]
    fn past_days_are_not_promises() {
        assert!(mentions_past(&normalize("udh tf td pagi")));
        assert!(mentions_past(&normalize("sdh dibayar kemarin")));
        assert_eq!(r("minggu lalu", tue()), None);
    }
}
