//! `switch`: a list of `- name: { when, then }` cases, each `then` a flow directive of the
//! enclosing list, at most one case without `when` (the default).

use super::flow::flow;
use super::{check_fields, child, describe, map, single_entry, Invalid, Loader};
use crate::expr::{Position, Scope};
use crate::model::Case;
use serde_json::Value;

impl Loader<'_> {
    /// `switch`: a list of `- name: { when, then }` cases, at most one without `when`.
    pub(super) fn switch(
        &self,
        value: &Value,
        pointer: &str,
        siblings: &[&str],
        scope: &Scope,
    ) -> Result<Box<[Case]>, Invalid> {
        let Value::Array(items) = value else {
            return Err(Invalid::new(
                pointer,
                format!(
                    "`switch` must be a list of cases, each `- name: {{ when: <expression>, then: <flow directive> }}`; found {}",
                    describe(value)
                ),
            ));
        };
        if items.is_empty() {
            return Err(Invalid::new(
                pointer,
                "`switch` lists no cases; add at least one",
            ));
        }
        let mut cases = Vec::with_capacity(items.len());
        let mut default: Option<String> = None;
        for (index, item) in items.iter().enumerate() {
            let at = child(pointer, &index.to_string());
            let (name, case) = single_entry(item, &at, "`switch`", "the case's name")?;
            let at = child(&at, name);
            let fields = map(case, &at, &format!("case `{name}`"))?;
            check_fields(fields, &at, &format!("case `{name}`"), &["when", "then"])?;
            let then = match fields.get("then") {
                Some(value) => flow(Some(value), &child(&at, "then"), siblings)?,
                None => {
                    return Err(Invalid::new(
                        &child(&at, "then"),
                        format!(
                        "case `{name}` needs `then`: the flow directive to follow when it matches"
                    ),
                    ))
                }
            };
            let when = match fields.get("when") {
                Some(value) => Some(self.expr_field(
                    value,
                    Position::TaskDefinition,
                    scope,
                    &child(&at, "when"),
                    "`when`",
                )?),
                None => {
                    if let Some(first) = &default {
                        return Err(Invalid::new(
                            &at,
                            format!("case `{name}` has no `when`, like {first}; a switch has at most one default case — give one of them a `when`"),
                        ));
                    }
                    default = Some(at.clone());
                    None
                }
            };
            cases.push(Case { when, then });
        }
        Ok(cases.into_boxed_slice())
    }
}
