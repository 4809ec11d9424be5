//! A scripted OpenAI-compatible Chat Completions server on loopback, for tests of agent tasks:
//! real HTTP/1.1 on `127.0.0.1` (OS-assigned port, std threads only), answering each request
//! with the next reply of its script — Chat Completions bodies with `tool_calls` and `usage`,
//! error statuses with headers (`Retry-After`), or a dropped connection. Every request is
//! recorded (path, headers, JSON body) so tests can assert what the engine sent. When the
//! script runs out, it answers 500 with an error saying so.
//!
//! Self-contained (std and `serde_json` only) so black-box tests can include it too:
//! `#[path = "../src/workflow/tests/openai_standin.rs"] mod openai_standin;` — and point the
//! runtime at it with `OPENAI_BASE_URL` = [`OpenAiStandIn::base_url`].
#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A JSON answer with this status and these extra headers.
    Json {
        status: u16,
        headers: Vec<(String, String)>,
        body: Value,
    },
    /// Close the connection without answering (a connection failure for the client).
    Drop,
}

/// A request as the stand-in received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The request target, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body, parsed as JSON (`null` when it is not JSON).
    pub body: Value,
    /// The body as received (for checks of a signature over it).
    pub raw_body: Vec<u8>,
}

impl Recorded {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The names of the tools offered.
    pub fn tool_names(&self) -> Vec<String> {
        self.body["tools"]
            .as_array()
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The system message's text.
    pub fn system(&self) -> String {
        self.body["messages"][0]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// The running server; stops when dropped.
pub struct OpenAiStandIn {
    pub addr: SocketAddr,
    script: Arc<Mutex<VecDeque<Reply>>>,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl OpenAiStandIn {
    /// Starts a server that answers with `script`, in order.
    pub fn start(script: Vec<Reply>) -> OpenAiStandIn {
        let listener = match TcpListener::bind("127.0.0.1:0") {
            Ok(listener) => listener,
            Err(e) => panic!("cannot bind a loopback port: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(e) => panic!("{e}"),
        };
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (script, recorded, stop) = (script.clone(), recorded.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    // A conversation's calls are sequential, so the script is answered in the
                    // order they are made, whichever connection carries them.
                    let (script, recorded) = (script.clone(), recorded.clone());
                    std::thread::spawn(move || serve(stream, &script, &recorded));
                }
            })
        };
        OpenAiStandIn {
            addr,
            script,
            recorded,
            stop,
            thread: Some(thread),
        }
    }

    /// The base URL to configure (`OPENAI_BASE_URL`): `http://127.0.0.1:<port>/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The requests received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// How many scripted replies are left.
    pub fn remaining(&self) -> usize {
        self.script.lock().map(|s| s.len()).unwrap_or_default()
    }
}

impl Drop for OpenAiStandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Token counts as a provider reports them.
pub fn usage(prompt: u64, completion: u64, cached: u64) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": { "cached_tokens": cached, "audio_tokens": 0 },
        "completion_tokens_details": { "reasoning_tokens": 0 }
    })
}

/// A 200 Chat Completions answer with `message` and `usage`.
pub fn completion(message: Value, finish_reason: &str, usage: Value) -> Reply {
    Reply::Json {
        status: 200,
        headers: Vec::new(),
        body: json!({
            "id": "chatcmpl-standin",
            "object": "chat.completion",
            "created": 1_767_225_600,
            "model": "standin-model",
            "choices": [{ "index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason }],
            "usage": usage,
            "system_fingerprint": "fp_standin"
        }),
    }
}

/// A text reply.
pub fn text(content: &str, usage: Value) -> Reply {
    completion(
        json!({ "role": "assistant", "content": content, "refusal": null }),
        "stop",
        usage,
    )
}

/// A reply calling tools: `(id, name, arguments)`; arguments are sent as JSON text.
pub fn tool_calls(calls: &[(&str, &str, Value)], usage: Value) -> Reply {
    let calls: Vec<Value> = calls
        .iter()
        .map(|(id, name, arguments)| {
            json!({ "id": id, "type": "function",
                    "function": { "name": name, "arguments": arguments.to_string() } })
        })
        .collect();
    completion(
        json!({ "role": "assistant", "content": null, "tool_calls": calls, "refusal": null }),
        "tool_calls",
        usage,
    )
}

/// An error answer in OpenAI's shape, with extra headers.
pub fn error(status: u16, message: &str, headers: &[(&str, &str)]) -> Reply {
    Reply::Json {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body: json!({ "error": { "message": message, "type": "standin_error", "param": null, "code": null } }),
    }
}

/// Serves the requests of one connection, until it closes or a reply closes it.
fn serve(stream: TcpStream, script: &Mutex<VecDeque<Reply>>, recorded: &Mutex<Vec<Recorded>>) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
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
        if let Ok(mut all) = recorded.lock() {
            all.push(Recorded {
                path,
                headers,
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                raw_body: body,
            });
        }
        let reply = script.lock().ok().and_then(|mut s| s.pop_front());
        let (status, extra, body) = match reply {
            Some(Reply::Drop) => return,
            Some(Reply::Json {
                status,
                headers,
                body,
            }) => (status, headers, body),
            None => (
                500,
                Vec::new(),
                json!({ "error": { "message": "the stand-in's script is exhausted" } }),
            ),
        };
        let body = body.to_string();
        let mut head = format!(
            "HTTP/1.1 {status} Stand-in\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        if stream.write_all(head.as_bytes()).is_err()
            || stream.write_all(body.as_bytes()).is_err()
            || stream.flush().is_err()
        {
            return;
        }
    }
}
