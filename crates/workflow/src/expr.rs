//! Runtime expressions: jq (via jaq) compiled once at load, evaluated many times per run.
//!
//! Every expression is compiled with exactly the runtime arguments (`$context`, `$input`, …)
//! the DSL defines at its position, so a misspelt or misplaced variable is a load error.
//! Nothing here is global but the standard library's parsed definitions (immutable, shared by
//! every compile): a compiled [`Expr`] owns its program, and each evaluation gets its
//! arguments from the caller.

use super::error::{child, Invalid};
use super::jq_library::{Def, GUARD, LIBRARY};
use super::redact::Redactor;
use super::value::{from_json_ref, truncate};
use jaq_core::box_iter::box_once;
use jaq_core::compile::Undefined;
use jaq_core::data::JustLut;
use jaq_core::load::{lex, parse, Arena, File, Loader};
use jaq_core::native::Fun;
use jaq_core::{Ctx, Cv, Exn, Native, ValXs, Vars};
use jaq_json::Val;
use serde_json::Value;

/// How jaq sees our data: plain `Val`s, no global data besides the program.
type Data = JustLut<Val>;
/// A compiled jq program.
type Filter = jaq_core::Filter<Data>;

/// Longest error message taken from jq (they can quote whole values).
const MAX_MESSAGE: usize = 400;

/// A runtime expression argument (a jq variable provided by the runtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arg {
    /// `$context`: the workflow's context data.
    Context,
    /// `$input`: the task's transformed input.
    Input,
    /// `$output`: the task's transformed output.
    Output,
    /// `$secrets`: the workflow's secrets.
    Secrets,
    /// `$task`: the task descriptor.
    Task,
    /// `$workflow`: the workflow descriptor.
    Workflow,
    /// `$runtime`: the runtime descriptor.
    Runtime,
    /// `$execution`: execution id and the ExecutionContext claims (mozaiks extension).
    Execution,
}

impl Arg {
    /// Every runtime argument, in declaration order.
    pub(crate) const ALL: [Arg; 8] = [
        Arg::Context,
        Arg::Input,
        Arg::Output,
        Arg::Secrets,
        Arg::Task,
        Arg::Workflow,
        Arg::Runtime,
        Arg::Execution,
    ];

    /// The jq variable name, with its `$`.
    pub(crate) const fn var(self) -> &'static str {
        match self {
            Arg::Context => "$context",
            Arg::Input => "$input",
            Arg::Output => "$output",
            Arg::Secrets => "$secrets",
            Arg::Task => "$task",
            Arg::Workflow => "$workflow",
            Arg::Runtime => "$runtime",
            Arg::Execution => "$execution",
        }
    }
}

/// Where an expression sits in a workflow; decides the runtime arguments it can use
/// (the table "Runtime expression arguments" of the DSL, plus `$execution` everywhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Position {
    /// The workflow's `input.from`.
    WorkflowInputFrom,
    /// The workflow's `output.as`.
    WorkflowOutputAs,
    /// A task's `if`.
    TaskIf,
    /// A task's `input.from`.
    TaskInputFrom,
    /// The task's own definition (e.g. the values of `set`).
    TaskDefinition,
    /// A task's `output.as`.
    TaskOutputAs,
    /// A task's `export.as`.
    TaskExportAs,
}

impl Position {
    /// The runtime arguments available at this position.
    pub(crate) const fn args(self) -> &'static [Arg] {
        use Arg::*;
        match self {
            Position::WorkflowInputFrom => &[Secrets, Workflow, Runtime, Execution],
            Position::WorkflowOutputAs => &[Context, Secrets, Workflow, Runtime, Execution],
            Position::TaskIf | Position::TaskInputFrom => {
                &[Context, Secrets, Task, Workflow, Runtime, Execution]
            }
            Position::TaskDefinition | Position::TaskOutputAs => {
                &[Context, Input, Secrets, Task, Workflow, Runtime, Execution]
            }
            Position::TaskExportAs => &[
                Context, Input, Output, Secrets, Task, Workflow, Runtime, Execution,
            ],
        }
    }

    /// How a person would name this position in an error message.
    const fn describe(self) -> &'static str {
        match self {
            Position::WorkflowInputFrom => "the workflow's `input.from`",
            Position::WorkflowOutputAs => "the workflow's `output.as`",
            Position::TaskIf => "a task's `if`",
            Position::TaskInputFrom => "a task's `input.from`",
            Position::TaskDefinition => "a task's definition",
            Position::TaskOutputAs => "a task's `output.as`",
            Position::TaskExportAs => "a task's `export.as`",
        }
    }
}

/// A jq variable an expression reads: a runtime argument or a local of an enclosing task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    /// A runtime argument (`$context`, …).
    Arg(Arg),
    /// The local at this index of the [`Scope`] the expression was compiled in.
    Local(usize),
}

/// The local variables visible at a place of a document, outermost first (with their `$`):
/// `for` declares its item and index (`$item`, `$index`), `catch` its error (`$error`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    names: Vec<Box<str>>,
}

