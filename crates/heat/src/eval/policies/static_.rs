//! `static`: every object stays where it appeared, on the default tier; it never predicts
//! a read. The policy to beat: one that costs more does worse than no tiering at all.

use crate::eval::{Policy, Predictions, ReplayState};
use crate::trace::TraceRequest;

/// Never moves anything.
#[derive(Clone, Copy, Debug, Default)]
pub struct Static;

impl Policy for Static {
    fn name(&self) -> &str {
        "static"
    }

    fn on_request(&mut self, _state: &mut ReplayState, _request: &TraceRequest) {}

    fn on_window(&mut self, _state: &mut ReplayState, _now_ms: i64, _predictions: &mut Predictions) {}
}
