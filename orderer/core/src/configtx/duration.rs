//! Go duration strings (`time.ParseDuration` / `Duration.String()`), the form BatchTimeout and
//! etcdraft's TickInterval take in a config. Parsing follows Go's grammar (signed, decimal
//! fractions, units ns/us/µs/μs/ms/s/m/h, a bare "0"); formatting reproduces Go's output so a
//! value Ordo writes reads back identically in Fabric's tools.

use std::time::Duration;

/// Parses a Go duration string into signed nanoseconds, refusing what Go refuses (with Go's
/// wording, so operators recognise it).
pub fn parse_nanos(s: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {s:?}");
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    // Accumulated in u128 so overflow is detected after each step rather than wrapping.
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(tail) => {
                let n = tail.bytes().take_while(u8::is_ascii_digit).count();
                tail.split_at(n)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = after
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(after.len(), |(i, _)| i);
        let (unit, tail) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {s:?}"));
        }
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(format!("time: unknown unit {unit:?} in duration {s:?}")),
        };
        let mut value: u128 = 0;
        for b in int_part.bytes() {
            value = value * 10 + u128::from(b - b'0');
            if value > u128::from(u64::MAX) {
                return Err(invalid());
            }
        }
        let mut segment = value * scale;
        // Go truncates the fraction towards zero at nanosecond precision.
        let mut frac_scale = scale;
        let mut frac: u128 = 0;
        for b in frac_part.bytes() {
            if frac_scale == 1 {
                break;
            }
            frac_scale /= 10;
            frac += u128::from(b - b'0') * frac_scale;
        }
        segment += frac;
        total += segment;
        if total > 1u128 << 63 {
            return Err(invalid());
        }
        rest = tail;
    }
    if negative {
        Ok((total as i128).wrapping_neg() as i64)
    } else if total > i64::MAX as u128 {
        Err(invalid())
    } else {
        Ok(total as i64)
    }
}

/// Parses a non-negative Go duration string.
pub fn parse(s: &str) -> Result<Duration, String> {
    let nanos = parse_nanos(s)?;
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| format!("negative duration {s:?}"))
}

/// Formats signed nanoseconds exactly as Go's `Duration.String()`.
pub fn format_nanos(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    if u < 1_000_000_000 {
        // Below a second Go picks the largest sub-second unit and prints a fraction.
        let (body, unit) = if u < 1_000 {
            (u.to_string(), "ns")
        } else if u < 1_000_000 {
            (fraction(u, 3), "µs")
        } else {
            (fraction(u, 6), "ms")
        };
        return format!("{sign}{body}{unit}");
    }
    let seconds = fraction(u % 60_000_000_000, 9);
    let minutes_total = u / 60_000_000_000;
    if minutes_total == 0 {
        return format!("{sign}{seconds}s");
    }
    let hours = minutes_total / 60;
    let minutes = minutes_total % 60;
    if hours == 0 {
        format!("{sign}{minutes}m{seconds}s")
    } else {
        format!("{sign}{hours}h{minutes}m{seconds}s")
    }
}

/// Formats a duration as Go's `Duration.String()` (saturating beyond Go's ~292 years).
pub fn format(d: Duration) -> String {
    format_nanos(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// `v / 10^prec` with the fractional digits Go prints: trailing zeros and a bare point dropped.
fn fraction(v: u64, prec: u32) -> String {
    let div = 10u64.pow(prec);
    let int = v / div;
    let frac = v % div;
    if frac == 0 {
        return int.to_string();
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    format!("{int}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ms = 1_000_000i64;
        let s = 1_000 * ms;
        for (text, nanos) in [
            ("2s", 2 * s),
            ("500ms", 500 * ms),
            ("1m0s", 60 * s),
            ("1.5s", 1_500 * ms),
            ("2h45m", (2 * 3600 + 45 * 60) * s),
            ("0", 0),
            ("-1.5h", -5400 * s),
            ("+3us", 3_000),
            ("1µs", 1_000),
            ("1μs", 1_000),
            (".5s", 500 * ms),
            ("1.s", s),
            ("1h1m1s1ms1us1ns", 3_661_001_001_001),
            ("0.000000001s", 1),
            ("0.0000000019s", 1),
            ("9223372036854775807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
        ] {
            assert_eq!(parse_nanos(text), Ok(nanos), "{text}");
        }
    }

    #[test]
    fn parse_refusals() {
        for text in [
            "",
            "s",
            "1",
            "1x",
            "-",
            ".s",
            "1.2.3s",
            "2 s",
            "9223372036854775808ns",
            "99999999999999999999h",
        ] {
            assert!(parse_nanos(text).is_err(), "{text:?} parsed");
        }
        assert_eq!(
            parse_nanos("10").unwrap_err(),
            "time: missing unit in duration \"10\""
        );
        assert!(parse("-1s").is_err());
    }

    #[test]
    fn format_table() {
        let ms = 1_000_000i64;
        let s = 1_000 * ms;
        for (nanos, text) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (500 * ms, "500ms"),
            (1_500_100, "1.5001ms"),
            (2 * s, "2s"),
            (1_500 * ms, "1.5s"),
            (60 * s, "1m0s"),
            (90 * s, "1m30s"),
            ((2 * 3600 + 45 * 60) * s, "2h45m0s"),
            (3600 * s + 1, "1h0m0.000000001s"),
            (-2 * s, "-2s"),
        ] {
            assert_eq!(format_nanos(nanos), text, "{nanos}");
        }
        assert_eq!(format(Duration::from_secs(2)), "2s");
        assert_eq!(format_nanos(parse_nanos("2h45m").unwrap()), "2h45m0s");
    }
}
