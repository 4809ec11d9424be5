//! jaq's standard library, parsed one definition at a time, when an expression first reaches it.
//!
//! jaq compiles every definition it is given into each program, so an expression is given only
//! the definitions it can reach ([`Library::reach`]): those it names, and what they call,
//! transitively. Finding them used to parse the whole library (about 150 definitions) and
//! index its call graph: about 0.6 ms of every cold start whose bundle names any library filter,
//! be it only `true`. Here the sources are split at their top-level `def`s, a text scan, and a
//! definition is parsed only when something reaches it.
//!
//! The sources are jaq's own `defs.jq` files (jaq-core, jaq-std, jaq-json), copied into
//! `jq_library/` because jaq exposes them only parsed. A test checks that the copies parse to
//! exactly jaq's definitions, in jaq's order, so a jaq upgrade that changes its library fails
//! until the copies follow.

use jaq_core::load::{lex, parse};
use std::sync::{LazyLock, OnceLock};

/// A parsed jq definition of the standard library.
pub(crate) type Def = parse::Def<&'static str>;

/// The library's sources, in the order jaq chains them (core, std, json).
const SOURCES: [&str; 3] = [
    include_str!("jq_library/jaq-core.jq"),
    include_str!("jq_library/jaq-std.jq"),
    include_str!("jq_library/jaq-json.jq"),
];

/// The standard library of the process: split once, parsed per definition on demand.
pub(crate) static LIBRARY: LazyLock<Library> = LazyLock::new(Library::split);

/// The standard library's top-level definitions, in library order.
pub(crate) struct Library {
    entries: Vec<Entry>,
    /// `(name, index into entries)`, sorted by name: every arity of a name is adjacent.
    by_name: Vec<(&'static str, usize)>,
}

/// One top-level definition: its name and source text, and once reached, its parse.
struct Entry {
    name: &'static str,
    text: &'static str,
    parsed: OnceLock<Parsed>,
}

struct Parsed {
    def: Def,
    /// The names its body mentions: the filters (native or defined) and formats it can call.
    names: Box<[&'static str]>,
    /// Indices of the entries its body can call (every arity of each name it mentions).
    calls: Box<[usize]>,
}

/// What some names reach in the library.
pub(crate) struct Reach<'l> {
    /// The definitions, transitively, in library order.
    pub(crate) defs: Vec<&'l Def>,
    /// The names those definitions mention (with repeats): with the names reached from,
    /// a superset of the native filters that can be called.
    pub(crate) names: Vec<&'static str>,
}

impl Library {
    /// Splits the sources at each line that starts a top-level definition (`def ` in the first
    /// column; nested definitions and continuation lines are indented or follow on the line).
    pub(crate) fn split() -> Library {
        let mut entries = Vec::new();
        for source in SOURCES {
            let starts: Vec<usize> = line_starts(source)
                .filter(|&at| source[at..].starts_with("def "))
                .collect();
            for (i, &start) in starts.iter().enumerate() {
                let end = starts.get(i + 1).copied().unwrap_or(source.len());
                let text = &source[start..end];
                entries.push(Entry {
                    name: def_name(text),
                    text,
                    parsed: OnceLock::new(),
                });
            }
        }
        let mut by_name: Vec<(&'static str, usize)> = entries
            .iter()
            .enumerate()
            .map(|(i, entry)| (entry.name, i))
            .collect();
        by_name.sort_unstable();
        Library { entries, by_name }
    }

    /// Whether the library defines `name` (at any arity).
    #[cfg(test)]
    fn defines(&self, name: &str) -> bool {
        self.named(name).next().is_some()
    }

    /// Indices of the entries called `name`, every arity.
    fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = usize> + 'a {
        let from = self.by_name.partition_point(|(n, _)| *n < name);
        self.by_name[from..]
            .iter()
            .take_while(move |(n, _)| *n == name)
            .map(|(_, i)| *i)
    }

