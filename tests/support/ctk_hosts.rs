//! Offline stand-ins for the public hosts the CTK scenarios call, so that no test reaches the
//! internet: one HTTP/1.1 server on `127.0.0.1` (OS-assigned port, std threads only) that
//! answers, by `Host` header, the requests of `call.feature`, `data-flow.feature` and
//! `try.feature`:
//!
//! - `petstore.swagger.io` (the Swagger Petstore v2):
//!   - `GET /v2/swagger.json`: a Swagger 2.0 document with `findPetsByStatus` and
//!     `getPetById` (host `petstore.swagger.io`, base path `/v2`);
//!   - `GET /v2/pet/findByStatus?status=…` (`status` repeated or comma-separated): the pets
//!     with those statuses, as a JSON array; 400 without `status`;
//!   - `GET /v2/pet/{petId}`: the pet (`id`, `category`, `name`, `photoUrls`, `tags`,
//!     `status`), 404 `Pet not found` for an unknown id, 404 for a non-numeric id;
//! - `httpbin.org`:
//!   - `GET /basic-auth/{user}/{passwd}`: 200 `{"authenticated": true, "user": …}` when the
//!     request carries `Authorization: Basic base64(user:passwd)`, else 401 with
//!     `WWW-Authenticate: Basic realm="Fake Realm"`;
//! - any other path: 404 (`/v2/pet/getPetByName/{name}` too, as on the real Petstore); another
//!   method on a known path: 405; an unknown host: 421.
//!
//! Responses close the connection (`Connection: close`). Request bodies are read by
//! `Content-Length` (chunked bodies answer 501: no scenario sends one). Every request is
//! logged ([`StandIn::requests`]) for diagnostics.
//!
//! The engine reaches the server through a host → loopback mapping
//! ([`StandIn::resolve_overrides`]): the URI keeps its host (and so the `Host` header), only
//! the connection goes to `127.0.0.1`, in plain HTTP.
//!
//! Include it with `#[path = "support/ctk_hosts.rs"] mod ctk_hosts;`.
#![allow(dead_code)]

use base64::Engine as _;
use serde_json::{json, Value};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// The public hosts this stand-in answers for.
pub const HOSTS: &[&str] = &[PETSTORE, HTTPBIN];
/// The Swagger Petstore (v2 API under `/v2`).
pub const PETSTORE: &str = "petstore.swagger.io";
/// httpbin (only `/basic-auth/{user}/{passwd}`).
pub const HTTPBIN: &str = "httpbin.org";

/// How long a connection may stall while sending its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (request line and headers) accepted.
const MAX_HEAD_BYTES: u64 = 64 * 1024;
/// Largest request body accepted.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// One request the stand-in received, for diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// The method, as sent.
    pub method: String,
    /// The `Host` header without its port (or the host of an absolute-form target).
    pub host: String,
    /// The request target in origin form (path and query).
    pub target: String,
    /// The status the stand-in answered.
    pub status: u16,
}

/// The running stand-in server; stops and joins its accept thread when dropped.
pub struct StandIn {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    accept: Option<JoinHandle<()>>,
}

impl StandIn {
    /// Starts the server on `127.0.0.1` with an OS-assigned port.
    pub fn start() -> io::Result<StandIn> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let stop = Arc::clone(&stop);
            let seen = Arc::clone(&seen);
            thread::Builder::new()
                .name("ctk-hosts-accept".into())
                .spawn(move || accept_loop(&listener, &stop, &seen))?
        };
        Ok(StandIn {
            addr,
            stop,
            seen,
            accept: Some(accept),
        })
    }

    /// The loopback address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every public host this stand-in answers for, mapped to its loopback address.
    pub fn resolve_overrides(&self) -> Vec<(String, SocketAddr)> {
        HOSTS.iter().map(|h| ((*h).to_owned(), self.addr)).collect()
    }

    /// The requests received so far, in arrival order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept so that the loop sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, stop: &AtomicBool, seen: &Arc<Mutex<Vec<SeenRequest>>>) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let seen = Arc::clone(seen);
        // A connection thread that cannot be spawned just drops the connection.
        let _ = thread::Builder::new()
            .name("ctk-hosts-conn".into())
            .spawn(move || serve(stream, &seen));
    }
}

/// A parsed request.
struct Request {
    method: String,
    host: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
}

impl Request {
    /// The first header named `name` (case-insensitive).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The values of query parameter `name`, percent-decoded.
    fn query_values(&self, name: &str) -> Vec<String> {
        self.query
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .filter(|(k, _)| query_decode(k) == name)
            .map(|(_, v)| query_decode(v))
            .collect()
    }
}

/// A response to write.
struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Response {
    fn json(status: u16, body: &Value) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    fn with_header(mut self, name: &'static str, value: &str) -> Response {
        self.headers.push((name, value.to_owned()));
        self
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<SeenRequest>>) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let response = match read_request(&mut reader) {
        Ok(request) => {
            let response = route(&request);
            seen.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(SeenRequest {
                    method: request.method.clone(),
                    host: request.host.clone(),
                    target: if request.query.is_empty() {
                        request.path.clone()
                    } else {
                        format!("{}?{}", request.path, request.query)
                    },
                    status: response.status,
                });
            response
        }
        Err(response) => response,
    };
    let _ = write_response(&mut writer, &response);
}

