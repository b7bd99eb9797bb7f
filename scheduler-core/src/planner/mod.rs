//! The planner (PLANNING-MODEL.md): chooses a start for every job so that the
//! overflow is minimal and then the cost.
