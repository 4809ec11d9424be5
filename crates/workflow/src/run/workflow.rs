//! `run: workflow`: the linked sub-workflow runs as a document of its own (its own `$context`,
//! the same deadline and counters) on `input` or the task's input; its fault is the task's.

use super::{expression_error, Frame, Runner, Start, Stop, NULL};
use crate::error::WorkflowError;
use crate::model::RunWorkflow;
use jaq_json::Val;

impl<'r> Runner<'r> {
    /// `run: workflow`.
    pub(super) async fn run_workflow(
        &self,
        run: &'r RunWorkflow,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        frame: Frame<'_>,
    ) -> Result<Val, Stop> {
        let depth = self.deeper(frame, instance)?;
        let link = &run.link;
        let Some(target) = link.target.get().and_then(std::sync::Weak::upgrade) else {
            return Err(Stop::Fault(WorkflowError::configuration(
                instance,
                format!(
                    "the sub-workflow {}/{}@{} is not linked: load workflows through a Registry, which links `run: workflow` targets",
                    link.namespace,
                    link.name,
                    link.version.as_deref().unwrap_or("latest")
                ),
            )));
        };
        let child_input = match &run.input {
            Some(template) => self
                .eval(input, &NULL, descriptor, frame.locals, |args| {
                    template.eval(input, args)
                })
                .map_err(|e| expression_error(instance, e))?,
            None => input.clone(),
        };
        self.shared
            .document(&target, Start::Fresh(child_input), depth, frame.limit)
            .await
    }
}
