//! In-process benchmarks (criterion): one execution's hot path without Lambda —
//! verify (ES256) + resolve + run the sample workflow + build its usage event — the engine's
//! per-task overhead (`set`, `switch`), `for` over 1k/10k/100k items (per-item time shows
//! whether it is linear), and load+compile of the bundle. Run by `make bench`; figures land in
//! BENCHMARKS.md. One group: `cargo bench --bench runtime -- engine/for`.

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

/// A workflow of the given `do` list (YAML).
fn workflow(name: &str, tasks: &str) -> Workflow {
    let doc = format!(
        "document: {{ dsl: '1.0.0', namespace: bench, name: {name}, version: '1.0.0' }}\ndo:\n{tasks}"
    );
    Workflow::parse(Path::new("bench.yaml"), &doc).unwrap()
}

/// Per-task overhead of `set` and `switch`: workflows of 100 such tasks, reported per task
/// (criterion's throughput: tasks/s).
fn engine(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let info = ExecutionInfo {
        execution_id: "e".into(),
        claims: json!({}),
    };
    let sets: String = (0..100)
        .map(|i| format!("  - t{i}:\n      set:\n        n: '${{ .n + 1 }}'\n"))
        .collect();
    let sets = workflow("sets", &sets);
    // Each switch evaluates one `when` that does not match, then takes its default case.
    let switches: String = (0..100)
        .map(|i| {
            format!(
                "  - w{i}:\n      switch:\n        - negative:\n            when: '${{ .n < 0 }}'\n            then: exit\n        - otherwise:\n            then: continue\n"
            )
        })
        .collect();
    let switches = workflow("switches", &switches);
    assert_eq!(
        run_once(&rt, &switches, json!({"n": 0}), &info),
        json!({"n": 0}),
        "every switch takes its default case"
    );

    let mut group = c.benchmark_group("engine");
    group.throughput(criterion::Throughput::Elements(100));
    group.bench_function("set_task_x100", |b| {
        b.iter(|| run_once(&rt, &sets, json!({"n": 0}), &info))
    });
    group.bench_function("switch_task_x100", |b| {
        b.iter(|| run_once(&rt, &switches, json!({"n": 0}), &info))
    });
    group.finish();

    // `for` over N items, one `set` per item: the time per item should not grow with N.
    let mut group = c.benchmark_group("engine/for");
    group.sample_size(10);
    for items in [1_000u64, 10_000, 100_000] {
        let looped = workflow(
            "loop",
            &format!(
                "  - l:\n      for:\n        in: '${{ [range({items})] }}'\n      do:\n        - add:\n            set:\n              n: '${{ .n + $item }}'\n"
            ),
        );
        let sum = items * (items - 1) / 2;
        assert_eq!(
            run_once(&rt, &looped, json!({"n": 0}), &info),
            json!({"n": sum})
        );
        group.throughput(criterion::Throughput::Elements(items));
        group.bench_function(criterion::BenchmarkId::from_parameter(items), |b| {
            b.iter(|| run_once(&rt, &looped, json!({"n": 0}), &info))
        });
    }
    group.finish();
}

/// Load and compile the bundle (`Registry::load_dir` on workflows/: read, parse, validate,
/// compile every jq expression), as the function does at init.
fn load(c: &mut Criterion) {
    let dir = root().join("workflows");
    let count = Registry::load_dir(&dir).unwrap().len();
    assert!(count >= 1, "workflows/ bundles at least one workflow");
    c.bench_function("load/bundle", |b| {
        b.iter(|| Registry::load_dir(black_box(&dir)).unwrap())
    });
}

/// What the hostile-input defences cost on the hot path (issue 13): the hop of a run to the
/// engine thread and back (once per execution), the header check of an HTTP event (once per
/// event), and the stack guard of a recursive jq definition (once per call, per level).
fn defences(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = mozaiks_runtime::engine_thread::EngineThread::start(16 << 20).unwrap();
    c.bench_function("defences/engine_thread_round_trip", |b| {
        b.iter(|| {
            let until = tokio::time::Instant::now() + Duration::from_secs(10);
            rt.block_on(engine.run(async { black_box(1) }, until))
                .unwrap()
        })
    });
    let event = std::fs::read_to_string(root().join("events/apigw-v1.json")).unwrap();
    c.bench_function("defences/header_check_rest_v1_sample", |b| {
        b.iter(|| mozaiks_runtime::invoke::headers::check(black_box(&event)).unwrap())
    });
    let info = ExecutionInfo {
        execution_id: "e".into(),
        claims: json!({}),
    };
    // 100 levels of a recursive definition: 100 guard calls (a tail-recursive `until` pays
    // the same per step).
    let recursive = workflow(
        "recursive",
        "  - r:\n      set:\n        d: '${ def f: if . == 0 then 0 else (. - 1 | f) + 1 end; 100 | f }'\n",
    );
    let mut group = c.benchmark_group("defences");
    group.throughput(criterion::Throughput::Elements(100));
    group.bench_function("recursive_def_x100_levels", |b| {
        b.iter(|| run_once(&rt, &recursive, json!({}), &info))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = execution, engine, load, defences
}
criterion_main!(benches);
