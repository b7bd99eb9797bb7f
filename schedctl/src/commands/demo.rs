//! `schedctl demo`: the origin story end to end on loopback.
//!
//! So far the fleet it runs on: [`fleet`] lays out the three `pve-sim`
//! hosts and makes their history.

// The command itself comes with the agents it starts; its fleet is tested now.
#[cfg_attr(not(test), allow(dead_code))]
pub mod fleet;
