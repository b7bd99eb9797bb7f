//! The weekly I/O load profile: one value in `[0, 1]` per five-minute slot of
//! a UTC week, an exponentially weighted mean over weeks.
//!
//! The agent measures the host's I/O load every few seconds (a *sample*: a
//! value in `[0, 1]` over an interval) and hands each sample to
//! [`WeeklyLoad::add_sample`] with the interval's start and end; nothing here
//! reads a clock. A week runs from Monday 00:00 UTC; slot 0 is Monday
//! 00:00–00:05 UTC, slot 2015 Sunday 23:55–24:00.
//!
//! How the weeks are weighted:
//!
//! - Within a week, the samples that fall into a slot are averaged, each
//!   weighted by its length in seconds.
//! - When the first sample of a later week arrives, the finished week is
//!   folded into the long-term mean of every slot it has data for:
//!   `mean = (mean·w + week) / (w + 1)`, `w = w + 1`, where `w` is the
//!   slot's weight (in weeks) *after* decaying it by `2^(-gap/half_life)`
//!   for the weeks since the last fold. So a week `half_life` weeks ago
//!   counts half as much as this one, and weeks without samples (the agent
//!   was down) only age what is there.
//! - The profile value of a slot ([`WeeklyLoad::profile`]) blends the mean
//!   with the current week's samples, the current week counting as the
//!   fraction of the slot it has covered. A slot never sampled reads 0.
//!
//! ```
//! use scheduler_core::load::{WeeklyLoad, slot_of};
//!
//! let monday = 1_730_678_400; // 2024-11-04T00:00:00Z, a Monday
//! let mut load = WeeklyLoad::new(4.0)?;
//! load.add_sample(monday + 7200, monday + 7210, 0.5);
//! let profile = load.profile(monday + 7210);
//! assert_eq!(profile.values[slot_of(monday + 7200)], 0.5);
//! assert_eq!(profile.values[0], 0.0);
//! # Ok::<(), scheduler_core::load::LoadError>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::report::{LoadProfile, LOAD_SLOTS_PER_WEEK};

/// Seconds per slot.
pub const SLOT_SECS: i64 = 300;
/// Seconds per week.
pub const WEEK_SECS: i64 = 7 * 86_400;
/// The Unix time of Monday 1970-01-05 00:00 UTC, the origin of week numbers.
const FIRST_MONDAY: i64 = 4 * 86_400;
/// The longest interval one sample may cover: a longer gap (the host was
/// suspended, the agent stalled) says nothing about the slots in between.
pub const MAX_SAMPLE_SECS: i64 = SLOT_SECS;

/// The slot (0..2016) that Unix time `time` falls in.
pub fn slot_of(time: i64) -> usize {
    // rem_euclid keeps times before 1970 in range too; the cast is lossless
    // because the remainder is below WEEK_SECS / SLOT_SECS = 2016.
    ((time - FIRST_MONDAY).rem_euclid(WEEK_SECS) / SLOT_SECS) as usize
}

/// The number of the UTC week (Monday to Sunday) that Unix time `time` falls in.
pub fn week_of(time: i64) -> i64 {
    (time - FIRST_MONDAY).div_euclid(WEEK_SECS)
}

/// Why a load profile could not be made or read back.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    /// The half-life is not a positive, finite number of weeks.
    #[error("half-life {0} weeks is not usable: give a positive number of weeks, e.g. 4")]
    HalfLife(f64),
    /// A stored profile does not hold one entry per slot.
    #[error("field `{field}` holds {found} values, expected {LOAD_SLOTS_PER_WEEK} (one per five minutes of a week)")]
    SlotCount {
        /// The field.
        field: &'static str,
        /// How many it holds.
        found: usize,
    },
    /// A stored value is out of its range.
    #[error("field `{field}` slot {slot}: {value} is outside {range}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The slot.
        slot: usize,
        /// The value found.
        value: f64,
        /// The allowed range, in words.
        range: &'static str,
    },
}

/// What [`WeeklyLoad::add_sample`] did with a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    /// Added to the current week.
    Added,
    /// Added, after folding the previous week into the means.
    NewWeek,
    /// Ignored: the value is not a number.
    NotANumber,
    /// Ignored: the interval is empty, reversed or longer than [`MAX_SAMPLE_SECS`].
    BadInterval,
    /// Ignored: the sample belongs to a week before the current one (the clock went back).
    PastWeek,
}

