//! Black-box tests of `mozaiks-workflow`: the built binary, its exit codes, messages and JSON,
//! on the bundled workflows, workflows written here, and a scripted OpenAI-compatible server on
//! loopback for the agent runs.

#[path = "../../workflow/src/tests/openai_standin.rs"]
mod openai_standin;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use openai_standin::{text, usage, OpenAiStandIn};
use serde_json::{json, Value};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cli(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mozaiks-workflow"));
    command
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::null())
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("the CLI runs")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("an exit code")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json_out(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(output), stderr(output)))
}

/// A fresh directory under the target directory with `files` written in it.
fn scratch(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

const BROKEN: &str = "document: { dsl: '1.0.3', namespace: cli, name: broken, version: '1.0.0' }
do:
  - greet:
      set: { x: '${ $foo }' }
";

#[test]
fn help_reads_like_a_manual() {
    for args in [&["--help"][..], &[]] {
        let out = cli(args, &[]);
        assert_eq!(code(&out), 0);
        let text = stdout(&out);
        for section in ["NAME", "SYNOPSIS", "COMMANDS", "EXIT STATUS", "EXAMPLES"] {
            assert!(text.contains(section), "{section}");
        }
    }
    let out = cli(&["frobnicate"], &[]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("unknown command `frobnicate`"));
    let out = cli(&["validate", "--colour", "red", "workflows"], &[]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("unknown option --colour"));
}

#[test]
fn validate_accepts_the_bundle_and_names_file_and_pointer_of_each_error() {
    let out = cli(&["validate", "workflows/"], &[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("ok      mozaiks/hello@1.0.0"));
    assert!(stdout(&out).contains("ok      mozaiks/CustomerIntake@1.0.0"));

    let dir = scratch(
        "validate",
        &[
            ("broken.yaml", BROKEN),
            ("also-broken.json", "{ \"document\": 3 }"),
            (
                "fine.yaml",
                "document: { dsl: '1.0.3', namespace: cli, name: fine, version: '1.0.0' }\nuse: { secrets: [api] }\ndo:\n  - a: { set: { k: '${ $secrets.api }' } }\n",
            ),
        ],
    );
    let out = cli(&["validate", dir.to_str().unwrap()], &[]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    assert!(
        text.contains("broken.yaml: /do/0/greet/set/x: jq: undefined variable `$foo`"),
        "{text}"
    );
    assert!(text.contains("also-broken.json"), "{text}");
    assert!(text.contains("ok      cli/fine@1.0.0"), "{text}");
    assert!(text.contains("1 workflow(s) valid, 2 error(s)"), "{text}");

    let out = cli(
        &["validate", "--format", "json", dir.to_str().unwrap()],
        &[],
    );
    assert_eq!(code(&out), 1);
    let report = json_out(&out);
    assert_eq!(report["valid"], false);
    assert_eq!(report["checked"], json!(["cli/fine@1.0.0"]));
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    let broken = errors
        .iter()
        .find(|e| e["file"].as_str().unwrap().ends_with("broken.yaml"))
        .unwrap();
    assert_eq!(broken["pointer"], "/do/0/greet/set/x");

    let out = cli(&["validate", "no/such/path"], &[]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no such file or directory"));
}

#[test]
fn run_prints_the_result_and_its_exit_code_says_how_it_ended() {
    let out = cli(
        &[
            "run",
            "workflows/hello.yaml",
            "--input",
            r#"{"name": "Ada"}"#,
        ],
        &[],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let result = json_out(&out);
    assert_eq!(result["status"], "completed");
    assert_eq!(result["output"]["greeting"], "Hello, Ada!");
    assert_eq!(result["metrics"]["tasks_executed"], 2);

    let dir = scratch(
        "run",
        &[
            ("input.json", r#"{"n": 3}"#),
            (
                "raise.yaml",
                "document: { dsl: '1.0.3', namespace: cli, name: raise, version: '1.0.0' }\ndo:\n  - boom:\n      raise:\n        error: { type: https://example.com/e, status: 409, title: Conflict }\n",
            ),
        ],
    );
    let out = cli(&["run", dir.join("raise.yaml").to_str().unwrap()], &[]);
    assert_eq!(code(&out), 1);
    let result = json_out(&out);
    assert_eq!(result["status"], "faulted");
    assert_eq!(result["error"]["status"], 409);
    assert_eq!(result["error"]["instance"], "/do/0/boom");

    // @file input; a bad input and a workflow that does not load are command errors.
    let input = format!("@{}", dir.join("input.json").display());
    let out = cli(&["run", "workflows/hello.yaml", "--input", &input], &[]);
    assert_eq!(code(&out), 0);
    let out = cli(&["run", "workflows/hello.yaml", "--input", "{oops"], &[]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--input is not JSON"));
    let broken = scratch("run-broken", &[("broken.yaml", BROKEN)]);
    let out = cli(&["run", broken.join("broken.yaml").to_str().unwrap()], &[]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("undefined variable `$foo`"));
}

#[test]
fn a_conversation_waits_saves_its_state_and_resumes_with_the_reply() {
    let standin = OpenAiStandIn::start(vec![
        text("Which order?", usage(10, 3, 0)),
        text("Order 42 shipped.", usage(20, 4, 0)),
    ]);
    let dir = scratch(
        "desk",
        &[(
            "desk.yaml",
            "document: { dsl: '1.0.3', namespace: cli, name: desk, version: '1.0.0' }
do:
  - chat:
      call: agents
      with:
        agents:
          - { name: Desk, instructions: You help with orders., model: { provider: openai, name: standin } }
        handoffs:
          - { from: Desk, after_work: user }
        initial_message: '${ .message }'
        max_turns: 2
",
        )],
    );
    let workflow = dir.join("desk.yaml");
    let state = dir.join("desk.state.json");
    let base_url = standin.base_url();
    let env = [("OPENAI_BASE_URL", base_url.as_str())];
    let out = cli(
        &[
            "run",
            workflow.to_str().unwrap(),
            "--input",
            r#"{"message": "where is my order?"}"#,
        ],
        &env,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let result = json_out(&out);
    assert_eq!(result["status"], "waiting", "{result}");
    assert_eq!(result["state_file"], state.display().to_string());
    assert_eq!(result["llm_calls"][0]["model"], "standin");
    assert!(stderr(&out).contains("--resume"));
    assert!(state.is_file());

    let out = cli(
        &[
            "run",
            workflow.to_str().unwrap(),
            "--resume",
            state.to_str().unwrap(),
            "--input",
            r#"{"message": "order 42"}"#,
        ],
        &env,
    );
    let result = json_out(&out);
    let messages = result["output"]["messages"].as_array().unwrap();
    assert_eq!(
        messages.last().unwrap()["content"],
        "Order 42 shipped.",
        "{result}"
    );
    // The model saw the user's reply.
    let requests = standin.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[1].body.to_string().contains("order 42"));
    // A state of another workflow is refused.
    let out = cli(
        &[
            "run",
            "workflows/hello.yaml",
            "--resume",
            state.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("does not fit"));
}

#[test]
fn translate_prints_the_document_a_folder_becomes_and_events_its_schemas() {
    let out = cli(&["translate", "workflows/CustomerIntake"], &[]);
    assert_eq!(code(&out), 0);
    let document = json_out(&out);
    assert_eq!(document["document"]["name"], "CustomerIntake");
    assert_eq!(document["do"][0]["conversation"]["call"], "agents");
    let out = cli(&["translate", "workflows"], &[]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("not a MozaiksAI folder"));

    let out = cli(&["events"], &[]);
    let schemas = json_out(&out);
    for name in ["usage-execution.v1", "usage-llm.v1"] {
        let on_disk: Value = serde_json::from_slice(
            &std::fs::read(repo().join(format!("schemas/{name}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(schemas[name], on_disk, "{name}");
    }
    let out = cli(&["events", "usage-llm.v1"], &[]);
    assert_eq!(
        json_out(&out)["$schema"],
        schemas["usage-llm.v1"]["$schema"]
    );
    assert_eq!(code(&cli(&["events", "nope"], &[])), 2);
}

#[test]
fn check_reports_every_folder_under_a_directory_and_the_fate_of_each_file() {
    let good = "agents:\n  - name: Greeter\n    system_message: Say hello.\n";
    let dir = scratch(
        "check-workflows",
        &[
            (
                "apps/Hello/orchestrator.yaml",
                "workflow_name: Hello\ninitial_agent: Greeter\nmax_turns: 2\n",
            ),
            ("apps/Hello/agents.yaml", good),
            ("apps/Hello/ui_config.yaml", "layout: {}\n"),
            ("apps/Hello/tools/__init__.py", ""),
            ("apps/Hello/notes.txt", "mine\n"),
            (
                "apps/Hooked/orchestrator.yaml",
                "workflow_name: Hooked\ninitial_agent: Greeter\n",
            ),
            ("apps/Hooked/agents.yaml", good),
            (
                "apps/Hooked/hooks.yaml",
                "hooks:\n  - hook_type: update_agent_state\n    function: f\n",
            ),
            ("not-a-folder/readme.txt", "x\n"),
        ],
    );
    let output = cli(&["check", dir.to_str().unwrap()], &[]);
    let text = stdout(&output);
    assert_eq!(code(&output), 1, "{text}{}", stderr(&output));
    assert!(
        text.contains("apps/Hello: loads as mozaiks/Hello@1.0.0"),
        "{text}"
    );
    assert!(
        text.contains("translated         agents.yaml: the agents"),
        "{text}"
    );
    assert!(text.contains("ignored by design  ui_config.yaml"), "{text}");
    assert!(
        text.contains("ignored by design  tools: the Python sources"),
        "{text}"
    );
    assert!(text.contains("not read           notes.txt"), "{text}");
    assert!(text.contains("apps/Hooked: rejected: "), "{text}");
    assert!(
        text.contains("hooks.yaml: /hooks: MozaiksAI hooks are Python"),
        "{text}"
    );
    assert!(text.contains("rejected           hooks.yaml"), "{text}");
    assert!(
        text.ends_with("2 folder(s), 1 load, 1 rejected\n"),
        "{text}"
    );

    // The bundled folder loads: exit 0.
    let bundled = cli(&["check", "workflows"], &[]);
    assert_eq!(code(&bundled), 0, "{}", stdout(&bundled));
    assert!(stdout(&bundled).contains("1 folder(s), 1 load, 0 rejected"));
    // No folder at all is not a success.
    let empty = scratch("check-empty", &[("x.txt", "")]);
    assert_eq!(code(&cli(&["check", empty.to_str().unwrap()], &[])), 1);
}

#[test]
fn the_readme_lists_the_fate_of_every_entry_of_a_folder_as_the_importer_has_it() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let rows: Vec<(String, String)> = readme
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split(" | ").collect();
            let name = cells.first()?.strip_prefix("| `")?.strip_suffix('`')?;
            let fate = *cells.get(1)?;
            ["translated", "ignored by design", "rejected"]
                .contains(&fate)
                .then(|| (name.to_owned(), fate.to_owned()))
        })
        .collect();
    let table: Vec<(String, String)> = mozaiks_workflow::mozaiksai::ENTRIES
        .iter()
        .map(|(name, fate, _)| ((*name).to_owned(), fate.as_str().to_owned()))
        .collect();
    assert_eq!(
        rows, table,
        "README.md's MozaiksAI table and mozaiksai::ENTRIES differ"
    );
}
