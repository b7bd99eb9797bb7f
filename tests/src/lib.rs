//! `stagger-tests`: the end-to-end and operations tests live in `tests/`; this
//! library is empty so that the package has a target cargo can build.
#![forbid(unsafe_code)]
