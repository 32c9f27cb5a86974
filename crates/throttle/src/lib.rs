//! # strata-throttle: bandwidth control that yields
//! (crate doc filled in below)

mod bucket;
mod clock;
mod concurrency;
mod congestion;
mod governor;
mod rate;
mod schedule;
mod share;
pub mod sim;

pub use bucket::{TokenBucket, DEFAULT_BURST_TIME};
pub use clock::{Clock, MonotonicClock, SimClock};
pub use concurrency::{ConcurrencyConfig, ConcurrencyTuner};
pub use congestion::{Controller, ControllerConfig, Outcome, Phase, Sample, Snapshot};
pub use governor::{Governor, GovernorConfig, Grant, LaneSnapshot};
pub use rate::{BwLimit, Direction, Rate, RateError};
pub use schedule::{Schedule, ScheduleError, WeekTime, Weekday};
pub use share::{Pressure, Priority, Scheduler, Ticket, Weights};