/// Reads one request (head and `Content-Length` body); a malformed one becomes its error answer.
fn read_request(reader: &mut BufReader<TcpStream>) -> Result<Request, Response> {
    let bad = |what: &str| Response::text(400, what);
    let mut head = reader.by_ref().take(MAX_HEAD_BYTES);
    let mut line = String::new();
    head.read_line(&mut line)
        .map_err(|_| bad("unreadable request line"))?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(_version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    let (method, target) = (method.to_owned(), target.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        let n = head
            .read_line(&mut line)
            .map_err(|_| bad("unreadable header"))?;
        let line = line.trim_end_matches(['\r', '\n']);
        if n == 0 || line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad("malformed header"));
        };
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _): &&(String, String)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    if header("Transfer-Encoding").is_some() {
        return Err(Response::text(
            501,
            "chunked request bodies are not supported by the stand-in",
        ));
    }
    let length = match header("Content-Length") {
        Some(value) => value
            .parse::<usize>()
            .map_err(|_| bad("invalid Content-Length"))?,
        None => 0,
    };
    if length > MAX_BODY_BYTES {
        return Err(Response::text(413, "request body too large"));
    }
    let mut body = vec![0; length];
    reader
        .read_exact(&mut body)
        .map_err(|_| bad("request body shorter than Content-Length"))?;

    // Origin form (`/v2/pet/1`) or absolute form (`http://petstore.swagger.io/v2/pet/1`).
    let (target_host, origin) = match target.split_once("://") {
        Some((_scheme, rest)) => match rest.find('/') {
            Some(slash) => (Some(rest[..slash].to_owned()), rest[slash..].to_owned()),
            None => (Some(rest.to_owned()), "/".to_owned()),
        },
        None => (None, target),
    };
    let host = target_host
        .or_else(|| header("Host"))
        .ok_or_else(|| bad("no Host header"))?;
    let host = strip_port(&host).to_ascii_lowercase();
    let (path, query) = match origin.split_once('?') {
        Some((path, query)) => (path.to_owned(), query.to_owned()),
        None => (origin, String::new()),
    };
    Ok(Request {
        method,
        host,
        path,
        query,
        headers,
    })
}

/// `host` without a trailing `:port` (IPv6 literals keep their brackets).
fn strip_port(host: &str) -> &str {
    match host.rfind(':') {
        Some(colon) if !host[colon..].contains(']') => &host[..colon],
        _ => host,
    }
}

fn write_response(stream: &mut TcpStream, response: &Response) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        response.status,
        reason(response.status),
        response.body.len()
    );
    for (name, value) in &response.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    stream.write_all(out.as_bytes())?;
    stream.write_all(&response.body)?;
    stream.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        421 => "Misdirected Request",
        501 => "Not Implemented",
        _ => "Unknown",
    }
}

fn route(request: &Request) -> Response {
    match request.host.as_str() {
        PETSTORE => petstore(request),
        HTTPBIN => httpbin(request),
        other => Response::text(
            421,
            &format!("the CTK stand-in does not serve host `{other}`"),
        ),
    }
}

/// Answers `GET` with `answer`, any other method with 405.
fn get_only(request: &Request, answer: impl FnOnce() -> Response) -> Response {
    if request.method.eq_ignore_ascii_case("GET") {
        answer()
    } else {
        Response::json(
            405,
            &json!({ "code": 405, "type": "unknown", "message": "Method Not Allowed" }),
        )
        .with_header("Allow", "GET")
    }
}

fn petstore_not_found(message: &str) -> Response {
    Response::json(
        404,
        &json!({ "code": 404, "type": "unknown", "message": message }),
    )
}

fn petstore(request: &Request) -> Response {
    let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["v2", "swagger.json"] => get_only(request, || Response::json(200, &swagger())),
        ["v2", "pet", "findByStatus"] => get_only(request, || {
            let statuses: Vec<String> = request
                .query_values("status")
                .iter()
                .flat_map(|v| v.split(',').map(str::to_owned).collect::<Vec<_>>())
                .filter(|s| !s.is_empty())
                .collect();
            if statuses.is_empty() {
                return Response::json(
                    400,
                    &json!({ "code": 400, "type": "unknown", "message": "Invalid status value" }),
                );
            }
            let found: Vec<Value> = pets()
                .into_iter()
                .filter(|pet| {
                    pet["status"]
                        .as_str()
                        .is_some_and(|s| statuses.iter().any(|w| w == s))
                })
                .collect();
            Response::json(200, &Value::Array(found))
        }),
        ["v2", "pet", id] => get_only(request, || match id.parse::<i64>() {
            Ok(id) => match pets().into_iter().find(|pet| pet["id"] == json!(id)) {
                Some(pet) => Response::json(200, &pet),
                None => Response::json(
                    404,
                    &json!({ "code": 1, "type": "error", "message": "Pet not found" }),
                ),
            },
            Err(_) => petstore_not_found(&format!(
                "java.lang.NumberFormatException: For input string: \"{id}\""
            )),
        }),
        _ => petstore_not_found("not found"),
    }
}

