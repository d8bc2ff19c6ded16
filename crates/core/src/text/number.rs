//! Decimal text to the nearest f64, correctly rounded (ties to even), as
//! `str::parse::<f64>` and serde_json read it, without their 21 KB of
//! tables in the `.wasm`: the common case (up to 15 significant digits,
//! powers of ten to 22) is one exact float operation; the rest is exact
//! integer arithmetic on the digits, slow but rare (a config's numbers are
//! `20`, `0.5`, `1048576`). The text must be a JSON number (checked here:
//! Prometheus answers reach this too).

/// The value of a JSON number's text (`-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?`),
/// infinite when it is beyond f64; `None` when it is not a JSON number.
pub fn parse(text: &str) -> Option<f64> {
    let (negative, digits, exponent) = split(text.as_bytes())?;
    let magnitude = magnitude(&digits, exponent);
    Some(if negative { -magnitude } else { magnitude })
}

/// Sign, significant digits (no leading or trailing zeros) and the power
/// of ten they are scaled by, or `None` if this is not a JSON number.
fn split(text: &[u8]) -> Option<(bool, Vec<u8>, i64)> {
    let (negative, rest) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let int_len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let (int, rest) = rest.split_at(int_len);
    if int.is_empty() || (int.len() > 1 && int[0] == b'0') {
        return None;
    }
    let (fraction, rest) = match rest.split_first() {
        Some((b'.', rest)) => {
            let len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            if len == 0 {
                return None;
            }
            rest.split_at(len)
        }
        _ => (&rest[..0], rest),
    };
    let exponent = match rest.split_first() {
        None => 0,
        Some((b'e' | b'E', rest)) => {
            let (sign, digits) = match rest.split_first() {
                Some((b'-', d)) => (-1, d),
                Some((b'+', d)) => (1, d),
                _ => (1, rest),
            };
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            // Saturates: `0e99999999999` is 0, `1e99999999999` infinite.
            let value =
                digits.iter().fold(0i64, |n, d| n.saturating_mul(10).saturating_add(i64::from(d - b'0')));
            sign * value
        }
        Some(_) => return None,
    };
    let mut digits: Vec<u8> = int.iter().chain(fraction).map(|d| d - b'0').collect();
    let mut exponent = exponent.saturating_sub(fraction.len() as i64);
    let leading = digits.iter().take_while(|&&d| d == 0).count();
    digits.drain(..leading);
    while digits.last() == Some(&0) {
        digits.pop();
        exponent = exponent.saturating_add(1);
    }
    if digits.len() > MAX_DIGITS {
        // The tail is not zero (trailing zeros are gone): one sticky digit
        // stands for it, which keeps the value inside the same interval
        // between two numbers of MAX_DIGITS - 1 digits, so it rounds alike.
        let dropped = digits.len() - (MAX_DIGITS - 1);
        digits.truncate(MAX_DIGITS - 1);
        digits.push(1);
        exponent = exponent.saturating_add(dropped as i64 - 1);
    }
    Some((negative, digits, exponent))
}

/// Significant digits kept. A halfway point between two f64 has at most
/// 767 of them, so any two numbers that share their first 768 digits and
/// both go on with something non-zero round to the same f64; past this
/// the big-integer arithmetic below, quadratic in the digits, would let a
/// long number (a Prometheus answer may be a megabyte) cost seconds.
const MAX_DIGITS: usize = 800;

/// Powers of ten exactly representable in an f64.
const POWERS: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
    1e19, 1e20, 1e21, 1e22,
];

/// `digits × 10^exponent`, correctly rounded.
fn magnitude(digits: &[u8], exponent: i64) -> f64 {
    if digits.is_empty() {
        return 0.0;
    }
    // The decimal point's place relative to the first digit bounds the
    // value: beyond 10^310 it is infinite, below 10^-330 it rounds to 0.
    let point = exponent.saturating_add(digits.len() as i64);
    if point > 310 {
        return f64::INFINITY;
    }
    if point < -330 {
        return 0.0;
    }
    // Clinger's fast path: both operands exact, so one rounding.
    if digits.len() <= 15 && (-22..=22).contains(&exponent) {
        let mantissa = digits.iter().fold(0u64, |n, &d| n * 10 + u64::from(d)) as f64;
        return if exponent >= 0 {
            mantissa * POWERS[exponent as usize]
        } else {
            mantissa / POWERS[(-exponent) as usize]
        };
    }
    // Exactly: value = numerator / denominator × 2^binary.
    let mut numerator = Big::from_digits(digits);
    let mut denominator = Big::from(1);
    let binary = exponent;
    if exponent >= 0 {
        numerator.mul_pow5(exponent as u32);
    } else {
        denominator.mul_pow5((-exponent) as u32);
    }
    round(numerator, denominator, binary)
}

