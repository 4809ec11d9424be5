//! The engine's two error types: `LoadError` (a bundle cannot be loaded) and `WorkflowError`
//! (a run faulted, in the DSL's error model: RFC 9457 problem details with the DSL's types).

use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// Base of the DSL's standard error type URIs.
const ERROR_TYPE_BASE: &str = "https://serverlessworkflow.io/spec/1.0.0/errors/";

/// A workflow bundle could not be loaded: which file, where in it, and what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    file: PathBuf,
    pointer: String,
    message: String,
}

impl LoadError {
    /// An error at `pointer` (a JSON pointer into the document; empty for the whole file).
    pub(crate) fn new(file: &Path, pointer: impl Into<String>, message: impl Into<String>) -> Self {
        LoadError {
            file: file.to_path_buf(),
            pointer: pointer.into(),
            message: message.into(),
        }
    }

    /// The file (or directory) the error is about.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// JSON pointer of the offending place in the document; empty when it is the whole file.
    pub fn pointer(&self) -> &str {
        &self.pointer
    }

    /// What is wrong and what to do about it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}: {}: {}",
                self.file.display(),
                self.pointer,
                self.message
            )
        }
    }
}

impl std::error::Error for LoadError {}

/// A fault of a run, as the DSL describes errors (RFC 9457 problem details).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkflowError {
    /// URI of the error type, e.g. `https://serverlessworkflow.io/spec/1.0.0/errors/timeout`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Status code (HTTP semantics): 400 expression, 408 timeout, …
    pub status: u16,
    /// Short, human-readable summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Human-readable explanation of this occurrence. May quote workflow data: do not log it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// JSON pointer of the component that raised it, e.g. `/do/0/greet`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

impl WorkflowError {
    /// An error of one of the DSL's standard types (`kind` is the last segment of its URI).
    fn standard(kind: &str, status: u16, title: &str, detail: String, instance: &str) -> Self {
        WorkflowError {
            type_: format!("{ERROR_TYPE_BASE}{kind}"),
            status,
            title: Some(title.to_owned()),
            detail: Some(detail),
            instance: Some(instance.to_owned()),
        }
    }

    /// A runtime expression failed (type `expression`, status 400).
    pub(crate) fn expression(instance: &str, detail: String) -> Self {
        Self::standard(
            "expression",
            400,
            "Runtime expression failed",
            detail,
            instance,
        )
    }

    /// Data did not match its schema (type `validation`, status 400).
    pub(crate) fn validation(instance: &str, detail: String) -> Self {
        Self::standard("validation", 400, "Validation failed", detail, instance)
    }

    /// The workflow or bundle is misconfigured for this call (type `configuration`, status 400).
    pub fn configuration(instance: &str, detail: String) -> Self {
        Self::standard(
            "configuration",
            400,
            "Invalid configuration",
            detail,
            instance,
        )
    }

    /// The runtime could not go on (type `runtime`, status 500).
    pub fn runtime(instance: &str, detail: String) -> Self {
        Self::standard("runtime", 500, "Runtime error", detail, instance)
    }

    /// A timeout passed (type `timeout`, status 408).
    pub fn timeout(instance: &str, detail: String) -> Self {
        Self::standard("timeout", 408, "Execution timed out", detail, instance)
    }

    /// The error type URI of a standard DSL error `kind` (e.g. `timeout`).
    pub fn standard_type(kind: &str) -> String {
        format!("{ERROR_TYPE_BASE}{kind}")
    }
}

impl fmt::Display for WorkflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.type_, self.status)?;
        if let Some(instance) = &self.instance {
            write!(f, " at {instance}")?;
        }
        if let Some(title) = &self.title {
            write!(f, ": {title}")?;
        }
        Ok(())
    }
}

impl std::error::Error for WorkflowError {}

// The loader's place types live here, below everything that reports a place (expressions,
// durations, schemas, the loader), so that none of those imports the loader.

/// A problem at a place in a document (the file is added by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pointer: String,
    message: String,
}

impl Invalid {
    /// A problem at `pointer`.
    pub(crate) fn new(pointer: &str, message: impl Into<String>) -> Self {
        Invalid {
            pointer: pointer.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn in_file(self, file: &Path) -> LoadError {
        LoadError::new(file, self.pointer, self.message)
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pointer, self.message)
    }
}

/// The JSON pointer of `token` under `pointer` (escaping `~` and `/` per RFC 6901).
pub(crate) fn child(pointer: &str, token: &str) -> String {
    let mut out = String::with_capacity(pointer.len() + token.len() + 1);
    out.push_str(pointer);
    out.push('/');
    for c in token.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_error_display_names_file_and_place() {
        let err = LoadError::new(Path::new("workflows/hello.yaml"), "/do/0/greet", "bad");
        assert_eq!(err.to_string(), "workflows/hello.yaml: /do/0/greet: bad");
        let err = LoadError::new(Path::new("workflows/x.yaml"), "", "not YAML");
        assert_eq!(err.to_string(), "workflows/x.yaml: not YAML");
    }

    #[test]
    fn workflow_error_serializes_problem_details_without_nulls() {
        let err = WorkflowError::timeout("/do/0/a", "late".into());
        let json = serde_json::to_value(&err).ok();
        assert_eq!(
            json,
            Some(serde_json::json!({
                "type": "https://serverlessworkflow.io/spec/1.0.0/errors/timeout",
                "status": 408,
                "title": "Execution timed out",
                "detail": "late",
                "instance": "/do/0/a"
            }))
        );
        let bare = WorkflowError {
            type_: WorkflowError::standard_type("runtime"),
            status: 500,
            title: None,
            detail: None,
            instance: None,
        };
        assert_eq!(
            serde_json::to_string(&bare).ok().as_deref(),
            Some(
                r#"{"type":"https://serverlessworkflow.io/spec/1.0.0/errors/runtime","status":500}"#
            )
        );
    }
}
