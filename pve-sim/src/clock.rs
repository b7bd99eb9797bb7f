//! The simulated clock: a start instant and a speed-up factor.
//!
//! `now = start + real elapsed × speed`; speed 0 freezes the clock (tests
//! that compare answers with fixtures computed at one instant).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Simulated time, in epoch seconds.
#[derive(Clone, Debug)]
pub struct Clock {
    start: f64,
    real_start: Instant,
    speed: f64,
}

impl Clock {
    /// A clock at `start` (epoch seconds; `None` = the real time now) running
    /// `speed` simulated seconds per real second.
    pub fn new(start: Option<i64>, speed: f64) -> Clock {
        let start = match start {
            Some(epoch) => epoch as f64,
            None => real_now(),
        };
        Clock {
            start,
            real_start: Instant::now(),
            speed,
        }
    }

    /// The simulated time, in whole seconds.
    pub fn now(&self) -> i64 {
        self.now_f64().floor() as i64
    }

    /// The simulated time, with fractions.
    pub fn now_f64(&self) -> f64 {
        self.start + self.real_start.elapsed().as_secs_f64() * self.speed
    }

    /// Real seconds until simulated time `epoch` (0 when past; infinite when frozen).
    pub fn real_secs_until(&self, epoch: f64) -> f64 {
        let ahead = epoch - self.now_f64();
        if ahead <= 0.0 {
            0.0
        } else if self.speed <= 0.0 {
            f64::INFINITY
        } else {
            ahead / self.speed
        }
    }
}

/// The real time, in epoch seconds.
pub fn real_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_clock_stays_and_a_fast_one_runs() {
        let frozen = Clock::new(Some(1_730_541_600), 0.0);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(frozen.now(), 1_730_541_600);
        assert!(frozen.real_secs_until(1_730_541_660.0).is_infinite());
        let fast = Clock::new(Some(1_730_541_600), 600.0);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(fast.now() >= 1_730_541_600 + 12);
    }
}
