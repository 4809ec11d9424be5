//! `for` (`each`, `in`, `at`), its `while` and its `do`: the item and index variables are in
//! scope of `while` and of the tasks.

use super::{check_fields, child, map, required, variable_name, Invalid, Loader};
use crate::expr::{Position, Scope};
use crate::model::For;
use serde_json::{Map, Value};

impl Loader<'_> {
    /// `for` (`each`, `in`, `at`), `while` and `do`.
    pub(super) fn for_(
        &self,
        fields: &Map<String, Value>,
        pointer: &str,
        scope: &Scope,
    ) -> Result<For, Invalid> {
        let at = child(pointer, "for");
        let spec = map(required(fields, pointer, "for")?, &at, "`for`")?;
        check_fields(spec, &at, "`for`", &["each", "in", "at"])?;
        let each = match spec.get("each") {
            Some(value) => variable_name(value, &child(&at, "each"))?,
            None => "item",
        };
        let index = match spec.get("at") {
            Some(value) => variable_name(value, &child(&at, "at"))?,
            None => "index",
        };
        if each == index {
            return Err(Invalid::new(
                &child(&at, "at"),
                format!("`each` and `at` both name `${each}`; give the index another name"),
            ));
        }
        let collection = self.expr_field(
            required(spec, &at, "in")?,
            Position::TaskDefinition,
            scope,
            &child(&at, "in"),
            "`in`",
        )?;
        let inner = scope.with(&[each, index]);
        let while_ = fields
            .get("while")
            .map(|value| {
                self.expr_field(
                    value,
                    Position::TaskDefinition,
                    &inner,
                    &child(pointer, "while"),
                    "`while`",
                )
            })
            .transpose()?;
        let tasks = match fields.get("do") {
            Some(tasks) => self.task_list(tasks, &child(pointer, "do"), &inner)?,
            None => {
                return Err(Invalid::new(
                    &child(pointer, "do"),
                    "a `for` task needs `do`: the tasks to run for each item",
                ))
            }
        };
        Ok(For {
            collection,
            while_,
            tasks,
            scope_len: inner.len(),
        })
    }
}
