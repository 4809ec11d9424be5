//! MozaiksAI handoff conditions (`condition_type: expression`) translated to jq.
//!
//! The language is the small Python-like one MozaiksAI evaluates over context variables:
//!
//! ```text
//! expr    := or
//! or      := and ("or" and)*
//! and     := not ("and" not)*
//! not     := "not" not | compare
//! compare := operand (("==" | "!=" | "<" | "<=" | ">" | ">=" | "is" ["not"]) operand)?
//! operand := "${" name "}" | True | False | None | true | false | null | number | 'string'
//!          | "string" | "(" expr ")" | "len(" expr ")"
//! ```
//!
//! `${x}` reads context variable `x` (`.context.x` in the `when` expression's input, or what a
//! derived variable's triggers make of it, see [`Variables`]). Operands of `and`, `or`, `not`
//! and a condition that is a bare operand are tested for Python truthiness (`None`, `False`,
//! `0`, `""`, `[]` and `{}` are false), not jq's (where only `null` and `false` are).
//! Chained comparisons (`a < b < c`), `in`, arithmetic and calls are rejected.

use std::fmt::Write as _;

/// How `${name}` becomes jq: plain variables read `.context.<name>`; derived ones may differ.
pub(crate) trait Variables {
    /// The jq expression (parenthesized when compound) of context variable `name`.
    fn variable(&self, name: &str) -> String;
}

/// A condition that could not be translated: what and where (character offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConditionError {
    /// Offset (in characters) of the offending token in the condition.
    pub(crate) at: usize,
    /// What is wrong, for a person.
    pub(crate) message: String,
}

impl ConditionError {
    fn new(at: usize, message: impl Into<String>) -> Self {
        ConditionError {
            at,
            message: message.into(),
        }
    }
}

/// Translates `condition` to a jq filter (without `${ }`) over `{ context, messages, agent }`.
pub(crate) fn to_jq(condition: &str, variables: &dyn Variables) -> Result<String, ConditionError> {
    let tokens = tokenize(condition)?;
    let mut parser = Parser {
        tokens: &tokens,
        next: 0,
        variables,
        end: condition.chars().count(),
        depth: 0,
    };
    let expr = parser.or()?;
    if let Some(token) = parser.peek() {
        return Err(ConditionError::new(
            token.at,
            format!(
                "unexpected {} after a complete condition; join conditions with `and` / `or`",
                token.kind
            ),
        ));
    }
    Ok(expr.truthy())
}

/// A lexical token and its character offset.
#[derive(Debug, Clone, PartialEq)]
struct Token {
    kind: Kind,
    at: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Var(String),
    Word(String),
    Number(String),
    Str(String),
    Op(&'static str),
    Open,
    Close,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Var(name) => write!(f, "`${{{name}}}`"),
            Kind::Word(word) => write!(f, "`{word}`"),
            Kind::Number(number) => write!(f, "number `{number}`"),
            Kind::Str(_) => write!(f, "a string"),
            Kind::Op(op) => write!(f, "`{op}`"),
            Kind::Open => write!(f, "`(`"),
            Kind::Close => write!(f, "`)`"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, ConditionError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let kind = match c {
            '$' => {
                if chars.get(i + 1) != Some(&'{') {
                    return Err(ConditionError::new(
                        at,
                        "`$` must start a variable reference `${name}`",
                    ));
                }
                let start = i + 2;
                let Some(len) = chars[start..].iter().position(|c| *c == '}') else {
                    return Err(ConditionError::new(at, "`${` is never closed with `}`"));
                };
                let name: String = chars[start..start + len].iter().collect();
                let name = name.trim().to_owned();
                if name.is_empty()
                    || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    || name.starts_with(|c: char| c.is_ascii_digit())
                {
                    return Err(ConditionError::new(
                        at,
                        format!("`${{{name}}}` is not a context variable name (letters, digits and `_`)"),
                    ));
                }
                i = start + len + 1;
                Kind::Var(name)
            }
            '(' => {
                i += 1;
                Kind::Open
            }
            ')' => {
                i += 1;
                Kind::Close
            }
            '=' | '!' | '<' | '>' => {
                let two = chars.get(i + 1) == Some(&'=');
                let op = match (c, two) {
                    ('=', true) => "==",
                    ('!', true) => "!=",
                    ('<', true) => "<=",
                    ('>', true) => ">=",
                    ('<', false) => "<",
                    ('>', false) => ">",
                    ('=', false) => {
                        return Err(ConditionError::new(
                            at,
                            "`=` is assignment; compare with `==`",
                        ))
                    }
                    _ => return Err(ConditionError::new(at, "`!` alone is not an operator; use `not` or `!=`")),
                };
                i += if two { 2 } else { 1 };
                Kind::Op(op)
            }
            '\'' | '"' => {
                let (value, end) = string(&chars, i)?;
                i = end;
                Kind::Str(value)
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let mut end = i + 1;
                while end < chars.len() && (chars[end].is_ascii_digit() || chars[end] == '.') {
                    end += 1;
                }
                let text: String = chars[i..end].iter().collect();
                if text.parse::<f64>().is_err() || text.ends_with('.') {
                    return Err(ConditionError::new(at, format!("`{text}` is not a number")));
                }
                i = end;
                Kind::Number(text)
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut end = i + 1;
                while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_') {
                    end += 1;
                }
                i = end;
                Kind::Word(chars[at..end].iter().collect())
            }
            other => {
                return Err(ConditionError::new(
                    at,
                    format!("`{other}` cannot be translated: conditions compare `${{variables}}` with ==, !=, <, <=, >, >=, combined with and / or / not"),
                ))
            }
        };
        tokens.push(Token { kind, at });
    }
    Ok(tokens)
}