/// The state of a weekly load profile; serde gives the form the agent persists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeeklyLoad {
    /// Weeks after which a week counts half.
    half_life_weeks: f64,
    /// Per slot: the weighted mean of the folded weeks, in `[0, 1]`.
    mean: Vec<f64>,
    /// Per slot: the weight (in weeks) behind `mean`, as of week `folded_week`.
    weight: Vec<f64>,
    /// The week the weights were last decayed to; `None` before the first fold.
    folded_week: Option<i64>,
    /// The week the current samples belong to; `None` before the first sample.
    current_week: Option<i64>,
    /// Per slot: the current week's Σ value·seconds.
    current_sum: Vec<f64>,
    /// Per slot: the current week's Σ seconds.
    current_secs: Vec<f64>,
}

impl WeeklyLoad {
    /// An empty profile whose weeks count half after `half_life_weeks`.
    ///
    /// # Errors
    ///
    /// [`LoadError::HalfLife`] unless `half_life_weeks` is positive and finite.
    pub fn new(half_life_weeks: f64) -> Result<WeeklyLoad, LoadError> {
        check_half_life(half_life_weeks)?;
        Ok(WeeklyLoad {
            half_life_weeks,
            mean: vec![0.0; LOAD_SLOTS_PER_WEEK],
            weight: vec![0.0; LOAD_SLOTS_PER_WEEK],
            folded_week: None,
            current_week: None,
            current_sum: vec![0.0; LOAD_SLOTS_PER_WEEK],
            current_secs: vec![0.0; LOAD_SLOTS_PER_WEEK],
        })
    }

    /// The half-life in weeks.
    pub fn half_life_weeks(&self) -> f64 {
        self.half_life_weeks
    }

    /// Uses another half-life from now on (a changed setting); the weights
    /// already folded stay as they are.
    ///
    /// # Errors
    ///
    /// [`LoadError::HalfLife`] as for [`new`](Self::new); nothing changes then.
    pub fn set_half_life(&mut self, half_life_weeks: f64) -> Result<(), LoadError> {
        check_half_life(half_life_weeks)?;
        self.half_life_weeks = half_life_weeks;
        Ok(())
    }

    /// Checks a profile read back from storage: one entry per slot, values
    /// and weights in range. A profile that fails should be set aside and
    /// started afresh.
    ///
    /// # Errors
    ///
    /// The first problem found ([`LoadError`]).
    pub fn check(&self) -> Result<(), LoadError> {
        check_half_life(self.half_life_weeks)?;
        for (field, values) in [
            ("mean", &self.mean),
            ("weight", &self.weight),
            ("current_sum", &self.current_sum),
            ("current_secs", &self.current_secs),
        ] {
            if values.len() != LOAD_SLOTS_PER_WEEK {
                return Err(LoadError::SlotCount {
                    field,
                    found: values.len(),
                });
            }
        }
        let in_range = |field, values: &[f64], ok: &dyn Fn(f64) -> bool, range| match values
            .iter()
            .position(|&v| !ok(v))
        {
            Some(slot) => Err(LoadError::OutOfRange {
                field,
                slot,
                value: values[slot],
                range,
            }),
            None => Ok(()),
        };
        let unit = |v: f64| (0.0..=1.0).contains(&v);
        let non_negative = |v: f64| v.is_finite() && v >= 0.0;
        in_range("mean", &self.mean, &unit, "[0, 1]")?;
        in_range("weight", &self.weight, &non_negative, "[0, ∞)")?;
        in_range("current_secs", &self.current_secs, &non_negative, "[0, ∞)")?;
        let sums: Vec<f64> = self
            .current_sum
            .iter()
            .zip(&self.current_secs)
            .map(|(sum, secs)| if *secs > 0.0 { sum / secs } else { *sum })
            .collect();
        in_range("current_sum", &sums, &unit, "[0, current_secs]")
    }

