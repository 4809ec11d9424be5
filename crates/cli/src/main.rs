//! `mozaiks-workflow`: the workflow author's tool. Checks, runs and translates Serverless
//! Workflow documents and MozaiksAI folders with the same engine the function runs, on a
//! workstation (no Lambda, no token, no usage bus). `mozaiks-workflow --help` is the manual.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mozaiks_workflow::{
    mozaiksai, EngineOptions, ExecutionInfo, LlmOptions, LoadError, OpenAiOptions, Outcome,
    Progress, Registry, RunResult, SecretSource, ToolHost, Workflow, DEFAULT_OPENAI_BASE_URL,
};
use serde_json::{json, Value};

const MANUAL: &str = "\
NAME
    mozaiks-workflow - check, run and translate MozaiksAI workflows on a workstation

SYNOPSIS
    mozaiks-workflow validate [--format text|json] PATH...
    mozaiks-workflow run FILE [--input JSON|@FILE] [--resume STATE] [--save-state STATE]
                              [--timeout SECONDS]
    mozaiks-workflow translate FOLDER
    mozaiks-workflow check DIR...
    mozaiks-workflow events [NAME]
    mozaiks-workflow --help | --version

DESCRIPTION
    The engine of mozaiks-runtime, without the Lambda function around it: the same loader,
    validation, jq expressions, task runners and agents, so that what passes here loads at
    the function's init, and what runs here runs there.

COMMANDS
    validate PATH...
        Loads every PATH as the function loads its bundle: a workflow file (YAML, or JSON
        for .json), a MozaiksAI folder (a directory holding orchestrator.yaml), or a
        directory of both (each file and folder on its own, then the directory as one
        bundle: versions and run: workflow links). Every error names the file and the JSON
        pointer of the place, as the function's init does. Declared secrets need no value.
        --format json prints one JSON object: {\"valid\": bool, \"checked\": [...],
        \"errors\": [{\"file\", \"pointer\", \"message\"}]}.

    run FILE
        Runs one workflow (file or MozaiksAI folder) on an input and prints the result
        object the function would answer: {\"status\": \"completed\"|\"faulted\"|\"waiting\",
        \"output\"|\"error\", \"metrics\", \"llm_calls\", \"events\"}. Agent tasks call the
        OpenAI-compatible endpoint of OPENAI_BASE_URL (with OPENAI_API_KEY, model
        MOZAIKS_DEFAULT_MODEL, default gpt-4o-mini); secrets come from MOZAIKS_SECRET_<NAME>.
        $execution.claims is {} (there is no launch token).
        --input JSON|@FILE   the input (default {}); @FILE reads it from a file, @- from stdin.
        --timeout SECONDS    the run's deadline (default 900, Lambda's longest).
        A run that waits for the user prints its output (what it has so far) and writes its
        state to --save-state (default: beside FILE, its extension replaced by .state.json;
        plain JSON: the function seals it, this tool does not). --resume STATE goes on from such a state, --input being the
        user's reply.
        While a run lasts longer than a second, a progress line on a terminal's stderr says
        how long and how many tasks.

    translate FOLDER
        Prints the Serverless Workflow document a MozaiksAI folder becomes (JSON), before
        validation; `validate FOLDER` checks it.

    check DIR...
        For every MozaiksAI folder in DIR (DIR itself, or any directory below it holding
        orchestrator.yaml), says whether it loads as written, and what becomes of each of
        its files: translated, ignored by design (UI layout, Python sources), rejected (with
        the reason), or not read (a file MozaiksAI folders do not hold). A folder that does
        not load shows the first error, naming file, key and why. Exit status 1 when any
        folder does not load (or none is found).

    events [NAME]
        Prints the JSON Schemas of the usage events the function emits (a JSON object by
        name), or the one called NAME (usage-execution.v1, usage-llm.v1).

EXIT STATUS
    0   valid; completed or waiting
    1   invalid (validate); faulted (run)
    2   the command line or a file could not be used (unknown option, unreadable input,
        a workflow that does not load)

EXAMPLES
    mozaiks-workflow validate workflows/
    mozaiks-workflow validate --format json workflows/ > report.json
    mozaiks-workflow run workflows/hello.yaml --input '{\"name\": \"Ada\"}'
    OPENAI_BASE_URL=http://127.0.0.1:8000/v1 mozaiks-workflow run workflows/CustomerIntake \\
        --input '{\"message\": \"my invoice is wrong\"}'
    mozaiks-workflow run workflows/CustomerIntake --resume workflows/CustomerIntake.state.json \\
        --input '{\"message\": \"order 42\"}'
";

/// The JSON Schemas of the usage events (the function's `schemas/`).
const SCHEMAS: [(&str, &str); 2] = [
    (
        "usage-execution.v1",
        include_str!("../../../schemas/usage-execution.v1.json"),
    ),
    (
        "usage-llm.v1",
        include_str!("../../../schemas/usage-llm.v1.json"),
    ),
];

/// A failure of the command itself (exit status 2).
struct Usage(String);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => {
            print!("{MANUAL}");
            Ok(ExitCode::SUCCESS)
        }
        Some("-V" | "--version") => {
            println!("mozaiks-workflow {}", env!("CARGO_PKG_VERSION"));
            Ok(ExitCode::SUCCESS)
        }
        Some("validate") => validate(&args[1..]),
        Some("run") => run(&args[1..]),
        Some("translate") => translate(&args[1..]),
        Some("check") => check(&args[1..]),
        Some("events") => events(&args[1..]),
        Some(other) => Err(Usage(format!(
            "unknown command `{other}`: the commands are validate, run, translate, check and events \
             (mozaiks-workflow --help)"
        ))),
    };
    match result {
        Ok(code) => code,
        Err(Usage(message)) => {
            eprintln!("mozaiks-workflow: {message}");
            ExitCode::from(2)
        }
    }
}