/// A quoted string from `start` (the quote); its value and the index after the closing quote.
fn string(chars: &[char], start: usize) -> Result<(String, usize), ConditionError> {
    let quote = chars[start];
    let mut value = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            c if c == quote => return Ok((value, i + 1)),
            '\\' => {
                let escaped =
                    match chars.get(i + 1) {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some('\\') => '\\',
                        Some('\'') => '\'',
                        Some('"') => '"',
                        _ => return Err(ConditionError::new(
                            i,
                            "unsupported escape in a string; use \\n, \\t, \\r, \\\\, \\' or \\\"",
                        )),
                    };
                value.push(escaped);
                i += 2;
            }
            c => {
                value.push(c);
                i += 1;
            }
        }
    }
    Err(ConditionError::new(start, "string is never closed"))
}

/// A translated sub-expression: a jq value, or a jq boolean (comparison, and/or/not).
enum Jq {
    Value(String),
    Bool(String),
}

impl Jq {
    /// As a jq boolean, with Python truthiness for values.
    fn truthy(self) -> String {
        match self {
            Jq::Bool(code) => code,
            Jq::Value(code) => format!(
                "({code} | . != null and . != false and . != 0 and . != \"\" and . != [] and . != {{}})"
            ),
        }
    }

    /// As a jq value.
    fn value(self) -> String {
        match self {
            Jq::Value(code) | Jq::Bool(code) => code,
        }
    }
}

struct Parser<'t> {
    tokens: &'t [Token],
    next: usize,
    variables: &'t dyn Variables,
    end: usize,
    /// Nesting of `not` and parentheses so far (bounded: the parser recurses).
    depth: usize,
}