    /// The definitions `names` reach, transitively, in library order, and what they mention.
    pub(crate) fn reach(&self, names: &[&str]) -> Reach<'_> {
        let mut keep = vec![false; self.entries.len()];
        let mut todo: Vec<usize> = names.iter().flat_map(|name| self.named(name)).collect();
        while let Some(i) = todo.pop() {
            if let Some(slot) = keep.get_mut(i) {
                if !*slot {
                    *slot = true;
                    todo.extend(self.parsed(i).calls.iter().copied());
                }
            }
        }
        let mut reach = Reach {
            defs: Vec::new(),
            names: Vec::new(),
        };
        for (entry, _) in self.entries.iter().zip(keep).filter(|(_, keep)| *keep) {
            let parsed = entry.parsed(self);
            reach.defs.push(&parsed.def);
            reach.names.extend_from_slice(&parsed.names);
        }
        reach
    }

    /// Every definition, in library order.
    pub(crate) fn all(&self) -> Vec<&Def> {
        (0..self.entries.len())
            .map(|i| &self.parsed(i).def)
            .collect()
    }

    fn parsed(&self, i: usize) -> &Parsed {
        self.entries[i].parsed(self)
    }

    /// How many definitions have been parsed so far.
    #[cfg(test)]
    fn parsed_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|entry| entry.parsed.get().is_some())
            .count()
    }
}

impl Entry {
    fn parsed(&self, library: &Library) -> &Parsed {
        self.parsed.get_or_init(|| {
            // The text is a constant of this crate that a test parses whole: this cannot fail
            // on any input, only on a bad copy, which that test catches.
            let mut defs = jaq_core::load::parse(self.text, |p| p.defs())
                .unwrap_or_default()
                .into_iter();
            let def = defs
                .next()
                .expect("jq_library: every entry is one definition");
            let mut names = Vec::new();
            term_names(&def.body, &mut names);
            let calls = names.iter().flat_map(|name| library.named(name)).collect();
            let mut def = def;
            if guard_recursion(&mut def) {
                names.push(GUARD);
            }
            Parsed {
                def,
                names: names.into(),
                calls,
            }
        })
    }
}

/// The native filter every recursive definition calls on entry: `.` while enough stack is
/// left, an error once it is not (see `stack.rs`), so that deep recursion fails instead of
/// overflowing the stack.
pub(crate) const GUARD: &str = "__mozaiks_stack_guard";

/// Makes `def` and the definitions nested in it that call themselves (`repeat`, `recurse(f)`,
/// `while`, … all recurse through a nested `def rec`) call [`GUARD`] first:
/// `def rec: BODY;` becomes `def rec: GUARD | BODY;` (a tail call stays a tail call).
/// Whether anything was guarded.
fn guard_recursion(def: &mut Def) -> bool {
    let mut guarded = guard_nested(&mut def.body);
    let mut names = Vec::new();
    term_names(&def.body, &mut names);
    if names.contains(&def.name) {
        let body = std::mem::take(&mut def.body);
        def.body = parse::Term::BinOp(
            Box::new(parse::Term::Call(GUARD, Vec::new())),
            parse::BinaryOp::Pipe(None),
            Box::new(body),
        );
        guarded = true;
    }
    guarded
}

