//! `call: openapi`: an operation of an OpenAPI (3.x) or Swagger (2.0) document, called over
//! HTTP like `call: http`.
//!
//! The document is either bundled — `document.endpoint` a path relative to the workflow file
//! (or a `file:` URI), read and resolved at load, so a wrong `operationId` stops the start;
//! keep such documents in a subdirectory (e.g. `workflows/openapi/`), since every file
//! directly in the workflows directory is loaded as a workflow —
//! or named by an `http(s)` URL, fetched on the first call and kept for the life of the
//! bundle (JSON or YAML).
//!
//! The request: the operation's method; the URL from the document's first server (OpenAPI 3,
//! variables at their defaults, relative to the document URL) or `schemes`/`host`/`basePath`
//! (Swagger 2, `https` preferred) and the operation's path; `parameters` (the task's map)
//! fill the operation's `path`, `query` and `header` parameters by name (a missing required
//! one is a `validation` error). The body is the parameter named by a Swagger 2 `in: body`
//! parameter, or, for an OpenAPI 3 `requestBody`, the parameter `body`.

use super::expr::{Args, EvalError, Template};
use super::http::{parse_url, Auth, OutputFormat, Request};
use super::value::{to_json, truncate};
use bytes::Bytes;
use hyper::Method;
use jaq_json::Val;
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use url::Url;

/// A compiled `call: openapi`.
pub(crate) struct OpenApiCall {
    /// Where the document comes from.
    pub(crate) source: DocSource,
    /// `operationId`.
    pub(crate) operation_id: String,
    /// `parameters`.
    pub(crate) parameters: Option<Template>,
    /// `authentication`.
    pub(crate) auth: Option<Arc<Auth>>,
    /// `output`.
    pub(crate) output: OutputFormat,
    /// `redirect`.
    pub(crate) redirect: bool,
    /// The resolved operation: at load for bundled documents, on first call for URLs.
    pub(crate) operation: OnceLock<Arc<Operation>>,
}

/// Where an OpenAPI document comes from.
pub(crate) enum DocSource {
    /// Bundled with the workflow: the operation was resolved at load.
    Bundled,
    /// Fetched from this URL on first use.
    Url {
        /// The document's URL.
        url: Url,
        /// The authentication of the document's endpoint, if any.
        auth: Option<Arc<Auth>>,
    },
}

/// An operation, resolved from its document.
#[derive(Debug)]
pub(crate) struct Operation {
    method: Method,
    /// The server URL, without a trailing `/`.
    base: String,
    /// The path template, e.g. `/pet/{petId}`.
    path: String,
    params: Vec<Param>,
    body: Option<BodyParam>,
}

#[derive(Debug)]
struct Param {
    name: String,
    location: Location,
    required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Location {
    Path,
    Query,
    Header,
}

#[derive(Debug)]
struct BodyParam {
    /// The task parameter holding the body.
    name: String,
    required: bool,
}

/// A problem building an operation's request.
#[derive(Debug)]
pub(crate) enum OperationError {
    /// The task's parameters do not fit the operation (a `validation` error).
    Parameters(String),
    /// An expression failed.
    Expression(EvalError),
}

impl Operation {
    /// Finds `operation_id` in `doc` (fetched from `doc_url`, if any).
    pub(crate) fn resolve(
        doc: &Value,
        doc_url: Option<&Url>,
        operation_id: &str,
    ) -> Result<Operation, String> {
        let paths = doc
            .get("paths")
            .and_then(Value::as_object)
            .ok_or("the document has no `paths`: is it an OpenAPI or Swagger document?")?;
        for (path, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, operation) in item {
                if operation.get("operationId").and_then(Value::as_str) != Some(operation_id) {
                    continue;
                }
                let method =
                    Method::from_bytes(method.to_ascii_uppercase().as_bytes()).map_err(|_| {
                        format!("operation `{operation_id}` has an invalid method `{method}`")
                    })?;
                let mut params = Vec::new();
                let mut body = None;
                let declared = item
                    .get("parameters")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .chain(
                        operation
                            .get("parameters")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten(),
                    );
                for param in declared {
                    let param = resolve_ref(doc, param)?;
                    let name = param.get("name").and_then(Value::as_str).ok_or_else(|| {
                        format!("a parameter of operation `{operation_id}` has no name")
                    })?;
                    let required = param
                        .get("required")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    let location = match param.get("in").and_then(Value::as_str) {
                        Some("path") => Location::Path,
                        Some("query") => Location::Query,
                        Some("header") => Location::Header,
                        Some("body") => {
                            body = Some(BodyParam {
                                name: name.to_owned(),
                                required,
                            });
                            continue;
                        }
                        Some("cookie") | Some("formData") | None => continue,
                        Some(other) => {
                            return Err(format!(
                            "parameter `{name}` is in `{other}`, which this runtime does not send"
                        ))
                        }
                    };
                    params.retain(|p: &Param| !(p.name == name && p.location == location));
                    params.push(Param {
                        name: name.to_owned(),
                        location,
                        required: required || location == Location::Path,
                    });
                }
                if let Some(request_body) = operation.get("requestBody") {
                    let request_body = resolve_ref(doc, request_body)?;
                    body = Some(BodyParam {
                        name: "body".into(),
                        required: request_body
                            .get("required")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                    });
                }
                return Ok(Operation {
                    method,
                    base: base_url(doc, doc_url)?,
                    path: path.clone(),
                    params,
                    body,
                });
            }
        }
        Err(format!(
            "the document has no operation with operationId `{operation_id}`"
        ))
    }

