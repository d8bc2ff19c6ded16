//! Numbers in messages. Rust's float formatting (shortest round-trip
//! digits) costs the `.wasm` about 16 KB for a few error messages and log
//! lines; these print what a person reads: whole numbers as integers, the
//! rest with up to six decimals, very large ones in `e` notation.

/// A number as an error message or log line shows it: `20`, `0.5`,
/// `-1`, `33.333333`, `1.5e15`.
pub fn format(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    let sign = if value.is_sign_negative() && value != 0.0 { "-" } else { "" };
    let magnitude = value.abs();
    if magnitude.is_infinite() {
        return format!("{sign}inf");
    }
    if magnitude < 1e12 {
        return format!("{sign}{}", digits((magnitude * 1e6).round() as u64, 6));
    }
    // Scientific: divide down to one digit before the point.
    let (mut mantissa, mut exponent) = (magnitude, 0);
    while mantissa >= 10.0 {
        mantissa /= 10.0;
        exponent += 1;
    }
    format!("{sign}{}e{exponent}", digits((mantissa * 1e6).round() as u64, 6))
}

/// A number with exactly `places` decimals (at most 6): `0.083` for a rate.
pub fn fixed(value: f64, places: u32) -> String {
    let places = places.min(6);
    let scale = 10u64.pow(places);
    let sign = if value < 0.0 { "-" } else { "" };
    let scaled = (value.abs().min(1e12) * scale as f64).round() as u64;
    if places == 0 {
        return format!("{sign}{scaled}");
    }
    format!("{sign}{}.{:0width$}", scaled / scale, scaled % scale, width = places as usize)
}

/// `scaled / 10^places`, with the decimals trimmed of trailing zeros.
fn digits(scaled: u64, places: u32) -> String {
    let scale = 10u64.pow(places);
    let (whole, mut fraction) = (scaled / scale, scaled % scale);
    if fraction == 0 {
        return whole.to_string();
    }
    let mut width = places as usize;
    while fraction % 10 == 0 {
        fraction /= 10;
        width -= 1;
    }
    format!("{whole}.{fraction:0width$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_are_integers_and_decimals_are_trimmed() {
        assert_eq!(format(20.0), "20");
        assert_eq!(format(-1.0), "-1");
        assert_eq!(format(0.5), "0.5");
        assert_eq!(format(0.05), "0.05");
        assert_eq!(format(100.0 / 3.0), "33.333333");
        assert_eq!(format(67_108_864.0), "67108864");
        assert_eq!(format(0.0), "0");
        assert_eq!(format(-0.0), "0");
        assert_eq!(format(1e12), "1e12");
        assert_eq!(format(1.5e15), "1.5e15");
        assert_eq!(format(f64::INFINITY), "inf");
        assert_eq!(format(f64::NAN), "NaN");
    }

    #[test]
    fn fixed_places_keep_their_zeros() {
        assert_eq!(fixed(1.0, 3), "1.000");
        assert_eq!(fixed(0.0833, 3), "0.083");
        assert_eq!(fixed(2.5, 0), "3");
        assert_eq!(fixed(-0.25, 1), "-0.3");
    }
}