    /// Adds one sample: load `value` (clamped to `[0, 1]`) measured over the
    /// interval from `start` to `end` (Unix seconds). The sample goes to the
    /// slot of the interval's midpoint, weighted by its length.
    pub fn add_sample(&mut self, start: i64, end: i64, value: f64) -> Fold {
        if value.is_nan() {
            return Fold::NotANumber;
        }
        let secs = end - start;
        if secs <= 0 || secs > MAX_SAMPLE_SECS {
            return Fold::BadInterval;
        }
        let middle = start + secs / 2;
        let week = week_of(middle);
        let fold = match self.current_week {
            Some(current) if week < current => return Fold::PastWeek,
            Some(current) if week > current => {
                self.fold_current_week();
                Fold::NewWeek
            }
            Some(_) => Fold::Added,
            None => Fold::Added,
        };
        self.current_week = Some(week);
        let slot = slot_of(middle);
        let secs = secs as f64;
        self.current_sum[slot] += value.clamp(0.0, 1.0) * secs;
        self.current_secs[slot] += secs;
        fold
    }

    /// The profile as the agent reports it at Unix time `now`: the weights
    /// age to `now`'s week, the current week's samples blended in.
    pub fn profile(&self, now: i64) -> LoadProfile {
        let week = week_of(now).max(self.current_week.unwrap_or(i64::MIN));
        if self.current_week.is_some_and(|current| current < week) {
            // The current week is over: read the profile as if it were folded.
            let mut folded = self.clone();
            folded.fold_current_week();
            folded.current_week = None;
            return folded.profile(now);
        }
        let decay = self.decay_to(week);
        let mut weeks = 0.0;
        let values = (0..LOAD_SLOTS_PER_WEEK)
            .map(|slot| {
                let weight = self.weight[slot] * decay;
                let (current, part) = self.current_part(slot, week);
                weeks += weight + part;
                if weight + part > 0.0 {
                    ((self.mean[slot] * weight + current * part) / (weight + part)).clamp(0.0, 1.0)
                } else {
                    0.0
                }
            })
            .collect();
        LoadProfile {
            slot_minutes: (SLOT_SECS / 60) as u32,
            values,
            weeks: weeks / LOAD_SLOTS_PER_WEEK as f64,
        }
    }

    /// The weeks of samples the profile holds at `now`: the mean weight of a
    /// slot, aged to `now`'s week (what `stagger_load_profile_weeks` shows).
    pub fn weeks(&self, now: i64) -> f64 {
        self.profile(now).weeks
    }

    /// The current week's mean of `slot` and the fraction of the slot it
    /// covers, or zeros when the current week is not `week`.
    fn current_part(&self, slot: usize, week: i64) -> (f64, f64) {
        let secs = self.current_secs[slot];
        if self.current_week != Some(week) || secs <= 0.0 {
            return (0.0, 0.0);
        }
        let mean = (self.current_sum[slot] / secs).clamp(0.0, 1.0);
        (mean, (secs / SLOT_SECS as f64).min(1.0))
    }

    /// The factor the folded weights have decayed by at `week`.
    fn decay_to(&self, week: i64) -> f64 {
        match self.folded_week {
            Some(folded) if week > folded => {
                (-((week - folded) as f64) / self.half_life_weeks).exp2()
            }
            _ => 1.0,
        }
    }

    /// Folds the current week into the means: every slot's weight decays to
    /// the current week, then each slot with samples takes them in with weight 1.
    fn fold_current_week(&mut self) {
        let Some(week) = self.current_week else {
            return;
        };
        let decay = self.decay_to(week);
        for slot in 0..LOAD_SLOTS_PER_WEEK {
            let weight = self.weight[slot] * decay;
            let secs = self.current_secs[slot];
            if secs > 0.0 {
                let value = (self.current_sum[slot] / secs).clamp(0.0, 1.0);
                self.mean[slot] =
                    ((self.mean[slot] * weight + value) / (weight + 1.0)).clamp(0.0, 1.0);
                self.weight[slot] = weight + 1.0;
            } else {
                self.weight[slot] = weight;
            }
            self.current_sum[slot] = 0.0;
            self.current_secs[slot] = 0.0;
        }
        self.folded_week = Some(week);
    }
}

