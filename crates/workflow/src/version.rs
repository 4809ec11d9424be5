//! Semantic versions (<https://semver.org>, 2.0.0): parsing and precedence, no dependencies.

use std::cmp::Ordering;

/// A parsed semantic version; ordered by semver precedence (build metadata ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    /// Pre-release identifiers (`1.0.0-alpha.1` → `["alpha", "1"]`); empty for a release.
    pre: Vec<String>,
}

impl Version {
    /// Parses `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`; the error says what is wrong.
    pub(crate) fn parse(text: &str) -> Result<Version, String> {
        let (rest, build) = match text.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (text, None),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (rest, None),
        };
        let mut parts = core.split('.');
        let mut number = |what: &str| -> Result<u64, String> {
            let part = parts
                .next()
                .ok_or_else(|| format!("missing the {what} number"))?;
            numeric(part).ok_or_else(|| {
                format!("the {what} number `{part}` is not a non-negative integer without leading zeros")
            })
        };
        let major = number("major")?;
        let minor = number("minor")?;
        let patch = number("patch")?;
        if parts.next().is_some() {
            return Err("has more than three numbers before the pre-release part".into());
        }
        let pre = match pre {
            None => Vec::new(),
            Some(pre) => identifiers(pre, "pre-release", true)?,
        };
        if let Some(build) = build {
            identifiers(build, "build metadata", false)?;
        }
        Ok(Version {
            major,
            minor,
            patch,
            pre,
        })
    }

    /// The major number.
    pub(crate) fn major(&self) -> u64 {
        self.major
    }

    /// The minor number.
    pub(crate) fn minor(&self) -> u64 {
        self.minor
    }
}

/// A numeric identifier: ASCII digits, no leading zero (except `0` itself), fits in u64.
fn numeric(part: &str) -> Option<u64> {
    let digits = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !digits || (part.len() > 1 && part.starts_with('0')) {
        return None;
    }
    part.parse().ok()
}

/// Dot-separated identifiers of `[0-9A-Za-z-]`; numeric pre-release ones must not have leading zeros.
fn identifiers(text: &str, what: &str, pre_release: bool) -> Result<Vec<String>, String> {
    text.split('.')
        .map(|id| {
            if id.is_empty() {
                return Err(format!("has an empty {what} identifier"));
            }
            if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(format!(
                    "the {what} identifier `{id}` may only contain ASCII letters, digits and `-`"
                ));
            }
            let all_digits = id.bytes().all(|b| b.is_ascii_digit());
            if pre_release && all_digits && id.len() > 1 && id.starts_with('0') {
                return Err(format!(
                    "the numeric {what} identifier `{id}` has a leading zero"
                ));
            }
            Ok(id.to_owned())
        })
        .collect()
}

/// Compares two pre-release identifiers: numeric < alphanumeric, numbers by value.
fn cmp_identifier(a: &str, b: &str) -> Ordering {
    let a_num = a.bytes().all(|c| c.is_ascii_digit());
    let b_num = b.bytes().all(|c| c.is_ascii_digit());
    match (a_num, b_num) {
        // No leading zeros, so a longer number is a larger one (works beyond u64 too).
        (true, true) => a.len().cmp(&b.len()).then_with(|| a.cmp(b)),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => {
                    for (a, b) in self.pre.iter().zip(&other.pre) {
                        let order = cmp_identifier(a, b);
                        if order != Ordering::Equal {
                            return order;
                        }
                    }
                    self.pre.len().cmp(&other.pre.len())
                }
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::Version;

    fn v(text: &str) -> Version {
        match Version::parse(text) {
            Ok(version) => version,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    #[test]
    fn orders_by_precedence() {
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.9.0",
            "1.10.0",
            "2.0.0",
        ];
        for pair in ordered.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn build_metadata_is_ignored_for_precedence() {
        assert_eq!(v("1.0.0+abc"), v("1.0.0+def"));
        assert_eq!(v("1.0.0-rc.1+x.y"), v("1.0.0-rc.1"));
    }

    #[test]
    fn huge_numeric_pre_release_identifiers_compare_by_value() {
        assert!(v("1.0.0-99999999999999999999") < v("1.0.0-100000000000000000000"));
    }

    #[test]
    fn rejects_what_is_not_semver() {
        for bad in [
            "",
            "1",
            "1.0",
            "1.0.0.0",
            "01.0.0",
            "1.00.0",
            "1.0.0-",
            "1.0.0-01",
            "1.0.0+",
            "1.0.0-a..b",
            "a.b.c",
            "1.0.0-é",
            "-1.0.0",
            "1.0.99999999999999999999",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(v("0.1.0").minor(), 1);
        assert_eq!(v("3.0.0-x-y.z+b-1").major(), 3);
    }
}
