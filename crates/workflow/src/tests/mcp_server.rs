//! A real MCP server for the tests: tests/support/mcp_server.py (the official `mcp` Python
//! SDK's `MCPServer` over streamable HTTP) on 127.0.0.1, killed when dropped. Also included by
//! the black-box tests of the repository (`#[path]`).
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long the server may take to start (Python imports the SDK).
const START: Duration = Duration::from_secs(60);

/// A running server and the lines it printed.
pub struct McpServer {
    child: Child,
    url: String,
    lines: Arc<(Mutex<Vec<String>>, Condvar)>,
}

/// The repository's tests/support directory.
fn support(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("tests/support").join(file).is_file())
        .map(|dir| dir.join("tests/support").join(file))
        .unwrap_or_else(|| panic!("tests/support/{file} not found"))
}

impl McpServer {
    /// Starts `mcp_server.py` with `args` (`--json`, `--stateless`, `--token T`).
    pub fn start(args: &[&str]) -> McpServer {
        McpServer::start_script("mcp_server.py", args)
    }

    /// Starts a Python script of tests/support that prints `listening on URL` when ready.
    pub fn start_script(script: &str, args: &[&str]) -> McpServer {
        let mut command = Command::new("python3");
        command.arg(support(script)).args(args);
        McpServer::start_command(command, script)
    }

    /// Starts the repository's tool host (`python3 -m mozaiks_toolhost DIR`, from toolhost/).
    pub fn start_toolhost(dir: &Path) -> McpServer {
        let toolhost = support("mcp_server.py")
            .ancestors()
            .nth(3)
            .map(|root| root.join("toolhost"))
            .unwrap_or_default();
        let mut command = Command::new("python3");
        command
            .args(["-m", "mozaiks_toolhost"])
            .arg(dir)
            .env("PYTHONPATH", toolhost);
        McpServer::start_command(command, "the tool host")
    }

    /// Starts `command`, which prints `listening on URL` when ready.
    pub fn start_command(mut command: Command, script: &str) -> McpServer {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {script} with python3 ({e}): pip install mcp")
            });
        let lines = Arc::new((Mutex::new(Vec::<String>::new()), Condvar::new()));
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let (list, ready) = &*lines;
                    if let Ok(mut list) = list.lock() {
                        list.push(line);
                    }
                    ready.notify_all();
                }
                // The pipe closed: wake waiters, who then see the process is gone.
                lines.1.notify_all();
            });
        }
        let mut server = McpServer {
            child,
            url: String::new(),
            lines,
        };
        let Some(line) = server.wait_line(|l| l.starts_with("listening on "), START) else {
            let output = server.output();
            panic!("{script} did not start within {START:?}:\n{output}");
        };
        server.url = line.trim_start_matches("listening on ").to_owned();
        server
    }

    /// The MCP endpoint, `http://127.0.0.1:PORT/mcp`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The first line (stdout or stderr) that `matches`, waiting at most `within`.
    pub fn wait_line(
        &mut self,
        matches: impl Fn(&str) -> bool,
        within: Duration,
    ) -> Option<String> {
        let until = Instant::now() + within;
        let (list, ready) = &*self.lines;
        let mut list = list.lock().ok()?;
        loop {
            if let Some(line) = list.iter().find(|l| matches(l)) {
                return Some(line.clone());
            }
            if self.child.try_wait().ok().flatten().is_some() {
                return None;
            }
            let left = until.checked_duration_since(Instant::now())?;
            list = ready
                .wait_timeout(list, left.min(Duration::from_millis(200)))
                .ok()?
                .0;
        }
    }

    /// The `request {…}` lines: each HTTP request the server received (method, session id,
    /// protocol version header, accept), in order. Waits until at least `count` arrived.
    pub fn requests(&mut self, count: usize) -> Vec<Value> {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let seen: Vec<Value> = self
                .output()
                .lines()
                .filter_map(|l| l.strip_prefix("request "))
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            if seen.len() >= count || Instant::now() >= until {
                return seen;
            }
            let (list, ready) = &*self.lines;
            if let Ok(list) = list.lock() {
                let _ = ready.wait_timeout(list, Duration::from_millis(200));
            }
        }
    }

    /// Everything it printed so far.
    pub fn output(&self) -> String {
        self.lines
            .0
            .lock()
            .map(|l| l.join("\n"))
            .unwrap_or_default()
    }
}

impl Drop for McpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
