//! `wait`: sleeps for the duration, or faults at once when the tightest time limit in force
//! would pass first.

use super::{expression_error, later, Frame, Runner, Stop, NULL};
use crate::duration::DurationSpec;
use jaq_json::Val;

impl<'r> Runner<'r> {
    /// `wait`: sleeps, or faults at once when a limit would pass first.
    pub(super) async fn wait(
        &self,
        duration: &DurationSpec,
        instance: &str,
        input: &Val,
        descriptor: &Val,
        frame: Frame<'_>,
    ) -> Result<(), Stop> {
        let duration = self
            .eval(input, &NULL, descriptor, frame.locals, |args| {
                duration.eval(input, args)
            })
            .map_err(|e| expression_error(instance, e))?;
        if later(duration) > frame.limit.until {
            return Err(frame.limit.error(instance));
        }
        tokio::time::sleep(duration).await;
        Ok(())
    }
}
