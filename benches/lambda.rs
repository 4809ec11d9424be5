//! Process-level benchmark through the Lambda Runtime API (tests/support/runtime_api.rs):
//! cold start (process start → first response of the sample direct invocation), warm latency
//! (p50/p99), and peak RSS over many invocations — for the release `bootstrap` and, as the
//! floor, the release `echo` example, measured alternately in the same run.
//!
//! Run by `make bench` (scripts/bench.sh), which builds both binaries first. Prints one JSON
//! object on stdout. Arguments: `--cold N` (default 20), `--warm N` (default 1000).
//! `BENCH_BOOTSTRAP` and `BENCH_ECHO` name other binaries to measure (defaults: the release
//! builds in `target/release`).

#[path = "../tests/support/function.rs"]
mod function;
#[path = "../tests/support/runtime_api.rs"]
mod runtime_api;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use function::root;
use runtime_api::{spawn_function, Outcome, RuntimeApi};

const TIMEOUT: Duration = Duration::from_secs(10);

struct Subject {
    name: &'static str,
    binary: PathBuf,
    env: Vec<(String, String)>,
}

/// dev/local.env as the tests run it, logging at warn (as a production function logging only
/// problems), JSON format.
fn dev_env() -> Vec<(String, String)> {
    let mut vars = function::dev_env();
    vars.retain(|(k, _)| k != "AWS_LAMBDA_LOG_FORMAT");
    vars.push(("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()));
    vars.push(("AWS_LAMBDA_LOG_LEVEL".into(), "warn".into()));
    vars
}

fn start(subject: &Subject) -> (RuntimeApi, runtime_api::FunctionProcess, Instant) {
    let api = RuntimeApi::start().expect("runtime api");
    let env: Vec<(&str, &str)> = subject
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let started = Instant::now();
    let process = spawn_function(&subject.binary, &api, &env).expect("spawn");
    (api, process, started)
}

fn invoke_ok(api: &RuntimeApi, event: &[u8], subject: &Subject) {
    let invocation = api.invoke(event, TIMEOUT).expect("invocation");
    match &invocation.outcome {
        Outcome::Response(body)
            if subject.name == "echo"
                || serde_json::from_slice::<serde_json::Value>(body)
                    .is_ok_and(|v| v["status"] == "completed") => {}
        other => panic!("{}: unexpected outcome {}", subject.name, other.body_text()),
    }
}

/// Process start → first response, `n` times.
fn cold(subject: &Subject, event: &[u8], n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let (api, process, started) = start(subject);
            invoke_ok(&api, event, subject);
            let ms = started.elapsed().as_secs_f64() * 1e3;
            process.kill();
            ms
        })
        .collect()
}

/// Latency of `n` warm invocations (queued → answered, as a caller sees it), and peak RSS.
fn warm(subject: &Subject, event: &[u8], n: usize) -> (Vec<f64>, u64, u64) {
    let (api, process, _) = start(subject);
    for _ in 0..20 {
        invoke_ok(&api, event, subject);
    }
    let rss_after_warmup = peak_rss_kib(process.pid());
    let samples = (0..n)
        .map(|_| {
            let t = Instant::now();
            invoke_ok(&api, event, subject);
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    let rss_end = peak_rss_kib(process.pid());
    process.kill();
    (samples, rss_after_warmup, rss_end)
}

/// VmHWM (peak resident set) of a process, KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let i = ((s.len() as f64 - 1.0) * p).round() as usize;
    s[i.min(s.len() - 1)]
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let event = std::fs::read(root().join("events/direct.json")).expect("events/direct.json");
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --all-targets` runs this target as a test (without `--bench`): check the
        // harness on the debug `bootstrap` cargo built for it, measuring nothing.
        let subject = Subject {
            name: "bootstrap",
            binary: PathBuf::from(env!("CARGO_BIN_EXE_bootstrap")),
            env: dev_env(),
        };
        assert_eq!(cold(&subject, &event, 1).len(), 1);
        assert_eq!(warm(&subject, &event, 5).0.len(), 5);
        println!("bench harness checked on the debug bootstrap (1 cold start, 25 warm invocations); `make bench` measures");
        return;
    }
    // The binaries under test: the release builds, unless `BENCH_BOOTSTRAP` / `BENCH_ECHO`
    // name others (make bench passes the cargo-lambda builds it zips).
    let release = root().join("target/release");
    let binary = |var: &str, default: PathBuf| std::env::var_os(var).map_or(default, PathBuf::from);
    let subjects = [
        Subject {
            name: "bootstrap",
            binary: binary("BENCH_BOOTSTRAP", release.join("bootstrap")),
            env: dev_env(),
        },
        Subject {
            name: "echo",
            binary: binary("BENCH_ECHO", release.join("examples/echo")),
            env: Vec::new(),
        },
    ];
    for s in &subjects {
        assert!(
            s.binary.exists(),
            "{} not built: run `make bench` (builds release binaries first)",
            s.binary.display()
        );
    }
    let (n_cold, n_warm) = (arg("--cold", 20), arg("--warm", 1000));

    // Alternate the subjects so that drift in machine load hits both alike.
    let mut cold_ms: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..n_cold {
        for (i, s) in subjects.iter().enumerate() {
            cold_ms[i].extend(cold(s, &event, 1));
        }
    }
    let mut out = serde_json::Map::new();
    for (i, s) in subjects.iter().enumerate() {
        let (warm_us, rss_warm, rss_end) = warm(s, &event, n_warm);
        out.insert(
            s.name.to_owned(),
            serde_json::json!({
                "cold_ms_p50": percentile(&cold_ms[i], 0.5),
                "cold_ms_min": percentile(&cold_ms[i], 0.0),
                "warm_us_p50": percentile(&warm_us, 0.5),
                "warm_us_p99": percentile(&warm_us, 0.99),
                "peak_rss_kib_after_warmup": rss_warm,
                "peak_rss_kib_after_all": rss_end,
                "binary_bytes": std::fs::metadata(&s.binary).map(|m| m.len()).unwrap_or(0),
                "cold_runs": n_cold,
                "warm_runs": n_warm,
            }),
        );
    }
    println!("{}", serde_json::Value::Object(out));
}