/// Guards the recursive definitions nested anywhere in `term`.
fn guard_nested(term: &mut parse::Term<&'static str>) -> bool {
    use parse::Term;
    let mut guarded = false;
    let mut visit = |t: &mut Term<&'static str>| guarded |= guard_nested(t);
    match term {
        Term::Id | Term::Recurse | Term::Num(_) | Term::Break(_) | Term::Var(_) => {}
        Term::Str(_, parts) => {
            for part in parts {
                if let lex::StrPart::Term(t) = part {
                    visit(t);
                }
            }
        }
        Term::Arr(inner) => inner.iter_mut().for_each(|t| visit(t)),
        Term::Obj(entries) => {
            for (key, value) in entries {
                visit(key);
                value.iter_mut().for_each(&mut visit);
            }
        }
        Term::Neg(t) | Term::Label(_, t) => visit(t),
        Term::BinOp(l, _, r) => {
            visit(l);
            visit(r);
        }
        Term::Fold(_, xs, _, args) => {
            visit(xs);
            args.iter_mut().for_each(&mut visit);
        }
        Term::TryCatch(body, catch) => {
            visit(body);
            catch.iter_mut().for_each(|t| visit(t));
        }
        Term::IfThenElse(branches, otherwise) => {
            for (cond, then) in branches {
                visit(cond);
                visit(then);
            }
            otherwise.iter_mut().for_each(|t| visit(t));
        }
        Term::Def(defs, body) => {
            let nested = defs
                .iter_mut()
                .fold(false, |any, def| guard_recursion(def) | any);
            visit(body);
            return guarded | nested;
        }
        Term::Call(_, args) => args.iter_mut().for_each(&mut visit),
        Term::Path(t, path) => {
            visit(t);
            for (part, _) in &mut path.0 {
                match part {
                    jaq_core::path::Part::Index(i) => visit(i),
                    jaq_core::path::Part::Range(from, to) => {
                        from.iter_mut().chain(to.iter_mut()).for_each(&mut visit)
                    }
                }
            }
        }
    }
    guarded
}

/// Byte offsets where the lines of `source` start.
fn line_starts(source: &str) -> impl Iterator<Item = usize> + '_ {
    std::iter::once(0).chain(source.match_indices('\n').map(|(at, _)| at + 1))
}