fn httpbin(request: &Request) -> Response {
    let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["basic-auth", user, passwd] => get_only(request, || {
            let expected = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                percent_decode(user),
                percent_decode(passwd)
            ));
            let authorized = request
                .header("Authorization")
                .and_then(|v| v.split_once(' '))
                .is_some_and(|(scheme, credentials)| {
                    scheme.eq_ignore_ascii_case("basic") && credentials.trim() == expected
                });
            if authorized {
                Response::json(
                    200,
                    &json!({ "authenticated": true, "user": percent_decode(user) }),
                )
            } else {
                Response {
                    status: 401,
                    headers: Vec::new(),
                    body: Vec::new(),
                }
                .with_header("WWW-Authenticate", "Basic realm=\"Fake Realm\"")
            }
        }),
        _ => Response::text(404, "Not Found"),
    }
}

/// The Petstore's pets.
fn pets() -> Vec<Value> {
    let pet = |id: i64, category: &str, name: &str, tag: &str, status: &str| {
        json!({
            "id": id,
            "category": { "id": 1, "name": category },
            "name": name,
            "photoUrls": [ format!("https://petstore.swagger.io/photos/{id}.jpg") ],
            "tags": [ { "id": id, "name": tag } ],
            "status": status,
        })
    };
    vec![
        pet(1, "Dogs", "doggie", "friendly", "available"),
        pet(2, "Cats", "kitty", "calm", "available"),
        pet(3, "Dogs", "Rex", "loud", "pending"),
        pet(4, "Birds", "Tweety", "small", "sold"),
    ]
}

/// The Petstore's Swagger 2.0 document, trimmed to the operations the CTK calls.
fn swagger() -> Value {
    json!({
        "swagger": "2.0",
        "info": { "title": "Swagger Petstore", "version": "1.0.7" },
        "host": PETSTORE,
        "basePath": "/v2",
        "schemes": ["https", "http"],
        "paths": {
            "/pet/findByStatus": {
                "get": {
                    "tags": ["pet"],
                    "summary": "Finds Pets by status",
                    "operationId": "findPetsByStatus",
                    "produces": ["application/json", "application/xml"],
                    "parameters": [{
                        "name": "status",
                        "in": "query",
                        "description": "Status values that need to be considered for filter",
                        "required": true,
                        "type": "array",
                        "items": {
                            "type": "string",
                            "enum": ["available", "pending", "sold"],
                            "default": "available"
                        },
                        "collectionFormat": "multi"
                    }],
                    "responses": {
                        "200": {
                            "description": "successful operation",
                            "schema": { "type": "array", "items": { "$ref": "#/definitions/Pet" } }
                        },
                        "400": { "description": "Invalid status value" }
                    }
                }
            },
            "/pet/{petId}": {
                "get": {
                    "tags": ["pet"],
                    "summary": "Find pet by ID",
                    "operationId": "getPetById",
                    "produces": ["application/json", "application/xml"],
                    "parameters": [{
                        "name": "petId",
                        "in": "path",
                        "description": "ID of pet to return",
                        "required": true,
                        "type": "integer",
                        "format": "int64"
                    }],
                    "responses": {
                        "200": { "description": "successful operation", "schema": { "$ref": "#/definitions/Pet" } },
                        "400": { "description": "Invalid ID supplied" },
                        "404": { "description": "Pet not found" }
                    }
                }
            }
        },
        "definitions": {
            "Category": {
                "type": "object",
                "properties": {
                    "id": { "type": "integer", "format": "int64" },
                    "name": { "type": "string" }
                }
            },
            "Tag": {
                "type": "object",
                "properties": {
                    "id": { "type": "integer", "format": "int64" },
                    "name": { "type": "string" }
                }
            },
            "Pet": {
                "type": "object",
                "required": ["name", "photoUrls"],
                "properties": {
                    "id": { "type": "integer", "format": "int64" },
                    "category": { "$ref": "#/definitions/Category" },
                    "name": { "type": "string", "example": "doggie" },
                    "photoUrls": { "type": "array", "items": { "type": "string" } },
                    "tags": { "type": "array", "items": { "$ref": "#/definitions/Tag" } },
                    "status": {
                        "type": "string",
                        "description": "pet status in the store",
                        "enum": ["available", "pending", "sold"]
                    }
                }
            }
        }
    })
}

/// `%XX` decoding of a path component (invalid escapes stay as they are).
fn percent_decode(text: &str) -> String {
    decode(text, false)
}

/// `%XX` and `+` decoding of a query component (invalid escapes stay as they are).
fn query_decode(text: &str) -> String {
    decode(text, true)
}

fn decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