impl Scope {
    /// This scope plus `names` (bare names, without `$`), which shadow outer ones.
    pub(crate) fn with(&self, names: &[&str]) -> Scope {
        let mut scope = self.clone();
        scope
            .names
            .extend(names.iter().map(|name| format!("${name}").into_boxed_str()));
        scope
    }

    /// How many locals a run must provide for this scope.
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// The index of the innermost local called `var` (with its `$`).
    fn find(&self, var: &str) -> Option<usize> {
        self.names.iter().rposition(|name| &**name == var)
    }
}

/// Where an expression is compiled: its position (which runtime arguments), the locals in
/// scope, and whether the document evaluates in `loose` mode.
#[derive(Clone, Copy)]
pub(crate) struct Site<'a> {
    /// The position in the data flow.
    pub position: Position,
    /// The locals visible there.
    pub scope: &'a Scope,
    /// `evaluate.mode: loose`: any string of a definition is tried as an expression.
    pub loose: bool,
}

/// The values of the runtime arguments for one evaluation (unavailable ones are never read).
pub(crate) struct Args<'a> {
    /// `$context`.
    pub context: &'a Val,
    /// `$input`.
    pub input: &'a Val,
    /// `$output`.
    pub output: &'a Val,
    /// `$secrets`.
    pub secrets: &'a Val,
    /// `$task`.
    pub task: &'a Val,
    /// `$workflow`.
    pub workflow: &'a Val,
    /// `$runtime`.
    pub runtime: &'a Val,
    /// `$execution`.
    pub execution: &'a Val,
    /// The locals of the enclosing scope, in [`Scope`] order.
    pub locals: &'a [Val],
}

impl Args<'_> {
    fn var(&self, var: Var) -> Val {
        match var {
            Var::Arg(arg) => self.get(arg).clone(),
            Var::Local(index) => self.locals.get(index).cloned().unwrap_or(Val::Null),
        }
    }

    fn get(&self, arg: Arg) -> &Val {
        match arg {
            Arg::Context => self.context,
            Arg::Input => self.input,
            Arg::Output => self.output,
            Arg::Secrets => self.secrets,
            Arg::Task => self.task,
            Arg::Workflow => self.workflow,
            Arg::Runtime => self.runtime,
            Arg::Execution => self.execution,
        }
    }
}

/// An expression that failed at run time: where it is and what jq said.
#[derive(Debug)]
pub(crate) struct EvalError {
    /// JSON pointer of the expression in the document.
    pub pointer: String,
    /// What went wrong.
    pub message: String,
}

/// A compiled jq expression.
pub(crate) struct Expr {
    filter: Filter,
    /// The declared variables, in the order of the program's global variables.
    vars: Box<[Var]>,
    /// JSON pointer of the expression in its document (for error details).
    pointer: Box<str>,
}

impl Expr {
    /// Whether this expression reads runtime argument `arg`.
    pub(crate) fn uses(&self, arg: Arg) -> bool {
        self.vars.contains(&Var::Arg(arg))
    }

    /// JSON pointer of the expression in its document.
    pub(crate) fn pointer(&self) -> &str {
        &self.pointer
    }

    /// Runs the expression on `input`. No output is `null`; more than one is an error.
    pub(crate) fn eval(&self, input: Val, args: &Args<'_>) -> Result<Val, EvalError> {
        let fail = |message: String| EvalError {
            pointer: self.pointer.to_string(),
            message,
        };
        let vars = Vars::new(self.vars.iter().map(|var| args.var(*var)));
        let ctx = Ctx::<Data>::new(&self.filter.lut, vars);
        let mut outputs = self.filter.id.run((ctx, input));
        let first = match outputs.next() {
            None => return Ok(Val::Null),
            Some(result) => result.map_err(|exn| fail(exception_message(exn, args.secrets)))?,
        };
        match outputs.next() {
            None => Ok(first),
            Some(Err(exn)) => Err(fail(exception_message(exn, args.secrets))),
            Some(Ok(_)) => Err(fail(
                "the expression produced more than one value; collect them with `[ … ]` or pick one with `first(…)`".into(),
            )),
        }
    }
}

