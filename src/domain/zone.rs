//! IANA time zones: parsing a zone name once at the boundary (config,
//! import files, the command line) and turning a local wall-clock time into
//! an instant in every zone, including those with daylight-saving gaps.

use super::ParseError;
use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// An IANA zone name as employers' rows, the schedule and `--timezone`
/// carry it (`Asia/Jakarta`, `Asia/Makassar`, …).
pub fn parse_zone(raw: &str) -> Result<Tz, ParseError> {
    raw.parse::<Tz>().map_err(|_| {
        ParseError::new(format!(
            "`{raw}` is not an IANA time zone (e.g. Asia/Jakarta)"
        ))
    })
}

/// The instant a local wall-clock time names in `tz`. A time that occurs
/// twice (clocks set back) is its earliest occurrence; a time that does not
/// exist (clocks set forward) is the first instant after the gap, so "08:00
/// on the day the clocks jump from 08:00 to 09:00" is 09:00 — never a panic.
pub fn local_instant(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        LocalResult::None => {
            // Gaps are whole minutes and at most a day long (Samoa, 2011),
            // so the first valid minute after `local` ends the gap; earlier
            // than it, no instant has a local time at or after `local`.
            let mut probe = local;
            for _ in 0..(24 * 60) {
                probe += Duration::minutes(1);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return t.with_timezone(&Utc);
                }
            }
            // Unreachable with the tz database; read it with the offset in
            // force a day earlier rather than fail.
            let offset = tz
                .offset_from_utc_datetime(&(local - Duration::days(1)))
                .fix();
            (local - offset).and_utc()
        }
    }
}

/// The first instant of `day` in `tz` (midnight, or the end of a gap that
/// swallows midnight).
pub fn start_of_day(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    local_instant(tz, day.and_time(chrono::NaiveTime::MIN))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_time_in_a_gap_is_the_end_of_the_gap() {
        // São Paulo, 4 November 2018: 00:00 -03 jumped to 01:00 -02.
        let day: NaiveDate = "2018-11-04".parse().unwrap();
        assert_eq!(
            start_of_day(chrono_tz::America::Sao_Paulo, day),
            at("2018-11-04T03:00:00Z")
        );
        let half_past = day.and_time(NaiveTime::from_hms_opt(0, 30, 0).unwrap());
        assert_eq!(
            local_instant(chrono_tz::America::Sao_Paulo, half_past),
            at("2018-11-04T03:00:00Z")
        );
    }

    #[test]
    fn a_repeated_time_is_its_first_occurrence() {
        // Berlin, 25 October 2026: 03:00 CEST back to 02:00 CET.
        let t = "2026-10-25T02:30:00".parse::<NaiveDateTime>().unwrap();
        assert_eq!(
            local_instant(chrono_tz::Europe::Berlin, t),
            at("2026-10-25T00:30:00Z")
        );
    }

    #[test]
    fn zones_parse_or_say_why() {
        assert_eq!(parse_zone("Asia/Makassar"), Ok(chrono_tz::Asia::Makassar));
        let e = parse_zone("Mars/Base").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`Mars/Base` is not an IANA time zone (e.g. Asia/Jakarta)"
        );
    }
}
