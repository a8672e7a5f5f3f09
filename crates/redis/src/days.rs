//! The midnights a script may need: the starts of the days around an instant in a pool's
//! zone, from the zone database.
//!
//! The script takes its instant from Redis's clock, which the caller only estimates, so the
//! caller sends the midnights from the day before its estimate to three days after; the script
//! picks the pair bracketing its own instant. Each midnight is found on the zone's calendar
//! (`date.to_zoned(zone)`), so a day is 23 or 25 hours long when daylight saving starts or
//! ends, and a midnight that does not exist (a zone switching at 00:00) is the first instant of
//! that date.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// The first instant of `date` in `zone`, in microseconds.
fn start_of(date: Date, zone: &TimeZone) -> Option<i64> {
    date.to_zoned(zone.clone())
        .ok()
        .map(|z| z.timestamp().as_microsecond())
}

/// Five ascending midnights, from the start of the day before `around` to the start of the
/// third day after it, in `zone`.
pub(crate) fn midnights(around: Timestamp, zone: &TimeZone) -> Vec<i64> {
    let today = around.to_zoned(zone.clone()).date();
    let mut out = Vec::with_capacity(5);
    let mut date = today.yesterday().unwrap_or(today);
    for _ in 0..5 {
        if let Some(m) = start_of(date, zone)
            && out.last().is_none_or(|last| m > *last)
        {
            out.push(m);
        }
        match date.tomorrow() {
            Ok(next) => date = next,
            Err(_) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn the_fall_back_day_in_los_angeles_is_25_hours() {
        let zone = TimeZone::get("America/Los_Angeles").unwrap_or(TimeZone::UTC);
        let m = midnights(at("2026-11-01T12:00:00Z"), &zone);
        let us = |s: &str| at(s).as_microsecond();
        assert_eq!(
            m,
            vec![
                us("2026-10-31T07:00:00Z"),
                us("2026-11-01T07:00:00Z"),
                us("2026-11-02T08:00:00Z"),
                us("2026-11-03T08:00:00Z"),
                us("2026-11-04T08:00:00Z"),
            ]
        );
        assert_eq!(m[2] - m[1], 25 * 3_600 * 1_000_000);
    }
}