/// Renders a jq exception without ever exiting the process (jaq's `unwrap_valr` would, on `halt`).
/// jq quotes values in its messages: the document's secrets are taken out before the message is
/// shortened (so that no start of a secret is left at the cut).
fn exception_message(exn: Exn<'_, Val>, secrets: &Val) -> String {
    match exn.get_err() {
        Ok(err) => {
            let text = match err.into_val() {
                Val::TStr(bytes) | Val::BStr(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                other => other.to_string(),
            };
            let mut redactor = Redactor::default();
            redactor.add_val(secrets);
            let text = redactor.finish().redact(&text);
            format!("jq: {}", truncate(&text, MAX_MESSAGE))
        }
        Err(exn) => match exn.get_halt() {
            Ok(code) => format!("jq: the expression called `halt` (exit code {code}); a workflow cannot stop the runtime, raise an error instead"),
            Err(_) => "jq: an internal control-flow exception escaped the expression".into(),
        },
    }
}

/// A value whose strings may be runtime expressions, evaluated into a value.
pub(crate) enum Template {
    /// No expression inside: used as is.
    Const(Val),
    /// A runtime expression.
    Expr(Expr),
    /// An array with expressions inside.
    Array(Box<[Template]>),
    /// An object with expressions inside (keys are literal).
    Object(Box<[(Val, Template)]>),
    /// `loose` mode: a plain string tried as an expression; if it fails, the string itself.
    Loose(Expr, Val),
}

impl Template {
    /// Evaluates every expression inside against `input`, keeping the shape.
    pub(crate) fn eval(&self, input: &Val, args: &Args<'_>) -> Result<Val, EvalError> {
        match self {
            Template::Const(value) => Ok(value.clone()),
            Template::Expr(expr) => expr.eval(input.clone(), args),
            Template::Loose(expr, literal) => Ok(expr
                .eval(input.clone(), args)
                .unwrap_or_else(|_| literal.clone())),
            Template::Array(items) => items.iter().map(|item| item.eval(input, args)).collect(),
            Template::Object(entries) => Ok(Val::obj(
                entries
                    .iter()
                    .map(|(key, value)| Ok((key.clone(), value.eval(input, args)?)))
                    .collect::<Result<_, EvalError>>()?,
            )),
        }
    }

    /// Whether any expression inside reads runtime argument `arg`.
    pub(crate) fn uses(&self, arg: Arg) -> bool {
        match self {
            Template::Const(_) => false,
            Template::Expr(expr) | Template::Loose(expr, _) => expr.uses(arg),
            Template::Array(items) => items.iter().any(|item| item.uses(arg)),
            Template::Object(entries) => entries.iter().any(|(_, value)| value.uses(arg)),
        }
    }
}

/// If `text` is a runtime expression `${ … }` (strict mode), its jq source.
pub(crate) fn strip_expression(text: &str) -> Option<&str> {
    Some(text.trim().strip_prefix("${")?.strip_suffix('}')?.trim())
}

/// Compiles jq expressions, each with only the standard library definitions it can reach
/// ([`LIBRARY`], parsed one definition at a time on first need): a bundle whose expressions
/// name none of its filters (paths, literals, operators, `$` variables) parses none of it.
pub(crate) struct ExprCompiler;

impl ExprCompiler {
    pub(crate) fn new() -> Self {
        ExprCompiler
    }

    /// The standard library definitions `code` can reach, in library order. Code that does
    /// not lex gets them all: the loader then reports its error as usual.
    #[cfg(test)]
    fn prelude_for(&self, code: &str) -> Vec<&'static Def> {
        self.needs(code).0
    }

    /// What compiling `code` needs: the standard library definitions it can reach, in library
    /// order (all of them when the code does not lex: the loader then reports its error as
    /// usual), and the names that it and they mention, sorted: a superset of the native
    /// filters it can call (`None`, every native, when it does not lex).
    fn needs<'c>(&self, code: &'c str) -> (Vec<&'static Def>, Option<Vec<&'c str>>) {
        let Ok(tokens) = lex::Lexer::new(code).lex() else {
            return (LIBRARY.all(), None);
        };
        let mut names = Vec::new();
        token_names(&tokens, &mut names);
        let reach = LIBRARY.reach(&names);
        names.extend(reach.names);
        names.sort_unstable();
        names.dedup();
        (reach.defs, Some(names))
    }

    /// Compiles jq `code` found at `pointer`; the error is a message for a person.
    pub(crate) fn compile(
        &self,
        code: &str,
        site: Site<'_>,
        pointer: &str,
    ) -> Result<Expr, String> {
        if code.trim().is_empty() {
            return Err("the expression is empty; write a jq filter, e.g. `${ . }`".into());
        }
        // Declare only the variables the text mentions: fewer variables to bind per run.
        let mut vars: Vec<(&str, Var)> = site
            .position
            .args()
            .iter()
            .filter(|arg| code.contains(arg.var()))
            .map(|arg| (arg.var(), Var::Arg(*arg)))
            .collect();
        for name in &site.scope.names {
            if code.contains(&**name) && !vars.iter().any(|(known, _)| *known == &**name) {
                if let Some(index) = site.scope.find(name) {
                    vars.push((name, Var::Local(index)));
                }
            }
        }
        let (prelude, mut names) = self.needs(code);
        // The expression's own definitions check the stack on entry (they may recurse).
        let guarded = guard_definitions(code);
        if guarded.is_some() {
            if let Some(names) = &mut names {
                names.push(GUARD);
                names.sort_unstable();
            }
        }
        let build = |code: &str| -> Result<Filter, String> {
            let arena = Arena::default();
            let loader = Loader::new(prelude.iter().copied().cloned());
            let modules = loader
                .load(&arena, File { code, path: () })
                .map_err(|errors| load_errors(code, errors))?;
            jaq_core::Compiler::<_, Data>::default()
                .with_funs(natives(names.as_deref()))
                .with_global_vars(vars.iter().map(|(name, _)| *name))
                .compile(modules)
                .map_err(|errors| compile_errors(errors, site))
        };
        let filter = match &guarded {
            None => build(code)?,
            // Errors are reported on the text as written (positions, quoted parts).
            Some(rewritten) => build(rewritten).or_else(|_| build(code))?,
        };
        Ok(Expr {
            filter,
            vars: vars.into_iter().map(|(_, var)| var).collect(),
            pointer: pointer.into(),
        })
    }

    /// Compiles a field that is always an expression (`if`, `input.from`, …): `${ … }` or bare jq.
    pub(crate) fn field(&self, code: &str, site: Site<'_>, pointer: &str) -> Result<Expr, Invalid> {
        let code = strip_expression(code).unwrap_or(code);
        self.compile(code, site, pointer)
            .map_err(|message| Invalid::new(pointer, message))
    }

    /// Compiles a value whose strings that are entirely `${ … }` are expressions (in `loose`
    /// mode, every other string is tried as one too).
    pub(crate) fn template(
        &self,
        value: &Value,
        site: Site<'_>,
        pointer: &str,
    ) -> Result<Template, Invalid> {
        Ok(match value {
            Value::String(text) => match strip_expression(text) {
                Some(code) => Template::Expr(
                    self.compile(code, site, pointer)
                        .map_err(|message| Invalid::new(pointer, message))?,
                ),
                None if site.loose => match self.compile(text, site, pointer) {
                    Ok(expr) => Template::Loose(expr, from_json_ref(value)),
                    Err(_) => Template::Const(from_json_ref(value)),
                },
                None => Template::Const(from_json_ref(value)),
            },
            Value::Array(items) => {
                let items = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.template(item, site, &child(pointer, &i.to_string())))
                    .collect::<Result<Box<[_]>, _>>()?;
                if items.iter().all(|item| matches!(item, Template::Const(_))) {
                    Template::Const(from_json_ref(value))
                } else {
                    Template::Array(items)
                }
            }
            Value::Object(entries) => {
                let entries = entries
                    .iter()
                    .map(|(key, item)| {
                        let item = self.template(item, site, &child(pointer, key))?;
                        Ok((Val::from(key.clone()), item))
                    })
                    .collect::<Result<Box<[_]>, Invalid>>()?;
                if entries
                    .iter()
                    .all(|(_, item)| matches!(item, Template::Const(_)))
                {
                    Template::Const(from_json_ref(value))
                } else {
                    Template::Object(entries)
                }
            }
            other => Template::Const(from_json_ref(other)),
        })
    }
}

