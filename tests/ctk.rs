//! The Serverless Workflow conformance test kit (CTK), run through the real engine.
//!
//! Every scenario of `../shared/sw-spec/ctk/features/*.feature` (relative to the crate root;
//! `MOZAIKS_CTK_FEATURES_DIR` names another directory) is parsed by the small Gherkin reader
//! below and run step by step: the definition goes through [`Workflow::parse`], the run through
//! [`Workflow::run`], and the assertions look at its outcome and at the tasks that ran (the
//! engine's `task` tracing spans). Scenarios that call public hosts (petstore.swagger.io,
//! httpbin.org) are answered by the loopback stand-in of `tests/support/ctk_hosts.rs`; no
//! scenario reaches the internet.
//!
//! The test prints one line per scenario, one per feature, and a closing `N passed, N failed`
//! (always, even when the output is captured), and fails when a scenario fails that
//! [`EXPECTED_FAILURES`] does not list, fails for another reason than listed, or passes while
//! listed: the list is the reviewed record of what the engine cannot do yet, and shrinks as it
//! grows. Where the default directory is absent (a clone without `../shared`), the test says so
//! and checks nothing. `MOZAIKS_CTK_FILTER=text` runs only the scenarios whose
//! `file: scenario` contains `text`.
//!
//! Steps (the CTK README's catalogue; `And`/`But`/`*` continue the previous keyword):
//!
//! | step | meaning |
//! |---|---|
//! | `a workflow with definition:` + doc string | parse it (` ```json ` / ` ```yaml `, default YAML); a load error fails the step |
//! | `[given] the workflow input is:` + doc string | the input (default `{}`) |
//! | `the workflow is executed` | run it (10 s deadline) |
//! | `the workflow should complete [with output:]` | completed; the output equals the doc string (numbers by value) |
//! | `the workflow should fault [with error:]` | faulted; every field of the doc string equals the error's |
//! | `the workflow should cancel` | cancelled (the engine has no cancellation: always fails, saying so) |
//! | `the workflow output should have properties 'a', 'b.c'` | completed; each dotted path exists |
//! | `the workflow output should have a 'p' property with value:` | completed; the value at `p` equals the doc string |
//! | `the workflow output should have a 'p' property containing N items` | completed; `p` is an array of N items |
//! | `T should run first` / `last` | `T` is the first / last task started (nested tasks included, `if`-skipped ones not) |
//! | `T should run before` / `after U` | `T` first started before / after `U` first started |
//! | `T should complete` / `fault` / `cancel` [`with output:` / `with error:`] | task outcomes: the engine does not report them yet, so the step fails saying so |

#[path = "support/ctk_hosts.rs"]
mod ctk_hosts;

use ctk_hosts::StandIn;
use mozaiks_runtime::workflow::{EngineOptions, ExecutionInfo, Outcome, RunResult, Workflow};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Scenarios expected to fail today: `(feature file, scenario, text the failure must contain)`.
///
/// The third field is checked: a listed scenario that fails for another reason is a failure.
/// Remove an entry when the engine learns what it needs (the test says which ones pass).
const EXPECTED_FAILURES: &[(&str, &str, &str)] = &[];

/// The deadline of each run.
const SCENARIO_DEADLINE: Duration = Duration::from_secs(10);

/// The features directory by default, relative to the crate root.
const DEFAULT_FEATURES_DIR: &str = "../shared/sw-spec/ctk/features";

