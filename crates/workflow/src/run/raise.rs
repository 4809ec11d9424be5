//! `raise`: the task faults with the error it describes, its `type`, `status`, `title`,
//! `detail` and `instance` evaluated (`instance` defaults to the task's reference).

use super::{expression_error, Runner, Stop, NULL};
use crate::error::WorkflowError;
use crate::expr::EvalError;
use crate::model::ErrorSpec;
use jaq_json::Val;

impl<'r> Runner<'r> {
    /// `raise`: the error, its fields evaluated; `instance` defaults to the task.
    pub(super) fn raise(
        &self,
        spec: &ErrorSpec,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        locals: &[Val],
    ) -> Stop {
        let result = self.eval(input, &NULL, descriptor, locals, |args| {
            let text = |value: Val| match value {
                Val::TStr(bytes) | Val::BStr(bytes) => {
                    Some(String::from_utf8_lossy(&bytes).into_owned())
                }
                Val::Null => None,
                other => Some(other.to_string()),
            };
            let optional =
                |template: &Option<crate::expr::Template>| -> Result<Option<String>, EvalError> {
                    match template {
                        Some(template) => Ok(text(template.eval(input, args)?)),
                        None => Ok(None),
                    }
                };
            let status = spec.status.eval(input, args)?;
            Ok((
                text(spec.type_.eval(input, args)?),
                status,
                optional(&spec.title)?,
                optional(&spec.detail)?,
                optional(&spec.instance)?,
            ))
        });
        let (type_, status, title, detail, raised_instance) = match result {
            Ok(parts) => parts,
            Err(e) => return Stop::Fault(expression_error(instance, e)),
        };
        let status = match &status {
            Val::Num(n) => n.as_isize().and_then(|s| u16::try_from(s).ok()),
            _ => None,
        };
        let (Some(type_), Some(status)) = (type_.filter(|t| !t.is_empty()), status) else {
            return Stop::Fault(WorkflowError::expression(
                instance,
                "the raised error needs a non-empty `type` and an integer `status`; its expressions produced something else".into(),
            ));
        };
        Stop::Fault(WorkflowError {
            type_,
            status,
            title,
            detail,
            instance: Some(raised_instance.unwrap_or_else(|| instance.to_owned())),
        })
    }
}