/// `--name value` pairs, in order.
type Options = Vec<(String, String)>;

/// Splits `args` into options (`--name value`, `--name=value`) and positional arguments.
fn parse_options(args: &[String], known: &[&str]) -> Result<(Options, Vec<String>), Usage> {
    let mut options = Vec::new();
    let mut positional = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if let Some(name) = arg.strip_prefix("--") {
            let (name, value) = match name.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => {
                    let value = rest.next().ok_or_else(|| {
                        Usage(format!("--{name} needs a value (mozaiks-workflow --help)"))
                    })?;
                    (name.to_owned(), value.clone())
                }
            };
            if !known.contains(&name.as_str()) {
                return Err(Usage(format!(
                    "unknown option --{name}; this command takes {} (mozaiks-workflow --help)",
                    known
                        .iter()
                        .map(|k| format!("--{k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            options.push((name, value));
        } else {
            positional.push(arg.clone());
        }
    }
    Ok((options, positional))
}

fn option<'a>(options: &'a [(String, String)], name: &str) -> Option<&'a str> {
    options
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn error_json(e: &LoadError) -> Value {
    json!({ "file": e.file().display().to_string(), "pointer": e.pointer(), "message": e.message() })
}

fn validate(args: &[String]) -> Result<ExitCode, Usage> {
    let (options, paths) = parse_options(args, &["format"])?;
    let format = option(&options, "format").unwrap_or("text");
    if format != "text" && format != "json" {
        return Err(Usage(format!("--format is text or json, not `{format}`")));
    }
    if paths.is_empty() {
        return Err(Usage(
            "validate needs at least one PATH (a workflow file, a MozaiksAI folder or a \
             directory of them)"
                .into(),
        ));
    }
    let engine = EngineOptions {
        secrets: SecretSource::Placeholders,
        tool_host: tool_host(),
        ..EngineOptions::default()
    };
    let mut checked = Vec::new();
    let mut errors: Vec<LoadError> = Vec::new();
    for path in &paths {
        let path = Path::new(path);
        if !path.exists() {
            return Err(Usage(format!(
                "{}: no such file or directory",
                path.display()
            )));
        }
        if path.is_dir() && !mozaiksai::is_folder(path) {
            let (loaded, found) = Registry::check_dir(path, &engine);
            checked.extend(loaded.iter().map(|id| id.to_string()));
            errors.extend(found);
        } else {
            match Workflow::load_path(path, &engine) {
                Ok(workflow) => checked.push(workflow.id().to_string()),
                Err(e) => errors.push(e),
            }
        }
    }
    if format == "json" {
        let report = json!({
            "valid": errors.is_empty(),
            "checked": checked,
            "errors": errors.iter().map(error_json).collect::<Vec<_>>(),
        });
        println!("{report:#}");
    } else {
        for id in &checked {
            println!("ok      {id}");
        }
        for e in &errors {
            println!("error   {e}");
        }
        println!(
            "{} workflow(s) valid, {} error(s)",
            checked.len(),
            errors.len()
        );
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn read_json_arg(text: &str, what: &str) -> Result<Value, Usage> {
    let source = match text.strip_prefix('@') {
        Some("-") => {
            let mut buffer = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut buffer)
                .map_err(|e| Usage(format!("{what}: cannot read stdin: {e}")))?;
            buffer
        }
        Some(file) => std::fs::read_to_string(file)
            .map_err(|e| Usage(format!("{what}: cannot read {file}: {e}")))?,
        None => text.to_owned(),
    };
    serde_json::from_str(&source).map_err(|e| Usage(format!("{what} is not JSON: {e}")))
}

/// The engine's options from the environment, as the function maps them.
fn run_options() -> EngineOptions {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let base_url = get("OPENAI_BASE_URL");
    let api_key = get("OPENAI_API_KEY");
    let openai = (base_url.is_some() || api_key.is_some()).then(|| OpenAiOptions {
        base_url: base_url.unwrap_or_else(|| DEFAULT_OPENAI_BASE_URL.to_owned()),
        api_key,
    });
    EngineOptions {
        llm: LlmOptions {
            openai,
            default_model: Some(
                get("MOZAIKS_DEFAULT_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
            ),
            ..LlmOptions::default()
        },
        tool_host: tool_host(),
        ..EngineOptions::default()
    }
}

/// `MOZAIKS_TOOL_HOST_URL` (and `MOZAIKS_TOOL_HOST_AUTH`): the MozaiksAI tool host that
/// folders' Python tools are bound to.
fn tool_host() -> Option<ToolHost> {
    let url = std::env::var("MOZAIKS_TOOL_HOST_URL")
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())?;
    let aws_iam = std::env::var("MOZAIKS_TOOL_HOST_AUTH").is_ok_and(|v| v.trim() == "aws_iam");
    Some(ToolHost { url, aws_iam })
}

fn run(args: &[String]) -> Result<ExitCode, Usage> {
    let (options, positional) = parse_options(args, &["input", "resume", "save-state", "timeout"])?;
    let [file] = positional.as_slice() else {
        return Err(Usage(
            "run takes one FILE (a workflow file or a MozaiksAI folder)".into(),
        ));
    };
    let file = PathBuf::from(file);
    let input = match option(&options, "input") {
        Some(text) => read_json_arg(text, "--input")?,
        None => json!({}),
    };
    let timeout = match option(&options, "timeout") {
        None => Duration::from_secs(900),
        Some(text) => text
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| Usage(format!("--timeout is a number of seconds, not `{text}`")))?,
    };
    let resume = option(&options, "resume")
        .map(|path| read_json_arg(&format!("@{path}"), "--resume"))
        .transpose()?;
    let save_state = option(&options, "save-state")
        .map(PathBuf::from)
        .unwrap_or_else(|| file.with_extension("state.json"));
    let workflow = Workflow::load_path(&file, &run_options()).map_err(|e| Usage(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Usage(format!("cannot start an async runtime: {e}")))?;
    let exec = ExecutionInfo {
        execution_id: format!("local-{}", std::process::id()),
        claims: json!({}),
    };
    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    let result: RunResult = runtime
        .block_on(async {
            let deadline = tokio::time::Instant::now() + timeout;
            let run = async {
                match resume {
                    None => Ok(workflow
                        .run_observed(input, &exec, deadline, progress.clone())
                        .await),
                    Some(state) => {
                        workflow
                            .resume_observed(state, input, &exec, deadline, progress.clone())
                            .await
                    }
                }
            };
            tokio::pin!(run);
            let show = std::io::stderr().is_terminal();
            let mut ticks = tokio::time::interval(Duration::from_secs(1));
            ticks.tick().await;
            loop {
                tokio::select! {
                    result = &mut run => {
                        if show && started.elapsed() >= Duration::from_secs(1) {
                            eprint!("\r\x1b[K");
                        }
                        return result;
                    }
                    _ = ticks.tick(), if show => {
                        let snapshot = progress.snapshot();
                        eprint!(
                            "\r\x1b[Krunning {:.0} s, {} task(s), {} model call(s), in {}",
                            started.elapsed().as_secs_f64(),
                            snapshot.metrics.tasks_executed,
                            snapshot.llm_calls.len(),
                            snapshot.current_task
                        );
                        let _ = std::io::stderr().flush();
                    }
                }
            }
        })
        .map_err(|e| {
            Usage(format!(
                "--resume: the state does not fit this workflow: {e}"
            ))
        })?;
    let llm_calls: Vec<Value> = result
        .llm_calls
        .iter()
        .map(|c| {
            json!({ "agent": c.agent, "provider": c.provider, "model": c.model,
                "prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens,
                "total_tokens": c.total_tokens })
        })
        .collect();
    let mut answer = json!({
        "workflow": workflow.id(),
        "metrics": result.metrics,
        "llm_calls": llm_calls,
        "events": result.events,
        "duration_ms": started.elapsed().as_millis() as u64,
    });
    let code = match result.outcome {
        Outcome::Completed(output) => {
            answer["status"] = "completed".into();
            answer["output"] = output;
            ExitCode::SUCCESS
        }
        Outcome::Faulted(error) => {
            answer["status"] = "faulted".into();
            answer["error"] = serde_json::to_value(&error).unwrap_or(Value::Null);
            ExitCode::from(1)
        }
        Outcome::Waiting { output, state } => {
            let text = serde_json::to_string_pretty(&state).unwrap_or_default();
            std::fs::write(&save_state, text).map_err(|e| {
                Usage(format!(
                    "cannot write the state to {}: {e}",
                    save_state.display()
                ))
            })?;
            answer["status"] = "waiting".into();
            answer["output"] = output;
            answer["state_file"] = save_state.display().to_string().into();
            eprintln!(
                "waiting for the user: reply with `mozaiks-workflow run {} --resume {} --input '{{\"message\": \"…\"}}'`",
                file.display(),
                save_state.display()
            );
            ExitCode::SUCCESS
        }
    };
    println!("{answer:#}");
    Ok(code)
}

fn translate(args: &[String]) -> Result<ExitCode, Usage> {
    let (_, positional) = parse_options(args, &[])?;
    let [folder] = positional.as_slice() else {
        return Err(Usage("translate takes one FOLDER".into()));
    };
    let folder = Path::new(folder);
    if !mozaiksai::is_folder(folder) {
        return Err(Usage(format!(
            "{}: not a MozaiksAI folder (it holds no orchestrator.yaml)",
            folder.display()
        )));
    }
    match mozaiksai::translate(folder) {
        Ok(document) => {
            println!("{document:#}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("error   {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// The MozaiksAI folders at or below `dir`, in path order (symbolic links not followed).
fn folders_under(dir: &Path, found: &mut Vec<PathBuf>) {
    if mozaiksai::is_folder(dir) {
        found.push(dir.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    for sub in dirs {
        folders_under(&sub, found);
    }
}

fn check(args: &[String]) -> Result<ExitCode, Usage> {
    let (_, dirs) = parse_options(args, &[])?;
    if dirs.is_empty() {
        return Err(Usage("check needs at least one DIR".into()));
    }
    let mut folders = Vec::new();
    for dir in &dirs {
        let dir = Path::new(dir);
        if !dir.is_dir() {
            return Err(Usage(format!("{}: not a directory", dir.display())));
        }
        folders_under(dir, &mut folders);
    }
    let engine = EngineOptions {
        secrets: SecretSource::Placeholders,
        tool_host: tool_host(),
        ..EngineOptions::default()
    };
    let mut rejected = 0;
    for folder in &folders {
        match Workflow::load_path(folder, &engine) {
            Ok(workflow) => println!("{}: loads as {}", folder.display(), workflow.id()),
            Err(e) => {
                rejected += 1;
                println!("{}: rejected: {e}", folder.display());
            }
        }
        for (name, fate) in mozaiksai::inventory(folder) {
            match fate {
                Some((fate, what)) => println!("    {:<18} {name}: {what}", fate.as_str()),
                None => println!("    {:<18} {name}", "not read"),
            }
        }
    }
    println!(
        "{} folder(s), {} load, {} rejected",
        folders.len(),
        folders.len() - rejected,
        rejected
    );
    Ok(if rejected == 0 && !folders.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn events(args: &[String]) -> Result<ExitCode, Usage> {
    let (_, positional) = parse_options(args, &[])?;
    let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    match positional.as_slice() {
        [] => {
            let all: serde_json::Map<String, Value> = SCHEMAS
                .iter()
                .map(|(name, text)| ((*name).to_owned(), parse(text)))
                .collect();
            println!("{:#}", Value::Object(all));
        }
        [name] => {
            let Some((_, text)) = SCHEMAS.iter().find(|(n, _)| n == name) else {
                return Err(Usage(format!(
                    "no event schema `{name}`; there are {}",
                    SCHEMAS
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            println!("{:#}", parse(text));
        }
        _ => return Err(Usage("events takes at most one NAME".into())),
    }
    Ok(ExitCode::SUCCESS)
}