/// Bits kept before the final rounding: 53 of the significand, one to
/// round by, and at least one more so the quotient is never short.
const WORKING_BITS: i64 = 55;

/// `numerator / denominator × 2^binary` rounded to the nearest f64.
fn round(mut numerator: Big, mut denominator: Big, mut binary: i64) -> f64 {
    // Scale so that the quotient has WORKING_BITS or WORKING_BITS + 1 bits.
    let shift = denominator.bits() as i64 - numerator.bits() as i64 + WORKING_BITS;
    if shift > 0 {
        numerator.shl(shift as u32);
    } else {
        denominator.shl((-shift) as u32);
    }
    binary -= shift;
    let (mut quotient, inexact) = numerator.div_small_quotient(&denominator);
    // The quotient's leading bit stands for 2^(bits - 1 + binary); below
    // f64's smallest normal exponent fewer bits are kept (subnormals).
    let bits = 64 - i64::from(quotient.leading_zeros());
    let top = bits - 1 + binary;
    let keep = if top >= -1022 { 53 } else { 53 - (-1022 - top) };
    let drop = bits - keep;
    if drop >= 64 {
        // Below half the smallest subnormal.
        return 0.0;
    }
    if drop > 0 {
        let dropped = quotient & ((1u64 << drop) - 1);
        let half = 1u64 << (drop - 1);
        quotient >>= drop;
        binary += drop;
        let round_up = dropped > half || (dropped == half && (inexact || quotient & 1 == 1));
        quotient += u64::from(round_up);
    }
    // `quotient × 2^binary` is exact in f64 now (it may have carried into
    // a 54th bit, still exact); scale in two steps to stay in range.
    let value = quotient as f64;
    scale(value, binary)
}

/// `value × 2^power` for a value the result represents exactly.
fn scale(mut value: f64, mut power: i64) -> f64 {
    while power > 0 {
        let step = power.min(1000);
        value *= f64::from_bits(((1023 + step) as u64) << 52);
        power -= step;
        if value.is_infinite() {
            return value;
        }
    }
    while power < 0 {
        let step = (-power).min(1000);
        value /= f64::from_bits(((1023 + step) as u64) << 52);
        power += step;
    }
    value
}

/// An unsigned big integer, 32-bit limbs, least significant first.
#[derive(Clone)]
struct Big(Vec<u32>);

impl Big {
    fn from(value: u32) -> Big {
        Big(vec![value])
    }

    fn from_digits(digits: &[u8]) -> Big {
        let mut big = Big(Vec::new());
        for chunk in digits.chunks(9) {
            let (mut factor, mut value) = (1u32, 0u32);
            for &d in chunk {
                factor *= 10;
                value = value * 10 + u32::from(d);
            }
            big.mul_add(factor, value);
        }
        big
    }