/// The words (filter names, keywords, field names) and formats (`@base64`) of lexed jq code:
/// a superset of the filters it calls.
fn token_names<'s>(tokens: &[lex::Token<&'s str>], names: &mut Vec<&'s str>) {
    for lex::Token(text, tok) in tokens {
        match tok {
            lex::Tok::Word | lex::Tok::Fmt => names.push(text),
            lex::Tok::Block(inner) => token_names(inner, names),
            lex::Tok::Str(parts) => {
                for part in parts {
                    if let lex::StrPart::Term(token) = part {
                        token_names(core::slice::from_ref(token), names);
                    }
                }
            }
            lex::Tok::Var | lex::Tok::Num | lex::Tok::Sym => {}
        }
    }
}

/// `code` with [`GUARD`] called first in the body of each of its definitions (`def f: BODY;` →
/// `def f: GUARD | BODY;`), or `None` when it defines nothing.
fn guard_definitions(code: &str) -> Option<String> {
    if !code.contains("def") {
        return None;
    }
    let tokens = lex::Lexer::new(code).lex().ok()?;
    let mut colons = Vec::new();
    definition_colons(code, &tokens, &mut colons);
    if colons.is_empty() {
        return None;
    }
    colons.sort_unstable();
    let mut rewritten = code.to_owned();
    for at in colons.into_iter().rev() {
        rewritten.insert_str(at, &format!(" {GUARD} |"));
    }
    Some(rewritten)
}

