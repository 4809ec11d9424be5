//! `fork`: the branches run concurrently on the current Tokio task, each on the fork's input;
//! all of them (outputs in declaration order, the first fault cancels the rest), or with
//! `compete` the first to complete.

use super::{Frame, Runner, Stop};
use crate::error::WorkflowError;
use crate::model::{Flow, Fork};
use futures_util::stream::{FuturesUnordered, StreamExt};
use jaq_json::Val;

impl<'r> Runner<'r> {
    /// `fork`: the branches, concurrently.
    pub(super) async fn fork(
        &self,
        fork: &'r Fork,
        input: &Val,
        frame: Frame<'_>,
    ) -> Result<(Val, Option<Flow>), Stop> {
        let mut running: FuturesUnordered<_> = fork
            .branches
            .tasks
            .iter()
            .enumerate()
            .map(|(index, branch)| {
                let future = self.task_boxed(branch, input.clone(), frame);
                async move { (index, future.await) }
            })
            .collect();
        if fork.compete {
            let mut first_error = None;
            while let Some((_, result)) = running.next().await {
                match result {
                    Ok((output, flow)) => {
                        return Ok((output, (flow == Flow::End).then_some(Flow::End)))
                    }
                    Err(Stop::Fault(error)) => {
                        first_error.get_or_insert(error);
                    }
                    Err(stop) => return Err(stop),
                }
            }
            return Err(Stop::Fault(first_error.unwrap_or_else(|| {
                WorkflowError::runtime(
                    &self.shared.current_task(),
                    "the fork has no branches".into(),
                )
            })));
        }
        let mut outputs: Vec<Val> = vec![Val::Null; fork.branches.tasks.len()];
        let mut end = false;
        while let Some((index, result)) = running.next().await {
            let (output, flow) = result?;
            end |= flow == Flow::End;
            if let Some(slot) = outputs.get_mut(index) {
                *slot = output;
            }
        }
        Ok((outputs.into_iter().collect(), end.then_some(Flow::End)))
    }
}