    /// `self = self × factor + add`.
    fn mul_add(&mut self, factor: u32, add: u32) {
        let mut carry = u64::from(add);
        for limb in &mut self.0 {
            let product = u64::from(*limb) * u64::from(factor) + carry;
            *limb = product as u32;
            carry = product >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
    }

    fn mul_pow5(&mut self, mut power: u32) {
        // 5^13 is the largest power of five below 2^32.
        while power > 0 {
            let step = power.min(13);
            self.mul_add(5u32.pow(step), 0);
            power -= step;
        }
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn bits(&self) -> u32 {
        match self.0.iter().rposition(|&l| l != 0) {
            Some(top) => top as u32 * 32 + (32 - self.0[top].leading_zeros()),
            None => 0,
        }
    }

    fn shl(&mut self, bits: u32) {
        let (limbs, bits) = ((bits / 32) as usize, bits % 32);
        if bits > 0 {
            let mut carry = 0;
            for limb in &mut self.0 {
                let next = *limb >> (32 - bits);
                *limb = (*limb << bits) | carry;
                carry = next;
            }
            if carry > 0 {
                self.0.push(carry);
            }
        }
        self.0.splice(0..0, std::iter::repeat_n(0, limbs));
    }

    fn less_than(&self, other: &Big) -> bool {
        let (a, b) = (self.0.len(), other.0.len());
        if a != b {
            return a < b;
        }
        for (x, y) in self.0.iter().rev().zip(other.0.iter().rev()) {
            if x != y {
                return x < y;
            }
        }
        false
    }

    /// `self -= other`, for `other <= self`.
    fn sub(&mut self, other: &Big) {
        let mut borrow = 0i64;
        for (i, limb) in self.0.iter_mut().enumerate() {
            let difference = i64::from(*limb) - i64::from(other.0.get(i).copied().unwrap_or(0)) - borrow;
            *limb = difference.rem_euclid(1 << 32) as u32;
            borrow = i64::from(difference < 0);
        }
        self.trim();
    }

    /// `self / divisor` when the quotient fits 64 bits (the caller scaled
    /// it to about 55), by binary long division; and whether a remainder
    /// was left.
    fn div_small_quotient(mut self, divisor: &Big) -> (u64, bool) {
        self.trim();
        let mut divisor = divisor.clone();
        divisor.trim();
        let spread = self.bits().saturating_sub(divisor.bits());
        divisor.shl(spread);
        let mut quotient = 0u64;
        for _ in 0..=spread {
            quotient <<= 1;
            if !self.less_than(&divisor) {
                self.sub(&divisor);
                quotient |= 1;
            }
            divisor.shr1();
        }
        (quotient, self.bits() > 0)
    }

    fn shr1(&mut self) {
        let mut carry = 0;
        for limb in self.0.iter_mut().rev() {
            let next = *limb & 1;
            *limb = (*limb >> 1) | (carry << 31);
            carry = next;
        }
        self.trim();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(text: &str) {
        let want: f64 = text.parse().unwrap();
        let got = parse(text).unwrap_or_else(|| panic!("{text} was refused"));
        assert_eq!(got.to_bits(), want.to_bits(), "{text}: {got:e} instead of {want:e}");
    }

    #[test]
    fn reads_every_kind_of_number_as_str_parse_does() {
        for text in [
            "0",
            "-0",
            "20",
            "0.5",
            "100.0",
            "33.3333",
            "1048576",
            "1e10",
            "1E-5",
            "2.5e+3",
            "0.1",
            "0.3",
            "9007199254740993",
            "18446744073709551616",
            "3.14159265358979323846264338327950288",
            "1.7976931348623157e308",
            "2.2250738585072011e-308",
            "2.2250738585072014e-308",
            "4.9e-324",
            "2.4703282292062328e-324",
            "2.4703282292062327e-324",
            "5e-324",
            "1e-400",
            "0e99999999999",
            "0.000000000000000000000000000001",
            "123456789012345678901234567890e-40",
            "7e22",
            "7e23",
            "1e23",
            "8.41e21",
            "1e-22",
            "1.00000000000000011102230246251565404236316680908203125",
            "1.00000000000000011102230246251565404236316680908203124",
            "9.999999999999999e307",
        ] {
            same(text);
        }
        assert_eq!(parse("1e99999999999"), Some(f64::INFINITY));
        assert_eq!(parse("-1.7976931348623159e308"), Some(f64::NEG_INFINITY));
    }

    #[test]
    fn long_numbers_round_as_str_parse_does_and_cost_no_more_than_their_length() {
        // Digits past the kept ones decide the rounding only by being there:
        // a halfway point and the same plus a far-off digit round apart.
        let halfway = "1.00000000000000011102230246251565404236316680908203125";
        for tail in ["", "1", "000000001"] {
            same(&format!("{halfway}{}{tail}", "0".repeat(900)));
        }
        let mut rng = crate::hashing::rng::Rng::new(11);
        for len in [801, 1_000, 5_000] {
            let digits: String = (0..len).map(|_| char::from(b'1' + (rng.next_u64() % 9) as u8)).collect();
            same(&format!("0.{digits}"));
            same(&format!("{digits}e-{}", len + 3));
        }
        // A megabyte of digits, as a Prometheus answer may hold: read in one
        // pass (the quadratic big-integer path took seconds for 80,000).
        let huge = format!("0.{}", "7".repeat(1 << 20));
        same(&huge);
    }

    #[test]
    fn refuses_what_is_not_a_json_number() {
        for text in
            ["", "-", "1.2.3", "1-2", "+1", ".5", "5.", "01", "1e", "1e+", "1.5e3.1", "--1", "1ee2", "NaN"]
        {
            assert_eq!(parse(text), None, "{text}");
        }
    }

    #[test]
    fn random_digits_and_exponents_agree_with_str_parse() {
        let mut rng = crate::hashing::rng::Rng::new(7);
        for _ in 0..20_000 {
            let len = 1 + rng.next_u64() % 25;
            let mut text: String = (0..len).map(|_| char::from(b'0' + (rng.next_u64() % 10) as u8)).collect();
            if text.len() > 1 && text.starts_with('0') {
                text.replace_range(0..1, "1");
            }
            if rng.next_u64().is_multiple_of(2) {
                let at = 1 + (rng.next_u64() % len) as usize;
                if at < text.len() {
                    text.insert(at, '.');
                }
            }
            let exponent = (rng.next_u64() % 700) as i64 - 350;
            same(&format!("{text}e{exponent}"));
        }
    }
}