#[test]
fn ctk_conformance() {
    let filter = std::env::var("MOZAIKS_CTK_FILTER").unwrap_or_default();
    let dir = match features_dir() {
        FeaturesDir::Found(dir) => dir,
        FeaturesDir::Absent(default) => {
            emit(&format!(
                "ctk: no CTK features at {}: this clone has no ../shared (the Serverless Workflow \
                 spec); no conformance scenario ran. Set MOZAIKS_CTK_FEATURES_DIR to the CTK's \
                 features directory to run them.\n0 passed, 0 failed\n",
                default.display()
            ));
            return;
        }
    };
    let features = read_features(&dir).unwrap_or_else(|e| panic!("{e}"));
    let hosts = StandIn::start().unwrap_or_else(|e| panic!("cannot start the CTK stand-in: {e}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("cannot build a Tokio runtime: {e}"));

    let mut report = format!("ctk: features from {}\n", dir.display());
    let mut per_feature: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut matched = Vec::new();
    let mut expected_failures = 0;
    for feature in &features {
        for scenario in &feature.scenarios {
            let id = format!("{}: {}", feature.file, scenario.name);
            if !id.contains(&filter) {
                continue;
            }
            let result = run_scenario(&runtime, &hosts, feature, scenario);
            let expected = EXPECTED_FAILURES
                .iter()
                .find(|(f, s, _)| *f == feature.file && *s == scenario.name);
            if let Some(entry) = expected {
                matched.push(*entry);
            }
            let verdict = Verdict::of(&result, expected.map(|(_, _, reason)| *reason));
            let counts = per_feature.entry(&feature.file).or_default();
            match &result {
                Ok(()) => counts.0 += 1,
                Err(_) => counts.1 += 1,
            }
            let failure = result.err().unwrap_or_default();
            let verdict = match verdict {
                Verdict::Pass => "pass".to_owned(),
                Verdict::ExpectedFailure => {
                    expected_failures += 1;
                    format!("expected failure: {failure}")
                }
                Verdict::UnexpectedPass => {
                    problems.push(format!(
                        "{id}: passes but is listed in EXPECTED_FAILURES: remove its entry"
                    ));
                    "PASS, but listed as expected to fail".to_owned()
                }
                Verdict::OtherFailure(reason) => {
                    problems.push(format!(
                        "{id}: fails for another reason than listed (`{reason}`): {failure}"
                    ));
                    format!("FAIL (listed for `{reason}`): {failure}")
                }
                Verdict::Fail => {
                    problems.push(format!("{id}: {failure}"));
                    format!("FAIL: {failure}")
                }
            };
            let _ = writeln!(report, "  {id} ... {verdict}");
        }
    }
    for entry in EXPECTED_FAILURES {
        let (file, scenario, _) = entry;
        let id = format!("{file}: {scenario}");
        if id.contains(&filter) && !matched.contains(entry) {
            problems.push(format!(
                "EXPECTED_FAILURES lists `{id}`, which no feature has: remove or fix the entry"
            ));
        }
    }

    let (passed, failed) = per_feature
        .values()
        .fold((0, 0), |(p, f), (fp, ff)| (p + fp, f + ff));
    let _ = writeln!(report, "ctk: per feature");
    for (file, (p, f)) in &per_feature {
        let _ = writeln!(report, "  {file}: {p} of {} scenarios conform", p + f);
    }
    let _ = writeln!(
        report,
        "ctk: {expected_failures} failure(s) listed as expected today (EXPECTED_FAILURES), {} \
         unexpected result(s)",
        problems.len()
    );
    // Not a runner's "N passed, N failed" closing line: listed expected failures are not test
    // failures (the test itself fails on any unexpected result).
    let _ = writeln!(
        report,
        "ctk: {passed} of {} scenarios conform",
        passed + failed
    );
    emit(&report);
    if !hosts.requests().is_empty() {
        let seen: Vec<String> = hosts
            .requests()
            .iter()
            .map(|r| format!("{} {}{} → {}", r.method, r.host, r.target, r.status))
            .collect();
        emit(&format!("ctk: stand-in requests: {}\n", seen.join(", ")));
    }
    assert!(
        problems.is_empty(),
        "CTK conformance: {} unexpected result(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// How a scenario's result stands against [`EXPECTED_FAILURES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Passed, not listed.
    Pass,
    /// Failed, listed, and the failure says the listed reason.
    ExpectedFailure,
    /// Passed although listed: the entry must go.
    UnexpectedPass,
    /// Failed, listed, but for another reason than this one.
    OtherFailure(&'static str),
    /// Failed, not listed.
    Fail,
}

impl Verdict {
    /// The verdict for `result`, given the reason its scenario is listed for (if it is).
    fn of(result: &Result<(), String>, listed: Option<&'static str>) -> Verdict {
        match (result, listed) {
            (Ok(()), None) => Verdict::Pass,
            (Ok(()), Some(_)) => Verdict::UnexpectedPass,
            (Err(failure), Some(reason)) if failure.contains(reason) => Verdict::ExpectedFailure,
            (Err(_), Some(reason)) => Verdict::OtherFailure(reason),
            (Err(_), None) => Verdict::Fail,
        }
    }
}

/// Writes the report to the test's stderr even when libtest captures output (it captures the
/// `print!` family only): the CTK counts are the product of this test, pass or fail.
fn emit(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Where the features are.
enum FeaturesDir {
    /// The directory to read.
    Found(PathBuf),
    /// The default directory, absent.
    Absent(PathBuf),
}

/// `MOZAIKS_CTK_FEATURES_DIR` (must exist), else the default (may be absent).
fn features_dir() -> FeaturesDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("MOZAIKS_CTK_FEATURES_DIR") {
        Some(dir) => {
            let dir = root.join(dir);
            assert!(
                dir.is_dir(),
                "MOZAIKS_CTK_FEATURES_DIR names {}, which is not a directory",
                dir.display()
            );
            FeaturesDir::Found(dir)
        }
        None => {
            let dir = root.join(DEFAULT_FEATURES_DIR);
            if dir.is_dir() {
                FeaturesDir::Found(dir)
            } else {
                FeaturesDir::Absent(dir)
            }
        }
    }
}

/// Every `*.feature` of `dir`, parsed, in file-name order.
fn read_features(dir: &Path) -> Result<Vec<Feature>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
            .path();
        if path.extension().is_some_and(|ext| ext == "feature") {
            paths.push(path);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(format!("{} holds no .feature file", dir.display()));
    }
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let file = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            gherkin::parse(&file, &text).map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect()
}

// ───────────────────────────── Gherkin ─────────────────────────────

use gherkin::{DocString, Feature, Scenario, Step};

/// The part of Gherkin the CTK uses: `Feature:` (with its description), `Background:`,
/// `Scenario:`/`Example:`, steps (`Given`, `When`, `Then`, `And`, `But`, `*`), doc strings
/// (`"""` or ```` ``` ````, with a content type), tags and `#` comments. Outlines, examples,
/// data tables and rules are refused with the line, never silently ignored.
mod gherkin {
    /// One `.feature` file.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Feature {
        /// The file name, e.g. `try.feature`.
        pub file: String,
        /// The text after `Feature:`.
        pub name: String,
        /// Its scenarios, background steps first in each.
        pub scenarios: Vec<Scenario>,
    }

    /// One scenario.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Scenario {
        /// The text after `Scenario:`.
        pub name: String,
        /// 1-based line of the `Scenario:` keyword.
        pub line: usize,
        /// The steps, the feature's background first.
        pub steps: Vec<Step>,
    }

    /// One step.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Step {
        /// `Given`, `When`, `Then`, `And`, `But` or `*`.
        pub keyword: String,
        /// The text after the keyword.
        pub text: String,
        /// 1-based line of the step.
        pub line: usize,
        /// The doc string that follows the step, if any.
        pub doc: Option<DocString>,
    }

    /// A doc string argument.
    #[derive(Debug, Clone, PartialEq)]
    pub struct DocString {
        /// The content type after the opening delimiter (`yaml`, `json`), or empty.
        pub content_type: String,
        /// The content, with the delimiter's indentation removed from each line.
        pub content: String,
    }

    const STEP_KEYWORDS: &[&str] = &["Given ", "When ", "Then ", "And ", "But ", "* "];

    /// Parses a feature file named `file`. Errors name the 1-based line.
    pub fn parse(file: &str, text: &str) -> Result<Feature, String> {
        let lines: Vec<&str> = text.lines().collect();
        let mut name = None;
        let mut background: Option<Vec<Step>> = None;
        let mut in_background = false;
        // Free text is a description right after a header (`Feature:`, `Background:`,
        // `Scenario:`), before its first step.
        let mut in_description = false;
        let mut scenarios: Vec<Scenario> = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            let number = i + 1;
            let raw = lines[i];
            let line = raw.trim();
            i += 1;
            if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
                continue;
            }
            if let Some(rest) = line.strip_prefix("Feature:") {
                if name.is_some() {
                    return Err(format!("line {number}: a second `Feature:`"));
                }
                name = Some(rest.trim().to_owned());
                in_description = true;
                continue;
            }
            if name.is_none() {
                return Err(format!(
                    "line {number}: expected `Feature:`, found `{line}`"
                ));
            }
            if line.starts_with("Background:") {
                if background.is_some() || !scenarios.is_empty() {
                    return Err(format!(
                        "line {number}: `Background:` must come once, before the scenarios"
                    ));
                }
                background = Some(Vec::new());
                in_background = true;
                in_description = true;
                continue;
            }
            if let Some(rest) = line
                .strip_prefix("Scenario:")
                .or_else(|| line.strip_prefix("Example:"))
            {
                in_background = false;
                in_description = true;
                scenarios.push(Scenario {
                    name: rest.trim().to_owned(),
                    line: number,
                    steps: background.clone().unwrap_or_default(),
                });
                continue;
            }
            for unsupported in [
                "Scenario Outline:",
                "Scenario Template:",
                "Examples:",
                "Scenarios:",
                "Rule:",
                "|",
            ] {
                if line.starts_with(unsupported) {
                    return Err(format!(
                        "line {number}: `{unsupported}` is not supported by this runner; extend \
                         tests/ctk.rs"
                    ));
                }
            }
            let steps = if in_background {
                background.as_mut()
            } else {
                scenarios.last_mut().map(|s| &mut s.steps)
            };
            let delimiter = ["\"\"\"", "```"].into_iter().find(|d| line.starts_with(d));
            if let Some(delimiter) = delimiter {
                let Some(step) = steps.and_then(|s| s.last_mut()) else {
                    return Err(format!("line {number}: a doc string before any step"));
                };
                if step.doc.is_some() {
                    return Err(format!("line {number}: a second doc string for one step"));
                }
                let indent = raw.len() - raw.trim_start().len();
                let content_type = line[delimiter.len()..].trim().to_owned();
                let mut content = Vec::new();
                loop {
                    let Some(raw) = lines.get(i) else {
                        return Err(format!("line {number}: doc string never closed"));
                    };
                    i += 1;
                    if raw.trim() == delimiter {
                        break;
                    }
                    content.push(
                        dedent(raw, indent)
                            .replace(&format!("\\{}", &delimiter[..1]).repeat(3), delimiter),
                    );
                }
                step.doc = Some(DocString {
                    content_type,
                    content: content.join("\n"),
                });
                continue;
            }
            let keyword = STEP_KEYWORDS.iter().find(|k| line.starts_with(**k));
            match (keyword, steps) {
                (Some(keyword), Some(steps)) => {
                    in_description = false;
                    steps.push(Step {
                        keyword: keyword.trim().to_owned(),
                        text: line[keyword.len()..].trim().to_owned(),
                        line: number,
                        doc: None,
                    });
                }
                (Some(_), None) => {
                    return Err(format!("line {number}: a step outside any scenario"));
                }
                (None, _) if in_description => {}
                (None, _) => {
                    return Err(format!(
                        "line {number}: `{line}` is not a step (Given/When/Then/And/But/*)"
                    ));
                }
            }
        }
        let name = name.ok_or("no `Feature:` line")?;
        Ok(Feature {
            file: file.to_owned(),
            name,
            scenarios,
        })
    }

    /// `line` without up to `indent` leading whitespace characters.
    fn dedent(line: &str, indent: usize) -> String {
        let strip = line
            .char_indices()
            .take(indent)
            .take_while(|(_, c)| c.is_whitespace())
            .count();
        line.chars().skip(strip).collect()
    }
}

