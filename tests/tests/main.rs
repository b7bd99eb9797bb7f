//! Stagger's end-to-end and operations tests: one test binary, a module per area.
//!
//! They run what an admin runs: the built binaries (`target/<profile>/`, found
//! next to this test executable), the shipped files (`systemd/`, `deploy/`), and
//! the real tools that check them (`systemd-analyze`, `promtool`, `dpkg`,
//! `cargo deb`, headless Chromium). Missing binaries or tools fail with the
//! command that provides them.
//!
//! | module | what it checks |
//! | --- | --- |
//! | [`ops_systemd`] | the units pass `systemd-analyze verify` and reach their security threshold |
//! | [`ops_rules`] | the alert rules and the backup-window pattern pass their promtool unit tests |
//! | [`ops_deb`] | the Debian packages' contents, metadata and install/removal in a temporary root |
//! | [`ops_dashboard`] | the Grafana dashboard queries only metrics the daemons export |
//! | [`status_page`] | the backup timeline renders in headless Chromium with every host and job |

mod harness;

mod ops_dashboard;
mod ops_deb;
mod ops_rules;
mod ops_systemd;
mod status_page;
