//! The data flow of a task and of the workflow: `input` (the raw input validated against
//! `input.schema`, then transformed by `input.from`) and `output` or `export` (transformed by
//! `as`, then validated against `schema`), with the `validation` errors of schemas.

use super::{expression_error, Runner, Stop, NULL};
use crate::error::WorkflowError;
use crate::model::{DataIn, DataOut};
use crate::schema::Schema;
use crate::value::to_json;
use jaq_json::Val;

/// Validates `value` against `schema`, as the DSL `validation` error of `instance`.
pub(super) fn validate(
    schema: &Schema,
    value: &Val,
    instance: &str,
    what: &str,
) -> Result<(), Stop> {
    let json = to_json(value).map_err(|message| {
        WorkflowError::validation(instance, format!("{what} is not JSON: {message}"))
    })?;
    schema.validate(&json).map_err(|message| {
        Stop::Fault(WorkflowError::validation(
            instance,
            format!("{what} does not match its schema: {message}"),
        ))
    })
}

impl<'r> Runner<'r> {
    /// An `input`: validate the raw input, then transform it.
    pub(super) fn data_in(
        &self,
        spec: &DataIn,
        raw: Val,
        task: &Val,
        locals: &[Val],
        instance: &str,
    ) -> Result<Val, Stop> {
        if let Some(schema) = &spec.schema {
            validate(
                schema,
                &raw,
                instance_of(instance, "/input/schema"),
                "the input",
            )?;
        }
        match &spec.from {
            Some(from) => Ok(self
                .eval(&NULL, &NULL, task, locals, |args| from.eval(&raw, args))
                .map_err(|e| expression_error(instance_of(instance, "/input/from"), e))?),
            None => Ok(raw),
        }
    }

    /// An `output` (or `export`): transform, then validate the result.
    pub(super) fn data_out(
        &self,
        spec: &DataOut,
        value: Val,
        input: &Val,
        task: &Val,
        locals: &[Val],
        instance: &str,
    ) -> Result<Val, Stop> {
        let value = match &spec.as_ {
            Some(as_) => self
                .eval(input, &NULL, task, locals, |args| as_.eval(&value, args))
                .map_err(|e| expression_error(instance_of(instance, "/output/as"), e))?,
            None => value,
        };
        if let Some(schema) = &spec.schema {
            validate(
                schema,
                &value,
                instance_of(instance, "/output/schema"),
                "the output",
            )?;
        }
        Ok(value)
    }
}

/// The `instance` of a data-flow error: the task, or the workflow's `input`/`output` place.
fn instance_of<'a>(instance: &'a str, workflow_place: &'a str) -> &'a str {
    match instance {
        "/input" | "/output" => workflow_place,
        task => task,
    }
}
