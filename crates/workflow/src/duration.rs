//! DSL durations: ISO 8601 strings (`PT1.5S`, `P1DT2H`), inline maps (`{ seconds: 3 }`), or a
//! runtime expression that evaluates to an ISO 8601 string.
//!
//! Years and months have no fixed length; like most runtimes this one counts a year as 365
//! days and a month as 30 days. Durations are capped at one year: nothing longer can run in a
//! single invocation anyway, and the cap keeps arithmetic far from overflow.

use super::error::{child, Invalid};
use super::expr::{strip_expression, Args, EvalError, Expr, ExprCompiler, Site};
use jaq_json::Val;
use serde_json::Value;
use std::time::Duration;

/// Longest duration accepted (365 days).
const MAX: Duration = Duration::from_secs(365 * 86_400);

/// A duration as written in a document: fixed at load, or computed by an expression.
pub(crate) enum DurationSpec {
    /// Known at load.
    Fixed(Duration),
    /// A runtime expression that must produce an ISO 8601 duration.
    Expr(Expr),
}

impl DurationSpec {
    /// Compiles a duration value found at `pointer`.
    pub(crate) fn compile(
        value: &Value,
        compiler: &ExprCompiler,
        site: Site<'_>,
        pointer: &str,
    ) -> Result<DurationSpec, Invalid> {
        match value {
            Value::String(text) => match strip_expression(text) {
                Some(code) => Ok(DurationSpec::Expr(
                    compiler
                        .compile(code, site, pointer)
                        .map_err(|message| Invalid::new(pointer, message))?,
                )),
                None => parse_iso8601(text)
                    .map(DurationSpec::Fixed)
                    .map_err(|reason| Invalid::new(pointer, reason)),
            },
            Value::Object(fields) => inline(fields, pointer).map(DurationSpec::Fixed),
            other => Err(Invalid::new(
                pointer,
                format!(
                    "a duration must be an ISO 8601 string (e.g. `PT30S`), a map such as `{{ seconds: 30 }}`, or a runtime expression; found {}",
                    kind_of(other)
                ),
            )),
        }
    }

    /// The duration, evaluating the expression (on `input`) if there is one.
    pub(crate) fn eval(&self, input: &Val, args: &Args<'_>) -> Result<Duration, EvalError> {
        match self {
            DurationSpec::Fixed(duration) => Ok(*duration),
            DurationSpec::Expr(expr) => {
                let value = expr.eval(input.clone(), args)?;
                let fail = |message: String| EvalError {
                    pointer: expr.pointer().to_owned(),
                    message,
                };
                match value {
                    Val::TStr(bytes) | Val::BStr(bytes) => {
                        let text = String::from_utf8_lossy(&bytes);
                        parse_iso8601(&text).map_err(fail)
                    }
                    other => Err(fail(format!(
                        "the duration expression must produce an ISO 8601 string such as \"PT30S\"; it produced {}",
                        super::value::truncate(&other.to_string(), 60)
                    ))),
                }
            }
        }
    }
}

/// The inline form: `days`, `hours`, `minutes`, `seconds`, `milliseconds` (non-negative integers).
fn inline(fields: &serde_json::Map<String, Value>, pointer: &str) -> Result<Duration, Invalid> {
    const UNITS: [(&str, u64); 5] = [
        ("days", 86_400_000),
        ("hours", 3_600_000),
        ("minutes", 60_000),
        ("seconds", 1_000),
        ("milliseconds", 1),
    ];
    if fields.is_empty() {
        return Err(Invalid::new(
            pointer,
            "the duration is empty; set at least one of days, hours, minutes, seconds, milliseconds",
        ));
    }
    let mut millis: u64 = 0;
    for (key, value) in fields {
        let Some((_, unit)) = UNITS.iter().find(|(name, _)| name == key) else {
            return Err(Invalid::new(
                &child(pointer, key),
                format!("unknown duration unit `{key}`; use days, hours, minutes, seconds or milliseconds"),
            ));
        };
        let Some(amount) = value.as_u64() else {
            return Err(Invalid::new(
                &child(pointer, key),
                format!("`{key}` must be a non-negative integer"),
            ));
        };
        millis = amount
            .checked_mul(*unit)
            .and_then(|part| millis.checked_add(part))
            .unwrap_or(u64::MAX);
    }
    let duration = Duration::from_millis(millis);
    if duration > MAX {
        return Err(Invalid::new(pointer, too_long()));
    }
    Ok(duration)
}

