//! The layers the workspace keeps (issue 20): the engine crate knows nothing of Lambda or JWT,
//! and nothing links the AWS SDK's client — not by convention but by its dependency graph, read
//! from `cargo metadata`.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

/// Crates the engine must never depend on, directly or through another crate.
const FORBIDDEN: [&str; 5] = [
    "lambda_runtime",
    "lambda_http",
    "aws_lambda_events",
    "jsonwebtoken",
    "aws-config",
];

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // For this machine's platform: a build downloads only the packages of its own platform,
    // and without the filter `--offline` needs every platform's (wasm's, Windows'…).
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("rustc -vV runs");
    let version = String::from_utf8_lossy(&version.stdout);
    let host = version
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .expect("rustc -vV names the host");
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", host])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

/// Every package `root` depends on (normal dependencies, transitively), by name.
fn normal_closure(metadata: &Value, root: &str) -> BTreeSet<String> {
    let packages: HashMap<&str, &str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: HashMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let start = packages
        .iter()
        .find(|(_, name)| **name == root)
        .map(|(id, _)| *id)
        .unwrap_or_else(|| panic!("{root} is a workspace package"));
    let mut seen = BTreeSet::new();
    let mut todo = vec![start];
    while let Some(id) = todo.pop() {
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null());
            let dep_id = dep["pkg"].as_str().unwrap();
            if normal && seen.insert(packages[dep_id].to_owned()) {
                todo.push(dep_id);
            }
        }
    }
    seen
}

#[test]
fn the_engine_depends_on_no_lambda_sdk_or_jwt_crate() {
    let metadata = metadata();
    let engine = normal_closure(&metadata, "mozaiks-workflow");
    for name in FORBIDDEN {
        assert!(!engine.contains(name), "mozaiks-workflow depends on {name}");
    }
    assert!(
        !engine.iter().any(|name| name.starts_with("aws-sdk-")),
        "mozaiks-workflow depends on an AWS SDK client: {engine:?}"
    );
    // The check can fail: the function does depend on them.
    let function = normal_closure(&metadata, "mozaiks-runtime");
    for name in ["lambda_runtime", "jsonwebtoken"] {
        assert!(function.contains(name), "{name}");
    }
    // No AWS SDK client anywhere: EventBridge and Bedrock are a few signed JSON calls over the
    // engine's HTTP client (src/usage/eventbridge.rs, crates/workflow/src/aws.rs).
    assert!(
        !function.iter().any(|name| name.starts_with("aws-sdk-")
            || name == "aws-smithy-runtime"
            || name == "aws-runtime"),
        "the function depends on the AWS SDK's client: {function:?}"
    );
    // The CLI is built on the engine alone.
    let cli = normal_closure(&metadata, "mozaiks-workflow-cli");
    assert!(cli.contains("mozaiks-workflow"));
    for name in FORBIDDEN {
        assert!(!cli.contains(name), "the CLI depends on {name}");
    }
}

/// The packages a normal build of `package` compiles (`cargo tree`: features as that build
/// resolves them, where `cargo metadata` unifies them with every dev-dependency's).
fn built_for(package: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--locked",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}", "-p", package])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn one_tls_and_crypto_stack() {
    let function = built_for("mozaiks-runtime");
    for name in ["openssl", "openssl-sys", "native-tls", "ring", "h2"] {
        assert!(!function.contains(name), "the function links {name}");
    }
    assert!(function.contains("rustls") && function.contains("aws-lc-rs"));
}