fn check_half_life(half_life_weeks: f64) -> Result<(), LoadError> {
    if half_life_weeks.is_finite() && half_life_weeks > 0.0 {
        Ok(())
    } else {
        Err(LoadError::HalfLife(half_life_weeks))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 2024-11-04T00:00:00Z, a Monday.
    const MONDAY: i64 = 1_730_678_400;

    /// Fills every 10 s of slot `slot` of the week starting at `monday` with `value`.
    fn fill_slot(load: &mut WeeklyLoad, monday: i64, slot: usize, value: f64) {
        let start = monday + slot as i64 * SLOT_SECS;
        for t in (start..start + SLOT_SECS).step_by(10) {
            load.add_sample(t, t + 10, value);
        }
    }

    #[test]
    fn weeks_start_on_monday_utc() {
        assert_eq!(slot_of(MONDAY), 0);
        assert_eq!(slot_of(MONDAY - 1), LOAD_SLOTS_PER_WEEK - 1);
        assert_eq!(slot_of(MONDAY + 2 * 3600 + 35 * 60), 31);
        assert_eq!(week_of(MONDAY) - week_of(MONDAY - 1), 1);
        assert_eq!(week_of(MONDAY + WEEK_SECS - 1), week_of(MONDAY));
        // 1969-12-31T23:59:59Z is a Wednesday: two days and 23:59:59 into its week.
        assert_eq!(slot_of(-1), (2 * 86_400 + 86_399) / 300);
    }

    #[test]
    fn a_first_week_reads_as_measured() {
        let mut load = WeeklyLoad::new(4.0).unwrap();
        fill_slot(&mut load, MONDAY, 24, 0.8);
        let profile = load.profile(MONDAY + 3 * 86_400);
        assert!((profile.values[24] - 0.8).abs() < 1e-12);
        assert_eq!(profile.values[25], 0.0);
        assert_eq!(profile.values.len(), LOAD_SLOTS_PER_WEEK);
        assert_eq!(profile.slot_minutes, 5);
        assert!((profile.weeks - 1.0 / LOAD_SLOTS_PER_WEEK as f64).abs() < 1e-12);
    }

    #[test]
    fn older_weeks_count_less_by_the_half_life() {
        let mut load = WeeklyLoad::new(1.0).unwrap();
        fill_slot(&mut load, MONDAY, 10, 1.0);
        fill_slot(&mut load, MONDAY + WEEK_SECS, 10, 0.0);
        // In week 2 the first week has aged one half-life: it weighs 1/2
        // against the current week's 1.
        let now = MONDAY + WEEK_SECS + 3600;
        assert!((load.profile(now).values[10] - 0.5 / 1.5).abs() < 1e-12);
        // Without new samples for the slot the value stays; its weight ages.
        fill_slot(&mut load, MONDAY + 2 * WEEK_SECS, 11, 0.0);
        let profile = load.profile(MONDAY + 2 * WEEK_SECS + 3600);
        assert!((profile.values[10] - 1.0 / 3.0).abs() < 1e-12);
        let weeks = (0.25 + 0.5 + 1.0) / LOAD_SLOTS_PER_WEEK as f64;
        assert!((profile.weeks - weeks).abs() < 1e-12, "{}", profile.weeks);
    }

    #[test]
    fn a_gap_of_weeks_ages_the_weights_but_keeps_the_values() {
        let mut load = WeeklyLoad::new(2.0).unwrap();
        fill_slot(&mut load, MONDAY, 5, 0.6);
        fill_slot(&mut load, MONDAY + 10 * WEEK_SECS, 6, 0.2);
        let profile = load.profile(MONDAY + 10 * WEEK_SECS + 3600);
        assert!((profile.values[5] - 0.6).abs() < 1e-12);
        assert!((profile.values[6] - 0.2).abs() < 1e-12);
        let slot5_weight = (-10.0f64 / 2.0).exp2();
        let expected = (slot5_weight + 1.0) / LOAD_SLOTS_PER_WEEK as f64;
        assert!((profile.weeks - expected).abs() < 1e-12);
    }

    #[test]
    fn bad_samples_are_ignored() {
        let mut load = WeeklyLoad::new(4.0).unwrap();
        assert_eq!(
            load.add_sample(MONDAY, MONDAY + 10, f64::NAN),
            Fold::NotANumber
        );
        assert_eq!(load.add_sample(MONDAY, MONDAY, 0.5), Fold::BadInterval);
        assert_eq!(load.add_sample(MONDAY + 10, MONDAY, 0.5), Fold::BadInterval);
        assert_eq!(
            load.add_sample(MONDAY, MONDAY + 3600, 0.5),
            Fold::BadInterval
        );
        assert_eq!(
            load.add_sample(MONDAY + WEEK_SECS, MONDAY + WEEK_SECS + 10, 2.0),
            Fold::Added
        );
        assert_eq!(load.add_sample(MONDAY, MONDAY + 10, 0.5), Fold::PastWeek);
        assert_eq!(
            load.add_sample(MONDAY + 2 * WEEK_SECS, MONDAY + 2 * WEEK_SECS + 10, -1.0),
            Fold::NewWeek
        );
        // Slot 0: week 1 read 1.0 (clamped), aged a quarter half-life; week 2
        // read 0.0 (clamped) over a thirtieth of the slot.
        let profile = load.profile(MONDAY + 2 * WEEK_SECS + 10);
        let (old, new) = ((-0.25f64).exp2(), 10.0 / 300.0);
        assert!((profile.values[0] - old / (old + new)).abs() < 1e-12);
    }

    #[test]
    fn stored_profiles_are_checked() {
        let mut load = WeeklyLoad::new(4.0).unwrap();
        fill_slot(&mut load, MONDAY, 3, 0.4);
        let text = serde_json::to_string(&load).unwrap();
        let back: WeeklyLoad = serde_json::from_str(&text).unwrap();
        assert_eq!(back, load);
        back.check().unwrap();

        let mut short = load.clone();
        short.mean.pop();
        assert!(matches!(
            short.check(),
            Err(LoadError::SlotCount { field: "mean", .. })
        ));
        let mut wild = load.clone();
        wild.mean[7] = 3.0;
        let err = wild.check().unwrap_err();
        assert!(err.to_string().contains("slot 7"), "{err}");
        let mut negative = load;
        negative.weight[0] = -1.0;
        assert!(negative.check().is_err());
        assert!(WeeklyLoad::new(0.0).is_err());
        assert!(WeeklyLoad::new(f64::INFINITY).is_err());
    }

    proptest! {
        #[test]
        fn profile_values_stay_in_the_unit_interval(
            samples in proptest::collection::vec((0i64..6 * WEEK_SECS, 1i64..=300, -2.0f64..3.0), 1..300),
            half_life in 0.1f64..20.0,
        ) {
            let mut load = WeeklyLoad::new(half_life).unwrap();
            let mut samples = samples;
            samples.sort_by_key(|s| s.0);
            for (offset, secs, value) in &samples {
                let start = MONDAY + offset;
                load.add_sample(start, start + secs, *value);
            }
            let profile = load.profile(MONDAY + 6 * WEEK_SECS);
            prop_assert_eq!(profile.values.len(), LOAD_SLOTS_PER_WEEK);
            prop_assert!(profile.values.iter().all(|v| (0.0..=1.0).contains(v)));
            prop_assert!(profile.weeks >= 0.0 && profile.weeks.is_finite());
            prop_assert!(load.check().is_ok());
            let back: WeeklyLoad = serde_json::from_str(&serde_json::to_string(&load).unwrap()).unwrap();
            let again = back.profile(MONDAY + 6 * WEEK_SECS);
            for (a, b) in again.values.iter().zip(&profile.values) {
                prop_assert!((a - b).abs() < 1e-12);
            }
        }

        #[test]
        fn a_constant_load_reads_as_that_constant(value in 0.0f64..=1.0, weeks in 1i64..5, slot in 0usize..LOAD_SLOTS_PER_WEEK) {
            let mut load = WeeklyLoad::new(3.0).unwrap();
            for week in 0..weeks {
                fill_slot(&mut load, MONDAY + week * WEEK_SECS, slot, value);
            }
            let got = load.profile(MONDAY + weeks * WEEK_SECS).values[slot];
            prop_assert!((got - value).abs() < 1e-9, "{} vs {}", got, value);
        }

        #[test]
        fn slots_cover_the_week_in_order(time in -10 * WEEK_SECS..100 * WEEK_SECS) {
            let slot = slot_of(time);
            prop_assert!(slot < LOAD_SLOTS_PER_WEEK);
            let week_start = FIRST_MONDAY + week_of(time) * WEEK_SECS;
            prop_assert_eq!(slot as i64, (time - week_start) / SLOT_SECS);
        }
    }
}