// ───────────────────────────── steps ─────────────────────────────

/// One scenario's state, built up by its steps.
struct World<'a> {
    runtime: &'a tokio::runtime::Runtime,
    hosts: &'a StandIn,
    /// `feature.file: scenario name`, for error messages and the execution id.
    id: String,
    definition: Option<(Workflow, String)>,
    input: Value,
    run: Option<Run>,
}

/// What a run did, as the steps see it.
struct Run {
    outcome: Outcome,
    /// References of the tasks that started, in start order (`if`-skipped ones left out).
    tasks: Vec<String>,
}

/// Runs one scenario; `Err` says which step failed and why.
fn run_scenario(
    runtime: &tokio::runtime::Runtime,
    hosts: &StandIn,
    feature: &Feature,
    scenario: &Scenario,
) -> Result<(), String> {
    if scenario.steps.is_empty() {
        return Err(format!("line {}: the scenario has no step", scenario.line));
    }
    let mut world = World {
        runtime,
        hosts,
        id: format!("{}: {}", feature.file, scenario.name),
        definition: None,
        input: json!({}),
        run: None,
    };
    for step in &scenario.steps {
        world
            .step(step)
            .map_err(|e| format!("line {} `{} {}`: {e}", step.line, step.keyword, step.text))?;
    }
    Ok(())
}

