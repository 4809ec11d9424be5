//! A loopback HTTP/1.1 server on std threads that stands in for the public hosts the CTK
//! calls (petstore.swagger.io, httpbin.org) and for test endpoints. Tests map those host
//! names to it with `EngineOptions::resolve_overrides`; nothing leaves 127.0.0.1.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A request as the stand-in received it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) method: String,
    /// The request target (path and query).
    pub(crate) target: String,
    /// Header names (lower case) and values.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The running stand-in; stops when dropped.
pub(crate) struct StandIn {
    pub(crate) addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StandIn {
    /// Starts the stand-in on an ephemeral loopback port.
    pub(crate) fn start() -> StandIn {
        let listener = match TcpListener::bind("127.0.0.1:0") {
            Ok(listener) => listener,
            Err(e) => panic!("cannot bind a loopback port: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(e) => panic!("{e}"),
        };
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let received = received.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let received = received.clone();
                    std::thread::spawn(move || serve(stream, &received));
                }
            })
        };
        StandIn {
            addr,
            received,
            stop,
            thread: Some(thread),
        }
    }

    /// The requests received so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves one connection (one request; the answer closes it).
fn serve(stream: TcpStream, received: &Mutex<Vec<Received>>) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let request = Received {
        method,
        target,
        headers,
        body,
    };
    if let Ok(mut all) = received.lock() {
        all.push(request.clone());
    }
    if request.target == "/slow" {
        // Answer only when the client gives up: a read returns once it closes the connection.
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest);
        return;
    }
    let (status, headers, body) = respond(&request);
    let mut stream = stream;
    let mut head = format!(
        "HTTP/1.1 {status} Stand-in\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
    let _ = stream.flush();
}

fn json_reply(status: u16, value: Value) -> (u16, Vec<(String, String)>, Vec<u8>) {
    (
        status,
        vec![("content-type".into(), "application/json".into())],
        serde_json::to_vec(&value).unwrap_or_default(),
    )
}

fn pet(id: u64) -> Value {
    json!({ "id": id, "name": format!("pet-{id}"), "status": "available", "category": { "name": "dog" } })
}

/// The stand-in's routes: a sliver of the Swagger petstore and of httpbin, plus test echoes.
fn respond(request: &Received) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((request.target.as_str(), ""));
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["v2", "swagger.json"] => json_reply(200, swagger()),
        ["v2", "pet", "findByStatus"] if query.starts_with("status=") => {
            json_reply(200, json!([pet(1), pet(2), pet(3)]))
        }
        ["v2", "pet", "getPetByName", _] => json_reply(
            404,
            json!({ "code": 404, "type": "unknown", "message": "not found" }),
        ),
        ["v2", "pet", id] => match id.parse::<u64>() {
            Ok(id) => json_reply(200, pet(id)),
            Err(_) => json_reply(404, json!({ "message": "not found" })),
        },
        ["basic-auth", user, password] => {
            use base64::Engine as _;
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            );
            if request.header("authorization") == Some(expected.as_str()) {
                json_reply(200, json!({ "authenticated": true, "user": user }))
            } else {
                (
                    401,
                    vec![(
                        "www-authenticate".into(),
                        "Basic realm=\"Fake Realm\"".into(),
                    )],
                    Vec::new(),
                )
            }
        }
        ["echo", ..] => json_reply(
            200,
            json!({
                "method": request.method,
                "target": request.target,
                "headers": request.headers.iter().map(|(n, v)| (n.clone(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
                "body": String::from_utf8_lossy(&request.body),
            }),
        ),
        ["redirect"] => (
            302,
            vec![("location".into(), "/v2/pet/9".into())],
            Vec::new(),
        ),
        ["status", code] => (
            code.parse().unwrap_or(500),
            vec![("content-type".into(), "text/plain".into())],
            b"status".to_vec(),
        ),
        ["bytes"] => (
            200,
            vec![("content-type".into(), "application/octet-stream".into())],
            vec![0, 1, 2, 255],
        ),
        ["text"] => (
            200,
            vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            b"plain words".to_vec(),
        ),
        ["empty"] => (204, Vec::new(), Vec::new()),
        _ => json_reply(404, json!({ "message": "no such route" })),
    }
}

/// A Swagger 2.0 document with the petstore operations the CTK calls.
fn swagger() -> Value {
    json!({
        "swagger": "2.0",
        "info": { "title": "Swagger Petstore (stand-in)", "version": "1.0.7" },
        "host": "petstore.swagger.io",
        "basePath": "/v2",
        "schemes": ["https", "http"],
        "paths": {
            "/pet/findByStatus": { "get": {
                "operationId": "findPetsByStatus",
                "parameters": [ { "name": "status", "in": "query", "required": true, "type": "array", "items": { "type": "string" } } ]
            } },
            "/pet/{petId}": { "get": {
                "operationId": "getPetById",
                "parameters": [ { "name": "petId", "in": "path", "required": true, "type": "integer" } ]
            } }
        }
    })
}
