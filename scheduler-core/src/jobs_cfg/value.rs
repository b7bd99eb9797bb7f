//! Values as Proxmox holds them after reading a property line.

use std::collections::BTreeMap;

/// A property's value after Proxmox's checks and conversions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A boolean (`0`/`1` in the file).
    Bool(bool),
    /// An integer, as Perl prints it after numification (`07` → `7`).
    Integer(String),
    /// A string, as written (inner whitespace kept).
    Text(String),
    /// An array key (`exclude-path`): one element per line.
    List(Vec<String>),
    /// A decoded property string (`keep-daily=7,keep-last=3`), values as written.
    Properties(BTreeMap<String, String>),
}

impl Value {
    /// The value as text, if it is one (`Text` or `Integer`).
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(text) | Value::Integer(text) => Some(text),
            _ => None,
        }
    }

    /// The value as a boolean, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(flag) => Some(*flag),
            _ => None,
        }
    }
}

/// Serialises as Proxmox's API prints a job's values: booleans and integers
/// as JSON numbers, strings as strings, arrays as arrays, property strings as
/// objects of strings (an integer too large for JSON stays a string).
impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Bool(flag) => serializer.serialize_u8(u8::from(*flag)),
            Value::Integer(text) => match text.parse::<i64>() {
                Ok(number) => serializer.serialize_i64(number),
                Err(_) => serializer.serialize_str(text),
            },
            Value::Text(text) => serializer.serialize_str(text),
            Value::List(items) => items.serialize(serializer),
            Value::Properties(map) => map.serialize(serializer),
        }
    }
}

/// What Perl's `$value + 0` prints for a string that passed the integer check
/// (`^[+-]?\d+$`): the integer without sign noise or leading zeros while it fits
/// a 64-bit integer, else a double printed with `%.15g`.
pub(crate) fn perl_integer(text: &str) -> String {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return "0".to_owned();
    }
    if negative {
        if let Ok(magnitude) = digits.parse::<u64>() {
            if magnitude <= 1u64 << 63 {
                return format!("-{digits}");
            }
        }
    } else if digits.parse::<u64>().is_ok() {
        return digits.to_owned();
    }
    let number: f64 = text.parse().unwrap_or(0.0);
    format_g15(number)
}

/// C's `%.15g` for numbers of magnitude ≥ 1e15 (scientific notation), and
/// Perl's `Inf` for digit strings beyond a double's range.
fn format_g15(number: f64) -> String {
    if number.is_infinite() {
        return if number < 0.0 { "-Inf" } else { "Inf" }.to_owned();
    }
    let formatted = format!("{number:.14e}");
    let Some((mantissa, exponent)) = formatted.split_once('e') else {
        return formatted;
    };
    let mantissa = if mantissa.contains('.') {
        mantissa.trim_end_matches('0').trim_end_matches('.')
    } else {
        mantissa
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..15).contains(&exponent) {
        // Not reached for integers beyond 64 bits; keep %g's fixed form anyway.
        let fixed = format!("{number:.0}");
        return fixed;
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_serialise_like_the_proxmox_api() {
        let json = |value: &Value| serde_json::to_string(value).expect("serialisable");
        assert_eq!(json(&Value::Bool(true)), "1");
        assert_eq!(json(&Value::Integer("7".into())), "7");
        assert_eq!(json(&Value::Integer("1e+20".into())), "\"1e+20\"");
        assert_eq!(json(&Value::Text("02:00".into())), "\"02:00\"");
        assert_eq!(json(&Value::List(vec!["/a".into()])), "[\"/a\"]");
        let map = BTreeMap::from([("keep-daily".to_owned(), "7".to_owned())]);
        assert_eq!(json(&Value::Properties(map)), "{\"keep-daily\":\"7\"}");
    }

    #[test]
    fn integers_print_like_perl() {
        assert_eq!(perl_integer("07"), "7");
        assert_eq!(perl_integer("+5"), "5");
        assert_eq!(perl_integer("-0"), "0");
        assert_eq!(perl_integer("000"), "0");
        assert_eq!(perl_integer("-12"), "-12");
        assert_eq!(perl_integer("18446744073709551615"), "18446744073709551615");
        assert_eq!(perl_integer("-9223372036854775808"), "-9223372036854775808");
        assert_eq!(perl_integer("18446744073709551616"), "1.84467440737096e+19");
        assert_eq!(perl_integer("100000000000000000000"), "1e+20");
        assert_eq!(
            perl_integer("-9223372036854775809"),
            "-9.22337203685478e+18"
        );
    }
}