    /// The request for `parameters` (a map of parameter names to values).
    pub(crate) fn request(&self, parameters: &Value) -> Result<Request, String> {
        let empty = serde_json::Map::new();
        let parameters = match parameters {
            Value::Object(map) => map,
            Value::Null => &empty,
            _ => return Err("`parameters` must be a map of parameter names to values".into()),
        };
        let mut path = String::with_capacity(self.path.len());
        let mut rest = self.path.as_str();
        while let Some(open) = rest.find('{') {
            path.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("the path `{}` has an unclosed `{{`", self.path))?;
            let name = &after[..close];
            let value = parameters
                .get(name)
                .filter(|v| !v.is_null())
                .ok_or_else(|| {
                    format!("the path parameter `{name}` is required but missing from `parameters`")
                })?;
            encode_path_segment(&text(value), &mut path);
            rest = &after[close + 1..];
        }
        path.push_str(rest);
        let mut url = parse_url(&format!("{}{}", self.base, path))?;
        let mut query = serde_json::Map::new();
        let mut headers = Vec::new();
        for param in &self.params {
            let value = parameters.get(&param.name).filter(|v| !v.is_null());
            match (value, param.location) {
                (None, _) if param.required => {
                    return Err(format!(
                        "the {} parameter `{}` is required but missing from `parameters`",
                        location_name(param.location),
                        param.name
                    ))
                }
                (None, _) | (Some(_), Location::Path) => {}
                (Some(value), Location::Query) => {
                    query.insert(param.name.clone(), value.clone());
                }
                (Some(value), Location::Header) => {
                    headers.push((param.name.to_ascii_lowercase(), text(value)))
                }
            }
        }
        super::http::append_query(&mut url, &Value::Object(query))?;
        let mut body = None;
        if let Some(spec) = &self.body {
            match parameters.get(&spec.name).filter(|v| !v.is_null()) {
                Some(value) => {
                    let bytes = serde_json::to_vec(value)
                        .map_err(|e| format!("the body cannot be serialized: {e}"))?;
                    headers.push(("content-type".into(), "application/json".into()));
                    body = Some(Bytes::from(bytes));
                }
                None if spec.required => {
                    return Err(format!(
                        "the request body is required: put it in `parameters.{}`",
                        spec.name
                    ))
                }
                None => {}
            }
        }
        headers.push(("accept".into(), "application/json".into()));
        Ok(Request {
            method: self.method.clone(),
            url,
            headers,
            body,
        })
    }
}

impl OpenApiCall {
    /// The request of this call, for the resolved `operation`.
    pub(crate) fn request(
        &self,
        operation: &Operation,
        input: &Val,
        args: &Args<'_>,
    ) -> Result<Request, OperationError> {
        let parameters = match &self.parameters {
            Some(parameters) => {
                let value = parameters
                    .eval(input, args)
                    .map_err(OperationError::Expression)?;
                to_json(&value).map_err(|message| {
                    OperationError::Expression(EvalError {
                        pointer: String::new(),
                        message,
                    })
                })?
            }
            None => Value::Null,
        };
        let mut request = operation
            .request(&parameters)
            .map_err(OperationError::Parameters)?;
        if let Some(auth) = &self.auth {
            let value = auth
                .header_value(input, args)
                .map_err(OperationError::Expression)?;
            request.headers.retain(|(name, _)| name != "authorization");
            request.headers.push(("authorization".into(), value));
        }
        Ok(request)
    }
}

fn location_name(location: Location) -> &'static str {
    match location {
        Location::Path => "path",
        Location::Query => "query",
        Location::Header => "header",
    }
}

/// Follows a local `$ref` (`#/…`).
fn resolve_ref<'d>(doc: &'d Value, value: &'d Value) -> Result<&'d Value, String> {
    match value.get("$ref").and_then(Value::as_str) {
        None => Ok(value),
        Some(reference) => reference
            .strip_prefix('#')
            .and_then(|pointer| doc.pointer(pointer))
            .ok_or_else(|| {
                format!(
                    "`$ref` `{}` does not point into the document",
                    truncate(reference, 80)
                )
            }),
    }
}

