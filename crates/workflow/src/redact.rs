//! Secret values taken out of text that leaves the runtime (error details).
//!
//! jq and the engine quote values in their error messages (`cannot parse "sk-live-…" as
//! JSON`), so an error about a secret would carry the secret. A [`Redactor`] knows the secret
//! values (as written and as a JSON string writes them) and replaces each occurrence by
//! [`REDACTED`], and where a message was cut short (`…`), the start of a secret just before the
//! cut. Values shorter than [`MIN_SECRET_LEN`] are not looked for: they would match ordinary
//! words.

use jaq_json::Val;
use serde_json::Value;

/// What a secret value becomes.
pub const REDACTED: &str = "[redacted]";

/// Shortest secret value looked for, in bytes.
pub const MIN_SECRET_LEN: usize = 4;

/// Shortest start of a secret redacted before a cut (`…`).
const MIN_CUT_PREFIX: usize = 4;

/// The secret values to take out of text.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Each value, and its JSON-escaped form where that differs; longest first.
    needles: Vec<Box<str>>,
}

impl std::fmt::Debug for Redactor {
    /// Counts the values, never shows them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("values", &self.needles.len())
            .finish()
    }
}

impl Redactor {
    /// A redactor for these values (JSON objects and arrays: every string inside).
    pub fn new<'v>(values: impl IntoIterator<Item = &'v Value>) -> Redactor {
        let mut redactor = Redactor::default();
        for value in values {
            redactor.add_json(value);
        }
        redactor.finish()
    }

    /// Adds a secret text.
    pub fn add(&mut self, text: &str) {
        if text.len() < MIN_SECRET_LEN {
            return;
        }
        self.needles.push(text.into());
        if let Ok(quoted) = serde_json::to_string(text) {
            let escaped = &quoted[1..quoted.len() - 1];
            if escaped != text {
                self.needles.push(escaped.into());
            }
        }
    }

    /// Adds every string of a JSON value.
    pub fn add_json(&mut self, value: &Value) {
        match value {
            Value::String(text) => self.add(text),
            Value::Array(items) => items.iter().for_each(|item| self.add_json(item)),
            Value::Object(members) => members.values().for_each(|item| self.add_json(item)),
            _ => {}
        }
    }

    /// Adds every string of a jq value.
    pub(crate) fn add_val(&mut self, value: &Val) {
        match value {
            Val::TStr(bytes) | Val::BStr(bytes) => {
                if let Ok(text) = std::str::from_utf8(bytes) {
                    self.add(text);
                }
            }
            Val::Arr(items) => items.iter().for_each(|item| self.add_val(item)),
            Val::Obj(members) => members.values().for_each(|item| self.add_val(item)),
            _ => {}
        }
    }

    /// Sorts the values longest first (so a value inside another is not redacted first).
    pub fn finish(mut self) -> Redactor {
        self.needles
            .sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        self.needles.dedup();
        self
    }

    /// Whether there is nothing to look for.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` without the secret values.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for needle in &self.needles {
            if out.contains(&**needle) {
                out = out.replace(&**needle, REDACTED);
            }
        }
        if out.contains('…') {
            out = self.redact_cuts(&out);
        }
        out
    }

    /// Redacts, in place, every field of text of `error`-like parts given.
    pub fn redact_in_place(&self, text: &mut Option<String>) {
        if self.is_empty() {
            return;
        }
        if let Some(inner) = text {
            if self.needles.iter().any(|n| inner.contains(&**n)) || inner.contains('…') {
                *inner = self.redact(inner);
            }
        }
    }

    /// The start of a secret right before a cut `…` (a message shortened mid-value).
    fn redact_cuts(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('…') {
            let before = &rest[..at];
            let cut = self
                .needles
                .iter()
                .filter_map(|needle| longest_prefix_suffix(before, needle))
                .max()
                .unwrap_or(0);
            out.push_str(&before[..before.len() - cut]);
            if cut > 0 {
                out.push_str(REDACTED);
            }
            out.push('…');
            rest = &rest[at + '…'.len_utf8()..];
        }
        out.push_str(rest);
        out
    }
}

/// The length of the longest start of `needle` (at least [`MIN_CUT_PREFIX`] bytes) that
/// `text` ends with.
fn longest_prefix_suffix(text: &str, needle: &str) -> Option<usize> {
    (MIN_CUT_PREFIX..=needle.len().min(text.len()))
        .rev()
        .find(|&k| needle.is_char_boundary(k) && text.ends_with(&needle[..k]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn takes_out_values_escaped_forms_and_cut_starts() {
        let r = Redactor::new(&[
            json!("sk-live-0123456789"),
            json!({ "user": "u", "password": "p\"ss\\word" }),
            json!("abc"),
        ]);
        assert_eq!(
            r.redact("jq: cannot parse \"sk-live-0123456789\" as JSON"),
            "jq: cannot parse \"[redacted]\" as JSON"
        );
        // The JSON-escaped form, as jq writes a string value.
        assert_eq!(
            r.redact(r#"value "p\"ss\\word" and p"ss\word"#),
            r#"value "[redacted]" and [redacted]"#
        );
        // A message cut inside the value.
        assert_eq!(
            r.redact("cannot parse \"sk-live-01…"),
            "cannot parse \"[redacted]…"
        );
        assert_eq!(r.redact("other text…"), "other text…");
        // Short values are not looked for.
        assert_eq!(r.redact("abc u"), "abc u");
        assert!(format!("{r:?}").contains("values"));
        assert!(!format!("{r:?}").contains("sk-live"));
    }
}