/// Byte offsets just after the `:` of each `def name(args):` in `tokens`, nested ones included.
fn definition_colons(code: &str, tokens: &[lex::Token<&str>], colons: &mut Vec<usize>) {
    for (i, lex::Token(text, tok)) in tokens.iter().enumerate() {
        match tok {
            lex::Tok::Block(inner) => definition_colons(code, inner, colons),
            lex::Tok::Str(parts) => {
                for part in parts {
                    if let lex::StrPart::Term(token) = part {
                        definition_colons(code, core::slice::from_ref(token), colons);
                    }
                }
            }
            lex::Tok::Word if *text == "def" => {
                let mut next = i + 1;
                if !matches!(
                    tokens.get(next),
                    Some(lex::Token(_, lex::Tok::Word | lex::Tok::Fmt))
                ) {
                    continue;
                }
                next += 1;
                if let Some(lex::Token(args, lex::Tok::Block(_))) = tokens.get(next) {
                    if args.starts_with('(') {
                        next += 1;
                    }
                }
                if let Some(lex::Token(colon, lex::Tok::Sym)) =
                    tokens.get(next).filter(|t| t.0 == ":")
                {
                    if let Some(at) = offset(code, colon) {
                        colons.push(at + 1);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The stack guard of recursive definitions: `.` while enough stack is left, else an error.
fn stack_guard<'a>(cv: Cv<'a, Data>) -> ValXs<'a, Val> {
    if super::stack::check() {
        box_once(Ok(cv.1))
    } else {
        box_once(Err(Exn::from(jaq_core::Error::str(RECURSION_TOO_DEEP))))
    }
}

/// What an expression that recursed too deeply fails with.
pub(crate) const RECURSION_TOO_DEEP: &str = "the expression recursed too deeply: its definitions \
     called themselves until the engine's stack was nearly exhausted; bound the recursion (or \
     write it with `reduce`, `until` or `range`)";

/// The jq native filters, minus what must not reach a workflow: `env` (the process
/// environment holds credentials) answers `{}`, and `debug`/`stderr` do not log (workflow
/// data may hold claims or secrets).
fn funs() -> impl Iterator<Item = Fun<Data>> {
    jaq_core::funs::<Data>()
        .chain(jaq_std::funs::<Data>())
        .chain(jaq_json::funs::<Data>())
        .map(|(name, args, native)| match name {
            "env" => (name, args, Native::<Data>::new(empty_object)),
            "debug_empty" | "stderr_empty" => (name, args, Native::<Data>::new(nothing)),
            _ => (name, args, native),
        })
        .chain([(GUARD, Box::default(), Native::<Data>::new(stack_guard))])
}

/// The natives among `names` (sorted), or all for `None`. Only what an expression or its
/// definitions name is handed to jaq, which keeps every native it gets in each compiled
/// filter and scans them all for each call it resolves.
fn natives<'n>(names: Option<&'n [&'n str]>) -> impl Iterator<Item = Fun<Data>> + 'n {
    funs().filter(move |(name, _, _)| names.is_none_or(|names| names.binary_search(name).is_ok()))
}

fn empty_object<'a>(_: Cv<'a, Data>) -> ValXs<'a, Val> {
    box_once(Ok(Val::obj(jaq_json::Map::default())))
}

fn nothing<'a>(_: Cv<'a, Data>) -> ValXs<'a, Val> {
    Box::new(core::iter::empty())
}

/// Byte offset of `part` inside `code`, if `part` is a slice of it.
fn offset(code: &str, part: &str) -> Option<usize> {
    (part.as_ptr() as usize)
        .checked_sub(code.as_ptr() as usize)
        .filter(|at| *at <= code.len())
}

/// " at character N" (1-based, counted in characters) when the place is known.
fn at(code: &str, part: &str) -> String {
    match offset(code, part) {
        Some(bytes) => format!(
            " at character {} of the expression",
            code[..bytes].chars().count() + 1
        ),
        None => String::new(),
    }
}

fn load_errors(code: &str, errors: jaq_core::load::Errors<&str, ()>) -> String {
    let mut messages = Vec::new();
    for (_file, error) in errors {
        match error {
            jaq_core::load::Error::Io(imports) => {
                for (path, _) in imports {
                    messages.push(format!(
                        "jq: cannot import or include `{path}`: workflow expressions cannot load modules"
                    ));
                }
            }
            jaq_core::load::Error::Lex(lex_errors) => {
                for (expected, rest) in lex_errors {
                    let expected = match expected {
                        lex::Expect::Delim("(") => "a closing `)`".to_owned(),
                        lex::Expect::Delim("[") => "a closing `]`".to_owned(),
                        lex::Expect::Delim("{") => "a closing `}`".to_owned(),
                        lex::Expect::Delim("\"") => "a closing quote `\"`".to_owned(),
                        lex::Expect::Delim(open) => format!("a closing delimiter for `{open}`"),
                        other => other.as_str().to_owned(),
                    };
                    messages.push(format!("jq: expected {expected}{}", at(code, rest)));
                }
            }
            jaq_core::load::Error::Parse(parse_errors) => {
                for (expected, found) in parse_errors {
                    let found_text = if found.is_empty() {
                        "the end of the expression".to_owned()
                    } else {
                        format!("`{found}`")
                    };
                    messages.push(format!(
                        "jq: expected {}, found {found_text}{}",
                        parse_expect(&expected),
                        at(code, found)
                    ));
                }
            }
        }
    }
    if messages.is_empty() {
        messages.push("jq: the expression could not be parsed".into());
    }
    messages.join("; ")
}

fn parse_expect(expected: &parse::Expect<&str>) -> String {
    match expected {
        parse::Expect::Just(token) => format!("`{token}`"),
        other => other.as_str().to_owned(),
    }
}

fn compile_errors(errors: jaq_core::compile::Errors<&str, ()>, site: Site<'_>) -> String {
    let mut messages = Vec::new();
    for (_file, undefined) in errors {
        for (name, kind) in undefined {
            messages.push(match kind {
                Undefined::Var => undefined_variable(name, site),
                Undefined::Filter(arity) => {
                    format!("jq: undefined filter `{name}/{arity}`")
                }
                other => format!("jq: undefined {} `{name}`", other.as_str()),
            });
        }
    }
    if messages.is_empty() {
        messages.push("jq: the expression could not be compiled".into());
    }
    messages.join("; ")
}

fn undefined_variable(name: &str, site: Site<'_>) -> String {
    let available = site
        .position
        .args()
        .iter()
        .map(|arg| arg.var())
        .chain(site.scope.names.iter().map(|name| &**name))
        .collect::<Vec<_>>()
        .join(", ");
    if Arg::ALL.iter().any(|arg| arg.var() == name) {
        format!(
            "jq: `{name}` is not available in {}; available there: {available}",
            site.position.describe()
        )
    } else {
        format!("jq: undefined variable `{name}`; the runtime provides {available} here")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{object, string, to_json};
    use serde_json::json;

    fn site(position: Position, scope: &Scope) -> Site<'_> {
        Site {
            position,
            scope,
            loose: false,
        }
    }

    fn compile(code: &str, position: Position) -> Result<Expr, String> {
        ExprCompiler::new().compile(code, site(position, &Scope::default()), "/x")
    }

    fn null_args(f: impl FnOnce(&Args<'_>)) {
        let null = Val::Null;
        f(&Args {
            context: &null,
            input: &null,
            output: &null,
            secrets: &null,
            task: &null,
            workflow: &null,
            runtime: &null,
            execution: &null,
            locals: &[],
        });
    }

    /// Compiles `code` with exactly the given standard library prelude and natives (all for
    /// `None`) and runs it on `input`.
    fn run_with_prelude<'d>(
        code: &str,
        prelude: impl Iterator<Item = &'d Def>,
        names: Option<&[&str]>,
        input: serde_json::Value,
    ) -> Result<Vec<serde_json::Value>, String> {
        let arena = Arena::default();
        let modules = Loader::new(prelude.cloned())
            .load(&arena, File { code, path: () })
            .map_err(|errors| load_errors(code, errors))?;
        let filter = jaq_core::Compiler::<_, Data>::default()
            .with_funs(natives(names))
            .compile(modules)
            .map_err(|errors| format!("{} compile errors", errors.len()))?;
        let ctx = Ctx::<Data>::new(&filter.lut, Vars::new([]));
        filter
            .id
            .run((ctx, crate::value::from_json(input)))
            .map(|out| match out {
                Ok(value) => to_json(&value),
                Err(exn) => Err(exception_message(exn, &Val::Null)),
            })
            .collect()
    }

    #[test]
    fn pruned_prelude_and_natives_compute_what_the_whole_library_does() {
        let compiler = ExprCompiler::new();
        let input =
            json!({"a": [3, 1, 2], "b": {"c": "x y", "d": null}, "s": "2015-03-05T23:51:47Z"});
        for code in [
            ".a | map(select(. > 1)) | sort",
            "to_entries | from_entries",
            "[paths] | length",
            "walk(if type == \"number\" then . + 1 else . end)",
            ".b.c | @base64 | @base64d",
            "\"\\(.a | add) \\(.b | keys | join(\",\"))\"",
            "[.a[] | tostring] | @sh",
            "@json \"v: \\(.b)\"",
            ".a as [$x, $y] | {($x | tostring): $y} | with_entries(.value += 1)",
            "reduce (.a | to_entries[]) as {key: $k, value: $v} (0; . + $k * $v)",
            "def twice(f): f | f; .a | twice(map(. * 2)) | first, last, (range(2) | tostring)",
            "[limit(2; repeat(1))], (.s | fromdateiso8601), ([.a[] | select(. != 1)] | min_by(.))",
            "try error(\"boom\") catch ascii_upcase",
            ".b | del(.d) | has(\"c\"), (.. |= .), ([.[]?] | any)",
            "getpath([\"b\", \"c\"]) | splits(\" \")",
            "[.a[] | if . > 1 then \"big\" elif . == 1 then \"one\" else empty end] | unique",
            "[.[] | tojson | fromjson | type] | group_by(.) | map(length)",
            "label $out | foreach .a[] as $x (0; . + $x; if . > 3 then ., break $out else . end)",
            "(.a | indices(1)), ([paths(type == \"number\")] | length), (.b.c | test(\"x\"), ltrimstr(\"x\"))",
        ] {
            // What `compile` hands jaq: the definitions and natives the code names or reaches.
            let (prelude, names) = compiler.needs(code);
            let names = names.unwrap_or_else(|| panic!("{code} lexes"));
            let pruned = run_with_prelude(code, prelude.iter().copied(), Some(&names), input.clone());
            let whole = run_with_prelude(code, LIBRARY.all().into_iter(), None, input.clone());
            assert!(whole.is_ok(), "{code}: {whole:?}");
            assert_eq!(pruned, whole, "{code}");
        }
    }

    #[test]
    fn expressions_naming_no_library_filter_get_no_prelude() {
        let compiler = ExprCompiler::new();
        for code in [
            ".a",
            "{ name: (.name // \"world\") }",
            "\"Hello, \\(.name)!\"",
            "$execution.id",
        ] {
            assert!(compiler.prelude_for(code).is_empty(), "{code}");
            assert!(compile(code, Position::TaskDefinition).is_ok(), "{code}");
        }
    }

    #[test]
    fn expressions_get_only_the_definitions_they_reach() {
        let compiler = ExprCompiler::new();
        let names = |code: &str| -> Vec<&str> {
            compiler
                .prelude_for(code)
                .into_iter()
                .map(|def| def.name)
                .collect()
        };
        assert!(names(".a | .b").is_empty());
        assert!(names("{ name: (.name // \"world\") }").is_empty());
        let map = names("map(. + 1)");
        assert!(map.contains(&"map"), "{map:?}");
        assert!(
            !map.contains(&"walk") && !map.contains(&"to_entries"),
            "{map:?}"
        );
        // `with_entries` reaches `to_entries`, `from_entries` and `map`.
        let entries = names("with_entries(.)");
        for needed in ["with_entries", "to_entries", "from_entries", "map"] {
            assert!(
                entries.contains(&needed),
                "{needed} missing from {entries:?}"
            );
        }
        // Words inside string interpolations and formats count.
        assert!(names("\"\\(.a | first)\"").contains(&"first"));
        assert!(names("@base64").contains(&"@base64"));
        // Code that does not lex gets the whole library (the loader reports the error).
        assert_eq!(names("\"unterminated").len(), LIBRARY.all().len());
        assert!(compile("\"unterminated", Position::TaskDefinition).is_err());
    }

    #[test]
    fn expressions_get_only_the_natives_they_name() {
        let compiler = ExprCompiler::new();
        let natives_of = |code: &str| -> Vec<&'static str> {
            let (_, names) = compiler.needs(code);
            natives(names.as_deref()).map(|(name, _, _)| name).collect()
        };
        assert!(natives_of(".a | .b").is_empty());
        assert!(natives_of("{ name: (.name // \"world\") }").is_empty());
        assert_eq!(natives_of("length"), ["length"]);
        // Natives that reached definitions call count: `to_entries` is defined over the
        // native `key_values`.
        assert_eq!(natives_of("to_entries"), ["key_values"]);
        // Code that does not lex gets every native (the loader reports the error).
        assert_eq!(natives_of("\"unterminated").len(), funs().count());
    }

    #[test]
    fn strips_runtime_expressions() {
        assert_eq!(strip_expression("${ .a }"), Some(".a"));
        assert_eq!(strip_expression("  ${.a}\n"), Some(".a"));
        assert_eq!(strip_expression("Hello ${ .a }"), None);
        assert_eq!(strip_expression(".a"), None);
    }

    #[test]
    fn evaluates_with_declared_arguments_only() {
        let expr = compile("$execution.id + .x", Position::TaskDefinition);
        let expr = match expr {
            Ok(expr) => expr,
            Err(e) => panic!("{e}"),
        };
        assert!(expr.uses(Arg::Execution));
        assert!(!expr.uses(Arg::Context));
        let execution = object([("id", string("run-"))]);
        let null = Val::Null;
        let args = Args {
            context: &null,
            input: &null,
            output: &null,
            secrets: &null,
            task: &null,
            workflow: &null,
            runtime: &null,
            execution: &execution,
            locals: &[],
        };
        let out = expr
            .eval(object([("x", string("7"))]), &args)
            .map_err(|e| e.message);
        assert_eq!(out.and_then(|v| to_json(&v)), Ok(json!("run-7")));
    }

    #[test]
    fn misplaced_argument_is_explained() {
        let err = compile("$output", Position::TaskInputFrom).err();
        let err = err.unwrap_or_default();
        assert!(
            err.contains("`$output` is not available in a task's `input.from`"),
            "{err}"
        );
        let err = compile("$foo", Position::TaskDefinition)
            .err()
            .unwrap_or_default();
        assert!(err.contains("undefined variable `$foo`"), "{err}");
    }

    #[test]
    fn syntax_errors_say_where() {
        let err = compile(".a | ", Position::TaskDefinition)
            .err()
            .unwrap_or_default();
        assert!(err.contains("expected"), "{err}");
        let err = compile("(.a", Position::TaskDefinition)
            .err()
            .unwrap_or_default();
        assert!(err.contains("jq:"), "{err}");
        let err = compile("nosuchfilter", Position::TaskDefinition)
            .err()
            .unwrap_or_default();
        assert!(err.contains("undefined filter `nosuchfilter/0`"), "{err}");
        let err = compile("import \"x\" as x; .", Position::TaskDefinition)
            .err()
            .unwrap_or_default();
        assert!(err.contains("cannot load modules"), "{err}");
        let err = compile("  ", Position::TaskDefinition)
            .err()
            .unwrap_or_default();
        assert!(err.contains("empty"), "{err}");
    }

    #[test]
    fn halt_is_an_error_not_an_exit() {
        let expr = compile("halt_error", Position::TaskDefinition);
        let Ok(expr) = expr else { panic!("compiles") };
        null_args(|args| {
            let err = expr.eval(Val::Null, args).err().map(|e| e.message);
            assert!(err.unwrap_or_default().contains("halt"));
        });
    }

    #[test]
    fn env_is_empty_and_outputs_are_single() {
        let Ok(env) = compile("env", Position::TaskDefinition) else {
            panic!("compiles")
        };
        let Ok(many) = compile(".[]", Position::TaskDefinition) else {
            panic!("compiles")
        };
        let Ok(none) = compile("empty", Position::TaskDefinition) else {
            panic!("compiles")
        };
        let Ok(debug) = compile("debug | stderr", Position::TaskDefinition) else {
            panic!("compiles")
        };
        null_args(|args| {
            let out = env.eval(Val::Null, args).map_err(|e| e.message);
            assert_eq!(out.and_then(|v| to_json(&v)), Ok(json!({})));
            let err = many.eval([Val::Null, Val::Null].into_iter().collect(), args);
            assert!(err
                .err()
                .map(|e| e.message)
                .unwrap_or_default()
                .contains("more than one value"));
            let out = none.eval(Val::Null, args).map_err(|e| e.message);
            assert_eq!(out.and_then(|v| to_json(&v)), Ok(json!(null)));
            let out = debug.eval(string("x"), args).map_err(|e| e.message);
            assert_eq!(out.and_then(|v| to_json(&v)), Ok(json!("x")));
        });
    }

    #[test]
    fn runtime_errors_carry_message_and_pointer() {
        let Ok(expr) = compile(".a.b", Position::TaskDefinition) else {
            panic!("compiles")
        };
        let Ok(raise) = compile("error(\"boom\")", Position::TaskDefinition) else {
            panic!("compiles")
        };
        null_args(|args| {
            let err = expr.eval(object([("a", string("s"))]), args).err();
            let err = err.map(|e| (e.pointer, e.message)).unwrap_or_default();
            assert_eq!(err.0, "/x");
            assert!(err.1.starts_with("jq: cannot index"), "{}", err.1);
            let err = raise.eval(Val::Null, args).err().map(|e| e.message);
            assert_eq!(err.as_deref(), Some("jq: boom"));
        });
    }

    #[test]
    fn templates_keep_literals_and_evaluate_nested_expressions() {
        let compiler = ExprCompiler::new();
        let doc = json!({"lit": "a ${ .x }", "n": 1, "nested": {"list": ["${ .x }", 2]}});
        let template = compiler.template(
            &doc,
            site(Position::TaskDefinition, &Scope::default()),
            "/set",
        );
        let Ok(template) = template else {
            panic!("compiles")
        };
        assert!(matches!(template, Template::Object(_)));
        null_args(|args| {
            let out = template
                .eval(&object([("x", string("X"))]), args)
                .map_err(|e| e.message);
            let expected = json!({"lit": "a ${ .x }", "n": 1, "nested": {"list": ["X", 2]}});
            assert_eq!(out.and_then(|v| to_json(&v)), Ok(expected));
        });
        let constant = compiler.template(
            &json!({"a": [1, "b"]}),
            site(Position::TaskDefinition, &Scope::default()),
            "/set",
        );
        assert!(matches!(constant, Ok(Template::Const(_))));
        let bad = compiler.template(
            &json!({"a": ["${ $nope }"]}),
            site(Position::TaskDefinition, &Scope::default()),
            "/set",
        );
        let bad = bad.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(bad.starts_with("/set/a/0: "), "{bad}");
    }

    #[test]
    fn locals_resolve_to_the_innermost_declaration() {
        let compiler = ExprCompiler::new();
        let outer = Scope::default().with(&["item", "index"]);
        let inner = outer.with(&["item"]);
        let expr = compiler.compile(
            "[$item, $index]",
            site(Position::TaskDefinition, &inner),
            "/x",
        );
        let Ok(expr) = expr else { panic!("compiles") };
        let null = Val::Null;
        let locals = [string("outer"), Val::from(3isize), string("inner")];
        let args = Args {
            context: &null,
            input: &null,
            output: &null,
            secrets: &null,
            task: &null,
            workflow: &null,
            runtime: &null,
            execution: &null,
            locals: &locals,
        };
        let out = expr.eval(Val::Null, &args).map_err(|e| e.message);
        assert_eq!(out.and_then(|v| to_json(&v)), Ok(json!(["inner", 3])));
        // Out of scope, a local is an undefined variable that lists what is in scope.
        let err = compiler
            .compile(
                "$item",
                site(Position::TaskDefinition, &Scope::default()),
                "/x",
            )
            .err()
            .unwrap_or_default();
        assert!(err.contains("undefined variable `$item`"), "{err}");
        let err = compiler
            .compile("$nope", site(Position::TaskIf, &outer), "/x")
            .err()
            .unwrap_or_default();
        assert!(err.contains("$item, $index"), "{err}");
    }

    #[test]
    fn loose_mode_tries_plain_strings_as_expressions() {
        let compiler = ExprCompiler::new();
        let scope = Scope::default();
        let loose = Site {
            position: Position::TaskDefinition,
            scope: &scope,
            loose: true,
        };
        let doc =
            json!({"path": ".a", "word": "circle", "sentence": "hello world", "fails": ".a.b"});
        let Ok(template) = compiler.template(&doc, loose, "/set") else {
            panic!("compiles")
        };
        null_args(|args| {
            let out = template
                .eval(&object([("a", string("A"))]), args)
                .map_err(|e| e.message);
            // `.a.b` on a string fails at run time, so it stays the literal text.
            let expected =
                json!({"path": "A", "word": "circle", "sentence": "hello world", "fails": ".a.b"});
            assert_eq!(out.and_then(|v| to_json(&v)), Ok(expected));
        });
    }
}