/// The server URL of the document, without a trailing `/`.
fn base_url(doc: &Value, doc_url: Option<&Url>) -> Result<String, String> {
    if let Some(server) = doc
        .get("servers")
        .and_then(Value::as_array)
        .and_then(|servers| servers.first())
    {
        let mut url = server
            .get("url")
            .and_then(Value::as_str)
            .ok_or("the first server has no `url`")?
            .to_owned();
        if let Some(variables) = server.get("variables").and_then(Value::as_object) {
            for (name, variable) in variables {
                let default = variable.get("default").map(text).unwrap_or_default();
                url = url.replace(&format!("{{{name}}}"), &default);
            }
        }
        let absolute = match Url::parse(&url) {
            Ok(absolute) => absolute,
            Err(_) => doc_url
                .and_then(|base| base.join(&url).ok())
                .ok_or_else(|| format!("the server URL `{url}` is relative, and the document has no URL to resolve it against"))?,
        };
        return Ok(absolute.as_str().trim_end_matches('/').to_owned());
    }
    if doc.get("swagger").is_some() {
        let schemes: Vec<&str> = doc
            .get("schemes")
            .and_then(Value::as_array)
            .map(|s| s.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let scheme = if schemes.contains(&"https") {
            "https"
        } else if let Some(first) = schemes.first() {
            first
        } else {
            doc_url.map(Url::scheme).unwrap_or("https")
        };
        let host = match doc.get("host").and_then(Value::as_str) {
            Some(host) => host.to_owned(),
            None => doc_url
                .and_then(|u| {
                    u.host_str().map(|h| match u.port() {
                        Some(port) => format!("{h}:{port}"),
                        None => h.to_owned(),
                    })
                })
                .ok_or("the Swagger document has no `host`, and no URL to take it from")?,
        };
        let base_path = doc.get("basePath").and_then(Value::as_str).unwrap_or("/");
        return Ok(format!(
            "{scheme}://{host}{}",
            base_path.trim_end_matches('/')
        ));
    }
    match doc_url {
        Some(url) => Ok(url.origin().ascii_serialization()),
        None => Err("the document declares no `servers`; add one with the API's URL".into()),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn encode_path_segment(text: &str, out: &mut String) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn swagger() -> Value {
        json!({
            "swagger": "2.0",
            "host": "petstore.swagger.io",
            "basePath": "/v2",
            "schemes": ["https", "http"],
            "parameters": { "status": { "name": "status", "in": "query", "required": true, "type": "array" } },
            "paths": {
                "/pet/findByStatus": { "get": { "operationId": "findPetsByStatus", "parameters": [ { "$ref": "#/parameters/status" } ] } },
                "/pet/{petId}": {
                    "get": { "operationId": "getPetById", "parameters": [ { "name": "petId", "in": "path", "required": true } ] },
                    "post": { "operationId": "updatePet", "parameters": [
                        { "name": "petId", "in": "path", "required": true },
                        { "name": "api_key", "in": "header" },
                        { "name": "pet", "in": "body", "required": true }
                    ] }
                }
            }
        })
    }

    fn resolve(doc: &Value, id: &str) -> Operation {
        match Operation::resolve(doc, None, id) {
            Ok(op) => op,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn swagger_operations_build_requests() {
        let doc = swagger();
        let op = resolve(&doc, "findPetsByStatus");
        let request = op.request(&json!({ "status": "available" }));
        let Ok(request) = request else {
            panic!("builds")
        };
        assert_eq!(request.method, Method::GET);
        assert_eq!(
            request.url.as_str(),
            "https://petstore.swagger.io/v2/pet/findByStatus?status=available"
        );
        let err = op.request(&json!({})).err().unwrap_or_default();
        assert!(
            err.contains("query parameter `status` is required"),
            "{err}"
        );

        let op = resolve(&doc, "updatePet");
        let Ok(request) =
            op.request(&json!({ "petId": "a b", "api_key": "k", "pet": { "name": "x" } }))
        else {
            panic!("builds")
        };
        assert_eq!(request.method, Method::POST);
        assert_eq!(
            request.url.as_str(),
            "https://petstore.swagger.io/v2/pet/a%20b"
        );
        assert!(request.headers.contains(&("api_key".into(), "k".into())));
        assert_eq!(request.body.as_deref(), Some(&br#"{"name":"x"}"#[..]));
        let err = op.request(&json!({ "petId": 1 })).err().unwrap_or_default();
        assert!(err.contains("request body is required"), "{err}");
        let err = Operation::resolve(&doc, None, "nope")
            .err()
            .unwrap_or_default();
        assert!(
            err.contains("no operation with operationId `nope`"),
            "{err}"
        );
    }

    #[test]
    fn openapi3_servers_resolve_against_the_document_url() {
        let doc = json!({
            "openapi": "3.0.0",
            "servers": [ { "url": "/api/{version}", "variables": { "version": { "default": "v3" } } } ],
            "paths": { "/items": { "post": { "operationId": "add", "requestBody": { "required": true } } } }
        });
        let url = Url::parse("http://127.0.0.1:8080/docs/openapi.json").ok();
        let op = Operation::resolve(&doc, url.as_ref(), "add");
        let Ok(op) = op else { panic!("resolves") };
        let Ok(request) = op.request(&json!({ "body": [1] })) else {
            panic!("builds")
        };
        assert_eq!(request.url.as_str(), "http://127.0.0.1:8080/api/v3/items");
        assert_eq!(request.body.as_deref(), Some(&b"[1]"[..]));
        let err = Operation::resolve(&doc, None, "add")
            .err()
            .unwrap_or_default();
        assert!(err.contains("relative"), "{err}");
    }
}