/// The name a definition's text starts with: `def name(…): …` or `def @format: …`.
fn def_name(text: &'static str) -> &'static str {
    let rest = text["def ".len()..].trim_start();
    let end = rest
        .find(|c: char| c == '(' || c == ':' || c == ';' || c.is_whitespace())
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The names a parsed jq term calls (filters and formats), local definitions included.
fn term_names<'s>(term: &parse::Term<&'s str>, names: &mut Vec<&'s str>) {
    use parse::Term;
    match term {
        Term::Id | Term::Recurse | Term::Num(_) | Term::Break(_) | Term::Var(_) => {}
        Term::Str(format, parts) => {
            names.extend(format.iter().copied());
            for part in parts {
                if let lex::StrPart::Term(term) = part {
                    term_names(term, names);
                }
            }
        }
        Term::Arr(inner) => inner.iter().for_each(|t| term_names(t, names)),
        Term::Obj(entries) => {
            for (key, value) in entries {
                term_names(key, names);
                value.iter().for_each(|t| term_names(t, names));
            }
        }
        Term::Neg(t) | Term::Label(_, t) => term_names(t, names),
        Term::BinOp(l, op, r) => {
            if let parse::BinaryOp::Pipe(Some(pattern)) = op {
                pattern_names(pattern, names);
            }
            term_names(l, names);
            term_names(r, names);
        }
        Term::Fold(_, xs, pattern, args) => {
            term_names(xs, names);
            pattern_names(pattern, names);
            args.iter().for_each(|t| term_names(t, names));
        }
        Term::TryCatch(body, catch) => {
            term_names(body, names);
            catch.iter().for_each(|t| term_names(t, names));
        }
        Term::IfThenElse(branches, otherwise) => {
            for (cond, then) in branches {
                term_names(cond, names);
                term_names(then, names);
            }
            otherwise.iter().for_each(|t| term_names(t, names));
        }
        Term::Def(defs, body) => {
            defs.iter().for_each(|def| term_names(&def.body, names));
            term_names(body, names);
        }
        Term::Call(name, args) => {
            names.push(name);
            args.iter().for_each(|t| term_names(t, names));
        }
        Term::Path(t, path) => {
            term_names(t, names);
            for (part, _) in &path.0 {
                match part {
                    jaq_core::path::Part::Index(i) => term_names(i, names),
                    jaq_core::path::Part::Range(from, to) => {
                        from.iter().chain(to).for_each(|t| term_names(t, names))
                    }
                }
            }
        }
    }
}

/// The names called inside a destructuring pattern (computed object keys).
fn pattern_names<'s>(pattern: &parse::Pattern<&'s str>, names: &mut Vec<&'s str>) {
    match pattern {
        parse::Pattern::Var(_) => {}
        parse::Pattern::Arr(items) => items.iter().for_each(|p| pattern_names(p, names)),
        parse::Pattern::Obj(entries) => {
            for (key, p) in entries {
                term_names(key, names);
                pattern_names(p, names);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copies_are_jaqs_library() {
        let library = Library::split();
        let jaq: Vec<Def> = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs())
            .collect();
        // The texts as jaq would parse them (the library's own parses carry the guard).
        let ours: Vec<Def> = library
            .entries
            .iter()
            .flat_map(|entry| jaq_core::load::parse(entry.text, |p| p.defs()).unwrap())
            .collect();
        assert_eq!(
            ours.len(),
            jaq.len(),
            "one entry per definition jaq defines"
        );
        for (ours, jaq) in ours.iter().zip(&jaq) {
            assert_eq!(
                format!("{ours:?}"),
                format!("{jaq:?}"),
                "update src/workflow/jq_library/*.jq to the jaq version in Cargo.lock"
            );
        }
        for (entry, def) in library.entries.iter().zip(&jaq) {
            assert_eq!(entry.name, def.name);
        }
    }

    #[test]
    fn recursive_definitions_check_the_stack_first() {
        let library = Library::split();
        let guarded = |name: &str| {
            let i = library.named(name).next().unwrap();
            format!("{:?}", library.parsed(i).def).contains(GUARD)
        };
        for name in ["repeat", "recurse", "while", "until"] {
            assert!(guarded(name), "{name}");
        }
        for name in ["map", "select", "add", "join"] {
            assert!(!guarded(name), "{name}");
        }
        // The guard is among what a guarded definition mentions, so it is handed to jaq.
        assert!(library.reach(&["until"]).names.contains(&GUARD));
    }

    /// The names of the definitions `names` reach, in order.
    fn reached(library: &Library, names: &[&str]) -> Vec<&'static str> {
        library.reach(names).defs.iter().map(|d| d.name).collect()
    }

    #[test]
    fn reach_reports_what_the_reached_definitions_mention() {
        let library = Library::split();
        // `to_entries` is defined over the native `key_values`, which no definition defines.
        let reach = library.reach(&["to_entries"]);
        assert!(reach.names.contains(&"key_values"), "{:?}", reach.names);
        assert!(!library.defines("key_values"));
        assert!(library.reach(&["no_such_filter"]).names.is_empty());
    }

    #[test]
    fn definitions_are_parsed_only_when_reached() {
        let library = Library::split();
        assert_eq!(library.parsed_count(), 0);
        assert!(library.defines("true") && library.defines("@base64") && !library.defines("nope"));
        assert_eq!(library.parsed_count(), 0, "a name lookup parses nothing");
        let names = reached(&library, &["true"]);
        assert_eq!(names, ["true"]);
        assert_eq!(library.parsed_count(), 1);
        // `not` calls `true` and `false`; every arity of a name is reached (`range/3` is
        // native, not a definition).
        let names = reached(&library, &["not", "range"]);
        assert_eq!(names, ["true", "false", "not", "range", "range"]);
        assert_eq!(library.parsed_count(), 5);
    }

    #[test]
    fn reach_follows_calls_transitively_in_library_order() {
        let library = Library::split();
        let names = reached(&library, &["with_entries"]);
        for needed in ["with_entries", "to_entries", "from_entries", "map"] {
            assert!(names.contains(&needed), "{needed} missing from {names:?}");
        }
        let order: Vec<usize> = names
            .iter()
            .map(|name| {
                library
                    .entries
                    .iter()
                    .position(|e| e.name == *name)
                    .unwrap_or(usize::MAX)
            })
            .collect();
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "{names:?}");
        assert!(library.reach(&["no_such_filter"]).defs.is_empty());
    }
}
