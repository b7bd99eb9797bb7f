//! Stagger's end-to-end and operations tests: one test binary, a module per area.
//!
//! They run what an admin runs: the built binaries (`target/<profile>/`, found
//! next to this test executable) against real peers started on loopback by
//! the tests themselves (OpenSSH's sshd, `pve-sim` for Proxmox). Missing
//! binaries or tools fail with the command that provides them.
//!
//! | module | what it checks |
//! | --- | --- |
//! | [`e2e`] | `schedctl` on a fleet of simulated Proxmox hosts reached over SSH and the Proxmox API: status, plan, diff, apply with ordered rollout and rollback, stale digests, a host lost mid-rollout, pinned identities |
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e;
