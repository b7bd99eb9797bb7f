//! Measuring the host's I/O load.
//!
//! | file | step |
//! | --- | --- |
//! | `procfs.rs` | parsers of `/proc/pressure/io`, `/proc/diskstats`, `/proc/stat` from `&str` |
//! | `reader.rs` | reading them under `proc-root`; the load value of an interval |
//! | `sampler.rs` | the task: every `sample-interval-secs`, read, fold into the weekly profile, update the metrics, persist |

pub mod procfs;
pub mod reader;
pub mod sampler;