/// Deepest nesting of `not` and parentheses a condition may have.
const MAX_DEPTH: usize = 32;

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: Kind::Word(w), .. }) if w == word)
    }

    fn or(&mut self) -> Result<Jq, ConditionError> {
        let mut left = self.and()?;
        while self.word("or") {
            self.next += 1;
            let right = self.and()?;
            left = Jq::Bool(format!("({} or {})", left.truthy(), right.truthy()));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Jq, ConditionError> {
        let mut left = self.not()?;
        while self.word("and") {
            self.next += 1;
            let right = self.not()?;
            left = Jq::Bool(format!("({} and {})", left.truthy(), right.truthy()));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Jq, ConditionError> {
        if self.word("not") {
            self.deeper()?;
            self.next += 1;
            let operand = self.not()?;
            self.depth -= 1;
            return Ok(Jq::Bool(format!("({} | not)", operand.truthy())));
        }
        self.compare()
    }

    /// One level deeper, or an error past [`MAX_DEPTH`].
    fn deeper(&mut self) -> Result<(), ConditionError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let at = self.peek().map_or(self.end, |token| token.at);
            return Err(ConditionError::new(
                at,
                format!("nested more than {MAX_DEPTH} levels deep; simplify the condition"),
            ));
        }
        Ok(())
    }

    fn compare(&mut self) -> Result<Jq, ConditionError> {
        let left = self.operand()?;
        if let Some(token) = self.peek() {
            if matches!(&token.kind, Kind::Word(w) if w == "in") {
                return Err(ConditionError::new(
                    token.at,
                    "`in` cannot be translated; compare with `==` joined by `or`",
                ));
            }
        }
        let Some(op) = self.operator() else {
            return Ok(left);
        };
        let right = self.operand()?;
        if let Some(token) = self.peek() {
            if matches!(token.kind, Kind::Op(_)) || self.word("is") {
                return Err(ConditionError::new(
                    token.at,
                    "chained comparisons cannot be translated; write `a < b and b < c`",
                ));
            }
        }
        Ok(Jq::Bool(format!(
            "({} {op} {})",
            left.value(),
            right.value()
        )))
    }

    /// A comparison operator at the cursor (consumed), if any.
    fn operator(&mut self) -> Option<&'static str> {
        match self.peek() {
            Some(Token {
                kind: Kind::Op(op), ..
            }) => {
                let op = *op;
                self.next += 1;
                Some(op)
            }
            Some(Token {
                kind: Kind::Word(w),
                ..
            }) if w == "is" => {
                self.next += 1;
                if self.word("not") {
                    self.next += 1;
                    Some("!=")
                } else {
                    Some("==")
                }
            }
            _ => None,
        }
    }

    fn operand(&mut self) -> Result<Jq, ConditionError> {
        let Some(token) = self.peek().cloned() else {
            return Err(ConditionError::new(
                self.end,
                "the condition ends where a value was expected",
            ));
        };
        self.next += 1;
        Ok(match token.kind {
            Kind::Var(name) => Jq::Value(self.variables.variable(&name)),
            Kind::Number(number) => Jq::Value(number),
            Kind::Str(text) => Jq::Value(json_string(&text)),
            Kind::Word(word) => match word.as_str() {
                // MozaiksAI rewrites the lowercase JSON spellings to Python's before evaluating.
                "True" | "true" => Jq::Value("true".into()),
                "False" | "false" => Jq::Value("false".into()),
                "None" | "null" => Jq::Value("null".into()),
                "none" => {
                    return Err(ConditionError::new(
                        token.at,
                        format!("`{word}` is not a value here; write None (or null)"),
                    ))
                }
                // `len(x)`, which MozaiksAI's expressions allow: the length of a string, list
                // or mapping (jq's `length`; `len(None)` is 0 here, an error in Python).
                "len" if matches!(self.peek(), Some(Token { kind: Kind::Open, .. })) => {
                    self.next += 1;
                    self.deeper()?;
                    let inner = self.or()?;
                    self.depth -= 1;
                    match self.peek() {
                        Some(Token { kind: Kind::Close, .. }) => self.next += 1,
                        Some(other) => {
                            return Err(ConditionError::new(
                                other.at,
                                format!("expected `)` closing `len(`, found {}", other.kind),
                            ))
                        }
                        None => return Err(ConditionError::new(self.end, "`len(` is never closed")),
                    }
                    Jq::Value(format!("({} | length)", inner.value()))
                }
                _ => {
                    return Err(ConditionError::new(
                        token.at,
                        format!("`{word}` cannot be translated: reference context variables as `${{{word}}}`, and use only True, False, None, numbers, strings, comparisons and and / or / not"),
                    ))
                }
            },
            Kind::Open => {
                self.deeper()?;
                let inner = self.or()?;
                self.depth -= 1;
                match self.peek() {
                    Some(Token { kind: Kind::Close, .. }) => self.next += 1,
                    Some(other) => {
                        return Err(ConditionError::new(
                            other.at,
                            format!("expected `)`, found {}", other.kind),
                        ))
                    }
                    None => return Err(ConditionError::new(self.end, "`(` is never closed")),
                }
                match inner {
                    Jq::Value(code) => Jq::Value(code),
                    Jq::Bool(code) => Jq::Bool(code),
                }
            }
            other => {
                return Err(ConditionError::new(
                    token.at,
                    format!("expected a value, found {other}"),
                ))
            }
        })
    }
}

/// `text` as a JSON (and jq) string literal.
pub(crate) fn json_string(text: &str) -> String {
    // jq string literals are JSON's, except that `\(` interpolates: JSON never writes `\(`.
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
