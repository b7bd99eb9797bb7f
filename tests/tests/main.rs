//! Stagger's end-to-end and operations tests: one test binary, a module per area.
//!
//! They run what an admin runs: the built binaries (`target/<profile>/`, found
//! next to this test executable), the shipped files (`systemd/`, `deploy/`), and
//! the real tools that check them (`systemd-analyze`, `promtool`, `dpkg`,
//! `cargo deb`, headless Chromium, OpenSSH's sshd), against real peers the
//! tests start on loopback (`pve-sim` for Proxmox). Missing binaries or tools
//! fail with the command that provides them.
//!
//! | module | what it checks |
//! | --- | --- |
//! | [`demo`] | `schedctl demo`: the storm before, none after, every host named, nothing left behind (Ctrl-C too) |
//! | [`e2e`] | `schedctl` on fleets of simulated Proxmox hosts over SSH, the Proxmox API and the agent: status, plan, diff, apply with ordered rollout and rollback, stale digests, a host lost mid-rollout, pinned identities |
//! | [`ops_systemd`] | the units pass `systemd-analyze verify` and reach their security threshold |
//! | [`ops_rules`] | the alert rules and the backup-window pattern pass their promtool unit tests, name only what the running daemons export and evaluate without errors in a real Prometheus scraping them; the inhibition works in a real Alertmanager |
//! | [`ops_deb`] | the Debian packages' contents, metadata and install/removal in a temporary root |
//! | [`ops_dashboard`] | every Grafana dashboard query names only metrics the running daemons export and finds series in a real Prometheus scraping them |
//! | [`status_page`] | `schedctl serve`'s page at `/` on a fleet, and `schedctl plan --format svg|html`, in headless Chromium: every host and job, the plan beside the schedule, red only on overlaps |

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod demo;
mod e2e;
mod ops_dashboard;
mod ops_deb;
mod ops_rules;
mod ops_systemd;
mod status_page;
