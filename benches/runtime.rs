//! In-process benchmarks (criterion): one execution's hot path without Lambda —
//! verify (ES256) + resolve + run the sample workflow + build its usage event — and the
//! engine's per-task overhead, and the init cost of loading the bundle. Run by `make bench`;
//! figures land in BENCHMARKS.md.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{EncodingKey, Header};
use mozaiks_runtime::auth::{AuthConfig, Verifier};
use mozaiks_runtime::usage::events::{HttpTotals, LlmTotals};
use mozaiks_runtime::usage::ExecutionUsage;
use mozaiks_runtime::workflow::{ExecutionInfo, Outcome, Registry, Workflow};
use serde_json::{json, value::RawValue, Value};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn verifier() -> Verifier {
    Verifier::new(AuthConfig {
        issuer: "https://dev.mozaiks.local".into(),
        audience: "mozaiks-runtime".into(),
        jwks_json: Some(std::fs::read_to_string(root().join("dev/dev-jwks.json")).unwrap()),
        hs256_secret: None,
        required_scope: "workflow:execute".into(),
        token_use: Some("execution".into()),
        leeway_seconds: 30,
    })
    .unwrap()
}

fn es256_token() -> String {
    let pem = std::fs::read(root().join("dev/dev-es256-private.pem")).unwrap();
    let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("mozaiks-dev-es256".into());
    let claims = json!({
        "iss": "https://dev.mozaiks.local", "aud": "mozaiks-runtime", "sub": "u", "app_id": "a",
        "user_id": "u", "chat_id": "c", "workflow_id": "hello", "mozaiks_token_use": "execution",
        "scope": "workflow:execute", "roles": ["member"], "plan": "pro",
        "iat": now(), "exp": now() + 3600,
    });
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_pem(&pem).unwrap()).unwrap()
}

fn run_once(
    rt: &tokio::runtime::Runtime,
    workflow: &Workflow,
    input: Value,
    info: &ExecutionInfo,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    rt.block_on(async {
        match workflow.run(input, info, deadline).await.outcome {
            Outcome::Completed(v) => v,
            Outcome::Faulted(e) => panic!("faulted: {e:?}"),
            Outcome::Waiting { output, .. } => panic!("waiting with {output}"),
        }
    })
}

fn execution(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let verifier = verifier();
    let registry = Registry::load_dir(&root().join("workflows")).unwrap();
    let token = es256_token();
    let input = json!({ "name": "Ada" });

    c.bench_function("execution/verify_es256+resolve+run+usage_event", |b| {
        b.iter(|| {
            let context = verifier.verify(black_box(&token), now()).unwrap();
            let workflow = registry
                .resolve(context.workflow_id(), context.workflow_version())
                .unwrap();
            let info = ExecutionInfo {
                execution_id: "0193-bench".into(),
                claims: context.claims().clone(),
            };
            let started_at = SystemTime::now();
            let output = run_once(&rt, &workflow, input.clone(), &info);
            let raw: &RawValue = serde_json::from_str(context.raw_json()).unwrap();
            let usage = ExecutionUsage {
                execution_id: "0193-bench",
                request_id: "req",
                workflow: workflow.id(),
                status: "completed",
                started_at,
                ended_at: SystemTime::now(),
                tasks_executed: 2,
                llm: LlmTotals::default(),
                http: HttpTotals::default(),
                input_bytes: 14,
                output_bytes: mozaiks_runtime::execution::serialized_len(&output),
                context: raw,
            };
            black_box(usage.to_event(1).unwrap())
        })
    });
    c.bench_function("auth/verify_es256", |b| {
        b.iter(|| verifier.verify(black_box(&token), now()).unwrap())
    });
}

/// Init work of the bundle: load, validate and compile every workflow in `workflows/` (what a
/// cold start pays before the first invocation; most of it is compiling jq expressions).
fn init(c: &mut Criterion) {
    let dir = root().join("workflows");
    c.bench_function("init/load_bundle", |b| {
        b.iter(|| Registry::load_dir(black_box(&dir)).unwrap())
    });
}

/// Per-task overhead of `set`: a workflow of 100 `set` tasks, reported per task.
fn engine(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut doc = String::from(
        "document: { dsl: '1.0.0', namespace: bench, name: sets, version: '1.0.0' }\ndo:\n",
    );
    for i in 0..100 {
        doc.push_str(&format!(
            "  - t{i}:\n      set:\n        n: '${{ .n + 1 }}'\n"
        ));
    }
    let workflow = Workflow::parse(Path::new("sets.yaml"), &doc).unwrap();
    let info = ExecutionInfo {
        execution_id: "e".into(),
        claims: json!({}),
    };
    let mut group = c.benchmark_group("engine");
    group.throughput(criterion::Throughput::Elements(100));
    group.bench_function("set_task_x100", |b| {
        b.iter(|| run_once(&rt, &workflow, json!({"n": 0}), &info))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = execution, init, engine
}
criterion_main!(benches);
