//! Rough engine figures, without a benchmark harness: load+compile time of the bundle,
//! per-task overhead of `set` and `switch`, and `for` over 100k and 200k items (linearity).
//!
//! ```sh
//! cargo run --release --example engine_figures
//! ```

use mozaiks_runtime::workflow::{ExecutionInfo, Outcome, Registry, Workflow};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const HEAD: &str = "document: { dsl: '1.0.3', namespace: bench, name: b, version: '1.0.0' }\n";

fn parse(body: &str) -> Result<Workflow, String> {
    Workflow::parse(Path::new("bench.yaml"), &format!("{HEAD}{body}")).map_err(|e| e.to_string())
}

async fn time_run(workflow: &Workflow, input: Value, runs: u32) -> Result<Duration, String> {
    let info = ExecutionInfo {
        execution_id: "bench".into(),
        claims: json!({}),
    };
    let started = Instant::now();
    for _ in 0..runs {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        let result = workflow.run(input.clone(), &info, deadline).await;
        if let Outcome::Faulted(e) = result.outcome {
            return Err(e.to_string());
        }
    }
    Ok(started.elapsed() / runs)
}

fn per_task(total: Duration, tasks: u32) -> String {
    format!(
        "{:.2} µs/task",
        total.as_secs_f64() * 1e6 / f64::from(tasks)
    )
}

async fn figures() -> Result<(), String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let started = Instant::now();
    let registry = Registry::load_dir(&dir).map_err(|e| e.to_string())?;
    println!(
        "load+compile workflows/ ({} workflow(s)): {:?}",
        registry.len(),
        started.elapsed()
    );

    const TASKS: u32 = 1000;
    let sets: String = (0..TASKS)
        .map(|i| format!("  - s{i}: {{ set: {{ n: '${{ .n + 1 }}' }} }}\n"))
        .collect();
    let started = Instant::now();
    let set_workflow = parse(&format!("do:\n{sets}"))?;
    println!("load+compile {TASKS} set tasks: {:?}", started.elapsed());
    let set = time_run(&set_workflow, json!({ "n": 0 }), 20).await?;
    println!("set: {} ({TASKS} tasks in {set:?})", per_task(set, TASKS));

    let switches: String = (0..TASKS)
        .map(|i| format!("  - w{i}: {{ switch: [ {{ big: {{ when: '.n > 10', then: continue }} }}, {{ other: {{ then: continue }} }} ] }}\n"))
        .collect();
    let switch_workflow = parse(&format!("do:\n{switches}"))?;
    let switch = time_run(&switch_workflow, json!({ "n": 0 }), 20).await?;
    println!(
        "switch (2 cases): {} ({TASKS} tasks in {switch:?})",
        per_task(switch, TASKS)
    );

    for items in [100_000u32, 200_000] {
        let for_workflow = parse(&format!(
            "do:\n  - l:\n      for: {{ in: '[range({items})]' }}\n      do: [ {{ s: {{ set: {{ n: '${{ .n + $item }}' }} }} }} ]\n"
        ))?;
        let elapsed = time_run(&for_workflow, json!({ "n": 0 }), 3).await?;
        println!(
            "for over {items} items (one set each): {elapsed:?} ({})",
            per_task(elapsed, items)
        );
    }
    Ok(())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(figures()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