impl World<'_> {
    /// Dispatches one step on its text.
    fn step(&mut self, step: &Step) -> Result<(), String> {
        let text = step.text.as_str();
        let doc = || {
            step.doc
                .as_ref()
                .ok_or_else(|| "this step needs a doc string (\"\"\"yaml … \"\"\")".to_owned())
        };
        let no_doc = || match step.doc {
            Some(_) => Err("this step takes no doc string".to_owned()),
            None => Ok(()),
        };
        match text {
            "a workflow with definition:" => return self.given_definition(doc()?),
            "given the workflow input is:" | "the workflow input is:" => {
                self.input = parse_doc(doc()?)?;
                return Ok(());
            }
            "the workflow is executed" => return no_doc().and_then(|()| self.execute()),
            "the workflow should complete" => return no_doc().and(self.output().map(drop)),
            "the workflow should complete with output:" => {
                let expected = parse_doc(doc()?)?;
                let output = self.output()?;
                return expect_equal("the workflow output", output, &expected);
            }
            "the workflow should fault" => return no_doc().and(self.error().map(drop)),
            "the workflow should fault with error:" => {
                let expected = parse_doc(doc()?)?;
                return expect_error(&self.error()?, &expected);
            }
            "the workflow should cancel" => {
                no_doc()?;
                let run = self.run()?;
                return Err(format!(
                    "the engine has no cancellation; the run {}",
                    describe(&run.outcome)
                ));
            }
            _ => {}
        }
        if let Some(list) = text.strip_prefix("the workflow output should have properties ") {
            no_doc()?;
            let output = self.output()?;
            let missing: Vec<String> = quoted_list(list)?
                .into_iter()
                .filter(|path| lookup(output, path).is_none())
                .collect();
            return match missing.as_slice() {
                [] => Ok(()),
                _ => Err(format!(
                    "the workflow output has no {}: it is {}",
                    missing.join(", "),
                    output
                )),
            };
        }
        if let Some(rest) = text.strip_prefix("the workflow output should have a '") {
            let (path, rest) = rest
                .split_once("' property ")
                .ok_or("expected `the workflow output should have a '<path>' property …`")?;
            let output = self.output()?;
            if rest == "with value:" {
                let expected = parse_doc(doc()?)?;
                let actual = lookup(output, path)
                    .ok_or_else(|| format!("the workflow output has no `{path}`: {output}"))?;
                return expect_equal(&format!("`{path}`"), actual, &expected);
            }
            if let Some(count) = rest
                .strip_prefix("containing ")
                .and_then(|r| r.strip_suffix(" items").or_else(|| r.strip_suffix(" item")))
            {
                no_doc()?;
                let count: usize = count
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{count}` is not a number of items"))?;
                let actual = lookup(output, path)
                    .ok_or_else(|| format!("the workflow output has no `{path}`: {output}"))?;
                return match actual {
                    Value::Array(items) if items.len() == count => Ok(()),
                    Value::Array(items) => Err(format!(
                        "`{path}` has {} items, not {count}: {actual}",
                        items.len()
                    )),
                    other => Err(format!("`{path}` is not an array: {other}")),
                };
            }
            return Err(format!("unknown output assertion `… property {rest}`"));
        }
        if let Some((task, rest)) = text.split_once(" should ") {
            if !task.contains(' ') {
                no_doc_unless_outcome(step, rest)?;
                return self.task_step(task, rest);
            }
        }
        Err("no step of this runner matches this text; extend tests/ctk.rs".into())
    }

    /// `a workflow with definition:`: parse and compile through the engine.
    fn given_definition(&mut self, doc: &DocString) -> Result<(), String> {
        let extension = match doc.content_type.as_str() {
            "json" => "json",
            "yaml" | "yml" | "" => "yaml",
            other => return Err(format!("unknown doc string content type `{other}`")),
        };
        let path = PathBuf::from(format!("{}.{extension}", self.id));
        // Public hosts the CTK calls (petstore, httpbin) go to the loopback stand-in.
        let options = EngineOptions {
            resolve_overrides: self.hosts.resolve_overrides(),
            ..EngineOptions::default()
        };
        let workflow = Workflow::parse_with(&path, &doc.content, &options)
            .map_err(|e| format!("the definition does not load: {e}"))?;
        self.definition = Some((workflow, doc.content.clone()));
        Ok(())
    }

    /// `the workflow is executed`: one run through the engine, its tasks recorded.
    fn execute(&mut self) -> Result<(), String> {
        let (workflow, _) = self
            .definition
            .as_ref()
            .ok_or("no workflow yet: a `Given a workflow with definition:` step comes first")?;
        let recorder = TaskRecorder::default();
        let dispatch = tracing::Dispatch::new(recorder.clone());
        let result = tracing::dispatcher::with_default(&dispatch, || {
            self.runtime
                .block_on(run_workflow(workflow, self.input.clone(), &self.id))
        });
        self.run = Some(Run {
            outcome: result.outcome,
            tasks: recorder.started(),
        });
        Ok(())
    }

    fn run(&self) -> Result<&Run, String> {
        self.run
            .as_ref()
            .ok_or_else(|| "the workflow has not run: `When the workflow is executed` first".into())
    }

    /// The output of a completed run.
    fn output(&self) -> Result<&Value, String> {
        match &self.run()?.outcome {
            Outcome::Completed(output) => Ok(output),
            other => Err(format!(
                "the workflow did not complete: it {}",
                describe(other)
            )),
        }
    }

    /// The error of a faulted run, as JSON (problem details).
    fn error(&self) -> Result<Value, String> {
        match &self.run()?.outcome {
            Outcome::Faulted(error) => serde_json::to_value(error)
                .map_err(|e| format!("the error does not serialize: {e}")),
            other => Err(format!(
                "the workflow did not fault: it {}",
                describe(other)
            )),
        }
    }

    /// `T should run first|last|before U|after U`, `T should complete|fault|cancel …`.
    fn task_step(&self, task: &str, rest: &str) -> Result<(), String> {
        let run = self.run()?;
        let names: Vec<String> = run.tasks.iter().map(|r| task_name(r)).collect();
        if names.is_empty() {
            return Err(
                "the engine reported no task (is the `task` span of crates/workflow/src/run/flow.rs gone?)"
                    .into(),
            );
        }
        let order = || format!("tasks started in this order: {}", names.join(", "));
        let position = |name: &str| {
            names
                .iter()
                .position(|n| n == name)
                .ok_or_else(|| format!("{name} did not run; {}", order()))
        };
        let ok = match rest {
            "run first" => names.first().is_some_and(|n| n == task),
            "run last" => names.last().is_some_and(|n| n == task),
            _ => {
                if let Some(other) = rest.strip_prefix("run before ") {
                    position(task)? < position(other.trim())?
                } else if let Some(other) = rest.strip_prefix("run after ") {
                    position(task)? > position(other.trim())?
                } else if ["complete", "fault", "cancel"]
                    .iter()
                    .any(|verb| rest.starts_with(verb))
                {
                    return Err(format!(
                        "task outcomes (`{task} should {rest}`) are not reported by the engine \
                         yet; it reports which tasks started ({})",
                        order()
                    ));
                } else {
                    return Err(format!("unknown task assertion `should {rest}`"));
                }
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!("{task} did not {rest}; {}", order()))
        }
    }
}

/// Task steps take a doc string only with `with output:` / `with error:`.
fn no_doc_unless_outcome(step: &Step, rest: &str) -> Result<(), String> {
    let wants_doc = rest.ends_with(':');
    match (&step.doc, wants_doc) {
        (Some(_), false) => Err("this step takes no doc string".into()),
        (None, true) => Err("this step needs a doc string".into()),
        _ => Ok(()),
    }
}

/// The one place the engine meets the CTK: runs `workflow` on `input` under the scenario
/// deadline.
///
/// When the engine accepts a host → address mapping (the planned
/// `EngineOptions { resolve_overrides }`), pass `hosts.resolve_overrides()` here and set
/// [`HOST_MAPPING_WIRED`]: the HTTP scenarios then run against the stand-in.
async fn run_workflow(workflow: &Workflow, input: Value, id: &str) -> RunResult {
    let exec = ExecutionInfo {
        execution_id: format!("ctk {id}"),
        claims: json!({}),
    };
    let deadline = tokio::time::Instant::now() + SCENARIO_DEADLINE;
    workflow.run(input, &exec, deadline).await
}

/// How a run ended, in words.
fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Completed(output) => format!("completed with output {output}"),
        Outcome::Faulted(error) => format!(
            "faulted with {}",
            serde_json::to_string(error).unwrap_or_else(|_| error.to_string())
        ),
        Outcome::Waiting { output, .. } => format!("waiting with output {output}"),
    }
}

/// The doc string as a value (JSON for `json`, YAML otherwise).
fn parse_doc(doc: &DocString) -> Result<Value, String> {
    match doc.content_type.as_str() {
        "json" => serde_json::from_str(&doc.content)
            .map_err(|e| format!("the doc string is not JSON: {e}")),
        "yaml" | "yml" | "" => serde_yaml_ng::from_str(&doc.content)
            .map_err(|e| format!("the doc string is not YAML: {e}")),
        other => Err(format!("unknown doc string content type `{other}`")),
    }
}

/// `'a', 'b.c'` → `["a", "b.c"]`.
fn quoted_list(text: &str) -> Result<Vec<String>, String> {
    text.split(',')
        .map(|item| {
            let item = item.trim();
            item.strip_prefix('\'')
                .and_then(|i| i.strip_suffix('\''))
                .filter(|i| !i.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| format!("`{item}` is not a single-quoted property path"))
        })
        .collect()
}

/// The value at a dotted path (`a.b.0.c`: object keys, array indexes).
fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(value, |value, segment| match value {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

/// `what` equals `expected`, numbers compared by value.
fn expect_equal(what: &str, actual: &Value, expected: &Value) -> Result<(), String> {
    if json_eq(actual, expected) {
        Ok(())
    } else {
        Err(format!("{what} is {actual}, expected {expected}"))
    }
}

/// Every field of `expected` (an object) equals the error's.
fn expect_error(actual: &Value, expected: &Value) -> Result<(), String> {
    let Value::Object(fields) = expected else {
        return Err(format!("the expected error is not an object: {expected}"));
    };
    let wrong: Vec<String> = fields
        .iter()
        .filter(|(key, value)| !actual.get(key).is_some_and(|a| json_eq(a, value)))
        .map(|(key, value)| {
            let got = actual.get(key).map_or("nothing".into(), Value::to_string);
            format!("`{key}` is {got}, expected {value}")
        })
        .collect();
    match wrong.as_slice() {
        [] => Ok(()),
        _ => Err(format!("{} (the error: {actual})", wrong.join("; "))),
    }
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// The name of the task at a JSON-pointer reference (its last segment, unescaped).
fn task_name(reference: &str) -> String {
    reference
        .rsplit('/')
        .next()
        .unwrap_or(reference)
        .replace("~1", "/")
        .replace("~0", "~")
}

// ───────────────────────────── task trace ─────────────────────────────

/// A tracing subscriber that records the engine's `task` spans: which tasks started, in which
/// order (first entry of each span), and which `if` skipped.
#[derive(Clone, Default)]
struct TaskRecorder {
    state: Arc<Mutex<RecorderState>>,
}

#[derive(Default)]
struct RecorderState {
    spans: Vec<TaskSpan>,
    /// Indexes into `spans`, in the order they were first entered.
    started: Vec<usize>,
}

struct TaskSpan {
    reference: String,
    skipped: bool,
    entered: bool,
}

impl TaskRecorder {
    /// References of the tasks that started and were not skipped, in start order.
    fn started(&self) -> Vec<String> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state
            .started
            .iter()
            .filter_map(|&i| state.spans.get(i))
            .filter(|span| !span.skipped)
            .map(|span| span.reference.clone())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RecorderState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn index(id: &tracing::span::Id) -> Option<usize> {
        usize::try_from(id.into_u64()).ok()?.checked_sub(1)
    }
}

/// Reads the `reference` and `skipped` fields of a `task` span.
#[derive(Default)]
struct TaskFields {
    reference: Option<String>,
    skipped: Option<bool>,
}

impl tracing::field::Visit for TaskFields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "reference" {
            self.reference = Some(value.to_owned());
        }
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        if field.name() == "skipped" {
            self.skipped = Some(value);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "reference" && self.reference.is_none() {
            self.reference = Some(format!("{value:?}"));
        }
    }
}

impl tracing::Subscriber for TaskRecorder {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.is_span()
            && metadata.name() == "task"
            && metadata.target().starts_with("mozaiks_workflow")
    }

    fn new_span(&self, attrs: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut fields = TaskFields::default();
        attrs.record(&mut fields);
        let mut state = self.lock();
        state.spans.push(TaskSpan {
            reference: fields.reference.unwrap_or_default(),
            skipped: fields.skipped.unwrap_or(false),
            entered: false,
        });
        tracing::span::Id::from_u64(state.spans.len() as u64)
    }

    fn record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut fields = TaskFields::default();
        values.record(&mut fields);
        if let (Some(skipped), Some(i)) = (fields.skipped, Self::index(id)) {
            if let Some(span) = self.lock().spans.get_mut(i) {
                span.skipped = skipped;
            }
        }
    }

    fn record_follows_from(&self, _span: &tracing::span::Id, _follows: &tracing::span::Id) {}

    fn event(&self, _event: &tracing::Event<'_>) {}

    fn enter(&self, id: &tracing::span::Id) {
        let Some(i) = Self::index(id) else { return };
        let mut state = self.lock();
        let first = state.spans.get_mut(i).is_some_and(|span| {
            let first = !span.entered;
            span.entered = true;
            first
        });
        if first {
            state.started.push(i);
        }
    }

    fn exit(&self, _span: &tracing::span::Id) {}
}

// ───────────────────────────── the runner's own tests ─────────────────────────────

#[test]
fn verdicts_hold_the_list_to_account() {
    let failed = |why: &str| Err(why.to_owned());
    assert_eq!(Verdict::of(&Ok(()), None), Verdict::Pass);
    assert_eq!(Verdict::of(&Ok(()), Some("x")), Verdict::UnexpectedPass);
    assert_eq!(
        Verdict::of(&failed("`try` tasks are not supported yet"), Some("`try`")),
        Verdict::ExpectedFailure
    );
    assert_eq!(
        Verdict::of(&failed("output differs"), Some("`try`")),
        Verdict::OtherFailure("`try`")
    );
    assert_eq!(Verdict::of(&failed("output differs"), None), Verdict::Fail);
    // Every listed scenario names a real feature file and a distinct scenario.
    for (i, (file, scenario, reason)) in EXPECTED_FAILURES.iter().enumerate() {
        assert!(file.ends_with(".feature") && !scenario.is_empty() && !reason.is_empty());
        assert!(
            EXPECTED_FAILURES[..i]
                .iter()
                .all(|(f, s, _)| (f, s) != (file, scenario)),
            "{file}: {scenario} is listed twice"
        );
    }
}

#[test]
fn gherkin_reads_doc_strings_background_and_descriptions() {
    let text = "@tag\nFeature: F\n  Some description\n  # comment\n\n  Background:\n    Given \
                a workflow with definition:\n    \"\"\"yaml\n    a: 1\n      b: \\\"\\\"\\\"\n    \
                \"\"\"\n\n  Scenario: One\n    A description line\n    When the workflow \
                is executed\n    Then the workflow should complete with output:\n      \
                ```json\n      {\"x\": \"\\\"\\\"\\\"\"}\n      ```\n  Example: Two\n    * \
                x should run first\n";
    let feature = gherkin::parse("f.feature", text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(feature.name, "F");
    assert_eq!(feature.scenarios.len(), 2);
    let one = &feature.scenarios[0];
    assert_eq!((one.name.as_str(), one.line), ("One", 13));
    assert_eq!(one.steps.len(), 3);
    assert_eq!(
        one.steps[0].doc,
        Some(DocString {
            content_type: "yaml".into(),
            content: "a: 1\n  b: \"\"\"".into()
        })
    );
    assert_eq!(one.steps[1].keyword, "When");
    let doc = one.steps[2].doc.as_ref().map(|d| d.content.as_str());
    assert_eq!(
        doc,
        Some("{\"x\": \"\\\"\\\"\\\"\"}"),
        "only the delimiter's own escape"
    );
    let two = &feature.scenarios[1];
    assert_eq!(two.steps.len(), 2, "background steps come first");
    assert_eq!(
        (two.steps[1].keyword.as_str(), two.steps[1].text.as_str()),
        ("*", "x should run first")
    );
}

#[test]
fn gherkin_refuses_what_it_does_not_run() {
    for (text, needle) in [
        (
            "Feature: F\n  Scenario Outline: O\n",
            "`Scenario Outline:` is not supported",
        ),
        (
            "Feature: F\n  Scenario: S\n    Given x\n    | a |\n",
            "`|` is not supported",
        ),
        (
            "Feature: F\n  Scenario: S\n    Given x\n    \"\"\"\n    y\n",
            "never closed",
        ),
        (
            "Feature: F\n  Scenario: S\n    Given x\n    stray text\n",
            "is not a step",
        ),
        ("Scenario: S\n", "expected `Feature:`"),
        ("Feature: F\n  \"\"\"\n  \"\"\"\n", "before any step"),
    ] {
        match gherkin::parse("f.feature", text) {
            Ok(feature) => panic!("{text:?} parsed: {feature:?}"),
            Err(e) => assert!(e.contains(needle), "{text:?}: {e}"),
        }
    }
}

#[test]
fn values_compare_numbers_by_value_and_paths_reach_nested_items() {
    assert!(json_eq(&json!({"a": [1, 2.0]}), &json!({"a": [1.0, 2]})));
    assert!(!json_eq(&json!({"a": 1}), &json!({"a": 1, "b": null})));
    assert!(!json_eq(&json!("1"), &json!(1)));
    let value = json!({"a": {"b": [{"c": 3}]}});
    assert_eq!(lookup(&value, "a.b.0.c"), Some(&json!(3)));
    assert_eq!(lookup(&value, "a.x"), None);
    assert_eq!(
        quoted_list("'id', 'request.uri'"),
        Ok(vec!["id".to_owned(), "request.uri".to_owned()])
    );
    assert!(quoted_list("id, 'x'").is_err());
    assert_eq!(task_name("/do/0/a~1b"), "a/b");
    let error = json!({"type": "t", "status": 400, "detail": "d"});
    assert!(expect_error(&error, &json!({"type": "t", "status": 400})).is_ok());
    assert!(expect_error(&error, &json!({"status": 404})).is_err());
    assert!(expect_error(&error, &json!({"title": "x"})).is_err());
}

/// The steps against the engine on an inline feature: order, output, fault, skipped tasks.
#[test]
fn steps_run_through_the_engine() {
    let text = r#"Feature: Inline
  Scenario: Order, skip and output
    Given a workflow with definition:
    """yaml
    document: { dsl: '1.0.0', namespace: test, name: inline, version: '1.0.0' }
    do:
      - first:
          set: { n: '${ .n + 1 }' }
      - skipped:
          if: '${ false }'
          set: { never: true }
      - outer:
          do:
            - inner:
                set: { n: '${ .n * 10 }', items: [1, 2, 3] }
    """
    And given the workflow input is:
    """json
    { "n": 1 }
    """
    When the workflow is executed
    Then the workflow should complete with output:
    """yaml
    n: 20
    items: [1, 2, 3]
    """
    And the workflow output should have properties 'n', 'items'
    And the workflow output should have a 'items' property containing 3 items
    And the workflow output should have a 'n' property with value:
    """yaml
    20.0
    """
    And first should run first
    And inner should run last
    And outer should run after first
    And first should run before inner

  Scenario: Fault
    Given a workflow with definition:
    """yaml
    document: { dsl: '1.0.0', namespace: test, name: fault, version: '1.0.0' }
    do:
      - boom:
          set: { x: '${ error("boom") }' }
    """
    When the workflow is executed
    Then the workflow should fault with error:
    """yaml
    type: https://serverlessworkflow.io/spec/1.0.0/errors/expression
    status: 400
    instance: /do/0/boom
    """
"#;
    let feature = gherkin::parse("inline.feature", text).unwrap_or_else(|e| panic!("{e}"));
    let hosts = StandIn::start().unwrap_or_else(|e| panic!("{e}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    for scenario in &feature.scenarios {
        let result = run_scenario(&runtime, &hosts, &feature, scenario);
        assert_eq!(result, Ok(()), "{}", scenario.name);
    }

    // The same scenario with wrong expectations fails at the step that is wrong.
    for (wrong, needle) in [
        ("And inner should run first", "inner did not run first"),
        (
            "And first should run after outer",
            "first did not run after outer",
        ),
        ("And skipped should run before first", "skipped did not run"),
        (
            "Then the workflow should fault",
            "the workflow did not fault",
        ),
        (
            "And the workflow output should have properties 'n', 'nope'",
            "has no nope",
        ),
        (
            "And the workflow output should have a 'items' property containing 2 items",
            "has 3 items, not 2",
        ),
        ("And first should complete", "task outcomes"),
        ("And the workflow should cancel", "no cancellation"),
        (
            "And the workflow should dance",
            "no step of this runner matches",
        ),
    ] {
        let text = text.replacen(
            "    And first should run first\n",
            &format!("    {wrong}\n"),
            1,
        );
        let feature = gherkin::parse("inline.feature", &text).unwrap_or_else(|e| panic!("{e}"));
        let result = run_scenario(&runtime, &hosts, &feature, &feature.scenarios[0]);
        match result {
            Ok(()) => panic!("`{wrong}` passed"),
            Err(e) => assert!(e.contains(needle), "`{wrong}`: {e}"),
        }
    }
}

/// The stand-in answers what the CTK's HTTP scenarios need, over a real loopback connection.
#[test]
fn stand_in_answers_the_ctk_requests() {
    use std::io::Read as _;
    let hosts = StandIn::start().unwrap_or_else(|e| panic!("{e}"));
    let get = |host: &str, target: &str, extra: &str| -> (u16, String) {
        let mut stream =
            std::net::TcpStream::connect(hosts.addr()).unwrap_or_else(|e| panic!("{e}"));
        let request = format!("GET {target} HTTP/1.1\r\nHost: {host}:443\r\n{extra}\r\n");
        stream
            .write_all(request.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .unwrap_or_else(|e| panic!("{e}"));
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    };
    let parse = |body: &str| serde_json::from_str::<Value>(body).unwrap_or(Value::Null);

    let (status, body) = get(
        "petstore.swagger.io",
        "/v2/pet/findByStatus?status=available",
        "",
    );
    assert_eq!(status, 200);
    let pets = parse(&body);
    let first = &pets[0];
    assert!(first["id"].is_i64() && first["name"].is_string(), "{pets}");
    assert!(pets
        .as_array()
        .is_some_and(|p| p.iter().all(|p| p["status"] == "available")));

    let (status, body) = get("petstore.swagger.io", "/v2/pet/1", "");
    assert_eq!((status, parse(&body)["id"].clone()), (200, json!(1)));
    let (status, body) = get("petstore.swagger.io", "/v2/pet/2", "");
    assert_eq!((status, parse(&body)["id"].clone()), (200, json!(2)));
    assert_eq!(get("petstore.swagger.io", "/v2/pet/99", "").0, 404);
    assert_eq!(
        get("petstore.swagger.io", "/v2/pet/getPetByName/Milou", "").0,
        404
    );
    assert_eq!(
        get("petstore.swagger.io", "/v2/pet/findByStatus", "").0,
        400
    );

    let (status, body) = get("petstore.swagger.io", "/v2/swagger.json", "");
    let swagger = parse(&body);
    assert_eq!(status, 200);
    assert_eq!(swagger["host"], "petstore.swagger.io");
    assert_eq!(
        swagger["paths"]["/pet/{petId}"]["get"]["operationId"],
        "getPetById"
    );
    assert_eq!(
        swagger["paths"]["/pet/findByStatus"]["get"]["operationId"],
        "findPetsByStatus"
    );

    let target = "/basic-auth/serverless-workflow/conformance-test";
    let good = "Authorization: Basic c2VydmVybGVzcy13b3JrZmxvdzpjb25mb3JtYW5jZS10ZXN0\r\n";
    let (status, body) = get("httpbin.org", target, good);
    assert_eq!(
        (status, parse(&body)),
        (
            200,
            json!({"authenticated": true, "user": "serverless-workflow"})
        )
    );
    assert_eq!(get("httpbin.org", target, "").0, 401);
    let wrong = "Authorization: Basic c2VydmVybGVzcy13b3JrZmxvdzp3cm9uZw==\r\n";
    assert_eq!(get("httpbin.org", target, wrong).0, 401);
    assert_eq!(get("example.com", "/", "").0, 421);

    let seen = hosts.requests();
    assert_eq!(seen.len(), 11);
    assert_eq!(
        (seen[0].host.as_str(), seen[0].target.as_str()),
        (
            "petstore.swagger.io",
            "/v2/pet/findByStatus?status=available"
        )
    );
    let overrides = hosts.resolve_overrides();
    assert!(overrides
        .iter()
        .any(|(h, a)| h == "httpbin.org" && *a == hosts.addr()));
}