fn too_long() -> String {
    "the duration is longer than 365 days, which no single execution can reach".into()
}

/// Parses an ISO 8601 duration: `PnYnMnWnDTnHnMnS`, each number possibly decimal.
pub(crate) fn parse_iso8601(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "`{}` is not an ISO 8601 duration; write e.g. `PT30S`, `PT1M30S`, `PT0.5S` or `P1DT2H`",
            super::value::truncate(text, 40)
        )
    };
    let rest = text.strip_prefix('P').ok_or_else(bad)?;
    if rest.is_empty() {
        return Err(bad());
    }
    let (date, time) = match rest.split_once('T') {
        Some((_, "")) => return Err(bad()),
        Some((date, time)) => (date, Some(time)),
        None => (rest, None),
    };
    const DAY: f64 = 86_400.0;
    let mut seconds = 0.0f64;
    seconds += components(
        date,
        &[
            ('Y', 365.0 * DAY),
            ('M', 30.0 * DAY),
            ('W', 7.0 * DAY),
            ('D', DAY),
        ],
    )
    .ok_or_else(bad)?;
    if let Some(time) = time {
        seconds += components(time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)]).ok_or_else(bad)?;
    }
    if !seconds.is_finite() || seconds > MAX.as_secs_f64() {
        return Err(too_long());
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Sums `number unit` pairs whose units appear in `units` order, each at most once.
fn components(text: &str, units: &[(char, f64)]) -> Option<f64> {
    let mut total = 0.0;
    let mut next_unit = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let offset = units[next_unit..].iter().position(|(unit, _)| *unit == c)?;
        if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
            return None;
        }
        let amount: f64 = number.parse().ok()?;
        total += amount * units[next_unit + offset].1;
        next_unit += offset + 1;
        number.clear();
    }
    number.is_empty().then_some(total)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_iso8601_durations() {
        let cases = [
            ("PT30S", 30_000),
            ("PT1M30S", 90_000),
            ("PT0.5S", 500),
            ("PT1H", 3_600_000),
            ("P1D", 86_400_000),
            ("P1DT2H", 93_600_000),
            ("P1W", 604_800_000),
            ("P1M", 2_592_000_000),
        ];
        for (text, millis) in cases {
            assert_eq!(
                parse_iso8601(text).map(|d| d.as_millis()),
                Ok(millis),
                "{text}"
            );
        }
        for bad in [
            "", "P", "PT", "30S", "PT1S1M", "PT1.S", "PTS", "P1H", "PT1D", "PT1SS", "P2Y",
        ] {
            assert!(parse_iso8601(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(parse_iso8601("P2Y")
            .err()
            .unwrap_or_default()
            .contains("365 days"));
    }

    #[test]
    fn parses_inline_durations() {
        let map = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert_eq!(
            inline(
                &map(json!({ "minutes": 1, "seconds": 2, "milliseconds": 3 })),
                "/d"
            ),
            Ok(Duration::from_millis(62_003))
        );
        let err = inline(&map(json!({ "secs": 1 })), "/d").err();
        assert_eq!(
            err.map(|e| e.to_string().starts_with("/d/secs: unknown")),
            Some(true)
        );
        let err = inline(&map(json!({ "seconds": -1 })), "/d").err();
        assert!(err.is_some());
        assert!(inline(&map(json!({})), "/d").is_err());
        assert!(inline(&map(json!({ "days": u64::MAX })), "/d").is_err());
    }
}
