//! `try` and its `catch`: the tasks, the error filter (`errors.with`), the variable (`as`),
//! `when` and `exceptWhen`, the `retry` policy (inline or named in `use.retries`) and the
//! handler tasks (`do`).

use super::components;
use super::{check_fields, child, describe, map, required, variable_name, Invalid, Loader};
use crate::expr::{Expr, Position, Scope};
use crate::model::{ErrorFilter, Try};
use serde_json::{Map, Value};
use std::sync::Arc;

impl Loader<'_> {
    /// `try` and `catch`.
    pub(super) fn try_(
        &self,
        fields: &Map<String, Value>,
        pointer: &str,
        scope: &Scope,
    ) -> Result<Try, Invalid> {
        let tasks = self.task_list(
            required(fields, pointer, "try")?,
            &child(pointer, "try"),
            scope,
        )?;
        let at = child(pointer, "catch");
        let catch = map(required(fields, pointer, "catch")?, &at, "`catch`")?;
        check_fields(
            catch,
            &at,
            "`catch`",
            &["errors", "as", "when", "exceptWhen", "retry", "do"],
        )?;
        let name = match catch.get("as") {
            Some(value) => variable_name(value, &child(&at, "as"))?,
            None => "error",
        };
        let inner = scope.with(&[name]);
        let filter = match catch.get("errors") {
            Some(errors) => {
                let errors_at = child(&at, "errors");
                let errors = map(errors, &errors_at, "`errors`")?;
                check_fields(errors, &errors_at, "`errors`", &["with"])?;
                match errors.get("with") {
                    Some(with) => error_filter(with, &child(&errors_at, "with"))?,
                    None => ErrorFilter::default(),
                }
            }
            None => ErrorFilter::default(),
        };
        let condition = |field: &str| -> Result<Option<Expr>, Invalid> {
            catch
                .get(field)
                .map(|value| {
                    self.expr_field(
                        value,
                        Position::TaskDefinition,
                        &inner,
                        &child(&at, field),
                        &format!("`{field}`"),
                    )
                })
                .transpose()
        };
        let when = condition("when")?;
        let except_when = condition("exceptWhen")?;
        let retry = match catch.get("retry") {
            None => None,
            Some(Value::String(name)) => {
                let (policy, uses_task) = self.components.retries.get(name).ok_or_else(|| {
                    Invalid::new(
                        &child(&at, "retry"),
                        format!(
                            "there is no retry policy named `{name}` in `use.retries` ({})",
                            components::names(&self.components.retries)
                        ),
                    )
                })?;
                self.note(*uses_task);
                Some(policy.clone())
            }
            Some(policy) => Some(Arc::new(components::retry(
                self,
                policy,
                &child(&at, "retry"),
                &inner,
                false,
            )?)),
        };
        let handler = catch
            .get("do")
            .map(|tasks| self.task_list(tasks, &child(&at, "do"), &inner))
            .transpose()?;
        Ok(Try {
            tasks,
            filter,
            when,
            except_when,
            retry,
            handler,
        })
    }
}

/// `catch.errors.with`: `type`, `status`, `instance`, `title`, `detail` (or `details`).
fn error_filter(value: &Value, pointer: &str) -> Result<ErrorFilter, Invalid> {
    let fields = map(value, pointer, "the error filter")?;
    check_fields(
        fields,
        pointer,
        "the error filter",
        &["type", "status", "instance", "title", "detail", "details"],
    )?;
    let text = |field: &str| -> Result<Option<String>, Invalid> {
        match fields.get(field) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(Invalid::new(
                &child(pointer, field),
                format!("`{field}` must be a string; found {}", describe(other)),
            )),
        }
    };
    let status = match fields.get("status") {
        None => None,
        Some(value) => Some(
            value
                .as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .ok_or_else(|| {
                    Invalid::new(
                        &child(pointer, "status"),
                        "`status` must be an integer status code",
                    )
                })?,
        ),
    };
    Ok(ErrorFilter {
        type_: text("type")?,
        status,
        instance: text("instance")?,
        title: text("title")?,
        detail: match text("detail")? {
            Some(detail) => Some(detail),
            None => text("details")?,
        },
    })
}
