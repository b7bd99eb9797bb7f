//! The lossless jobs.cfg codec.
