//! `fork`: `branches` (a task list whose tasks run concurrently, so their `then` cannot name
//! another branch) and `compete`.

use super::{check_fields, child, describe, map, required, Invalid, Loader};
use crate::expr::Scope;
use crate::model::{Flow, Fork};
use serde_json::Value;

impl Loader<'_> {
    /// `fork`: `branches` (a task list whose tasks run concurrently) and `compete`.
    pub(super) fn fork(
        &self,
        value: &Value,
        pointer: &str,
        scope: &Scope,
    ) -> Result<Fork, Invalid> {
        let fields = map(value, pointer, "`fork`")?;
        check_fields(fields, pointer, "`fork`", &["branches", "compete"])?;
        let compete = match fields.get("compete") {
            None => false,
            Some(Value::Bool(compete)) => *compete,
            Some(other) => {
                return Err(Invalid::new(
                    &child(pointer, "compete"),
                    format!("`compete` must be true or false; found {}", describe(other)),
                ))
            }
        };
        let at = child(pointer, "branches");
        let branches = self.task_list(required(fields, pointer, "branches")?, &at, scope)?;
        for (index, task) in branches.tasks.iter().enumerate() {
            if let Flow::Goto(_) = task.then {
                return Err(Invalid::new(
                    &format!("{}/then", task.reference),
                    format!(
                        "branch {index} of the fork names another branch in `then`; branches run concurrently, so `then` can only be `continue`, `exit` or `end`"
                    ),
                ));
            }
        }
        Ok(Fork { branches, compete })
    }
}
